package speedtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fieldagent/diagnostics/speedtest/result"
)

// Sentinel errors returned (wrapped) by Download and Upload.
var (
	// ErrInvalidOptions means ClientOptions or the base URL failed validation.
	ErrInvalidOptions = errors.New("invalid speed test options")
	// ErrUnreachable means the server's /healthz did not answer before the
	// transfer started: check the URL, routing and firewall.
	ErrUnreachable = errors.New("speed test server unreachable")
	// ErrBusy means the server answered 503 (too many transfers) and no
	// stream could run; retry after the Retry-After delay.
	ErrBusy = errors.New("speed test server busy")
	// ErrUploadTooLarge means the server answered 413: its MaxUploadBytes is
	// below the client's request size.
	ErrUploadTooLarge = errors.New("upload refused by the server as too large")
	// ErrServer means the server answered an unexpected HTTP status.
	ErrServer = errors.New("unexpected speed test server response")
	// ErrStream means a transfer stream failed mid-test (connection reset,
	// truncated body).
	ErrStream = errors.New("speed test stream failed")
	// ErrNoData means no byte moved during the measurement window.
	ErrNoData = errors.New("no data transferred in the measurement window")
)

// Directions reported in Measurement.Direction and Progress.Direction.
const (
	DirectionDownload = result.DirectionDownload
	DirectionUpload   = result.DirectionUpload
)

// Client defaults, applied to zero ClientOptions fields.
const (
	// DefaultStreams is how many parallel streams a test starts with.
	DefaultStreams = 2
	// DefaultMaxStreams caps the streams a test grows to during ramp-up.
	DefaultMaxStreams = 8
	// DefaultDuration is one direction's transfer time, ramp-up included.
	DefaultDuration = 10 * time.Second
	// DefaultSampleInterval is how often throughput is sampled and reported.
	DefaultSampleInterval = 250 * time.Millisecond
)

const (
	// growthThreshold: a stream is added while each sample beats the last by this factor.
	growthThreshold   = 1.10
	latencyInterval   = 200 * time.Millisecond
	latencyTimeout    = 2 * time.Second
	idleLatencyProbes = 3
	minUploadRequest  = 1 << 20
	maxUploadRequest  = 64 << 20
	streamBufferSize  = 128 << 10
	downloadSlack     = time.Second
	ioBufferSize      = 64 << 10
	uploadWriteSize   = 1 << 20
)

// ClientOptions configures Download and Upload. The zero value starts 2
// streams, grows up to 8 and runs 10s per direction with a 2s ramp-up.
type ClientOptions struct {
	// Streams is how many parallel TCP streams start; 0 means DefaultStreams.
	Streams int
	// MaxStreams caps the streams added during ramp-up; 0 means
	// DefaultMaxStreams, and it is raised to Streams if below it.
	MaxStreams int
	// Duration is the whole transfer time of one direction, ramp-up included;
	// 0 means DefaultDuration.
	Duration time.Duration
	// RampUp is the start of the transfer that is excluded from the figure
	// (TCP slow start, stream growth); 0 means Duration/5. It must be below
	// Duration. During ramp-up a stream is added at the first sample and then
	// at every sample whose rate beat the previous one by more than 10%, up
	// to MaxStreams; so RampUp/SampleInterval bounds the streams added.
	RampUp time.Duration
	// SampleInterval is how often throughput is sampled, streams are added and
	// Progress is called; 0 means DefaultSampleInterval (250ms).
	SampleInterval time.Duration
	// HTTPClient, if nil, is a private client with one plain HTTP/1.1
	// connection per stream (no proxy, no compression, no HTTP/2, which would
	// multiplex the streams onto one TCP connection) whose connections'
	// TCP_INFO gives the byte counts and Retransmits on linux. A caller's
	// client is used as is, for the streams and the latency probes alike;
	// bytes are then counted as the streams read or write them (coarser: a
	// read waits to fill its 128 KiB buffer, a write counts what the socket
	// buffer still holds) and Retransmits stays -1.
	HTTPClient *http.Client
	// Progress, if not nil, is called every SampleInterval from one goroutine
	// with the current rate. It must return quickly.
	Progress func(Progress)
	// Logger, if nil, discards.
	Logger *slog.Logger
}

