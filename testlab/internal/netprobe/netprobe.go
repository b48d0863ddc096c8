// Package netprobe is the simulators' unprivileged stand-in for the ICMP
// tools of a real gateway or router: name resolution, a "ping" that times
// TCP connection attempts, and a trace route built from what the
// simulator can see.
//
// ICMP echo needs a raw socket (CAP_NET_RAW) or an ICMP datagram socket
// that net.ipv4.ping_group_range allows, which test machines and CI
// containers often refuse. A TCP connection attempt needs neither: the
// target's kernel answers a SYN with SYN/ACK (a listening port) or RST (a
// closed one) and either answer proves the host is up and gives one round
// trip. A timeout, "no route" or "host unreachable" counts as a lost
// probe. The price: a firewall that rejects with RST on the host's behalf
// looks like the host, and a host that drops SYNs looks down. The payload
// size of a real ping has no meaning here. Trace routes cannot send
// TTL-limited probes either (see Trace).
package netprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sentinel errors.
var (
	// ErrNotFound means the host name does not resolve.
	ErrNotFound = errors.New("netprobe: host name does not resolve")
)

// DefaultPort is the TCP port probed when an Options Port is zero.
const DefaultPort = 80

// Resolve returns the address of host: host itself when it is an IP
// address, else its first IPv4 address (an IPv6 one if it has none) from
// r (nil means net.DefaultResolver). Names under ".invalid" fail at once
// without a query, as RFC 6761 §6.4 asks of resolver libraries. Errors
// wrap ErrNotFound, and ctx's error when ctx ended first.
func Resolve(ctx context.Context, r *net.Resolver, host string) (netip.Addr, error) {
	host = strings.TrimSuffix(strings.TrimSpace(host), ".")
	if host == "" {
		return netip.Addr{}, fmt.Errorf("%w: empty host name", ErrNotFound)
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.Unmap(), nil
	}
	lower := strings.ToLower(host)
	if lower == "invalid" || strings.HasSuffix(lower, ".invalid") {
		return netip.Addr{}, fmt.Errorf("%w: %s (the .invalid domain never resolves)", ErrNotFound, host)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		if ctx.Err() != nil {
			return netip.Addr{}, fmt.Errorf("%w: %s: %w", ErrNotFound, host, ctx.Err())
		}
		return netip.Addr{}, fmt.Errorf("%w: %s: %w", ErrNotFound, host, err)
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("%w: %s has no addresses", ErrNotFound, host)
	}
	return addrs[0], nil
}

