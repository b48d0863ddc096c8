// Package nbireplay replays recorded GenieACS NBI exchanges (the format of
// tr069/genieacs/testdata/nbi/README.md) from a loopback HTTP/1.1 server,
// strictly: every request must be the next expected one — same method,
// path, decoded query (query and sort compared as JSON, projection as a set
// of fields), headers the recording names, and body (as JSON, or bytes for
// a file upload). Anything else fails the test and is answered
// "599 Replay Mismatch". Responses carry the recorded status line with its
// reason phrase (which net/http's ResponseWriter cannot set, hence the raw
// listener), headers and body, a list in GenieACS's streamed layout.
package nbireplay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Request is the recorded request.
type Request struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// Response is the recorded response.
type Response struct {
	Status  int               `json:"status"`
	Reason  string            `json:"reason"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// Exchange is one recorded request and its response.
type Exchange struct {
	// File is the fixture file name ("" for one built in a test).
	File        string   `json:"-"`
	Description string   `json:"description"`
	Request     Request  `json:"request"`
	Response    Response `json:"response"`
	ElapsedMS   int      `json:"elapsed_ms"`
	// Derived, when set, says how a test changed the recording (shown in
	// failures so that nobody mistakes it for a recording).
	Derived string `json:"-"`
}

// Name is the fixture name, with what a test derived from it.
func (e Exchange) Name() string {
	n := e.File
	if n == "" {
		n = "synthetic"
	}
	if e.Derived != "" {
		n += " (derived: " + e.Derived + ")"
	}
	return n
}

// WithRequestPath returns a copy of e that expects path instead; why says
// why, for failure messages.
func (e Exchange) WithRequestPath(path, why string) Exchange {
	e.Request.Path = path
	e.Derived = why
	return e
}

// WithRequestBody returns a copy of e that expects body (JSON) instead;
// why says why, for failure messages.
func (e Exchange) WithRequestBody(body, why string) Exchange {
	e.Request.Body = json.RawMessage(body)
	e.Derived = why
	return e
}

// Load reads the fixtures of dir whose names start with each of prefixes
// followed by "-" (e.g. "10" for 10-task-get-parameter-values.json), in
// the order given.
func Load(dir string, prefixes ...string) ([]Exchange, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Exchange
	for _, p := range prefixes {
		var found string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), p+"-") && strings.HasSuffix(e.Name(), ".json") {
				found = e.Name()
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("nbireplay: no fixture %s-*.json in %s", p, dir)
		}
		b, err := os.ReadFile(filepath.Join(dir, found))
		if err != nil {
			return nil, err
		}
		var ex Exchange
		if err := json.Unmarshal(b, &ex); err != nil {
			return nil, fmt.Errorf("nbireplay: %s: %w", found, err)
		}
		ex.File = found
		out = append(out, ex)
	}
	return out, nil
}

// MustLoad is Load that fails t.
func MustLoad(t testing.TB, dir string, prefixes ...string) []Exchange {
	t.Helper()
	ex, err := Load(dir, prefixes...)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// Server serves a sequence of exchanges.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port.
	URL string

	t     testing.TB
	ln    net.Listener
	mu    sync.Mutex
	queue []Exchange
	next  int
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Start serves exchanges in order until the test ends; at the end it
// fails t if any exchange was not requested.
func Start(t testing.TB, exchanges ...Exchange) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), t: t, ln: ln, queue: exchanges, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		s.Close()
		if rest := s.Remaining(); len(rest) > 0 {
			names := make([]string, len(rest))
			for i, e := range rest {
				names[i] = e.Name()
			}
			t.Errorf("nbireplay: %d expected exchanges were never requested: %s", len(rest), strings.Join(names, ", "))
		}
	})
	return s
}

// Remaining returns the exchanges not yet requested.
func (s *Server) Remaining() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Exchange(nil), s.queue[s.next:]...)
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		s.mu.Lock()
		var ex Exchange
		var problem string
		if s.next >= len(s.queue) {
			problem = fmt.Sprintf("unexpected request %s %s after the last expected exchange", req.Method, req.RequestURI)
		} else {
			ex = s.queue[s.next]
			if problem = Compare(ex.Request, req, body); problem == "" {
				s.next++
			} else {
				problem = fmt.Sprintf("request %s %s does not match %s: %s", req.Method, req.RequestURI, ex.Name(), problem)
			}
		}
		s.mu.Unlock()
		if problem != "" {
			s.t.Errorf("nbireplay: %s", problem)
			msg := []byte(problem)
			fmt.Fprintf(c, "HTTP/1.1 599 Replay Mismatch\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(msg))
			_, _ = c.Write(msg)
			return
		}
		if _, err := c.Write(Encode(ex.Response, req.Method == http.MethodHead)); err != nil {
			return
		}
	}
}

// Compare returns "" when the request (with its body read) is the recorded
// one, else what differs.
func Compare(want Request, got *http.Request, body []byte) string {
	if got.Method != want.Method {
		return fmt.Sprintf("method %s, want %s", got.Method, want.Method)
	}
	wantPath, wantQuery, _ := strings.Cut(want.Path, "?")
	wp, err1 := url.PathUnescape(wantPath)
	gp, err2 := url.PathUnescape(got.URL.EscapedPath())
	if err1 != nil || err2 != nil || wp != gp {
		return fmt.Sprintf("path %q, want %q", got.URL.EscapedPath(), wantPath)
	}
	if d := compareQuery(wantQuery, got.URL.RawQuery); d != "" {
		return d
	}
	for k, v := range want.Headers {
		if g := headerValue(got.Header, k); g != v {
			return fmt.Sprintf("header %s %q, want %q", k, g, v)
		}
	}
	return compareBody(want, body)
}

// headerValue reads a header by a case-insensitive name.
func headerValue(h http.Header, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func compareQuery(want, got string) string {
	wq, err1 := url.ParseQuery(want)
	gq, err2 := url.ParseQuery(got)
	if err1 != nil || err2 != nil {
		if want != got {
			return fmt.Sprintf("query %q, want %q", got, want)
		}
		return ""
	}
	keys := func(q url.Values) []string {
		var k []string
		for n := range q {
			k = append(k, n)
		}
		sort.Strings(k)
		return k
	}
	if !reflect.DeepEqual(keys(wq), keys(gq)) {
		return fmt.Sprintf("query parameters %v, want %v (raw %q, want %q)", keys(gq), keys(wq), got, want)
	}
	for k, wv := range wq {
		gv := gq[k]
		if len(gv) != len(wv) {
			return fmt.Sprintf("query parameter %s given %d times, want %d", k, len(gv), len(wv))
		}
		for i := range wv {
			var same bool
			switch k {
			case "query", "sort":
				same = sameJSON([]byte(wv[i]), []byte(gv[i]))
			case "projection":
				same = reflect.DeepEqual(fieldSet(wv[i]), fieldSet(gv[i]))
			default:
				same = wv[i] == gv[i]
			}
			if !same {
				return fmt.Sprintf("query parameter %s = %q, want %q", k, gv[i], wv[i])
			}
		}
	}
	return ""
}

func fieldSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		m[f] = true
	}
	return m
}

// sameJSON compares two JSON texts semantically; two texts that are not
// JSON compare as bytes.
func sameJSON(a, b []byte) bool {
	var av, bv any
	errA, errB := json.Unmarshal(a, &av), json.Unmarshal(b, &bv)
	if errA != nil || errB != nil {
		return errA != nil && errB != nil && bytes.Equal(a, b)
	}
	return reflect.DeepEqual(av, bv)
}

func compareBody(want Request, got []byte) string {
	w := bytes.TrimSpace(want.Body)
	if len(w) == 0 || string(w) == "null" {
		if len(got) != 0 {
			return fmt.Sprintf("body %q, want none", truncate(got))
		}
		return ""
	}
	var s string
	if json.Unmarshal(w, &s) == nil && !strings.Contains(headerValue(http.Header(toHeader(want.Headers)), "Content-Type"), "json") {
		if string(got) != s {
			return fmt.Sprintf("body %q, want %q", truncate(got), truncate([]byte(s)))
		}
		return ""
	}
	if !sameJSON(w, got) {
		return fmt.Sprintf("body %s, want %s", truncate(got), truncate(w))
	}
	return ""
}

func toHeader(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h[k] = []string{v}
	}
	return h
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// Encode writes a recorded response as HTTP/1.1 bytes: the status line
// with the recorded reason phrase, the recorded headers with their names
// as recorded, Content-Length, and the body (omitted for HEAD). A JSON
// array is laid out as GenieACS streams lists ("[\n" + items joined by
// ",\n" + "\n]"); a JSON string without a JSON Content-Type is sent as
// plain text; "" is an empty body.
func Encode(r Response, head bool) []byte {
	body := BodyBytes(r)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.Status, r.Reason)
	names := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %s\r\n", k, r.Headers[k])
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	if !head {
		b.Write(body)
	}
	return b.Bytes()
}

// BodyBytes is the response body as GenieACS sent it.
func BodyBytes(r Response) []byte {
	raw := bytes.TrimSpace(r.Body)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil
		}
		if !strings.Contains(headerValue(toHeader(r.Headers), "Content-Type"), "json") {
			return []byte(s)
		}
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) == nil {
		parts := make([]string, len(items))
		for i, it := range items {
			var c bytes.Buffer
			_ = json.Compact(&c, it)
			parts[i] = c.String()
		}
		return []byte("[\n" + strings.Join(parts, ",\n") + "\n]")
	}
	var c bytes.Buffer
	if json.Compact(&c, raw) != nil {
		return raw
	}
	return c.Bytes()
}
