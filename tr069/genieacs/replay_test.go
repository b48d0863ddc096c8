package genieacs_test

// Tests against the recorded GenieACS 1.3.0-dev exchanges in testdata/nbi
// (see its README.md), served strictly by internal/nbireplay: the client
// must send exactly the recorded requests, in order, and nothing else.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers/catalog"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/genieacs"
	"fieldagent/tr069/genieacs/internal/nbireplay"
)

// The client has the method set the TR-069 drivers use.
var _ catalog.ACS = (*genieacs.Client)(nil)

const (
	fixtures = "testdata/nbi"
	dev0     = "202BC1-BM632w-000000"
	dev1     = "202BC1-BM632w-000001"
)

func load(t *testing.T, prefixes ...string) []nbireplay.Exchange {
	t.Helper()
	return nbireplay.MustLoad(t, fixtures, prefixes...)
}

// faultByID is fixture 21 (GET /faults/, the one fault of the reboot task)
// as the client asks for it: filtered by the fault's _id. The recorded
// listing held exactly that fault, so GenieACS's filtered answer is the
// same body.
func faultByID(t *testing.T, id string) nbireplay.Exchange {
	t.Helper()
	return load(t, "21")[0].WithRequestPath("/faults/?query="+queryEscape(`{"_id":"`+id+`"}`),
		"filtered by _id; the recorded unfiltered list held only this fault")
}

// deleteTask is fixture 27 (DELETE /tasks/<id>: 200) for another task id.
func deleteTask(t *testing.T, id string) nbireplay.Exchange {
	t.Helper()
	return load(t, "27")[0].WithRequestPath("/tasks/"+id, "27's 200 answer for task "+id)
}

func queryEscape(s string) string {
	r := strings.NewReplacer("{", "%7B", "}", "%7D", `"`, "%22", ":", "%3A", " ", "%20", ",", "%2C")
	return r.Replace(s)
}

