// Package iptv checks an iTV multicast channel the way a set-top box
// receives it: it joins the group (IGMPv2-style any-source, or IGMPv3
// source-specific), times the join, receives the MPEG transport stream
// (raw TS over UDP or RTP) for a while and reports the RFC 4445 Media
// Delivery Index (Delay Factor and Media Loss Rate), continuity counter
// errors, the bitrate and whether PAT, PMT and PCR are present.
//
// Measure returns the detailed Report; Probe wraps it in the
// diagnostics.Probe shape with readings and gauges.
package iptv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/iptv/mpegts"
)

// Sentinel errors returned (wrapped) by Measure and the probe. Invalid
// targets and options wrap diagnostics.ErrInvalidTarget and
// diagnostics.ErrInvalidOptions; a context deadline wraps diagnostics.ErrTimeout.
var (
	// ErrJoin means the multicast join itself was refused by the system.
	ErrJoin = errors.New("multicast join failed")
	// ErrNoPackets means nothing arrived within the join timeout.
	ErrNoPackets = errors.New("no multicast packets received: " +
		"check the IPTV VLAN, the port binding of the set-top box port and IGMP snooping/proxy on the gateway")
	// ErrNotMPEGTS means datagrams arrived but none held MPEG-TS packets.
	ErrNotMPEGTS = errors.New("datagrams are not MPEG-TS (188-byte packets starting 0x47, raw or in RTP): " +
		"check the channel's port")
	// ErrIncompleteStream means the stream lacks a PAT, a PMT or a PCR, so
	// a set-top box cannot tune or clock it.
	ErrIncompleteStream = errors.New("stream incomplete, a set-top box cannot play it: check the head-end encoder")
)

// Defaults applied to zero Options fields.
const (
	// DefaultDuration is how long the stream is received after the first packet.
	DefaultDuration = 5 * time.Second
	// DefaultJoinTimeout is how long the first packet is awaited after the join.
	DefaultJoinTimeout = 3 * time.Second
	// DefaultInterval is the MDI measurement interval (RFC 4445 suggests 1 s).
	DefaultInterval = time.Second
)

// Limits checked by Options validation.
const (
	// MaxDuration bounds Options.Duration (the arrival log is kept in memory).
	MaxDuration = 10 * time.Minute
	// MinInterval bounds Options.Interval from below.
	MinInterval = 10 * time.Millisecond
)

const (
	// readBuffer is the socket receive buffer asked for: about 1.6 s of a
	// 20 Mbit/s channel, so a busy field laptop does not drop datagrams
	// that the network delivered (the kernel caps it at net.core.rmem_max
	// unless the process may force it).
	readBuffer = 4 << 20
	// endSlack is how long past the end of the window the last read waits.
	endSlack = 50 * time.Millisecond
	// pcrRateTolerance is how far the PCR bitrate may stray from the
	// measured one and still be used as the drain rate.
	pcrRateTolerance = 0.25
)

// Options configures Measure and Probe. The zero value receives for 5 s
// after a join on the interface the system picks, with 1 s MDI intervals.
type Options struct {
	// Interface is the name of the interface to join on (e.g. "eth0.45",
	// the IPTV VLAN); "" lets the system choose by its multicast route.
	Interface string
	// Duration is how long to receive after the first packet; 0 means
	// DefaultDuration. At most MaxDuration.
	Duration time.Duration
	// JoinTimeout is how long to wait for the first packet after the join;
	// 0 means DefaultJoinTimeout.
	JoinTimeout time.Duration
	// Interval is the MDI interval; 0 means DefaultInterval. At least MinInterval.
	Interval time.Duration
	// Logger, if nil, discards. Probe uses the logger it is given instead.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.JoinTimeout == 0 {
		o.JoinTimeout = DefaultJoinTimeout
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.Duration < 0 || o.Duration > MaxDuration:
		return fmt.Errorf("iptv duration %s outside 0..%s: %w", o.Duration, MaxDuration, diagnostics.ErrInvalidOptions)
	case o.JoinTimeout < 0:
		return fmt.Errorf("iptv join timeout %s is negative: %w", o.JoinTimeout, diagnostics.ErrInvalidOptions)
	case o.Interval < MinInterval:
		return fmt.Errorf("iptv mdi interval %s below %s: %w", o.Interval, MinInterval, diagnostics.ErrInvalidOptions)
	}
	return nil
}

