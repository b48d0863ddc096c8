package netprobe

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Failure says why a Transfer failed; each simulator words it its own way
// (TR-143 states for the e8, CLI lines for the XT-2).
type Failure int

// Transfer failures.
const (
	// OK is no failure.
	OK Failure = iota
	// FailURL: the URL is not an http(s) URL with a host.
	FailURL
	// FailResolve: the host name does not resolve.
	FailResolve
	// FailNoRoute: connecting failed with "no route to host" or "network
	// unreachable".
	FailNoRoute
	// FailConnect: the TCP connection could not be opened.
	FailConnect
	// FailNoResponse: connected, but no HTTP response came back.
	FailNoResponse
	// FailStatus: the server answered with another status than 200 (GET)
	// or 2xx (PUT); TransferResult.Status has it.
	FailStatus
	// FailBroken: the response body broke off.
	FailBroken
	// FailSize: the body was not as long as its Content-Length.
	FailSize
	// FailTimeout: the transfer did not end within TransferSpec.Timeout.
	FailTimeout
)

// Transfer defaults and limits.
const (
	// DefaultTransferTimeout bounds a Transfer whose spec sets no Timeout.
	DefaultTransferTimeout = 2 * time.Minute
	headerTimeout          = 30 * time.Second
	resolveTimeout         = 10 * time.Second
	maxSamples             = 1 << 14 // per connection; older samples are thinned out
)

// TransferSpec is an HTTP transfer test.
type TransferSpec struct {
	// URL is the http(s) URL to GET (download) or PUT (upload).
	URL string
	// Upload PUTs Size bytes of incompressible data; otherwise the URL is
	// downloaded.
	Upload bool
	Size   int64
	// Connections is how many TCP connections run the transfer in
	// parallel (each one GETs the URL or PUTs Size bytes); 0 means 1.
	Connections int
	// Timeout bounds the whole transfer; 0 means DefaultTransferTimeout.
	Timeout time.Duration
}

// ConnStats is what one test connection saw. Times follow TR-143: the TCP
// open request and response, ROM (the request leaves), BOM (the first
// payload byte moves: received for a download, handed to the connection
// for an upload) and EOM (the last byte received, or the upload's
// response). Times are zero for what did not happen.
type ConnStats struct {
	TCPOpenRequest, TCPOpenResponse time.Time
	ROM, BOM, EOM                   time.Time
	// Read and Written count the connection's bytes, HTTP headers
	// included; Body counts the file bytes of a download.
	Read, Written, Body int64
}

// conn is a test connection's ConnStats while it runs.
type conn struct {
	mu sync.Mutex
	ConnStats
	samples []sample // cumulative payload bytes over time
	upload  bool
}

type sample struct {
	at time.Time
	n  int64
}

func (c *conn) addSample(at time.Time, n int64) {
	if len(c.samples) == maxSamples {
		keep := c.samples[:0]
		for i := 0; i < len(c.samples); i += 2 {
			keep = append(keep, c.samples[i])
		}
		c.samples = keep
	}
	c.samples = append(c.samples, sample{at, n})
}

// bytesAt returns the payload bytes moved by time t. Caller holds c.mu.
func (c *conn) bytesAt(t time.Time) int64 {
	var n int64
	for _, s := range c.samples {
		if s.at.After(t) {
			break
		}
		n = s.n
	}
	return n
}

// countingConn counts a test connection's traffic into its Conn.
type countingConn struct {
	net.Conn
	c *conn
}

func (cc *countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	if n > 0 {
		now := time.Now()
		c := cc.c
		c.mu.Lock()
		c.Read += int64(n)
		if !c.upload {
			if c.BOM.IsZero() {
				c.BOM = now
			}
			c.EOM = now
			c.addSample(now, c.Read)
		}
		c.mu.Unlock()
	}
	return n, err
}

func (cc *countingConn) Write(p []byte) (int, error) {
	start := time.Now() // the answer may be read before Write returns
	n, err := cc.Conn.Write(p)
	if n > 0 {
		now := time.Now()
		c := cc.c
		c.mu.Lock()
		if c.ROM.IsZero() {
			c.ROM = start // the request line goes out first
		}
		c.Written += int64(n)
		if c.upload {
			c.addSample(now, c.Written)
		}
		c.mu.Unlock()
	}
	return n, err
}

// TransferResult is the outcome of Transfer.
type TransferResult struct {
	// Conns are the test connections, also after a failure.
	Conns []ConnStats
	// Summary sums them up.
	Summary Summary
	// Failure is OK, or why the transfer failed (the first connection's
	// failure when several failed).
	Failure Failure
	// Status is the HTTP status of a FailStatus.
	Status int
	// Addr is the server's address, once resolved.
	Addr netip.Addr
}

