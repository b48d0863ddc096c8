// Package relay is a userspace TCP relay that stands for a gateway's WAN
// path on loopback: a site without root (no network namespaces, no tc)
// puts its "internet" servers behind a relay shaped to the customer's
// package, and turns the relay off and on as the simulated gateway's WAN
// goes down and up.
//
// Every connection accepted on Options.Listen is relayed to Options.Target.
// Bytes from the target to the client count as download, from the client to
// the target as upload. Each direction has one token bucket shared by all
// connections: the rate is the line's, not each connection's, so four
// streams share DownMbps as they would share a real access line. A
// one-way Delay holds every chunk until its due time.
//
// Accuracy and limits:
//
//   - The rate is enforced on the relay's writes, so it is what a receiver
//     measures. Over 2 s a bulk transfer through the relay, one stream or
//     four sharing the line, arrives within 1% of the rate at 20, 50 and
//     300 Mbit/s on loopback (the tests allow ±10%, and skip with the
//     figures when a busy machine cannot carry the rate); an agent's speed
//     test through a testlab site measures the package within 1%. The
//     bucket holds BurstDuration (10 ms) of the rate: after an idle spell
//     that much passes at once, and a reader whose timer fires late by less
//     loses nothing. Reads are about 1 ms of the rate (4 to 64 KiB), so
//     streams take turns finely.
//   - A sender that counts what it wrote (an upload speed test without
//     TCP_INFO) overstates the rate by what the kernel's socket buffers
//     hold; the relay keeps its own receive buffers to about 20 ms of the
//     rate to limit that, but the sender's send buffer still counts.
//   - The rate counts TCP payload; there is no header overhead, loss,
//     reordering or jitter, and only TCP is relayed (no UDP, no ICMP). A
//     machine that starves the relay's goroutines measures below the rate,
//     never above it.
//   - With Delay, at most 4 MiB per connection and direction wait in the
//     relay: a rate × Delay above that caps one connection below the rate,
//     as a small TCP window would. Delay is a floor: Go's timers fire up to
//     about a millisecond late.
//   - Down (SetUp(false)) refuses new connections by closing them as soon
//     as they are accepted and cuts open ones with a reset (SO_LINGER 0).
//     A real gateway that stops forwarding drops packets and its clients
//     time out; the relay's learn at once.
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOptions is wrapped by the errors Start returns for invalid Options;
// the message names the field.
var ErrOptions = errors.New("invalid relay options")

// BurstDuration is how much of a direction's rate its token bucket holds:
// after an idle spell that many milliseconds of data pass at once.
const BurstDuration = 10 * time.Millisecond

// maxInFlight is the most bytes one connection's direction holds while
// they wait out Delay (4 MiB, as the package doc says).
const maxInFlight = 4 << 20

// Options configures a relay.
type Options struct {
	// Listen is the TCP address the relay accepts on; "" is 127.0.0.1:0
	// (a free port, see Relay.Addr).
	Listen string
	// Target is the host:port every connection is relayed to. Required.
	Target string
	// DownMbps and UpMbps are the rates, in Mbit/s (10^6 bit/s) of
	// payload, from the target to the clients and from the clients to the
	// target; 0 leaves that direction unshaped. They must not be negative.
	DownMbps, UpMbps float64
	// Delay is the one-way delay each direction adds; 0 adds none. A round
	// trip through the relay takes at least 2×Delay.
	Delay time.Duration
	// Logger, if nil, discards.
	Logger *slog.Logger
}

// Relay is a running relay. Its methods are safe for concurrent use.
type Relay struct {
	opts     Options
	ln       net.Listener
	down, up *bucket
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu       sync.Mutex
	isUp     bool
	conns    map[*relayConn]struct{}
	closed   bool
	lnErr    error
	accepted atomic.Int64
}

