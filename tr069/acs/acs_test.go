package acs_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
)

const (
	crUser = "cruser"
	crPass = "crpass"
)

func gatewayTree() *cpe.Tree {
	t := cpe.NewTree()
	for _, p := range []cpe.Param{
		{Name: "InternetGatewayDevice.DeviceInfo.SerialNumber", Value: "SN", Type: "xsd:string"},
		{Name: "InternetGatewayDevice.DeviceInfo.SoftwareVersion", Value: "V1.0", Type: "xsd:string"},
		{Name: "InternetGatewayDevice.DeviceInfo.UpTime", Value: "100", Type: "xsd:unsignedInt"},
		{Name: "InternetGatewayDevice.ManagementServer.ParameterKey", Value: "", Type: "xsd:string"},
		{Name: "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", Value: "ChinaNet-1", Type: "xsd:string", Writable: true},
		{Name: "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Enable", Value: "1", Type: "xsd:boolean", Writable: true},
		{Name: "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.Channel", Value: "6", Type: "xsd:unsignedInt", Writable: true},
		{Name: "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnectionNumberOfEntries", Value: "0", Type: "xsd:unsignedInt"},
	} {
		t.Set(p)
	}
	t.Template("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.", []cpe.Param{
		{Name: "Enable", Value: "0", Type: "xsd:boolean", Writable: true},
		{Name: "Username", Value: "", Type: "xsd:string", Writable: true},
	})
	return t
}

type lab struct {
	acs     *acs.Server
	http    *httptest.Server
	engines []*cpe.Engine
}

// startLab runs an ACS on loopback and n CPE engines informing to it.
func startLab(t *testing.T, n int, acsCfg acs.Config, tweak func(*cpe.Config)) *lab {
	t.Helper()
	if acsCfg.ConnectionRequestAuth == nil {
		acsCfg.ConnectionRequestAuth = func(string) (string, secret.Secret) { return crUser, secret.New(crPass) }
	}
	l := &lab{acs: acs.New(acsCfg)}
	l.http = httptest.NewUnstartedServer(l.acs)
	l.http.Config.ConnState = l.acs.ConnState
	l.http.Start()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		l.http.Close()
	})
	for i := 0; i < n; i++ {
		cfg := cpe.Config{
			ACSURL:          l.http.URL + "/cwmp",
			DeviceId:        cwmp.DeviceIdStruct{Manufacturer: "Test", OUI: "00AABB", ProductClass: "HG", SerialNumber: fmt.Sprintf("SN%03d", i)},
			ConnReqAddr:     "127.0.0.1:0",
			ConnReqUsername: crUser,
			ConnReqPassword: secret.New(crPass),
			InformParams:    []string{"InternetGatewayDevice.DeviceInfo.SoftwareVersion"},
			RetryBase:       50 * time.Millisecond,
		}
		if tweak != nil {
			tweak(&cfg)
		}
		e, err := cpe.New(cfg, gatewayTree())
		if err != nil {
			t.Fatal(err)
		}
		l.engines = append(l.engines, e)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Run(ctx); err != nil {
				t.Errorf("engine run: %v", err)
			}
		}()
	}
	return l
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (l *lab) waitBoot(t *testing.T, ctx context.Context, serial string) acs.Device {
	t.Helper()
	d, err := l.acs.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == serial })
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestInformRegistersDevice(t *testing.T) {
	l := startLab(t, 1, acs.Config{}, nil)
	ctx := testCtx(t)
	d := l.waitBoot(t, ctx, "SN000")
	if d.ID != "00AABB-HG-SN000" {
		t.Errorf("ID = %q", d.ID)
	}
	if d.ConnectionRequestURL == "" || d.ConnectionRequestURL != l.engines[0].ConnectionRequestURL() {
		t.Errorf("CR URL = %q, engine says %q", d.ConnectionRequestURL, l.engines[0].ConnectionRequestURL())
	}
	if d.Params["InternetGatewayDevice.DeviceInfo.SoftwareVersion"] != "V1.0" {
		t.Errorf("params = %v", d.Params)
	}
	if !strings.Contains(strings.Join(d.LastEvents, ","), "0 BOOTSTRAP") || d.Namespace != cwmp.NS10 {
		t.Errorf("events = %v ns = %s", d.LastEvents, d.Namespace)
	}
	if got, ok := l.acs.Device(d.ID); !ok || got.ID != d.ID {
		t.Errorf("Device(%s) = %v, %v", d.ID, got, ok)
	}
	if len(l.acs.Devices()) != 1 {
		t.Errorf("Devices() = %v", l.acs.Devices())
	}
}

