package genieacs_test

// Tests over the SYNTHETIC fakeNBI (fakenbi_test.go) for behaviours the
// recorded exchanges do not cover.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/genieacs"
)

func fakeClient(t *testing.T, f *fakeNBI, o genieacs.Options) *genieacs.Client {
	t.Helper()
	srv := f.start()
	if o.PollInterval == 0 {
		o.PollInterval, o.MaxPollInterval = time.Millisecond, 10*time.Millisecond
	}
	c, err := genieacs.New(srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSyntheticE8DownloadTest(t *testing.T) {
	f := newFakeNBI(t)
	f.diagPolls = 3
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	res, err := e8.New(c, id).DownloadTest(testCtx(t), "http://speed.example/file/100", drivers.TransferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != 12_500_000 || res.TotalBytes != 12_600_000 || res.Duration != time.Second || res.Mbps != 100 {
		t.Errorf("result = %+v", res)
	}
	// 3 polls read Requested, the 4th Completed.
	if n := f.runs("getParameterValues"); n != 4 {
		t.Errorf("%d getParameterValues polls, want 4", n)
	}
	if n := f.queued(); n != 0 {
		t.Errorf("%d tasks left queued", n)
	}
	if v := f.device(id).params["InternetGatewayDevice.DownloadDiagnostics.DownloadURL"].value; v != "http://speed.example/file/100" {
		t.Errorf("DownloadURL = %v", v)
	}
}

func TestSyntheticE8Ping(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	res, err := e8.New(c, id).Ping(testCtx(t), "192.0.2.1", drivers.PingOptions{Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 4 || res.Received != 4 || res.Avg != 5*time.Millisecond {
		t.Errorf("result = %+v", res)
	}
	// The count went as an xsd:unsignedInt number.
	if v := f.device(id).params["InternetGatewayDevice.IPPingDiagnostics.NumberOfRepetitions"].value; v != float64(4) {
		t.Errorf("NumberOfRepetitions = %#v, want the number 4", v)
	}
}

func TestSyntheticDiagnosticsPollLimit(t *testing.T) {
	f := newFakeNBI(t)
	f.diagPolls = -1 // never finishes
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{MaxPolls: 3})
	_, err := e8.New(c, id).Ping(testCtx(t), "192.0.2.1", drivers.PingOptions{})
	if !errors.Is(err, genieacs.ErrPollLimit) || !errors.Is(err, drivers.ErrTimeout) {
		t.Fatalf("err = %v, want ErrPollLimit inside the driver's ErrTimeout", err)
	}
	if n := f.runs("getParameterValues"); n != 3 {
		t.Errorf("%d polls, want 3", n)
	}
}

func TestSyntheticWaitInformNothingPending(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	_, err := c.WaitInform(testCtx(t), id, acs.EventDiagnosticsComplete, time.Now())
	if !errors.Is(err, genieacs.ErrNoDiagnostics) {
		t.Fatalf("err = %v", err)
	}
}

func TestSyntheticE8Reboot(t *testing.T) {
	f := newFakeNBI(t)
	f.bootDelay = 30 * time.Millisecond
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	if err := e8.New(c, id).Reboot(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if f.runs("reboot") != 1 || f.count("GET devices") < 2 {
		t.Errorf("reboot tasks %d, document reads %d: the BOOT was not polled for", f.runs("reboot"), f.count("GET devices"))
	}
}

func TestSyntheticWaitInformOtherEvents(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	ctx := testCtx(t)
	d, err := c.WaitInform(ctx, id, "2 PERIODIC", time.Now().Add(-time.Hour))
	if err != nil || d.ID != id || d.DeviceId.SerialNumber != "000000" || d.ConnectionRequestURL == "" {
		t.Fatalf("WaitInform = %+v, %v", d, err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := c.WaitInform(short, id, acs.EventBootstrap, time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a BOOTSTRAP that never comes = %v", err)
	}
}

func TestSyntheticE8Identify(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	got, err := e8.New(c, id).Identify(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := drivers.Identity{Kind: drivers.KindE8, Vendor: "Huawei Technologies Co., Ltd.", OUI: "202BC1", Model: "BM632w", ProductClass: "BM632w",
		Serial: "000000", Firmware: "V100R001IRQC56B017", Hardware: "40501", Access: "lan", Class: "e8-B"}
	if got != want {
		t.Errorf("Identify = %+v, want %+v", got, want)
	}
}

func TestSyntheticUnknownParameter(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	_, err := c.GetParameterValues(testCtx(t), id, "InternetGatewayDevice.DeviceInfo.UpTime", "InternetGatewayDevice.Nope")
	var cf *cwmp.Fault
	if !errors.As(err, &cf) || cf.Code != cwmp.FaultInvalidParameterName || !strings.Contains(cf.String, "InternetGatewayDevice.Nope") {
		t.Fatalf("err = %v, want fault 9005 naming the parameter", err)
	}
}

func TestSyntheticGetParameterNames(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	ctx := testCtx(t)
	obj := "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1."
	all, err := c.GetParameterNames(ctx, id, obj, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range all {
		names = append(names, p.Name)
	}
	want := obj + "," + obj + "WANIPConnection.," + obj + "WANIPConnection.1.," + obj + "WANIPConnection.1.ConnectionStatus"
	if !strings.HasPrefix(strings.Join(names, ","), want) || len(names) != 8 {
		t.Errorf("names = %v", names)
	}
	next, err := c.GetParameterNames(ctx, id, obj, true)
	if err != nil || len(next) != 1 || next[0].Name != obj+"WANIPConnection." {
		t.Errorf("next level = %v, %v", next, err)
	}
	if _, err := c.GetParameterNames(ctx, id, "InternetGatewayDevice.Nope.", false); !errors.As(err, new(*cwmp.Fault)) {
		t.Errorf("unknown object = %v, want a fault", err)
	}
	// The e8 driver's snapshot (cwmptx) runs on it.
	snap, err := e8.New(c, id).Snapshot(ctx, obj)
	if err != nil || snap.Values[obj+"WANIPConnection.1.ConnectionType"] != "IP_Routed" || len(snap.Instances) != 2 {
		t.Errorf("Snapshot = %+v, %v", snap, err)
	}
}

func TestSyntheticTags(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	ctx := testCtx(t)
	for _, tag := range []string{genieacs.TagDiagnosed, genieacs.TagProvisioned} {
		if err := c.AddTag(ctx, id, tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.RemoveTag(ctx, id, genieacs.TagProvisioned); err != nil {
		t.Fatal(err)
	}
	d, err := c.Document(ctx, id, "_tags")
	if err != nil || !d.HasTag(genieacs.TagDiagnosed) || d.HasTag(genieacs.TagProvisioned) {
		t.Fatalf("tags = %v, %v", d, err)
	}
}

func TestSyntheticTransferFault(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	f.device(id).downloadFault = true
	c := fakeClient(t, f, genieacs.Options{})
	ctx := testCtx(t)
	// The download task itself faults (the device refused the Download).
	_, err := c.Download(ctx, id, cwmp.Download{CommandKey: "k", FileType: "1 Firmware Upgrade Image", URL: "fw.bin"})
	var cf *cwmp.Fault
	if !errors.As(err, &cf) || cf.Code != cwmp.FaultDownloadFailure {
		t.Fatalf("Download = %v", err)
	}
	f.mu.Lock()
	n := len(f.faults)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("%d faults left", n)
	}
}

func TestSyntheticTransferCompleteFault(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	f.device(id).transferFault = true
	c := fakeClient(t, f, genieacs.Options{})
	ctx := testCtx(t)
	if _, err := c.Download(ctx, id, cwmp.Download{CommandKey: "k", FileType: "1 Firmware Upgrade Image", URL: "fw.bin"}); err != nil {
		t.Fatal(err)
	}
	tc, err := c.WaitTransferComplete(ctx, id, "k")
	var cf *cwmp.Fault
	if !errors.Is(err, acs.ErrTransferFailed) || !errors.As(err, &cf) || cf.Code != cwmp.FaultDownloadFailure || tc.FaultStruct.FaultCode != 9010 {
		t.Fatalf("WaitTransferComplete = %+v, %v", tc, err)
	}
	f.mu.Lock()
	n := len(f.faults)
	f.mu.Unlock()
	if n != 0 {
		t.Errorf("%d faults left", n)
	}
}

func TestSyntheticDownloadWait(t *testing.T) {
	f := newFakeNBI(t)
	id := f.addDevice("000000")
	c := fakeClient(t, f, genieacs.Options{})
	ctx := testCtx(t)
	if _, err := c.Download(ctx, id, cwmp.Download{CommandKey: "k", FileType: "1 Firmware Upgrade Image", URL: "http://x/fw.bin"}); err != nil {
		t.Fatal(err)
	}
	tc, err := c.WaitTransferComplete(ctx, id, "k")
	if err != nil || tc.CommandKey != "k" || tc.CompleteTime.Sub(tc.StartTime) != time.Second {
		t.Fatalf("WaitTransferComplete = %+v, %v", tc, err)
	}
}

func TestSyntheticAuthAndErrors(t *testing.T) {
	t.Run("bearer token sent, never shown", func(t *testing.T) {
		f := newFakeNBI(t)
		c := fakeClient(t, f, genieacs.Options{Token: secret.New("tok-s3cret")})
		if _, err := c.Count(testCtx(t), ""); err != nil {
			t.Fatal(err)
		}
		if h := f.authHeaders(); len(h) != 1 || h[0] != "Bearer tok-s3cret" {
			t.Errorf("Authorization = %v", h)
		}
	})
	t.Run("basic auth", func(t *testing.T) {
		f := newFakeNBI(t)
		c := fakeClient(t, f, genieacs.Options{Username: "nbi", Password: secret.New("pw-s3cret")})
		if _, err := c.Count(testCtx(t), ""); err != nil {
			t.Fatal(err)
		}
		if h := f.authHeaders(); len(h) != 1 || !strings.HasPrefix(h[0], "Basic ") {
			t.Errorf("Authorization = %v", h)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c, err := genieacs.New("http://"+addr, genieacs.Options{Token: secret.New("tok-s3cret"), Username: "u", Password: secret.New("pw-s3cret")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Device(testCtx(t), dev0)
		if !errors.Is(err, genieacs.ErrUnreachable) || !strings.Contains(err.Error(), "http://"+addr+"/devices/") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := newFakeNBI(t)
		f.latency = time.Second
		id := f.addDevice("000000")
		c := fakeClient(t, f, genieacs.Options{RequestTimeout: 50 * time.Millisecond, TaskTimeout: 10 * time.Millisecond})
		_, err := c.GetParameterValues(testCtx(t), id, "InternetGatewayDevice.DeviceInfo.UpTime")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("5xx with message", func(t *testing.T) {
		srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("MongoServerError: not primary"))
		})}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		c, _ := genieacs.New("http://"+ln.Addr().String(), genieacs.Options{})
		_, _, err = c.Search(testCtx(t), genieacs.Query{})
		if !errors.Is(err, genieacs.ErrServer) || !strings.Contains(err.Error(), "MongoServerError: not primary") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown device document", func(t *testing.T) {
		f := newFakeNBI(t)
		c := fakeClient(t, f, genieacs.Options{})
		if _, err := c.Device(testCtx(t), "nope"); !errors.Is(err, acs.ErrUnknownDevice) {
			t.Fatalf("err = %v", err)
		}
	})
}
