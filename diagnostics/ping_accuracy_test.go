package diagnostics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldagent/diagnostics"
	"fieldagent/testlab/ulink"
)

// The accuracy tests answer the issue "ping statistics within 10% of the
// system ping on the same target": iputils ping and PingProbe both ping a
// host simulated behind a userspace link (testlab/ulink, since the kernel
// here has no netem) inside a network namespace of their own.
//
// Each tool gets a fresh link with the same seed, so both see the same
// jitter and lose the same packets, and the link's counters say how many
// replies really came back.

const (
	// pingAccHelperEnv, when set to a JSON pingAccRequest, makes
	// TestPingAccuracyHelperProcess run PingProbe and print the Result.
	pingAccHelperEnv = "FIELDAGENT_PING_ACCURACY_HELPER"
	// pingAccMark starts the helper's result line.
	pingAccMark = "ping-accuracy-result: "
	// pingAccInterval is the gap between echo requests for both tools
	// (ping -i 0.05).
	pingAccInterval = 50 * time.Millisecond
)

// The link's addresses: they exist only inside the test's namespace.
var (
	pingAccLocal  = netip.MustParsePrefix("10.203.0.1/24")
	pingAccRemote = netip.MustParseAddr("10.203.0.2")
)

// pingAccRequest is what the helper process is asked to do.
type pingAccRequest struct {
	Target   string
	Count    int
	Interval time.Duration
}

// TestPingAccuracyHelperProcess is not a test: TestPingAccuracy and
// BenchmarkPingVsSystemPing re-execute the test binary inside their
// namespace to run PingProbe there, with pingAccHelperEnv set.
func TestPingAccuracyHelperProcess(t *testing.T) {
	spec := os.Getenv(pingAccHelperEnv)
	if spec == "" {
		t.Skip("helper process for TestPingAccuracy; runs only when re-executed inside its network namespace")
	}
	var req pingAccRequest
	if err := json.Unmarshal([]byte(spec), &req); err != nil {
		t.Fatalf("%s=%q: %v", pingAccHelperEnv, spec, err)
	}
	probe := diagnostics.PingProbe(diagnostics.PingOptions{Count: req.Count, Interval: req.Interval, Wait: time.Second})
	res := diagnostics.Run(context.Background(), "ping", probe, req.Target, 30*time.Second, nil, nil)
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", pingAccMark, b)
}

// systemPing is the summary iputils ping prints at the end of a run.
type systemPing struct {
	Transmitted, Received int
	// Loss is the packet loss in percent.
	Loss float64
	// HasRTT reports whether the rtt line was printed (some reply came back).
	HasRTT bool
	// Min, Avg, Max and Mdev are in milliseconds.
	Min, Avg, Max, Mdev float64
}

var (
	pingCountsLine = regexp.MustCompile(`(?m)^(\d+) packets transmitted, (\d+) (?:packets )?received,(?: \+\d+ [a-z]+,)* ([0-9.]+)% packet loss`)
	pingRTTLine    = regexp.MustCompile(`(?m)^(?:rtt|round-trip) min/avg/max(?:/mdev|/stddev)? = ([0-9.]+)/([0-9.]+)/([0-9.]+)(?:/([0-9.]+))? ms`)
)

// parseSystemPing parses the summary of ping's output (iputils, also the
// busybox form): the packet counts and loss, and the RTT statistics when
// present. It rejects summaries that contradict themselves.
func parseSystemPing(out string) (systemPing, error) {
	m := pingCountsLine.FindStringSubmatch(out)
	if m == nil {
		return systemPing{}, errors.New("no \"packets transmitted\" summary in ping's output")
	}
	var s systemPing
	var err1, err2, err3 error
	s.Transmitted, err1 = strconv.Atoi(m[1])
	s.Received, err2 = strconv.Atoi(m[2])
	s.Loss, err3 = strconv.ParseFloat(m[3], 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return systemPing{}, fmt.Errorf("ping summary %q: %w", m[0], err)
	}
	if s.Received > s.Transmitted || s.Loss < 0 || s.Loss > 100 {
		return systemPing{}, fmt.Errorf("ping summary %q: received more than sent or loss outside 0..100%%", m[0])
	}
	r := pingRTTLine.FindStringSubmatch(out)
	if r == nil {
		if s.Received > 0 {
			return systemPing{}, fmt.Errorf("ping summary %q: replies but no rtt line", m[0])
		}
		return s, nil
	}
	if r[4] == "" {
		r[4] = "0"
	}
	for i, v := range []*float64{&s.Min, &s.Avg, &s.Max, &s.Mdev} {
		f, err := strconv.ParseFloat(r[i+1], 64)
		if err != nil {
			return systemPing{}, fmt.Errorf("ping rtt line %q: %w", r[0], err)
		}
		*v = f
	}
	if s.Received == 0 || s.Min > s.Avg || s.Avg > s.Max {
		return systemPing{}, fmt.Errorf("ping rtt line %q: want replies and min <= avg <= max", r[0])
	}
	s.HasRTT = true
	return s, nil
}

