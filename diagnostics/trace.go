package diagnostics

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors returned (wrapped) by TraceProbe and Traceroute.
var (
	// ErrTraceNotReached means no probe reached the destination within
	// TraceOptions.MaxHops (it may drop UDP to closed ports, or the path
	// is longer).
	ErrTraceNotReached = errors.New("traceroute did not reach the destination")
	// ErrTraceUnreachable means a hop answered "destination unreachable"
	// (no route, host down, administratively prohibited) and the trace
	// stopped there.
	ErrTraceUnreachable = errors.New("traceroute stopped by an ICMP unreachable")
	// ErrTraceUnsupported means this platform has no unprivileged
	// traceroute (it needs Linux's IP_RECVERR socket error queue).
	ErrTraceUnsupported = errors.New("unprivileged traceroute needs Linux (IP_RECVERR error queue)")
)

// Traceroute defaults and limits applied to TraceOptions.
const (
	// DefaultTraceMaxHops is the largest TTL probed by default.
	DefaultTraceMaxHops = 30
	// MaxTraceHops is the largest MaxHops accepted.
	MaxTraceHops = 64
	// DefaultTraceQueries is how many probes are sent per hop.
	DefaultTraceQueries = 3
	// MaxTraceQueries is the largest Queries accepted.
	MaxTraceQueries = 10
	// DefaultTraceTimeout is how long one probe waits for its answer.
	DefaultTraceTimeout = time.Second
	// DefaultTracePort is the first UDP destination port (traceroute's).
	DefaultTracePort = 33434
)

// TraceOptions configures TraceProbe and Traceroute. The zero value probes
// up to 30 hops, 3 probes per hop, 1s per probe, from port 33434.
type TraceOptions struct {
	// MaxHops is the largest TTL probed; 0 means DefaultTraceMaxHops, more
	// than MaxTraceHops is invalid.
	MaxHops int
	// Queries is how many probes are sent per hop (at once); 0 means
	// DefaultTraceQueries, more than MaxTraceQueries is invalid.
	Queries int
	// Timeout is how long each probe waits for its answer; 0 means
	// DefaultTraceTimeout. A silent hop costs one Timeout.
	Timeout time.Duration
	// Port is the first UDP destination port; probe i (counting from 0
	// over all hops) goes to Port+i. 0 means DefaultTracePort.
	Port int
	// OnResult, if set, receives TraceProbe's hop list, for a caller that
	// prints it.
	OnResult func(TraceResult)
}

func (o TraceOptions) withDefaults() TraceOptions {
	if o.MaxHops == 0 {
		o.MaxHops = DefaultTraceMaxHops
	}
	if o.Queries == 0 {
		o.Queries = DefaultTraceQueries
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTraceTimeout
	}
	if o.Port == 0 {
		o.Port = DefaultTracePort
	}
	return o
}

func (o TraceOptions) validate() error {
	switch {
	case o.MaxHops < 1 || o.MaxHops > MaxTraceHops:
		return fmt.Errorf("traceroute max hops %d outside 1..%d: %w", o.MaxHops, MaxTraceHops, ErrInvalidOptions)
	case o.Queries < 1 || o.Queries > MaxTraceQueries:
		return fmt.Errorf("traceroute queries %d outside 1..%d: %w", o.Queries, MaxTraceQueries, ErrInvalidOptions)
	case o.Timeout < 0:
		return fmt.Errorf("traceroute timeout %s is negative: %w", o.Timeout, ErrInvalidOptions)
	case o.Port < 1 || o.Port+o.MaxHops*o.Queries-1 > 65535:
		return fmt.Errorf("traceroute ports %d..%d outside 1..65535: %w", o.Port, o.Port+o.MaxHops*o.Queries-1, ErrInvalidOptions)
	}
	return nil
}

// Hop is one TTL of a traceroute.
type Hop struct {
	// TTL is the hop's number, from 1.
	TTL int `json:"ttl"`
	// Addr is the address that answered; the zero Addr means the hop was
	// silent. When several routers answered (load balancing) it is the
	// first.
	Addr netip.Addr `json:"addr"`
	// RTTs holds one round-trip time per answered probe; empty when silent.
	RTTs []time.Duration `json:"rtts_ns"`
	// Reached is true when the destination itself answered at this hop.
	Reached bool `json:"reached"`
	// Unreachable, when not "", is the ICMP unreachable this hop answered
	// ("network unreachable", "host unreachable", "administratively
	// prohibited", ...); the trace stops at such a hop.
	Unreachable string `json:"unreachable,omitempty"`
}

