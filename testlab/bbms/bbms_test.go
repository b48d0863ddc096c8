package bbms

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"fieldagent/agent/secret"
)

func TestBindings(t *testing.T) {
	s := New(secret.New("tok"), nil)
	s.AddCustomer("88001234")
	s.AddCustomer("88005678")
	ts := httptest.NewServer(s)
	defer ts.Close()

	do := func(method, path, token, body string) (int, map[string]string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
		return resp.StatusCode, out
	}

	tests := []struct {
		name, method, path, token, body string
		status                          int
		want                            map[string]string
		wantErr                         bool
	}{
		{name: "no token", method: "POST", path: "/api/v1/bindings", body: `{}`, status: 401, wantErr: true},
		{name: "wrong token", method: "POST", path: "/api/v1/bindings", token: "x", body: `{}`, status: 401, wantErr: true},
		{name: "bad body", method: "POST", path: "/api/v1/bindings", token: "tok", body: `{`, status: 400, wantErr: true},
		{name: "missing fields", method: "POST", path: "/api/v1/bindings", token: "tok", body: `{"serial":"A"}`, status: 400, wantErr: true},
		{name: "unknown customer", method: "POST", path: "/api/v1/bindings", token: "tok", body: `{"serial":"XT2A","customer_id":"1"}`, status: 404, wantErr: true},
		{name: "get unbound", method: "GET", path: "/api/v1/bindings/XT2A", token: "tok", status: 404, wantErr: true},
		{name: "bind", method: "POST", path: "/api/v1/bindings", token: "tok", body: `{"serial":"XT2A","customer_id":"88001234"}`, status: 201,
			want: map[string]string{"serial": "XT2A", "customer_id": "88001234", "state": "bound"}},
		{name: "bind again same customer", method: "POST", path: "/api/v1/bindings", token: "tok", body: `{"serial":"XT2A","customer_id":"88001234"}`, status: 201,
			want: map[string]string{"serial": "XT2A", "customer_id": "88001234", "state": "bound"}},
		{name: "bind to another customer", method: "POST", path: "/api/v1/bindings", token: "tok", body: `{"serial":"XT2A","customer_id":"88005678"}`, status: 409, wantErr: true},
		{name: "get bound", method: "GET", path: "/api/v1/bindings/XT2A", token: "tok", status: 200,
			want: map[string]string{"serial": "XT2A", "customer_id": "88001234", "state": "bound"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, got := do(tc.method, tc.path, tc.token, tc.body)
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", status, tc.status, got)
			}
			if tc.wantErr {
				if got["error"] == "" {
					t.Fatalf("no error message in %v", got)
				}
				return
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	if c, ok := s.Binding("XT2A"); !ok || c != "88001234" {
		t.Fatalf("Binding = %q, %v", c, ok)
	}
	if _, ok := s.Binding("nope"); ok {
		t.Fatal("unknown serial reported bound")
	}
}
