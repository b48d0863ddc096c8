package acs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
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
	"fieldagent/tr069/internal/httpauth"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acs.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestHTTPSWithAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	s := acs.New(acs.Config{
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return crUser, secret.New(crPass) },
		CPEAuth: func(string) (string, secret.Secret, bool) {
			return "cpe", secret.New("cpe-pass"), true
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- s.Serve(serveCtx, ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}()

	for _, tc := range []struct {
		name   string
		basic  bool
		serial string
	}{{"digest", false, "TLS1"}, {"basic over TLS", true, "TLS2"}} {
		t.Run(tc.name, func(t *testing.T) {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
			e, err := cpe.New(cpe.Config{
				ACSURL:      "https://" + ln.Addr().String() + "/cwmp",
				DeviceId:    cwmp.DeviceIdStruct{Manufacturer: "Test", OUI: "00AABB", ProductClass: "HG", SerialNumber: tc.serial},
				ACSUsername: "cpe", ACSPassword: secret.New("cpe-pass"),
				ConnReqAddr: "127.0.0.1:0", ConnReqUsername: crUser, ConnReqPassword: secret.New(crPass),
				HTTPClient: client, RetryBase: 50 * time.Millisecond,
			}, gatewayTree())
			if err != nil {
				t.Fatal(err)
			}
			if tc.basic {
				// A CPE that sends Basic up front (no challenge round trip).
				client.Transport = basicTransport{next: client.Transport, user: "cpe", pass: secret.New("cpe-pass")}
			}
			ectx, ecancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); _ = e.Run(ectx) }()
			defer func() { ecancel(); <-done }()
			id := "00AABB-HG-" + tc.serial
			if _, err := s.WaitInform(ctx, id, acs.EventBootstrap, time.Time{}); err != nil {
				t.Fatal(err)
			}
			if err := s.WaitIdle(ctx, id); err != nil {
				t.Fatal(err)
			}
			vals, err := s.GetParameterValues(ctx, id, "InternetGatewayDevice.DeviceInfo.SoftwareVersion")
			if err != nil || len(vals) != 1 || vals[0].Value != "V1.0" {
				t.Fatalf("GetParameterValues over HTTPS = %v, %v", vals, err)
			}
		})
	}
	stop()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

type basicTransport struct {
	next http.RoundTripper
	user string
	pass secret.Secret
}

func (b basicTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", httpauth.BasicAuthorization(b.user, b.pass))
	return b.next.RoundTrip(r)
}

// fakeRegistry is an in-memory Registry; block, if set, holds SaveDevice.
type fakeRegistry struct {
	mu    sync.Mutex
	saved map[string][]byte // JSON, as the agent's adapter stores it
	saves int
	block chan struct{}
}

func (f *fakeRegistry) SaveDevice(ctx context.Context, d acs.Device) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saved[d.ID] = data
	f.saves++
	return nil
}