// Report is everything Measure found out about a channel. Counts are over
// the whole receive window.
type Report struct {
	// Target is the channel that was joined.
	Target Target
	// Interface is the interface joined on; "" for the system's choice.
	Interface string
	// Sender is the source address of the first datagram.
	Sender netip.AddrPort
	// JoinLatency is the time from the join to the first datagram.
	JoinLatency time.Duration
	// Duration is the receive window: from the first datagram to its end
	// (shorter when the context ended it).
	Duration time.Duration
	// Encapsulation is "rtp" or "udp" (raw TS), from the first TS datagram;
	// "" when none came.
	Encapsulation string
	// Datagrams counts every datagram received; BadDatagrams those holding
	// no MPEG-TS (wrong size or sync byte, broken RTP header).
	Datagrams, BadDatagrams uint64
	// Packets counts valid TS packets; InvalidPackets those with a bad sync
	// byte or header inside otherwise good datagrams.
	Packets, InvalidPackets uint64
	// CCErrors counts continuity counter errors; LostPackets the TS packets
	// their gaps imply were lost.
	CCErrors, LostPackets uint64
	// TransportErrors counts packets flagged by transport_error_indicator.
	TransportErrors uint64
	// CRCErrors counts PAT/PMT sections with a bad CRC-32.
	CRCErrors uint64
	// MLR is the Media Loss Rate over the window: lost TS packets per second.
	MLR float64
	// MLRMax is the highest MLR of any interval.
	MLRMax float64
	// DF is the highest Delay Factor of any interval.
	DF time.Duration
	// DFAvg is the mean Delay Factor of the intervals.
	DFAvg time.Duration
	// Intervals holds the MDI of each interval.
	Intervals []Interval
	// Bitrate is the measured TS bitrate in bit/s (RTP headers excluded).
	Bitrate float64
	// NominalBitrate is the drain rate of the DF's virtual buffer in bit/s:
	// the rate the PCRs imply when they agree with Bitrate within 25 %,
	// else Bitrate. NominalFromPCR tells which.
	NominalBitrate float64
	NominalFromPCR bool
	// PAT, PMT and PCR say whether a valid PAT, a valid PMT of a program
	// in it, and PCRs on that program's PCR PID were seen.
	PAT, PMT, PCR bool
	// PCRPID is the PID the PCRs were taken from (valid when PCR is set).
	PCRPID uint16
	// Programs holds the PMTs seen.
	Programs []mpegts.PMT
	// PIDs holds per-PID packet and continuity statistics.
	PIDs map[uint16]mpegts.PIDStats
	// RTP says RTP datagrams were seen; RTPLost counts RTP packets missing
	// from the sequence numbers, RTPLate those that came out of order or twice.
	RTP              bool
	RTPLost, RTPLate uint64
}

// Measure joins target ("group:port" or "source@group:port", see
// ParseTarget) and receives the stream for opts.Duration after the first
// packet. It returns the report, also partial ones alongside an error:
// ErrNoPackets when nothing arrived within opts.JoinTimeout, ErrNotMPEGTS,
// ErrIncompleteStream when PAT, PMT or PCR is missing, ErrJoin when the
// system refused the join, diagnostics.ErrTimeout (with the figures so far)
// when ctx's deadline cut the window short, and the diagnostics invalid
// target and options errors.
func Measure(ctx context.Context, target string, opts Options) (Report, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return Report{}, err
	}
	t, err := ParseTarget(target)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Target: t, Interface: o.Interface}
	ifi, err := lookupInterface(o.Interface)
	if err != nil {
		return rep, err
	}
	lc := net.ListenConfig{Control: controlSocket}
	pc, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort(listenHost(t.Group), strconv.Itoa(int(t.Port))))
	if err != nil {
		return rep, fmt.Errorf("iptv: listen on udp port %d: %w", t.Port, err)
	}
	conn := pc.(*net.UDPConn)
	defer conn.Close()
	if err := growReadBuffer(conn, readBuffer); err != nil {
		o.Logger.Debug("iptv receive buffer not enlarged", "err", err)
	}

	r := &receiver{opts: o, target: t, conn: conn, an: mpegts.NewAnalyzer(), rep: rep}
	leave, err := r.join(ifi)
	if err != nil {
		return r.rep, err
	}
	defer leave()
	return r.receive(ctx)
}

