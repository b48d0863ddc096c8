package testlab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/drivers"
	"fieldagent/testlab"
	"fieldagent/testlab/labtest"
	"fieldagent/testlab/netsite"
	"fieldagent/tr069/acs"
)

// blockedWait is how long a request through a gateway whose WAN is down
// may try before it counts as blocked (the gateway drops, it does not
// reject); reachWait how long one that should get through may take.
const (
	blockedWait = time.Second
	reachWait   = 10 * time.Second
)

// TestNetConfigInvalid: what cannot go with Config.Net is refused before
// anything is built, root or not.
func TestNetConfigInvalid(t *testing.T) {
	acsURL := testlab.NetACSURL(testlab.NetACSPort)
	for _, tc := range []struct {
		name string
		cfg  testlab.Config
		want string
	}{
		{"set-top box", testlab.Config{ACSURL: acsURL, STB: true, Net: &netsite.Options{Instance: "a"}}, "leave out STB, XT2 and Multicast"},
		{"XT-2", testlab.Config{ACSURL: acsURL, XT2: true, Net: &netsite.Options{Instance: "a"}}, "leave out STB, XT2 and Multicast"},
		{"ACS by name", testlab.Config{ACSURL: "http://laptop.lan:7547/", Net: &netsite.Options{Instance: "a"}}, `ACSURL "http://laptop.lan:7547/": with Net its host must be an IP address`},
		{"NetReady without Net", testlab.Config{ACSURL: acsURL, NetReady: func(*netsite.Net) error { return nil }}, "NetReady needs Net"},
		{"bad instance", testlab.Config{ACSURL: acsURL, Net: &netsite.Options{Instance: "Lab-1"}}, `Net: instance "Lab-1" is not`},
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

// TestNetUnavailable: without the tools (or root) Start with Net fails
// with netsite.ErrUnavailable, which callers take as "run on loopback".
func TestNetUnavailable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	site, err := testlab.Start(t.Context(), testlab.Config{ACSURL: testlab.NetACSURL(testlab.NetACSPort), Net: &netsite.Options{Instance: "a"}})
	if err == nil {
		site.Close()
	}
	if !errors.Is(err, netsite.ErrUnavailable) {
		t.Fatalf("Start without ip, tc and nft = %v, want netsite.ErrUnavailable", err)
	}
}

// laptopGet fetches the speed server's /healthz from the laptop, through
// the gateway, within wait.
func laptopGet(site *testlab.Site, wait time.Duration) error {
	resp, err := labtest.NetHTTPClient(site.Net, netsite.Laptop, wait).Get(site.SpeedURL + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}

// laptopLookup resolves diagnostics.DefaultDNSName at the site's DNS from
// the laptop.
func laptopLookup(ctx context.Context, site *testlab.Site, wait time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return site.Net.DialContext(ctx, netsite.Laptop, network, site.DNSAddr)
	}}
	return r.LookupHost(ctx, diagnostics.DefaultDNSName)
}

