package diagnostics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors returned (wrapped) by HTTPProbe.
var (
	// ErrHTTPStatus means the final response's status is not one of
	// HTTPOptions.ExpectStatus (by default: not 2xx or 3xx).
	ErrHTTPStatus = errors.New("unexpected HTTP status")
	// ErrHTTPRedirects means a redirect could not be followed: there were
	// more than HTTPOptions.MaxRedirects, or its Location is not an http or
	// https URL.
	ErrHTTPRedirects = errors.New("too many HTTP redirects")
	// ErrHTTPTLS means the server's certificate failed verification.
	ErrHTTPTLS = errors.New("TLS certificate not trusted")
)

// HTTP probe defaults applied to zero HTTPOptions fields.
const (
	// DefaultHTTPMaxBytes is how much of the final body is read.
	DefaultHTTPMaxBytes = 10 << 20
	// DefaultHTTPMaxRedirects is how many redirects are followed.
	DefaultHTTPMaxRedirects = 10
	// httpUserAgent is sent with every request.
	httpUserAgent = "fieldagent-probe/1"
	// redirectDrainBytes is how much of a redirect's body is read so that
	// its connection can be reused.
	redirectDrainBytes = 64 << 10
)

// HTTPOptions configures HTTPProbe. The zero value is a GET that follows up
// to 10 redirects, reads at most 10 MiB of the body, verifies certificates
// against the system roots, resolves through the system resolver and
// accepts any 2xx or 3xx status.
type HTTPOptions struct {
	// Method is "GET" (also for "") or "HEAD".
	Method string
	// MaxBytes bounds how much of the final body is read; 0 means
	// DefaultHTTPMaxBytes. Reading stops there without error: http_bytes
	// equal to MaxBytes means the body was cut.
	MaxBytes int64
	// NoRedirects returns a 3xx response as the final one instead of
	// following its Location.
	NoRedirects bool
	// MaxRedirects is how many redirects are followed before failing with
	// ErrHTTPRedirects; 0 means DefaultHTTPMaxRedirects.
	MaxRedirects int
	// ExpectStatus lists the status codes that count as success; empty
	// means any 2xx or 3xx.
	ExpectStatus []int
	// TLSConfig, if not nil, is cloned and used for https (for example to
	// set RootCAs or a client certificate); nil means the system roots.
	TLSConfig *tls.Config
	// InsecureSkipVerify skips certificate verification. It is only ever
	// set by this field, never implied.
	InsecureSkipVerify bool
	// Resolver, if not "", is a DNS server (host or host:port, port 53 by
	// default) through which the URL's host name is resolved, e.g. the
	// gateway's LAN address; "" means the system resolver. Names listed in
	// the hosts file are still taken from there.
	Resolver string
}

func (o HTTPOptions) withDefaults() HTTPOptions {
	o.Method = strings.ToUpper(o.Method)
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultHTTPMaxBytes
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = DefaultHTTPMaxRedirects
	}
	return o
}

func (o HTTPOptions) validate() error {
	switch {
	case o.Method != http.MethodGet && o.Method != http.MethodHead:
		return fmt.Errorf("http method %q is not GET or HEAD: %w", o.Method, ErrInvalidOptions)
	case o.MaxBytes < 0:
		return fmt.Errorf("http max bytes %d is negative: %w", o.MaxBytes, ErrInvalidOptions)
	case o.MaxRedirects < 0:
		return fmt.Errorf("http max redirects %d is negative: %w", o.MaxRedirects, ErrInvalidOptions)
	}
	for _, c := range o.ExpectStatus {
		if c < 100 || c > 999 {
			return fmt.Errorf("http expected status %d is not a status code: %w", c, ErrInvalidOptions)
		}
	}
	if o.Resolver != "" {
		if _, err := dnsServerAddr(o.Resolver); err != nil {
			return fmt.Errorf("http resolver: %w: %w", ErrInvalidOptions, err)
		}
	}
	return nil
}