// Progress is one throughput sample, passed to ClientOptions.Progress. It is
// result.Progress, shared with package ndt7.
type Progress = result.Progress

// Measurement is the result of one direction of a speed test. It is
// result.Measurement, which package ndt7 returns too.
type Measurement = result.Measurement

func (o ClientOptions) withDefaults() (ClientOptions, error) {
	switch {
	case o.Streams < 0, o.MaxStreams < 0:
		return o, fmt.Errorf("streams %d / max streams %d must not be negative: %w", o.Streams, o.MaxStreams, ErrInvalidOptions)
	case o.Duration < 0, o.RampUp < 0, o.SampleInterval < 0:
		return o, fmt.Errorf("duration, ramp-up and sample interval must not be negative: %w", ErrInvalidOptions)
	}
	if o.Streams == 0 {
		o.Streams = DefaultStreams
	}
	if o.MaxStreams == 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	o.MaxStreams = max(o.MaxStreams, o.Streams)
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.RampUp == 0 {
		o.RampUp = o.Duration / 5
	}
	if o.RampUp >= o.Duration {
		return o, fmt.Errorf("ramp-up %s must be shorter than duration %s: %w", o.RampUp, o.Duration, ErrInvalidOptions)
	}
	if o.SampleInterval == 0 {
		o.SampleInterval = DefaultSampleInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Download measures download throughput from the Server at baseURL (e.g.
// "http://192.0.2.10:8080"). On error the Measurement holds what was measured
// so far. Cancelling ctx stops every stream; Download returns only after all
// of its goroutines have ended.
func Download(ctx context.Context, baseURL string, opts ClientOptions) (Measurement, error) {
	return measure(ctx, DirectionDownload, baseURL, opts)
}

// Upload measures upload throughput to the Server at baseURL, like Download.
// Each stream sends a series of chunked POST /upload requests of growing
// size (1 MiB to 64 MiB); the server's MaxUploadBytes must allow them.
func Upload(ctx context.Context, baseURL string, opts ClientOptions) (Measurement, error) {
	return measure(ctx, DirectionUpload, baseURL, opts)
}

// parseBaseURL checks that raw is an absolute http(s) URL and strips a trailing slash.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("base URL %q: %w: %w", raw, ErrInvalidOptions, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base URL %q must look like http://host:port: %w", raw, ErrInvalidOptions)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// endpoint returns base + path with query q.
func endpoint(base *url.URL, path string, q url.Values) string {
	u := *base
	u.Path += path
	u.RawQuery = q.Encode()
	return u.String()
}

// test is the state of one Download or Upload run.
type test struct {
	dir     string
	base    *url.URL
	opts    ClientOptions
	data    *http.Client
	probe   *http.Client
	conns   *connRecorder // nil with a caller's HTTP client
	random  []byte
	bytes   atomic.Int64
	stopped atomic.Bool
	end     time.Time
}

func measure(ctx context.Context, dir, baseURL string, opts ClientOptions) (Measurement, error) {
	m := Measurement{Direction: dir, Retransmits: -1}
	o, err := opts.withDefaults()
	if err != nil {
		return m, err
	}
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return m, err
	}
	t := &test{dir: dir, base: base, opts: o, data: o.HTTPClient, probe: o.HTTPClient}
	if t.data == nil {
		var closeIdle func()
		t.data, t.probe, t.conns, closeIdle = privateClients(o.MaxStreams)
		defer closeIdle()
	}
	if dir == DirectionUpload {
		t.random = randomBuffer(streamBufferSize)
	}

	// Reachability and idle latency, before any load.
	idle := make([]time.Duration, 0, idleLatencyProbes)
	for i := 0; i <= idleLatencyProbes; i++ {
		rtt, err := t.healthz(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return m, fmt.Errorf("speed test %s: %w", dir, ctx.Err())
			}
			return m, fmt.Errorf("speed test %s: GET /healthz: %w: %w", dir, ErrUnreachable, err)
		}
		if i > 0 { // the first probe pays for the TCP handshake
			idle = append(idle, rtt)
		}
	}
	m.IdleLatencyMs = msFloat(median(idle))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, o.MaxStreams)
	start := time.Now()
	t.end = start.Add(o.Duration)
	rampEnd := start.Add(o.RampUp)
	startStream := func() {
		wg.Go(func() {
			err := t.stream(runCtx)
			if err != nil && !t.stopped.Load() {
				errc <- err // capacity MaxStreams >= streams ever started
			}
		})
	}
	for range o.Streams {
		startStream()
	}
	var lat latencySamples
	wg.Go(func() { t.sampleLatency(runCtx, &lat) })

	finish := func(err error) (Measurement, error) {
		t.stopped.Store(true)
		if t.conns != nil {
			t.conns.abort()
		}
		cancel()
		wg.Wait()
		samples, postRamp := lat.get(rampEnd)
		if len(postRamp) > 0 {
			samples = postRamp
		}
		m.LatencySamples = len(samples)
		m.LatencyUnderLoadMs = msFloat(median(samples))
		m.TotalBytes = t.transferred()
		return m, err
	}

	streams := o.Streams
	m.Streams = streams
	growing, firstSample := true, true
	prevRate := 0.0
	lastBytes, lastAt := int64(0), start
	rampDone := false
	var rampBytes int64
	var rampAt time.Time
	ticker := time.NewTicker(o.SampleInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return finish(fmt.Errorf("speed test %s: %w", dir, ctx.Err()))
		case err := <-errc:
			if errors.Is(err, ErrBusy) && streams > 1 {
				streams--
				m.Streams = streams
				growing = false
				o.Logger.Warn("speed test stream refused, server busy", "direction", dir, "streams", streams)
				continue
			}
			return finish(fmt.Errorf("speed test %s: %w", dir, err))
		case <-ticker.C:
		}
		now := time.Now()
		b := t.transferred()
		rate := mbps(b-lastBytes, now.Sub(lastAt))
		inRamp := !rampDone
		switch {
		case !rampDone && !now.Before(rampEnd):
			rampDone, rampBytes, rampAt = true, b, now
		case !rampDone && growing && streams < o.MaxStreams:
			// Add a stream at the first sample, then again after every
			// sample that beat the one before by more than 10%.
			if firstSample || stillGrowing(prevRate, rate) {
				startStream()
				streams++
				m.Streams = streams
			} else {
				growing = false
			}
		}
		prevRate, firstSample = rate, false
		lastBytes, lastAt = b, now
		if o.Progress != nil {
			o.Progress(Progress{Direction: dir, Elapsed: now.Sub(start), Mbps: rate, Bytes: b, Streams: streams, RampUp: inRamp})
		}
		if rampDone && now.After(rampAt) && !now.Before(t.end) {
			m.Bytes = b - rampBytes
			m.Duration = now.Sub(rampAt)
			m.Mbps = mbps(m.Bytes, m.Duration)
			if t.conns != nil {
				m.Retransmits = t.conns.retransmits()
			}
			o.Logger.Debug("speed test done", "direction", dir, "mbps", m.Mbps, "streams", streams,
				"bytes", b, "stream_bytes", t.bytes.Load())
			if m.Bytes <= 0 {
				return finish(fmt.Errorf("speed test %s over %s: %w", dir, m.Duration, ErrNoData))
			}
			return finish(nil)
		}
	}
}