// lookupInterface finds the named interface and checks it can do multicast;
// "" means the system's choice (nil).
func lookupInterface(name string) (*net.Interface, error) {
	if name == "" {
		return nil, nil
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		var names []string
		if all, lerr := net.Interfaces(); lerr == nil {
			for _, i := range all {
				names = append(names, i.Name)
			}
		}
		return nil, fmt.Errorf("iptv: interface %q not found (have %s): %w", name, strings.Join(names, ", "), diagnostics.ErrInvalidOptions)
	}
	switch {
	case ifi.Flags&net.FlagUp == 0:
		return nil, fmt.Errorf("iptv: interface %s is down: bring it up or pick the IPTV interface: %w", name, diagnostics.ErrInvalidOptions)
	case ifi.Flags&net.FlagMulticast == 0:
		return nil, fmt.Errorf("iptv: interface %s has no MULTICAST flag (ip link set %s multicast on): %w", name, name, diagnostics.ErrInvalidOptions)
	}
	return ifi, nil
}

// receiver holds the state of one measurement.
type receiver struct {
	opts     Options
	target   Target
	conn     *net.UDPConn
	an       *mpegts.Analyzer
	rtp      rtpCounter
	arrivals []arrival
	rep      Report

	joinStart time.Time
}

// join joins the group (source-specific for an SSM target) and returns the
// matching leave.
func (r *receiver) join(ifi *net.Interface) (leave func(), err error) {
	p := ipv4.NewPacketConn(r.conn)
	grp := &net.UDPAddr{IP: r.target.Group.AsSlice()}
	on := "the system's multicast interface"
	if ifi != nil {
		on = ifi.Name
	}
	log := r.opts.Logger.With("target", r.target.String(), "interface", on)
	r.joinStart = time.Now()
	if r.target.SSM() {
		src := &net.UDPAddr{IP: r.target.Source.AsSlice()}
		err = p.JoinSourceSpecificGroup(ifi, grp, src)
		leave = func() {
			if err := p.LeaveSourceSpecificGroup(ifi, grp, src); err != nil {
				log.Debug("iptv leave failed", "err", err)
			}
		}
	} else {
		err = p.JoinGroup(ifi, grp)
		leave = func() {
			if err := p.LeaveGroup(ifi, grp); err != nil {
				log.Debug("iptv leave failed", "err", err)
			}
		}
	}
	if err != nil {
		hint := ""
		if errors.Is(err, syscall.ENODEV) {
			hint = ": no route for the group; name the IPTV interface"
		}
		return nil, fmt.Errorf("iptv: join %s on %s: %w: %w%s", r.target, on, ErrJoin, err, hint)
	}
	log.Debug("iptv joined", "ssm", r.target.SSM())
	return leave, nil
}

// receive reads datagrams until the window closes and builds the report.
func (r *receiver) receive(ctx context.Context) (Report, error) {
	// The context ends the reads by moving the deadline into the past; the
	// mutex keeps the loop from moving it back afterwards.
	var mu sync.Mutex
	stopped := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		_ = r.conn.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	setDeadline := func(t time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			_ = r.conn.SetReadDeadline(t)
		}
	}

	buf := make([]byte, 64<<10)
	oob := make([]byte, oobSize())
	setDeadline(r.joinStart.Add(r.opts.JoinTimeout))
	var first, end time.Time // arrival clock (the kernel's when it stamps)
	for {
		n, from, at, err := readDatagram(r.conn, buf, oob)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return r.rep, fmt.Errorf("iptv: receive %s: %w", r.target, err)
			}
			if ctx.Err() != nil {
				return r.cutShort(ctx, first)
			}
			if first.IsZero() {
				return r.rep, fmt.Errorf("iptv: nothing on %s within %s of the join: %w", r.target, r.opts.JoinTimeout, ErrNoPackets)
			}
			break // the stream stalled until the window closed
		}
		if first.IsZero() {
			first, end = at, at.Add(r.opts.Duration)
			r.rep.JoinLatency = max(0, at.Sub(r.joinStart))
			r.rep.Sender = from
			setDeadline(time.Now().Add(r.opts.Duration + endSlack))
			r.opts.Logger.Debug("iptv first packet", "join_ms", ms(r.rep.JoinLatency), "sender", from.String())
		}
		if at.After(end) {
			break
		}
		r.datagram(buf[:n], at.Sub(first))
	}
	return r.finish(r.opts.Duration)
}

