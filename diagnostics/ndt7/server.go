package ndt7

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultMaxConcurrent is the default cap on simultaneous tests.
const DefaultMaxConcurrent = 16

// maxQueryLength is the spec's limit on the upgrade request's query string.
const maxQueryLength = 4096

// ServerOptions configures NewServer. The zero value runs 10 s tests, at
// most 16 at a time.
type ServerOptions struct {
	// Duration is how long the server sends (download) or reads (upload)
	// before it closes the test; 0 means DefaultDuration, and it is capped
	// at MaxDuration.
	Duration time.Duration
	// MaxConcurrent caps simultaneous tests; more answer 503 with
	// Retry-After before the upgrade. 0 means DefaultMaxConcurrent.
	MaxConcurrent int
	// Logger receives one debug line per test; nil discards.
	Logger *slog.Logger
}

// Server is the ndt7 http.Handler: it serves DownloadPath and UploadPath and
// answers 404 elsewhere. Mount it on another mux with
// mux.Handle("/ndt/v7/", srv) (or behind http.StripPrefix). Create it with
// NewServer; it is safe for concurrent use.
//
// Every test is bounded: the server stops sending or reading after
// Duration, waits at most 2 s more for the client's close frame, and drops
// the connection at that deadline whatever the client does. Binary messages
// from the client are limited to MaxMessageSize (larger ones close the test
// with code 1009); text messages from the client are read and ignored.
type Server struct {
	opts     ServerOptions
	slots    chan struct{}
	upgrader websocket.Upgrader
	random   func() []byte // chunkSize random bytes, made on first use
	mux      *http.ServeMux
}

// NewServer returns a Server with opts' zero fields set to the defaults.
// Negative values are treated as zero (the default).
func NewServer(opts ServerOptions) *Server {
	if opts.Duration <= 0 {
		opts.Duration = DefaultDuration
	}
	opts.Duration = min(opts.Duration, MaxDuration)
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:  opts,
		slots: make(chan struct{}, opts.MaxConcurrent),
		upgrader: websocket.Upgrader{
			HandshakeTimeout: handshakeTimeout,
			ReadBufferSize:   wsBufferSize,
			WriteBufferSize:  wsBufferSize,
			Subprotocols:     []string{SubProtocol},
			// ndt7 is meant for browsers on any origin (M-Lab's server allows
			// all too); the test carries no credentials.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		random: sync.OnceValue(func() []byte {
			b := make([]byte, chunkSize)
			_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
			return b
		}),
		mux: http.NewServeMux(),
	}
	s.mux.HandleFunc("GET "+DownloadPath, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, TestDownload) })
	s.mux.HandleFunc("GET "+UploadPath, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, TestUpload) })
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// checkRequest validates an upgrade request as the spec asks (4xx for a
// missing subprotocol or a bad query string) and returns the client's
// metadata without server_ keys.
func checkRequest(r *http.Request) (url.Values, error) {
	if !websocket.IsWebSocketUpgrade(r) {
		return nil, errors.New("expected a WebSocket upgrade")
	}
	if !slices.Contains(websocket.Subprotocols(r), SubProtocol) {
		return nil, fmt.Errorf("missing WebSocket subprotocol %s", SubProtocol)
	}
	if len(r.URL.RawQuery) > maxQueryLength {
		return nil, fmt.Errorf("query string of %d bytes exceeds %d", len(r.URL.RawQuery), maxQueryLength)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("query string: %w", err)
	}
	for k := range q {
		if strings.HasPrefix(k, "server_") {
			delete(q, k)
		}
	}
	return q, nil
}