// transferred is the test's byte count: the kernel's (TCP_INFO) with the
// private client on linux, else what the streams read or wrote.
func (t *test) transferred() int64 {
	if t.conns != nil {
		if n, ok := t.conns.transferred(t.dir); ok {
			return n
		}
	}
	return t.bytes.Load()
}

// stream runs one download or upload stream until ctx ends; it returns nil
// when stopped and an error when the server refused or the transfer broke.
func (t *test) stream(ctx context.Context) error {
	if t.dir == DirectionDownload {
		return t.downloadStream(ctx)
	}
	return t.uploadStream(ctx)
}

// countWriter adds every write's length to n.
type countWriter struct{ n *atomic.Int64 }

func (c countWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

func (t *test) downloadStream(ctx context.Context) error {
	buf := make([]byte, streamBufferSize)
	for ctx.Err() == nil {
		remaining := max(time.Until(t.end), 0) + downloadSlack
		q := url.Values{"duration": {strconv.FormatFloat(remaining.Seconds(), 'f', 3, 64)}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint(t.base, "/download", q), nil)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		resp, err := t.data.Do(req)
		if err != nil {
			return t.streamErr(ctx, err)
		}
		if resp.StatusCode != http.StatusOK {
			return statusErr(resp)
		}
		_, err = io.CopyBuffer(countWriter{&t.bytes}, resp.Body, buf)
		resp.Body.Close()
		if err != nil {
			return t.streamErr(ctx, err)
		}
	}
	return nil
}

// uploadBody yields up to remaining bytes of random data, counting them, and
// ends early once stop is closed.
type uploadBody struct {
	data      []byte
	off       int
	remaining int64
	count     *atomic.Int64
	stop      <-chan struct{}
}

func (u *uploadBody) Read(p []byte) (int, error) {
	if u.remaining <= 0 {
		return 0, io.EOF
	}
	select {
	case <-u.stop:
		return 0, io.EOF
	default:
	}
	n := copy(p, u.data[u.off:])
	if int64(n) > u.remaining {
		n = int(u.remaining)
	}
	u.off = (u.off + n) % len(u.data)
	u.remaining -= int64(n)
	u.count.Add(int64(n))
	return n, nil
}

// WriteTo writes the body to w in slices of up to uploadWriteSize straight
// from the random buffer: the HTTP transport's io.Copy uses it, so each
// slice reaches the connection as one large write, not copied through a
// 32 KiB buffer and a 64 KiB bufio.Writer.
func (u *uploadBody) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for u.remaining > 0 {
		select {
		case <-u.stop:
			return n, nil
		default:
		}
		p := u.data[u.off:]
		p = p[:min(int64(len(p)), u.remaining, uploadWriteSize)]
		m, err := w.Write(p)
		n += int64(m)
		u.off = (u.off + m) % len(u.data)
		u.remaining -= int64(m)
		u.count.Add(int64(m))
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (t *test) uploadStream(ctx context.Context) error {
	size := int64(minUploadRequest)
	for ctx.Err() == nil {
		body := &uploadBody{data: t.random, remaining: size, count: &t.bytes, stop: ctx.Done()}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint(t.base, "/upload", nil), body)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		req.ContentLength = -1 // chunked: the body may end early when the test stops
		req.Header.Set("Content-Type", contentTypeOctetStream)
		resp, err := t.data.Do(req)
		if err != nil {
			return t.streamErr(ctx, err)
		}
		if resp.StatusCode != http.StatusOK {
			return statusErr(resp)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		size = min(size*2, maxUploadRequest)
	}
	return nil
}

// streamErr turns a transport error into nil when the test is stopping, or
// into an ErrStream error.
func (t *test) streamErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || t.stopped.Load() {
		return nil
	}
	return fmt.Errorf("%s stream: %w: %w", t.dir, ErrStream, err)
}

// statusErr maps a non-200 response to a sentinel error and closes its body.
func statusErr(resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	text := strings.TrimSpace(string(msg))
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %s (Retry-After %q)", ErrBusy, text, resp.Header.Get("Retry-After"))
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %s", ErrUploadTooLarge, text)
	}
	return fmt.Errorf("%w: %s %s: %s", ErrServer, resp.Request.URL.Path, resp.Status, text)
}

