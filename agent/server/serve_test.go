package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/jobs"
	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/diagnostics"
	"fieldagent/testlab/fleet"
	"fieldagent/tr069/acs"
)

// syncBuffer is a bytes.Buffer safe for the log's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveEnv is an API over an ACS that a simulated fleet informs.
type serveEnv struct {
	api    *server.API
	url    string
	client *http.Client
	store  *store.Store
	fleet  *fleet.Fleet
	logs   *syncBuffer
	tokens map[auth.Role]secret.Secret
}

// startServe starts an ACS (with the store registry), n simulated
// gateways informing it, a job runner and the API, and waits until the
// ACS knows every gateway. diagnose, if not nil, replaces the TR-069
// diagnosis.
func startServe(t *testing.T, n int, diagnose server.DiagnoseFunc) *serveEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	st, err := store.Open(filepath.Join(t.TempDir(), "fieldagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := acs.New(acs.Config{
		Logger:                log.With("component", "acs"),
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return "lab", secret.New("cr-pass-for-test") },
		Registry:              server.StoreRegistry{Store: st},
		EventBuffer:           4*n + 64,
	})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	acsSrv := httptest.NewUnstartedServer(a)
	acsSrv.Config.ConnState = a.ConnState
	acsSrv.Start()
	t.Cleanup(acsSrv.Close)

	runner := &jobs.Runner{Store: st, Concurrency: 20, Logger: log.With("component", "jobs")}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = runner.Shutdown(sctx)
	})
	tokens := map[auth.Role]secret.Secret{}
	var list []auth.Token
	for _, role := range []auth.Role{auth.RoleRead, auth.RoleDiagnose} {
		plain, hash := auth.NewToken()
		tokens[role] = plain
		list = append(list, auth.Token{Name: string(role) + "-user", Hash: hash, Role: role})
	}
	authn, err := auth.New(list, auth.Options{Rate: 10000, Burst: 10000, Logger: log.With("component", "auth")})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.NewAPI(server.APIConfig{
		ACS: a, Store: st, Runner: runner, Auth: authn, Metrics: prometheus.NewRegistry(),
		Diagnose: diagnose, StepTimeout: 10 * time.Second, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	go api.Run(ctx)
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	fl, err := fleet.Start(ctx, fleet.Options{N: n, ACSURL: acsSrv.URL + "/", ConnReqUsername: "lab",
		ConnReqPassword: secret.New("cr-pass-for-test"), Logger: log.With("component", "fleet")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fl.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for len(a.Devices()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the ACS knows %d of %d gateways after 30s", len(a.Devices()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	api.SetReady()
	return &serveEnv{api: api, url: apiSrv.URL, client: apiSrv.Client(), store: st, fleet: fl, logs: logs, tokens: tokens}
}

// call sends a request with the role's token (none for "") and returns
// the status and body.
func (e *serveEnv) call(t *testing.T, role auth.Role, method, path, body string) (int, []byte) {
	t.Helper()
	return callAPI(t, e.client, e.url, e.tokens[role], method, path, body)
}

// sseEvents reads a job's event stream to its end and returns the event
// types in order and the last event.
func (e *serveEnv) sseEvents(t *testing.T, jobID string) ([]string, jobs.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/jobs/"+jobID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[auth.RoleRead].Reveal())
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var types []string
	var last jobs.Event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if typ, ok := strings.CutPrefix(line, "event: "); ok {
			types = append(types, typ)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if err := json.Unmarshal([]byte(data), &last); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
		}
	}
	return types, last
}

func TestServeFleetDiagnosis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 simulated gateways")
	}
	const n = 20
	e := startServe(t, n, nil)

	t.Run("auth", func(t *testing.T) {
		if code, body := e.call(t, "", "GET", "/api/v1/devices", ""); code != 401 || !strings.Contains(string(body), "missing bearer token") {
			t.Errorf("no token: %d %s", code, body)
		}
		if code, body := e.call(t, auth.RoleRead, "POST", "/api/v1/fleet/diagnose", `{"serial_prefix":"FLT"}`); code != 403 || !strings.Contains(string(body), `needs role \"diagnose\"`) {
			t.Errorf("read token on diagnose: %d %s", code, body)
		}
		if code, _ := e.call(t, auth.RoleRead, "POST", "/api/v1/devices/"+e.fleet.DeviceID(0)+"/diagnose", ""); code != 403 {
			t.Errorf("read token on device diagnose: %d", code)
		}
		if code, _ := e.call(t, "", "GET", "/metrics", ""); code != 401 {
			t.Errorf("metrics without token: %d", code)
		}
	})

	t.Run("devices", func(t *testing.T) {
		code, body := e.call(t, auth.RoleRead, "GET", "/api/v1/devices", "")
		var l struct {
			Devices []server.DeviceSummary `json:"devices"`
			Count   int                    `json:"count"`
		}
		if err := json.Unmarshal(body, &l); code != 200 || err != nil {
			t.Fatalf("devices: %d %v %s", code, err, body)
		}
		got := map[string]bool{}
		for _, d := range l.Devices {
			got[d.Serial] = true
			if !d.Online || d.Model != fleet.ProductClass { // the Inform has no ModelName: the product class stands in
				t.Errorf("device %+v: want online, model %q", d, fleet.ProductClass)
			}
		}
		for _, s := range e.fleet.Serials() {
			if !got[s] {
				t.Errorf("serial %s missing from the list", s)
			}
		}
		if l.Count != n || len(got) != n {
			t.Errorf("count %d, %d serials; want %d", l.Count, len(got), n)
		}
		for q, want := range map[string]int{"?serial=" + e.fleet.Serial(7): 1, "?q=flt1": 10, "?model=" + strings.ToLower(fleet.ProductClass): n, "?serial=NOPE": 0} {
			_, body := e.call(t, auth.RoleRead, "GET", "/api/v1/devices"+q, "")
			_ = json.Unmarshal(body, &l)
			if l.Count != want {
				t.Errorf("devices%s: %d, want %d", q, l.Count, want)
			}
		}
		if code, _ := e.call(t, auth.RoleRead, "GET", "/api/v1/devices/"+e.fleet.DeviceID(3), ""); code != 200 {
			t.Errorf("show device: %d", code)
		}
		if code, _ := e.call(t, auth.RoleRead, "GET", "/api/v1/devices/nope", ""); code != 404 {
			t.Errorf("show unknown device: %d", code)
		}
	})

	t.Run("fleet", func(t *testing.T) {
		code, body := e.call(t, auth.RoleDiagnose, "POST", "/api/v1/fleet/diagnose", `{"serial_prefix":"FLT","concurrency":5}`)
		var acc struct {
			JobID   string   `json:"job_id"`
			Devices []string `json:"devices"`
		}
		if err := json.Unmarshal(body, &acc); code != 202 || err != nil || acc.JobID == "" || len(acc.Devices) != n {
			t.Fatalf("fleet diagnose: %d %v %s", code, err, body)
		}
		types, last := e.sseEvents(t, acc.JobID)
		if len(types) == 0 || types[len(types)-1] != jobs.EventJobFinished || last.State != store.JobDone {
			t.Fatalf("events %v, last %+v: want job_finished, done", types, last)
		}

		code, body = e.call(t, auth.RoleRead, "GET", "/api/v1/jobs/"+acc.JobID, "")
		var jv server.JobView
		if err := json.Unmarshal(body, &jv); code != 200 || err != nil {
			t.Fatalf("job: %d %v %s", code, err, body)
		}
		if jv.State != store.JobDone || jv.ResultCount != n || jv.Total != n || jv.Done != n || jv.CreatedBy != "diagnose-user" {
			t.Errorf("job %s: state %s, %d results, total %d, done %d, by %q", jv.ID, jv.State, jv.ResultCount, jv.Total, jv.Done, jv.CreatedBy)
		}
		stored, err := e.store.JobResults(context.Background(), acc.JobID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range stored {
			seen[r.DeviceID] = true
			var out diagrun.Outcome
			if err := json.Unmarshal(r.Result, &out); err != nil || len(out.Results) == 0 {
				t.Errorf("result of %s (%s, %q): %v, %d probe results", r.DeviceID, r.State, r.Error, err, len(out.Results))
			}
		}
		if len(stored) != n || len(seen) != n {
			t.Errorf("%d stored results for %d devices, want %d", len(stored), len(seen), n)
		}

		// The job metrics are updated by a watcher of the job; give it a moment.
		var metrics string
		for range 100 {
			_, b := e.call(t, auth.RoleRead, "GET", "/metrics", "")
			metrics = string(b)
			if strings.Contains(metrics, `fieldagent_jobs_finished_total{state="done"} 1`) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, want := range []string{
			"fieldagent_acs_devices_known 20",
			"fieldagent_acs_devices_online 20",
			`fieldagent_jobs_submitted_total{kind="fleet_diagnose"} 1`,
			`fieldagent_jobs_finished_total{state="done"} 1`,
			`fieldagent_job_device_results_total{state="done"} 20`,
			"fieldagent_jobs_running 0",
			`fieldagent_acs_informs_total{event="0 BOOTSTRAP"} 20`,
			`probe_success{device="` + e.fleet.DeviceID(0) + `",probe="line"}`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
		if !regexp.MustCompile(`fieldagent_diagnoses_total\{status="[a-z]+"\} 20`).MatchString(metrics) {
			t.Errorf("metrics lack 20 diagnoses:\n%s", grepLines(metrics, "fieldagent_diagnoses_total"))
		}
	})

	t.Run("one device", func(t *testing.T) {
		code, body := e.call(t, auth.RoleDiagnose, "POST", "/api/v1/devices/"+e.fleet.DeviceID(1)+"/diagnose", "")
		var acc struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(body, &acc); code != 202 || err != nil {
			t.Fatalf("diagnose: %d %v %s", code, err, body)
		}
		if _, last := e.sseEvents(t, acc.JobID); last.Type != jobs.EventJobFinished || last.Done != 1 {
			t.Errorf("last event %+v", last)
		}
		if code, _ := e.call(t, auth.RoleDiagnose, "POST", "/api/v1/devices/nope/diagnose", ""); code != 404 {
			t.Errorf("unknown device: %d", code)
		}
	})

	t.Run("no token in logs", func(t *testing.T) {
		logs := e.logs.String()
		if !strings.Contains(logs, `"caller":"diagnose-user"`) {
			t.Fatalf("the access log lacks the caller")
		}
		for role, tok := range e.tokens {
			if strings.Contains(logs, tok.Reveal()) || strings.Contains(logs, tok.Reveal()[len(auth.TokenPrefix):][:16]) {
				t.Errorf("the %s token appears in the log", role)
			}
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestServeFleetConcurrency checks that a fleet job runs at most its
// concurrency's devices at once, with a fake diagnosis.
func TestServeFleetConcurrency(t *testing.T) {
	const n = 12
	var running, peak atomic.Int32
	release := make(chan struct{})
	e := startServe(t, n, func(ctx context.Context, d acs.Device) (diagrun.Outcome, error) {
		now := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
		}
		select {
		case <-release:
		case <-ctx.Done():
			return diagrun.Outcome{}, ctx.Err()
		}
		return diagrun.Outcome{Results: []diagnostics.Result{{Probe: "fake", Target: d.ID, Success: true}}}, nil
	})
	code, body := e.call(t, auth.RoleDiagnose, "POST", "/api/v1/fleet/diagnose", fmt.Sprintf(`{"devices":[%q,%q,%q,%q,%q,%q,%q,%q,%q,%q,%q,%q],"concurrency":3}`,
		e.fleet.Serial(0), e.fleet.DeviceID(1), e.fleet.Serial(2), e.fleet.Serial(3), e.fleet.Serial(4), e.fleet.Serial(5),
		e.fleet.Serial(6), e.fleet.Serial(7), e.fleet.Serial(8), e.fleet.Serial(9), e.fleet.Serial(10), e.fleet.Serial(11)))
	var acc struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(body, &acc); code != 202 || err != nil {
		t.Fatalf("fleet diagnose: %d %v %s", code, err, body)
	}
	for deadline := time.Now().Add(10 * time.Second); running.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a fourth would start now if the limit did not hold
	close(release)
	if _, last := e.sseEvents(t, acc.JobID); last.State != store.JobDone || last.Done != n {
		t.Errorf("last event %+v", last)
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}
}

func TestServeBadRequests(t *testing.T) {
	e := startServe(t, 1, func(context.Context, acs.Device) (diagrun.Outcome, error) { return diagrun.Outcome{}, nil })
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"neither", "POST", "/api/v1/fleet/diagnose", `{}`, 400, "one of devices, serial_prefix or query"},
		{"both", "POST", "/api/v1/fleet/diagnose", `{"devices":["x"],"serial_prefix":"F"}`, 400, "one of devices, serial_prefix or query"},
		{"query without GenieACS", "POST", "/api/v1/fleet/diagnose", `{"query":{"_tags":"vip"}}`, 400, "query selects devices on GenieACS"},
		{"unknown field", "POST", "/api/v1/fleet/diagnose", `{"serial":"F"}`, 400, "serial"},
		{"malformed", "POST", "/api/v1/fleet/diagnose", `{"devices":`, 400, ""},
		{"negative concurrency", "POST", "/api/v1/fleet/diagnose", `{"serial_prefix":"FLT","concurrency":-1}`, 400, "concurrency"},
		{"unknown devices", "POST", "/api/v1/fleet/diagnose", `{"devices":["nope"]}`, 404, "nope"},
		{"no match", "POST", "/api/v1/fleet/diagnose", `{"serial_prefix":"XYZ"}`, 404, "XYZ"},
		{"oversized", "POST", "/api/v1/fleet/diagnose", `{"devices":["` + strings.Repeat("a", 2<<20) + `"]}`, 413, "limit"},
		{"unknown job", "GET", "/api/v1/jobs/job-nope", "", 404, "job-nope"},
		{"unknown job events", "GET", "/api/v1/jobs/job-nope/events", "", 404, ""},
		{"no route", "GET", "/api/v2/devices", "", 404, "no route"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.call(t, auth.RoleDiagnose, tc.method, tc.path, tc.body)
			if code != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("%d %s, want %d containing %q", code, body, tc.status, tc.want)
			}
		})
	}
}

func TestServeHealth(t *testing.T) {
	e := startServe(t, 1, nil)
	get := func(path string) int {
		code, _ := e.call(t, "", "GET", path, "")
		return code
	}
	if c := get("/healthz"); c != 200 {
		t.Errorf("healthz %d", c)
	}
	if c := get("/readyz"); c != 200 {
		t.Errorf("readyz when ready: %d", c)
	}
	e.api.SetShuttingDown()
	if c := get("/readyz"); c != 503 {
		t.Errorf("readyz when shutting down: %d", c)
	}
	if c := get("/healthz"); c != 200 {
		t.Errorf("healthz when shutting down: %d", c)
	}
}
