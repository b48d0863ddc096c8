package nbisim_test

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldagent/diagnostics/speedtest"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/fleet"
	"fieldagent/testlab/nbisim"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/genieacs"
)

func stringsReader(s string) io.Reader {
	if s == "" {
		return nil
	}
	return strings.NewReader(s)
}

func readAll(r *http.Response) (string, error) {
	b, err := io.ReadAll(r.Body)
	return string(b), err
}

func TestSearch(t *testing.T) {
	s := startSim(t, 5, nbisim.Options{})
	_, otherID, _ := s.gateway(t, e8sim.Config{Vendor: "ZTE", Model: "ZXHN G140", OUI: "00D0D0", ProductClass: "G140", Serial: "ZTEG0001", Firmware: "V9.9"})
	ctx := ctxT(t, 30*time.Second)
	c := s.client

	for _, tc := range []struct {
		name, filter string
		want         []string
	}{
		{"serial", genieacs.Equal("_deviceId._SerialNumber", "FLT2"), []string{s.fleet.DeviceID(2)}},
		{"product class", genieacs.Equal("_deviceId._ProductClass", "G140"), []string{otherID}},
		{"inform parameter", genieacs.Equal("InternetGatewayDevice.DeviceInfo.SoftwareVersion", "V9.9"), []string{otherID}},
		{"regex", `{"_deviceId._SerialNumber":{"$regex":"^FLT[34]"}}`, []string{s.fleet.DeviceID(3), s.fleet.DeviceID(4)}},
		{"in and ne", `{"_deviceId._SerialNumber":{"$in":["FLT0","FLT1","ZTEG0001"]},"_deviceId._ProductClass":{"$ne":"G140"}}`, []string{s.fleet.DeviceID(0), s.fleet.DeviceID(1)}},
		{"or", `{"$or":[{"_id":"` + otherID + `"},{"_deviceId._SerialNumber":"FLT0"}]}`, []string{s.fleet.DeviceID(0), otherID}},
		{"last inform", `{"_lastInform":{"$gt":"2000-01-01T00:00:00.000Z"},"_deviceId._OUI":"00D0D0","_deviceId._ProductClass":"G140"}`, []string{otherID}},
		{"no match", genieacs.Equal("_deviceId._SerialNumber", "nope"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, total, err := c.Search(ctx, genieacs.Query{Filter: tc.filter, Projection: []string{"_deviceId"}, Sort: `{"_id":1}`})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				got = append(got, d.ID)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") || total != len(tc.want) {
				t.Errorf("Search = %v (total %d), want %v", got, total, tc.want)
			}
		})
	}

	// Paging by product class: total ignores skip and limit.
	var seen []string
	for skip := 0; ; skip += 2 {
		docs, total, err := c.Search(ctx, genieacs.Query{Filter: genieacs.Equal("_deviceId._ProductClass", fleet.ProductClass), Sort: `{"_deviceId._SerialNumber":-1}`, Skip: skip, Limit: 2, Projection: []string{"_id"}})
		if err != nil {
			t.Fatal(err)
		}
		if total != 5 {
			t.Fatalf("total = %d, want 5", total)
		}
		if len(docs) == 0 {
			break
		}
		for _, d := range docs {
			seen = append(seen, d.ID)
		}
	}
	if want := []string{s.fleet.DeviceID(4), s.fleet.DeviceID(3), s.fleet.DeviceID(2), s.fleet.DeviceID(1), s.fleet.DeviceID(0)}; strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("pages = %v, want %v", seen, want)
	}

	// Tags.
	for _, i := range []int{1, 3} {
		if err := c.AddTag(ctx, s.fleet.DeviceID(i), genieacs.TagDiagnosed); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.Count(ctx, genieacs.Equal("_tags", genieacs.TagDiagnosed)); err != nil || n != 2 {
		t.Errorf("Count(tag) = %d, %v; want 2", n, err)
	}
	if err := c.RemoveTag(ctx, s.fleet.DeviceID(1), genieacs.TagDiagnosed); err != nil {
		t.Fatal(err)
	}
	devs, _, err := c.Devices(ctx, genieacs.Query{Filter: genieacs.Equal("_tags", genieacs.TagDiagnosed)})
	if err != nil || len(devs) != 1 || devs[0].ID != s.fleet.DeviceID(3) {
		t.Errorf("tagged = %+v, %v; want %s only", devs, err, s.fleet.DeviceID(3))
	}
	if n, err := c.Count(ctx, ""); err != nil || n != 6 {
		t.Errorf("Count() = %d, %v; want 6", n, err)
	}

	// What GenieACS rejects, nbisim rejects the same way.
	_, _, err = c.Search(ctx, genieacs.Query{Filter: `{not json`})
	var he *genieacs.HTTPError
	if !errors.As(err, &he) || !errors.Is(err, genieacs.ErrBadRequest) || he.Message != "SyntaxError: Expected property name or '}' in JSON at position 1" {
		t.Errorf("invalid JSON: %v", err)
	}
	if _, _, err := c.Search(ctx, genieacs.Query{Filter: `{"_tags":{"$exists":true}}`}); !errors.Is(err, genieacs.ErrBadRequest) {
		t.Errorf("$exists: %v, want 400", err)
	}
	if err := c.AddTag(ctx, "no-such-device", "x"); !errors.Is(err, acs.ErrUnknownDevice) {
		t.Errorf("tag of an unknown device: %v", err)
	}
}