// MedianRTT returns the median of h.RTTs (the mean of the middle two for an
// even count), or 0 for a silent hop.
func (h Hop) MedianRTT() time.Duration {
	if len(h.RTTs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(h.RTTs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TraceResult is the outcome of Traceroute.
type TraceResult struct {
	// Target is what was asked for (name or address).
	Target string `json:"target"`
	// Addr is the destination address probed.
	Addr netip.Addr `json:"addr"`
	// Hops lists the hops probed, in TTL order, silent ones included.
	Hops []Hop `json:"hops"`
	// Reached is true when the destination answered.
	Reached bool `json:"reached"`
}

// Farthest returns the TTL of the farthest hop that answered, 0 when none.
func (r TraceResult) Farthest() int {
	for i := len(r.Hops) - 1; i >= 0; i-- {
		if r.Hops[i].Addr.IsValid() {
			return r.Hops[i].TTL
		}
	}
	return 0
}

// TraceProbe returns a Probe that traces the path to target (a host name or
// IP address) with Traceroute: no raw sockets and no privileges needed.
//
// Readings: trace_hops (the TTL of the farthest hop that answered: the
// destination's when reached, 0 when nothing answered), trace_reached (1 or
// 0) and, per answering hop n, trace_hop_<n>_rtt_ms (median RTT; absent for
// silent hops). Gauges: probe_trace_hops, probe_trace_reached and
// probe_trace_hop_rtt_seconds{hop="n"}.
//
// Errors: ErrTraceNotReached (names the farthest answer), ErrTraceUnreachable
// (names the hop and the ICMP code), ErrTimeout when the deadline cut the
// trace short (hops so far are kept), ErrTraceUnsupported off Linux, and
// ErrInvalidTarget / ErrInvalidOptions.
func TraceProbe(opts TraceOptions) Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, logger *slog.Logger) ([]Reading, error) {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		res, err := traceroute(ctx, target, opts, logger)
		if opts.OnResult != nil {
			opts.OnResult(res)
		}
		if !res.Addr.IsValid() {
			return nil, err
		}
		exportTraceMetrics(reg, logger, res)
		return traceReadings(res), err
	}
}

// Traceroute sends UDP probes to target with rising TTLs and collects who
// answers, hop by hop, until the destination answers, a hop answers
// unreachable, MaxHops is reached or ctx ends. The result holds the hops
// probed so far also alongside an error. Errors are as for TraceProbe.
func Traceroute(ctx context.Context, target string, opts TraceOptions) (TraceResult, error) {
	return traceroute(ctx, target, opts, slog.New(slog.DiscardHandler))
}

func traceroute(ctx context.Context, target string, opts TraceOptions, logger *slog.Logger) (TraceResult, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return TraceResult{}, err
	}
	if err := traceSupported(); err != nil {
		return TraceResult{}, err
	}
	dst, err := resolveTraceTarget(ctx, target)
	if err != nil {
		return TraceResult{}, err
	}
	res := TraceResult{Target: target, Addr: dst}
	logger.Debug("traceroute starting", "addr", dst, "max_hops", o.MaxHops, "queries", o.Queries)
	what := fmt.Sprintf("traceroute to %s (%s)", target, dst)
	for ttl := 1; ttl <= o.MaxHops; ttl++ {
		if ctxDone(ctx) {
			return res, doneErr(ctx, fmt.Sprintf("%s before hop %d", what, ttl))
		}
		hop, err := traceHop(ctx, dst, ttl, o, logger)
		if ctxDone(ctx) && !hop.Addr.IsValid() {
			return res, doneErr(ctx, fmt.Sprintf("%s at hop %d", what, ttl))
		}
		res.Hops = append(res.Hops, hop)
		logger.Debug("traceroute hop", "ttl", ttl, "addr", hop.Addr, "rtts", hop.RTTs, "reached", hop.Reached)
		switch {
		case err != nil:
			return res, fmt.Errorf("%s at hop %d: %w", what, ttl, err)
		case hop.Reached:
			res.Reached = true
			return res, nil
		case hop.Unreachable != "":
			return res, fmt.Errorf("%s: hop %d (%s) answered %s: %w", what, ttl, hop.Addr, hop.Unreachable, ErrTraceUnreachable)
		case ctxDone(ctx):
			return res, doneErr(ctx, fmt.Sprintf("%s at hop %d", what, ttl))
		}
	}
	if n := res.Farthest(); n > 0 {
		return res, fmt.Errorf("%s: no answer from the destination within %d hops, the farthest from hop %d (%s): %w",
			what, o.MaxHops, n, res.Hops[n-1].Addr, ErrTraceNotReached)
	}
	return res, fmt.Errorf("%s: no hop answered within %d hops: %w", what, o.MaxHops, ErrTraceNotReached)
}