// HTTPProbe returns a Probe that fetches target (an http or https URL) and
// times the request's phases with net/http/httptrace. Redirects are
// followed one by one (bounded by MaxRedirects) on one connection pool.
//
// Readings, in ms unless noted, summed over all redirect hops where that
// makes sense: http_dns_ms, http_connect_ms, http_tls_ms (only when a hop
// used https), http_first_byte_ms (from the start to the first byte of the
// final response, redirects included, like curl's time_starttransfer),
// http_transfer_ms (first byte to the end of the read body), http_total_ms
// (= first byte + transfer), http_status, http_bytes (body bytes read, at
// most MaxBytes; the body is not decompressed) and http_redirects. When the
// request fails before a response, only the phases that completed and
// http_redirects are reported.
//
// Gauges, in blackbox_exporter's shape: probe_http_duration_seconds{phase=
// resolve|connect|tls|processing|transfer} (processing is request written to
// first byte), probe_http_status_code, probe_http_content_length (the
// Content-Length header, -1 when unknown), probe_http_redirects and
// probe_http_ssl (1 when the final response came over TLS).
//
// Errors: ErrHTTPStatus (names the status and what was expected),
// ErrHTTPRedirects, ErrHTTPTLS (certificate not trusted, with the usual
// causes), ErrTimeout (names the phase the deadline cut), connection and
// DNS errors wrapped with the URL, and ErrInvalidTarget / ErrInvalidOptions.
func HTTPProbe(opts HTTPOptions) Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, logger *slog.Logger) ([]Reading, error) {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		o := opts.withDefaults()
		if err := o.validate(); err != nil {
			return nil, err
		}
		u, err := parseHTTPTarget(target)
		if err != nil {
			return nil, err
		}
		m := newHTTPMetrics(reg, logger)
		run := &httpRun{opts: o, logger: logger}
		tr := run.transport()
		defer tr.CloseIdleConnections()
		run.client = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		err = run.fetch(ctx, u)
		readings := run.readings()
		m.set(run)
		return readings, err
	}
}

// parseHTTPTarget accepts absolute http and https URLs with a host.
func parseHTTPTarget(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("http target %q: %w: %w", target, ErrInvalidTarget, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("http target %q: scheme must be http or https: %w", target, ErrInvalidTarget)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("http target %q: no host: %w", target, ErrInvalidTarget)
	}
	return u, nil
}

// httpRun is one probe run: its options, client and the hops so far.
type httpRun struct {
	opts   HTTPOptions
	logger *slog.Logger
	client *http.Client

	start     time.Time
	end       time.Time // end of the body read; zero without a final response
	hops      []*httpHop
	redirects int
	status    int   // final status; 0 without a final response
	length    int64 // final Content-Length, -1 unknown
	bytes     int64
	finalTLS  bool
}

func (r *httpRun) transport() *http.Transport {
	dialer := &net.Dialer{}
	if r.opts.Resolver != "" {
		server, _ := dnsServerAddr(r.opts.Resolver) // validated
		dialer.Resolver = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, server)
			},
		}
	}
	tlsConf := &tls.Config{}
	if r.opts.TLSConfig != nil {
		tlsConf = r.opts.TLSConfig.Clone()
	}
	if r.opts.InsecureSkipVerify {
		tlsConf.InsecureSkipVerify = true
	}
	return &http.Transport{
		Proxy:                  nil, // measure the direct path, whatever the environment says
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConf,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// fetch follows target's redirects and reads the final body.
func (r *httpRun) fetch(ctx context.Context, target *url.URL) error {
	r.start = time.Now()
	r.length = -1
	cur := target
	for {
		hop := &httpHop{url: cur.String(), https: cur.Scheme == "https"}
		r.hops = append(r.hops, hop)
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, hop.trace()), r.opts.Method, hop.url, nil)
		if err != nil {
			return fmt.Errorf("%s %s: %w: %w", r.opts.Method, hop.url, ErrInvalidTarget, err)
		}
		req.Header.Set("User-Agent", httpUserAgent)
		resp, err := r.client.Do(req)
		if err != nil {
			return r.requestErr(ctx, hop, err)
		}
		r.logger.Debug("http response", "url", hop.url, "status", resp.StatusCode, "proto", resp.Proto)
		loc := resp.Header.Get("Location")
		if r.opts.NoRedirects || loc == "" || !isRedirect(resp.StatusCode) {
			return r.readFinal(ctx, hop, resp)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, redirectDrainBytes))
		resp.Body.Close()
		if r.redirects == r.opts.MaxRedirects {
			return fmt.Errorf("%s %s: stopped after %d redirects; the next would go to %s: %w",
				r.opts.Method, target, r.redirects, loc, ErrHTTPRedirects)
		}
		next, err := cur.Parse(loc)
		if err != nil || (next.Scheme != "http" && next.Scheme != "https") || next.Hostname() == "" {
			return fmt.Errorf("%s %s: redirect %d from %s to unusable location %q: %w",
				r.opts.Method, target, r.redirects+1, cur, loc, ErrHTTPRedirects)
		}
		r.redirects++
		cur = next
	}
}

