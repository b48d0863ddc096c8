package diagnostics

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// webHandler serves the paths the HTTP probe tests use.
func webHandler(t *testing.T, methods *atomic.Value) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if methods != nil {
			methods.Store(r.Method)
		}
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte(strings.Repeat("x", 1000)))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("y", 64<<10))
		for range 16 { // 1 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n <= 0 {
			http.Redirect(w, r, "/ok", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("../redirect/%d", n-1), http.StatusMovedPermanently)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/to-ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://192.0.2.1/file", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(150 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("late"))
	})
	mux.HandleFunc("/cut", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte("only ten b"))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	})
	return mux
}

func readingMap(rs []Reading) map[string]Reading {
	m := map[string]Reading{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

// checkPhases asserts that the timing readings and gauges are consistent:
// none negative, the phases before the first byte fit in it, and total is
// first byte plus transfer.
func checkPhases(t *testing.T, rs map[string]Reading, reg *prometheus.Registry) {
	t.Helper()
	for name, r := range rs {
		if strings.HasSuffix(name, "_ms") && (r.Value < 0 || r.Unit != "ms") {
			t.Errorf("%s = %+v, want a non-negative ms value", name, r)
		}
	}
	dns, connect, tlsMS := rs["http_dns_ms"].Value, rs["http_connect_ms"].Value, rs["http_tls_ms"].Value
	fb, transfer, total := rs["http_first_byte_ms"].Value, rs["http_transfer_ms"].Value, rs["http_total_ms"].Value
	if total < fb {
		t.Errorf("total %v ms < first byte %v ms", total, fb)
	}
	if sum := dns + connect + tlsMS; sum > fb {
		t.Errorf("dns+connect+tls = %v ms > first byte %v ms", sum, fb)
	}
	if d := total - (fb + transfer); d > 1e-6 || d < -1e-6 {
		t.Errorf("total %v ms != first byte %v + transfer %v", total, fb, transfer)
	}
	for _, phase := range []string{"resolve", "connect", "tls", "processing", "transfer"} {
		if v, ok := metricValue(t, reg, "probe_http_duration_seconds", "phase", phase); !ok || v < 0 {
			t.Errorf("probe_http_duration_seconds{phase=%q} = %v (present %v)", phase, v, ok)
		}
	}
}

func TestHTTPProbe(t *testing.T) {
	srv := httptest.NewServer(webHandler(t, nil))
	t.Cleanup(srv.Close)
	tests := []struct {
		name    string
		path    string
		opts    HTTPOptions
		wantErr error
		wantMsg string
		want    map[string]float64
	}{
		{name: "200", path: "/ok",
			want: map[string]float64{"http_status": 200, "http_bytes": 1000, "http_redirects": 0}},
		{name: "redirects followed", path: "/redirect/2",
			want: map[string]float64{"http_status": 200, "http_bytes": 1000, "http_redirects": 3}},
		{name: "redirect not followed", path: "/redirect/0", opts: HTTPOptions{NoRedirects: true},
			want: map[string]float64{"http_status": 302, "http_redirects": 0}},
		{name: "redirect loop is bounded", path: "/loop", opts: HTTPOptions{MaxRedirects: 3},
			wantErr: ErrHTTPRedirects, wantMsg: "stopped after 3 redirects; the next would go to /loop",
			want: map[string]float64{"http_redirects": 3}},
		{name: "redirect to ftp", path: "/to-ftp",
			wantErr: ErrHTTPRedirects, wantMsg: `unusable location "ftp://192.0.2.1/file"`},
		{name: "404", path: "/status/404",
			wantErr: ErrHTTPStatus, wantMsg: "returned 404 Not Found, want 2xx or 3xx",
			want: map[string]float64{"http_status": 404}},
		{name: "503", path: "/status/503",
			wantErr: ErrHTTPStatus, wantMsg: "returned 503 Service Unavailable, want 2xx or 3xx",
			want: map[string]float64{"http_status": 503}},
		{name: "404 expected", path: "/status/404", opts: HTTPOptions{ExpectStatus: []int{404, 410}},
			want: map[string]float64{"http_status": 404}},
		{name: "3xx not in expected list", path: "/redirect/0", opts: HTTPOptions{NoRedirects: true, ExpectStatus: []int{200}},
			wantErr: ErrHTTPStatus, wantMsg: "returned 302 Found, want 200",
			want: map[string]float64{"http_status": 302}},
		{name: "body bounded", path: "/big", opts: HTTPOptions{MaxBytes: 1000},
			want: map[string]float64{"http_status": 200, "http_bytes": 1000}},
		{name: "whole body", path: "/big",
			want: map[string]float64{"http_status": 200, "http_bytes": 1 << 20}},
		{name: "HEAD", path: "/ok", opts: HTTPOptions{Method: "head"},
			want: map[string]float64{"http_status": 200, "http_bytes": 0}},
		{name: "body cut short", path: "/cut",
			wantMsg: "reading the body after 10 bytes",
			want:    map[string]float64{"http_status": 200, "http_bytes": 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			readings, err := HTTPProbe(tc.opts)(t.Context(), srv.URL+tc.path, reg, nil)
			switch {
			case tc.wantMsg == "" && err != nil:
				t.Fatalf("err %v, want none", err)
			case tc.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMsg)):
				t.Fatalf("err %v, want one saying %q", err, tc.wantMsg)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			rs := readingMap(readings)
			for name, v := range tc.want {
				if r, ok := rs[name]; !ok || r.Value != v {
					t.Errorf("%s = %v (present %v), want %v", name, r.Value, ok, v)
				}
			}
			if _, ok := rs["http_tls_ms"]; ok {
				t.Error("http_tls_ms reported for plain http")
			}
			if _, ok := tc.want["http_status"]; !ok {
				return
			}
			checkPhases(t, rs, reg)
			if v, _ := metricValue(t, reg, "probe_http_status_code"); v != tc.want["http_status"] {
				t.Errorf("probe_http_status_code = %v, want %v", v, tc.want["http_status"])
			}
			if v, _ := metricValue(t, reg, "probe_http_redirects"); v != tc.want["http_redirects"] {
				t.Errorf("probe_http_redirects = %v, want %v", v, tc.want["http_redirects"])
			}
		})
	}
}

func TestHTTPProbeContentLengthAndMethod(t *testing.T) {
	var method atomic.Value
	srv := httptest.NewServer(webHandler(t, &method))
	t.Cleanup(srv.Close)
	for _, m := range []string{"GET", "HEAD"} {
		reg := prometheus.NewRegistry()
		if _, err := HTTPProbe(HTTPOptions{Method: m})(t.Context(), srv.URL+"/ok", reg, nil); err != nil {
			t.Fatal(err)
		}
		if got := method.Load(); got != m {
			t.Errorf("server saw %v, want %s", got, m)
		}
		if v, _ := metricValue(t, reg, "probe_http_content_length"); v != 1000 {
			t.Errorf("%s: probe_http_content_length = %v, want 1000", m, v)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := HTTPProbe(HTTPOptions{})(t.Context(), srv.URL+"/big", reg, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := metricValue(t, reg, "probe_http_content_length"); v != -1 {
		t.Errorf("chunked body: probe_http_content_length = %v, want -1 (unknown)", v)
	}
}

func TestHTTPProbeTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(webHandler(t, nil))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake error is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	t.Run("trusted", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		readings, err := HTTPProbe(HTTPOptions{TLSConfig: &tls.Config{RootCAs: roots}})(t.Context(), srv.URL+"/ok", reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs := readingMap(readings)
		if r, ok := rs["http_tls_ms"]; !ok || r.Value <= 0 {
			t.Errorf("http_tls_ms = %+v (present %v), want a handshake time", r, ok)
		}
		if rs["http_status"].Value != 200 || rs["http_bytes"].Value != 1000 {
			t.Errorf("readings %v", readings)
		}
		checkPhases(t, rs, reg)
		if v, _ := metricValue(t, reg, "probe_http_ssl"); v != 1 {
			t.Errorf("probe_http_ssl = %v, want 1", v)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		readings, err := HTTPProbe(HTTPOptions{})(t.Context(), srv.URL+"/ok", nil, nil)
		if !errors.Is(err, ErrHTTPTLS) || !strings.Contains(err.Error(), "wrong clock") {
			t.Fatalf("err %v, want ErrHTTPTLS naming the usual causes", err)
		}
		rs := readingMap(readings)
		if _, ok := rs["http_status"]; ok {
			t.Errorf("http_status reported without a response: %v", readings)
		}
		if _, ok := rs["http_connect_ms"]; !ok {
			t.Errorf("http_connect_ms missing from partial readings %v", readings)
		}
	})
	t.Run("verification skipped explicitly", func(t *testing.T) {
		if _, err := HTTPProbe(HTTPOptions{InsecureSkipVerify: true})(t.Context(), srv.URL+"/ok", nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("caller's config is not modified", func(t *testing.T) {
		conf := &tls.Config{RootCAs: x509.NewCertPool()}
		_, err := HTTPProbe(HTTPOptions{TLSConfig: conf, InsecureSkipVerify: true})(t.Context(), srv.URL+"/ok", nil, nil)
		if err != nil || conf.InsecureSkipVerify {
			t.Fatalf("err %v, InsecureSkipVerify leaked into the caller's config: %v", err, conf.InsecureSkipVerify)
		}
	})
}

func TestHTTPProbeRedirectAcrossSchemes(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(webHandler(t, nil))
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.RedirectHandler(tlsSrv.URL+"/redirect/1", http.StatusFound))
	t.Cleanup(plain.Close)
	reg := prometheus.NewRegistry()
	readings, err := HTTPProbe(HTTPOptions{InsecureSkipVerify: true})(t.Context(), plain.URL, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := readingMap(readings)
	if rs["http_redirects"].Value != 3 || rs["http_status"].Value != 200 {
		t.Errorf("readings %v", readings)
	}
	if _, ok := rs["http_tls_ms"]; !ok {
		t.Error("http_tls_ms missing after a redirect to https")
	}
	checkPhases(t, rs, reg)
}

func TestHTTPProbeSlowFirstByte(t *testing.T) {
	srv := httptest.NewServer(webHandler(t, nil))
	t.Cleanup(srv.Close)

	reg := prometheus.NewRegistry()
	readings, err := HTTPProbe(HTTPOptions{})(t.Context(), srv.URL+"/slow", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := readingMap(readings)
	checkPhases(t, rs, reg)
	// The server waits 150ms before answering: a lower bound it guarantees.
	if fb := rs["http_first_byte_ms"].Value; fb < 150 {
		t.Errorf("http_first_byte_ms = %v, want >= 150 (the server's delay)", fb)
	}
	if v, _ := metricValue(t, reg, "probe_http_duration_seconds", "phase", "processing"); v < 0.15 {
		t.Errorf("processing phase %vs, want >= 0.15", v)
	}

	res := Run(t.Context(), "http", HTTPProbe(HTTPOptions{}), srv.URL+"/slow", 50*time.Millisecond, nil, nil)
	if res.Success || !strings.Contains(res.Err, "while waiting for the response: probe deadline exceeded") {
		t.Errorf("Run with a deadline before the first byte: success %v, err %q", res.Success, res.Err)
	}
}

func TestHTTPProbeConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = HTTPProbe(HTTPOptions{})(t.Context(), "http://"+addr+"/", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "connection refused: nothing listens on that port") {
		t.Fatalf("err %v, want a refused connection", err)
	}
}

func TestHTTPProbeResolver(t *testing.T) {
	web := httptest.NewServer(webHandler(t, nil))
	t.Cleanup(web.Close)
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	f := &fakeResolver{}
	dnsServer := startDNSServer(t, f)

	reg := prometheus.NewRegistry()
	url := "http://web.example.test:" + port + "/ok"
	readings, err := HTTPProbe(HTTPOptions{Resolver: dnsServer})(t.Context(), url, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := readingMap(readings)
	if rs["http_status"].Value != 200 || rs["http_dns_ms"].Value <= 0 {
		t.Errorf("readings %v, want status 200 and the lookup timed", readings)
	}
	checkPhases(t, rs, reg)
	asked := false
	for _, q := range f.seen() {
		asked = asked || strings.HasSuffix(q, " web.example.test. A")
	}
	if !asked {
		t.Errorf("the given resolver was not asked for web.example.test: %q", f.seen())
	}

	_, err = HTTPProbe(HTTPOptions{Resolver: dnsServer})(t.Context(), "http://missing.example.test:"+port+"/", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "host missing.example.test does not exist") {
		t.Errorf("err %v, want the name reported missing", err)
	}
}

func TestHTTPInvalid(t *testing.T) {
	tests := []struct {
		name   string
		opts   HTTPOptions
		target string
		want   error
	}{
		{"ftp URL", HTTPOptions{}, "ftp://192.0.2.1/", ErrInvalidTarget},
		{"no scheme", HTTPOptions{}, "192.0.2.1", ErrInvalidTarget},
		{"no host", HTTPOptions{}, "http:///path", ErrInvalidTarget},
		{"unparsable", HTTPOptions{}, "http://[::1", ErrInvalidTarget},
		{"POST", HTTPOptions{Method: "POST"}, "http://192.0.2.1/", ErrInvalidOptions},
		{"negative max bytes", HTTPOptions{MaxBytes: -1}, "http://192.0.2.1/", ErrInvalidOptions},
		{"negative redirects", HTTPOptions{MaxRedirects: -1}, "http://192.0.2.1/", ErrInvalidOptions},
		{"bad expected status", HTTPOptions{ExpectStatus: []int{20}}, "http://192.0.2.1/", ErrInvalidOptions},
		{"bad resolver", HTTPOptions{Resolver: "udp://192.0.2.1"}, "http://192.0.2.1/", ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := HTTPProbe(tc.opts)(t.Context(), tc.target, nil, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}