// Start listens on opts.Listen and relays until ctx ends or Close. The
// relay starts up. Invalid Options give an error wrapping ErrOptions.
func Start(ctx context.Context, opts Options) (*Relay, error) {
	switch {
	case opts.Target == "":
		return nil, fmt.Errorf("relay: %w: Target is required (the host:port to relay to)", ErrOptions)
	case opts.DownMbps < 0 || opts.UpMbps < 0:
		return nil, fmt.Errorf("relay: %w: rates %g/%g Mbit/s must not be negative (0 is unshaped)", ErrOptions, opts.DownMbps, opts.UpMbps)
	case opts.Delay < 0:
		return nil, fmt.Errorf("relay: %w: Delay %s must not be negative", ErrOptions, opts.Delay)
	}
	if _, _, err := net.SplitHostPort(opts.Target); err != nil {
		return nil, fmt.Errorf("relay: %w: Target %q: %w", ErrOptions, opts.Target, err)
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Relay{
		opts: opts, ln: ln, log: opts.Logger,
		down: newBucket(opts.DownMbps), up: newBucket(opts.UpMbps),
		ctx: ctx, cancel: cancel,
		isUp: true, conns: map[*relayConn]struct{}{},
	}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.accept() }()
	go func() { defer r.wg.Done(); <-ctx.Done(); r.shutdown() }()
	r.log.Info("relay listening", "addr", ln.Addr().String(), "target", opts.Target,
		"down_mbps", opts.DownMbps, "up_mbps", opts.UpMbps, "delay", opts.Delay)
	return r, nil
}

// Addr returns the address the relay accepts on (host:port).
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Up reports whether the relay carries connections.
func (r *Relay) Up() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.isUp
}

// Accepted returns how many connections the relay has accepted, refused
// ones included.
func (r *Relay) Accepted() int64 { return r.accepted.Load() }

// SetUp turns the relay on or off. Off, it refuses new connections (closes
// them as soon as they are accepted) and cuts the open ones, as a gateway
// whose WAN drops stops forwarding; on, it relays new connections again
// (cut ones stay cut).
func (r *Relay) SetUp(up bool) {
	r.mu.Lock()
	if r.isUp == up {
		r.mu.Unlock()
		return
	}
	r.isUp = up
	var cut []*relayConn
	if !up {
		for c := range r.conns {
			cut = append(cut, c)
		}
		clear(r.conns)
	}
	r.mu.Unlock()
	for _, c := range cut {
		c.cut()
	}
	r.log.Info("relay", "up", up, "cut", len(cut))
}

// Close stops the relay: it stops accepting, cuts every connection and
// waits for its goroutines. It returns the listener's close error, if any.
func (r *Relay) Close() error {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lnErr
}

// shutdown closes the listener and cuts every connection.
func (r *Relay) shutdown() {
	err := r.ln.Close()
	r.mu.Lock()
	r.closed, r.lnErr = true, err
	var cut []*relayConn
	for c := range r.conns {
		cut = append(cut, c)
	}
	clear(r.conns)
	r.mu.Unlock()
	for _, c := range cut {
		c.cut()
	}
}

// accept accepts until the listener closes.
func (r *Relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if r.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				r.log.Warn("relay accept failed", "err", err)
				select {
				case <-r.ctx.Done():
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
			return
		}
		r.accepted.Add(1)
		if !r.Up() {
			reset(c)
			continue
		}
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.serve(c) }()
	}
}

// serve dials the target for client and relays between them until either
// side ends or the relay cuts them.
func (r *Relay) serve(client net.Conn) {
	d := net.Dialer{Timeout: 5 * time.Second}
	target, err := d.DialContext(r.ctx, "tcp", r.opts.Target)
	if err != nil {
		r.log.Warn("relay cannot reach its target", "target", r.opts.Target, "err", err)
		reset(client)
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	c := &relayConn{client: client, target: target, cancel: cancel}
	r.mu.Lock()
	if !r.isUp || r.closed {
		r.mu.Unlock()
		c.cut()
		return
	}
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		_ = client.Close()
		_ = target.Close()
	}()

	// Small receive buffers where the relay reads: the senders' data waits
	// in their own socket buffers, not the relay's, so the shaped rate is
	// what a sender's writes see once its buffers are full.
	setReadBuffer(client, r.up)
	setReadBuffer(target, r.down)

	var wg sync.WaitGroup
	wg.Add(2)
	errs := make(chan error, 2)
	go func() { defer wg.Done(); errs <- r.pump(ctx, target, client, r.up) }()
	go func() { defer wg.Done(); errs <- r.pump(ctx, client, target, r.down) }()
	// A failed direction ends the connection; a finished one (EOF, passed
	// on as a half-close) lets the other run on.
	for range 2 {
		if err := <-errs; err != nil {
			cancel()
			_ = client.Close()
			_ = target.Close()
			break
		}
	}
	wg.Wait()
}

// relayConn is one relayed connection.
type relayConn struct {
	client, target net.Conn
	cancel         context.CancelFunc
}

// cut ends c at once with resets on both sides.
func (c *relayConn) cut() {
	c.cancel()
	reset(c.client)
	reset(c.target)
}

