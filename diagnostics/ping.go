package diagnostics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"time"

	probing "github.com/prometheus-community/pro-bing"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/icmp"
)

// Ping modes accepted by PingOptions.Mode.
const (
	// PingModeAuto uses raw ICMP when permitted, else unprivileged ICMP
	// datagram ("UDP") sockets, else fails with ErrPingNotPermitted.
	PingModeAuto = "auto"
	// PingModePrivileged uses raw ICMP sockets (root or CAP_NET_RAW).
	PingModePrivileged = "privileged"
	// PingModeUnprivileged uses ICMP datagram sockets, allowed when the
	// process's group is inside net.ipv4.ping_group_range.
	PingModeUnprivileged = "unprivileged"
)

// Defaults applied by PingProbe to zero PingOptions fields.
const (
	// DefaultPingCount is how many echo requests a ping run sends.
	DefaultPingCount = 5
	// DefaultPingInterval is the gap between echo requests.
	DefaultPingInterval = 200 * time.Millisecond
	// DefaultPingWait is how long replies are awaited after the last request.
	DefaultPingWait = time.Second
)

const (
	// minPingSize is pro-bing's smallest payload: an 8-byte timestamp and a 16-byte tracker.
	minPingSize = 24
	maxPingSize = 65507
)

// PingOptions configures PingProbe. The zero value is 5 echo requests 200ms
// apart with the minimum payload, in auto mode.
type PingOptions struct {
	// Count is how many echo requests to send; 0 means DefaultPingCount.
	Count int
	// Interval is the gap between echo requests; 0 means DefaultPingInterval.
	Interval time.Duration
	// Wait is how long to wait for replies after the last request; 0 means
	// DefaultPingWait. Replies later than that count as lost.
	Wait time.Duration
	// Size is the ICMP payload size in bytes; 0 means the minimum of 24
	// (pro-bing's timestamp and tracker). Values 1..23 are invalid.
	Size int
	// DontFragment sets the IP do-not-fragment bit (use with Size for a path MTU check).
	DontFragment bool
	// Mode is PingModeAuto (also for ""), PingModePrivileged or PingModeUnprivileged.
	Mode string
}

func (o PingOptions) withDefaults() PingOptions {
	if o.Count == 0 {
		o.Count = DefaultPingCount
	}
	if o.Interval == 0 {
		o.Interval = DefaultPingInterval
	}
	if o.Wait == 0 {
		o.Wait = DefaultPingWait
	}
	if o.Size == 0 {
		o.Size = minPingSize
	}
	if o.Mode == "" {
		o.Mode = PingModeAuto
	}
	return o
}

func (o PingOptions) validate() error {
	switch {
	case o.Count < 0:
		return fmt.Errorf("ping count %d is negative: %w", o.Count, ErrInvalidOptions)
	case o.Interval < 0:
		return fmt.Errorf("ping interval %s is negative: %w", o.Interval, ErrInvalidOptions)
	case o.Wait < 0:
		return fmt.Errorf("ping wait %s is negative: %w", o.Wait, ErrInvalidOptions)
	case o.Size < minPingSize || o.Size > maxPingSize:
		return fmt.Errorf("ping size %d outside %d..%d: %w", o.Size, minPingSize, maxPingSize, ErrInvalidOptions)
	}
	switch o.Mode {
	case PingModeAuto, PingModePrivileged, PingModeUnprivileged:
		return nil
	}
	return fmt.Errorf("ping mode %q is not auto, privileged or unprivileged: %w", o.Mode, ErrInvalidOptions)
}

