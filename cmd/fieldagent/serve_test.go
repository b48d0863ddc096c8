package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/agent/server/auth"
)

func TestServeTokenNew(t *testing.T) {
	f, out, _, _ := newTestFactory(t)
	if err := execute(t, f, "serve", "token", "new", "--name", "alice", "--role", "diagnose"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], auth.TokenPrefix) {
		t.Fatalf("output:\n%s", out)
	}
	hash := auth.HashToken(secret.New(lines[0]))
	want := `    - {name: "alice", hash: "` + hash + `", role: diagnose}`
	if lines[2] != want {
		t.Errorf("config line %q, want %q", lines[2], want)
	}
	if strings.Contains(lines[2], lines[0]) {
		t.Error("the config line holds the token")
	}

	// JSON, and the hash verifies with the auth package.
	f, out, _, _ = newTestFactory(t)
	if err := execute(t, f, "serve", "token", "new", "--name", "prom", "--role", "read", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var j struct{ Name, Role, Token, Hash string }
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if j.Hash != auth.HashToken(secret.New(j.Token)) || j.Name != "prom" || j.Role != "read" {
		t.Errorf("json %+v", j)
	}

	for _, args := range [][]string{
		{"--name", "alice", "--role", "admin"},
		{"--name", "has space", "--role", "read"},
		{"--role", "read"},
	} {
		f, out, _, _ := newTestFactory(t)
		err := execute(t, f, append([]string{"serve", "token", "new"}, args...)...)
		if exitCode(err) != exitUsage || out.Len() != 0 {
			t.Errorf("%v: %v (exit %d), output %q; want a usage error and no token", args, err, exitCode(err), out)
		}
	}
}

func TestServeRefusesWithoutTokens(t *testing.T) {
	f, _, _, _ := newTestFactory(t)
	f.Env = append(f.Env, "FIELDAGENT_ACS_LISTEN=127.0.0.1:0", "FIELDAGENT_SERVE_API_LISTEN=127.0.0.1:0")
	err := execute(t, f, "serve")
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "fieldagent serve token new") {
		t.Errorf("serve without tokens: %v (exit %d), want a usage error that says how to make one", err, exitCode(err))
	}
}

// TestServeRunsAndStops starts serve with one token, calls the API, then
// stops it as SIGINT would.
func TestServeRunsAndStops(t *testing.T) {
	f, _, errOut, dir := newTestFactory(t)
	plain, hash := auth.NewToken()
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, []byte("serve:\n  tokens:\n    - {name: reader, hash: \""+hash+"\", role: read}\n")...)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	f.Env = append(f.Env, "FIELDAGENT_ACS_LISTEN=127.0.0.1:0", "FIELDAGENT_SERVE_API_LISTEN=127.0.0.1:0", "FIELDAGENT_LOG_FORMAT=json")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	root := newRootCmd(f)
	root.RemoveCommand(findSub(root.Commands(), "serve"))
	root.AddCommand(newServeCmd(f, func(ctx context.Context, o *serveOptions) error {
		o.ready = func(_, api string) { ready <- api }
		return runServe(ctx, o)
	}))
	root.SetArgs([]string{"serve"})
	served := make(chan error, 1)
	go func() { served <- root.ExecuteContext(ctx) }()
	var api string
	select {
	case api = <-ready:
	case err := <-served:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	get := func(path string, tok string) int {
		req, _ := http.NewRequest("GET", "http://"+api+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/v1/devices": 401} {
		if got := get(path, ""); got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}
	if got := get("/api/v1/devices", plain.Reveal()); got != 200 {
		t.Errorf("GET /api/v1/devices with the token: %d", got)
	}
	if got := get("/metrics", plain.Reveal()); got != 200 {
		t.Errorf("GET /metrics with the token: %d", got)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve returned %v after a graceful stop", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	logs := errOut.String()
	if !strings.Contains(logs, "serve stopped") || !strings.Contains(logs, `"caller":"reader"`) {
		t.Errorf("log lacks the stop or the access line:\n%s", logs)
	}
	if strings.Contains(logs, plain.Reveal()) {
		t.Error("the token appears in the log")
	}
}