// readFinal reads the final response's body (bounded) and checks its status.
func (r *httpRun) readFinal(ctx context.Context, hop *httpHop, resp *http.Response) error {
	defer resp.Body.Close()
	r.status, r.length, r.finalTLS = resp.StatusCode, resp.ContentLength, resp.TLS != nil
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, r.opts.MaxBytes))
	r.end = time.Now()
	r.bytes = n
	hop.mu.Lock()
	if hop.firstByte.IsZero() {
		hop.firstByte = r.end
	}
	hop.mu.Unlock()
	if err != nil {
		if deadlinePassed(ctx) {
			return doneErr(ctx, fmt.Sprintf("%s %s reading the body after %d bytes", r.opts.Method, hop.url, n))
		}
		return fmt.Errorf("%s %s: reading the body after %d bytes: %w", r.opts.Method, hop.url, n, err)
	}
	if n == r.opts.MaxBytes {
		r.logger.Debug("http body read stopped at the limit", "url", hop.url, "max_bytes", r.opts.MaxBytes)
	}
	if !r.statusOK(resp.StatusCode) {
		return fmt.Errorf("%s %s returned %d %s, want %s: %w", r.opts.Method, hop.url,
			resp.StatusCode, http.StatusText(resp.StatusCode), r.expectDesc(), ErrHTTPStatus)
	}
	return nil
}

// requestErr explains a failed request: the deadline (naming the phase it
// cut), an untrusted certificate, a DNS failure or a refused connection.
func (r *httpRun) requestErr(ctx context.Context, hop *httpHop, err error) error {
	what := r.opts.Method + " " + hop.url
	var certErr *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	switch {
	case deadlinePassed(ctx):
		return doneErr(ctx, what+" "+hop.phase())
	case errors.As(err, &certErr):
		return fmt.Errorf("%s: the server's certificate is not trusted (a wrong clock on this device, a captive portal "+
			"or a proxy intercepting https are the usual causes; set the CA, or skip verification explicitly to measure anyway): %w: %w",
			what, ErrHTTPTLS, err)
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Errorf("%s: host %s does not exist according to the resolver: %w", what, dnsErr.Name, err)
		}
		return fmt.Errorf("%s: resolving the host failed: %w", what, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: connection refused: nothing listens on that port: %w", what, err)
	}
	return fmt.Errorf("%s %s: %w", what, hop.phase(), err)
}

func (r *httpRun) statusOK(code int) bool {
	if len(r.opts.ExpectStatus) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(r.opts.ExpectStatus, code)
}

func (r *httpRun) expectDesc() string {
	if len(r.opts.ExpectStatus) == 0 {
		return "2xx or 3xx"
	}
	s := make([]string, len(r.opts.ExpectStatus))
	for i, c := range r.opts.ExpectStatus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, " or ")
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// httpPhases are the run's phase durations summed over its hops.
type httpPhases struct {
	dns, connect, tls, processing time.Duration
	usedTLS                       bool
}

func (r *httpRun) phases() httpPhases {
	var p httpPhases
	for _, h := range r.hops {
		h.mu.Lock()
		p.dns += span(h.dnsStart, h.dnsDone)
		p.connect += span(h.connStart, h.connDone)
		p.tls += span(h.tlsStart, h.tlsDone)
		p.processing += span(h.wrote, h.firstByte)
		p.usedTLS = p.usedTLS || h.https
		h.mu.Unlock()
	}
	return p
}

// firstByte is the final hop's first byte; zero without a final response.
func (r *httpRun) firstByte() time.Time {
	if r.end.IsZero() {
		return time.Time{}
	}
	h := r.hops[len(r.hops)-1]
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.firstByte
}