// cutShort finishes a measurement the context ended.
func (r *receiver) cutShort(ctx context.Context, first time.Time) (Report, error) {
	cause := ctx.Err()
	if errors.Is(cause, context.DeadlineExceeded) {
		cause = diagnostics.ErrTimeout
	}
	if first.IsZero() {
		return r.rep, fmt.Errorf("iptv: nothing on %s before the context ended: %w (%w)", r.target, ErrNoPackets, cause)
	}
	window := time.Since(first)
	rep, err := r.finish(window)
	if err != nil {
		return rep, fmt.Errorf("iptv: receive %s cut short after %.1f s of %s: %w (%w)", r.target, window.Seconds(), r.opts.Duration, cause, err)
	}
	return rep, fmt.Errorf("iptv: receive %s cut short after %.1f s of %s: %w", r.target, window.Seconds(), r.opts.Duration, cause)
}

// datagram takes in one datagram that arrived at (since the first).
func (r *receiver) datagram(b []byte, at time.Duration) {
	r.rep.Datagrams++
	payload := b
	rtp := isRTP(b)
	if rtp {
		h, p, err := parseRTP(b)
		if err != nil {
			r.rep.BadDatagrams++
			return
		}
		r.rtp.add(h.seq, h.ssrc)
		r.rep.RTP = true
		payload = p
	}
	if len(payload) == 0 || len(payload)%mpegts.PacketSize != 0 || payload[0] != mpegts.SyncByte {
		r.rep.BadDatagrams++
		return
	}
	if r.rep.Encapsulation == "" {
		r.rep.Encapsulation = "udp"
		if rtp {
			r.rep.Encapsulation = "rtp"
		}
	}
	lost := r.an.Lost()
	for off := 0; off < len(payload); off += mpegts.PacketSize {
		_ = r.an.Feed(payload[off : off+mpegts.PacketSize]) // counted as invalid by the analyzer
	}
	r.arrivals = append(r.arrivals, arrival{at: at, bytes: len(payload), lost: int(r.an.Lost() - lost)})
}

// finish computes the report over a receive window of the given length and
// checks the stream is one a set-top box can play.
func (r *receiver) finish(window time.Duration) (Report, error) {
	rep := &r.rep
	rep.Duration = window
	s := r.an.Summary()
	rep.Packets, rep.InvalidPackets = s.Packets, s.Invalid
	rep.CCErrors, rep.LostPackets = s.CCErrors, s.Lost
	rep.TransportErrors, rep.CRCErrors = s.TransportErrors, s.CRCErrors
	rep.PAT, rep.PMT, rep.PCR = s.PAT != nil, len(s.PMTs) > 0, s.PCRs > 0
	rep.PCRPID, rep.Programs, rep.PIDs = s.PCRPID, s.PMTs, s.PIDs
	if rep.RTP {
		rep.RTPLost, rep.RTPLate = r.rtp.lost(), r.rtp.late
	}
	rep.Bitrate = averageRate(r.arrivals, window) * 8
	rep.NominalBitrate = rep.Bitrate
	if s.PCRBitrate > 0 && math.Abs(s.PCRBitrate-rep.Bitrate) <= pcrRateTolerance*rep.Bitrate {
		rep.NominalBitrate, rep.NominalFromPCR = s.PCRBitrate, true
	}
	if window > 0 {
		rep.MLR = float64(s.Lost) / window.Seconds()
	}
	rep.Intervals = mdiIntervals(r.arrivals, rep.NominalBitrate/8, r.opts.Interval, window)
	var dfSum time.Duration
	for _, iv := range rep.Intervals {
		rep.DF = max(rep.DF, iv.DF)
		rep.MLRMax = max(rep.MLRMax, iv.MLR)
		dfSum += iv.DF
	}
	if len(rep.Intervals) > 0 {
		rep.DFAvg = dfSum / time.Duration(len(rep.Intervals))
	}

	if rep.Packets == 0 {
		return *rep, fmt.Errorf("iptv: %d datagrams on %s from %s: %w", rep.Datagrams, r.target, rep.Sender, ErrNotMPEGTS)
	}
	var missing []string
	if !rep.PAT {
		missing = append(missing, "no PAT")
	}
	if !rep.PMT {
		missing = append(missing, "no PMT")
	}
	if !rep.PCR {
		missing = append(missing, "no PCR")
	}
	if len(missing) > 0 {
		return *rep, fmt.Errorf("iptv: %s: %s: %w", r.target, strings.Join(missing, ", "), ErrIncompleteStream)
	}
	return *rep, nil
}

