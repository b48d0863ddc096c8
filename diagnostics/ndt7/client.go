package ndt7

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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"fieldagent/diagnostics/speedtest/result"
)

// Client defaults, applied to zero ClientOptions fields.
const (
	// DefaultSampleInterval is how often Progress is called.
	DefaultSampleInterval = 250 * time.Millisecond
	// DefaultUserAgent identifies the client to the server, as the spec asks.
	DefaultUserAgent = "fieldagent-ndt7/1"
)

const (
	dialTimeout = 10 * time.Second
	// maxServerSamples bounds the measurements kept from a chatty server.
	maxServerSamples = 1000
	// finWait is how long the client lets the server close the connection first.
	finWait = time.Second
)

// ClientOptions configures Download and Upload. The zero value lets the
// server end the test (10 s on this package's Server, at most MaxDuration),
// excludes the first 2 s from the figure and samples every 250 ms.
type ClientOptions struct {
	// Duration, if > 0, ends the test from the client side (a normal close)
	// after this long if the server has not ended it first. 0 leaves the end
	// to the server, bounded by MaxDuration; above MaxDuration is invalid.
	Duration time.Duration
	// RampUp is the start of the test excluded from the figure (TCP slow
	// start); 0 means a fifth of Duration, or of DefaultDuration when
	// Duration is 0. It must be below Duration. A test that the server ends
	// before the ramp-up is over is measured whole.
	RampUp time.Duration
	// SampleInterval is how often throughput is sampled and Progress is
	// called; 0 means DefaultSampleInterval.
	SampleInterval time.Duration
	// TLSConfig is used for https:// and wss:// base URLs; nil means Go's defaults.
	TLSConfig *tls.Config
	// NetDialContext, if nil, is a net.Dialer with a 10 s timeout. Proxies
	// are never used: they would measure the proxy.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// UserAgent, if empty, is DefaultUserAgent.
	UserAgent string
	// Progress, if not nil, is called every SampleInterval from one
	// goroutine with the client's own current rate (Streams is 1). It must
	// return quickly.
	Progress func(result.Progress)
	// Logger, if nil, discards.
	Logger *slog.Logger
}