// reset closes c with a TCP reset where it can (SO_LINGER 0).
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// setReadBuffer caps c's receive buffer to about 20 ms of b's rate (at
// least 64 KiB); an unshaped direction keeps the kernel's autotuning.
func setReadBuffer(c net.Conn, b *bucket) {
	tc, ok := c.(*net.TCPConn)
	if !ok || b == nil {
		return
	}
	_ = tc.SetReadBuffer(max(64<<10, int(b.rate*0.02)))
}

// chunk is data read from one side, due at the other at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies from src to dst at b's rate (nil: unshaped), holding each
// chunk for the relay's delay. It returns nil when src ends (after a
// half-close of dst) and the error otherwise.
func (r *Relay) pump(ctx context.Context, dst, src net.Conn, b *bucket) error {
	size := b.chunkSize()
	delay := r.opts.Delay
	var (
		queue chan chunk
		done  chan struct{}
		werr  error
	)
	if delay > 0 {
		// The queue holds at most maxInFlight bytes (chunks are at most
		// size long): a full one holds the reader back.
		queue = make(chan chunk, maxInFlight/size)
		done = make(chan struct{})
		go func() { defer close(done); werr = deliver(ctx, dst, queue) }()
	}
	err := r.read(ctx, dst, src, b, size, queue, done)
	if delay > 0 {
		close(queue)
		<-done
		if err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	return nil
}

// read reads src until it ends, passing each chunk on once b lets it
// through: written to dst at once, or with a delay into queue for the
// deliver goroutine (done closes when it ends).
func (r *Relay) read(ctx context.Context, dst, src net.Conn, b *bucket, size int, queue chan<- chunk, done <-chan struct{}) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	buf := make([]byte, size)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			at := b.reserve(time.Now(), n)
			if err := sleepUntil(ctx, timer, at); err != nil {
				return err
			}
			if queue == nil {
				if _, err := dst.Write(buf[:n]); err != nil {
					return err
				}
			} else {
				c := chunk{data: append([]byte(nil), buf[:n]...), due: later(at, time.Now()).Add(r.opts.Delay)}
				select {
				case queue <- c:
				case <-ctx.Done():
					return ctx.Err()
				case <-done: // the writer failed; pump returns its error
					return nil
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// deliver writes the chunks of queue to dst at their due times until
// queue closes or ctx ends.
func deliver(ctx context.Context, dst net.Conn, queue <-chan chunk) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var c chunk
		select {
		case <-ctx.Done():
			return ctx.Err()
		case cc, ok := <-queue:
			if !ok {
				return nil
			}
			c = cc
		}
		if err := sleepUntil(ctx, timer, c.due); err != nil {
			return err
		}
		if _, err := dst.Write(c.data); err != nil {
			return err
		}
	}
}

// sleepUntil waits until t or ctx ends.
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) error {
	wait := time.Until(t)
	if wait <= 0 {
		return ctx.Err()
	}
	timer.Reset(wait)
	select {
	case <-ctx.Done():
		timer.Stop()
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// bucket is one direction's token bucket, shared by every connection. A
// nil bucket is unshaped.
type bucket struct {
	rate  float64       // bytes per second
	burst time.Duration // how far behind now the bucket may start: its depth

	mu   sync.Mutex
	next time.Time // when the bytes reserved so far have all passed
}

// newBucket returns the bucket for mbps Mbit/s, nil for 0.
func newBucket(mbps float64) *bucket {
	if mbps <= 0 {
		return nil
	}
	return &bucket{rate: mbps * 1e6 / 8, burst: BurstDuration}
}

// reserve takes n bytes' worth of tokens at now and returns when they are
// all available: the time the n bytes have passed the line. Reservations
// queue behind each other, so the bytes reserved over any span exceed the
// rate by at most the bucket's depth; a caller that wakes late loses
// nothing as long as it is late by less than the depth.
func (b *bucket) reserve(now time.Time, n int) time.Time {
	if b == nil {
		return now
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	start := later(b.next, now.Add(-b.burst))
	b.next = start.Add(time.Duration(float64(n) / b.rate * float64(time.Second)))
	return b.next
}

// chunkSize is the most bytes a pump reads at once: about 1 ms of the
// rate, between 4 and 64 KiB (64 KiB unshaped), so that the streams
// sharing the bucket take turns finely.
func (b *bucket) chunkSize() int {
	if b == nil {
		return 64 << 10
	}
	return min(64<<10, max(4<<10, int(b.rate/1000)))
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
