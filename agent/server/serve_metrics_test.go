package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/jobs"
	"fieldagent/agent/order"
	"fieldagent/agent/secret"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/agent/workflow"
	"fieldagent/diagnostics"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// lockedBuffer is a bytes.Buffer safe for the log's concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// metricsLab is the API of `fieldagent serve` as cmd/fieldagent wires it
// — one registry holding the ACS's session metrics (its Observer), the
// store's gauges and the API's own — over an ACS that a testlab site's e8
// gateway informs.
type metricsLab struct {
	acs       *acs.Server
	acsURL    string
	url       string
	client    *http.Client
	store     *store.Store
	tokens    map[auth.Role]secret.Secret
	gatewayID string
	logs      *lockedBuffer
}

const (
	labCRUser = "lab"
	labCRPass = "cr-pass-for-test"
)

// startMetricsLab starts the site of cfg (its ACS and connection request
// fields are filled in) and the API; edit, if set, edits the API's config.
func startMetricsLab(t *testing.T, cfg testlab.Config, edit func(*APIConfig)) *metricsLab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	st, err := store.Open(filepath.Join(t.TempDir(), "fieldagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	obs, err := NewACSMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(NewStoreCollector(st, 0, log))
	a := acs.New(acs.Config{
		Logger:                log.With("component", "acs"),
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return labCRUser, secret.New(labCRPass) },
		Observer:              obs,
	})
	acsSrv := httptest.NewUnstartedServer(a)
	acsSrv.Config.ConnState = a.ConnState
	acsSrv.Start()
	t.Cleanup(acsSrv.Close)

	runner := &jobs.Runner{Store: st, Concurrency: 4, Logger: log.With("component", "jobs")}
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
	acfg := APIConfig{ACS: a, Store: st, Runner: runner, Auth: authn, Metrics: reg, StepTimeout: 20 * time.Second, Logger: log}
	if edit != nil {
		edit(&acfg)
	}
	api, err := NewAPI(acfg)
	if err != nil {
		t.Fatal(err)
	}
	go api.Run(ctx)
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	cfg.ACSURL = acsSrv.URL + "/"
	cfg.ConnReqUsername, cfg.ConnReqPassword = labCRUser, secret.New(labCRPass)
	site, err := testlab.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == testlab.SampleGatewaySN })
	if err != nil {
		t.Fatalf("the lab gateway did not inform: %v", err)
	}
	api.SetReady()
	return &metricsLab{acs: a, acsURL: acsSrv.URL + "/", url: apiSrv.URL, client: apiSrv.Client(), store: st,
		tokens: tokens, gatewayID: d.ID, logs: logs}
}

// get sends GET path with the role's token (none for "") and returns the
// status and body.
func (l *metricsLab) get(t *testing.T, role auth.Role, path string, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, l.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+l.tokens[role].Reveal())
	}
	resp, err := l.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// scrape reads /metrics with the read token.