var systemPingCases = []struct {
	name    string
	out     string
	want    systemPing
	wantErr string
}{
	{
		name: "all answered",
		out: "PING 10.203.0.2 (10.203.0.2) 56(84) bytes of data.\n" +
			"64 bytes from 10.203.0.2: icmp_seq=1 ttl=64 time=20.6 ms\n\n" +
			"--- 10.203.0.2 ping statistics ---\n" +
			"20 packets transmitted, 20 received, 0% packet loss, time 958ms\n" +
			"rtt min/avg/max/mdev = 19.102/20.488/22.011/0.731 ms\n",
		want: systemPing{Transmitted: 20, Received: 20, HasRTT: true, Min: 19.102, Avg: 20.488, Max: 22.011, Mdev: 0.731},
	},
	{
		name: "some lost, fractional percent",
		out: "--- 10.203.0.2 ping statistics ---\n" +
			"6 packets transmitted, 5 received, 16.6667% packet loss, time 251ms\n" +
			"rtt min/avg/max/mdev = 20.1/20.2/20.3/0.1 ms\n",
		want: systemPing{Transmitted: 6, Received: 5, Loss: 16.6667, HasRTT: true, Min: 20.1, Avg: 20.2, Max: 20.3, Mdev: 0.1},
	},
	{
		name: "none answered, with errors",
		out: "--- 10.203.0.3 ping statistics ---\n" +
			"3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2003ms\n",
		want: systemPing{Transmitted: 3, Loss: 100},
	},
	{
		name: "duplicates and errors",
		out: "4 packets transmitted, 4 received, +1 duplicates, +2 errors, 0% packet loss, time 3ms\n" +
			"rtt min/avg/max/mdev = 1/2/3/1 ms, pipe 2\n",
		want: systemPing{Transmitted: 4, Received: 4, HasRTT: true, Min: 1, Avg: 2, Max: 3, Mdev: 1},
	},
	{
		name: "busybox",
		out: "2 packets transmitted, 2 packets received, 0% packet loss\n" +
			"round-trip min/avg/max = 0.052/0.060/0.069 ms\n",
		want: systemPing{Transmitted: 2, Received: 2, HasRTT: true, Min: 0.052, Avg: 0.060, Max: 0.069},
	},
	{name: "no summary", out: "ping: connect: Network is unreachable\n", wantErr: `no "packets transmitted" summary in ping's output`},
	{name: "more received than sent", out: "2 packets transmitted, 3 received, 0% packet loss\n",
		wantErr: `ping summary "2 packets transmitted, 3 received, 0% packet loss": received more than sent or loss outside 0..100%`},
	{name: "replies without rtt", out: "2 packets transmitted, 2 received, 0% packet loss\n",
		wantErr: `ping summary "2 packets transmitted, 2 received, 0% packet loss": replies but no rtt line`},
	{name: "min above avg", out: "1 packets transmitted, 1 received, 0% packet loss\nrtt min/avg/max/mdev = 3/2/3/0 ms\n",
		wantErr: `ping rtt line "rtt min/avg/max/mdev = 3/2/3/0 ms": want replies and min <= avg <= max`},
	{name: "bad number", out: "1 packets transmitted, 1 received, 0% packet loss\nrtt min/avg/max/mdev = 1.2.3/2/3/0 ms\n",
		wantErr: `ping rtt line "rtt min/avg/max/mdev = 1.2.3/2/3/0 ms": strconv.ParseFloat: parsing "1.2.3": invalid syntax`},
}