func TestRPCRoundTrips(t *testing.T) {
	l := startLab(t, 1, acs.Config{}, nil)
	ctx := testCtx(t)
	id := l.waitBoot(t, ctx, "SN000").ID
	if err := l.acs.WaitIdle(ctx, id); err != nil { // the RPCs below go through a connection request
		t.Fatal(err)
	}
	tree := l.engines[0].Tree()
	const wlan = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
	const ppp = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection."

	vals, err := l.acs.GetParameterValues(ctx, id, wlan, "InternetGatewayDevice.DeviceInfo.UpTime")
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 4 || vals[0].Name != wlan+"Channel" || vals[3].Type != "xsd:unsignedInt" {
		t.Fatalf("values = %+v", vals)
	}

	if err := l.acs.SetParameterValues(ctx, id, []cwmp.ParameterValueStruct{
		{Name: wlan + "SSID", Value: "新的网络"}, {Name: wlan + "Channel", Value: "11", Type: "xsd:unsignedInt"},
	}, "key-1"); err != nil {
		t.Fatal(err)
	}
	if tree.Value(wlan+"SSID") != "新的网络" || tree.Value(wlan+"Channel") != "11" || tree.Value("InternetGatewayDevice.ManagementServer.ParameterKey") != "key-1" {
		t.Fatalf("tree not updated: %s %s", tree.Value(wlan+"SSID"), tree.Value(wlan+"Channel"))
	}

	for want := uint32(1); want <= 2; want++ {
		n, err := l.acs.AddObject(ctx, id, ppp, "key-2")
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("instance = %d, want %d", n, want)
		}
	}
	if _, ok := tree.Get(ppp + "2.Username"); !ok {
		t.Fatal("instance 2 has no Username")
	}
	if got := tree.Value("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnectionNumberOfEntries"); got != "2" {
		t.Fatalf("NumberOfEntries = %s", got)
	}
	if err := l.acs.DeleteObject(ctx, id, ppp+"1.", "key-3"); err != nil {
		t.Fatal(err)
	}
	names, err := l.acs.GetParameterNames(ctx, id, ppp, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0].Name != ppp+"2." || !names[0].Writable {
		t.Fatalf("names = %+v", names)
	}
	resp, err := l.acs.Do(ctx, id, &cwmp.GetRPCMethods{})
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := resp.(*cwmp.GetRPCMethodsResponse); !ok || len(m.MethodList) == 0 {
		t.Fatalf("GetRPCMethods = %#v", resp)
	}
}

