package diagnostics

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// skipWithoutTrace skips off Linux, where Traceroute is unsupported (and
// checks that it says so).
func skipWithoutTrace(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "linux" {
		return
	}
	if _, err := Traceroute(t.Context(), "127.0.0.1", TraceOptions{}); !errors.Is(err, ErrTraceUnsupported) {
		t.Fatalf("traceroute on %s: err %v, want ErrTraceUnsupported", runtime.GOOS, err)
	}
	t.Skipf("traceroute is unsupported on %s", runtime.GOOS)
}

func TestTracerouteLoopback(t *testing.T) {
	skipWithoutTrace(t)
	res, err := Traceroute(t.Context(), "127.0.0.1", TraceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddr("127.0.0.1")
	if !res.Reached || res.Addr != want || len(res.Hops) != 1 {
		t.Fatalf("result %+v, want one hop reaching 127.0.0.1", res)
	}
	h := res.Hops[0]
	if h.TTL != 1 || h.Addr != want || !h.Reached || h.Unreachable != "" || len(h.RTTs) != DefaultTraceQueries {
		t.Errorf("hop %+v, want TTL 1 from 127.0.0.1, reached, %d RTTs", h, DefaultTraceQueries)
	}
	for _, rtt := range h.RTTs {
		if rtt <= 0 {
			t.Errorf("RTT %v, want > 0", rtt)
		}
	}
}

func TestTracerouteLoopbackIPv6(t *testing.T) {
	skipWithoutTrace(t)
	l, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	l.Close()
	res, err := Traceroute(t.Context(), "::1", TraceOptions{Queries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reached || len(res.Hops) != 1 || res.Hops[0].Addr != netip.IPv6Loopback() {
		t.Fatalf("result %+v, want one hop reaching ::1", res)
	}
}

func TestTraceProbeLoopback(t *testing.T) {
	skipWithoutTrace(t)
	reg := prometheus.NewRegistry()
	res := Run(t.Context(), "trace", TraceProbe(TraceOptions{}), "127.0.0.1", 10*time.Second, reg, nil)
	if !res.Success {
		t.Fatalf("trace failed: %s", res.Err)
	}
	for name, v := range map[string]float64{"trace_hops": 1, "trace_reached": 1} {
		if r, ok := res.Reading(name); !ok || r.Value != v {
			t.Errorf("%s = %v (present %v), want %v", name, r.Value, ok, v)
		}
	}
	if r, ok := res.Reading("trace_hop_1_rtt_ms"); !ok || r.Unit != "ms" || r.Value <= 0 {
		t.Errorf("trace_hop_1_rtt_ms = %+v (present %v)", r, ok)
	}
	if len(res.Readings) != 3 {
		t.Errorf("readings %v, want exactly trace_hops, trace_reached, trace_hop_1_rtt_ms", res.Readings)
	}
	if v, _ := metricValue(t, reg, "probe_trace_reached"); v != 1 {
		t.Errorf("probe_trace_reached = %v", v)
	}
	if v, _ := metricValue(t, reg, "probe_trace_hops"); v != 1 {
		t.Errorf("probe_trace_hops = %v", v)
	}
	if v, ok := metricValue(t, reg, "probe_trace_hop_rtt_seconds", "hop", "1"); !ok || v <= 0 {
		t.Errorf(`probe_trace_hop_rtt_seconds{hop="1"} = %v (present %v)`, v, ok)
	}
}

// udpListener listens on a loopback UDP port; when echo is true it answers
// every datagram.
func udpListener(t *testing.T, echo bool) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if echo {
				_, _ = pc.WriteTo(buf[:n], from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func TestTracerouteUDPReplyCountsAsReached(t *testing.T) {
	skipWithoutTrace(t)
	port := udpListener(t, true)
	res, err := Traceroute(t.Context(), "127.0.0.1", TraceOptions{Queries: 1, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reached || len(res.Hops) != 1 || len(res.Hops[0].RTTs) != 1 {
		t.Fatalf("result %+v, want the UDP reply to count as reaching the destination", res)
	}
}

func TestTracerouteNotReached(t *testing.T) {
	skipWithoutTrace(t)
	// A listener that swallows the probe: no port unreachable comes back.
	port := udpListener(t, false)
	opts := TraceOptions{MaxHops: 1, Queries: 1, Port: port, Timeout: 100 * time.Millisecond}
	reg := prometheus.NewRegistry()
	readings, err := TraceProbe(opts)(t.Context(), "127.0.0.1", reg, nil)
	if !errors.Is(err, ErrTraceNotReached) || !strings.Contains(err.Error(), "no hop answered within 1 hops") {
		t.Fatalf("err %v, want ErrTraceNotReached saying no hop answered", err)
	}
	want := []Reading{{Name: "trace_hops", Value: 0}, {Name: "trace_reached", Value: 0}}
	if len(readings) != len(want) || readings[0] != want[0] || readings[1] != want[1] {
		t.Errorf("readings %v, want %v (no RTT for a silent hop)", readings, want)
	}
	if _, ok := metricValue(t, reg, "probe_trace_hop_rtt_seconds", "hop", "1"); ok {
		t.Error("RTT gauge for a silent hop")
	}

	res, err := Traceroute(t.Context(), "127.0.0.1", opts)
	if !errors.Is(err, ErrTraceNotReached) || len(res.Hops) != 1 || res.Hops[0].Addr.IsValid() || len(res.Hops[0].RTTs) != 0 {
		t.Errorf("err %v, result %+v; want one silent hop", err, res)
	}
}

func TestTracerouteDeadline(t *testing.T) {
	skipWithoutTrace(t)
	port := udpListener(t, false)
	opts := TraceOptions{Queries: 1, MaxHops: 1, Port: port, Timeout: time.Hour}

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		res, err := Traceroute(ctx, "127.0.0.1", opts)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v, want ErrTimeout", err)
		}
		if len(res.Hops) != 0 || res.Addr != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("result %+v, want the destination and no hops", res)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		// Without a deadline only the cancellation can end the hour-long wait.
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := Traceroute(ctx, "127.0.0.1", opts)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
}

func TestTraceInvalid(t *testing.T) {
	tests := []struct {
		name   string
		opts   TraceOptions
		target string
		want   error
	}{
		{"too many hops", TraceOptions{MaxHops: MaxTraceHops + 1}, "127.0.0.1", ErrInvalidOptions},
		{"negative hops", TraceOptions{MaxHops: -1}, "127.0.0.1", ErrInvalidOptions},
		{"too many queries", TraceOptions{Queries: MaxTraceQueries + 1}, "127.0.0.1", ErrInvalidOptions},
		{"negative timeout", TraceOptions{Timeout: -time.Second}, "127.0.0.1", ErrInvalidOptions},
		{"ports run out", TraceOptions{Port: 65500}, "127.0.0.1", ErrInvalidOptions},
		{"negative port", TraceOptions{Port: -1}, "127.0.0.1", ErrInvalidOptions},
		{"empty target", TraceOptions{}, "", ErrInvalidTarget},
		{"bad name", TraceOptions{}, "bad..name", ErrInvalidTarget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS != "linux" && tc.want == ErrInvalidTarget {
				t.Skip("unsupported platforms fail before the target is looked at")
			}
			readings, err := TraceProbe(tc.opts)(t.Context(), tc.target, nil, nil)
			if !errors.Is(err, tc.want) || readings != nil {
				t.Fatalf("err %v readings %v, want %v and no readings", err, readings, tc.want)
			}
		})
	}
}

func TestHopMedianRTT(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		rtts []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5 * ms}, 5 * ms},
		{[]time.Duration{9 * ms, 1 * ms, 5 * ms}, 5 * ms},
		{[]time.Duration{4 * ms, 1 * ms, 2 * ms, 100 * ms}, 3 * ms},
	}
	for _, tc := range tests {
		if got := (Hop{RTTs: tc.rtts}).MedianRTT(); got != tc.want {
			t.Errorf("median of %v = %v, want %v", tc.rtts, got, tc.want)
		}
	}
}

// extendedErrBytes builds an IP_RECVERR control message payload as Linux
// does: sock_extended_err in host order, then the offender's sockaddr.
func extendedErrBytes(errno uint32, origin, typ, code uint8, info uint32, offender netip.Addr) []byte {
	b := make([]byte, sizeofSockExtendedErr)
	binary.NativeEndian.PutUint32(b[0:4], errno)
	b[4], b[5], b[6] = origin, typ, code
	binary.NativeEndian.PutUint32(b[8:12], info)
	switch {
	case !offender.IsValid():
		b = append(b, make([]byte, 16)...) // AF_UNSPEC
	case offender.Is4():
		sa := make([]byte, 16)
		binary.NativeEndian.PutUint16(sa, linuxAFInet)
		a := offender.As4()
		copy(sa[4:8], a[:])
		b = append(b, sa...)
	default:
		sa := make([]byte, 28)
		binary.NativeEndian.PutUint16(sa, linuxAFInet6)
		a := offender.As16()
		copy(sa[8:24], a[:])
		b = append(b, sa...)
	}
	return b
}

var extendedErrTests = []struct {
	name     string
	in       []byte
	wantErr  bool
	want     extendedErr
	wantKind traceKind
	wantNote string
}{
	{
		name: "time exceeded", in: extendedErrBytes(113, soEEOriginICMP, 11, 0, 0, netip.MustParseAddr("10.200.1.2")),
		want:     extendedErr{errno: 113, origin: soEEOriginICMP, typ: 11, offender: netip.MustParseAddr("10.200.1.2")},
		wantKind: traceTimeExceeded,
	},
	{
		name: "port unreachable", in: extendedErrBytes(111, soEEOriginICMP, 3, 3, 0, netip.MustParseAddr("10.200.2.2")),
		want:     extendedErr{errno: 111, origin: soEEOriginICMP, typ: 3, code: 3, offender: netip.MustParseAddr("10.200.2.2")},
		wantKind: traceReached,
	},
	{
		name: "host unreachable", in: extendedErrBytes(113, soEEOriginICMP, 3, 1, 0, netip.MustParseAddr("192.0.2.1")),
		want:     extendedErr{errno: 113, origin: soEEOriginICMP, typ: 3, code: 1, offender: netip.MustParseAddr("192.0.2.1")},
		wantKind: traceUnreachable, wantNote: "host unreachable (!H)",
	},
	{
		name: "admin prohibited", in: extendedErrBytes(113, soEEOriginICMP, 3, 13, 0, netip.MustParseAddr("192.0.2.1")),
		want:     extendedErr{errno: 113, origin: soEEOriginICMP, typ: 3, code: 13, offender: netip.MustParseAddr("192.0.2.1")},
		wantKind: traceUnreachable, wantNote: "administratively prohibited (!X)",
	},
	{
		name: "fragmentation needed", in: extendedErrBytes(90, soEEOriginICMP, 3, 4, 1400, netip.MustParseAddr("192.0.2.1")),
		want:     extendedErr{errno: 90, origin: soEEOriginICMP, typ: 3, code: 4, info: 1400, offender: netip.MustParseAddr("192.0.2.1")},
		wantKind: traceUnreachable, wantNote: "fragmentation needed (!F-1400)",
	},
	{
		name: "ICMPv6 time exceeded", in: extendedErrBytes(113, soEEOriginICMP6, 3, 0, 0, netip.MustParseAddr("2001:db8::1")),
		want:     extendedErr{errno: 113, origin: soEEOriginICMP6, typ: 3, offender: netip.MustParseAddr("2001:db8::1")},
		wantKind: traceTimeExceeded,
	},
	{
		name: "ICMPv6 port unreachable", in: extendedErrBytes(111, soEEOriginICMP6, 1, 4, 0, netip.MustParseAddr("2001:db8::2")),
		want:     extendedErr{errno: 111, origin: soEEOriginICMP6, typ: 1, code: 4, offender: netip.MustParseAddr("2001:db8::2")},
		wantKind: traceReached,
	},
	{
		name: "ICMPv6 no route", in: extendedErrBytes(101, soEEOriginICMP6, 1, 0, 0, netip.MustParseAddr("2001:db8::1")),
		want:     extendedErr{errno: 101, origin: soEEOriginICMP6, typ: 1, offender: netip.MustParseAddr("2001:db8::1")},
		wantKind: traceUnreachable, wantNote: "network unreachable (!N)",
	},
	{
		name: "local error without offender", in: extendedErrBytes(90, soEEOriginLocal, 0, 0, 1280, netip.Addr{}),
		want:     extendedErr{errno: 90, origin: soEEOriginLocal, info: 1280},
		wantKind: traceUnreachable, wantNote: "local error: " + syscall.Errno(90).Error(),
	},
	{
		name: "header only", in: extendedErrBytes(113, soEEOriginICMP, 11, 0, 0, netip.Addr{})[:sizeofSockExtendedErr],
		want:     extendedErr{errno: 113, origin: soEEOriginICMP, typ: 11},
		wantKind: traceTimeExceeded,
	},
	{name: "too short", in: make([]byte, sizeofSockExtendedErr-1), wantErr: true},
	{
		name: "truncated sockaddr_in", in: extendedErrBytes(113, soEEOriginICMP, 11, 0, 0, netip.MustParseAddr("10.0.0.1"))[:sizeofSockExtendedErr+6],
		wantErr: true,
	},
	{
		name: "truncated sockaddr_in6", in: extendedErrBytes(113, soEEOriginICMP6, 3, 0, 0, netip.MustParseAddr("2001:db8::1"))[:sizeofSockExtendedErr+20],
		wantErr: true,
	},
}

func TestParseExtendedErr(t *testing.T) {
	for _, tc := range extendedErrTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseExtendedErr(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got != tc.want {
				t.Errorf("parsed %+v, want %+v", got, tc.want)
			}
			kind, note := got.classify()
			if kind != tc.wantKind || note != tc.wantNote {
				t.Errorf("classify = %v %q, want %v %q", kind, note, tc.wantKind, tc.wantNote)
			}
		})
	}
}