func (o ClientOptions) withDefaults() (ClientOptions, error) {
	switch {
	case o.Duration < 0, o.RampUp < 0, o.SampleInterval < 0:
		return o, fmt.Errorf("duration, ramp-up and sample interval must not be negative: %w", ErrInvalidOptions)
	case o.Duration > MaxDuration:
		return o, fmt.Errorf("duration %s exceeds the ndt7 maximum of %s: %w", o.Duration, MaxDuration, ErrInvalidOptions)
	}
	span := o.Duration
	if span == 0 {
		span = DefaultDuration
	}
	if o.RampUp == 0 {
		o.RampUp = span / 5
	}
	if o.Duration > 0 && o.RampUp >= o.Duration {
		return o, fmt.Errorf("ramp-up %s must be shorter than duration %s: %w", o.RampUp, o.Duration, ErrInvalidOptions)
	}
	if o.SampleInterval == 0 {
		o.SampleInterval = DefaultSampleInterval
	}
	if o.NetDialContext == nil {
		o.NetDialContext = (&net.Dialer{Timeout: dialTimeout}).DialContext
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Download runs an ndt7 download test against the server at baseURL (e.g.
// "http://192.0.2.10:8080", "https://ndt.example" or "wss://..."; a path is
// kept as a prefix of /ndt/v7/download) and measures the binary payload it
// receives after the ramp-up. The Measurement's Streams is 1. On error it
// holds what was measured so far. Cancelling ctx ends the test at once;
// Download returns only after all of its goroutines have ended.
func Download(ctx context.Context, baseURL string, opts ClientOptions) (result.Measurement, error) {
	return measure(ctx, result.DirectionDownload, baseURL, opts)
}

// Upload runs an ndt7 upload test like Download. The figure comes from the
// server's measurements when it sends them: TCPInfo.BytesReceived over
// TCPInfo.ElapsedTime (the server's kernel count, which a server slow to
// read does not skew), else AppInfo.NumBytes over AppInfo.ElapsedTime;
// else from the bytes the server's TCP acknowledged (TCP_INFO, linux);
// else from the bytes the client wrote, which counts what still sits in
// its socket buffer. The client answers the server's pings between frames.
func Upload(ctx context.Context, baseURL string, opts ClientOptions) (result.Measurement, error) {
	return measure(ctx, result.DirectionUpload, baseURL, opts)
}

// testURL turns baseURL into the ws(s):// URL of path, with the client
// metadata the spec asks for in the query string.
func testURL(baseURL, path string) (*url.URL, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("base URL %q: %w: %w", baseURL, ErrInvalidOptions, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("base URL %q must look like http://host:port or ws://host:port: %w", baseURL, ErrInvalidOptions)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("base URL %q has no host: %w", baseURL, ErrInvalidOptions)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath, u.Fragment = "", ""
	u.RawQuery = url.Values{"client_name": {"fieldagent"}, "client_library_name": {"fieldagent-ndt7"}}.Encode()
	return u, nil
}

// serverSample is one measurement message from the server, as received.
type serverSample struct {
	app     point // AppInfo: payload bytes at ElapsedTime
	tcp     point // TCPInfo: BytesReceived at its ElapsedTime
	rtt     time.Duration
	minRTT  time.Duration
	retrans *int64
}

// point is a byte count at a time since the test started; at < 0 means absent.
type point struct {
	at    time.Duration
	bytes int64
}

// elapsed is when the sample was taken, or -1.
func (s serverSample) elapsed() time.Duration { return max(s.app.at, s.tcp.at) }

// snapshot is a byte count at a moment.
type snapshot struct {
	at    time.Time
	bytes int64
}

// clientTest is the state of one Download or Upload run.
type clientTest struct {
	dir   string
	opts  ClientOptions
	conn  *websocket.Conn
	start time.Time

	bytes     atomic.Int64 // own count of binary payload
	textBytes atomic.Int64 // text messages read, framing included
	lastData  atomic.Int64 // download: UnixNano of the last binary read
	closing   atomic.Bool  // the client has decided to end the test
	// closedCleanly is set by run when the close handshake completed.
	closedCleanly bool
	// pong is the payload of a ping the upload writer has yet to answer.
	pong atomic.Pointer[string]

	hardEnd   time.Time  // the read and write deadline
	dlMu      sync.Mutex // orders cancelIO and resetWriteDeadline
	cancelled bool

	mu        sync.Mutex
	samples   []serverSample
	ownRTT    []time.Duration // upload: own tcpi_rtt after the ramp-up
	ownRTTAll []time.Duration
}

func measure(ctx context.Context, dir, baseURL string, opts ClientOptions) (result.Measurement, error) {
	m := result.Measurement{Direction: dir, Streams: 1, Retransmits: -1}
	o, err := opts.withDefaults()
	if err != nil {
		return m, err
	}
	path := DownloadPath
	if dir == result.DirectionUpload {
		path = UploadPath
	}
	u, err := testURL(baseURL, path)
	if err != nil {
		return m, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	conn, err := dial(ctx, u, o)
	if err != nil {
		return m, fmt.Errorf("ndt7 %s %s: %w", dir, u.Redacted(), err)
	}
	defer conn.Close()

	t := &clientTest{dir: dir, opts: o, conn: conn, start: time.Now()}
	limit := MaxDuration
	if o.Duration > 0 {
		limit = o.Duration
	}
	t.hardEnd = t.start.Add(limit + closeTimeout)
	// ctx's deadline or cancellation fails every pending read and write at
	// once (after ctx is done, so that the error is ctx's).
	stop := context.AfterFunc(ctx, t.cancelIO)
	defer stop()
	_ = conn.SetReadDeadline(t.hardEnd)
	_ = conn.SetWriteDeadline(t.hardEnd)
	conn.SetReadLimit(MaxMessageSize)
	if dir == result.DirectionUpload {
		setNotSentLowat(conn.NetConn(), notSentLowat)
		// The writer goroutine is the only one to write during an upload
		// (see clientFrames): gorilla's handlers must not answer pings or
		// close frames themselves.
		conn.SetPingHandler(func(data string) error {
			t.pong.Store(&data)
			return nil
		})
		conn.SetCloseHandler(func(int, string) error { return nil })
	}

	runErr := t.run(ctx, limit, &m)
	if runErr == nil && ctx.Err() == nil && t.closedCleanly {
		awaitServerClose(conn)
	} else {
		abort(conn.NetConn())
	}
	if ctx.Err() != nil {
		return m, fmt.Errorf("ndt7 %s: %w", dir, ctx.Err())
	}
	if runErr != nil {
		return m, fmt.Errorf("ndt7 %s %s: %w", dir, u.Redacted(), runErr)
	}
	if m.Bytes <= 0 {
		return m, fmt.Errorf("ndt7 %s over %s: %w", dir, m.Duration, ErrNoData)
	}
	o.Logger.Debug("ndt7 test done", "direction", dir, "mbps", m.Mbps, "bytes", m.Bytes, "seconds", m.Duration.Seconds())
	return m, nil
}

// dial opens the WebSocket and checks the subprotocol, mapping failures to
// the package's sentinel errors.
func dial(ctx context.Context, u *url.URL, o ClientOptions) (*websocket.Conn, error) {
	var dialErr error
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := o.NetDialContext(ctx, network, addr)
			dialErr = err
			return c, err
		},
		Proxy:            nil,
		TLSClientConfig:  o.TLSConfig,
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   wsBufferSize,
		WriteBufferSize:  wsBufferSize,
		Subprotocols:     []string{SubProtocol},
	}
	hdr := http.Header{"User-Agent": {o.UserAgent}}
	conn, resp, err := d.DialContext(ctx, u.String(), hdr)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case dialErr != nil:
			return nil, fmt.Errorf("%w: %w", ErrUnreachable, dialErr)
		case resp != nil:
			return nil, statusErr(resp, err)
		case isTLSError(err):
			return nil, fmt.Errorf("%w: TLS: %w", ErrUnreachable, err)
		}
		return nil, fmt.Errorf("%w: WebSocket handshake: %w", ErrServer, err)
	}
	if conn.Subprotocol() != SubProtocol {
		conn.Close()
		return nil, fmt.Errorf("%w (server chose %q): is this an ndt7 server?", ErrSubprotocol, conn.Subprotocol())
	}
	return conn, nil
}

// statusErr maps a refused upgrade to a sentinel error.
func statusErr(resp *http.Response, err error) error {
	var text string
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		text = strings.TrimSpace(string(b))
	}
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %s (Retry-After %q)", ErrBusy, text, resp.Header.Get("Retry-After"))
	case http.StatusSwitchingProtocols:
		return fmt.Errorf("%w: invalid WebSocket handshake: %w", ErrProtocol, err)
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return fmt.Errorf("%w: %s: no ndt7 test at this URL: %s", ErrServer, resp.Status, text)
	}
	return fmt.Errorf("%w: upgrade answered %s: %s", ErrServer, resp.Status, text)
}