// replay starts a strict replay of exchanges and a client of it; o may be
// nil. Tasks use timeout=3000 as recorded.
func replay(t *testing.T, o *genieacs.Options, exchanges ...nbireplay.Exchange) *genieacs.Client {
	t.Helper()
	srv := nbireplay.Start(t, exchanges...)
	var opt genieacs.Options
	if o != nil {
		opt = *o
	}
	if opt.TaskTimeout == 0 {
		opt.TaskTimeout = 3 * time.Second
	}
	opt.PollInterval, opt.MaxPollInterval = time.Millisecond, 5*time.Millisecond
	c, err := genieacs.New(srv.URL, opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestSearch(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		q       genieacs.Query
		ids     []string
		total   int
		check   func(t *testing.T, docs []*genieacs.Document)
	}{
		{name: "every device", fixture: "01", ids: []string{dev0, dev1}, total: 2,
			check: func(t *testing.T, docs []*genieacs.Document) {
				d := docs[0]
				want := cwmp.DeviceIdStruct{Manufacturer: "Huawei Technologies Co., Ltd.", OUI: "202BC1", ProductClass: "BM632w", SerialNumber: "000000"}
				if d.DeviceID != want {
					t.Errorf("DeviceID = %+v, want %+v", d.DeviceID, want)
				}
				if !d.LastInform.Equal(mustTime(t, "2026-11-25T17:04:29.170Z")) || !d.Registered.Equal(d.LastInform) {
					t.Errorf("LastInform %v, Registered %v", d.LastInform, d.Registered)
				}
				p := d.Params["InternetGatewayDevice.DeviceInfo.HardwareVersion"]
				if p.Value != "40501" || p.Type != "xsd:string" || !p.Timestamp.Equal(mustTime(t, "2026-11-25T17:04:29.171Z")) {
					t.Errorf("HardwareVersion = %+v", p)
				}
				if _, ok := d.Objects["InternetGatewayDevice.WANDevice.1."]; !ok {
					t.Error("object WANDevice.1. missing")
				}
			}},
		{name: "by id with projection", fixture: "02",
			q:   genieacs.Query{Filter: genieacs.Equal("_id", dev0), Projection: []string{"DeviceID", "InternetGatewayDevice.DeviceInfo.SoftwareVersion", "_lastInform"}},
			ids: []string{dev0}, total: 1,
			check: func(t *testing.T, docs []*genieacs.Document) {
				if v, _ := docs[0].Value("InternetGatewayDevice.DeviceInfo.SoftwareVersion"); v != "V100R001IRQC56B017" {
					t.Errorf("SoftwareVersion = %q", v)
				}
				if docs[0].DeviceID != (cwmp.DeviceIdStruct{}) || docs[0].LastInform.IsZero() {
					t.Errorf("DeviceID %+v (want none: DeviceID is no stored field), LastInform %v", docs[0].DeviceID, docs[0].LastInform)
				}
			}},
		{name: "by parameter value", fixture: "03",
			q:   genieacs.Query{Filter: genieacs.Equal("InternetGatewayDevice.DeviceInfo.HardwareVersion", "40501"), Projection: []string{"_id", "InternetGatewayDevice.DeviceInfo.HardwareVersion"}},
			ids: []string{dev0, dev1}, total: 2},
		{name: "paging", fixture: "05",
			q:   genieacs.Query{Filter: "{}", Projection: []string{"_id", "_lastInform"}, Sort: `{"_id":1}`, Skip: 1, Limit: 1},
			ids: []string{dev1}, total: 2},
		{name: "by serial under _deviceId", fixture: "06",
			q:   genieacs.Query{Filter: genieacs.Equal("_deviceId._SerialNumber", "000001"), Projection: []string{"_deviceId", "_lastInform"}},
			ids: []string{dev1}, total: 1,
			check: func(t *testing.T, docs []*genieacs.Document) {
				if docs[0].DeviceID.SerialNumber != "000001" || docs[0].DeviceID.Manufacturer == "" {
					t.Errorf("DeviceID = %+v", docs[0].DeviceID)
				}
			}},
		{name: "DeviceID alias matches nothing", fixture: "07",
			q:   genieacs.Query{Filter: genieacs.Equal("DeviceID.SerialNumber", "000001"), Projection: []string{"_id"}},
			ids: nil, total: 0},
		{name: "no match", fixture: "08",
			q:   genieacs.Query{Filter: genieacs.Equal("InternetGatewayDevice.DeviceInfo.HardwareVersion", "99999"), Projection: []string{"_id"}},
			ids: nil, total: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := replay(t, nil, load(t, tc.fixture)...)
			docs, total, err := c.Search(testCtx(t), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, d := range docs {
				ids = append(ids, d.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.ids, ",") || total != tc.total {
				t.Errorf("ids %v total %d, want %v total %d", ids, total, tc.ids, tc.total)
			}
			if tc.check != nil {
				tc.check(t, docs)
			}
		})
	}
}

func TestCount(t *testing.T) {
	c := replay(t, nil, load(t, "04")...)
	n, err := c.Count(testCtx(t), genieacs.Equal("InternetGatewayDevice.DeviceInfo.HardwareVersion", "40501"))
	if err != nil || n != 2 {
		t.Fatalf("Count = %d, %v; want 2", n, err)
	}
}

func TestSearchInvalidQuery(t *testing.T) {
	c := replay(t, nil, load(t, "09")...)
	_, _, err := c.Search(testCtx(t), genieacs.Query{Filter: "{not json"})
	var he *genieacs.HTTPError
	if !errors.Is(err, genieacs.ErrBadRequest) || !errors.As(err, &he) {
		t.Fatalf("err = %v, want an *HTTPError matching ErrBadRequest", err)
	}
	if he.Status != 400 || he.Message != "SyntaxError: Expected property name or '}' in JSON at position 1" {
		t.Errorf("HTTPError = %+v", he)
	}
	if !strings.Contains(err.Error(), "SyntaxError") || !strings.Contains(err.Error(), "GET /devices/") {
		t.Errorf("error %q does not carry GenieACS's message and the request", err)
	}
}

func TestDevicesAsACSDevices(t *testing.T) {
	c := replay(t, nil, load(t, "01")...)
	devs, total, err := c.Devices(testCtx(t), genieacs.Query{})
	if err != nil || total != 2 || len(devs) != 2 {
		t.Fatalf("Devices = %d devices, total %d, %v", len(devs), total, err)
	}
	d := devs[1]
	if d.ID != dev1 || d.DeviceId.SerialNumber != "000001" || d.ConnectionRequestURL != "http://127.0.0.1:35595/" ||
		!d.LastInform.Equal(mustTime(t, "2026-11-25T17:04:30.152Z")) || !d.FirstInform.Equal(d.LastInform) {
		t.Errorf("device = %+v", d)
	}
	if d.Params["InternetGatewayDevice.DeviceInfo.SoftwareVersion"] != "V100R001IRQC56B017" || len(d.Params) != 7 {
		t.Errorf("Params = %v", d.Params)
	}
}

func TestGetParameterValues(t *testing.T) {
	c := replay(t, nil, load(t, "10", "11")...)
	got, err := c.GetParameterValues(testCtx(t), dev0,
		"InternetGatewayDevice.DeviceInfo.UpTime",
		"InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
		"InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries")
	if err != nil {
		t.Fatal(err)
	}
	want := []cwmp.ParameterValueStruct{
		{Name: "InternetGatewayDevice.DeviceInfo.UpTime", Value: "213138", Type: "xsd:unsignedInt"},
		{Name: "InternetGatewayDevice.ManagementServer.PeriodicInformInterval", Value: "300", Type: "xsd:unsignedInt"},
		{Name: "InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries", Value: "6", Type: "xsd:unsignedInt"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestValuesKeepTimestamps(t *testing.T) {
	c := replay(t, nil, load(t, "11")...)
	ps, err := c.Values(testCtx(t), dev0,
		"InternetGatewayDevice.DeviceInfo.UpTime",
		"InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
		"InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries")
	if err != nil || len(ps) != 3 {
		t.Fatalf("Values = %v, %v", ps, err)
	}
	if !ps[0].Timestamp.Equal(mustTime(t, "2026-11-25T17:04:32.843Z")) || ps[0].Writable || !ps[1].Writable {
		t.Errorf("params = %+v", ps)
	}
}

func TestSetParameterValues(t *testing.T) {
	c := replay(t, nil, load(t, "12", "13")...)
	ctx := testCtx(t)
	pi := "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"
	if err := c.SetParameterValues(ctx, dev0, []cwmp.ParameterValueStruct{{Name: pi, Value: "600", Type: "xsd:unsignedInt"}}, "k1"); err != nil {
		t.Fatal(err)
	}
	ps, err := c.Values(ctx, dev0, pi)
	if err != nil || len(ps) != 1 || ps[0].Value != "600" || !ps[0].Timestamp.Equal(mustTime(t, "2026-11-25T17:04:33.951Z")) {
		t.Fatalf("read-back = %+v, %v", ps, err)
	}
}

func TestRefreshObjectAndSubtree(t *testing.T) {
	c := replay(t, nil, load(t, "14", "15")...)
	ctx := testCtx(t)
	task, err := c.PostTask(ctx, dev0, genieacs.Task{Name: genieacs.TaskRefreshObject, ObjectName: "InternetGatewayDevice.WANDevice.1"}, genieacs.PostOptions{})
	if err != nil || task.ID != "6b071522816002b3b1d27414" || task.Device != dev0 {
		t.Fatalf("PostTask = %+v, %v", task, err)
	}
	conn := "InternetGatewayDevice.WANDevice.1.WANConnectionDevice."
	ps, err := c.Values(ctx, dev0, conn)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]genieacs.Param{}
	for _, p := range ps {
		m[p.Name] = p
	}
	if len(ps) == 0 || ps[0].Name != conn+"1.Name" {
		t.Errorf("not in data model order: %v first", ps)
	}
	ip := m[conn+"1.WANIPConnection.1.ExternalIPAddress"]
	if ip.Value != "172.3.89.139" || !ip.Writable {
		t.Errorf("ExternalIPAddress = %+v", ip)
	}
	if v := m[conn+"1.WANIPConnection.1.DNSEnabled"]; v.Value != "true" || v.Type != "xsd:boolean" {
		t.Errorf("DNSEnabled = %+v", v)
	}
	if v := m[conn+"1.WANIPConnection.1.NATEnabled"]; v.Value != "1" {
		t.Errorf("NATEnabled = %+v", v)
	}
}

func TestAddObject(t *testing.T) {
	// 19 is the same read of WANPPPConnection as 17, recorded when the
	// object had no instance, as it had before 16's addObject (16's
	// description): it stands for the read the client makes first.
	c := replay(t, nil, load(t, "19", "16", "17")...)
	n, err := c.AddObject(testCtx(t), dev0, "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.", "k")
	if err != nil || n != 1 {
		t.Fatalf("AddObject = %d, %v; want 1", n, err)
	}
}

func TestDeleteObject(t *testing.T) {
	c := replay(t, nil, load(t, "18", "19")...)
	ctx := testCtx(t)
	obj := "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection"
	if err := c.DeleteObject(ctx, dev0, obj+".1.", "k"); err != nil {
		t.Fatal(err)
	}
	d, err := c.Document(ctx, dev0, obj)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Instances(obj); len(got) != 0 {
		t.Errorf("instances after delete = %v", got)
	}
	if _, ok := d.Objects[obj+"."]; !ok {
		t.Error("the table itself is gone")
	}
}

func TestRebootFaulted(t *testing.T) {
	faultID := dev0 + ":task_6b071524816002b3b1d27417"
	c := replay(t, nil, append(append(load(t, "20"), faultByID(t, faultID)), load(t, "23", "24")...)...)
	ctx := testCtx(t)
	err := c.Reboot(ctx, dev0, "fieldagent-reboot-1")
	var f *cwmp.Fault
	if !errors.As(err, &f) || f.Code != cwmp.FaultMethodNotSupported || f.String != "Method not supported" {
		t.Fatalf("err = %v, want a *cwmp.Fault 9000 Method not supported", err)
	}
	if f.Error() != cwmp.NewFault(9000, "Method not supported").Error() {
		t.Errorf("fault text %q differs from the embedded ACS's", f.Error())
	}
	var te *genieacs.TaskError
	if !errors.As(err, &te) || !errors.Is(err, genieacs.ErrTaskFaulted) || te.Outcome != genieacs.OutcomeFaulted ||
		te.Fault == nil || te.Fault.ID != faultID || te.CleanupErr != nil || te.Task.ID != "6b071524816002b3b1d27417" {
		t.Fatalf("TaskError = %+v", te)
	}
	if errors.Is(err, genieacs.ErrDeviceOffline) || errors.Is(err, acs.ErrConnectionRequest) {
		t.Error("a faulted task reads as offline")
	}
	// The fault's deletion removed the task too.
	if err := c.DeleteTask(ctx, te.Task.ID); !errors.Is(err, genieacs.ErrNotFound) || !strings.Contains(err.Error(), "Task not found") {
		t.Errorf("DeleteTask after the fault's deletion = %v, want 404 Task not found", err)
	}
}

func TestFaultsTasksListing(t *testing.T) {
	c := replay(t, nil, load(t, "21", "22", "38")...)
	ctx := testCtx(t)
	faults, total, err := c.Faults(ctx, genieacs.Query{})
	if err != nil || total != 1 || len(faults) != 1 {
		t.Fatalf("Faults = %v, %d, %v", faults, total, err)
	}
	f := faults[0]
	if f.Code != "cwmp.9000" || f.Channel != "task_6b071524816002b3b1d27417" || f.Provisions != `[["reboot"]]` || f.Retries != 0 {
		t.Errorf("fault = %+v", f)
	}
	if cf := f.CWMP(); cf == nil || cf.Code != 9000 || cf.String != "Method not supported" || len(cf.SetParameterValuesFaults) != 0 {
		t.Errorf("CWMP() = %+v", cf)
	}
	tasks, total, err := c.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("device", dev0)})
	if err != nil || total != 1 || tasks[0].Name != genieacs.TaskReboot || tasks[0].ID != "6b071524816002b3b1d27417" {
		t.Fatalf("Tasks = %+v, %d, %v", tasks, total, err)
	}
	faults, total, err = c.Faults(ctx, genieacs.Query{})
	if err != nil || total != 0 || len(faults) != 0 {
		t.Fatalf("Faults after the download = %v, %d, %v", faults, total, err)
	}
}

func TestQueueWithoutConnectionRequest(t *testing.T) {
	c := replay(t, nil, load(t, "25", "26", "27")...)
	ctx := testCtx(t)
	task, err := c.PostTask(ctx, dev0, genieacs.Task{Name: genieacs.TaskGetParameterValues, ParameterNames: []string{"InternetGatewayDevice.DeviceInfo.UpTime"}},
		genieacs.PostOptions{NoConnectionRequest: true})
	if err != nil || task.ID != "6b071525816002b3b1d27418" {
		t.Fatalf("PostTask = %+v, %v; want the queued task and no error", task, err)
	}
	tasks, _, err := c.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("device", dev0)})
	if err != nil || len(tasks) != 1 || tasks[0].ID != task.ID || tasks[0].ParameterNames[0] != "InternetGatewayDevice.DeviceInfo.UpTime" {
		t.Fatalf("Tasks = %+v, %v", tasks, err)
	}
	if err := c.DeleteTask(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownDevice(t *testing.T) {
	c := replay(t, nil, load(t, "28")...)
	_, err := c.GetParameterValues(testCtx(t), "202BC1-BM632w-999999", "InternetGatewayDevice.DeviceInfo.UpTime")
	if !errors.Is(err, acs.ErrUnknownDevice) || !errors.Is(err, genieacs.ErrNotFound) || !strings.Contains(err.Error(), "No such device") {
		t.Fatalf("err = %v, want acs.ErrUnknownDevice with GenieACS's message", err)
	}
}

func TestTimeoutZero(t *testing.T) {
	// NoWait: the task is neither waited for nor deleted (the device runs it
	// in the session just requested), so nothing follows 29.
	c := replay(t, nil, load(t, "29")...)
	task, err := c.PostTask(testCtx(t), dev0, genieacs.Task{Name: genieacs.TaskGetParameterValues, ParameterNames: []string{"InternetGatewayDevice.DeviceInfo.UpTime"}},
		genieacs.PostOptions{NoWait: true})
	var te *genieacs.TaskError
	if !errors.As(err, &te) || te.Outcome != genieacs.OutcomeNotProcessed || !te.Kept || te.Reason != "Task queued but not processed" {
		t.Fatalf("err = %v (%+v)", err, te)
	}
	if !errors.Is(err, genieacs.ErrDeviceOffline) || !errors.Is(err, acs.ErrConnectionRequest) || task.ID != "6b071525816002b3b1d27419" {
		t.Errorf("err %v does not match the offline sentinels, or task %+v", err, task)
	}
}

func TestDeviceOffline(t *testing.T) {
	sv := "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
	t.Run("task deleted by default", func(t *testing.T) {
		c := replay(t, nil, append(load(t, "30"), deleteTask(t, "6b071529816002b3b1d2741a"))...)
		_, err := c.GetParameterValues(testCtx(t), dev0, sv)
		var te *genieacs.TaskError
		if !errors.As(err, &te) || te.Outcome != genieacs.OutcomeOffline || te.Kept || te.CleanupErr != nil {
			t.Fatalf("err = %v (%+v)", err, te)
		}
		if !errors.Is(err, genieacs.ErrDeviceOffline) || !errors.Is(err, acs.ErrConnectionRequest) {
			t.Errorf("err %v does not match ErrDeviceOffline and acs.ErrConnectionRequest", err)
		}
		if !strings.Contains(err.Error(), "offline") || !strings.Contains(err.Error(), "deleted") {
			t.Errorf("error %q does not say the device is offline and the task was deleted", err)
		}
	})
	t.Run("task kept when asked", func(t *testing.T) {
		c := replay(t, &genieacs.Options{KeepQueuedTasks: true}, load(t, "30", "31", "32")...)
		ctx := testCtx(t)
		_, err := c.GetParameterValues(ctx, dev0, sv)
		var te *genieacs.TaskError
		if !errors.As(err, &te) || te.Outcome != genieacs.OutcomeOffline || !te.Kept {
			t.Fatalf("err = %v (%+v)", err, te)
		}
		tasks, _, err := c.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("device", dev0)})
		if err != nil || len(tasks) != 1 || tasks[0].ID != te.Task.ID {
			t.Fatalf("pending tasks = %+v, %v", tasks, err)
		}
		// After the device came back, its first session ran the task.
		tasks, total, err := c.Tasks(ctx, genieacs.Query{Filter: genieacs.Equal("device", dev0)})
		if err != nil || len(tasks) != 0 || total != 0 {
			t.Fatalf("tasks after reconnect = %+v, %v", tasks, err)
		}
	})
}