// traceHop sends o.Queries probes with TTL ttl at once and gathers the
// answers in send order. The error is a local failure (no route, socket
// error), not a silent hop.
func traceHop(ctx context.Context, dst netip.Addr, ttl int, o TraceOptions, logger *slog.Logger) (Hop, error) {
	answers := make([]traceAnswer, o.Queries)
	errs := make([]error, o.Queries)
	var wg sync.WaitGroup
	for q := range o.Queries {
		port := o.Port + (ttl-1)*o.Queries + q
		wg.Go(func() { answers[q], errs[q] = sendTraceProbe(ctx, dst, port, ttl, o.Timeout) })
	}
	wg.Wait()
	hop := Hop{TTL: ttl}
	for _, a := range answers {
		if !a.from.IsValid() {
			continue
		}
		if !hop.Addr.IsValid() {
			hop.Addr = a.from
		} else if a.from != hop.Addr {
			logger.Info("traceroute hop answered from several addresses", "ttl", ttl, "addr", hop.Addr, "other", a.from)
		}
		hop.RTTs = append(hop.RTTs, a.rtt)
		switch a.kind {
		case traceReached:
			hop.Reached = true
		case traceUnreachable:
			hop.Unreachable = a.note
		}
	}
	for _, err := range errs {
		if err != nil {
			return hop, err // the queries of a hop fail alike: one is enough
		}
	}
	return hop, nil
}

// resolveTraceTarget resolves target within ctx, preferring IPv4.
func resolveTraceTarget(ctx context.Context, target string) (netip.Addr, error) {
	if target == "" {
		return netip.Addr{}, fmt.Errorf("traceroute: empty target: %w", ErrInvalidTarget)
	}
	if ip, err := netip.ParseAddr(target); err == nil {
		return ip.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", target)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("traceroute: resolve %q: %w: %w", target, ErrInvalidTarget, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("traceroute: %q has no addresses: %w", target, ErrInvalidTarget)
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

func traceReadings(res TraceResult) []Reading {
	reached := 0.0
	if res.Reached {
		reached = 1
	}
	rs := []Reading{
		{Name: "trace_hops", Value: float64(res.Farthest())},
		{Name: "trace_reached", Value: reached},
	}
	for _, h := range res.Hops {
		if len(h.RTTs) > 0 {
			rs = append(rs, Reading{Name: "trace_hop_" + strconv.Itoa(h.TTL) + "_rtt_ms", Value: ms(h.MedianRTT()), Unit: "ms"})
		}
	}
	return rs
}

func exportTraceMetrics(reg prometheus.Registerer, logger *slog.Logger, res TraceResult) {
	hops := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_trace_hops",
		Help: "TTL of the farthest hop that answered",
	})
	reached := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_trace_reached",
		Help: "1 if the traceroute reached its destination",
	})
	rtt := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "probe_trace_hop_rtt_seconds",
		Help: "Median round-trip time of each answering hop",
	}, []string{"hop"})
	register(reg, logger, hops, reached, rtt)
	hops.Set(float64(res.Farthest()))
	if res.Reached {
		reached.Set(1)
	}
	for _, h := range res.Hops {
		if len(h.RTTs) > 0 {
			rtt.WithLabelValues(strconv.Itoa(h.TTL)).Set(h.MedianRTT().Seconds())
		}
	}
}

// traceKind is what a probe's answer means.
type traceKind int

