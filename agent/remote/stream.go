package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"fieldagent/agent/jobs"
)

// maxEventLine bounds one line of an event stream (a device's result).
const maxEventLine = 4 << 20

// ErrStreamEnded means an event stream ended before its job did, and did
// not come back after the retries.
var ErrStreamEnded = errors.New("the job's event stream ended before the job")

// ReadEvents parses a Server-Sent Events stream (the WHATWG format: "event:"
// and "data:" fields, a blank line ends an event, ":" starts a comment) and
// calls fn with each event's name (default "message") and data. It returns
// fn's first error, the reader's, or nil at the end of the stream.
func ReadEvents(r io.Reader, fn func(name string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	sc.Split(scanSSELines)
	var name string
	var data bytes.Buffer
	dispatch := func() error {
		if data.Len() == 0 {
			name = ""
			return nil
		}
		d := bytes.TrimSuffix(data.Bytes(), []byte("\n"))
		n := name
		if n == "" {
			n = "message"
		}
		name = ""
		err := fn(n, d)
		data.Reset()
		return err
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := dispatch(); err != nil {
				return err
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			data.Write(value)
			data.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return nil // an event without its blank line is dropped, as the spec says
}

// scanSSELines splits at the three line ends the SSE format allows: CRLF,
// LF, and a lone CR.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		// A CR: part of a CRLF if an LF follows; we need the next byte to know.
		if i+1 < len(data) {
			if data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
			return i + 1, data[:i], nil
		}
		if atEOF {
			return i + 1, data[:i], nil
		}
		return 0, nil, nil // wait for the byte after the CR
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// errJobFinished stops ReadEvents after the job's last event.
var errJobFinished = errors.New("job finished")

// Follow streams a job's events (GET /api/v1/jobs/{id}/events) to fn until
// the job finishes (fn has then seen its jobs.EventJobFinished), fn
// returns an error, or ctx ends. A stream that breaks off is reopened up
// to 5 times with backoff; the server starts each stream with a snapshot,
// so fn may see a device's event again after a reconnect (Seq tells).
func (c *Client) Follow(ctx context.Context, jobID string, fn func(jobs.Event) error) error {
	path := "/api/v1/jobs/" + url.PathEscape(jobID) + "/events"
	backoff := 500 * time.Millisecond
	var lastErr error
	for attempt := 0; attempt <= 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 8*time.Second)
		}
		err := c.followOnce(ctx, path, fn)
		switch {
		case errors.Is(err, errJobFinished):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			lastErr = ErrStreamEnded
		case errors.Is(err, ErrUnreachable):
			lastErr = err
		default:
			return err // an answer of the server, or fn's own error
		}
	}
	return fmt.Errorf("remote: job %s: %w (last: %w)", jobID, ErrStreamEnded, lastErr)
}

func (c *Client) followOnce(ctx context.Context, path string, fn func(jobs.Event) error) error {
	// Only connecting is bounded by the client's timeout: a stream lasts
	// as long as its job (the server sends heartbeats while idle).
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := c.request(cctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	timer := time.AfterFunc(c.timeout, cancel)
	resp, err := c.hc.Do(req)
	timer.Stop()
	if err != nil {
		return c.transportErr(cctx, http.MethodGet, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerErr(http.MethodGet, path, resp)
	}
	var fatal error // a bad event or fn's error: not retried
	err = ReadEvents(resp.Body, func(name string, data []byte) error {
		var ev jobs.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			fatal = fmt.Errorf("remote: %s: event %q is not a job event: %w", path, name, err)
			return fatal
		}
		if ev.Type == "" {
			ev.Type = name
		}
		if err := fn(ev); err != nil {
			fatal = err
			return err
		}
		if ev.Type == jobs.EventJobFinished {
			return errJobFinished
		}
		return nil
	})
	switch {
	case errors.Is(err, errJobFinished):
		return err
	case fatal != nil:
		return fatal
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("%w: the stream broke: %w", ErrUnreachable, err)
	}
	return err
}
