package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"fieldagent/agent/store"
)

// defaultHeartbeat is how often an idle event stream gets a comment line,
// so that proxies and clients do not take it for dead.
const defaultHeartbeat = 15 * time.Second

// SSE serves a job's events (Runner.Subscribe) as Server-Sent Events: one
// "event: <type>\ndata: <Event as JSON>\n\n" per event, flushed at once, and
// a ": heartbeat" comment when the stream has been idle for Heartbeat. The
// stream ends after job_finished, or when the client goes away. An empty
// job ID is 400, an unknown job 404.
type SSE struct {
	Runner *Runner
	// JobID extracts the job's ID from the request (e.g. r.PathValue("id")).
	JobID func(*http.Request) string
	// Heartbeat, if zero, is 15 s.
	Heartbeat time.Duration
}

// SSEHandler returns an SSE handler for runner's jobs, with the job ID
// taken from each request by jobID.
func SSEHandler(runner *Runner, jobID func(*http.Request) string) *SSE {
	return &SSE{Runner: runner, JobID: jobID}
}

// ServeHTTP streams the events of the request's job.
func (h *SSE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := h.JobID(r)
	if id == "" {
		http.Error(w, "job ID missing from the request", http.StatusBadRequest)
		return
	}
	events, unsubscribe, err := h.Runner.Subscribe(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, fmt.Sprintf("job %q not found", id), http.StatusNotFound)
		return
	}
	if err != nil {
		h.Runner.logger().Error("event stream not opened", "job", id, "err", err)
		http.Error(w, "the job's events could not be read from the store", http.StatusInternalServerError)
		return
	}
	defer unsubscribe()

	heartbeat := h.Heartbeat
	if heartbeat <= 0 {
		heartbeat = defaultHeartbeat
	}
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// Each write gets its own deadline (the server's WriteTimeout would cut
	// a long stream; a client that stops reading must not hold us forever).
	send := func(msg string) error {
		_ = rc.SetWriteDeadline(time.Now().Add(heartbeat + 30*time.Second)) // not every writer supports it
		if _, err := io.WriteString(w, msg); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send(": job " + id + "\n\n"); err != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			data, err := json.Marshal(ev)
			if err != nil { // cannot happen: Event has only marshalable fields and Result is valid JSON
				h.Runner.logger().Error("event not encoded", "job", id, "err", err)
				return
			}
			if err := send("event: " + ev.Type + "\ndata: " + string(data) + "\n\n"); err != nil {
				return
			}
			tick.Reset(heartbeat)
		case <-tick.C:
			if err := send(": heartbeat\n\n"); err != nil {
				return
			}
		}
	}
}