// waitNetWAN waits until the gateway namespace's forwarding is up.
func waitNetWAN(t *testing.T, site *testlab.Site, up bool) {
	t.Helper()
	deadline := time.Now().Add(reachWait)
	for site.NetWANUp() != up {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway namespace's WAN is not up=%t after %s (gateway WAN %q)", up, reachWait, wanStatus(site))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wanStatus is the gateway's INTERNET WAN state, for messages.
func wanStatus(site *testlab.Site) string {
	var out []string
	for _, p := range site.Gateway.Tree().Snapshot() {
		if strings.HasSuffix(p.Name, ".ConnectionStatus") || strings.HasSuffix(p.Name, ".LastConnectionError") {
			out = append(out, strings.TrimPrefix(p.Name, "InternetGatewayDevice.WANDevice.1.")+"="+p.Value)
		}
	}
	return strings.Join(out, " ")
}

// assertInternet checks what the laptop reaches through the gateway: the
// speed server and the DNS, both "on the internet".
func assertInternet(t *testing.T, site *testlab.Site, want bool) {
	t.Helper()
	if !want {
		if err := laptopGet(site, blockedWait); err == nil {
			t.Errorf("the laptop reached the speed server %s while the gateway's WAN is down (%s)", site.SpeedURL, wanStatus(site))
		}
		if addrs, err := laptopLookup(t.Context(), site, blockedWait); err == nil {
			t.Errorf("the laptop resolved %s (%v) while the gateway's WAN is down", diagnostics.DefaultDNSName, addrs)
		}
		return
	}
	if err := laptopGet(site, reachWait); err != nil {
		t.Errorf("the laptop cannot reach the speed server %s with the gateway's WAN up (%s): %v", site.SpeedURL, wanStatus(site), err)
	}
	if addrs, err := laptopLookup(t.Context(), site, reachWait); err != nil || len(addrs) != 1 || addrs[0] != "100.64.0.80" {
		t.Errorf("the laptop resolved %s to %v, %v; want [100.64.0.80] through the gateway", diagnostics.DefaultDNSName, addrs, err)
	}
}

// TestNetFollowsGatewayWAN: the packet path from the laptop to the
// internet follows the simulated gateway's WAN — down while the BRAS
// rejects it, up once the true password is set on the gateway, down again
// with the pppoe_wrong_password fault, up once it is cleared — and Close
// removes the namespaces. No ACS takes part (the gateway informs nobody).
func TestNetFollowsGatewayWAN(t *testing.T) {
	if err := netsite.Available(); err != nil {
		t.Skipf("a site in network namespaces: %v", err)
	}
	inst := labtest.NewNetInstance(t)
	site, err := testlab.Start(t.Context(), testlab.Config{
		ACSURL: testlab.NetACSURL(testlab.NetACSPort), Gateway: testlab.GatewayFaultPPPoE,
		Net: &netsite.Options{Instance: inst},
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			site.Close()
		}
	})
	if want := "http://" + netsite.InternetAddr.String() + ":80"; site.SpeedURL != want {
		t.Errorf("SpeedURL %q, want %q (the internet address in the operator namespace)", site.SpeedURL, want)
	}
	if want := netsite.InternetAddr.String() + ":53"; site.DNSAddr != want {
		t.Errorf("DNSAddr %q, want %q", site.DNSAddr, want)
	}
	if !strings.HasPrefix(site.OperatorURL, "http://"+netsite.OperatorAddr.String()+":") {
		t.Errorf("OperatorURL %q, want the operator's address %s", site.OperatorURL, netsite.OperatorAddr)
	}
	if got := site.Gateway.Engine().ConnectionRequestURL(); !strings.HasPrefix(got, "http://"+netsite.GatewayLANAddr.String()+":7547/") && got != "" {
		t.Errorf("ConnectionRequestURL %q, want the gateway's LAN address", got)
	}

	inst1 := waitGatewayWAN(t, site, "ERROR_AUTHENTICATION_FAILURE")
	t.Run("rejected by the BRAS", func(t *testing.T) {
		// The gateway reached the BRAS across the WAN (it was rejected,
		// not timed out); the laptop reaches nothing beyond the gateway.
		time.Sleep(3 * 50 * time.Millisecond) // a few WAN polls: a wrong "up" would show
		if site.NetWANUp() {
			t.Fatal("the gateway namespace forwards while the gateway's WAN is rejected")
		}
		assertInternet(t, site, false)
	})
	t.Run("true password", func(t *testing.T) {
		if err := site.Gateway.ApplyLocal(map[string]string{inst1 + "Password": site.Credentials.PPPoEPassword.Reveal()}); err != nil {
			t.Fatal(err)
		}
		waitGatewayWAN(t, site, "")
		waitNetWAN(t, site, true)
		assertInternet(t, site, true)
	})
	t.Run("pppoe_wrong_password", func(t *testing.T) {
		if err := site.InjectFault("pppoe_wrong_password"); err != nil {
			t.Fatal(err)
		}
		waitNetWAN(t, site, false)
		assertInternet(t, site, false)
		if err := site.ClearFault("pppoe_wrong_password"); err != nil {
			t.Fatal(err)
		}
		waitNetWAN(t, site, true)
		assertInternet(t, site, true)
	})

	site.Close()
	closed = true
	if err := site.Err(); err != nil {
		t.Errorf("site failed: %v", err)
	}
	for _, r := range []netsite.Role{netsite.Laptop, netsite.Gateway, netsite.Operator} {
		ns := netsite.NamePrefix + inst + "-" + string(r)
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s is left after Close (stat: %v)", ns, err)
		}
	}
}