func (l *metricsLab) scrape(t *testing.T) series {
	t.Helper()
	code, body := l.get(t, auth.RoleRead, "/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	return parseExposition(t, body)
}

// series are the samples of a text exposition by series, written as
// Prometheus writes them: name{label="value",...} with labels sorted.
type series map[string]float64

// parseExposition parses the Prometheus text format (as promhttp writes
// it: no timestamps) into series.
func parseExposition(t *testing.T, body []byte) series {
	t.Helper()
	out := series{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("exposition line %q has no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("exposition line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// must returns the sample of a series, failing the test if it is missing.
func (s series) must(t *testing.T, name string) float64 {
	t.Helper()
	v, ok := s[name]
	if !ok {
		var near []string
		base, _, _ := strings.Cut(name, "{")
		for k := range s {
			if strings.HasPrefix(k, base) {
				near = append(near, k)
			}
		}
		t.Fatalf("no series %s; of that name: %v", name, near)
	}
	return v
}

// informOnce opens a CWMP session as a CPE with serial would (an Inform
// naming crURL as its connection request URL) and ends it with an empty
// POST, as a CPE with nothing more to say does.
func informOnce(t *testing.T, acsURL, serial, crURL string) string {
	t.Helper()
	inform, err := cwmp.Encode(&cwmp.Envelope{ID: "1", Body: &cwmp.Inform{
		DeviceId: cwmp.DeviceIdStruct{Manufacturer: "Test", OUI: "00AABB", ProductClass: "HG", SerialNumber: serial},
		Event:    []cwmp.EventStruct{{EventCode: acs.EventBoot}},
		ParameterList: []cwmp.ParameterValueStruct{
			{Name: "InternetGatewayDevice.ManagementServer.ConnectionRequestURL", Value: crURL},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	for _, body := range []string{string(inform), ""} {
		resp, err := c.Post(acsURL, "text/xml", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return acs.DeviceID(cwmp.DeviceIdStruct{OUI: "00AABB", ProductClass: "HG", SerialNumber: serial})
}

// After sessions with the lab gateway, /metrics shows them counted and
// timed, the CPE's fault by code and method, and connection requests by
// outcome, among them one to a device that refuses the connection.
func TestACSMetricsOverSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a testlab site")
	}
	l := startMetricsLab(t, testlab.Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.acs.WaitIdle(ctx, l.gatewayID); err != nil {
		t.Fatal(err)
	}
	m0 := l.scrape(t)
	const (
		okSessions = `fieldagent_acs_sessions_total{outcome="ok"}`
		sessCount  = `fieldagent_acs_session_duration_seconds_count`
		crOK       = `fieldagent_acs_connection_requests_total{outcome="ok"}`
		crRefused  = `fieldagent_acs_connection_requests_total{outcome="refused"}`
	)
	if m0.must(t, okSessions) < 1 || m0.must(t, sessCount) < 1 {
		t.Fatalf("after the gateway's boot: %v sessions ok, %v timed", m0[okSessions], m0[sessCount])
	}
	if m0.must(t, crRefused) != 0 {
		t.Fatalf("refused connection requests before any: %v", m0[crRefused])
	}

	// A read through a connection request, then a write the gateway faults.
	if _, err := l.acs.GetParameterValues(ctx, l.gatewayID, "InternetGatewayDevice.DeviceInfo.SoftwareVersion"); err != nil {
		t.Fatal(err)
	}
	err := l.acs.SetParameterValues(ctx, l.gatewayID, []cwmp.ParameterValueStruct{
		{Name: "InternetGatewayDevice.DeviceInfo.X_NoSuchParameter", Value: "1", Type: "xsd:string"}}, "metrics-test")
	var f *cwmp.Fault
	if !errors.As(err, &f) {
		t.Fatalf("SetParameterValues of an unknown parameter: %v, want a CWMP fault", err)
	}
	if err := l.acs.WaitIdle(ctx, l.gatewayID); err != nil {
		t.Fatal(err)
	}

	// A device that informed from an address where nothing listens now.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/cr"
	closed.Close()
	ghost := informOnce(t, l.acsURL, "GHOST0001", closedURL)
	if err := l.acs.WaitIdle(ctx, ghost); err != nil {
		t.Fatal(err)
	}
	_, err = l.acs.GetParameterValues(ctx, ghost, "InternetGatewayDevice.DeviceInfo.")
	if !errors.Is(err, acs.ErrConnectionRequest) {
		t.Fatalf("request to the unreachable device: %v, want a failed connection request", err)
	}

	m1 := l.scrape(t)
	if got := m1.must(t, okSessions) - m0[okSessions]; got < 2 {
		t.Errorf("sessions ok grew by %v, want at least 2 (the connection request's, the ghost's)", got)
	}
	if m1.must(t, sessCount) <= m0[sessCount] || m1.must(t, `fieldagent_acs_session_duration_seconds_sum`) <= 0 {
		t.Errorf("session histogram did not move: count %v → %v", m0[sessCount], m1[sessCount])
	}
	if got := m1.must(t, crOK) - m0[crOK]; got < 1 {
		t.Errorf("connection requests ok grew by %v", got)
	}
	if got := m1.must(t, crRefused); got != 1 {
		t.Errorf("refused connection requests = %v, want 1", got)
	}
	fault := `fieldagent_acs_faults_total{code="` + strconv.Itoa(f.Code) + `",method="SetParameterValues"}`
	if got := m1.must(t, fault); got != 1 {
		t.Errorf("%s = %v, want 1", fault, got)
	}
	if got := m1.must(t, `fieldagent_acs_devices_known`); got != 2 {
		t.Errorf("devices known = %v, want 2", got)
	}
}

func TestConnectionRequestOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"accepted", nil, "ok"},
		{"refused", &acs.ConnectionRequestError{Reason: acs.ReasonRefused}, "refused"},
		{"timeout", &acs.ConnectionRequestError{Reason: acs.ReasonTimeout}, "timeout"},
		{"unreachable", &acs.ConnectionRequestError{Reason: acs.ReasonUnreachable}, "unreachable"},
		{"401", &acs.ConnectionRequestError{Reason: acs.ReasonUnauthorized, StatusCode: 401}, "unauthorized"},
		{"500", &acs.ConnectionRequestError{Reason: acs.ReasonHTTPStatus, StatusCode: 500}, "http_error"},
		{"status without reason", &acs.ConnectionRequestError{StatusCode: 503}, "http_error"},
		{"no URL", &acs.ConnectionRequestError{Reason: acs.ReasonNoURL}, "no_url"},
		{"other", &acs.ConnectionRequestError{Reason: acs.ReasonOther, Err: errors.New("tls")}, "failed"},
		{"caller gave up", context.Canceled, "cancelled"},
		{"caller's deadline", context.DeadlineExceeded, "timeout"},
		{"anything else", errors.New("boom"), "failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ConnectionRequestOutcome(tc.err); got != tc.want {
				t.Fatalf("ConnectionRequestOutcome(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// fakeWorkflowStore is a workflowStore of function fields.
type fakeWorkflowStore struct {
	due    func(context.Context, time.Time) ([]store.OutboxItem, error)
	orders func(context.Context) ([]store.OrderSummary, error)
}

func (f fakeWorkflowStore) Due(ctx context.Context, now time.Time) ([]store.OutboxItem, error) {
	return f.due(ctx, now)
}

func (f fakeWorkflowStore) ListOrders(ctx context.Context) ([]store.OrderSummary, error) {
	return f.orders(ctx)
}

// The store collector counts a real store's undelivered outbox items
// (also those whose next attempt is later, not those delivered or failed
// for good) and its orders by state, every workflow state present.
func TestStoreCollector(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "fieldagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for id, state := range map[string]string{"WO-1": workflow.OrderRunning, "WO-2": workflow.OrderPending, "WO-3": workflow.OrderPending} {
		o := &order.Order{ID: id, Type: order.TypeNewInstall, Technician: "zhang.wei",
			Appointment: order.Window{Start: start, End: start.Add(2 * time.Hour)}}
		if err := st.PutOrder(ctx, o, state); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"k-due", "k-later", "k-delivered", "k-failed"} {
		if err := st.Enqueue(ctx, store.OutboxItem{OrderID: "WO-2", Kind: "completion", IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	items, err := st.Outbox(ctx, "WO-2")
	if err != nil || len(items) != 4 {
		t.Fatalf("outbox: %v, %v", items, err)
	}
	if err := st.MarkAttempt(ctx, items[1].ID, errors.New("503"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkDelivered(ctx, items[2].ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkFailed(ctx, items[3].ID, errors.New("refused")); err != nil {
		t.Fatal(err)
	}
	want := series{
		"fieldagent_outbox_pending":                               2,
		`fieldagent_workflow_orders{state="awaiting_acceptance"}`: 0,
		`fieldagent_workflow_orders{state="closed"}`:              0,
		`fieldagent_workflow_orders{state="completion_pending"}`:  2,
		`fieldagent_workflow_orders{state="failed"}`:              0,
		`fieldagent_workflow_orders{state="fetched"}`:             0,
		`fieldagent_workflow_orders{state="running"}`:             1,
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewStoreCollector(st, 0, nil))
	if got := gathered(t, reg); !maps.Equal(got, want) {
		t.Fatalf("store gauges %v, want %v", got, want)
	}
}

// A store read that fails or outlasts the timeout leaves its metric out
// of the scrape; the other still answers, and nothing panics.
func TestStoreCollectorFailures(t *testing.T) {
	broken := errors.New("database is locked")
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name  string
		st    fakeWorkflowStore
		count int
	}{
		{"outbox fails", fakeWorkflowStore{
			due:    func(context.Context, time.Time) ([]store.OutboxItem, error) { return nil, broken },
			orders: func(context.Context) ([]store.OrderSummary, error) { return nil, nil },
		}, 6},
		{"orders fail", fakeWorkflowStore{
			due:    func(context.Context, time.Time) ([]store.OutboxItem, error) { return make([]store.OutboxItem, 3), nil },
			orders: func(context.Context) ([]store.OrderSummary, error) { return nil, broken },
		}, 1},
		{"both slow", fakeWorkflowStore{
			due:    func(ctx context.Context, _ time.Time) ([]store.OutboxItem, error) { return nil, slow(ctx) },
			orders: func(ctx context.Context) ([]store.OrderSummary, error) { return nil, slow(ctx) },
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			c := NewStoreCollector(tc.st, 20*time.Millisecond, slog.New(slog.NewTextHandler(logs, nil)))
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			if got := len(gathered(t, reg)); got != tc.count {
				t.Fatalf("%d metrics, want %d", got, tc.count)
			}
			if !strings.Contains(logs.String(), "not read") {
				t.Errorf("the failure was not logged: %s", logs)
			}
		})
	}
}

// A diagnosis's readings become per-device gauges in base units; the next
// diagnosis of the device replaces them, dropping what it did not read,
// and leaves other devices' alone.
func TestDiagnosisReadingGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newServeMetrics(reg, func() (int, int) { return 0, 0 })
	if err != nil {
		t.Fatal(err)
	}
	full := diagrun.Outcome{
		Results: []diagnostics.Result{
			{Probe: "line", Success: true, Readings: []diagnostics.Reading{
				{Name: "optical_rx_power_dbm", Value: -21.5}, {Name: "optical_tx_power_dbm", Value: 2.1}, {Name: "wan_up", Value: 1}}},
			{Probe: "ping", Success: true, Readings: []diagnostics.Reading{
				{Name: "ping_rtt_avg", Value: 12}, {Name: "ping_loss", Value: 20}}},
			{Probe: "gateway_download", Success: true, Readings: []diagnostics.Reading{{Name: "gateway_download_mbps", Value: 287.5}}},
			{Probe: "speed_upload", Success: true, Readings: []diagnostics.Reading{{Name: "upload_mbps", Value: 48}}},
		},
		Facts: map[string]string{"wan_status": "Connected", "wan_last_error": "ERROR_NONE"},
	}
	m.observe("dev-a", full, time.Second, nil)
	m.observe("dev-b", full, time.Second, nil)
	want := map[string]float64{
		`probe_optical_rx_power_dbm{device="dev-a"}`:                                       -21.5,
		`probe_optical_tx_power_dbm{device="dev-a"}`:                                       2.1,
		`probe_wan_up{device="dev-a"}`:                                                     1,
		`probe_ping_rtt_seconds{device="dev-a",stat="avg"}`:                                0.012,
		`probe_ping_loss_ratio{device="dev-a"}`:                                            0.2,
		`probe_gateway_download_mbps{device="dev-a"}`:                                      287.5,
		`probe_speed_mbps{device="dev-a",direction="upload"}`:                              48,
		`probe_wan_status_info{device="dev-a",last_error="ERROR_NONE",status="Connected"}`: 1,
	}
	got := gathered(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}

	// dev-a again: the line only, the WAN down.
	m.observe("dev-a", diagrun.Outcome{
		Results: []diagnostics.Result{{Probe: "line", Success: true, Readings: []diagnostics.Reading{
			{Name: "optical_rx_power_dbm", Value: -27}, {Name: "wan_up", Value: 0}}}},
		Facts: map[string]string{"wan_status": "Disconnected", "wan_last_error": "ERROR_AUTHENTICATION_FAILURE"},
	}, time.Second, nil)
	got = gathered(t, reg)
	for k, v := range map[string]float64{
		`probe_optical_rx_power_dbm{device="dev-a"}`: -27,
		`probe_wan_up{device="dev-a"}`:               0,
		`probe_wan_status_info{device="dev-a",last_error="ERROR_AUTHENTICATION_FAILURE",status="Disconnected"}`: 1,
		`probe_gateway_download_mbps{device="dev-b"}`:                                                           287.5,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("after the second diagnosis: %s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, k := range []string{`probe_gateway_download_mbps{device="dev-a"}`, `probe_ping_rtt_seconds{device="dev-a",stat="avg"}`,
		`probe_wan_status_info{device="dev-a",last_error="ERROR_NONE",status="Connected"}`} {
		if _, ok := got[k]; ok {
			t.Errorf("%s kept from the first diagnosis", k)
		}
	}
}

// gathered renders reg's samples as series.
func gathered(t *testing.T, reg *prometheus.Registry) series {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := series{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+`="`+lp.GetValue()+`"`)
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			if g := m.GetGauge(); g != nil {
				out[key] = g.GetValue()
			}
		}
	}
	return out
}