// healthz times one GET /healthz on the probe client.
func (t *test) healthz(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, latencyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint(t.base, "/healthz", nil), nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := t.probe.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10)); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%w: /healthz %s", ErrServer, resp.Status)
	}
	return time.Since(start), nil
}

// latencySamples collects timed /healthz round trips.
type latencySamples struct {
	mu  sync.Mutex
	at  []time.Time
	rtt []time.Duration
}

func (l *latencySamples) add(at time.Time, rtt time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = append(l.at, at)
	l.rtt = append(l.rtt, rtt)
}

// get returns all samples and those taken at or after from.
func (l *latencySamples) get(from time.Time) (all, after []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, at := range l.at {
		if !at.Before(from) {
			after = append(after, l.rtt[i])
		}
	}
	return slices.Clone(l.rtt), after
}

// sampleLatency probes /healthz every latencyInterval until ctx ends.
func (t *test) sampleLatency(ctx context.Context, l *latencySamples) {
	tick := time.NewTicker(latencyInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		at := time.Now()
		rtt, err := t.healthz(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.opts.Logger.Debug("latency probe failed", "err", err)
			}
			continue
		}
		l.add(at, rtt)
	}
}

// privateClients returns a data client whose connections are recorded for
// TCP_INFO, a separate probe client (so latency probes never wait for a busy
// stream connection), the recorder, and a func that closes idle connections.
func privateClients(maxStreams int) (data, probe *http.Client, rec *connRecorder, closeIdle func()) {
	rec = &connRecorder{}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	newTransport := func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
		return &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			ForceAttemptHTTP2:     false,
			TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
			DisableCompression:    true,
			MaxIdleConnsPerHost:   maxStreams + 2,
			IdleConnTimeout:       30 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			WriteBufferSize:       ioBufferSize,
			ReadBufferSize:        ioBufferSize,
		}
	}
	dataTr := newTransport(rec.dial(dialer))
	probeTr := newTransport(dialer.DialContext)
	return &http.Client{Transport: dataTr}, &http.Client{Transport: probeTr}, rec, func() {
		dataTr.CloseIdleConnections()
		probeTr.CloseIdleConnections()
	}
}

