package nbisim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// response is one NBI answer, written as raw HTTP/1.1 so that the reason
// phrase can be GenieACS's own ("202 Task faulted"), which net/http's
// ResponseWriter cannot set.
type response struct {
	status int
	reason string
	// header is written in this order, with the names as given (GenieACS
	// sends a lower-case "total").
	header [][2]string
	body   []byte
}

func (r *response) set(name, value string) { r.header = append(r.header, [2]string{name, value}) }

// maxBody caps a request body (a firmware image in PUT /files/).
const maxBody = 256 << 20

// write sends r on w; for HEAD the body is left out.
func (r *response) write(w io.Writer, version string, head, closing bool) error {
	var b bytes.Buffer
	reason := r.reason
	if reason == "" {
		reason = http.StatusText(r.status)
	}
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.status, reason)
	b.WriteString("GenieACS-Version: " + version + "\r\n")
	for _, h := range r.header {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	if !head {
		b.WriteString("Content-Length: " + strconv.Itoa(len(r.body)) + "\r\n")
	}
	b.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n")
	if closing {
		b.WriteString("Connection: close\r\n")
	} else {
		b.WriteString("Connection: keep-alive\r\n")
	}
	b.WriteString("\r\n")
	if !head {
		b.Write(r.body)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ServeHTTP serves the NBI. It takes the connection over (http.Hijacker)
// to write GenieACS's status lines, and keeps serving the requests that
// follow on it (keep-alive) itself, until the client closes it, it idles
// for Options.IdleTimeout, or Close. A ResponseWriter that cannot be
// hijacked (HTTP/2, httptest.ResponseRecorder) gets the same status,
// headers and body with net/http's standard reason phrase.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		resp := s.handle(r, body)
		for _, h := range resp.header {
			w.Header()[h[0]] = []string{h[1]}
		}
		w.Header()["GenieACS-Version"] = []string{s.opt.Version}
		w.WriteHeader(resp.status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(resp.body)
		}
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	if !s.track(c) {
		_ = c.Close()
		return
	}
	defer s.untrack(c)
	s.serveConn(c, brw.Reader, r, body)
}

// Serve accepts connections on ln and serves the NBI on them with its own
// HTTP/1.1 loop (no net/http server) until ln is closed or Close. It
// returns the error that ended Accept (nil after Close).
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nbisim: accept: %w", err)
		}
		if !s.track(c) {
			_ = c.Close()
			continue
		}
		go func() {
			defer s.untrack(c)
			s.serveConn(c, bufio.NewReader(c), nil, nil)
		}()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// serveConn answers first (already read, may be nil) and every request
// that follows on c.
func (s *Server) serveConn(c net.Conn, br *bufio.Reader, first *http.Request, firstBody []byte) {
	bw := bufio.NewWriter(c)
	req, body := first, firstBody
	for {
		if req == nil {
			_ = c.SetReadDeadline(time.Now().Add(s.opt.IdleTimeout))
			var err error
			if req, err = http.ReadRequest(br); err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Time{})
			if body, err = io.ReadAll(io.LimitReader(req.Body, maxBody+1)); err != nil {
				return
			}
			req.RemoteAddr = c.RemoteAddr().String()
		}
		var resp *response
		if int64(len(body)) > maxBody {
			resp = plain(http.StatusRequestEntityTooLarge, "", "Request body too large")
		} else {
			resp = s.handle(req, body)
		}
		closing := req.Close || resp.status == http.StatusRequestEntityTooLarge
		if err := resp.write(bw, s.opt.Version, req.Method == http.MethodHead, closing); err != nil {
			return
		}
		if err := bw.Flush(); err != nil || closing {
			return
		}
		req, body = nil, nil
	}
}

// plain is an error answer: a plain-text body without Content-Type, as
// GenieACS sends its 4xx.
func plain(status int, reason, msg string) *response {
	return &response{status: status, reason: reason, body: []byte(msg)}
}

// empty is an answer without a body (DELETE, PUT, tags).
func empty(status int, reason string) *response {
	return &response{status: status, reason: reason}
}

// jsonResponse is a JSON document (a task).
func jsonResponse(status int, reason string, body []byte) *response {
	r := &response{status: status, reason: reason, body: body}
	r.set("Content-Type", "application/json")
	return r
}

// listResponse is a collection as GenieACS streams it: "[\n" + items
// joined by ",\n" + "\n]", with the lower-case total header.
func listResponse(items [][]byte, total int) *response {
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, it := range items {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(it)
	}
	b.WriteString("\n]")
	r := &response{status: http.StatusOK, body: b.Bytes()}
	r.set("Content-Type", "application/json")
	r.set("total", strconv.Itoa(total))
	return r
}