func TestFaults(t *testing.T) {
	rejected := cwmp.NewFault(cwmp.FaultInvalidParameterValue, "SSID too short")
	l := startLab(t, 1, acs.Config{}, func(c *cpe.Config) {
		c.OnSet = func(_ context.Context, changed []cwmp.ParameterValueStruct) error {
			for _, p := range changed {
				if strings.HasSuffix(p.Name, "SSID") && len(p.Value) < 3 {
					return rejected
				}
			}
			return nil
		}
	})
	ctx := testCtx(t)
	id := l.waitBoot(t, ctx, "SN000").ID
	const wlan = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
	tests := []struct {
		name     string
		req      cwmp.Message
		code     int
		paramErr int
	}{
		{"read-only", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: "InternetGatewayDevice.DeviceInfo.SerialNumber", Value: "X"}}}, 9008, 9008},
		{"unknown", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: "InternetGatewayDevice.Nope", Value: "X"}}}, 9005, 9005},
		{"bad type", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: wlan + "Channel", Value: "1", Type: "xsd:boolean"}}}, 9006, 9006},
		{"bad value", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: wlan + "Channel", Value: "x"}}}, 9007, 9007},
		{"mixed", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: wlan + "Channel", Value: "x"}, {Name: wlan + "SSID", Value: "ok-ssid"}, {Name: "InternetGatewayDevice.Nope", Value: "X"}}}, 9003, 9007},
		{"hook rejects", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: wlan + "SSID", Value: "ab"}}}, 9007, 0},
		{"unknown get", &cwmp.GetParameterValues{ParameterNames: []string{"InternetGatewayDevice.Nope."}}, 9005, 0},
		{"add on non-template", &cwmp.AddObject{ObjectName: "InternetGatewayDevice.DeviceInfo."}, 9005, 0},
		{"method not supported", &cwmp.Unknown{Name: "X_VENDOR_Frobnicate"}, 9000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.acs.Do(ctx, id, tc.req)
			var f *cwmp.Fault
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want a *cwmp.Fault", err)
			}
			if f.Code != tc.code {
				t.Fatalf("code = %d, want %d (%v)", f.Code, tc.code, f)
			}
			if tc.paramErr != 0 && (len(f.SetParameterValuesFaults) == 0 || f.SetParameterValuesFaults[0].FaultCode != tc.paramErr) {
				t.Fatalf("parameter faults = %+v", f.SetParameterValuesFaults)
			}
		})
	}
	if got := l.engines[0].Tree().Value(wlan + "SSID"); got != "ChinaNet-1" {
		t.Fatalf("SSID = %q after rejected sets, want unchanged", got)
	}
}

