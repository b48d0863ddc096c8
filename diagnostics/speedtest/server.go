// Package speedtest is fieldagent's own HTTP throughput protocol: a Server
// that streams and sinks incompressible bytes, and a client (Download, Upload)
// that measures Mbit/s over several parallel TCP streams after a ramp-up.
// The Server also serves M-Lab's ndt7 protocol (package ndt7), so one speed
// server answers both clients.
//
// Protocol (all paths relative to the server's base URL):
//
//	GET  /download?duration=10s  stream random bytes for the duration (capped at MaxDuration)
//	GET  /download?bytes=N       stream exactly N bytes, with Content-Length
//	POST /upload  (or PUT)       discard the body, answer {"bytes":N,"seconds":S}
//	GET  /file/N                 a fixed N-byte file (Content-Length, Range, HEAD)
//	GET  /healthz                "ok", used for latency probes
//	GET  /ndt/v7/download        ndt7 download: WebSocket (subprotocol net.measurementlab.ndt.v7)
//	GET  /ndt/v7/upload          ndt7 upload; both run ServerOptions.NDT7.Duration (10s)
//
// Transfers beyond MaxConcurrent answer 503 with Retry-After; ndt7 tests
// have their own limit, NDT7.MaxConcurrent.
//
// Measurement and Progress are aliases of the types in package result, which
// the ndt7 client returns too.
package speedtest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"fieldagent/diagnostics/ndt7"
)

// Server defaults, applied to zero ServerOptions fields.
const (
	// DefaultMaxConcurrent is the default cap on simultaneous transfers
	// (four clients at the client's DefaultMaxStreams).
	DefaultMaxConcurrent = 32
	// DefaultMaxDuration is the default cap on one transfer's duration.
	DefaultMaxDuration = 15 * time.Second
	// DefaultMaxUploadBytes is the default cap on one upload request body
	// (the client sends at most 64 MiB per request).
	DefaultMaxUploadBytes = 256 << 20
	// DefaultMaxFileBytes is the default cap on /file/N and ?bytes=N.
	DefaultMaxFileBytes = 1 << 30
	// DefaultChunkSize is the default download write size; 256 KiB measured
	// about twice as fast as 64 KiB on loopback.
	DefaultChunkSize = 256 << 10
)

const (
	defaultDownloadTime    = 10 * time.Second
	randomBufferMinSize    = 4 << 20
	uploadReadBufferSize   = 256 << 10
	writeDeadlineSlack     = 2 * time.Second
	retryAfterSeconds      = "1"
	durationHeader         = "X-Speedtest-Duration"
	contentTypeOctetStream = "application/octet-stream"
)

// ServerOptions configures NewServer. The zero value gives the defaults above.
type ServerOptions struct {
	// MaxConcurrent caps simultaneous transfers (download, upload, file);
	// more answer 503 with Retry-After. 0 means DefaultMaxConcurrent.
	MaxConcurrent int
	// MaxDuration caps one transfer: a longer ?duration= is shortened to it
	// (the X-Speedtest-Duration header says so), ?bytes= and /file/ downloads
	// are cut there, and uploads stop being read. 0 means DefaultMaxDuration.
	MaxDuration time.Duration
	// MaxUploadBytes caps one upload request's body; larger ones answer 413.
	// 0 means DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// MaxFileBytes caps N in /file/N and /download?bytes=N; larger ones answer
	// 400. 0 means DefaultMaxFileBytes.
	MaxFileBytes int64
	// ChunkSize is the size of each write of a download. 0 means DefaultChunkSize.
	ChunkSize int
	// NDT7 configures the ndt7 tests served on /ndt/v7/; its zero value
	// gives ndt7's defaults (10 s tests, at most 16 at a time). Its Logger,
	// if nil, is Logger.
	NDT7 ndt7.ServerOptions
	// Logger receives one debug line per transfer; nil discards.
	Logger *slog.Logger
}

// Server is the speed test HTTP handler. Create it with NewServer; it is safe
// for concurrent use.
type Server struct {
	opts   ServerOptions
	random []byte // pre-generated incompressible data, reused by every download
	slots  chan struct{}
	mux    *http.ServeMux
}