// speedServer is the lab speed server (GET /file/N) on loopback.
func speedServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestE8DriverThroughNBI(t *testing.T) {
	s := startSim(t, 2, nbisim.Options{})
	ctx := ctxT(t, 60*time.Second)
	id := s.fleet.DeviceID(1)
	if err := s.fleet.Gateway(1).SetRxPower(-23.4); err != nil {
		t.Fatal(err)
	}
	drv := e8.New(s.client, id)
	drv.PollInterval = 20 * time.Millisecond

	ident, err := drv.Identify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ident.Serial != s.fleet.Serial(1) || ident.ProductClass != fleet.ProductClass || ident.Firmware != fleet.Firmware || ident.Access != "gpon" {
		t.Errorf("Identify = %+v", ident)
	}

	opt, err := drv.Optical(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(opt.RxPowerDBm-(-23.4)) > 0.05 {
		t.Errorf("Rx power = %.2f dBm, want -23.4 as the simulator was set", opt.RxPowerDBm)
	}
	// The values came through GenieACS's document, with timestamps.
	ps, err := s.client.Values(ctx, id, e8.WANDevice+"X_CT-COM_GponInterfaceConfig.RXPower")
	if err != nil || len(ps) != 1 || ps[0].Timestamp.IsZero() {
		t.Errorf("Values(RXPower) = %+v, %v", ps, err)
	}

	const size = 1 << 20
	url := speedServer(t) + "/file/" + strconv.Itoa(size)
	r, err := drv.DownloadTest(ctx, url, drivers.TransferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes < size || r.Mbps <= 0 || r.URL != url {
		t.Errorf("DownloadTest = %+v", r)
	}

	before, err := s.client.Device(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := drv.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := s.client.Document(ctx, id, "_lastBoot", "_lastInform")
	if err != nil {
		t.Fatal(err)
	}
	if !after.LastBoot.After(before.LastInform) || after.LastInform.Before(after.LastBoot) {
		t.Errorf("after the reboot _lastBoot %v, _lastInform %v; before it _lastInform %v", after.LastBoot, after.LastInform, before.LastInform)
	}
	assertNoTasks(t, s, id)
}

func assertNoTasks(t *testing.T, s *sim, id string) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	tasks, total, err := s.client.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("device", id)})
	if err != nil || total != 0 || len(tasks) != 0 {
		t.Errorf("tasks left for %s: %+v (total %d), %v", id, tasks, total, err)
	}
	faults, _, err := s.client.Faults(ctx, genieacs.Query{Filter: genieacs.Equal("device", id)})
	if err != nil || len(faults) != 0 {
		t.Errorf("faults left for %s: %+v, %v", id, faults, err)
	}
}

func TestCWMPFaultThroughClient(t *testing.T) {
	s := startSim(t, 1, nbisim.Options{})
	ctx := ctxT(t, 30*time.Second)
	id := s.fleet.DeviceID(0)
	err := s.client.SetParameterValues(ctx, id, []cwmp.ParameterValueStruct{{Name: "InternetGatewayDevice.DeviceInfo.UpTime", Value: "5", Type: "xsd:unsignedInt"}}, "")
	var f *cwmp.Fault
	if !errors.As(err, &f) || !errors.Is(err, genieacs.ErrTaskFaulted) {
		t.Fatalf("SetParameterValues(UpTime) = %v, want the device's CWMP fault", err)
	}
	if f.Code != cwmp.FaultNonWritableParameter && (len(f.SetParameterValuesFaults) != 1 || f.SetParameterValuesFaults[0].FaultCode != cwmp.FaultNonWritableParameter) {
		t.Errorf("fault = %+v, want 9008 for UpTime", f)
	}
	// The client deleted the fault, and with it the task: the device is
	// not blocked.
	assertNoTasks(t, s, id)
	if _, err := s.client.GetParameterValues(ctx, id, "InternetGatewayDevice.DeviceInfo.UpTime"); err != nil {
		t.Errorf("a task after the fault: %v", err)
	}
}