// PingProbe returns a Probe that sends ICMP echo requests to target (a host
// name or IP address) with pro-bing. Readings: ping_sent, ping_received,
// ping_loss (%), ping_privileged (1 raw ICMP, 0 datagram socket) and, when
// any reply came back, ping_rtt_min/avg/max/stddev and ping_jitter (ms; mean
// absolute difference of consecutive RTTs). Gauges:
// probe_ping_rtt_seconds{stat=min|avg|max|stddev|jitter} and
// probe_ping_loss_ratio. It fails with ErrPingLoss when no reply came back,
// ErrTimeout when the deadline cut the run short, ErrPingNotPermitted when no
// ICMP socket may be opened, and ErrInvalidOptions / ErrInvalidTarget.
func PingProbe(opts PingOptions) Probe {
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
		ipAddr, err := resolvePingTarget(ctx, target)
		if err != nil {
			return nil, err
		}
		ipv4 := ipAddr.IP.To4() != nil
		privileged, err := choosePingMode(o.Mode, ipv4)
		if err != nil {
			return nil, err
		}
		logger.Debug("ping starting", "ip", ipAddr.String(), "privileged", privileged, "count", o.Count)

		pinger := probing.New(target)
		pinger.SetIPAddr(ipAddr)
		pinger.SetPrivileged(privileged)
		pinger.SetLogger(probingLogger{logger})
		pinger.Count = o.Count
		pinger.Interval = o.Interval
		pinger.Size = o.Size
		pinger.Timeout = time.Duration(o.Count-1)*o.Interval + o.Wait
		pinger.RecordTTLs = false
		if o.DontFragment {
			pinger.SetDoNotFragment(true)
		}

		runErr := pinger.RunWithContext(ctx)
		stats := pinger.Statistics()
		readings := pingReadings(stats, privileged)
		exportPingMetrics(reg, logger, stats)

		switch {
		case runErr != nil && ctx.Err() != nil:
			return readings, deadlineErr(ctx, fmt.Sprintf("ping %s after %d of %d requests", target, stats.PacketsSent, o.Count))
		case runErr != nil:
			return readings, fmt.Errorf("ping %s: %w", target, runErr)
		case stats.PacketsRecv == 0:
			return readings, fmt.Errorf("ping %s: %d requests sent: %w", target, stats.PacketsSent, ErrPingLoss)
		}
		return readings, nil
	}
}

// resolvePingTarget resolves target within ctx, preferring IPv4.
func resolvePingTarget(ctx context.Context, target string) (*net.IPAddr, error) {
	if target == "" {
		return nil, fmt.Errorf("ping: empty target: %w", ErrInvalidTarget)
	}
	if ip := net.ParseIP(target); ip != nil {
		return &net.IPAddr{IP: ip}, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("ping: resolve %q: %w: %w", target, ErrInvalidTarget, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("ping: %q has no addresses: %w", target, ErrInvalidTarget)
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return &a, nil
		}
	}
	return &addrs[0], nil
}

// choosePingMode reports whether to use raw (privileged) ICMP for mode,
// checking that the needed socket can actually be opened. Permission errors
// become ErrPingNotPermitted; other socket errors are returned wrapped.
func choosePingMode(mode string, ipv4 bool) (privileged bool, err error) {
	switch mode {
	case PingModePrivileged:
		return true, pingSocketErr(canOpenICMP(true, ipv4))
	case PingModeUnprivileged:
		return false, pingSocketErr(canOpenICMP(false, ipv4))
	}
	rawErr := canOpenICMP(true, ipv4)
	if rawErr == nil {
		return true, nil
	}
	if !errors.Is(rawErr, os.ErrPermission) {
		return false, rawErr
	}
	dgramErr := canOpenICMP(false, ipv4)
	if dgramErr == nil {
		return false, nil
	}
	if !errors.Is(dgramErr, os.ErrPermission) {
		return false, dgramErr
	}
	return false, fmt.Errorf("%w (%w; %w)", ErrPingNotPermitted, rawErr, dgramErr)
}

func pingSocketErr(err error) error {
	if err != nil && errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (%w)", ErrPingNotPermitted, err)
	}
	return err
}