func (f *fakeRegistry) LoadDevices(context.Context) ([]acs.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []acs.Device
	for _, data := range f.saved {
		var d acs.Device
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func TestRegistry(t *testing.T) {
	ctx := testCtx(t)
	reg := &fakeRegistry{saved: map[string][]byte{}, block: make(chan struct{})}
	l := startLab(t, 1, acs.Config{Registry: reg}, nil)
	if err := l.acs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The store is stuck, yet the boot session completes.
	d := l.waitBoot(t, ctx, "SN000")
	if err := l.acs.WaitIdle(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.acs.GetParameterValues(ctx, d.ID, "InternetGatewayDevice.DeviceInfo.UpTime"); err != nil {
		t.Fatal(err)
	}
	close(reg.block)
	if err := l.acs.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	reg.mu.Lock()
	saves := reg.saves
	reg.mu.Unlock()
	if saves == 0 {
		t.Fatal("nothing saved")
	}
	before, _ := l.acs.Device(d.ID)

	// A new ACS (agent restart) knows the device from the registry.
	s2 := acs.New(acs.Config{Registry: reg})
	if _, ok := s2.Device(d.ID); ok {
		t.Fatal("known before Start")
	}
	if err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := s2.Device(d.ID)
	if !ok {
		t.Fatal("not loaded")
	}
	if !got.FirstInform.Equal(before.FirstInform) || got.ConnectionRequestURL != before.ConnectionRequestURL ||
		len(got.Events) == 0 || got.Events[0].Events[0].EventCode != acs.EventBootstrap || got.Params["InternetGatewayDevice.DeviceInfo.SoftwareVersion"] != "V1.0" {
		t.Fatalf("loaded %+v, saved %+v", got, before)
	}
	// WaitInform sees history from the registry.
	if _, err := s2.WaitInform(ctx, d.ID, acs.EventBootstrap, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func TestRegistryLoadError(t *testing.T) {
	s := acs.New(acs.Config{Registry: errRegistry{}})
	if err := s.Start(testCtx(t)); !errors.Is(err, acs.ErrRegistry) {
		t.Fatalf("err = %v", err)
	}
}

type errRegistry struct{}

func (errRegistry) SaveDevice(context.Context, acs.Device) error { return nil }
func (errRegistry) LoadDevices(context.Context) ([]acs.Device, error) {
	return nil, errors.New("disk on fire")
}

func TestEventsFlow(t *testing.T) {
	l := startLab(t, 1, acs.Config{}, nil)
	ctx := testCtx(t)
	sub := l.acs.Subscribe(ctx)
	id := l.waitBoot(t, ctx, "SN000").ID
	codes := []string{
		acs.EventBootstrap, acs.EventBoot, acs.EventPeriodic, acs.EventValueChange, acs.EventConnectionRequest,
		acs.EventTransferComplete, acs.EventDiagnosticsComplete, acs.EventMReboot, acs.EventMDownload,
		acs.EventCTBind, acs.EventCTSTBBind, acs.EventCTAccountChange, acs.EventCTAlarm,
	}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			before := time.Now()
			if err := l.engines[0].Inform(ctx, cwmp.EventStruct{EventCode: code, CommandKey: "k"}); err != nil {
				t.Fatal(err)
			}
			d, err := l.acs.WaitInform(ctx, id, code, before)
			if err != nil {
				t.Fatal(err)
			}
			if last := d.Events[len(d.Events)-1]; last.Events[0].EventCode != code {
				t.Fatalf("last events %+v", last)
			}
		})
	}
	// The subscriber saw the boot Inform and every one above, in order.
	want := append([]string{acs.EventBootstrap}, codes...)
	for i, code := range want {
		select {
		case ev := <-sub:
			if ev.DeviceID != id || ev.Events[0].EventCode != code || ev.Params["InternetGatewayDevice.DeviceInfo.SoftwareVersion"] != "V1.0" {
				t.Fatalf("event %d = %+v, want %s", i, ev, code)
			}
		case <-ctx.Done():
			t.Fatalf("event %d (%s) not delivered", i, code)
		}
	}
}

func TestSubscribeDropsForSlowSubscriber(t *testing.T) {
	s := acs.New(acs.Config{SessionHold: -1, EventBuffer: 2})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(testCtx(t))
	slow := s.Subscribe(ctx)
	for i := 0; i < 5; i++ {
		c := newRawCPE(t, srv.URL)
		c.post(informBody(t, fmt.Sprint("D", i), ""), nil)
		c.post(nil, nil)
	}
	if got := s.DroppedEvents(); got != 3 {
		t.Fatalf("dropped %d, want 3", got)
	}
	cancel()
	n := 0
	for range slow { // closed once ctx ends
		n++
	}
	if n != 2 {
		t.Fatalf("buffered %d, want 2", n)
	}
}

func TestFileServerDownload(t *testing.T) {
	fs := acs.NewFileServer(t.TempDir(), nil)
	fs.AddBlob("fw/e8-v2.bin", []byte("FIRMWARE-IMAGE"))
	files := httptest.NewServer(http.StripPrefix("/files/", fs))
	defer files.Close()

	fetched := make(chan string, 4)
	l := startLab(t, 1, acs.Config{}, func(c *cpe.Config) {
		c.OnDownload = func(ctx context.Context, d cwmp.Download) error {
			hc := &httpauth.Client{Username: d.Username, Password: secret.New(d.Password)}
			resp, err := hc.Do(ctx, http.MethodGet, d.URL, nil, nil)
			if err != nil {
				return cwmp.NewFault(cwmp.FaultDownloadContactServerFailure, "")
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			switch resp.StatusCode {
			case http.StatusOK:
				fetched <- string(body)
				return nil
			case http.StatusUnauthorized:
				return cwmp.NewFault(cwmp.FaultFileTransferAuthFailure, "")
			}
			return cwmp.NewFault(cwmp.FaultDownloadAccessFileFailure, "")
		}
	})
	ctx := testCtx(t)
	id := l.waitBoot(t, ctx, "SN000").ID
	fs.Register("fw/e8-v2.bin", id, "dl-"+id, secret.New("dl-pass"))
	tests := []struct {
		name, key, file, pass string
		code                  int
	}{
		{"registered", "fw-ok", "fw/e8-v2.bin", "dl-pass", 0},
		{"wrong password", "fw-badpass", "fw/e8-v2.bin", "nope", cwmp.FaultFileTransferAuthFailure},
		{"unregistered file", "fw-missing", "fw/other.bin", "dl-pass", cwmp.FaultDownloadAccessFileFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := l.acs.Download(ctx, id, cwmp.Download{
				CommandKey: tc.key, FileType: "1 Firmware Upgrade Image", URL: files.URL + "/files/" + tc.file,
				Username: "dl-" + id, Password: tc.pass, FileSize: 14,
			})
			if err != nil || resp.Status != 1 {
				t.Fatalf("Download = %+v, %v", resp, err)
			}
			tcm, err := l.acs.WaitTransferComplete(ctx, id, tc.key)
			if tc.code == 0 {
				if err != nil || tcm.FaultStruct.FaultCode != 0 {
					t.Fatalf("transfer: %+v %v", tcm, err)
				}
				if got := <-fetched; got != "FIRMWARE-IMAGE" {
					t.Fatalf("CPE fetched %q", got)
				}
				return
			}
			var f *cwmp.Fault
			if !errors.As(err, &f) || f.Code != tc.code || !errors.Is(err, acs.ErrTransferFailed) {
				t.Fatalf("err = %v, want fault %d", err, tc.code)
			}
		})
	}
}

func TestFileServerAuth(t *testing.T) {
	dir := t.TempDir()
	if err := writeFile(dir+"/cfg.xml", "<config/>"); err != nil {
		t.Fatal(err)
	}
	fs := acs.NewFileServer(dir, nil)
	fs.Register("cfg.xml", "dev1", "u1", secret.New("p1"))
	fs.Register("../cfg.xml", "dev2", "", secret.Secret{}) // cleaned to cfg.xml, public
	fs.Unregister("cfg.xml", "dev2")
	srv := httptest.NewServer(fs)
	defer srv.Close()
	ctx := testCtx(t)
	tests := []struct {
		name  string
		path  string
		basic bool
		user  string
		pass  string
		want  int
	}{
		{"digest", "/cfg.xml", false, "u1", "p1", 200},
		{"digest wrong password", "/cfg.xml", false, "u1", "p2", 401},
		{"basic on plain HTTP", "/cfg.xml", true, "u1", "p1", 401},
		{"traversal", "/../cfg.xml", false, "u1", "p1", 200},
		{"unregistered", "/etc/passwd", false, "u1", "p1", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &httpauth.Client{Username: tc.user, Password: secret.New(tc.pass)}
			var hdr http.Header
			if tc.basic {
				c = &httpauth.Client{}
				hdr = http.Header{"Authorization": {httpauth.BasicAuthorization(tc.user, secret.New(tc.pass))}}
			}
			resp, err := c.Do(ctx, http.MethodGet, srv.URL+tc.path, nil, hdr)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 && !strings.Contains(string(body), "<config/>") {
				t.Fatalf("body %q", body)
			}
		})
	}
}

func TestTwoHundredDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("200 engines")
	}
	const n = 200
	l := startLab(t, n, acs.Config{}, nil)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serial := fmt.Sprintf("SN%03d", i)
			id := "00AABB-HG-" + serial
			if _, err := l.acs.WaitInform(ctx, id, acs.EventBootstrap, time.Time{}); err != nil {
				errs <- err
				return
			}
			vals, err := l.acs.GetParameterValues(ctx, id, "InternetGatewayDevice.DeviceInfo.SerialNumber")
			if err != nil || len(vals) != 1 {
				errs <- fmt.Errorf("%s: %v %v", serial, vals, err)
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
}

