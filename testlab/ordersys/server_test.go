package ordersys

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
)

const token = "lab-token-123"

func labOrder(id, tech string) *order.Order {
	start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	return &order.Order{
		ID: id, Type: order.TypeRepair, Technician: tech,
		Customer:    order.Customer{Name: "Li Na", Address: "12 Garden Road"},
		Appointment: order.Window{Start: start, End: start.Add(2 * time.Hour)},
		Services:    []order.Service{{Device: order.DeviceE8, Access: order.AccessGPON, BandwidthMbps: 300}},
		PPPoE:       order.Account{Username: "ln@isp", Password: secret.New("pppoe-pw")},
	}
}

type call struct {
	name       string
	method     string
	path       string
	token      string
	header     map[string]string
	body       string
	wantStatus int
	wantBody   string // substring
}

func do(t *testing.T, base string, c call) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerAPI(t *testing.T) {
	srv := New(secret.New(token), nil)
	srv.AddOrder(labOrder("WO-1", "zhang"))
	srv.AddOrder(labOrder("WO-2", "chen"))
	ts := httptest.NewServer(srv)
	defer ts.Close()

	key := map[string]string{"Idempotency-Key": "k1"}
	okBody := `{"order_id":"WO-1","result":"ok"}`
	calls := []call{
		{"no token", "GET", "/api/v1/orders", "", nil, "", 401, `"error":"missing or invalid bearer token"`},
		{"wrong token", "GET", "/api/v1/orders", "nope", nil, "", 401, "missing or invalid bearer token"},
		{"list mine", "GET", "/api/v1/orders?technician=zhang", token, nil, "", 200, `"id":"WO-1"`},
		{"get", "GET", "/api/v1/orders/WO-1", token, nil, "", 200, `"password":"pppoe-pw"`},
		{"get missing", "GET", "/api/v1/orders/WO-9", token, nil, "", 404, `order \"WO-9\" not found`},
		{"unknown endpoint", "GET", "/api/v2/orders", token, nil, "", 404, "no such endpoint"},
		{"event bad kind", "POST", "/api/v1/orders/WO-1/events", token, nil, `{"kind":"lunch","at":"2025-03-01T09:00:00Z"}`, 400, `kind: \"lunch\" is not one of`},
		{"event bad time", "POST", "/api/v1/orders/WO-1/events", token, nil, `{"kind":"arrived","at":"9am"}`, 400, "at: "},
		{"event unknown field", "POST", "/api/v1/orders/WO-1/events", token, nil, `{"kind":"arrived","at":"2025-03-01T09:00:00Z","x":1}`, 400, "body: "},
		{"event", "POST", "/api/v1/orders/WO-1/events", token, nil, `{"kind":"arrived","at":"2025-03-01T09:00:00Z","detail":"on site"}`, 201, `"state":"in_progress"`},
		{"event missing order", "POST", "/api/v1/orders/WO-9/events", token, nil, `{"kind":"arrived","at":"2025-03-01T09:00:00Z"}`, 404, "not found"},
		{"completion without key", "POST", "/api/v1/orders/WO-1/completion", token, nil, okBody, 400, "Idempotency-Key header is required"},
		{"completion without result", "POST", "/api/v1/orders/WO-1/completion", token, key, `{"order_id":"WO-1"}`, 400, "result: is required"},
		{"completion wrong order", "POST", "/api/v1/orders/WO-1/completion", token, key, `{"order_id":"WO-2","result":"ok"}`, 400, "order_id: "},
		{"completion not object", "POST", "/api/v1/orders/WO-1/completion", token, key, `[1]`, 400, "body: must be a JSON object"},
		{"completion too large", "POST", "/api/v1/orders/WO-1/completion", token, key, `{"order_id":"WO-1","result":"` + strings.Repeat("x", MaxBody) + `"}`, 413, "larger than"},
		{"completion", "POST", "/api/v1/orders/WO-1/completion", token, key, okBody, 201, `"receipt":"R-000001"`},
		{"completion replay", "POST", "/api/v1/orders/WO-1/completion", token, key, okBody, 200, `"receipt":"R-000001"`},
		{"completion other key", "POST", "/api/v1/orders/WO-1/completion", token, map[string]string{"Idempotency-Key": "k2"}, okBody, 409, "already closed"},
		{"key reused for other order", "POST", "/api/v1/orders/WO-2/completion", token, key, `{"order_id":"WO-2","result":"ok"}`, 409, "already used"},
		{"wrong method", "DELETE", "/api/v1/orders/WO-1", token, nil, "", 404, "no such endpoint"},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(t, ts.URL, c)
			if status != c.wantStatus || !strings.Contains(body, c.wantBody) {
				t.Errorf("%s %s = %d %.300s; want %d containing %q", c.method, c.path, status, body, c.wantStatus, c.wantBody)
			}
		})
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"state WO-1", srv.State("WO-1"), StateClosed},
		{"state WO-2", srv.State("WO-2"), StateAssigned},
		{"state unknown", srv.State("WO-9"), ""},
		{"events", len(srv.Events("WO-1")), 1},
		{"event detail", srv.Events("WO-1")[0].Detail, "on site"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if body, ok := srv.Completion("WO-1"); !ok || string(body) != okBody {
		t.Errorf("Completion = %s, %v", body, ok)
	}
	if created, replayed := srv.CompletionCounts("WO-1"); created != 1 || replayed != 1 {
		t.Errorf("CompletionCounts = %d, %d; want 1, 1", created, replayed)
	}
}

func TestServerListSummaries(t *testing.T) {
	srv := New(secret.New(token), nil)
	srv.AddOrder(labOrder("WO-1", "zhang"))
	srv.AddRawOrder("WO-RAW", "zhang", []byte(`{"id":"WO-RAW","type":"teleport"}`))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	status, body := do(t, ts.URL, call{method: "GET", path: "/api/v1/orders?technician=zhang", token: token})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	var out struct {
		Orders []order.Summary `json:"orders"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Orders) != 2 || out.Orders[0].ID != "WO-RAW" || out.Orders[1].State != StateAssigned {
		t.Errorf("orders = %+v", out.Orders)
	}
	if strings.Contains(body, "pppoe-pw") {
		t.Errorf("the list carries a credential: %s", body)
	}
	_, raw := do(t, ts.URL, call{method: "GET", path: "/api/v1/orders/WO-RAW", token: token})
	if raw != `{"id":"WO-RAW","type":"teleport"}` {
		t.Errorf("raw order served as %s", raw)
	}
}

func TestServerFailNext(t *testing.T) {
	srv := New(secret.New(token), nil)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	srv.FailNext(2, http.StatusServiceUnavailable)
	want := []int{503, 503, 200, 200}
	for i, w := range want {
		status, body := do(t, ts.URL, call{method: "GET", path: "/api/v1/orders", token: token})
		if status != w {
			t.Errorf("request %d: %d %s, want %d", i, status, body, w)
		}
	}
}