// Options tunes Ping and Trace. The zero value probes TCP port 80 once a
// try with a one-second timeout.
type Options struct {
	// Count is how many probes Ping sends, or Trace sends per hop; 0 means 1.
	Count int
	// Timeout bounds one probe; 0 means one second.
	Timeout time.Duration
	// Interval is the pause between two probes; 0 means none.
	Interval time.Duration
	// Port is the TCP port probed; 0 means DefaultPort.
	Port int
	// Dialer, if nil, is a net.Dialer; tests swap it.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (o Options) withDefaults() Options {
	if o.Count <= 0 {
		o.Count = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Port <= 0 || o.Port > 65535 {
		o.Port = DefaultPort
	}
	if o.Dialer == nil {
		var d net.Dialer
		o.Dialer = d.DialContext
	}
	return o
}

// Probe is the outcome of one probe.
type Probe struct {
	// OK is true when the host answered (SYN/ACK or RST).
	OK bool
	// RTT is the time to the answer; zero when there was none.
	RTT time.Duration
}

// PingResult is the outcome of Ping.
type PingResult struct {
	Addr   netip.Addr
	Probes []Probe
	// Sent and Received count the probes and the answers.
	Sent, Received int
	// Min, Avg and Max are over the answers; zero when there were none.
	Min, Avg, Max time.Duration
}

// probe makes one TCP connection attempt to addr.
func probe(ctx context.Context, o Options, addr netip.Addr) Probe {
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	c, err := o.Dialer(pctx, "tcp", netip.AddrPortFrom(addr, uint16(o.Port)).String())
	rtt := time.Since(start)
	if err == nil {
		_ = c.Close()
		return Probe{OK: true, RTT: max(rtt, time.Microsecond)}
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return Probe{OK: true, RTT: max(rtt, time.Microsecond)}
	}
	return Probe{}
}

// Ping sends o.Count probes to addr and summarises them. It stops early
// when ctx ends; the probes not sent are not counted.
func Ping(ctx context.Context, addr netip.Addr, o Options) PingResult {
	o = o.withDefaults()
	res := PingResult{Addr: addr}
	var sum time.Duration
	for i := 0; i < o.Count; i++ {
		if i > 0 && o.Interval > 0 {
			t := time.NewTimer(o.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		p := probe(ctx, o, addr)
		res.Probes = append(res.Probes, p)
		res.Sent++
		if !p.OK {
			continue
		}
		res.Received++
		sum += p.RTT
		if res.Min == 0 || p.RTT < res.Min {
			res.Min = p.RTT
		}
		res.Max = max(res.Max, p.RTT)
	}
	if res.Received > 0 {
		res.Avg = sum / time.Duration(res.Received)
	}
	return res
}

// Hop is one hop of a trace route.
type Hop struct {
	// Host is the name to show: the target's name as asked for the last
	// hop, else the address.
	Host string
	Addr netip.Addr
	// RTTs are the answered probes' round trips; empty for a hop that was
	// not measured.
	RTTs []time.Duration
}

// TraceResult is the outcome of Trace.
type TraceResult struct {
	Hops []Hop
	// Reached is true when the target answered within maxHops.
	Reached bool
}

// Trace reports the route to addr (named host). Without TTL-limited
// probes it shows what the simulator knows: a target on a directly
// connected network (loopback, or a subnet of a local interface) is one
// hop; any other target is reached through via (the addresses of the
// simulated device's upstream routers, e.g. its PPP peer), listed
// unmeasured, and then the target. The target's hop carries o.Count
// probes; it is reached when one of them is answered and the route has at
// most maxHops hops.
func Trace(ctx context.Context, host string, addr netip.Addr, via []netip.Addr, maxHops int, o Options) TraceResult {
	o = o.withDefaults()
	var res TraceResult
	if !OnLink(addr) {
		for _, v := range via {
			if v.IsValid() && v != addr {
				res.Hops = append(res.Hops, Hop{Host: v.String(), Addr: v})
			}
		}
	}
	if maxHops > 0 && len(res.Hops) >= maxHops {
		res.Hops = res.Hops[:maxHops]
		return res
	}
	last := Hop{Host: host, Addr: addr}
	if last.Host == "" {
		last.Host = addr.String()
	}
	pr := Ping(ctx, addr, o)
	for _, p := range pr.Probes {
		if p.OK {
			last.RTTs = append(last.RTTs, p.RTT)
		}
	}
	res.Hops = append(res.Hops, last)
	res.Reached = pr.Received > 0
	return res
}

// OnLink reports whether addr is a loopback address or in the subnet of
// one of this machine's interfaces.
func OnLink(addr netip.Addr) bool {
	if addr.IsLoopback() {
		return true
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range ifaddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Masked().Contains(addr) {
			return true
		}
	}
	return false
}

// Millis returns d in whole milliseconds, rounded up so that an answer
// faster than a millisecond does not read as 0 ms, for TR-098 results in
// milliseconds.
func Millis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}

// MillisList formats RTTs as TR-098 HopRTTimes: comma-separated
// milliseconds.
func MillisList(rtts []time.Duration) string {
	parts := make([]string, len(rtts))
	for i, d := range rtts {
		parts[i] = strconv.FormatUint(Millis(d), 10)
	}
	return strings.Join(parts, ",")
}