// TestEachDevice: every device once, and fn's false stops the walk.
func TestEachDevice(t *testing.T) {
	a := acs.New(acs.Config{Registry: fixedRegistry{
		{ID: "OUI-PC-A", DeviceId: cwmp.DeviceIdStruct{OUI: "OUI", ProductClass: "PC", SerialNumber: "A"}, Params: map[string]string{"x": "1"}},
		{ID: "OUI-PC-B", DeviceId: cwmp.DeviceIdStruct{OUI: "OUI", ProductClass: "PC", SerialNumber: "B"}},
		{ID: "OUI-PC-C", DeviceId: cwmp.DeviceIdStruct{OUI: "OUI", ProductClass: "PC", SerialNumber: "C"}},
	}})
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	a.EachDevice(func(d *acs.Device) bool { seen[d.ID]++; return true })
	if len(seen) != 3 || seen["OUI-PC-A"] != 1 || seen["OUI-PC-B"] != 1 || seen["OUI-PC-C"] != 1 {
		t.Errorf("EachDevice saw %v, want each of the 3 once", seen)
	}
	n := 0
	a.EachDevice(func(*acs.Device) bool { n++; return false })
	if n != 1 {
		t.Errorf("EachDevice went on after false: %d calls", n)
	}
}

// fixedRegistry is a registry that loads its devices and saves nothing.
type fixedRegistry []acs.Device

func (fixedRegistry) SaveDevice(context.Context, acs.Device) error { return nil }

func (r fixedRegistry) LoadDevices(context.Context) ([]acs.Device, error) { return r, nil }