// NewServer returns a Server with opts' zero fields set to the defaults.
// Negative limits are treated as zero (the default).
func NewServer(opts ServerOptions) *Server {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = DefaultMaxDuration
	}
	if opts.MaxUploadBytes <= 0 {
		opts.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NDT7.Logger == nil {
		opts.NDT7.Logger = opts.Logger
	}
	s := &Server{
		opts:   opts,
		random: randomBuffer(opts.ChunkSize),
		slots:  make(chan struct{}, opts.MaxConcurrent),
		mux:    http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /download", s.handleDownload)
	s.mux.HandleFunc("POST /upload", s.handleUpload)
	s.mux.HandleFunc("PUT /upload", s.handleUpload)
	s.mux.HandleFunc("GET /file/{size}", s.handleFile)
	s.mux.HandleFunc("GET /healthz", handleHealthz)
	nd := ndt7.NewServer(opts.NDT7)
	s.mux.Handle("GET "+ndt7.DownloadPath, nd)
	s.mux.Handle("GET "+ndt7.UploadPath, nd)
	return s
}

// randomBuffer returns at least randomBufferMinSize random bytes, a whole
// number of chunks long so that every chunk is a plain sub-slice.
func randomBuffer(chunk int) []byte {
	n := (randomBufferMinSize + chunk - 1) / chunk * chunk
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return b
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// acquire takes a transfer slot or answers 503 and reports false.
func (s *Server) acquire(w http.ResponseWriter) (release func(), ok bool) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, true
	default:
		w.Header().Set("Retry-After", retryAfterSeconds)
		http.Error(w, fmt.Sprintf("speed test server busy: %d transfers running, retry later", s.opts.MaxConcurrent),
			http.StatusServiceUnavailable)
		return nil, false
	}
}

// downloadRequest is a validated /download query.
type downloadRequest struct {
	duration time.Duration // > 0 in duration mode
	bytes    int64         // >= 0 in bytes mode
	byBytes  bool
	clamped  bool
}

// parseDownloadQuery validates ?duration= or ?bytes= (not both). duration is a
// Go duration ("10s", "1500ms") or plain seconds ("10", "2.5").
func parseDownloadQuery(q map[string][]string, maxDuration time.Duration, maxBytes int64) (downloadRequest, error) {
	d, hasD := q["duration"]
	b, hasB := q["bytes"]
	switch {
	case hasD && hasB:
		return downloadRequest{}, errors.New("use either duration or bytes, not both")
	case hasB:
		if len(b) != 1 {
			return downloadRequest{}, errors.New("bytes given more than once")
		}
		n, err := strconv.ParseInt(b[0], 10, 64)
		if err != nil || n < 0 {
			return downloadRequest{}, fmt.Errorf("bytes %q is not a non-negative integer", b[0])
		}
		if n > maxBytes {
			return downloadRequest{}, fmt.Errorf("bytes %d exceeds this server's limit of %d", n, maxBytes)
		}
		return downloadRequest{bytes: n, byBytes: true}, nil
	case hasD:
		if len(d) != 1 {
			return downloadRequest{}, errors.New("duration given more than once")
		}
		dur, err := parseDuration(d[0])
		if err != nil {
			return downloadRequest{}, err
		}
		if dur > maxDuration {
			return downloadRequest{duration: maxDuration, clamped: true}, nil
		}
		return downloadRequest{duration: dur}, nil
	}
	return downloadRequest{duration: min(defaultDownloadTime, maxDuration)}, nil
}