func TestParseSystemPing(t *testing.T) {
	for _, tc := range systemPingCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSystemPing(tc.out)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v\nwant  %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseSystemPing(f *testing.F) {
	for _, tc := range systemPingCases {
		f.Add(tc.out)
	}
	f.Fuzz(func(t *testing.T, out string) {
		s, err := parseSystemPing(out)
		if err != nil {
			return
		}
		if s.Received > s.Transmitted || s.Loss < 0 || s.Loss > 100 || s.HasRTT != (s.Received > 0) {
			t.Errorf("inconsistent summary %+v from %q", s, out)
		}
		if s.HasRTT && (s.Min > s.Avg || s.Avg > s.Max) {
			t.Errorf("min/avg/max out of order: %+v from %q", s, out)
		}
	})
}

// pingLab is a network namespace in which a fresh ulink host answers each
// measurement.
type pingLab struct {
	ns ulink.Netns
}

// newPingLab creates the lab's namespace, deleted when tb ends, or skips
// tb when this process cannot build it or ping is missing.
func newPingLab(tb testing.TB) *pingLab {
	tb.Helper()
	if err := ulink.Available(); err != nil {
		tb.Skipf("ping accuracy needs a TUN link in a network namespace: %v (CI runs this as root)", err)
	}
	if _, err := exec.LookPath("ping"); err != nil {
		tb.Skip("ping accuracy compares with the system ping: install iputils-ping (make test-deps)")
	}
	ns, err := ulink.NewNetns(tb.Context())
	if errors.Is(err, ulink.ErrNotPermitted) {
		tb.Skipf("cannot create network namespaces here: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ns.Delete(ctx); err != nil {
			tb.Error(err)
		}
	})
	return &pingLab{ns: ns}
}

// linkConfig is the link both tools measure: the host answers after 20ms
// (10ms each way) ± 2ms, losing loss of the packets in each direction.
func (lab *pingLab) linkConfig(loss float64) ulink.Config {
	return ulink.Config{
		Netns:     lab.ns,
		Name:      "fa-ping0",
		LocalCIDR: pingAccLocal,
		RemoteIP:  pingAccRemote,
		Delay:     10 * time.Millisecond,
		Jitter:    time.Millisecond,
		Loss:      loss,
		Seed:      20,
	}
}

// withLink runs fn while a fresh link with cfg is up and returns the link's
// counters.
func withLink(tb testing.TB, cfg ulink.Config, fn func()) ulink.Stats {
	tb.Helper()
	l, err := ulink.Start(tb.Context(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			tb.Error(err)
		}
	}()
	fn()
	if err := l.Close(); err != nil { // the counters are final once it is closed
		tb.Fatal(err)
	}
	return l.Stats()
}

// systemPing runs `ping -c count -i 0.05` against the link's host.
func (lab *pingLab) systemPing(tb testing.TB, cfg ulink.Config, count int) (systemPing, ulink.Stats) {
	tb.Helper()
	var s systemPing
	st := withLink(tb, cfg, func() {
		ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
		defer cancel()
		interval := strconv.FormatFloat(pingAccInterval.Seconds(), 'f', -1, 64)
		out, runErr := lab.ns.Command(ctx, "ping", "-n", "-c", strconv.Itoa(count), "-i", interval, "-W", "1", pingAccRemote.String()).CombinedOutput()
		var err error
		if s, err = parseSystemPing(string(out)); err != nil { // ping exits 1 when replies are missing
			tb.Fatalf("ping: %v (%v):\n%s", err, runErr, out)
		}
	})
	return s, st
}

// probe runs PingProbe with count requests 50ms apart against the link's
// host, in the helper process inside the namespace.
func (lab *pingLab) probe(tb testing.TB, cfg ulink.Config, count int) (diagnostics.Result, ulink.Stats) {
	tb.Helper()
	var res diagnostics.Result
	st := withLink(tb, cfg, func() {
		ctx, cancel := context.WithTimeout(tb.Context(), 60*time.Second)
		defer cancel()
		req, err := json.Marshal(pingAccRequest{Target: pingAccRemote.String(), Count: count, Interval: pingAccInterval})
		if err != nil {
			tb.Fatal(err)
		}
		cmd := lab.ns.Command(ctx, os.Args[0], "-test.run=^TestPingAccuracyHelperProcess$", "-test.count=1")
		// GORACE: a -race binary otherwise sleeps a second at exit.
		cmd.Env = append(os.Environ(), pingAccHelperEnv+"="+string(req), "GORACE=atexit_sleep_ms=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			tb.Fatalf("helper in %s: %v\n%s", lab.ns, err, out)
		}
		for line := range strings.Lines(string(out)) {
			if j, ok := strings.CutPrefix(line, pingAccMark); ok {
				if err := json.Unmarshal([]byte(j), &res); err != nil {
					tb.Fatalf("helper output %q: %v", j, err)
				}
				return
			}
		}
		tb.Fatalf("helper in %s printed no result:\n%s", lab.ns, out)
	})
	return res, st
}

// reading returns the value of reading name in res, failing tb without it.
func reading(tb testing.TB, res diagnostics.Result, name string) float64 {
	tb.Helper()
	r, ok := res.Reading(name)
	if !ok {
		tb.Fatalf("no %s reading in %+v", name, res)
	}
	return r.Value
}

