package diagnostics

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fastPing keeps the tests short: a few echo requests 10ms apart.
var fastPing = PingOptions{Count: 3, Interval: 10 * time.Millisecond}

// skipWithoutPing skips when this process may open no ICMP socket at all.
func skipWithoutPing(t *testing.T) {
	t.Helper()
	if _, err := choosePingMode(PingModeAuto, true); errors.Is(err, ErrPingNotPermitted) {
		t.Skipf("ping not permitted here: %v", err)
	}
}

func TestPingLoopback(t *testing.T) {
	skipWithoutPing(t)
	reg := prometheus.NewRegistry()
	res := Run(t.Context(), "ping", PingProbe(fastPing), "127.0.0.1", 10*time.Second, reg, nil)
	if !res.Success {
		t.Fatalf("ping 127.0.0.1 failed: %s", res.Err)
	}
	t.Logf("detail: %s", res.Detail)
	want := map[string]float64{"ping_sent": 3, "ping_received": 3, "ping_loss": 0}
	for name, v := range want {
		if r, ok := res.Reading(name); !ok || r.Value != v {
			t.Errorf("%s = %v (present %v), want %v", name, r.Value, ok, v)
		}
	}
	for _, name := range []string{"ping_rtt_min", "ping_rtt_avg", "ping_rtt_max", "ping_rtt_stddev", "ping_jitter"} {
		r, ok := res.Reading(name)
		if !ok || r.Unit != "ms" || r.Value < 0 {
			t.Errorf("%s = %+v (present %v), want a non-negative ms value", name, r, ok)
		}
	}
	if r, ok := res.Reading("ping_privileged"); !ok || (r.Value != 0 && r.Value != 1) {
		t.Errorf("ping_privileged = %+v (present %v): mode not reported", r, ok)
	}
	if !strings.Contains(res.Detail, "ping_privileged=") {
		t.Errorf("detail %q does not report the mode", res.Detail)
	}
	if v, ok := metricValue(t, reg, "probe_ping_loss_ratio"); !ok || v != 0 {
		t.Errorf("probe_ping_loss_ratio = %v (present %v), want 0", v, ok)
	}
	if _, ok := metricValue(t, reg, "probe_ping_rtt_seconds", "stat", "avg"); !ok {
		t.Error(`probe_ping_rtt_seconds{stat="avg"} missing`)
	}
	if v, _ := metricValue(t, reg, "probe_success"); v != 1 {
		t.Errorf("probe_success = %v, want 1", v)
	}
}

// TestPingModes runs each mode: where the environment permits it, the ping
// must work and report that mode; where it does not, the error must be
// ErrPingNotPermitted and name both fixes.
func TestPingModes(t *testing.T) {
	for _, tc := range []struct {
		mode           string
		wantPrivileged float64
	}{
		{PingModePrivileged, 1},
		{PingModeUnprivileged, 0},
		{PingModeAuto, -1}, // either
		{"", -1},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			opts := fastPing
			opts.Mode = tc.mode
			readings, err := PingProbe(opts)(t.Context(), "127.0.0.1", prometheus.NewRegistry(), nil)
			if errors.Is(err, ErrPingNotPermitted) {
				for _, fix := range []string{`sysctl -w net.ipv4.ping_group_range="0 2147483647"`, "setcap cap_net_raw+ep"} {
					if !strings.Contains(err.Error(), fix) {
						t.Errorf("error %q does not name the fix %q", err, fix)
					}
				}
				if !errors.Is(err, os.ErrPermission) {
					t.Errorf("error %q does not wrap the permission error", err)
				}
				t.Logf("mode %q not permitted here (expected error): %v", tc.mode, err)
				return
			}
			if err != nil {
				t.Fatalf("mode %q: %v", tc.mode, err)
			}
			var priv *Reading
			for i := range readings {
				if readings[i].Name == "ping_privileged" {
					priv = &readings[i]
				}
			}
			if priv == nil {
				t.Fatal("ping_privileged reading missing")
			}
			if tc.wantPrivileged >= 0 && priv.Value != tc.wantPrivileged {
				t.Errorf("ping_privileged = %v, want %v", priv.Value, tc.wantPrivileged)
			}
		})
	}
}

func TestPingHonoursDeadline(t *testing.T) {
	skipWithoutPing(t)
	// 1000 requests 50ms apart cannot finish before a 200ms deadline.
	opts := PingOptions{Count: 1000, Interval: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	readings, err := PingProbe(opts)(ctx, "127.0.0.1", prometheus.NewRegistry(), nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	sent := -1.0
	for _, r := range readings {
		if r.Name == "ping_sent" {
			sent = r.Value
		}
	}
	if sent < 1 || sent >= 1000 {
		t.Errorf("ping_sent = %v, want partial readings (1..999)", sent)
	}

	res := Run(t.Context(), "ping", PingProbe(opts), "127.0.0.1", 200*time.Millisecond, nil, nil)
	if res.Success || !strings.Contains(res.Err, "deadline") {
		t.Errorf("Run with a short timeout: success %v, err %q; want a deadline failure", res.Success, res.Err)
	}
}

func TestPingInvalid(t *testing.T) {
	tests := []struct {
		name   string
		opts   PingOptions
		target string
		want   error
	}{
		{"size below pro-bing's minimum", PingOptions{Size: 10}, "127.0.0.1", ErrInvalidOptions},
		{"size too large", PingOptions{Size: 70000}, "127.0.0.1", ErrInvalidOptions},
		{"negative count", PingOptions{Count: -1}, "127.0.0.1", ErrInvalidOptions},
		{"unknown mode", PingOptions{Mode: "raw"}, "127.0.0.1", ErrInvalidOptions},
		{"empty target", PingOptions{}, "", ErrInvalidTarget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PingProbe(tc.opts)(t.Context(), tc.target, nil, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPingSizeAndDontFragment(t *testing.T) {
	skipWithoutPing(t)
	opts := fastPing
	opts.Size, opts.DontFragment = 1400, true
	if _, err := PingProbe(opts)(t.Context(), "127.0.0.1", nil, nil); err != nil {
		t.Fatalf("1400-byte DF ping on loopback: %v", err)
	}
}

func TestJitter(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		rtts []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5 * ms}, 0},
		{[]time.Duration{1 * ms, 3 * ms}, 2 * ms},
		{[]time.Duration{1 * ms, 3 * ms, 1 * ms, 1 * ms}, 4 * ms / 3},
		{[]time.Duration{10 * ms, 10 * ms, 10 * ms}, 0},
	}
	for _, tc := range tests {
		if got := jitter(tc.rtts); got != tc.want {
			t.Errorf("jitter(%v) = %v, want %v", tc.rtts, got, tc.want)
		}
	}
}