// Transfer runs an HTTP transfer test: it resolves the URL's host (see
// Resolve), then GETs the URL or PUTs spec.Size bytes on
// spec.Connections connections at once, counting every byte. It uses no
// proxy, no compression, no HTTP authentication, and does not follow
// redirects.
func Transfer(ctx context.Context, spec TransferSpec) TransferResult {
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTransferTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res TransferResult
	u, err := url.Parse(strings.TrimSpace(spec.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		res.Failure = FailURL
		return res
	}
	rctx, rcancel := context.WithTimeout(ctx, resolveTimeout)
	res.Addr, err = Resolve(rctx, nil, u.Hostname())
	rcancel()
	if err != nil {
		res.Failure = FailResolve
		return res
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	var pattern []byte
	if spec.Upload {
		pattern = make([]byte, 64<<10)
		_, _ = rand.Read(pattern)
	}
	n := max(spec.Connections, 1)
	conns := make([]*conn, n)
	fails := make([]Failure, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range conns {
		c := &conn{upload: spec.Upload}
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			fails[i], statuses[i] = transferOne(ctx, u, res.Addr, port, spec, pattern, c)
		}()
	}
	wg.Wait()
	res.Summary = summarise(conns)
	for _, c := range conns {
		c.mu.Lock()
		res.Conns = append(res.Conns, c.ConnStats)
		c.mu.Unlock()
	}
	for i, f := range fails {
		if f != OK {
			res.Failure, res.Status = f, statuses[i]
			break
		}
	}
	return res
}

// transferOne runs one connection of a Transfer.
func transferOne(ctx context.Context, u *url.URL, addr netip.Addr, port string, spec TransferSpec, pattern []byte, c *conn) (Failure, int) {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			c.mu.Lock()
			c.TCPOpenRequest = time.Now()
			c.mu.Unlock()
			nc, err := d.DialContext(ctx, network, net.JoinHostPort(addr.String(), port))
			if err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.TCPOpenResponse = time.Now()
			c.mu.Unlock()
			return &countingConn{Conn: nc, c: c}, nil
		},
		DisableCompression:    true,
		MaxIdleConnsPerHost:   1,
		ResponseHeaderTimeout: headerTimeout,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	method, body := http.MethodGet, io.Reader(nil)
	if spec.Upload {
		method, body = http.MethodPut, &patternReader{buf: pattern, left: max(spec.Size, 0), c: c}
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return FailURL, 0
	}
	if spec.Upload {
		req.ContentLength = max(spec.Size, 0)
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := client.Do(req)
	if err != nil {
		return requestFailure(ctx, c, err), 0
	}
	defer resp.Body.Close()
	if spec.Upload {
		c.mu.Lock()
		c.EOM = time.Now() // TR-143: when the successful response code arrives
		if c.BOM.IsZero() {
			c.BOM = c.EOM // an empty file
		}
		c.mu.Unlock()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return FailStatus, resp.StatusCode
		}
		return OK, resp.StatusCode
	}
	if resp.StatusCode != http.StatusOK {
		return FailStatus, resp.StatusCode
	}
	got, err := io.Copy(io.Discard, resp.Body)
	c.mu.Lock()
	c.Body = got
	c.mu.Unlock()
	switch {
	case err != nil && ctx.Err() != nil:
		return FailTimeout, resp.StatusCode
	case err != nil:
		return FailBroken, resp.StatusCode
	case resp.ContentLength >= 0 && got != resp.ContentLength:
		return FailSize, resp.StatusCode
	}
	return OK, resp.StatusCode
}

// requestFailure classifies an HTTP exchange that returned no response.
func requestFailure(ctx context.Context, c *conn, err error) Failure {
	c.mu.Lock()
	connected := !c.TCPOpenResponse.IsZero()
	c.mu.Unlock()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return FailTimeout
	case !connected && (errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)):
		return FailNoRoute
	case !connected:
		return FailConnect
	}
	return FailNoResponse
}

// patternReader yields left bytes of the pattern, marking the time of the
// first byte handed out (the BOM of an upload).
type patternReader struct {
	buf  []byte
	left int64
	c    *conn
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	r.c.mu.Lock()
	if r.c.BOM.IsZero() {
		r.c.BOM = time.Now()
		if r.c.ROM.IsZero() {
			r.c.ROM = r.c.BOM // the request line and the first data leave together
		}
	}
	r.c.mu.Unlock()
	n := 0
	for n < len(p) && r.left > 0 {
		chunk := p[n:]
		if int64(len(chunk)) > r.left {
			chunk = chunk[:r.left]
		}
		k := copy(chunk, r.buf)
		n += k
		r.left -= int64(k)
	}
	return n, nil
}

// Summary sums a transfer's connections up as TR-143 does.
type Summary struct {
	// ROM and BOM are the earliest, EOM the latest of the connections';
	// TCPOpenRequest and TCPOpenResponse the latest (TR-143 Amendment 1).
	ROM, BOM, EOM                   time.Time
	TCPOpenRequest, TCPOpenResponse time.Time
	// Read, Written and Body are totals over the connections.
	Read, Written, Body int64
	// FullBytes is the payload moved during FullPeriod, from the latest
	// BOM to the earliest EOM, while every connection was transferring;
	// both are zero when the connections did not overlap.
	FullBytes  int64
	FullPeriod time.Duration
}

// summarise sums the connections up.
func summarise(conns []*conn) Summary {
	var s Summary
	var lastBOM, firstEOM time.Time
	for _, c := range conns {
		c.mu.Lock()
		if s.ROM.IsZero() || c.ROM.Before(s.ROM) {
			s.ROM = c.ROM
		}
		if s.BOM.IsZero() || c.BOM.Before(s.BOM) {
			s.BOM = c.BOM
		}
		if c.EOM.After(s.EOM) {
			s.EOM = c.EOM
		}
		if c.TCPOpenRequest.After(s.TCPOpenRequest) {
			s.TCPOpenRequest = c.TCPOpenRequest
		}
		if c.TCPOpenResponse.After(s.TCPOpenResponse) {
			s.TCPOpenResponse = c.TCPOpenResponse
		}
		if c.BOM.After(lastBOM) {
			lastBOM = c.BOM
		}
		if firstEOM.IsZero() || c.EOM.Before(firstEOM) {
			firstEOM = c.EOM
		}
		s.Read += c.Read
		s.Written += c.Written
		s.Body += c.Body
		c.mu.Unlock()
	}
	if firstEOM.After(lastBOM) {
		s.FullPeriod = firstEOM.Sub(lastBOM)
		for _, c := range conns {
			c.mu.Lock()
			s.FullBytes += c.bytesAt(firstEOM) - c.bytesAt(lastBOM)
			c.mu.Unlock()
		}
	}
	return s
}