// parseDuration accepts a positive Go duration or a positive number of seconds.
func parseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs > 0 && secs < 1e6 {
			d = time.Duration(secs * float64(time.Second))
		}
	} else if pd, err := time.ParseDuration(s); err == nil {
		d = pd
	} else {
		return 0, fmt.Errorf("duration %q is not a duration like 10s or 2.5", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive and below 1e6 seconds", s)
	}
	return d, nil
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	req, err := parseDownloadQuery(r.URL.Query(), s.opts.MaxDuration, s.opts.MaxFileBytes)
	if err != nil {
		http.Error(w, "bad download request: "+err.Error(), http.StatusBadRequest)
		return
	}
	release, ok := s.acquire(w)
	if !ok {
		return
	}
	defer release()

	start := time.Now()
	end := start.Add(s.opts.MaxDuration)
	limit := int64(-1)
	h := w.Header()
	h.Set("Content-Type", contentTypeOctetStream)
	h.Set("Cache-Control", "no-store")
	if req.byBytes {
		limit = req.bytes
		h.Set("Content-Length", strconv.FormatInt(req.bytes, 10))
	} else {
		end = start.Add(req.duration)
		h.Set(durationHeader, req.duration.String())
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(end.Add(writeDeadlineSlack))
	w.WriteHeader(http.StatusOK)

	n, err := s.stream(r, w, limit, end)
	s.opts.Logger.Debug("download done", "remote", r.RemoteAddr, "bytes", n,
		"seconds", time.Since(start).Seconds(), "clamped", req.clamped, "err", err)
}

// stream writes chunks of s.random to w until limit bytes (limit < 0: no
// limit) or end, or until the client goes away.
func (s *Server) stream(r *http.Request, w io.Writer, limit int64, end time.Time) (int64, error) {
	var n int64
	off := 0
	chunk := s.opts.ChunkSize
	done := r.Context().Done()
	for limit < 0 || n < limit {
		select {
		case <-done:
			return n, r.Context().Err()
		default:
		}
		if !time.Now().Before(end) {
			return n, nil
		}
		p := s.random[off : off+chunk]
		if limit >= 0 && int64(len(p)) > limit-n {
			p = p[:limit-n]
		}
		m, err := w.Write(p)
		n += int64(m)
		if err != nil {
			return n, err
		}
		off = (off + chunk) % len(s.random)
	}
	return n, nil
}

// uploadResult is the JSON answer to an upload.
type uploadResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// Truncated is true when MaxDuration stopped the server reading.
	Truncated bool `json:"truncated,omitempty"`
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > s.opts.MaxUploadBytes {
		http.Error(w, fmt.Sprintf("upload of %d bytes exceeds this server's limit of %d", r.ContentLength, s.opts.MaxUploadBytes),
			http.StatusRequestEntityTooLarge)
		return
	}
	release, ok := s.acquire(w)
	if !ok {
		return
	}
	defer release()

	start := time.Now()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(start.Add(s.opts.MaxDuration))
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes)
	buf := make([]byte, uploadReadBufferSize)
	var n int64
	var err error
	for {
		var m int
		m, err = body.Read(buf)
		n += int64(m)
		if err != nil {
			break
		}
	}
	res := uploadResult{Bytes: n, Seconds: time.Since(start).Seconds()}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
	case errors.As(err, &tooLarge):
		http.Error(w, fmt.Sprintf("upload exceeds this server's limit of %d bytes", tooLarge.Limit),
			http.StatusRequestEntityTooLarge)
		s.opts.Logger.Debug("upload refused", "remote", r.RemoteAddr, "bytes", n, "limit", tooLarge.Limit)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		res.Truncated = true
		w.Header().Set("Connection", "close")
	default:
		s.opts.Logger.Debug("upload aborted", "remote", r.RemoteAddr, "bytes", n, "err", err)
		return
	}
	s.opts.Logger.Debug("upload done", "remote", r.RemoteAddr, "bytes", n, "seconds", res.Seconds, "truncated", res.Truncated)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(res)
}

func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("size")
	size, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || size < 0 || strings.HasPrefix(raw, "+") {
		http.Error(w, fmt.Sprintf("bad file request: size %q is not a non-negative integer", raw), http.StatusBadRequest)
		return
	}
	if size > s.opts.MaxFileBytes {
		http.Error(w, fmt.Sprintf("bad file request: size %d exceeds this server's limit of %d", size, s.opts.MaxFileBytes),
			http.StatusBadRequest)
		return
	}
	release, ok := s.acquire(w)
	if !ok {
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(s.opts.MaxDuration))
	w.Header().Set("Content-Type", contentTypeOctetStream)
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", time.Time{}, &randomFile{data: s.random, size: size})
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}

// randomFile is a read-only, seekable file of size bytes repeating data.
type randomFile struct {
	data []byte
	size int64
	off  int64
}

func (f *randomFile) Read(p []byte) (int, error) {
	if f.off >= f.size {
		return 0, io.EOF
	}
	i := f.off % int64(len(f.data))
	n := copy(p, f.data[i:])
	if rem := f.size - f.off; int64(n) > rem {
		n = int(rem)
	}
	f.off += int64(n)
	return n, nil
}

func (f *randomFile) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.off + offset
	case io.SeekEnd:
		abs = f.size + offset
	default:
		return 0, fmt.Errorf("seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seek: negative position %d", abs)
	}
	f.off = abs
	return abs, nil
}