// FuzzParseExtendedErr checks that any control message payload parses
// without panicking, that a parsed offender is only ever reported with a
// matching address family, and that every entry classifies as some answer.
func FuzzParseExtendedErr(f *testing.F) {
	for _, tc := range extendedErrTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseExtendedErr(b)
		if err != nil {
			return
		}
		if len(b) < sizeofSockExtendedErr {
			t.Fatalf("%d bytes parsed without error", len(b))
		}
		if e.offender.IsValid() {
			sa := b[sizeofSockExtendedErr:]
			switch family := binary.NativeEndian.Uint16(sa); family {
			case linuxAFInet:
				if !e.offender.Is4() {
					t.Fatalf("offender %v from family %d", e.offender, family)
				}
			case linuxAFInet6:
				// A v4-mapped IPv6 offender is an IPv4 router and is
				// reported as one; any other must stay IPv6.
				raw := netip.AddrFrom16([16]byte(sa[8:24]))
				if e.offender != raw.Unmap() || e.offender.Is4() != raw.Is4In6() {
					t.Fatalf("offender %v from family %d address %v", e.offender, family, raw)
				}
			default:
				t.Fatalf("offender %v from unknown family %d", e.offender, family)
			}
		}
		if kind, note := e.classify(); kind == traceSilent || (kind == traceUnreachable && note == "") {
			t.Fatalf("%+v classified as %v %q", e, kind, note)
		}
	})
}