const (
	traceSilent       traceKind = iota // no answer
	traceTimeExceeded                  // a router on the way
	traceReached                       // the destination (port unreachable, or a UDP reply)
	traceUnreachable                   // a router or the destination refused to go on
)

// traceAnswer is one probe's outcome; from is zero when it went unanswered.
type traceAnswer struct {
	from netip.Addr
	rtt  time.Duration
	kind traceKind
	note string // for traceUnreachable
}

// Linux's struct sock_extended_err (linux/errqueue.h) and the sockaddr
// after it, as delivered in an IP_RECVERR / IPV6_RECVERR control message.
const (
	sizeofSockExtendedErr = 16
	soEEOriginLocal       = 1
	soEEOriginICMP        = 2
	soEEOriginICMP6       = 3
	linuxAFInet           = 2
	linuxAFInet6          = 10
)

// extendedErr is a parsed sock_extended_err with its offender address
// (zero when the kernel gave none).
type extendedErr struct {
	errno             uint32
	origin, typ, code uint8
	info              uint32
	offender          netip.Addr
}

// parseExtendedErr parses the data of an IP_RECVERR / IPV6_RECVERR control
// message: a sock_extended_err in host byte order followed by the offender's
// sockaddr_in or sockaddr_in6 (SO_EE_OFFENDER).
func parseExtendedErr(b []byte) (extendedErr, error) {
	if len(b) < sizeofSockExtendedErr {
		return extendedErr{}, fmt.Errorf("sock_extended_err of %d bytes, want at least %d", len(b), sizeofSockExtendedErr)
	}
	e := extendedErr{
		errno:  binary.NativeEndian.Uint32(b[0:4]),
		origin: b[4],
		typ:    b[5],
		code:   b[6],
		info:   binary.NativeEndian.Uint32(b[8:12]),
	}
	sa := b[sizeofSockExtendedErr:]
	if len(sa) < 2 {
		return e, nil
	}
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case linuxAFInet:
		if len(sa) < 8 {
			return e, fmt.Errorf("offender sockaddr_in of %d bytes, want at least 8", len(sa))
		}
		e.offender = netip.AddrFrom4([4]byte(sa[4:8]))
	case linuxAFInet6:
		if len(sa) < 24 {
			return e, fmt.Errorf("offender sockaddr_in6 of %d bytes, want at least 24", len(sa))
		}
		e.offender = netip.AddrFrom16([16]byte(sa[8:24])).Unmap()
	}
	return e, nil
}

// classify says what an error-queue entry means for the trace.
func (e extendedErr) classify() (traceKind, string) {
	switch e.origin {
	case soEEOriginICMP:
		switch e.typ {
		case 11: // time exceeded
			return traceTimeExceeded, ""
		case 3: // destination unreachable
			switch e.code {
			case 3:
				return traceReached, ""
			case 0:
				return traceUnreachable, "network unreachable (!N)"
			case 1:
				return traceUnreachable, "host unreachable (!H)"
			case 2:
				return traceUnreachable, "protocol unreachable (!P)"
			case 4:
				return traceUnreachable, "fragmentation needed (!F-" + strconv.Itoa(int(e.info)) + ")"
			case 9, 10, 13:
				return traceUnreachable, "administratively prohibited (!X)"
			}
			return traceUnreachable, "unreachable code " + strconv.Itoa(int(e.code))
		}
	case soEEOriginICMP6:
		switch e.typ {
		case 3: // time exceeded
			return traceTimeExceeded, ""
		case 1: // destination unreachable
			switch e.code {
			case 4:
				return traceReached, ""
			case 0:
				return traceUnreachable, "network unreachable (!N)"
			case 1:
				return traceUnreachable, "administratively prohibited (!X)"
			case 3:
				return traceUnreachable, "host unreachable (!H)"
			}
			return traceUnreachable, "unreachable code " + strconv.Itoa(int(e.code))
		case 2: // packet too big
			return traceUnreachable, "packet too big (!F-" + strconv.Itoa(int(e.info)) + ")"
		}
	case soEEOriginLocal:
		return traceUnreachable, "local error: " + syscall.Errno(e.errno).Error()
	}
	return traceUnreachable, fmt.Sprintf("ICMP type %d code %d (origin %d)", e.typ, e.code, e.origin)
}