func isTLSError(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		rh tls.RecordHeaderError
		al tls.AlertError
	)
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &al)
}

// run moves data until the server closes the test or limit passes, then
// fills m. It returns the test's error, if any; m holds what was measured.
func (t *clientTest) run(ctx context.Context, limit time.Duration, m *result.Measurement) error {
	var wg sync.WaitGroup
	readDone := make(chan error, 1)
	wg.Go(func() { readDone <- t.read() })
	writeDone := make(chan error, 1)
	if t.dir == result.DirectionUpload {
		wg.Go(func() { writeDone <- t.write() })
	}

	var ramp, end snapshot
	haveRamp := false
	last := snapshot{at: t.start}
	tick := time.NewTicker(t.opts.SampleInterval)
	defer tick.Stop()
	limitTimer := time.NewTimer(limit)
	defer limitTimer.Stop()
	var readErr error
	serverEnded := false
loop:
	for {
		select {
		case readErr = <-readDone:
			serverEnded = true
			break loop
		case <-ctx.Done():
			break loop
		case <-limitTimer.C:
			break loop
		case <-tick.C:
		}
		now := time.Now()
		b := t.count()
		inRamp := now.Sub(t.start) < t.opts.RampUp
		if !inRamp && !haveRamp {
			ramp, haveRamp = snapshot{now, b}, true
		}
		if t.dir == result.DirectionUpload {
			t.sampleOwnRTT(!inRamp)
		}
		if t.opts.Progress != nil {
			t.opts.Progress(result.Progress{
				Direction: t.dir, Elapsed: now.Sub(t.start), Mbps: result.Mbps(b-last.bytes, now.Sub(last.at)),
				Bytes: b, Streams: 1, RampUp: inRamp,
			})
		}
		last = snapshot{now, b}
	}

	// The window ends now (client's decision) or at the last data read
	// (server's close); bytes still arriving after the client's decision
	// are not counted.
	end = snapshot{time.Now(), t.count()}
	if serverEnded && t.dir == result.DirectionDownload {
		if ns := t.lastData.Load(); ns > 0 {
			end.at = time.Unix(0, ns)
		}
	}
	t.closing.Store(true)

	var writeErr error
	if t.dir == result.DirectionUpload {
		writeErr = <-writeDone
	}
	if !serverEnded && ctx.Err() == nil {
		// The client ends the test: a normal close, then wait for the
		// server's close frame (the read deadline bounds the wait).
		closeWith(t.conn, websocket.CloseNormalClosure, "client done")
		wait := time.NewTimer(closeTimeout)
		select {
		case readErr = <-readDone:
			t.closedCleanly = websocket.IsCloseError(readErr, websocket.CloseNormalClosure, websocket.CloseGoingAway)
			if t.closedCleanly || isClosedEarly(readErr) {
				readErr = nil
			}
		case <-wait.C:
			readErr = nil // the figure is complete; the server is slow to close
			_ = t.conn.NetConn().SetDeadline(time.Unix(1, 0))
			<-readDone
		}
		wait.Stop()
	} else if serverEnded {
		t.closedCleanly = websocket.IsCloseError(readErr, websocket.CloseNormalClosure, websocket.CloseGoingAway)
		var ce *websocket.CloseError
		if t.dir == result.DirectionUpload && errors.As(readErr, &ce) && ce.Code != websocket.CloseAbnormalClosure {
			// The answer gorilla's default handler would have sent, now
			// that the writer has sent its last frame.
			code := ce.Code
			if code == websocket.CloseNoStatusReceived {
				code = websocket.CloseNormalClosure
			}
			closeWith(t.conn, code, "")
		}
	}
	wg.Wait()

	m.TotalBytes = end.bytes
	t.fill(m, ramp, end, haveRamp)

	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := t.classify(readErr, haveRamp); err != nil {
		return err
	}
	if writeErr != nil && !errors.Is(writeErr, websocket.ErrCloseSent) && !isClosedEarly(writeErr) {
		if !haveRamp {
			return fmt.Errorf("%w: send: %w", ErrStream, writeErr)
		}
		t.opts.Logger.Warn("ndt7 upload ended abruptly; figure measured up to then", "err", writeErr)
	}
	return nil
}

