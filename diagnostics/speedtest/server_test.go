package speedtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldagent/diagnostics/ndt7"
)

// newTestServer serves s on 127.0.0.1 (httptest's default) and closes it at cleanup.
func newTestServer(t testing.TB, opts ServerOptions) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewServer(opts))
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server on %s, want 127.0.0.1", srv.URL)
	}
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, body
}

func TestDownloadBytesExact(t *testing.T) {
	srv := newTestServer(t, ServerOptions{ChunkSize: 1000})
	for _, n := range []int64{0, 1, 999, 1000, 1001, 65536, 5_000_003} {
		t.Run(strconv.FormatInt(n, 10), func(t *testing.T) {
			for _, path := range []string{"/download?bytes=" + strconv.FormatInt(n, 10), "/file/" + strconv.FormatInt(n, 10)} {
				resp, body := get(t, srv.URL+path)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: status %s", path, resp.Status)
				}
				if int64(len(body)) != n {
					t.Errorf("GET %s: got %d bytes, want %d", path, len(body), n)
				}
				if resp.ContentLength != n {
					t.Errorf("GET %s: Content-Length %d, want %d", path, resp.ContentLength, n)
				}
				if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
					t.Errorf("GET %s: Content-Type %q", path, got)
				}
			}
		})
	}
}

func TestDownloadIsIncompressible(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	_, body := get(t, srv.URL+"/download?bytes=100000")
	// Random bytes: no value should dominate (a compressible stream would).
	var counts [256]int
	for _, b := range body {
		counts[b]++
	}
	for v, c := range counts {
		if c > 1000 {
			t.Fatalf("byte %d appears %d times in 100000: data is not random", v, c)
		}
	}
}

func TestFileRangeAndHead(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	_, full := get(t, srv.URL+"/file/10000")

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/file/10000", nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, full[100:200]) {
		t.Errorf("range: status %s, %d bytes, equal=%v", resp.Status, len(part), bytes.Equal(part, full[100:200]))
	}

	resp, err = http.Head(srv.URL + "/file/12345")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 12345 {
		t.Errorf("HEAD: status %s, Content-Length %d, want 200 and 12345", resp.Status, resp.ContentLength)
	}
}