// connRecorder remembers every connection dialed for the data streams and
// the last TCP_INFO counters read from each (a closed connection keeps its
// last reading).
type connRecorder struct {
	mu     sync.Mutex
	conns  []*recordedConn
	kernel bool // some connection's TCP_INFO has been read
}

type recordedConn struct {
	c    net.Conn
	last tcpCounters
}

func (r *connRecorder) dial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			r.mu.Lock()
			r.conns = append(r.conns, &recordedConn{c: c})
			r.mu.Unlock()
		}
		return c, err
	}
}

// refresh reads TCP_INFO of every open recorded connection. Callers hold r.mu.
func (r *connRecorder) refresh() {
	for _, rc := range r.conns {
		if tc, ok := readTCPCounters(rc.c); ok {
			rc.last = tc
			r.kernel = true
		}
	}
}

// transferred returns the payload bytes the kernel has received (download)
// or had acknowledged (upload) over all stream connections, and false when
// TCP_INFO is unavailable (not linux, or no connection yet). Unlike the
// bytes the streams have read or written, it does not lag behind reads
// that wait to fill a buffer, nor run ahead by what sits in a send buffer.
func (r *connRecorder) transferred(dir string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	var sum int64
	for _, rc := range r.conns {
		if dir == DirectionDownload {
			sum += rc.last.received
		} else {
			sum += rc.last.acked
		}
	}
	return sum, r.kernel
}

// abort reads the counters a last time, then resets every recorded
// connection (SO_LINGER 0): a plain close would leave the kernel sending
// what the upload streams' socket buffers still hold, megabytes that keep
// a slow link busy for seconds after the test returned.
func (r *connRecorder) abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	for _, rc := range r.conns {
		if tc, ok := rc.c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = rc.c.Close()
	}
}

// retransmits sums tcpi_total_retrans over the recorded connections, or -1
// when the platform does not expose it.
func (r *connRecorder) retransmits() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	if !r.kernel {
		return -1
	}
	var sum int64
	for _, rc := range r.conns {
		sum += int64(rc.last.retrans)
	}
	return sum
}

// stillGrowing reports whether rate beats prevRate by more than 10%, the
// signal to add one more stream during ramp-up.
func stillGrowing(prevRate, rate float64) bool {
	return prevRate > 0 && rate > prevRate*growthThreshold
}

func mbps(bytes int64, d time.Duration) float64 { return result.Mbps(bytes, d) }

func msFloat(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median is result.Median.
func median(ds []time.Duration) time.Duration { return result.Median(ds) }
