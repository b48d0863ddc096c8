package testlab_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"fieldagent/diagnostics/speedtest"
	"fieldagent/drivers"
	"fieldagent/testlab"
	"fieldagent/testlab/labtest"
)

// TestShapeConfigInvalid: what cannot go with Config.Shape is refused.
func TestShapeConfigInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  testlab.Config
		want string
	}{
		{"no gateway", testlab.Config{NoGateway: true, XT2: true, Shape: true}, "Shape follows the e8 gateway's WAN"},
		{"negative upload", testlab.Config{ACSURL: "http://127.0.0.1:1/", Shape: true, ShapeUpMbps: -1}, "ShapeUpMbps -1 must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site, err := testlab.Start(t.Context(), tc.cfg)
			if err == nil {
				site.Close()
			}
			if !errors.Is(err, testlab.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want ErrConfig with %q", err, tc.want)
			}
		})
	}
}

// TestUnshapedSpeedServerIsDirect: without Shape the speed server answers
// whatever the (factory-fresh, offline) gateway does, and WANUp says so.
func TestUnshapedSpeedServerIsDirect(t *testing.T) {
	_, site := startSite(t, testlab.Config{})
	if !site.WANUp() || site.NetWANUp() {
		t.Errorf("WANUp %t, NetWANUp %t on a loopback site without Shape; want true, false", site.WANUp(), site.NetWANUp())
	}
	if err := speedHealthz(site.SpeedURL); err != nil {
		t.Errorf("the speed server without Shape: %v", err)
	}
}

// speedHealthz fetches the speed server's /healthz on a fresh connection.
func speedHealthz(speedURL string) error {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(speedURL + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}

// waitWANUp waits until the site's WAN path is up (or down).
func waitWANUp(t *testing.T, site *testlab.Site, up bool) {
	t.Helper()
	deadline := time.Now().Add(reachWait)
	for site.WANUp() != up {
		if time.Now().After(deadline) {
			t.Fatalf("the site's WAN path is not up=%t after %s (gateway WAN %q)", up, reachWait, wanStatus(site))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertSpeedReachable checks whether the speed URL answers; a WAN that
// is down refuses at once (a reset, not a timeout).
func assertSpeedReachable(t *testing.T, site *testlab.Site, want bool) {
	t.Helper()
	err := speedHealthz(site.SpeedURL)
	switch {
	case want && err != nil:
		t.Errorf("the speed URL %s with the gateway's WAN up (%s): %v", site.SpeedURL, wanStatus(site), err)
	case !want && err == nil:
		t.Errorf("the speed URL %s answered with the gateway's WAN down (%s)", site.SpeedURL, wanStatus(site))
	case !want && isTimeout(err):
		t.Errorf("the speed URL %s with the WAN down timed out (%v); want it refused at once", site.SpeedURL, err)
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// TestShapeFollowsGatewayWAN drives a factory-fresh gateway of a Shape
// site as the workflow does: its speed URL refuses connections until the
// gateway's WAN is up, then a speed test measures the package, and the
// pppoe_wrong_password fault takes the internet away again.
func TestShapeFollowsGatewayWAN(t *testing.T) {
	const (
		pkg = 50 // Mbit/s
		up  = 10
	)
	l := labtest.Start(t, testlab.Config{BandwidthMbps: pkg, Shape: true, ShapeUpMbps: up})
	site := l.Site
	ctx := labtest.Ctx(t, 90*time.Second)
	gw := l.Gateway(ctx, t)
	if !strings.HasPrefix(site.SpeedURL, "http://127.0.0.1:") {
		t.Errorf("SpeedURL %q, want the relay on loopback", site.SpeedURL)
	}

	time.Sleep(3 * 50 * time.Millisecond) // a few WAN polls: a wrong "up" would show
	if site.WANUp() {
		t.Fatal("WANUp on a factory-fresh gateway")
	}
	assertSpeedReachable(t, site, false)

	o := site.Order
	if _, _, err := gw.RegisterLOID(ctx, o.LOID.LOID.Reveal(), o.LOID.Password.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: o.PPPoE.Username, Password: o.PPPoE.Password}); err != nil {
		t.Fatal(err)
	}
	if st, err := gw.WaitWANUp(ctx); err != nil {
		t.Fatalf("WAN %+v: %v", st, err)
	}
	waitWANUp(t, site, true)
	assertSpeedReachable(t, site, true)

	t.Run("download at the package", func(t *testing.T) {
		assertRate(t, pkg, 0.15, func() float64 {
			m, err := speedtest.Download(ctx, site.SpeedURL, speedtest.ClientOptions{Duration: 3 * time.Second, RampUp: time.Second, Streams: 2, MaxStreams: 4})
			if err != nil {
				t.Fatalf("speed test through the WAN relay: %v", err)
			}
			return m.Mbps
		})
	})
	t.Run("upload at ShapeUpMbps", func(t *testing.T) {
		assertRate(t, up, 0.15, func() float64 {
			return uploadMbps(t, &http.Client{}, site.SpeedURL, up*1e6/8*2) // about 2 s
		})
	})

	t.Run("pppoe_wrong_password", func(t *testing.T) {
		if err := site.InjectFault("pppoe_wrong_password"); err != nil {
			t.Fatal(err)
		}
		waitWANUp(t, site, false)
		assertSpeedReachable(t, site, false)
		if err := site.ClearFault("pppoe_wrong_password"); err != nil {
			t.Fatal(err)
		}
		waitWANUp(t, site, true)
		assertSpeedReachable(t, site, true)
	})
}

// assertRate measures with measure up to rateAttempts times and checks
// the rate is pkg within ±tol; too slow on a machine too busy to carry it
// is inconclusive (skip), too fast always fails.
func assertRate(t *testing.T, pkg, tol float64, measure func() float64) {
	t.Helper()
	var figures []string
	busy := true
	for range rateAttempts {
		before := readCPU(t)
		mbps := measure()
		load := readCPU(t).busySince(before)
		t.Logf("%.2f Mbit/s through a %.0f Mbit/s line (CPU %.0f%% busy)", mbps, pkg, 100*load)
		figures = append(figures, fmt.Sprintf("%.2f (CPU %.0f%%)", mbps, 100*load))
		switch {
		case mbps > (1+tol)*pkg:
			t.Fatalf("%.2f Mbit/s, more than the %.0f Mbit/s line +%.0f%%: not shaped", mbps, pkg, 100*tol)
		case mbps >= (1-tol)*pkg:
			return
		}
		busy = busy && load > busyCPU
	}
	if busy {
		t.Skipf("inconclusive, the machine was too busy to carry the line: %s Mbit/s in %d attempts, want %.0f ±%.0f%%",
			strings.Join(figures, ", "), rateAttempts, pkg, 100*tol)
	}
	t.Errorf("%s Mbit/s in %d attempts, want %.0f ±%.0f%%", strings.Join(figures, ", "), rateAttempts, pkg, 100*tol)
}