// awaitServerClose waits up to finWait for the server to close the TCP
// connection after the close handshake, as the spec asks: the side that
// closes first keeps the TIME_WAIT state, and a busy server should not.
func awaitServerClose(conn *websocket.Conn) {
	nc := conn.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(finWait))
	var b [512]byte
	for {
		if _, err := nc.Read(b[:]); err != nil {
			return
		}
	}
}

// isClosedEarly reports errors from a connection the server dropped right
// after its close frame or in answer to ours.
func isClosedEarly(err error) bool {
	var ce *websocket.CloseError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure
}

// classify turns the reader's final error into the test's error: nil for
// a normal close, and for an abrupt end after the ramp-up (the spec asks
// clients to tolerate those; it is logged).
func (t *clientTest) classify(readErr error, haveRamp bool) error {
	var ce *websocket.CloseError
	switch {
	case readErr == nil:
		return nil
	case errors.Is(readErr, ErrProtocol):
		return readErr
	case errors.Is(readErr, websocket.ErrReadLimit):
		return fmt.Errorf("%w: message larger than %d bytes", ErrProtocol, MaxMessageSize)
	case errors.As(readErr, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		// 1006 is gorilla's name for a connection dropped without a close frame.
	case errors.As(readErr, &ce) && ce.Code != websocket.CloseNormalClosure && ce.Code != websocket.CloseGoingAway:
		return fmt.Errorf("%w: server closed the test with code %d %q", ErrServer, ce.Code, ce.Text)
	case errors.As(readErr, &ce):
		return nil
	}
	if !haveRamp {
		return fmt.Errorf("%w: %w", ErrStream, readErr)
	}
	t.opts.Logger.Warn("ndt7 connection ended abruptly; figure measured up to then", "direction", t.dir, "err", readErr)
	return nil
}

// count is the client's own byte count. On linux it is the kernel's
// (TCP_INFO): for a download the bytes received less the text messages
// read, for an upload the bytes the server acknowledged, WebSocket framing
// included either way; so it neither lags behind a reader that the CPU
// scheduler holds up nor runs ahead by what a send buffer holds. Elsewhere
// it is the binary payload read or written.
func (t *clientTest) count() int64 {
	ti, _, ok := readTCPInfo(t.conn.NetConn())
	switch {
	case !ok:
		return t.bytes.Load()
	case t.dir == result.DirectionUpload:
		return max(ti.BytesAcked-1, 0) // the SYN counts as one byte
	}
	return ti.BytesReceived - t.textBytes.Load()
}

// read reads the server's messages until an error: the close (a
// *websocket.CloseError), a protocol violation or a broken connection.
func (t *clientTest) read() error {
	var buf []byte
	for {
		mt, r, err := t.conn.NextReader()
		if err != nil {
			return err
		}
		switch mt {
		case websocket.BinaryMessage:
			if t.dir == result.DirectionUpload {
				closeWith(t.conn, websocket.CloseUnsupportedData, "binary message during upload")
				return fmt.Errorf("%w: server sent a binary message during the upload", ErrProtocol)
			}
			if buf == nil {
				buf = make([]byte, readBufferSize)
			}
			if err := t.discard(r, buf); err != nil {
				return err
			}
		case websocket.TextMessage:
			b, err := io.ReadAll(io.LimitReader(r, maxTextMessageSize+1))
			if err != nil {
				return err
			}
			t.textBytes.Add(int64(len(b)) + frameHeaderSize(len(b)))
			msg, err := ParseMessage(b)
			if err != nil {
				closeWith(t.conn, websocket.CloseProtocolError, "bad measurement message")
				return err
			}
			t.record(msg)
		}
	}
}

// discard reads one binary message, counting its bytes as they arrive (a
// read returns early when no more is buffered, so counts stay current).
func (t *clientTest) discard(r io.Reader, buf []byte) error {
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if t.closing.Load() {
				return nil
			}
			t.bytes.Add(int64(n))
			t.lastData.Store(time.Now().UnixNano())
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// record keeps what the client uses from a server measurement.
func (t *clientTest) record(msg Message) {
	if msg.Origin == OriginClient {
		return
	}
	s := serverSample{app: point{at: -1}, tcp: point{at: -1}}
	if a := msg.AppInfo; a != nil {
		s.app = point{time.Duration(a.ElapsedTime) * time.Microsecond, a.NumBytes}
	}
	if ti := msg.TCPInfo; ti != nil {
		if ti.ElapsedTime > 0 && ti.BytesReceived > 0 {
			s.tcp = point{time.Duration(ti.ElapsedTime) * time.Microsecond, ti.BytesReceived}
		}
		s.rtt = time.Duration(ti.RTT) * time.Microsecond
		s.minRTT = time.Duration(ti.MinRTT) * time.Microsecond
		s.retrans = ti.TotalRetrans
	}
	if s.elapsed() < 0 {
		return // a measurement without a time cannot be placed
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.samples) < maxServerSamples {
		t.samples = append(t.samples, s)
	}
}

// write sends binary messages, growing them as the spec's appendix
// describes, until the client decides to close or a write fails. It writes
// frames itself (clientFrames) and answers the server's pings between them.
func (t *clientTest) write() error {
	f := newClientFrames(t.conn.NetConn(), chunkSize)
	t.resetWriteDeadline()
	size := MinMessageSize
	for !t.closing.Load() {
		if err := f.writeMessage(size, t.closing.Load, &t.bytes, t.answerPing); err != nil {
			return err
		}
		if err := t.answerPing(); err != nil {
			return err
		}
		size = nextMessageSize(size, t.bytes.Load())
	}
	return nil
}

// answerPing sends the pong of a pending ping, if any. gorilla's
// WriteControl leaves its own write deadline on the connection, so the
// test's is set again.
func (t *clientTest) answerPing() error {
	p := t.pong.Swap(nil)
	if p == nil {
		return nil
	}
	err := t.conn.WriteControl(websocket.PongMessage, []byte(*p), time.Now().Add(closeTimeout))
	t.resetWriteDeadline()
	return err
}

// resetWriteDeadline sets the test's write deadline on the connection,
// unless ctx was cancelled (cancelIO's deadline in the past stays).
func (t *clientTest) resetWriteDeadline() {
	t.dlMu.Lock()
	defer t.dlMu.Unlock()
	if !t.cancelled {
		_ = t.conn.NetConn().SetWriteDeadline(t.hardEnd)
	}
}

// cancelIO fails every pending and future read and write on the connection.
func (t *clientTest) cancelIO() {
	t.dlMu.Lock()
	defer t.dlMu.Unlock()
	t.cancelled = true
	_ = t.conn.NetConn().SetDeadline(time.Unix(1, 0))
}

// sampleOwnRTT records the client's own smoothed RTT (upload: the client is
// the sender, so its RTT includes the uplink's queue).
func (t *clientTest) sampleOwnRTT(afterRamp bool) {
	ti, _, ok := readTCPInfo(t.conn.NetConn())
	if !ok || ti.RTT <= 0 {
		return
	}
	rtt := time.Duration(ti.RTT) * time.Microsecond
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ownRTTAll = append(t.ownRTTAll, rtt)
	if afterRamp {
		t.ownRTT = append(t.ownRTT, rtt)
	}
}

// fill computes m's figure and latencies from what the test recorded.
func (t *clientTest) fill(m *result.Measurement, ramp, end snapshot, haveRamp bool) {
	t.mu.Lock()
	defer t.mu.Unlock()

	from := snapshot{at: t.start}
	afterRamp := haveRamp && end.at.Sub(ramp.at) >= t.minWindow()
	if afterRamp {
		from = ramp
	}
	m.Bytes, m.Duration = end.bytes-from.bytes, end.at.Sub(from.at)
	if t.dir == result.DirectionUpload {
		if b, d, ok := serverWindow(t.samples, t.opts.RampUp, t.minWindow()); ok {
			m.Bytes, m.Duration = b, d
		}
		if n := len(t.samples); n > 0 {
			// The server may have counted more than the client saw acked.
			m.TotalBytes = max(m.TotalBytes, t.samples[n-1].app.bytes, t.samples[n-1].tcp.bytes)
		}
	}
	if m.Duration < 0 {
		m.Duration = 0
	}
	m.Mbps = result.Mbps(m.Bytes, m.Duration)

	// Latency under load: the sender's smoothed RTT, over the same window
	// as the figure.
	var rtts []time.Duration
	if t.dir == result.DirectionUpload {
		rtts = t.ownRTTAll
		if afterRamp {
			rtts = t.ownRTT
		}
	}
	if len(rtts) == 0 {
		for _, s := range t.samples {
			if s.rtt > 0 && (!afterRamp || s.elapsed() >= t.opts.RampUp) {
				rtts = append(rtts, s.rtt)
			}
		}
	}
	m.LatencySamples = len(rtts)
	m.LatencyUnderLoadMs = ms(median(rtts))

	// Idle latency: the connection's minimum RTT, own or the server's.
	ti, _, ok := readTCPInfo(t.conn.NetConn())
	if ok && ti.MinRTT > 0 {
		m.IdleLatencyMs = ms(time.Duration(ti.MinRTT) * time.Microsecond)
	} else if n := len(t.samples); n > 0 && t.samples[n-1].minRTT > 0 {
		m.IdleLatencyMs = ms(t.samples[n-1].minRTT)
	}

	// Retransmits: the sender's.
	switch {
	case t.dir == result.DirectionUpload && ok && ti.TotalRetrans != nil:
		m.Retransmits = *ti.TotalRetrans
	case t.dir == result.DirectionDownload:
		for i := len(t.samples) - 1; i >= 0; i-- {
			if r := t.samples[i].retrans; r != nil {
				m.Retransmits = *r
				break
			}
		}
	}
}

// minWindow is the shortest measurement window after the ramp-up; a test
// that ends sooner after it is measured whole.
func (t *clientTest) minWindow() time.Duration { return min(t.opts.RampUp, time.Second) }

// serverWindow computes the upload figure from the server's measurements:
// from the first one at or after rampUp to the last, if they are at least
// minWindow apart, else from the test's start. It uses TCPInfo.BytesReceived
// (counted by the server's kernel, so a server slow to read does not skew
// it) when the server sends it, else AppInfo.NumBytes. ok is false when the
// samples give no window.
func serverWindow(samples []serverSample, rampUp, minWindow time.Duration) (bytes int64, d time.Duration, ok bool) {
	for _, series := range []func(serverSample) point{
		func(s serverSample) point { return s.tcp },
		func(s serverSample) point { return s.app },
	} {
		var pts []point
		for _, s := range samples {
			if p := series(s); p.at >= 0 {
				pts = append(pts, p)
			}
		}
		if len(pts) == 0 {
			continue
		}
		last := pts[len(pts)-1]
		first := point{}
		for _, p := range pts {
			if p.at >= rampUp {
				if last.at-p.at >= minWindow {
					first = p
				}
				break
			}
		}
		if d := last.at - first.at; d > 0 && last.bytes >= first.bytes {
			return last.bytes - first.bytes, d, true
		}
	}
	return 0, 0, false
}

// frameHeaderSize is the size of an unmasked (server) frame header for a
// payload of n bytes.
func frameHeaderSize(n int) int64 {
	switch {
	case n <= 125:
		return 2
	case n < 1<<16:
		return 4
	}
	return 10
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median is result.Median.
func median(ds []time.Duration) time.Duration { return result.Median(ds) }
