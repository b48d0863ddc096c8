package server_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/jobs"
	"fieldagent/agent/order"
	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/drivers/xt2"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// memRegistry is an ACS device registry in memory: Start loads devices.
type memRegistry struct {
	mu      sync.Mutex
	devices []acs.Device
}

func (m *memRegistry) SaveDevice(context.Context, acs.Device) error { return nil }

func (m *memRegistry) LoadDevices(context.Context) ([]acs.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.devices), nil
}

// apiEnv is an API on loopback with tokens for four callers: reader
// (read), alice and bob (diagnose) and boss (configure).
type apiEnv struct {
	api    *server.API
	url    string
	client *http.Client
	store  *store.Store
	acs    *acs.Server
	logs   *syncBuffer
	tokens map[string]secret.Secret
}

type envOptions struct {
	// acs, if set, is the ACS (a lab's); else a new one that loads devices.
	acs         *acs.Server
	devices     []acs.Device
	xt2         []server.XT2Target
	diagnose    server.DiagnoseFunc
	now         func() time.Time
	concurrency int
	speedURL    string
}

func newAPIEnv(t testing.TB, o envOptions) *apiEnv {
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
	a := o.acs
	if a == nil {
		a = acs.New(acs.Config{Registry: &memRegistry{devices: o.devices}, Now: o.now})
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if o.concurrency == 0 {
		o.concurrency = 8
	}
	runner := &jobs.Runner{Store: st, Concurrency: o.concurrency, Logger: log.With("component", "jobs")}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = runner.Shutdown(sctx)
	})
	tokens := map[string]secret.Secret{}
	var list []auth.Token
	for name, role := range map[string]auth.Role{"reader": auth.RoleRead, "alice": auth.RoleDiagnose, "bob": auth.RoleDiagnose, "boss": auth.RoleConfigure} {
		plain, hash := auth.NewToken()
		tokens[name] = plain
		list = append(list, auth.Token{Name: name, Hash: hash, Role: role})
	}
	authn, err := auth.New(list, auth.Options{Rate: 1e6, Burst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.NewAPI(server.APIConfig{
		ACS: a, Store: st, Runner: runner, Auth: authn, Metrics: prometheus.NewRegistry(),
		Diagnose: o.diagnose, XT2: o.xt2, SpeedURL: o.speedURL, StepTimeout: 20 * time.Second, Logger: log, Now: o.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	go api.Run(ctx)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &apiEnv{api: api, url: srv.URL, client: srv.Client(), store: st, acs: a, logs: logs, tokens: tokens}
}

// do sends a request as user (none for "") and returns the status and body.
func (e *apiEnv) do(t testing.TB, user, method, path, body string) (int, []byte) {
	t.Helper()
	return callAPI(t, e.client, e.url, e.tokens[user], method, path, body)
}

// get decodes a 200 answer into v.
func (e *apiEnv) get(t testing.TB, path string, v any) {
	t.Helper()
	code, body := e.do(t, "reader", "GET", path, "")
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// waitJob waits for a job to end in the store and returns it.
func (e *apiEnv) waitJob(t testing.TB, id string) store.Job {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j, err := e.store.Job(context.Background(), id)
		if err == nil && j.Finished() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s has not ended: %+v %v", id, j, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// submitted decodes a 202 answer to a diagnosis.
func submitted(t testing.TB, code int, body []byte) string {
	t.Helper()
	var acc struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(body, &acc); code != 202 || err != nil || acc.JobID == "" {
		t.Fatalf("diagnose: %d %v %s", code, err, body)
	}
	return acc.JobID
}

const e8Root = "InternetGatewayDevice."

// gatewayDevice is a gateway as the ACS's registry keeps it.
func gatewayDevice(serial, modelName, loid string, last time.Time, periodicSecs int) acs.Device {
	id := cwmp.DeviceIdStruct{Manufacturer: "ZTE", OUI: "00D0D0", ProductClass: modelName, SerialNumber: serial}
	p := map[string]string{
		e8Root + "DeviceInfo.SoftwareVersion":                 "V2.1.0",
		e8Root + "DeviceInfo.ModelName":                       modelName,
		e8Root + "ManagementServer.ConnectionRequestPassword": "cr-secret-" + serial,
	}
	if loid != "" {
		p[e8Root+"X_CT-COM_UserInfo.UserName"] = loid
	}
	if periodicSecs > 0 {
		p[e8Root+"ManagementServer.PeriodicInformInterval"] = fmt.Sprint(periodicSecs)
	}
	return acs.Device{ID: acs.DeviceID(id), DeviceId: id, FirstInform: last.Add(-time.Hour), LastInform: last,
		LastEvents: []string{"2 PERIODIC"}, Params: p,
		Events: []acs.InformRecord{{At: last, Events: []cwmp.EventStruct{{EventCode: "2 PERIODIC"}}}}}
}

// TestDeviceSearch: every filter of GET /api/v1/devices, paging with a
// total, and a LOID that matches but never appears in an answer or a log.
func TestDeviceSearch(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	const loid = "LOID-SECRET-0042"
	devices := []acs.Device{
		gatewayDevice("GW0001", "F650", loid, now.Add(-time.Minute), 0),              // online
		gatewayDevice("GW0002", "F650", "LOID-OTHER-0007", now.Add(-2*time.Hour), 0), // offline
		gatewayDevice("GW0003", "HG8245", "", now.Add(-3*time.Hour), 4*3600),         // online: periodic 4h
		gatewayDevice("GW0004", "HG8245", "", now.Add(-48*time.Hour), 0),             // offline
		gatewayDevice("ABC0005", "F650", "", now.Add(-30*time.Minute), 0),            // offline
	}
	noXT2 := func(context.Context) (*xt2.Driver, error) { return nil, errors.New("not in this test") }
	e := newAPIEnv(t, envOptions{devices: devices, now: func() time.Time { return now },
		xt2: []server.XT2Target{{Name: "xt2-shop", Address: "192.0.2.50:22", Open: noXT2}}})
	ctx := context.Background()
	for _, o := range []struct {
		order  *order.Order
		role   string
		device string
	}{
		{&order.Order{ID: "WO-1", PPPoE: order.Account{Username: "ad0215001", Password: secret.New("pw")}}, "gateway", devices[0].ID},
		{&order.Order{ID: "WO-2", PPPoE: order.Account{Username: "ad0215001", Password: secret.New("pw")}}, "gateway", devices[2].ID},
		{&order.Order{ID: "WO-3", BBMSCustomerID: "BBMS-9"}, "xt2", "192.0.2.50:22"},
		{&order.Order{ID: "WO-4", PPPoE: order.Account{Username: "ad0215999", Password: secret.New("pw")}}, "gateway", devices[3].ID},
	} {
		if err := e.store.PutOrder(ctx, o.order, "done"); err != nil {
			t.Fatal(err)
		}
		if err := e.store.SetOrderDevice(ctx, o.order.ID, o.role, o.device); err != nil {
			t.Fatal(err)
		}
	}

	serials := func(l server.DeviceList) []string {
		var out []string
		for _, d := range l.Devices {
			out = append(out, cmp.Or(d.Serial, d.ID))
		}
		return out
	}
	tests := []struct {
		name  string
		query string
		want  []string // serials (ID for an XT-2), in order
		total int      // 0: len(want)
	}{
		{"all", "", []string{"ABC0005", "GW0001", "GW0002", "GW0003", "GW0004", "xt2-shop"}, 0},
		{"serial", "serial=gw0002", []string{"GW0002"}, 0},
		{"model", "model=hg8245", []string{"GW0003", "GW0004"}, 0},
		{"model xt2", "model=XT-2", []string{"xt2-shop"}, 0},
		{"q", "q=abc", []string{"ABC0005"}, 0},
		{"q xt2 address", "q=192.0.2.50", []string{"xt2-shop"}, 0},
		{"loid", "loid=" + url.QueryEscape(loid), []string{"GW0001"}, 0},
		{"loid exact", "loid=LOID-SECRET", nil, 0},
		{"account", "account=ad0215001", []string{"GW0001", "GW0003"}, 0},
		{"account xt2", "account=bbms-9", []string{"xt2-shop"}, 0},
		{"account unknown", "account=nobody", nil, 0},
		{"seen_since duration", "seen_since=1h", []string{"ABC0005", "GW0001"}, 0},
		{"seen_since time", "seen_since=" + url.QueryEscape(now.Add(-150*time.Minute).Format(time.RFC3339)), []string{"ABC0005", "GW0001", "GW0002"}, 0},
		{"seen_before", "seen_before=24h", []string{"GW0004"}, 0},
		{"seen window", "seen_since=4h&seen_before=1h", []string{"GW0002", "GW0003"}, 0},
		{"online", "online=true", []string{"GW0001", "GW0003"}, 0},
		{"offline", "online=false", []string{"ABC0005", "GW0002", "GW0004"}, 0},
		{"kind", "kind=xt2", []string{"xt2-shop"}, 0},
		{"kind e8", "kind=e8&online=true", []string{"GW0001", "GW0003"}, 0},
		{"combined", "model=F650&online=false&q=gw", []string{"GW0002"}, 0},
		{"page 1", "limit=2", []string{"ABC0005", "GW0001"}, 6},
		{"page 2", "limit=2&offset=2", []string{"GW0002", "GW0003"}, 6},
		{"page 3", "limit=2&offset=4", []string{"GW0004", "xt2-shop"}, 6},
		{"past the end", "limit=2&offset=10", nil, 6},
		{"page of a search", "model=f650&limit=1&offset=1", []string{"GW0001"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l server.DeviceList
			code, body := e.do(t, "reader", "GET", "/api/v1/devices?"+tc.query, "")
			if err := json.Unmarshal(body, &l); code != 200 || err != nil {
				t.Fatalf("%d %v %s", code, err, body)
			}
			total := cmp.Or(tc.total, len(tc.want))
			if got := serials(l); !slices.Equal(got, tc.want) || l.Total != total || l.Count != len(tc.want) {
				t.Errorf("devices %v (count %d, total %d), want %v (total %d)", got, l.Count, l.Total, tc.want, total)
			}
			if strings.Contains(string(body), loid) || strings.Contains(string(body), "cr-secret-") {
				t.Errorf("the answer shows a credential: %s", body)
			}
		})
	}

	t.Run("summary", func(t *testing.T) {
		var l server.DeviceList
		e.get(t, "/api/v1/devices?serial=GW0003", &l)
		d := l.Devices[0]
		if d.Kind != "e8" || d.Model != "HG8245" || !d.Online || !d.LastInform.Equal(devices[2].LastInform) {
			t.Errorf("summary %+v", d)
		}
		var lx server.DeviceList
		e.get(t, "/api/v1/devices?kind=xt2", &lx)
		if x := lx.Devices[0]; x.Kind != "xt2" || x.Address != "192.0.2.50:22" || x.Online || !x.LastInform.IsZero() {
			t.Errorf("XT-2 summary %+v", x)
		}
	})

	t.Run("device detail hides credentials", func(t *testing.T) {
		code, body := e.do(t, "reader", "GET", "/api/v1/devices/"+devices[0].ID, "")
		if code != 200 || strings.Contains(string(body), loid) || strings.Contains(string(body), "cr-secret-") {
			t.Errorf("%d %s", code, body)
		}
		if !strings.Contains(string(body), `"InternetGatewayDevice.X_CT-COM_UserInfo.UserName":"******"`) {
			t.Errorf("the LOID parameter is not shown redacted: %s", body)
		}
		if code, _ := e.do(t, "reader", "GET", "/api/v1/devices/xt2-shop", ""); code != 200 {
			t.Errorf("XT-2 detail: %d", code)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		for q, want := range map[string]string{
			"seen_since=yesterday": "seen_since", "seen_before=-1h": "seen_before", "online=maybe": "online",
			"limit=0": "limit", "limit=10001": "limit", "offset=-1": "offset",
		} {
			code, body := e.do(t, "reader", "GET", "/api/v1/devices?"+q+"&loid="+loid, "")
			if code != 400 || !strings.Contains(string(body), want) || strings.Contains(string(body), loid) {
				t.Errorf("%s: %d %s", q, code, body)
			}
		}
	})

	if strings.Contains(e.logs.String(), loid) {
		t.Errorf("the LOID appears in the log")
	}
}