const firmwareText = "GenieACS NBI fixture firmware image\n"

func TestFilesAndDownload(t *testing.T) {
	c := replay(t, nil, load(t, "33", "34", "35", "36", "37")...)
	ctx := testCtx(t)
	meta := genieacs.FileMeta{FileType: "1 Firmware Upgrade Image", OUI: "202BC1", ProductClass: "BM632w", Version: "V100R001IRQC56B018"}
	if err := c.UploadFile(ctx, "fixture-firmware.bin", meta, strings.NewReader(strings.Repeat(firmwareText, 8))); err != nil {
		t.Fatal(err)
	}
	files, total, err := c.Files(ctx, genieacs.Query{})
	if err != nil || total != 1 || files[0].Name != "fixture-firmware.bin" || files[0].Length != 288 || files[0].Metadata != meta {
		t.Fatalf("Files = %+v, %d, %v", files, total, err)
	}
	resp, err := c.Download(ctx, dev0, cwmp.Download{CommandKey: "fw-018", FileType: "1 Firmware Upgrade Image",
		URL: "http://genieacs-fs:7567/fixture-firmware.bin", Username: "u", Password: "p", FileSize: 288})
	if err != nil || resp.Status != 1 {
		t.Fatalf("Download = %+v, %v", resp, err)
	}
	if err := c.ConnectionRequest(ctx, dev0); err != nil {
		t.Fatal(err)
	}
	tc, err := c.WaitTransferComplete(ctx, dev0, "fw-018")
	if err != nil {
		t.Fatal(err)
	}
	if tc.CommandKey != "fw-018" || tc.FaultStruct.FaultCode != 0 ||
		!tc.StartTime.Equal(mustTime(t, "2026-11-25T17:04:43.190Z")) || !tc.CompleteTime.Equal(mustTime(t, "2026-11-25T17:04:45.814Z")) {
		t.Errorf("TransferComplete = %+v", tc)
	}
	if _, err := c.WaitTransferComplete(ctx, dev0, "fw-018"); !errors.Is(err, genieacs.ErrUnknownTransfer) {
		t.Errorf("second wait = %v, want ErrUnknownTransfer", err)
	}
}