func TestDownloadDuration(t *testing.T) {
	srv := newTestServer(t, ServerOptions{MaxDuration: 100 * time.Millisecond})
	tests := []struct {
		name, query, wantHeader string
	}{
		{"go duration", "duration=20ms", "20ms"},
		{"seconds", "duration=0.02", "20ms"},
		{"clamped to MaxDuration", "duration=1h", "100ms"},
		{"default capped by MaxDuration", "", "100ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/download?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s", resp.Status)
			}
			if got := resp.Header.Get(durationHeader); got != tc.wantHeader {
				t.Errorf("%s = %q, want %q", durationHeader, got, tc.wantHeader)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || n == 0 {
				t.Errorf("streamed %d bytes, err %v; want > 0 and a clean end", n, err)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	srv := newTestServer(t, ServerOptions{MaxFileBytes: 1 << 20})
	tests := []struct {
		path       string
		wantStatus int
		wantText   string
	}{
		{"/download?duration=abc", 400, `duration "abc" is not a duration`},
		{"/download?duration=-1s", 400, "must be positive"},
		{"/download?duration=0", 400, "must be positive"},
		{"/download?duration=NaN", 400, "must be positive"},
		{"/download?duration=1s&duration=2s", 400, "more than once"},
		{"/download?bytes=-5", 400, "not a non-negative integer"},
		{"/download?bytes=1.5", 400, "not a non-negative integer"},
		{"/download?bytes=99999999999999999999", 400, "not a non-negative integer"},
		{"/download?bytes=2000000", 400, "exceeds this server's limit of 1048576"},
		{"/download?bytes=10&duration=1s", 400, "either duration or bytes"},
		{"/file/abc", 400, "not a non-negative integer"},
		{"/file/-1", 400, "not a non-negative integer"},
		{"/file/+5", 400, "not a non-negative integer"},
		{"/file/2000000", 400, "exceeds this server's limit"},
		{"/upload", 405, ""},
		{"/nope", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			if !strings.Contains(string(body), tc.wantText) {
				t.Errorf("body %q does not contain %q", body, tc.wantText)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	resp, body := get(t, srv.URL+"/healthz")
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("healthz: %s %q", resp.Status, body)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	srv := newTestServer(t, ServerOptions{MaxConcurrent: 1})
	// The first transfer holds the only slot while its body is open.
	first, err := http.Get(srv.URL + "/download?duration=10s")
	if err != nil {
		t.Fatal(err)
	}
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first download: %s", first.Status)
	}
	for _, path := range []string{"/download?bytes=10", "/file/10"} {
		resp, body := get(t, srv.URL+path)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s with the slot taken: %s, want 503", path, resp.Status)
		}
		if got := resp.Header.Get("Retry-After"); got == "" {
			t.Errorf("GET %s: 503 without Retry-After", path)
		}
		if !strings.Contains(string(body), "busy") {
			t.Errorf("GET %s: body %q does not say busy", path, body)
		}
	}
	resp, err := http.Post(srv.URL+"/upload", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("upload with the slot taken: %s, want 503", resp.Status)
	}
	// healthz is never limited.
	if resp, _ := get(t, srv.URL+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz with the slot taken: %s", resp.Status)
	}
	first.Body.Close()
}

func TestUploadSink(t *testing.T) {
	srv := newTestServer(t, ServerOptions{MaxUploadBytes: 1 << 20})
	tests := []struct {
		name       string
		method     string
		size       int
		chunked    bool
		wantStatus int
	}{
		{"post small", http.MethodPost, 1000, false, 200},
		{"put small", http.MethodPut, 1000, false, 200},
		{"empty", http.MethodPost, 0, false, 200},
		{"chunked at limit", http.MethodPost, 1 << 20, true, 200},
		{"content-length over limit", http.MethodPost, 1<<20 + 1, false, 413},
		{"chunked over limit", http.MethodPost, 3 << 20, true, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(make([]byte, tc.size))
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: chunked encoding
			}
			req, _ := http.NewRequest(tc.method, srv.URL+"/upload", body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %s, want %d", resp.Status, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				msg, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(msg), "limit") {
					t.Errorf("413 body %q does not name the limit", msg)
				}
				return
			}
			var res uploadResult
			if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
				t.Fatal(err)
			}
			if res.Bytes != int64(tc.size) || res.Seconds < 0 {
				t.Errorf("got %+v, want bytes=%d", res, tc.size)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true},
		{"1500ms", 1500 * time.Millisecond, true},
		{"2.5", 2500 * time.Millisecond, true},
		{"0", 0, false},
		{"-1", 0, false},
		{"-1s", 0, false},
		{"Inf", 0, false},
		{"1e9", 0, false},
		{"", 0, false},
		{"ten", 0, false},
	}
	for _, tc := range tests {
		got, err := parseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestNDT7Mounted: the speed server answers the ndt7 client on
// /ndt/v7/download and /ndt/v7/upload, with ServerOptions.NDT7 applied.
func TestNDT7Mounted(t *testing.T) {
	srv := newTestServer(t, ServerOptions{NDT7: ndt7.ServerOptions{Duration: 600 * time.Millisecond}})
	opts := ndt7.ClientOptions{RampUp: 100 * time.Millisecond}
	for _, run := range []func(context.Context, string, ndt7.ClientOptions) (Measurement, error){ndt7.Download, ndt7.Upload} {
		m, err := run(t.Context(), srv.URL, opts)
		if err != nil {
			t.Fatal(err)
		}
		// The server's 600ms, not ndt7's default 10s, ended the test.
		if m.Mbps <= 0 || m.Streams != 1 || m.Duration > 600*time.Millisecond {
			t.Errorf("%s: %+v", m.Direction, m)
		}
	}
	// A plain GET reaches the ndt7 handler, which asks for an upgrade.
	resp, body := get(t, srv.URL+ndt7.DownloadPath)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "WebSocket") {
		t.Errorf("GET %s: %s %q", ndt7.DownloadPath, resp.Status, body)
	}
}