// acquire takes a test slot or answers 503 and reports false.
func (s *Server) acquire(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, true
	default:
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.opts.Duration.Seconds()))))
		http.Error(w, fmt.Sprintf("ndt7 server busy: %d tests running, retry later", s.opts.MaxConcurrent),
			http.StatusServiceUnavailable)
		return nil, false
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, test string) {
	meta, err := checkRequest(r)
	if err != nil {
		http.Error(w, "bad ndt7 request: "+err.Error(), http.StatusBadRequest)
		return
	}
	release, ok := s.acquire(w)
	if !ok {
		return
	}
	defer release()
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil { // the upgrader has answered with an HTTP error
		s.opts.Logger.Debug("ndt7 upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer conn.Close()

	t := &serverTest{
		conn:  conn,
		test:  test,
		start: time.Now(),
	}
	t.end = t.start.Add(s.opts.Duration)
	deadline := t.end.Add(closeTimeout)
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)
	conn.SetReadLimit(MaxMessageSize)

	if test == TestDownload {
		setNotSentLowat(conn.NetConn(), notSentLowat)
		err = t.download(s.random())
	} else {
		err = t.upload()
	}
	if err != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, websocket.ErrReadLimit) {
		// A stalled or broken test: drop the unsent data so the link is
		// free at once. (A protocol violation closes gracefully instead,
		// so that the client gets the close frame that says why.)
		abort(conn.NetConn())
	}
	s.opts.Logger.Debug("ndt7 test done", "test", test, "remote", r.RemoteAddr, "bytes", t.bytes.Load(),
		"seconds", time.Since(t.start).Seconds(), "metadata", meta, "err", err)
}

// serverTest is one running test on the server.
type serverTest struct {
	conn       *websocket.Conn
	test       string
	start, end time.Time
	bytes      atomic.Int64 // binary payload sent or received
	sentInfo   bool         // ConnectionInfo went out (once per test)
}

// download sends binary messages until the end, a measurement every
// measurementInterval, then closes.
func (t *serverTest) download(random []byte) error {
	peer := make(chan error, 1)
	go func() { peer <- readMessages(t.conn, false, nil) }()

	size := MinMessageSize
	next := t.start // the first measurement goes out before any data
	for {
		now := time.Now()
		if !now.Before(t.end) {
			break
		}
		select {
		case err := <-peer:
			return peerEnded(err)
		default:
		}
		if !now.Before(next) {
			if err := t.sendMeasurement(); err != nil {
				return writeFailed(peer, err)
			}
			next = now.Add(measurementInterval)
		}
		if err := writeBinary(t.conn, random, size, nil, &t.bytes); err != nil {
			return writeFailed(peer, fmt.Errorf("send: %w", err))
		}
		size = nextMessageSize(size, t.bytes.Load())
	}
	return t.finish(peer)
}

// upload reads binary messages (in readMessages) and sends a measurement
// every measurementInterval until the end, then closes.
func (t *serverTest) upload() error {
	peer := make(chan error, 1)
	go func() { peer <- readMessages(t.conn, true, &t.bytes) }()

	if err := t.sendMeasurement(); err != nil {
		return err
	}
	tick := time.NewTicker(measurementInterval)
	defer tick.Stop()
	timer := time.NewTimer(time.Until(t.end))
	defer timer.Stop()
	for {
		select {
		case err := <-peer:
			return peerEnded(err)
		case <-timer.C:
			return t.finish(peer)
		case <-tick.C:
			if err := t.sendMeasurement(); err != nil {
				return writeFailed(peer, err)
			}
		}
	}
}

// finish sends a last measurement and a normal close frame, then waits for
// the client's close frame (readMessages returns) until the read deadline.
func (t *serverTest) finish(peer <-chan error) error {
	if err := t.sendMeasurement(); err != nil {
		return err
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "test done")
	if err := t.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeTimeout)); err != nil {
		return fmt.Errorf("send close: %w", err)
	}
	return peerEnded(<-peer)
}

