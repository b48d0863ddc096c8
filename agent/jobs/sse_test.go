package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/store"
)

// sseMessage is one parsed Server-Sent Event, or a comment.
type sseMessage struct {
	event, data, comment string
}

// readSSE parses a stream into messages, sending each as it completes,
// and closes out at the end of the stream.
func readSSE(r io.Reader, out chan<- sseMessage) {
	defer close(out)
	sc := bufio.NewScanner(r)
	var m sseMessage
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if m != (sseMessage{}) {
				out <- m
			}
			m = sseMessage{}
		case strings.HasPrefix(line, ":"):
			m.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			m.event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			m.data += line[len("data: "):]
		default:
			m.event = "unexpected line " + line
		}
	}
}

func newSSEServer(t *testing.T, r *Runner) (*httptest.Server, *SSE) {
	t.Helper()
	h := SSEHandler(r, func(req *http.Request) string { return req.PathValue("id") })
	mux := http.NewServeMux()
	mux.Handle("GET /jobs/{id}/events", h)
	mux.Handle("GET /nojob", SSEHandler(r, func(*http.Request) string { return "" }))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, h
}

func openStream(t *testing.T, ctx context.Context, url string) (*http.Response, <-chan sseMessage) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s, Content-Type %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	msgs := make(chan sseMessage, 100)
	go readSSE(resp.Body, msgs)
	return resp, msgs
}

func next(t *testing.T, msgs <-chan sseMessage) (sseMessage, bool) {
	t.Helper()
	select {
	case m, ok := <-msgs:
		return m, ok
	case <-time.After(waitTimeout):
		t.Fatal("no message on the event stream")
		return sseMessage{}, false
	}
}

// TestSSEStream: a client gets the job's events in order, one SSE message
// each, and the stream ends after job_finished.
func TestSSEStream(t *testing.T) {
	r, _ := newRunner(t, 2)
	srv, _ := newSSEServer(t, r)
	ctx := context.Background()
	gate := make(chan struct{})
	devices := deviceIDs(6)
	id, err := r.Submit(ctx, "diag", "", devices, nil, func(_ context.Context, d string) (any, error) {
		<-gate
		return map[string]string{"device": d}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, msgs := openStream(t, ctx, srv.URL+"/jobs/"+id+"/events")
	first, ok := next(t, msgs) // the stream is open and subscribed
	if !ok || first.comment == "" {
		t.Fatalf("first message %+v, want the opening comment", first)
	}
	close(gate)
	var evs []Event
	for {
		m, ok := next(t, msgs)
		if !ok {
			break
		}
		if m.comment != "" {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(m.data), &ev); err != nil {
			t.Fatalf("data %q: %v", m.data, err)
		}
		if ev.Type != m.event || ev.JobID != id {
			t.Errorf("message event %q carries %+v", m.event, ev)
		}
		evs = append(evs, ev)
	}
	// The stream ended (EOF) by itself: the job finished.
	last := checkStream(t, evs, devices)
	if last.State != store.JobDone || last.Done != 6 {
		t.Errorf("job_finished = %+v, want done with 6", last)
	}
	for _, ev := range evs {
		if ev.Type == EventDeviceFinished && string(ev.Result) != `{"device":"`+ev.DeviceID+`"}` {
			t.Errorf("device_finished %+v: want the device's result", ev)
		}
	}

	// A finished job's stream is its end, at once.
	_, msgs = openStream(t, ctx, srv.URL+"/jobs/"+id+"/events")
	var got []string
	for m, ok := next(t, msgs); ok; m, ok = next(t, msgs) {
		if m.comment == "" {
			got = append(got, m.event)
		}
	}
	if len(got) != 1 || got[0] != EventJobFinished {
		t.Errorf("stream of a finished job: %v, want one job_finished", got)
	}
}

// TestSSEHeartbeatAndClientGone: an idle stream gets heartbeat comments;
// when the client goes away the handler unsubscribes.
func TestSSEHeartbeatAndClientGone(t *testing.T) {
	r, _ := newRunner(t, 1)
	srv, h := newSSEServer(t, r)
	h.Heartbeat = 10 * time.Millisecond
	gate := make(chan struct{})
	defer close(gate)
	id, err := r.Submit(context.Background(), "diag", "", []string{"a"}, nil, func(context.Context, string) (any, error) {
		<-gate
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	subscribers := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		if j := r.active[id]; j != nil {
			return len(j.subs)
		}
		return -1
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, msgs := openStream(t, ctx, srv.URL+"/jobs/"+id+"/events")
	for heartbeats := 0; heartbeats < 2; {
		m, ok := next(t, msgs)
		if !ok {
			t.Fatal("stream ended while the job runs")
		}
		if m.comment == "heartbeat" {
			heartbeats++
		}
	}
	if n := subscribers(); n != 1 {
		t.Fatalf("%d subscribers while the client listens, want 1", n)
	}
	cancel()
	waitFor(t, "the handler to unsubscribe", func() bool { return subscribers() == 0 })
}

func TestSSEErrors(t *testing.T) {
	r, _ := newRunner(t, 1)
	srv, _ := newSSEServer(t, r)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/jobs/job-unknown/events", http.StatusNotFound},
		{"/nojob", http.StatusBadRequest},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}