func TestFaultBlocksDevice(t *testing.T) {
	s := startSim(t, 1, nbisim.Options{TaskTimeout: 300 * time.Millisecond})
	id := s.fleet.DeviceID(0)
	post := func(body, query string) (*http.Response, string) {
		return s.raw(t, http.MethodPost, "/devices/"+id+"/tasks"+query, map[string]string{"Content-Type": "application/json"}, body)
	}
	resp, body := post(`{"name":"setParameterValues","parameterValues":[["InternetGatewayDevice.DeviceInfo.UpTime",5,"xsd:unsignedInt"]]}`, "?connection_request&timeout=3000")
	if resp.StatusCode != 202 || reason(resp) != "Task faulted" {
		t.Fatalf("faulting task: %s %s", resp.Status, body)
	}
	task, err := genieacs.ParseTask([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	// A later task waits behind the fault.
	resp, body = post(`{"name":"getParameterValues","parameterNames":["InternetGatewayDevice.DeviceInfo.UpTime"]}`, "?connection_request")
	if resp.StatusCode != 202 || reason(resp) != "Task queued but not processed" {
		t.Fatalf("task behind a fault: %s %s", resp.Status, body)
	}
	blocked, _ := genieacs.ParseTask([]byte(body))
	ctx := ctxT(t, 20*time.Second)
	if tasks, _, _ := s.client.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("device", id)}); len(tasks) != 2 {
		t.Fatalf("tasks = %+v, want the faulted one and the blocked one", tasks)
	}
	// Deleting the fault deletes its task and lets the next one run.
	if err := s.client.DeleteFault(ctx, id+":task_"+task.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.client.DeleteTask(ctx, task.ID); !errors.Is(err, genieacs.ErrNotFound) {
		t.Errorf("DeleteTask after its fault was deleted = %v, want 404 (fixture 24)", err)
	}
	waitNoTasks(t, s, id)
	if err := s.client.DeleteTask(ctx, blocked.ID); !errors.Is(err, genieacs.ErrNotFound) {
		t.Errorf("the unblocked task is still stored: %v", err)
	}
}

// waitNoTasks waits until the device has no stored task.
func waitNoTasks(t *testing.T, s *sim, id string) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	for {
		_, total, err := s.client.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("device", id)})
		if err != nil {
			t.Fatal(err)
		}
		if total == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d tasks still stored for %s", total, id)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestOfflineDevice(t *testing.T) {
	s := startSim(t, 0, nbisim.Options{})
	_, id, stop := s.gateway(t, e8sim.Config{Vendor: "ZTE", Model: "ZXHN F650", OUI: "00D0D0", ProductClass: "F650", Serial: "OFF1", Firmware: "V1"})
	ctx := ctxT(t, 30*time.Second)
	if _, err := s.client.GetParameterValues(ctx, id, "InternetGatewayDevice.DeviceInfo.UpTime"); err != nil {
		t.Fatal(err)
	}
	stop()
	// The ACS ends the session the gateway was in when it stopped (the
	// connection closed); from then on it needs a connection request.
	if err := s.acs.WaitIdle(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err := s.client.GetParameterValues(ctx, id, "InternetGatewayDevice.DeviceInfo.UpTime")
	var te *genieacs.TaskError
	if !errors.Is(err, genieacs.ErrDeviceOffline) || !errors.Is(err, acs.ErrConnectionRequest) || !errors.As(err, &te) || te.Outcome != genieacs.OutcomeOffline || te.Kept {
		t.Fatalf("GetParameterValues on a stopped gateway = %v, want ErrDeviceOffline with the task deleted", err)
	}
	assertNoTasks(t, s, id)

	// Fixture 30's answer, and the task waits (fixture 31).
	resp, body := s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request&timeout=3000", map[string]string{"Content-Type": "application/json"},
		`{"name":"getParameterValues","parameterNames":["InternetGatewayDevice.DeviceInfo.SoftwareVersion"]}`)
	if resp.StatusCode != 202 || reason(resp) != "Device is offline" {
		t.Fatalf("offline: %s %s", resp.Status, body)
	}
	compareShape(t, "30-task-device-offline.json", resp, body)
	if _, total, _ := s.client.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("device", id)}); total != 1 {
		t.Errorf("tasks after 'Device is offline' = %d, want 1 waiting", total)
	}
	resp, body = s.raw(t, http.MethodPost, "/devices/"+id+"/tasks?connection_request", nil, "")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("connection request to a stopped gateway: %s %s", resp.Status, body)
	}
}