// canOpenICMP opens and closes the ICMP socket that pro-bing would use.
func canOpenICMP(privileged, ipv4 bool) error {
	network, addr := "udp6", "::"
	switch {
	case privileged && ipv4:
		network, addr = "ip4:icmp", "0.0.0.0"
	case privileged:
		network = "ip6:ipv6-icmp"
	case ipv4:
		network, addr = "udp4", "0.0.0.0"
	}
	c, err := icmp.ListenPacket(network, addr)
	if err != nil {
		return fmt.Errorf("open %s socket: %w", network, err)
	}
	return c.Close()
}

func pingReadings(s *probing.Statistics, privileged bool) []Reading {
	priv := 0.0
	if privileged {
		priv = 1
	}
	rs := []Reading{
		{Name: "ping_sent", Value: float64(s.PacketsSent)},
		{Name: "ping_received", Value: float64(s.PacketsRecv)},
		{Name: "ping_loss", Value: s.PacketLoss, Unit: "%"},
		{Name: "ping_privileged", Value: priv},
	}
	if s.PacketsRecv == 0 {
		return rs
	}
	return append(rs,
		Reading{Name: "ping_rtt_min", Value: ms(s.MinRtt), Unit: "ms"},
		Reading{Name: "ping_rtt_avg", Value: ms(s.AvgRtt), Unit: "ms"},
		Reading{Name: "ping_rtt_max", Value: ms(s.MaxRtt), Unit: "ms"},
		Reading{Name: "ping_rtt_stddev", Value: ms(s.StdDevRtt), Unit: "ms"},
		Reading{Name: "ping_jitter", Value: ms(jitter(s.Rtts)), Unit: "ms"},
	)
}

func exportPingMetrics(reg prometheus.Registerer, logger *slog.Logger, s *probing.Statistics) {
	rtt := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "probe_ping_rtt_seconds",
		Help: "Round-trip time statistics of the ping run, by stat",
	}, []string{"stat"})
	loss := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_ping_loss_ratio",
		Help: "Fraction of echo requests without a reply (0..1)",
	})
	register(reg, logger, rtt, loss)
	loss.Set(s.PacketLoss / 100)
	if s.PacketsRecv == 0 {
		return
	}
	rtt.WithLabelValues("min").Set(s.MinRtt.Seconds())
	rtt.WithLabelValues("avg").Set(s.AvgRtt.Seconds())
	rtt.WithLabelValues("max").Set(s.MaxRtt.Seconds())
	rtt.WithLabelValues("stddev").Set(s.StdDevRtt.Seconds())
	rtt.WithLabelValues("jitter").Set(jitter(s.Rtts).Seconds())
}

// jitter is the mean absolute difference of consecutive RTTs (RFC 3550's
// idea without the smoothing); 0 with fewer than two samples.
func jitter(rtts []time.Duration) time.Duration {
	if len(rtts) < 2 {
		return 0
	}
	var sum float64
	for i := 1; i < len(rtts); i++ {
		sum += math.Abs(float64(rtts[i] - rtts[i-1]))
	}
	return time.Duration(sum / float64(len(rtts)-1))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// probingLogger adapts a *slog.Logger to pro-bing's printf-style Logger.
type probingLogger struct{ l *slog.Logger }

// pro-bing logs recoverable per-packet problems at "Fatal"; they are errors here.
func (p probingLogger) Fatalf(format string, v ...any) {
	p.l.Error("pinger error", "detail", fmt.Sprintf(format, v...))
}
func (p probingLogger) Errorf(format string, v ...any) {
	p.l.Error("pinger error", "detail", fmt.Sprintf(format, v...))
}
func (p probingLogger) Warnf(format string, v ...any) {
	p.l.Warn("pinger warning", "detail", fmt.Sprintf(format, v...))
}
func (p probingLogger) Infof(format string, v ...any) {
	p.l.Info("pinger info", "detail", fmt.Sprintf(format, v...))
}
func (p probingLogger) Debugf(format string, v ...any) {
	p.l.Debug("pinger debug", "detail", fmt.Sprintf(format, v...))
}
