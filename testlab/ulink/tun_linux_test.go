package ulink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperEnv, when set, makes the test binary a helper that runs inside a
// namespace (started there with `ip netns exec`) instead of the tests.
const helperEnv = "ULINK_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(insideHelper())
	}
	os.Exit(m.Run())
}

// Addresses of the in-namespace helper's link.
var (
	insideLocal  = netip.MustParsePrefix("10.79.0.1/24")
	insideRemote = netip.MustParseAddr("10.79.0.2")
)

// insideResult is what insideHelper prints.
type insideResult struct {
	Ping  pingResult
	Stats Stats
	Err   string
}

// insideHelper starts a host-mode link in its own namespace (Netns ""),
// pings through it and prints an insideResult as JSON.
func insideHelper() int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res insideResult
	l, err := Start(ctx, Config{Name: "ulin0", LocalCIDR: insideLocal, RemoteIP: insideRemote, Delay: 10 * time.Millisecond})
	if err == nil {
		res.Ping, err = runPing(ctx, "", insideRemote.String(), 3)
		if cerr := l.Close(); err == nil {
			err = cerr
		}
		res.Stats = l.Stats()
	}
	if err != nil {
		res.Err = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// needLink skips the test unless TUN devices, namespaces and ping can be used.
func needLink(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("%v (CI runs this as root)", err)
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("no ping command: install iputils-ping (make test-deps)")
	}
}

// newNetns creates a namespace deleted when the test ends, skipping the
// test when the kernel refuses.
func newNetns(t *testing.T) Netns {
	t.Helper()
	ns, err := NewNetns(t.Context())
	if errors.Is(err, ErrNotPermitted) {
		t.Skipf("cannot create network namespaces here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ns.Delete(ctx); err != nil {
			t.Error(err)
		}
	})
	return ns
}

// startLink starts cfg and closes it when the test ends.
func startLink(t *testing.T, cfg Config) *Link {
	t.Helper()
	l, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLink(t, l) })
	return l
}

// pingResult is the summary of one run of iputils ping.
type pingResult struct {
	Transmitted, Received int
	Min, Avg              time.Duration // zero without replies
}

var (
	pingCounts = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingRTT    = regexp.MustCompile(`rtt min/avg/max/mdev = ([0-9.]+)/([0-9.]+)/`)
)

// runPing runs iputils ping in ns: count requests 50ms apart to target,
// waiting up to a second for the last reply.
func runPing(ctx context.Context, ns Netns, target string, count int) (pingResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "1", target).CombinedOutput()
	m := pingCounts.FindSubmatch(out)
	if m == nil {
		return pingResult{}, fmt.Errorf("ping %s: %w: %s", target, err, out)
	}
	var r pingResult
	r.Transmitted, _ = strconv.Atoi(string(m[1]))
	r.Received, _ = strconv.Atoi(string(m[2]))
	if m := pingRTT.FindSubmatch(out); m != nil {
		for i, d := range []*time.Duration{&r.Min, &r.Avg} {
			ms, err := strconv.ParseFloat(string(m[i+1]), 64)
			if err != nil {
				return r, fmt.Errorf("ping %s: RTT %q: %w", target, m[i+1], err)
			}
			*d = time.Duration(ms * float64(time.Millisecond))
		}
	}
	return r, nil
}

// checkDelay checks that every round trip of r took at least 2 x delay
// (the link never delivers early) and that the quickest took less than
// twice that: a loose bound that still catches delay applied too often.
func checkDelay(t *testing.T, r pingResult, delay time.Duration) {
	t.Helper()
	if r.Received == 0 {
		t.Fatalf("ping %+v: no replies", r)
	}
	if r.Min < 2*delay || r.Min >= 4*delay {
		t.Errorf("ping min RTT %v, want at least 2 x %v (and below %v)", r.Min, delay, 4*delay)
	}
}

func TestPingThroughHostLink(t *testing.T) {
	needLink(t)
	for _, tc := range []struct {
		name   string
		local  netip.Prefix
		remote netip.Addr
	}{
		{"remote on the device's subnet", netip.MustParsePrefix("10.79.0.1/24"), netip.MustParseAddr("10.79.0.2")},
		{"remote routed through the device", netip.MustParsePrefix("10.79.0.1/30"), netip.MustParseAddr("192.0.2.7")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNetns(t)
			const delay = 25 * time.Millisecond
			l := startLink(t, Config{Netns: ns, Name: "ul0", LocalCIDR: tc.local, RemoteIP: tc.remote, Delay: delay, Seed: 1})
			r, err := runPing(t.Context(), ns, tc.remote.String(), 5)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ping through a %v link: %+v", delay, r)
			if r.Transmitted != 5 || r.Received != 5 {
				t.Errorf("ping %+v: want 5 of 5 answered", r)
			}
			checkDelay(t, r, delay)
			st := l.Stats()
			if st.Out != 5 || st.In-st.Ignored != 5 || st.Dropped+st.Overflow+st.Errors != 0 {
				t.Errorf("stats %+v: want 5 echo requests in and 5 replies out", st)
			}
		})
	}

	t.Run("other addresses are not answered", func(t *testing.T) {
		ns := newNetns(t)
		l := startLink(t, Config{Netns: ns, Name: "ul0", LocalCIDR: netip.MustParsePrefix("10.79.0.1/24"), RemoteIP: netip.MustParseAddr("10.79.0.2")})
		r, err := runPing(t.Context(), ns, "10.79.0.3", 2)
		if err != nil {
			t.Fatal(err)
		}
		if r.Transmitted != 2 || r.Received != 0 {
			t.Errorf("ping %+v: want 2 sent, none answered", r)
		}
		if st := l.Stats(); st.Out != 0 || st.Ignored < 2 {
			t.Errorf("stats %+v: want the 2 requests ignored and nothing out", st)
		}
	})
}

