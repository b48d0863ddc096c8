package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/agent/jobs"
	"fieldagent/agent/secret"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
)

func TestReadEvents(t *testing.T) {
	// LF, CRLF and a lone CR all end a line.
	stream := ": job j1\n\nevent: snapshot\ndata: {\"a\":1}\n\n: heartbeat\n\ndata: line1\ndata: line2\n\nevent: x\r\ndata:no-space\r\rdata: cr\r\n\r\nevent: dropped\ndata: never ended"
	type ev struct{ name, data string }
	var got []ev
	err := ReadEvents(strings.NewReader(stream), func(name string, data []byte) error {
		got = append(got, ev{name, string(data)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []ev{{"snapshot", `{"a":1}`}, {"message", "line1\nline2"}, {"x", "no-space"}, {"message", "cr"}}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := ReadEvents(strings.NewReader(stream), func(string, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("fn's error: %v after %d events, want stop after 1", err, n)
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add([]byte("event: device_finished\ndata: {\"type\":\"device_finished\"}\n\n"))
	f.Add([]byte(": comment\n\ndata: a\ndata: b\n\n"))
	f.Add([]byte("data:\n\nevent: only-a-name\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		events := 0
		_ = ReadEvents(strings.NewReader(string(b)), func(name string, data []byte) error {
			if name == "" || strings.ContainsAny(name, "\r\n") {
				t.Fatalf("event name %q", name)
			}
			events++
			return nil
		})
		// An event ends at a blank line: never more events than those.
		if blank := strings.Count("\n"+strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(b)), "\n\n"); events > blank {
			t.Fatalf("%d events from %d blank lines", events, blank)
		}
	})
}

// jobServer is the real jobs runner and SSE handler behind the real auth
// middleware, as serve mounts them.
type jobServer struct {
	url    string
	runner *jobs.Runner
	token  secret.Secret
	reads  *secret.Secret
}

func newJobServer(t *testing.T, wrap func(http.Handler) http.Handler) *jobServer {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	runner := &jobs.Runner{Store: st, Concurrency: 2}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = runner.Shutdown(ctx)
	})
	diag, dh := auth.NewToken()
	read, rh := auth.NewToken()
	a, err := auth.New([]auth.Token{{Name: "eng", Hash: dh, Role: auth.RoleDiagnose}, {Name: "viewer", Hash: rh, Role: auth.RoleRead}}, auth.Options{Rate: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var sse http.Handler = jobs.SSEHandler(runner, func(r *http.Request) string { return r.PathValue("id") })
	if wrap != nil {
		sse = wrap(sse)
	}
	mux.Handle("GET /api/v1/jobs/{id}/events", a.Middleware(auth.RoleRead, sse))
	mux.Handle("POST /api/v1/fleet/diagnose", a.Middleware(auth.RoleDiagnose, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.WriteError(w, http.StatusServiceUnavailable, "shutting down", "retry later")
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &jobServer{url: srv.URL, runner: runner, token: diag, reads: &read}
}

// TestFollowReconnects breaks the first event stream after its first
// event: Follow opens it again and sees the job to its end.
func TestFollowReconnects(t *testing.T) {
	var opened atomic.Int32
	release := make(chan struct{})
	js := newJobServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n := opened.Add(1); n > 1 {
				if n == 2 { // the devices finish while the new stream is open
					time.AfterFunc(100*time.Millisecond, func() { close(release) })
				}
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("event: snapshot\ndata: {\"type\":\"snapshot\",\"total\":3}\n\n"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-stream
		})
	})
	id, err := js.runner.Submit(context.Background(), "diag", "eng", []string{"d1", "d2", "d3"}, nil, func(ctx context.Context, d string) (any, error) {
		<-release
		return map[string]string{"device": d}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Server: js.url, Token: *js.reads})
	if err != nil {
		t.Fatal(err)
	}
	finished := map[string]bool{}
	var last jobs.Event
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Follow(ctx, id, func(ev jobs.Event) error {
		if ev.Type == jobs.EventDeviceFinished {
			finished[ev.DeviceID] = true
		}
		last = ev
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if opened.Load() < 2 || last.Type != jobs.EventJobFinished || last.Done != 3 {
		t.Errorf("streams opened %d, last event %+v; want a reconnect and job_finished with 3 done", opened.Load(), last)
	}
	if len(finished) != 3 {
		t.Errorf("device_finished seen for %v, want d1, d2, d3", finished)
	}
}

// TestErrors: each refusal of the server maps to its sentinel and keeps
// the server's reason; the token is in no error.
func TestErrors(t *testing.T) {
	js := newJobServer(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		token secret.Secret
		call  func(*Client) error
		want  error
		text  string
	}{
		{"no such token", secret.New("fa_wrong"), func(c *Client) error { return c.Follow(ctx, "j", func(jobs.Event) error { return nil }) }, ErrUnauthorized, "401"},
		{"read token diagnoses", *js.reads, func(c *Client) error { _, err := c.FleetDiagnose(ctx, FleetRequest{SerialPrefix: "X"}); return err }, ErrForbidden, "403"},
		{"no route", js.token, func(c *Client) error { _, err := c.Job(ctx, "j"); return err }, ErrNotFound, "404"},
		{"shutting down", js.token, func(c *Client) error { _, err := c.FleetDiagnose(ctx, FleetRequest{SerialPrefix: "X"}); return err }, ErrBusy, "shutting down"},
		{"unknown job stream", js.token, func(c *Client) error { return c.Follow(ctx, "nope", func(jobs.Event) error { return nil }) }, ErrNotFound, "404"},
	} {
		c, err := New(Options{Server: js.url, Token: tc.token})
		if err != nil {
			t.Fatal(err)
		}
		err = tc.call(c)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v, want %v with %q", tc.name, err, tc.want, tc.text)
		}
		if err != nil && strings.Contains(err.Error(), tc.token.Reveal()) {
			t.Errorf("%s: the token is in the error", tc.name)
		}
	}
	c, _ := New(Options{Server: "http://127.0.0.1:1", Token: js.token, Timeout: 2 * time.Second})
	if _, err := c.Job(ctx, "j"); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: %v, want ErrUnreachable", err)
	}
	if _, err := New(Options{Server: "ftp://x", Token: js.token}); err == nil {
		t.Error("an ftp:// server was accepted")
	}
	if _, err := New(Options{Server: js.url}); err == nil || !strings.Contains(err.Error(), "FIELDAGENT_REMOTE_TOKEN") {
		t.Errorf("no token: %v", err)
	}
}
