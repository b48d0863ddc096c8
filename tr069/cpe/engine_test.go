package cpe_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/datamodel"
	"fieldagent/tr069/internal/httpauth"
)

const (
	igd = "InternetGatewayDevice."
	ms  = igd + "ManagementServer."
)

var devID = cwmp.DeviceIdStruct{Manufacturer: "Test", OUI: "00AABB", ProductClass: "HG", SerialNumber: "SN1"}

const deviceID = "00AABB-HG-SN1"

// creds is a mutable credential pair for ACS callbacks.
type creds struct {
	mu   sync.Mutex
	user string
	pass string
}

func (c *creds) get() (string, secret.Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user, secret.New(c.pass)
}

func (c *creds) set(user, pass string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.user, c.pass = user, pass
}

// startACS runs a tr069/acs server on loopback behind wrap (nil: none).
func startACS(t *testing.T, cfg acs.Config, wrap func(http.Handler) http.Handler) (*acs.Server, string) {
	t.Helper()
	a := acs.New(cfg)
	var h http.Handler = a
	if wrap != nil {
		h = wrap(a)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return a, srv.URL + "/cwmp"
}

// startCPE runs an engine on the embedded e8 model.
func startCPE(t *testing.T, cfg cpe.Config) *cpe.Engine {
	t.Helper()
	m, err := datamodel.Builtin(datamodel.E8Gateway)
	if err != nil {
		t.Fatal(err)
	}
	tree := cpe.NewTreeFromModel(m)
	cfg.DeviceId = devID
	cfg.ConnReqAddr = "127.0.0.1:0"
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 20 * time.Millisecond
	}
	e, err := cpe.New(cfg, tree)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	<-e.Ready()
	return e
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func crAuth(user, pass string) func(string) (string, secret.Secret) {
	return func(string) (string, secret.Secret) { return user, secret.New(pass) }
}

func waitInform(t *testing.T, ctx context.Context, a *acs.Server, event string, after time.Time) acs.Device {
	t.Helper()
	d, err := a.WaitInform(ctx, deviceID, event, after)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestValueChange checks active notification (a session at once, with
// "4 VALUE CHANGE" and the value) and passive notification (the value
// rides along with the next Inform).
func TestValueChange(t *testing.T) {
	ctx := testCtx(t)
	a, url := startACS(t, acs.Config{ConnectionRequestAuth: crAuth("cr", "pw")}, nil)
	e := startCPE(t, cpe.Config{ACSURL: url, ConnReqUsername: "cr", ConnReqPassword: secret.New("pw")})
	d := waitInform(t, ctx, a, cpe.EventBootstrap, time.Time{})
	if !slices.Contains(d.LastEvents, cpe.EventBoot) || d.Params[ms+"ConnectionRequestURL"] != e.ConnectionRequestURL() {
		t.Fatalf("boot inform: events %v, params %v", d.LastEvents, d.Params)
	}
	ssid := igd + "LANDevice.1.WLANConfiguration.1.SSID"
	ntp := igd + "Time.NTPServer2"
	if _, err := a.Do(ctx, deviceID, &cwmp.SetParameterAttributes{ParameterList: []cwmp.SetParameterAttributesStruct{
		{Name: ssid, NotificationChange: true, Notification: 2},
		{Name: ntp, NotificationChange: true, Notification: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	resp, err := a.Do(ctx, deviceID, &cwmp.GetParameterAttributes{ParameterNames: []string{ssid}})
	if err != nil {
		t.Fatal(err)
	}
	if gpa := resp.(*cwmp.GetParameterAttributesResponse); len(gpa.ParameterList) != 1 || gpa.ParameterList[0].Notification != 2 {
		t.Fatalf("GetParameterAttributes = %+v", gpa)
	}
	if err := a.WaitIdle(ctx, deviceID); err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	if err := e.Tree().SetValue(ntp, "ntp2.example"); err != nil { // passive: no session yet
		t.Fatal(err)
	}
	if err := e.Tree().SetValue(ssid, "ChinaNet-new"); err != nil { // active: a session now
		t.Fatal(err)
	}
	d = waitInform(t, ctx, a, cpe.EventValueChange, before)
	if d.Params[ssid] != "ChinaNet-new" || d.Params[ntp] != "ntp2.example" {
		t.Fatalf("VALUE CHANGE inform params: %v", d.Params)
	}
	if slices.Contains(d.LastEvents, cpe.EventBootstrap) {
		t.Fatalf("BOOTSTRAP again: %v", d.LastEvents)
	}

	// A passive change alone waits for the next session (here a
	// connection request).
	if err := a.WaitIdle(ctx, deviceID); err != nil {
		t.Fatal(err)
	}
	before = time.Now()
	if err := e.Tree().SetValue(ntp, "ntp3.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetParameterValues(ctx, deviceID, ms+"PeriodicInformEnable"); err != nil {
		t.Fatal(err)
	}
	d = waitInform(t, ctx, a, cpe.EventConnectionRequest, before)
	if !slices.Contains(d.LastEvents, cpe.EventValueChange) || d.Params[ntp] != "ntp3.example" {
		t.Fatalf("connection request inform: events %v, params %v", d.LastEvents, d.Params)
	}
}

// TestBootstrapOnURLChange moves the CPE to a second ACS, which must see
// "0 BOOTSTRAP".
func TestBootstrapOnURLChange(t *testing.T) {
	ctx := testCtx(t)
	a1, url1 := startACS(t, acs.Config{ConnectionRequestAuth: crAuth("", "")}, nil)
	a2, url2 := startACS(t, acs.Config{}, nil)
	e := startCPE(t, cpe.Config{ACSURL: url1})
	waitInform(t, ctx, a1, cpe.EventBootstrap, time.Time{})
	if err := a1.SetParameterValues(ctx, deviceID, []cwmp.ParameterValueStruct{{Name: ms + "URL", Value: url2}}, "move"); err != nil {
		t.Fatal(err)
	}
	d := waitInform(t, ctx, a2, cpe.EventBootstrap, time.Time{})
	if slices.Contains(d.LastEvents, cpe.EventBoot) || d.Params[ms+"ParameterKey"] != "move" {
		t.Fatalf("inform to new ACS: events %v, params %v", d.LastEvents, d.Params)
	}
	if e.ACSURL() != url2 {
		t.Fatalf("ACSURL = %s", e.ACSURL())
	}
}

// TestACSAuth runs sessions against an ACS that demands Digest (tr069/acs
// CPEAuth) or Basic (a wrapper), and changes the password over CWMP.
func TestACSAuth(t *testing.T) {
	t.Run("digest", func(t *testing.T) {
		ctx := testCtx(t)
		acsCreds := &creds{user: "cpe", pass: "one"}
		a, url := startACS(t, acs.Config{
			ConnectionRequestAuth: crAuth("", ""),
			CPEAuth: func(string) (string, secret.Secret, bool) {
				u, p := acsCreds.get()
				return u, p, true
			},
		}, nil)
		startCPE(t, cpe.Config{ACSURL: url, ACSUsername: "cpe", ACSPassword: secret.New("one")})
		waitInform(t, ctx, a, cpe.EventBootstrap, time.Time{})
		if err := a.SetParameterValues(ctx, deviceID, []cwmp.ParameterValueStruct{{Name: ms + "Password", Value: "two"}}, ""); err != nil {
			t.Fatal(err)
		}
		if err := a.WaitIdle(ctx, deviceID); err != nil {
			t.Fatal(err)
		}
		acsCreds.set("cpe", "two")
		before := time.Now()
		if _, err := a.GetParameterValues(ctx, deviceID, ms+"URL"); err != nil {
			t.Fatal(err)
		}
		waitInform(t, ctx, a, cpe.EventConnectionRequest, before)
	})
	t.Run("basic", func(t *testing.T) {
		ctx := testCtx(t)
		var mu sync.Mutex
		var sawAuth bool
		a, url := startACS(t, acs.Config{}, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				u, p, ok := r.BasicAuth()
				if !ok || u != "cpe" || p != "one" {
					w.Header().Set("WWW-Authenticate", `Basic realm="acs"`)
					http.Error(w, "auth", http.StatusUnauthorized)
					return
				}
				mu.Lock()
				sawAuth = true
				mu.Unlock()
				h.ServeHTTP(w, r)
			})
		})
		startCPE(t, cpe.Config{ACSURL: url, ACSUsername: "cpe", ACSPassword: secret.New("one")})
		waitInform(t, ctx, a, cpe.EventBootstrap, time.Time{})
		mu.Lock()
		defer mu.Unlock()
		if !sawAuth {
			t.Fatal("no Basic credentials seen")
		}
	})
}

// TestConnectionRequestCredentials changes the connection request
// credentials over CWMP: the old ones stop working, the new ones work.
func TestConnectionRequestCredentials(t *testing.T) {
	ctx := testCtx(t)
	a, url := startACS(t, acs.Config{ConnectionRequestAuth: crAuth("cr", "old")}, nil)
	e := startCPE(t, cpe.Config{ACSURL: url, ConnReqUsername: "cr", ConnReqPassword: secret.New("old")})
	waitInform(t, ctx, a, cpe.EventBootstrap, time.Time{})
	if err := a.SetParameterValues(ctx, deviceID, []cwmp.ParameterValueStruct{
		{Name: ms + "ConnectionRequestUsername", Value: "cr2"}, {Name: ms + "ConnectionRequestPassword", Value: "new"},
	}, ""); err != nil {
		t.Fatal(err)
	}
	get := func(user, pass string) int {
		c := &httpauth.Client{Username: user, Password: secret.New(pass)}
		resp, err := c.Do(ctx, http.MethodGet, e.ConnectionRequestURL(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("cr", "old"); code != http.StatusUnauthorized {
		t.Fatalf("old credentials: HTTP %d", code)
	}
	if code := get("cr2", "new"); code != http.StatusOK {
		t.Fatalf("new credentials: HTTP %d", code)
	}
}

// TestScheduledPeriodicDiagnostics covers ScheduleInform, a run-time change
// of the periodic interval, and DiagnosticsComplete.
func TestScheduledPeriodicDiagnostics(t *testing.T) {
	ctx := testCtx(t)
	a, url := startACS(t, acs.Config{ConnectionRequestAuth: crAuth("", "")}, nil)
	e := startCPE(t, cpe.Config{ACSURL: url})
	waitInform(t, ctx, a, cpe.EventBootstrap, time.Time{})

	before := time.Now()
	if _, err := a.Do(ctx, deviceID, &cwmp.ScheduleInform{DelaySeconds: 1, CommandKey: "sched-1"}); err != nil {
		t.Fatal(err)
	}
	d := waitInform(t, ctx, a, cpe.EventScheduled, before)
	if !slices.Contains(d.LastEvents, cpe.EventMScheduleInform) {
		t.Fatalf("scheduled inform events: %v", d.LastEvents)
	}

	before = time.Now()
	if err := e.DiagnosticsComplete(ctx); err != nil {
		t.Fatal(err)
	}
	waitInform(t, ctx, a, cpe.EventDiagnosticsComplete, before)

	before = time.Now()
	if err := a.SetParameterValues(ctx, deviceID, []cwmp.ParameterValueStruct{
		{Name: ms + "PeriodicInformEnable", Value: "1", Type: "xsd:boolean"},
		{Name: ms + "PeriodicInformInterval", Value: "1", Type: "xsd:unsignedInt"},
	}, ""); err != nil {
		t.Fatal(err)
	}
	waitInform(t, ctx, a, cpe.EventPeriodic, before)
}

// TestUpload uploads the configuration with the default HTTP PUT uploader.
func TestUpload(t *testing.T) {
	ctx := testCtx(t)
	got := make(chan string, 1)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "up" || p != "up-pw-7f3a" || r.Method != http.MethodPut {
			w.Header().Set("WWW-Authenticate", `Basic realm="files"`)
			http.Error(w, "auth", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- string(b):
		default:
		}
	}))
	defer files.Close()
	a, url := startACS(t, acs.Config{ConnectionRequestAuth: crAuth("", "")}, nil)
	startCPE(t, cpe.Config{ACSURL: url})
	waitInform(t, ctx, a, cpe.EventBootstrap, time.Time{})
	if _, err := a.Do(ctx, deviceID, &cwmp.Upload{CommandKey: "up-1", FileType: "1 Vendor Configuration File", URL: files.URL + "/cfg", Username: "up", Password: "up-pw-7f3a"}); err != nil {
		t.Fatal(err)
	}
	tc, err := a.WaitTransferComplete(ctx, deviceID, "up-1")
	if err != nil {
		t.Fatal(err)
	}
	if tc.FaultStruct.FaultCode != 0 {
		t.Fatalf("TransferComplete fault %+v", tc.FaultStruct)
	}
	select {
	case body := <-got:
		if !strings.Contains(body, igd+"DeviceInfo.Manufacturer=") || strings.Contains(body, "up-pw-7f3a") {
			t.Fatalf("uploaded config:\n%s", body)
		}
	case <-ctx.Done():
		t.Fatal("no upload")
	}
}

// TestDefer checks that a function deferred from OnSet runs once the
// session that carried the SetParameterValues has ended (the ACS no longer
// holds it), and that it can report "8 DIAGNOSTICS COMPLETE" from there.
func TestDefer(t *testing.T) {
	ctx := testCtx(t)
	a, url := startACS(t, acs.Config{ConnectionRequestAuth: crAuth("", "")}, nil)
	var eng atomic.Pointer[cpe.Engine]
	idle := make(chan error, 1)
	e := startCPE(t, cpe.Config{ACSURL: url, OnSet: func(context.Context, []cwmp.ParameterValueStruct) error {
		e := eng.Load()
		e.Defer(func(ctx context.Context) {
			done, cancel := context.WithCancel(ctx)
			cancel() // WaitIdle answers nil at once only if the ACS ended the session
			idle <- a.WaitIdle(done, deviceID)
			go func() { _ = e.DiagnosticsComplete(ctx) }()
		})
		return nil
	}})
	eng.Store(e)
	e.Defer(nil) // ignored
	waitInform(t, ctx, a, cpe.EventBootstrap, time.Time{})
	before := time.Now()
	if err := a.SetParameterValues(ctx, deviceID, []cwmp.ParameterValueStruct{
		{Name: igd + "DeviceInfo.ProvisioningCode", Value: "DIAG", Type: "xsd:string"},
	}, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-idle:
		if err != nil {
			t.Fatalf("the deferred function ran while the session was open: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the deferred function never ran")
	}
	waitInform(t, ctx, a, cpe.EventDiagnosticsComplete, before)
}