// sendMeasurement writes one text message with AppInfo and, where the
// platform has them, TCPInfo and BBRInfo.
func (t *serverTest) sendMeasurement() error {
	elapsed := time.Since(t.start).Microseconds()
	m := Message{
		AppInfo: &AppInfo{ElapsedTime: elapsed, NumBytes: t.bytes.Load()},
		Origin:  OriginServer,
		Test:    t.test,
	}
	if !t.sentInfo {
		m.ConnectionInfo = &ConnectionInfo{Client: t.conn.RemoteAddr().String(), Server: t.conn.LocalAddr().String()}
		t.sentInfo = true
	}
	if ti, bbr, ok := readTCPInfo(t.conn.NetConn()); ok {
		ti.ElapsedTime = elapsed
		m.TCPInfo = &ti
		if bbr != nil {
			bbr.ElapsedTime = elapsed
			m.BBRInfo = bbr
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode measurement: %w", err)
	}
	if err := t.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("send measurement: %w", err)
	}
	return nil
}

// writeFailed returns the outcome of a test whose write failed with err:
// the reader's, when it has ended, since it is the cause (a client that
// closed early, whose close frame gorilla answered, which fails later
// writes; or a protocol violation); else err.
func writeFailed(peer <-chan error, err error) error {
	if ended, perr := waitPeer(peer); ended {
		return perr
	}
	return err
}

// waitPeer returns the outcome of the reader once it has ended, waiting at
// most closeTimeout; ended is false when it still runs.
func waitPeer(peer <-chan error) (ended bool, err error) {
	select {
	case err := <-peer:
		return true, peerEnded(err)
	case <-time.After(closeTimeout):
		return false, nil
	}
}

// peerEnded turns the error that ended readMessages into the test's outcome:
// nil for a normal close by the peer.
func peerEnded(err error) error {
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
		return nil
	}
	return err
}

// writeBinary sends one binary message of size bytes, written in chunks of
// random and added to count as they go; stop, if not nil, is checked between
// chunks and ends the message early (a shorter message is still valid).
func writeBinary(conn *websocket.Conn, random []byte, size int, stop func() bool, count *atomic.Int64) error {
	w, err := conn.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	for n := 0; n < size; {
		k := min(size-n, len(random))
		m, err := w.Write(random[:k])
		n += m
		count.Add(int64(m))
		if err != nil {
			return err
		}
		if stop != nil && stop() {
			break
		}
	}
	return w.Close()
}

// readMessages reads the peer's messages until an error (a *websocket.CloseError
// when the peer closes). Binary payload bytes are added to count; when
// binary is false a binary message is a protocol violation and closes the
// connection with code 1003. Text messages are read (up to the 64 KiB limit
// of a measurement) and ignored.
func readMessages(conn *websocket.Conn, binary bool, count *atomic.Int64) error {
	var buf []byte
	for {
		mt, r, err := conn.NextReader()
		if err != nil {
			return err
		}
		switch mt {
		case websocket.BinaryMessage:
			if !binary {
				closeWith(conn, websocket.CloseUnsupportedData, "binary message from the receiving side")
				return fmt.Errorf("%w: binary message from the receiving side", ErrProtocol)
			}
			if buf == nil {
				buf = make([]byte, readBufferSize)
			}
			if err := discard(r, buf, count); err != nil {
				return err
			}
		case websocket.TextMessage: // optional measurements: read and ignored
			n, err := io.Copy(io.Discard, io.LimitReader(r, maxTextMessageSize+1))
			if err != nil {
				return err
			}
			if n > maxTextMessageSize {
				closeWith(conn, websocket.CloseMessageTooBig, "measurement message too large")
				return fmt.Errorf("%w: text message larger than %d bytes", ErrProtocol, maxTextMessageSize)
			}
		}
	}
}

// discard reads r to its end into buf, adding each read to count.
func discard(r io.Reader, buf []byte, count *atomic.Int64) error {
	for {
		n, err := r.Read(buf)
		if count != nil && n > 0 {
			count.Add(int64(n))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// closeWith sends a close frame with code and reason, ignoring errors (the
// connection is being abandoned).
func closeWith(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeTimeout))
}
