// Package mcast is the lab's iTV head-end: a multicast source that sends one
// synthetic MPEG-TS channel (mpegts.Writer: PAT, PMT, a PCR-carrying video
// PID) as UDP datagrams of seven TS packets, raw or in RTP, paced at the
// channel's bitrate. It can spoil the stream on purpose: LossRate drops TS
// packets before they are packed (continuity counter errors, MLR > 0) and
// Jitter delays datagrams at random, keeping their order (bursts, a higher
// Delay Factor). SetLossRate changes the loss while the source runs, and
// SetGate withholds datagrams, as a network element that stops forwarding
// the group would (the lab's faults use both).
//
// Datagrams go out with TTL 1 and multicast loopback on, so receivers on the
// same host (or in the same network namespace) get them and no router
// forwards them.
package mcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"fieldagent/diagnostics/iptv/mpegts"
)

// ErrConfig means a Config failed validation.
var ErrConfig = errors.New("invalid multicast source config")

// Defaults applied to zero Config fields.
const (
	// DefaultBitrate is a standard-definition iTV channel's rate.
	DefaultBitrate = 4_000_000
	// PacketsPerDatagram is how many TS packets a datagram carries (7×188 =
	// 1316 bytes, the IPTV norm that fits a 1500-byte MTU with RTP).
	PacketsPerDatagram = 7
	// MaxJitter bounds Config.Jitter.
	MaxJitter = time.Second
	// writeTimeout bounds each datagram write.
	writeTimeout = time.Second
)

// rtpHeaderLen is the fixed RTP header without CSRCs or extension.
const rtpHeaderLen = 12