func TestLossThroughHostLink(t *testing.T) {
	needLink(t)
	ns := newNetns(t)
	l := startLink(t, Config{Netns: ns, Name: "ul0", LocalCIDR: insideLocal, RemoteIP: insideRemote, Loss: 0.3, Seed: 3})
	r, err := runPing(t.Context(), ns, insideRemote.String(), 30)
	if err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	t.Logf("ping through a link with 30%% loss each way: %+v, link %+v", r, st)
	if r.Transmitted != 30 || uint64(r.Received) != st.Out || st.In-st.Ignored != 30 {
		t.Errorf("ping %+v, link %+v: want 30 requests and ping's replies = the link's", r, st)
	}
	if st.Dropped == 0 || r.Received == 0 {
		t.Errorf("ping %+v, link %+v: want some but not all lost (seeded, so this is fixed)", r, st)
	}
}

func TestStartInsideNamespace(t *testing.T) {
	needLink(t)
	ns := newNetns(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, os.Args[0], "-test.run=^$")
	// GORACE: a -race binary otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), helperEnv+"=1", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper in %s: %v: %s", ns, err, out)
	}
	var res insideResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if res.Err != "" {
		t.Fatalf("helper: %s", res.Err)
	}
	t.Logf("inside %s: %+v", ns, res)
	if res.Ping.Received != 3 || res.Stats.Out != 3 {
		t.Errorf("ping %+v, stats %+v: want 3 answered", res.Ping, res.Stats)
	}
	checkDelay(t, res.Ping, 10*time.Millisecond)
}

func TestRelayBetweenNamespaces(t *testing.T) {
	needLink(t)
	near, far := newNetns(t), newNetns(t)
	const delay = 15 * time.Millisecond
	l := startLink(t, Config{
		Netns: near, Name: "ulnear", LocalCIDR: netip.MustParsePrefix("10.80.0.1/30"),
		Peer:  &Endpoint{Netns: far, Name: "ulfar", LocalCIDR: netip.MustParsePrefix("10.80.0.2/30")},
		Delay: delay,
	})
	// The far namespace's kernel answers.
	r, err := runPing(t.Context(), near, "10.80.0.2", 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ping across a %v relay: %+v, link %+v", delay, r, l.Stats())
	if r.Received != 5 {
		t.Errorf("ping %+v: want 5 of 5 answered", r)
	}
	checkDelay(t, r, delay)
	if st := l.Stats(); st.Out < 10 || st.Errors != 0 {
		t.Errorf("stats %+v: want at least 5 requests and 5 replies relayed, no errors", st)
	}
}

func TestCloseRemovesDeviceAndGoroutines(t *testing.T) {
	needLink(t)
	ns := newNetns(t)
	before := runtime.NumGoroutine()
	l, err := Start(t.Context(), Config{Netns: ns, Name: "ul0", LocalCIDR: insideLocal, RemoteIP: insideRemote})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := runPing(t.Context(), ns, insideRemote.String(), 1); err != nil || r.Received != 1 {
		t.Fatalf("ping before Close: %+v, %v", r, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := runIP(t.Context(), "-n", string(ns), "link", "show", "ul0"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("ip link show ul0 after Close: %v, want no such device", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before Start", n, before)
	}
}

func TestStartErrors(t *testing.T) {
	needLink(t)
	ns := newNetns(t)
	cfg := Config{Netns: ns, Name: "ul0", LocalCIDR: insideLocal, RemoteIP: insideRemote}
	startLink(t, cfg)

	t.Run("device name taken", func(t *testing.T) {
		l, err := Start(t.Context(), cfg)
		if err == nil {
			l.Close()
			t.Fatal("a second link with the same device started")
		}
		if !strings.Contains(err.Error(), "create TUN device ul0") {
			t.Errorf("error %v, want the TUN device named", err)
		}
	})
	t.Run("no such namespace", func(t *testing.T) {
		c := cfg
		c.Netns = ns + "-missing"
		_, err := Start(t.Context(), c)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), string(c.Netns)) {
			t.Errorf("error %v, want the missing namespace named", err)
		}
	})
}