func TestQueuedTaskRunsAtNextInform(t *testing.T) {
	s := startSim(t, 0, nbisim.Options{})
	gw, id, _ := s.gateway(t, e8sim.Config{Vendor: "ZTE", Model: "ZXHN F650", OUI: "00D0D0", ProductClass: "F650", Serial: "Q1", Firmware: "V1"})
	ctx := ctxT(t, 30*time.Second)
	stored, err := s.client.PostTask(ctx, id, genieacs.Task{Name: genieacs.TaskGetParameterValues, ParameterNames: []string{"InternetGatewayDevice.DeviceInfo.UpTime"}}, genieacs.PostOptions{NoConnectionRequest: true})
	if err != nil || stored.ID == "" || len(stored.ID) != 24 {
		t.Fatalf("PostTask(queued) = %+v, %v", stored, err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, total, _ := s.client.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("_id", stored.ID)}); total != 1 {
		t.Fatalf("the queued task ran without a session")
	}
	if err := gw.Engine().Inform(ctx, cwmp.EventStruct{EventCode: acs.EventPeriodic}); err != nil {
		t.Fatal(err)
	}
	waitNoTasks(t, s, id)
	ps, err := s.client.Values(ctx, id, "InternetGatewayDevice.DeviceInfo.UpTime")
	if err != nil || len(ps) != 1 || ps[0].Type != "xsd:unsignedInt" {
		t.Errorf("UpTime after the queued task = %+v, %v", ps, err)
	}
}

func TestFirmwareDownload(t *testing.T) {
	s := startSim(t, 1, nbisim.Options{})
	ctx := ctxT(t, 60*time.Second)
	id := s.fleet.DeviceID(0)
	img := e8sim.MakeFirmware(fleet.Model, "V2.2.0", 64<<10)
	meta := genieacs.FileMeta{FileType: "1 Firmware Upgrade Image", OUI: fleet.OUI, ProductClass: fleet.ProductClass, Version: "V2.2.0"}
	if err := s.client.UploadFile(ctx, "f650-v2.2.0.bin", meta, strings.NewReader(string(img))); err != nil {
		t.Fatal(err)
	}
	files, total, err := s.client.Files(ctx, genieacs.Query{})
	if err != nil || total != 1 || files[0].Name != "f650-v2.2.0.bin" || files[0].Length != int64(len(img)) || files[0].Metadata != meta {
		t.Fatalf("Files = %+v (total %d), %v", files, total, err)
	}
	drv := e8.New(s.client, id)
	drv.PollInterval = 20 * time.Millisecond
	got, upgraded, err := drv.UpgradeFirmware(ctx, drivers.FirmwareImage{Version: "V2.2.0", URL: "f650-v2.2.0.bin", Size: int64(len(img))})
	if err != nil || !upgraded || got != "V2.2.0" {
		t.Fatalf("UpgradeFirmware = %q, %v, %v", got, upgraded, err)
	}
	assertNoTasks(t, s, id)
	if err := s.client.DeleteFile(ctx, "f650-v2.2.0.bin"); err != nil {
		t.Fatal(err)
	}
	if err := s.client.DeleteFile(ctx, "f650-v2.2.0.bin"); !errors.Is(err, genieacs.ErrNotFound) {
		t.Errorf("second DeleteFile = %v, want 404", err)
	}
}

func TestObjectsThroughClient(t *testing.T) {
	s := startSim(t, 1, nbisim.Options{})
	ctx := ctxT(t, 30*time.Second)
	id := s.fleet.DeviceID(0)
	table := e8.WANPPPTable
	n, err := s.client.AddObject(ctx, id, table, "")
	if err != nil {
		t.Fatal(err)
	}
	inst := table + strconv.FormatUint(uint64(n), 10) + "."
	names, err := s.client.GetParameterNames(ctx, id, inst, true)
	if err != nil || len(names) == 0 {
		t.Fatalf("GetParameterNames(%s) = %v, %v", inst, names, err)
	}
	vals, err := s.client.GetParameterValues(ctx, id, inst)
	if err != nil || len(vals) == 0 {
		t.Fatalf("GetParameterValues(%s) = %d values, %v", inst, len(vals), err)
	}
	if err := s.client.DeleteObject(ctx, id, inst, ""); err != nil {
		t.Fatal(err)
	}
	d, err := s.client.Document(ctx, id, strings.TrimSuffix(table, "."))
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range d.Instances(table) {
		if got == n {
			t.Errorf("instance %d still in the document after deleteObject", n)
		}
	}
	assertNoTasks(t, s, id)
}

func TestServeListener(t *testing.T) {
	s := startSim(t, 1, nbisim.Options{})
	srv := nbisim.New(s.acs, nbisim.Options{})
	ln := listen(t)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c, err := genieacs.New("http://"+ln.Addr().String(), genieacs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 20*time.Second)
	if n, err := c.Count(ctx, ""); err != nil || n != 1 {
		t.Errorf("Count over Serve = %d, %v", n, err)
	}
	if _, err := c.GetParameterValues(ctx, s.fleet.DeviceID(0), "InternetGatewayDevice.DeviceInfo.UpTime"); err != nil {
		t.Error(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Close = %v", err)
	}
}