// The multi-hop test runs Traceroute inside a network namespace by
// re-executing this test binary there in helper mode.
const (
	traceHelperEnv   = "FIELDAGENT_TRACE_HELPER_TARGET"
	traceHelperMark  = "TRACE-HELPER-RESULT "
	nsClientAddr     = "10.200.1.1"
	nsRouterNearAddr = "10.200.1.2"
	nsRouterFarAddr  = "10.200.2.1"
	nsServerAddr     = "10.200.2.2"
)

// traceHelperOutput is what the helper prints.
type traceHelperOutput struct {
	Result      TraceResult `json:"result"`
	Err         string      `json:"err"`
	Unreachable bool        `json:"unreachable"`
}

// TestTraceHelperProcess is not a test: it is the helper that
// TestTracerouteNamespaces runs inside a namespace. It does nothing unless
// the helper environment variable names a target.
func TestTraceHelperProcess(t *testing.T) {
	target := os.Getenv(traceHelperEnv)
	if target == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Traceroute(ctx, target, TraceOptions{MaxHops: 5, Timeout: 500 * time.Millisecond})
	out := traceHelperOutput{Result: res, Unreachable: errors.Is(err, ErrTraceUnreachable)}
	if err != nil {
		out.Err = err.Error()
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", traceHelperMark, b)
}

// netnsLab is three network namespaces, client - router - server, chained
// by veth pairs: 10.200.1.0/30 between client and router, 10.200.2.0/30
// between router and server, forwarding on in the router.
type netnsLab struct {
	client, router, server string
}

func newNetnsLab(t *testing.T) netnsLab {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	if os.Geteuid() != 0 {
		t.Skip("the multi-hop traceroute test builds network namespaces and needs root (CI runs it as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the multi-hop traceroute test needs the ip command (iproute2)")
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "fa-" + hex.EncodeToString(b[:])
	lab := netnsLab{client: prefix + "-client", router: prefix + "-router", server: prefix + "-server"}

	ip := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{lab.client, lab.router, lab.server} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "netns", "add", ns).CombinedOutput()
		cancel()
		if err != nil && bytes.Contains(out, []byte("not permitted")) {
			t.Skipf("cannot create network namespaces here (root without CAP_SYS_ADMIN?): %s", out)
		}
		if err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		t.Cleanup(func() { ip("netns", "del", ns) })
		ip("-n", ns, "link", "set", "lo", "up")
	}
	ip("-n", lab.client, "link", "add", "c0", "type", "veth", "peer", "name", "r0", "netns", lab.router)
	ip("-n", lab.router, "link", "add", "r1", "type", "veth", "peer", "name", "s0", "netns", lab.server)
	for _, a := range []struct{ ns, dev, addr string }{
		{lab.client, "c0", nsClientAddr + "/30"},
		{lab.router, "r0", nsRouterNearAddr + "/30"},
		{lab.router, "r1", nsRouterFarAddr + "/30"},
		{lab.server, "s0", nsServerAddr + "/30"},
	} {
		ip("-n", a.ns, "addr", "add", a.addr, "dev", a.dev)
		ip("-n", a.ns, "link", "set", a.dev, "up")
	}
	ip("-n", lab.client, "route", "add", "default", "via", nsRouterNearAddr)
	ip("-n", lab.server, "route", "add", "default", "via", nsRouterFarAddr)
	ip("netns", "exec", lab.router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	return lab
}

// traceFrom runs Traceroute to target inside namespace ns.
func (lab netnsLab) traceFrom(t *testing.T, ns, target string) traceHelperOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestTraceHelperProcess$", "-test.count=1")
	// GORACE: a -race binary otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), traceHelperEnv+"="+target, "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper in %s: %v\n%s", ns, err, out)
	}
	for line := range strings.Lines(string(out)) {
		if j, ok := strings.CutPrefix(line, traceHelperMark); ok {
			var res traceHelperOutput
			if err := json.Unmarshal([]byte(j), &res); err != nil {
				t.Fatalf("helper output %q: %v", j, err)
			}
			return res
		}
	}
	t.Fatalf("helper in %s printed no result:\n%s", ns, out)
	return traceHelperOutput{}
}