// waitGatewayWAN waits until the gateway's INTERNET WAN is Connected
// (lastErr "") or Disconnected with lastErr, and returns its instance
// ("…WANPPPConnection.N.").
func waitGatewayWAN(t *testing.T, site *testlab.Site, lastErr string) string {
	t.Helper()
	deadline := time.Now().Add(reachWait)
	for {
		for _, p := range site.Gateway.Tree().Snapshot() {
			inst, ok := strings.CutSuffix(p.Name, "X_CT-COM_ServiceList")
			if !ok || !strings.Contains(p.Name, ".WANPPPConnection.") || !strings.Contains(p.Value, "INTERNET") {
				continue
			}
			status, le := site.Gateway.Tree().Value(inst+"ConnectionStatus"), site.Gateway.Tree().Value(inst+"LastConnectionError")
			if lastErr == "" && status == "Connected" || lastErr != "" && status == "Disconnected" && le == lastErr {
				return inst
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway's WAN did not get to %q in %s: %s", lastErr, reachWait, wanStatus(site))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNetWorkflow drives a factory-fresh gateway the way the workflow
// does, from an ACS on the laptop: it informs across the LAN, takes the
// LOID and the PPPoE account by connection request, and only then does
// the laptop reach the internet, at the package rate; a fault and a
// factory reset take the internet away again.
func TestNetWorkflow(t *testing.T) {
	const pkg = 20 // Mbit/s: measurable in a few seconds on a busy machine
	l := labtest.StartNet(t, testlab.Config{BandwidthMbps: pkg})
	site := l.Site
	ctx := labtest.Ctx(t, 90*time.Second)
	gw := l.Gateway(ctx, t)
	d, err := l.ACS.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == testlab.SampleGatewaySN })
	if want := "http://" + netsite.GatewayLANAddr.String() + ":7547/"; err != nil || d.ConnectionRequestURL != want {
		t.Errorf("the gateway's connection request URL at the ACS is %q (%v), want %q", d.ConnectionRequestURL, err, want)
	}
	assertInternet(t, site, false)

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
	waitNetWAN(t, site, true)
	assertInternet(t, site, true)

	t.Run("shaped to the package", func(t *testing.T) { assertShaped(t, site, pkg) })

	t.Run("pppoe_wrong_password", func(t *testing.T) {
		if err := site.InjectFault("pppoe_wrong_password"); err != nil {
			t.Fatal(err)
		}
		st, err := gw.WaitWANUp(ctx)
		if !errors.Is(err, drivers.ErrPPPoEAuth) {
			t.Errorf("the driver sees WAN %+v, %v; want ErrPPPoEAuth", st, err)
		}
		waitNetWAN(t, site, false)
		assertInternet(t, site, false)
		if err := site.ClearFault("pppoe_wrong_password"); err != nil {
			t.Fatal(err)
		}
		waitNetWAN(t, site, true)
		assertInternet(t, site, true)
	})
	t.Run("factory reset", func(t *testing.T) {
		if err := gw.FactoryReset(ctx); err != nil {
			t.Fatal(err)
		}
		waitNetWAN(t, site, false)
		assertInternet(t, site, false)
	})
}

// Shaping bounds: the rate a speed test measures through the gateway is
// the package's within ±25% (TCP payload is about 96% of the tbf rate;
// an unshaped veth pair moves Gbit/s). A machine too busy to carry the
// package makes the test inconclusive (skip) rather than failed.
const (
	rateAttempts = 3
	busyCPU      = 0.85
)

// assertShaped measures from the laptop each way and checks the rate: the
// download with the agent's speed test client, the upload at the speed
// server (a client counts what it wrote into its socket buffers, more than
// crossed the WAN, which over a few seconds overstates a shaped upload).
func assertShaped(t *testing.T, site *testlab.Site, pkg float64) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return site.Net.DialContext(ctx, netsite.Laptop, network, addr)
		},
		MaxIdleConnsPerHost: 8,
	}}
	for _, dir := range []string{speedtest.DirectionDownload, speedtest.DirectionUpload} {
		t.Run(dir, func(t *testing.T) {
			var figures []string
			busy := true
			for range rateAttempts {
				before := readCPU(t)
				var mbps float64
				if dir == speedtest.DirectionDownload {
					opts := speedtest.ClientOptions{HTTPClient: c, Duration: 3 * time.Second, RampUp: time.Second, Streams: 2, MaxStreams: 4}
					m, err := speedtest.Download(t.Context(), site.SpeedURL, opts)
					if err != nil {
						t.Fatalf("speed test from the laptop: %v", err)
					}
					mbps = m.Mbps
				} else {
					mbps = uploadMbps(t, c, site.SpeedURL, int(pkg*1e6/8*2)) // about 2 s
				}
				load := readCPU(t).busySince(before)
				t.Logf("%s: %.2f Mbit/s through a %.0f Mbit/s package (CPU %.0f%% busy)", dir, mbps, pkg, 100*load)
				figures = append(figures, fmt.Sprintf("%.2f (CPU %.0f%%)", mbps, 100*load))
				switch {
				case mbps > 1.25*pkg:
					t.Fatalf("%s: %.2f Mbit/s, more than the %.0f Mbit/s package +25%%: not shaped", dir, mbps, pkg)
				case mbps >= 0.75*pkg:
					return
				}
				busy = busy && load > busyCPU
			}
			if busy {
				t.Skipf("%s: inconclusive, the machine was too busy to carry the package: %s Mbit/s in %d attempts, want %.0f ±25%%",
					dir, strings.Join(figures, ", "), rateAttempts, pkg)
			}
			t.Errorf("%s: %s Mbit/s in %d attempts, want %.0f ±25%%", dir, strings.Join(figures, ", "), rateAttempts, pkg)
		})
	}
}