func TestConnectionRequestErrors(t *testing.T) {
	l := startLab(t, 1, acs.Config{
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return crUser, secret.New("wrong") },
	}, nil)
	ctx := testCtx(t)
	d := l.waitBoot(t, ctx, "SN000")
	if err := l.acs.WaitIdle(ctx, d.ID); err != nil {
		t.Fatal(err)
	}

	_, err := l.acs.GetParameterValues(ctx, d.ID, "InternetGatewayDevice.DeviceInfo.")
	var cre *acs.ConnectionRequestError
	if !errors.Is(err, acs.ErrConnectionRequest) || !errors.As(err, &cre) || cre.StatusCode != http.StatusUnauthorized {
		t.Fatalf("err = %v, want ErrConnectionRequest with 401", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error leaks the password: %v", err)
	}

	tests := []struct {
		name string
		auth string
	}{
		{"no credentials", ""},
		{"basic", "Basic Y3J1c2VyOmNycGFzcw=="},
		{"bogus digest", `Digest username="cruser", realm="cwmp", nonce="x", uri="/", response="00"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.ConnectionRequestURL, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Digest ") {
				t.Fatalf("status %d, challenge %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}

	if _, err := l.acs.Do(ctx, "nope", &cwmp.GetRPCMethods{}); !errors.Is(err, acs.ErrUnknownDevice) {
		t.Fatalf("unknown device: err = %v", err)
	}
}

func TestDoContextDeadline(t *testing.T) {
	// A CPE that accepts connection requests but never opens a session.
	cr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer cr.Close()
	s := acs.New(acs.Config{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	inform, _ := cwmp.Encode(&cwmp.Envelope{ID: "1", Body: &cwmp.Inform{
		DeviceId: cwmp.DeviceIdStruct{OUI: "00AABB", SerialNumber: "X1"},
		Event:    []cwmp.EventStruct{{EventCode: "1 BOOT"}},
		ParameterList: []cwmp.ParameterValueStruct{
			{Name: "Device.ManagementServer.ConnectionRequestURL", Value: cr.URL},
		},
	}})
	resp, err := http.Post(srv.URL, "text/xml", strings.NewReader(string(inform)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the session now idles; an empty POST without the cookie is not sent
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// The session from the Inform is still open (cookie never returned), so
	// Do queues into it; nothing answers, so the deadline wins.
	_, err = s.Do(ctx, "00AABB-X1", &cwmp.GetRPCMethods{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestRebootWaitInform(t *testing.T) {
	rebooted := make(chan struct{}, 1)
	l := startLab(t, 1, acs.Config{}, func(c *cpe.Config) {
		c.OnReboot = func(context.Context) { rebooted <- struct{}{} }
	})
	ctx := testCtx(t)
	id := l.waitBoot(t, ctx, "SN000").ID
	before := time.Now()
	if err := l.acs.Reboot(ctx, id, "rb-1"); err != nil {
		t.Fatal(err)
	}
	d, err := l.acs.WaitInform(ctx, id, "1 BOOT", before)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(d.LastEvents, ","), "M Reboot") {
		t.Fatalf("events after reboot = %v", d.LastEvents)
	}
	select {
	case <-rebooted:
	default:
		t.Fatal("OnReboot not called")
	}
}

func TestDownloadTransferComplete(t *testing.T) {
	l := startLab(t, 1, acs.Config{}, func(c *cpe.Config) {
		c.OnDownload = func(_ context.Context, d cwmp.Download) error {
			if d.URL == "" {
				return cwmp.NewFault(cwmp.FaultDownloadContactServerFailure, "")
			}
			return nil
		}
	})
	ctx := testCtx(t)
	id := l.waitBoot(t, ctx, "SN000").ID
	before := time.Now()
	resp, err := l.acs.Do(ctx, id, &cwmp.Download{CommandKey: "fw1", FileType: "1 Firmware Upgrade Image", URL: "http://127.0.0.1/fw.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := resp.(*cwmp.DownloadResponse); !ok || r.Status != 1 {
		t.Fatalf("resp = %#v", resp)
	}
	if _, err := l.acs.WaitInform(ctx, id, "7 TRANSFER COMPLETE", before); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPErrors(t *testing.T) {
	s := acs.New(acs.Config{BodyLimit: 1024})
	srv := httptest.NewServer(s)
	defer srv.Close()
	tests := []struct {
		name   string
		method string
		body   string
		want   int
	}{
		{"oversized", http.MethodPost, "<x>" + strings.Repeat("a", 2048) + "</x>", http.StatusRequestEntityTooLarge},
		{"malformed", http.MethodPost, "<soap:Envelope><soap:Body>", http.StatusBadRequest},
		{"not soap", http.MethodPost, "hello", http.StatusBadRequest},
		{"empty without session", http.MethodPost, "", http.StatusBadRequest},
		{"response without session", http.MethodPost, `<Envelope><Body><RebootResponse xmlns="urn:dslforum-org:cwmp-1-0"/></Body></Envelope>`, http.StatusBadRequest},
		{"get", http.MethodGet, "", http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestManyDevices(t *testing.T) {
	const n = 20
	l := startLab(t, n, acs.Config{}, func(c *cpe.Config) { c.Namespace = cwmp.NS12 })
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serial := fmt.Sprintf("SN%03d", i)
			d, err := l.acs.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == serial })
			if err != nil {
				errs <- err
				return
			}
			ssid := "ssid-" + serial
			const name = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"
			if err := l.acs.SetParameterValues(ctx, d.ID, []cwmp.ParameterValueStruct{{Name: name, Value: ssid}}, ""); err != nil {
				errs <- fmt.Errorf("%s: %w", serial, err)
				return
			}
			vals, err := l.acs.GetParameterValues(ctx, d.ID, name)
			if err != nil {
				errs <- fmt.Errorf("%s: %w", serial, err)
				return
			}
			if len(vals) != 1 || vals[0].Value != ssid {
				errs <- fmt.Errorf("%s: got %+v", serial, vals)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(l.acs.Devices()); got != n {
		t.Fatalf("%d devices, want %d", got, n)
	}
	for _, d := range l.acs.Devices() {
		if d.Namespace != cwmp.NS12 {
			t.Fatalf("%s namespace %s", d.ID, d.Namespace)
		}
	}
}

func TestEngineInformValueChange(t *testing.T) {
	l := startLab(t, 1, acs.Config{}, nil)
	ctx := testCtx(t)
	id := l.waitBoot(t, ctx, "SN000").ID
	before := time.Now()
	if err := l.engines[0].Inform(ctx, cwmp.EventStruct{EventCode: cpe.EventValueChange}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.acs.WaitInform(ctx, id, "4 VALUE CHANGE", before); err != nil {
		t.Fatal(err)
	}
}