// Probe returns a Probe that runs Measure against its target with opts
// (the probe's logger replaces opts.Logger). Readings: iptv_join_ms (ms),
// iptv_packets (TS packets), iptv_cc_errors, iptv_mlr (lost TS packets/s
// over the window), iptv_df_ms (the worst interval's Delay Factor, ms),
// iptv_bitrate_mbps (Mbit/s), iptv_pat, iptv_pmt and iptv_pcr (1 present,
// 0 missing) and, for RTP streams, iptv_rtp_lost. When nothing arrived the
// only reading is iptv_packets 0. Gauges: probe_iptv_join_seconds,
// probe_iptv_mlr and probe_iptv_df_seconds. Errors are Measure's.
func Probe(opts Options) diagnostics.Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, logger *slog.Logger) ([]diagnostics.Reading, error) {
		o := opts
		if logger != nil {
			o.Logger = logger
		}
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		rep, err := Measure(ctx, target, o)
		if rep.Datagrams == 0 {
			if errors.Is(err, ErrNoPackets) {
				return []diagnostics.Reading{{Name: "iptv_packets", Value: 0}}, err
			}
			return nil, err
		}
		exportMetrics(reg, o.withDefaults().Logger, rep)
		return Readings(rep), err
	}
}

// Readings turns a report into the probe's readings (see Probe).
func Readings(rep Report) []diagnostics.Reading {
	rs := []diagnostics.Reading{
		{Name: "iptv_join_ms", Value: ms(rep.JoinLatency), Unit: "ms"},
		{Name: "iptv_packets", Value: float64(rep.Packets)},
		{Name: "iptv_cc_errors", Value: float64(rep.CCErrors)},
		{Name: "iptv_mlr", Value: rep.MLR, Unit: "packets/s"},
		{Name: "iptv_df_ms", Value: ms(rep.DF), Unit: "ms"},
		{Name: "iptv_bitrate_mbps", Value: rep.Bitrate / 1e6, Unit: "Mbit/s"},
		{Name: "iptv_pat", Value: flag(rep.PAT)},
		{Name: "iptv_pmt", Value: flag(rep.PMT)},
		{Name: "iptv_pcr", Value: flag(rep.PCR)},
	}
	if rep.RTP {
		rs = append(rs, diagnostics.Reading{Name: "iptv_rtp_lost", Value: float64(rep.RTPLost)})
	}
	return rs
}

func exportMetrics(reg prometheus.Registerer, logger *slog.Logger, rep Report) {
	join := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_iptv_join_seconds",
		Help: "Time from the multicast join to the first packet",
	})
	mlr := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_iptv_mlr",
		Help: "RFC 4445 Media Loss Rate: lost MPEG-TS packets per second",
	})
	df := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_iptv_df_seconds",
		Help: "RFC 4445 Delay Factor of the worst interval",
	})
	for _, c := range []prometheus.Collector{join, mlr, df} {
		if err := reg.Register(c); err != nil {
			logger.Warn("metric not registered", "err", err)
		}
	}
	join.Set(rep.JoinLatency.Seconds())
	mlr.Set(rep.MLR)
	df.Set(rep.DF.Seconds())
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