func TestTracerouteNamespaces(t *testing.T) {
	lab := newNetnsLab(t)

	t.Run("two hops", func(t *testing.T) {
		out := lab.traceFrom(t, lab.client, nsServerAddr)
		res := out.Result
		if out.Err != "" || !res.Reached {
			t.Fatalf("err %q, reached %v; want the server reached: %+v", out.Err, res.Reached, res)
		}
		if len(res.Hops) != 2 {
			t.Fatalf("%d hops, want 2: %+v", len(res.Hops), res.Hops)
		}
		router, server := res.Hops[0], res.Hops[1]
		if router.TTL != 1 || router.Addr != netip.MustParseAddr(nsRouterNearAddr) || router.Reached || len(router.RTTs) == 0 {
			t.Errorf("hop 1 %+v, want the router %s answering time exceeded", router, nsRouterNearAddr)
		}
		if server.TTL != 2 || server.Addr != netip.MustParseAddr(nsServerAddr) || !server.Reached || len(server.RTTs) == 0 {
			t.Errorf("hop 2 %+v, want the server %s reached", server, nsServerAddr)
		}
		t.Logf("hops: %+v", res.Hops)
		rs := readingMap(traceReadings(res))
		for name, v := range map[string]float64{"trace_hops": 2, "trace_reached": 1} {
			if rs[name].Value != v {
				t.Errorf("%s = %v, want %v", name, rs[name].Value, v)
			}
		}
		for _, name := range []string{"trace_hop_1_rtt_ms", "trace_hop_2_rtt_ms"} {
			if r, ok := rs[name]; !ok || r.Value <= 0 {
				t.Errorf("%s = %+v (present %v)", name, r, ok)
			}
		}
	})

	t.Run("no route beyond the router", func(t *testing.T) {
		out := lab.traceFrom(t, lab.client, "10.200.3.5")
		if !out.Unreachable || !strings.Contains(out.Err, "hop 1 ("+nsRouterNearAddr+") answered network unreachable (!N)") {
			t.Fatalf("err %q (unreachable %v), want hop 1 answering network unreachable", out.Err, out.Unreachable)
		}
		if hops := out.Result.Hops; len(hops) != 1 || out.Result.Reached {
			t.Errorf("result %+v, want one hop, not reached", out.Result)
		}
	})

	t.Run("no route at the sender", func(t *testing.T) {
		out := lab.traceFrom(t, lab.router, "203.0.113.9") // the router has no default route
		if out.Unreachable || !strings.Contains(out.Err, "at hop 1") || !strings.Contains(out.Err, "network is unreachable") {
			t.Fatalf("err %q (unreachable %v), want a local network unreachable at hop 1", out.Err, out.Unreachable)
		}
		if len(out.Result.Hops) != 1 || out.Result.Hops[0].Addr.IsValid() {
			t.Errorf("hops %+v, want one silent hop", out.Result.Hops)
		}
	})
}