func TestPresetsProvisions(t *testing.T) {
	c := replay(t, nil, load(t, "39", "40")...)
	ctx := testCtx(t)
	if p, n, err := c.Presets(ctx, genieacs.Query{}); err != nil || n != 0 || len(p) != 0 {
		t.Errorf("Presets = %v, %d, %v", p, n, err)
	}
	if p, n, err := c.Provisions(ctx, genieacs.Query{}); err != nil || n != 0 || len(p) != 0 {
		t.Errorf("Provisions = %v, %d, %v", p, n, err)
	}
}

func TestFullDocument(t *testing.T) {
	c := replay(t, nil, load(t, "41")...)
	d, err := c.Document(testCtx(t), dev0)
	if err != nil {
		t.Fatal(err)
	}
	withValue := 0
	for _, p := range d.Params {
		if p.HasValue {
			withValue++
		}
	}
	if len(d.Params) != 802 || withValue != 85 || len(d.Objects) != 212 {
		t.Errorf("%d params (%d with a value), %d objects; want 802 (85), 212", len(d.Params), withValue, len(d.Objects))
	}
	if v, _ := d.Value("InternetGatewayDevice.ManagementServer.PeriodicInformInterval"); v != "600" {
		t.Errorf("PeriodicInformInterval = %q", v)
	}
	if p := d.Params["InternetGatewayDevice.DeviceInfo.ModelName"]; p.HasValue || p.Writable {
		t.Errorf("ModelName (never read) = %+v", p)
	}
	dv := d.Device()
	if dv.ConnectionRequestURL != "http://127.0.0.1:43819/" || len(dv.Params) != 85 || dv.Params["Downloads.1.FileName"] != "fixture-firmware.bin" {
		t.Errorf("Device() = %+v", dv)
	}
}

func TestNewRejectsCredentialsInURL(t *testing.T) {
	_, err := genieacs.New("http://admin:hunter2@acs:7557", genieacs.Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
	_, err = genieacs.New("acs:7557", genieacs.Options{Password: secret.New("x")})
	if err == nil {
		t.Fatal("a URL without a scheme was accepted")
	}
}
