package auth

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
)

// logLines parses the JSON lines of buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	a := newTestAuth(t, Options{})
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/devices", a.Middleware(RoleRead, echoCaller))
	mux.Handle("POST /api/v1/devices/{id}/reboot", a.Middleware(RoleConfigure, echoCaller))
	srv := httptest.NewServer(AccessLog(log, mux))
	defer srv.Close()

	tests := []struct {
		method, path string
		tok          secret.Secret
		status       int
		caller, role string
	}{
		{"GET", "/api/v1/devices?verbose=1", readTok, 200, "reader", "read"},
		{"GET", "/api/v1/devices", secret.Secret{}, 401, "", ""},
		{"POST", "/api/v1/devices/cpe1/reboot", diagnoseTok, 403, "diag", "diagnose"},
		{"POST", "/api/v1/devices/cpe1/reboot", configureTok, 200, "admin", "configure"},
		{"GET", "/nowhere", readTok, 404, "", ""},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if !tc.tok.IsZero() {
			req.Header.Set("Authorization", "Bearer "+tc.tok.Reveal())
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
	lines := logLines(t, &buf)
	if len(lines) != len(tests) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(tests), buf.String())
	}
	for i, tc := range tests {
		l := lines[i]
		wantPath, _, _ := strings.Cut(tc.path, "?")
		if l["msg"] != "http request" || l["method"] != tc.method || l["path"] != wantPath ||
			l["status"] != float64(tc.status) || l["caller"] != tc.caller || l["role"] != tc.role {
			t.Errorf("line %d = %v, want %s %s %d caller %q role %q", i, l, tc.method, wantPath, tc.status, tc.caller, tc.role)
		}
		for _, k := range []string{"duration", "remote", "bytes"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d lacks %q: %v", i, k, l)
			}
		}
	}
}

func TestAccessLogNil(t *testing.T) {
	if h := AccessLog(nil, echoCaller); h == nil {
		t.Error("AccessLog(nil, h) = nil, want h")
	}
}

// TestTokenNeverLeaks sends good, wrong and misplaced tokens through the
// whole stack and checks that none appears in a log line, a response
// header or a response body.
func TestTokenNeverLeaks(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := &fakeClock{}
	a := newTestAuth(t, Options{Rate: 1, Burst: 2, Now: clock.Now, Logger: log})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name string `json:"name"`
		}
		if err := DecodeJSON(w, r, &body, 32); err != nil {
			return
		}
		echoCaller.ServeHTTP(w, r)
	})
	mux := http.NewServeMux()
	mux.Handle("/read", a.Middleware(RoleRead, handler))
	mux.Handle("/configure", a.Middleware(RoleConfigure, handler))
	srv := httptest.NewServer(AccessLog(log, mux))
	defer srv.Close()

	wrong := "fa_wrong-token-0123456789abcdefghijklmnopqrstuvw"
	secrets := []string{readTok.Reveal(), diagnoseTok.Reveal(), configureTok.Reveal(), wrong}
	type call struct{ path, auth, body, contentType string }
	var calls []call
	for _, s := range secrets {
		for _, path := range []string{"/read", "/configure", "/read?access_token=" + s} {
			calls = append(calls,
				call{path, "Bearer " + s, `{"name":"x"}`, "application/json"},
				call{path, "Basic " + s, `{}`, "application/json"},
				call{path, "Bearer " + s, `{"name":`, "application/json"},             // 400
				call{path, "Bearer " + s, `{"name":"` + s + `"}`, "application/json"}, // 413 (body over 32 bytes)
				call{path, "Bearer " + s, `{}`, "text/plain"},                         // 415
				call{path, "Bearer " + s + "x", `{}`, "application/json"},             // 401
			)
		}
	}
	for range 3 { // the third in the same instant is over the burst: 429
		calls = append(calls, call{"/read", "Bearer " + readTok.Reveal(), `{}`, "application/json"})
	}
	var answers bytes.Buffer
	codes := map[int]bool{}
	for i, c := range calls {
		if i < len(calls)-3 {
			clock.Advance(time.Hour) // a full bucket for every call but the last three
		}
		req, _ := http.NewRequest("POST", srv.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", c.auth)
		req.Header.Set("Content-Type", c.contentType)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		codes[resp.StatusCode] = true
		_ = resp.Header.Write(&answers)
		_, _ = answers.ReadFrom(resp.Body)
		resp.Body.Close()
	}
	for _, code := range []int{200, 400, 401, 403, 413, 415, 429} {
		if !codes[code] {
			t.Errorf("no call got %d; the test should cover it", code)
		}
	}
	logs := buf.String()
	if !strings.Contains(logs, `caller=reader`) || !strings.Contains(logs, "auth: refused caller") {
		t.Fatalf("log lacks the expected lines:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a token appears in the log:\n%s", logs)
		}
		if strings.Contains(answers.String(), s) {
			t.Errorf("a token appears in a response")
		}
		// Also no recognisable part of it (the random part after the prefix).
		if frag := s[len(TokenPrefix) : len(TokenPrefix)+16]; strings.Contains(logs, frag) || strings.Contains(answers.String(), frag) {
			t.Errorf("a part of a token (%d bytes) appears in a log or response", len(frag))
		}
	}
}