// uploadMbps posts size bytes to the speed server and returns the rate it
// received them at.
func uploadMbps(t *testing.T, c *http.Client, speedURL string, size int) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, speedURL+"/upload", bytes.NewReader(make([]byte, size)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("upload from the laptop: %v", err)
	}
	defer resp.Body.Close()
	var res struct {
		Bytes   int64   `json:"bytes"`
		Seconds float64 `json:"seconds"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || res.Bytes != int64(size) || res.Seconds <= 0 {
		t.Fatalf("upload: %s, %+v, %v", resp.Status, res, err)
	}
	return float64(res.Bytes) * 8 / res.Seconds / 1e6
}

// cpuTimes are the machine's CPU counters from /proc/stat.
type cpuTimes struct{ total, idle uint64 }

// readCPU reads the aggregate CPU line of /proc/stat.
func readCPU(t *testing.T) cpuTimes {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var c cpuTimes
	for i, f := range strings.Fields(line)[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			t.Fatalf("/proc/stat: %q: %v", line, err)
		}
		c.total += v
		if i == 3 || i == 4 { // idle, iowait
			c.idle += v
		}
	}
	return c
}

// busySince returns the share of CPU time in use between before and c.
func (c cpuTimes) busySince(before cpuTimes) float64 {
	total := c.total - before.total
	if total == 0 {
		return 0
	}
	return 1 - float64(c.idle-before.idle)/float64(total)
}