// Config describes one multicast channel.
type Config struct {
	// Group is the IPv4 multicast group, e.g. "239.253.1.1".
	Group string
	// Port is the UDP destination port (1..65535), e.g. 5140.
	Port int
	// Interface names the interface to send on; "" lets the system choose
	// by its multicast route.
	Interface string
	// Source is the local IPv4 address to send from, the S of an (S,G)
	// channel for source-specific joins; "" lets the system choose (on a
	// bare lo that is 0.0.0.0, as lo's 127.0.0.1 is host-scoped).
	Source string
	// Bitrate is the transport stream rate in bit/s; 0 means DefaultBitrate.
	// At least mpegts.MinWriterBitrate.
	Bitrate int
	// RTP wraps each datagram in a 12-byte RTP header (payload type 33,
	// MP2T, 90 kHz timestamps) when set; otherwise the TS goes raw in UDP.
	RTP bool
	// LossRate is the probability (0 ≤ LossRate < 1) that a TS packet is
	// dropped before packing; datagrams stay full, so the receiver sees
	// continuity counter gaps, not RTP gaps.
	LossRate float64
	// Jitter delays each datagram by a random 0..Jitter beyond its due time,
	// never overtaking the one before (so late datagrams leave in bursts).
	// At most MaxJitter.
	Jitter time.Duration
	// Seed seeds the loss and jitter draws, the first RTP sequence number,
	// the SSRC and the first PCR: equal seeds give equal streams.
	Seed uint64
	// Logger, if nil, discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Bitrate == 0 {
		c.Bitrate = DefaultBitrate
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() (netip.Addr, error) {
	g, err := netip.ParseAddr(c.Group)
	switch {
	case err != nil || !g.Is4() || !g.IsMulticast():
		return g, fmt.Errorf("group %q is not an IPv4 multicast address: %w", c.Group, ErrConfig)
	case c.Port < 1 || c.Port > 65535:
		return g, fmt.Errorf("port %d outside 1..65535: %w", c.Port, ErrConfig)
	case c.Bitrate < mpegts.MinWriterBitrate:
		return g, fmt.Errorf("bitrate %d bit/s below %d: %w", c.Bitrate, mpegts.MinWriterBitrate, ErrConfig)
	case !(c.LossRate >= 0 && c.LossRate < 1):
		return g, fmt.Errorf("loss rate %v outside 0..1: %w", c.LossRate, ErrConfig)
	case c.Jitter < 0 || c.Jitter > MaxJitter:
		return g, fmt.Errorf("jitter %s outside 0..%s: %w", c.Jitter, MaxJitter, ErrConfig)
	}
	if c.Source != "" {
		if a, err := netip.ParseAddr(c.Source); err != nil || !a.Is4() || a.IsMulticast() || a.IsUnspecified() {
			return g, fmt.Errorf("source %q is not a unicast IPv4 address: %w", c.Source, ErrConfig)
		}
	}
	return g, nil
}

// Stats counts what a Source did.
type Stats struct {
	// Datagrams is how many datagrams were sent.
	Datagrams uint64
	// Packets is how many TS packets were sent.
	Packets uint64
	// Dropped is how many TS packets LossRate dropped.
	Dropped uint64
	// WriteErrors counts datagrams the system refused to send.
	WriteErrors uint64
	// MaxLate is the longest any datagram left after its due time (jitter
	// included): how far a busy machine kept the source off its schedule.
	// The source catches up by sending late datagrams at once, so lateness
	// shows up as bursts, like jitter, in what receivers measure.
	MaxLate time.Duration
	// Withheld counts datagrams the gate (SetGate) kept back.
	Withheld uint64
}

// Source is a running multicast channel. Stop it when done.
type Source struct {
	cfg    Config
	group  netip.Addr
	conn   net.PacketConn
	pc     *ipv4.PacketConn
	dst    *net.UDPAddr
	cancel context.CancelFunc
	done   chan struct{}

	datagrams, packets, dropped, writeErrors atomic.Uint64
	maxLate                                  atomic.Int64 // nanoseconds
	withheld                                 atomic.Uint64
	lossBits                                 atomic.Uint64 // math.Float64bits of the loss rate
	gate                                     atomic.Pointer[func() bool]

	stopOnce sync.Once
	errMu    sync.Mutex
	err      error // the first write error
}

// Start validates cfg, opens the sending socket (TTL 1, loopback on, on
// cfg.Interface when set), sends the first datagram to check the route and
// then keeps sending, paced, until ctx ends or Stop is called. It fails with
// ErrConfig, or with the system's error when the socket cannot be opened or
// the group has no route.
func Start(ctx context.Context, cfg Config) (*Source, error) {
	cfg = cfg.withDefaults()
	group, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d636173745f7473))
	w, err := mpegts.NewWriter(mpegts.WriterConfig{
		Bitrate:    cfg.Bitrate,
		InitialPCR: mpegts.PCR(rng.Uint64N(uint64(mpegts.PCRWrap))),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var lc net.ListenConfig
	local := "0.0.0.0"
	if cfg.Source != "" {
		local = cfg.Source
	}
	conn, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort(local, "0"))
	if err != nil {
		return nil, fmt.Errorf("mcast: open udp socket on %s: %w", local, err)
	}
	s := &Source{
		cfg:   cfg,
		group: group,
		conn:  conn,
		pc:    ipv4.NewPacketConn(conn),
		dst:   &net.UDPAddr{IP: group.AsSlice(), Port: cfg.Port},
		done:  make(chan struct{}),
	}
	if err := s.setup(); err != nil {
		conn.Close()
		return nil, err
	}
	s.lossBits.Store(math.Float64bits(cfg.LossRate))
	p := &pacer{s: s, w: w, rng: rng, seq: uint16(rng.Uint32()), ssrc: rng.Uint32()}
	p.start = time.Now()
	if err := p.sendNext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("mcast: send to %s: %w", s.Target(), err)
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		p.run(ctx)
	}()
	cfg.Logger.Debug("mcast source started", "target", s.Target(), "bitrate", cfg.Bitrate, "rtp", cfg.RTP,
		"loss_rate", cfg.LossRate, "jitter", cfg.Jitter)
	return s, nil
}

// setup sets the multicast socket options.
func (s *Source) setup() error {
	if s.cfg.Interface != "" {
		ifi, err := net.InterfaceByName(s.cfg.Interface)
		if err != nil {
			return fmt.Errorf("mcast: interface %q: %w", s.cfg.Interface, err)
		}
		if err := s.pc.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("mcast: send on %s: %w", ifi.Name, err)
		}
	}
	if err := s.pc.SetMulticastTTL(1); err != nil {
		return fmt.Errorf("mcast: set ttl 1: %w", err)
	}
	if err := s.pc.SetMulticastLoopback(true); err != nil {
		return fmt.Errorf("mcast: enable multicast loopback: %w", err)
	}
	return nil
}

// Target is the channel as the IPTV check takes it: "group:port".
func (s *Source) Target() string {
	return net.JoinHostPort(s.group.String(), strconv.Itoa(s.cfg.Port))
}

// Stats returns the counters so far; safe to call while running.
func (s *Source) Stats() Stats {
	return Stats{
		Datagrams:   s.datagrams.Load(),
		Packets:     s.packets.Load(),
		Dropped:     s.dropped.Load(),
		WriteErrors: s.writeErrors.Load(),
		MaxLate:     time.Duration(s.maxLate.Load()),
		Withheld:    s.withheld.Load(),
	}
}

// LossRate returns the share of TS packets the source drops now
// (Config.LossRate until SetLossRate changes it).
func (s *Source) LossRate() float64 { return math.Float64frombits(s.lossBits.Load()) }