func (r *httpRun) readings() []Reading {
	p := r.phases()
	rs := []Reading{
		{Name: "http_dns_ms", Value: ms(p.dns), Unit: "ms"},
		{Name: "http_connect_ms", Value: ms(p.connect), Unit: "ms"},
	}
	if p.usedTLS {
		rs = append(rs, Reading{Name: "http_tls_ms", Value: ms(p.tls), Unit: "ms"})
	}
	if r.end.IsZero() {
		return append(rs, Reading{Name: "http_redirects", Value: float64(r.redirects)})
	}
	fb := r.firstByte()
	return append(rs,
		Reading{Name: "http_first_byte_ms", Value: ms(span(r.start, fb)), Unit: "ms"},
		Reading{Name: "http_transfer_ms", Value: ms(span(fb, r.end)), Unit: "ms"},
		Reading{Name: "http_total_ms", Value: ms(span(r.start, r.end)), Unit: "ms"},
		Reading{Name: "http_status", Value: float64(r.status)},
		Reading{Name: "http_bytes", Value: float64(r.bytes), Unit: "B"},
		Reading{Name: "http_redirects", Value: float64(r.redirects)},
	)
}

// httpMetrics are HTTPProbe's gauges.
type httpMetrics struct {
	duration                            *prometheus.GaugeVec
	status, length, redirects, sslGauge prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer, logger *slog.Logger) httpMetrics {
	m := httpMetrics{
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_http_duration_seconds",
			Help: "Duration of http request by phase, summed over all redirects",
		}, []string{"phase"}),
		status: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "probe_http_status_code",
			Help: "Response HTTP status code",
		}),
		length: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "probe_http_content_length",
			Help: "Length of http content response",
		}),
		redirects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "probe_http_redirects",
			Help: "The number of redirects",
		}),
		sslGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "probe_http_ssl",
			Help: "Indicates if SSL was used for the final redirect",
		}),
	}
	register(reg, logger, m.duration, m.status, m.length, m.redirects, m.sslGauge)
	return m
}

func (m httpMetrics) set(r *httpRun) {
	p := r.phases()
	m.duration.WithLabelValues("resolve").Set(p.dns.Seconds())
	m.duration.WithLabelValues("connect").Set(p.connect.Seconds())
	m.duration.WithLabelValues("tls").Set(p.tls.Seconds())
	m.duration.WithLabelValues("processing").Set(p.processing.Seconds())
	m.redirects.Set(float64(r.redirects))
	if r.end.IsZero() {
		return
	}
	m.duration.WithLabelValues("transfer").Set(span(r.firstByte(), r.end).Seconds())
	m.status.Set(float64(r.status))
	m.length.Set(float64(r.length))
	if r.finalTLS {
		m.sslGauge.Set(1)
	}
}

// httpHop records the httptrace events of one request (the first or one
// after a redirect). The hooks may run on other goroutines.
type httpHop struct {
	url   string
	https bool

	mu                  sync.Mutex
	dnsStart, dnsDone   time.Time
	connStart, connDone time.Time
	tlsStart, tlsDone   time.Time
	wrote, firstByte    time.Time
}

// trace returns hooks that fill h. Each time is the first of its kind, so
// a parallel (happy-eyeballs) dial counts from its first attempt to its
// first success.
func (h *httpHop) trace() *httptrace.ClientTrace {
	mark := func(t *time.Time) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if t.IsZero() {
			*t = time.Now()
		}
	}
	return &httptrace.ClientTrace{
		DNSStart:     func(httptrace.DNSStartInfo) { mark(&h.dnsStart) },
		DNSDone:      func(httptrace.DNSDoneInfo) { mark(&h.dnsDone) },
		ConnectStart: func(string, string) { mark(&h.connStart) },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				mark(&h.connDone)
			}
		},
		TLSHandshakeStart: func() { mark(&h.tlsStart) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				mark(&h.tlsDone)
			}
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { mark(&h.wrote) },
		GotFirstResponseByte: func() { mark(&h.firstByte) },
	}
}

// phase names how far the hop got, for errors: "resolving the host",
// "connecting", "in the TLS handshake", "waiting for the response" ...
func (h *httpHop) phase() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.dnsStart.IsZero() && h.connStart.IsZero():
		return "while resolving the host"
	case !h.connStart.IsZero() && h.connDone.IsZero():
		return "while connecting"
	case !h.tlsStart.IsZero() && h.tlsDone.IsZero():
		return "in the TLS handshake"
	case !h.wrote.IsZero() && h.firstByte.IsZero():
		return "while waiting for the response"
	case !h.firstByte.IsZero():
		return "while reading the response"
	}
	return "before connecting"
}

// span is b-a, or 0 when either is unset or b is before a.
func span(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return 0
	}
	return b.Sub(a)
}