func TestPingAccuracy(t *testing.T) {
	lab := newPingLab(t)
	const count = 20
	for _, tc := range []struct {
		name string
		loss float64 // each way
	}{
		{"20ms", 0},
		// 10% each way loses about 19% of round trips.
		{"20ms, 10% loss each way", 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := lab.linkConfig(tc.loss)
			sys, sysLink := lab.systemPing(t, cfg, count)
			res, ourLink := lab.probe(t, cfg, count)
			t.Logf("ping:  %+v (link %+v)", sys, sysLink)
			t.Logf("probe: %s (link %+v)", res.Detail, ourLink)
			if res.Err != "" && !(tc.loss > 0 && strings.Contains(res.Err, diagnostics.ErrPingLoss.Error())) {
				t.Fatalf("probe failed: %s", res.Err)
			}

			sent, received := reading(t, res, "ping_sent"), reading(t, res, "ping_received")
			if sys.Transmitted != count || sent != count {
				t.Fatalf("ping sent %d, probe %v; want %d each", sys.Transmitted, sent, count)
			}
			// Each tool against the truth: the replies the link delivered.
			if uint64(sys.Received) != sysLink.Out {
				t.Errorf("ping counted %d replies, the link delivered %d", sys.Received, sysLink.Out)
			}
			if uint64(received) != ourLink.Out {
				t.Errorf("probe counted %v replies, the link delivered %d", received, ourLink.Out)
			}
			// The tools against each other, within one packet.
			if sysLost, ourLost := count-sys.Received, count-int(received); sysLost-ourLost > 1 || ourLost-sysLost > 1 {
				t.Errorf("probe lost %d of %d, ping %d: want within one packet", ourLost, count, sysLost)
			}
			if ourLoss := reading(t, res, "ping_loss"); math.Abs(ourLoss-sys.Loss) > 100.0/count+1e-9 {
				t.Errorf("probe loss %v%%, ping %v%%: want within one packet (%v%%)", ourLoss, sys.Loss, 100.0/count)
			}
			if tc.loss > 0 && (sysLink.Dropped == 0 || ourLink.Dropped == 0) {
				t.Errorf("links %+v and %+v dropped nothing at %v loss (the seed fixes this)", sysLink, ourLink, tc.loss)
			}

			if !sys.HasRTT {
				t.Fatal("ping got no replies: no RTT to compare")
			}
			// The link's delay is there (so 10% is of about 20ms).
			if minRTT := 2 * (cfg.Delay - cfg.Jitter); sys.Min < ms(minRTT) {
				t.Errorf("ping min RTT %vms, below the link's %v", sys.Min, minRTT)
			}
			ourAvg := reading(t, res, "ping_rtt_avg")
			if math.Abs(ourAvg-sys.Avg) > 0.1*sys.Avg {
				t.Errorf("probe avg RTT %.3fms, ping %.3fms: off by %.1f%%, want within 10%%", ourAvg, sys.Avg, 100*math.Abs(ourAvg-sys.Avg)/sys.Avg)
			}
			t.Logf("avg RTT: probe %.3fms, ping %.3fms (%+.2f%%); min %.3f/%.3f, max %.3f/%.3f, stddev %.3f / mdev %.3f",
				ourAvg, sys.Avg, 100*(ourAvg-sys.Avg)/sys.Avg,
				reading(t, res, "ping_rtt_min"), sys.Min, reading(t, res, "ping_rtt_max"), sys.Max,
				reading(t, res, "ping_rtt_stddev"), sys.Mdev)
		})
	}
}

// BenchmarkPingVsSystemPing measures the same 20ms link with iputils ping
// and PingProbe (20 requests 50ms apart each, once per iteration) and
// reports the mean of each tool's average RTT and their ratio:
// ping-avg-ms, probe-avg-ms and probe/ping.
func BenchmarkPingVsSystemPing(b *testing.B) {
	lab := newPingLab(b)
	cfg := lab.linkConfig(0)
	const count = 20
	var sysSum, ourSum float64
	runs := 0
	for b.Loop() {
		sys, _ := lab.systemPing(b, cfg, count)
		res, _ := lab.probe(b, cfg, count)
		if res.Err != "" || !sys.HasRTT {
			b.Fatalf("probe error %q, ping %+v", res.Err, sys)
		}
		sysSum += sys.Avg
		ourSum += reading(b, res, "ping_rtt_avg")
		runs++
	}
	b.ReportMetric(sysSum/float64(runs), "ping-avg-ms")
	b.ReportMetric(ourSum/float64(runs), "probe-avg-ms")
	b.ReportMetric(ourSum/sysSum, "probe/ping")
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