// SetLossRate changes the share of TS packets dropped from the next
// datagram on, as a failing link upstream would; it fails with ErrConfig
// outside 0 ≤ rate < 1.
func (s *Source) SetLossRate(rate float64) error {
	if !(rate >= 0 && rate < 1) {
		return fmt.Errorf("loss rate %v outside 0..1: %w", rate, ErrConfig)
	}
	s.lossBits.Store(math.Float64bits(rate))
	s.cfg.Logger.Debug("mcast loss rate changed", "target", s.Target(), "loss_rate", rate)
	return nil
}

// SetGate makes the source ask open before each datagram leaves: while it
// returns false the datagram is withheld (counted in Stats.Withheld), as a
// network element that does not forward the group would. The stream keeps
// its schedule and continuity, so receivers see a gap in time, not in the
// counters. nil (the default) sends everything. open runs on the sender's
// goroutine and must be quick and safe for concurrent use.
func (s *Source) SetGate(open func() bool) {
	if open == nil {
		s.gate.Store(nil)
		return
	}
	s.gate.Store(&open)
}

// Done is closed when the source has stopped sending (Stop, or the context
// given to Start ended).
func (s *Source) Done() <-chan struct{} { return s.done }

// Stop stops sending, waits for the sender and closes the socket. It returns
// the first write error, if any; calling it again returns the same.
func (s *Source) Stop() error {
	s.stopOnce.Do(func() {
		s.cancel()
		<-s.done
		s.conn.Close()
	})
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// pacer generates and times the datagrams; it runs on one goroutine.
type pacer struct {
	s       *Source
	w       *mpegts.Writer
	rng     *rand.Rand
	start   time.Time
	lastDue time.Duration
	seq     uint16
	ssrc    uint32
	buf     []byte
	timer   *time.Timer
}

func (p *pacer) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := p.sendNext(ctx); err != nil && ctx.Err() == nil {
			p.s.writeErrors.Add(1)
			p.s.errMu.Lock()
			if p.s.err == nil {
				p.s.err = err
				p.s.cfg.Logger.Warn("mcast send failed", "target", p.s.Target(), "err", err)
			}
			p.s.errMu.Unlock()
		}
	}
}

// sendNext builds the next datagram, waits until it is due and sends it.
// It returns nil without sending when ctx ends during the wait.
func (p *pacer) sendNext(ctx context.Context) error {
	cfg := p.s.cfg
	p.buf = p.buf[:0]
	if cfg.RTP {
		p.buf = append(p.buf, make([]byte, rtpHeaderLen)...)
	}
	var dropped uint64
	loss := p.s.LossRate()
	for kept := 0; kept < PacketsPerDatagram; {
		n := len(p.buf)
		p.buf = p.w.Next(p.buf)
		if loss > 0 && p.rng.Float64() < loss {
			p.buf = p.buf[:n]
			dropped++
			continue
		}
		kept++
	}
	// The datagram is due when its last packet has been produced at the
	// stream's rate, that is when the next one is due.
	nominal := p.w.Due()
	due := nominal
	if cfg.Jitter > 0 {
		due += time.Duration(p.rng.Int64N(int64(cfg.Jitter) + 1))
	}
	due = max(due, p.lastDue)
	p.lastDue = due
	if cfg.RTP {
		putRTPHeader(p.buf, p.seq, uint32(uint64(nominal.Seconds()*90_000)), p.ssrc) // wraps, as RTP timestamps do
		p.seq++
	}
	if wait := time.Until(p.start.Add(due)); wait > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(wait)
		} else {
			p.timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.timer.C:
		}
	}
	p.s.dropped.Add(dropped)
	if late := time.Since(p.start.Add(due)); late > time.Duration(p.s.maxLate.Load()) {
		p.s.maxLate.Store(int64(late)) // only this goroutine stores
	}
	if g := p.s.gate.Load(); g != nil && !(*g)() {
		p.s.withheld.Add(1)
		return nil
	}
	if err := p.s.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if _, err := p.s.pc.WriteTo(p.buf, nil, p.s.dst); err != nil {
		return err
	}
	p.s.datagrams.Add(1)
	p.s.packets.Add(PacketsPerDatagram)
	return nil
}

// putRTPHeader writes a 12-byte RTP header (version 2, no padding,
// extension or CSRCs, payload type 33 MP2T) at the start of b.
func putRTPHeader(b []byte, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80
	b[1] = 33
	b[2], b[3] = byte(seq>>8), byte(seq)
	b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	b[8], b[9], b[10], b[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
}
