package e8_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/operator"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
)

// lab is one simulated e8 gateway behind a real ACS on loopback.
type lab struct {
	acs *acs.Server
	id  string
	gw  *e8sim.Gateway
	drv *e8.Driver
	t   testing.TB
}

type labOpt func(*e8sim.Config)

func startLab(tb testing.TB, access string, opts ...labOpt) *lab {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	cr := secret.New("cr")
	a := acs.New(acs.Config{ConnLostGrace: 50 * time.Millisecond, ConnectionRequestAuth: func(string) (string, secret.Secret) { return "u", cr }})
	as := httptest.NewUnstartedServer(a)
	as.Config.ConnState = a.ConnState // a dropped CWMP connection ends its session at once
	as.Start()
	tb.Cleanup(as.Close)
	op := operator.New(secret.New("optok"), nil)
	op.AddPPPoEAccount("ad1", secret.New("right"))
	op.AddLOID(secret.New("LOID1"), secret.New("lpw"))
	os := httptest.NewServer(op)
	tb.Cleanup(os.Close)
	cfg := e8sim.Config{
		ACSURL: as.URL + "/", Vendor: "ZTE", Model: "F650", OUI: "00D0D0", ProductClass: "F650",
		Serial: "SN1", Firmware: "V1", Access: access, ConnReqUsername: "u", ConnReqPassword: cr,
		OperatorURL: os.URL, OperatorToken: secret.New("optok"),
	}
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := e8sim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(acs.Device) bool { return true })
	if err != nil {
		tb.Fatal(err)
	}
	drv := e8.New(a, d.ID)
	drv.PollInterval = 10 * time.Millisecond
	return &lab{acs: a, id: d.ID, gw: gw, drv: drv, t: tb}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// config returns the gateway's configuration under prefix: every parameter
// but the bookkeeping ones a rollback may legitimately leave changed.
func config(tr *cpe.Tree, prefix string) map[string]string {
	out := map[string]string{}
	for _, p := range tr.Snapshot() {
		if strings.HasPrefix(p.Name, prefix) && !strings.HasSuffix(p.Name, "ParameterKey") {
			out[p.Name] = p.Value
		}
	}
	return out
}

func diff(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			d = append(d, k+": "+v+" -> "+w)
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k+": (none) -> "+v)
		}
	}
	slices.Sort(d)
	return d
}

const (
	wcd1 = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1."
	ppp1 = wcd1 + "WANPPPConnection.1."
)

func TestConfigurePPPoERoutedWithVLANAndBinding(t *testing.T) {
	l := startLab(t, "gpon")
	ctx := ctxT(t)
	undo, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right"), VLAN: 41})
	if err != nil {
		t.Fatal(err)
	}
	tr := l.gw.Tree()
	want := map[string]string{
		ppp1 + "ConnectionType":                        "IP_Routed",
		ppp1 + "X_CT-COM_ServiceList":                  "INTERNET",
		wcd1 + "X_CT-COM_WANGponLinkConfig.VLANIDMark": "41",
		ppp1 + "Username":                              "ad1",
	}
	for k, v := range want {
		if got := tr.Value(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	bind := tr.Value(ppp1 + "X_CT-COM_LanInterface")
	for _, s := range []string{"LANEthernetInterfaceConfig.1", "LANEthernetInterfaceConfig.3", "WLANConfiguration.1"} {
		if !strings.Contains(bind, s) {
			t.Errorf("LanInterface %q lacks %s", bind, s)
		}
	}
	if strings.Contains(bind, "LANEthernetInterfaceConfig.4") {
		t.Errorf("LanInterface %q binds LAN4 (kept for IPTV)", bind)
	}
	// Running the order again reuses the WAN rather than adding another.
	if _, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right"), VLAN: 41}); err != nil {
		t.Fatal(err)
	}
	if v := tr.Value(wcd1 + "WANPPPConnectionNumberOfEntries"); v != "1" {
		t.Errorf("WANPPPConnectionNumberOfEntries = %s after a second run, want 1", v)
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Get(ppp1 + "Username"); ok {
		t.Error("undo left the WAN connection")
	}
}

func TestConfigurePPPoEBridge(t *testing.T) {
	l := startLab(t, "lan")
	ctx := ctxT(t)
	if _, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Bridge: true, VLAN: 100}); err != nil {
		t.Fatal(err)
	}
	tr := l.gw.Tree()
	if v := tr.Value(ppp1 + "ConnectionType"); v != "PPPoE_Bridged" {
		t.Errorf("ConnectionType = %s", v)
	}
	if v := tr.Value(ppp1 + "X_CT-COM_VLANIDMark"); v != "100" {
		t.Errorf("VLANIDMark on a LAN uplink = %s, want 100", v)
	}
}

// TestConfigurePPPoERollsBack cuts the routed-internet change half-way: the
// connection and its VLAN are written, then the gateway refuses the last
// write (or the verification fails). The gateway must end as it began.
func TestConfigurePPPoERollsBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*e8sim.Gateway)
	}{
		{"fault on the account write", func(g *e8sim.Gateway) {
			g.FailSetWhere(func(n string) bool { return strings.HasSuffix(n, ".Username") }, cwmp.FaultInternalError)
		}},
		{"fault on the VLAN write", func(g *e8sim.Gateway) {
			g.FailSetWhere(func(n string) bool { return strings.HasSuffix(n, "VLANIDMark") }, cwmp.FaultResourcesExceeded)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t, "gpon")
			ctx := ctxT(t)
			before := config(l.gw.Tree(), "InternetGatewayDevice.WANDevice.")
			tc.fault(l.gw)
			_, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right"), VLAN: 41})
			var re *drivers.RestoreError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RestoreError", err)
			}
			if !re.Restored() || errors.Is(err, drivers.ErrRestoreFailed) {
				t.Fatalf("restore failed: %v", err)
			}
			var f *cwmp.Fault
			if !errors.As(err, &f) {
				t.Errorf("err = %v, does not carry the fault", err)
			}
			if strings.Contains(err.Error(), "right") {
				t.Errorf("error reveals the password: %v", err)
			}
			after := config(l.gw.Tree(), "InternetGatewayDevice.WANDevice.")
			if d := diff(before, after); len(d) > 0 {
				t.Errorf("gateway changed:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestConfigurePPPoELostSession cuts the ACS session off after the
// AddObject: the caller's deadline ends while the change is half done. The
// rollback runs with its own deadline and removes the half-made WAN.
func TestConfigurePPPoELostSession(t *testing.T) {
	l := startLab(t, "gpon")
	before := config(l.gw.Tree(), "InternetGatewayDevice.WANDevice.")
	ctx, cancel := context.WithCancel(ctxT(t))
	l.gw.FailSetWhere(func(n string) bool {
		cancel() // the field engineer's laptop loses the session here
		return false
	}, 0)
	_, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right"), VLAN: 41})
	var re *drivers.RestoreError
	if !errors.As(err, &re) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a RestoreError for a cancelled session", err)
	}
	if !re.Restored() {
		t.Fatalf("restore failed: %v", err)
	}
	after := config(l.gw.Tree(), "InternetGatewayDevice.WANDevice.")
	if d := diff(before, after); len(d) > 0 {
		t.Errorf("gateway changed:\n%s", strings.Join(d, "\n"))
	}
}

// TestConfigurePPPoECutConnection drops the gateway's CWMP connection at
// every request of the routed-internet change in turn — before the gateway
// applied the request, and after it applied it but before it could answer —
// and asserts the gateway ends as it began: the driver notices the lost
// session, reaches the gateway again by connection request and restores.
func TestConfigurePPPoECutConnection(t *testing.T) {
	for _, afterApply := range []bool{false, true} {
		for k := 1; ; k++ {
			name := fmt.Sprintf("request %d before apply", k)
			if afterApply {
				name = fmt.Sprintf("request %d after apply", k)
			}
			completed := false
			t.Run(name, func(t *testing.T) {
				l := startLab(t, "gpon")
				ctx := ctxT(t)
				before := config(l.gw.Tree(), "InternetGatewayDevice.WANDevice.")
				var mu sync.Mutex
				n, cutDuring := 0, ""
				l.gw.CutSessionWhere(func(m cwmp.Message) bool {
					mu.Lock()
					defer mu.Unlock()
					n++
					if n == k {
						cutDuring = m.MethodName()
					}
					return n == k
				}, afterApply)
				start := time.Now()
				_, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right"), VLAN: 41})
				mu.Lock()
				cut := cutDuring
				mu.Unlock()
				if cut == "" {
					// The change had fewer than k requests: it ran whole.
					if err != nil {
						t.Fatalf("uncut change failed: %v", err)
					}
					completed = true
					return
				}
				if err == nil {
					t.Fatalf("connection cut during %s, but ConfigurePPPoE reported success", cut)
				}
				if !errors.Is(err, acs.ErrSessionEnded) {
					t.Errorf("err = %v, want it to say the session ended", err)
				}
				if el := time.Since(start); el > 10*time.Second {
					t.Errorf("recovery took %v: the lost connection was not noticed", el)
				}
				var re *drivers.RestoreError
				if errors.As(err, &re) && !re.Restored() {
					t.Fatalf("cut during %s: restore failed: %v", cut, err)
				}
				after := config(l.gw.Tree(), "InternetGatewayDevice.WANDevice.")
				if d := diff(before, after); len(d) > 0 {
					t.Errorf("cut during %s (%v): gateway changed:\n%s", cut, err, strings.Join(d, "\n"))
				}
			})
			if completed || k > 40 {
				if k < 4 {
					t.Fatalf("the change completed after only %d requests: the cut never hit it", k-1)
				}
				break
			}
		}
	}
}

// The e8 driver has every gateway capability.
var (
	_ drivers.Identifier         = (*e8.Driver)(nil)
	_ drivers.StatusReader       = (*e8.Driver)(nil)
	_ drivers.InternetConfigurer = (*e8.Driver)(nil)
	_ drivers.AccountBinder      = (*e8.Driver)(nil)
	_ drivers.IPTVConfigurer     = (*e8.Driver)(nil)
	_ drivers.WiFiConfigurer     = (*e8.Driver)(nil)
	_ drivers.Snapshotter        = (*e8.Driver)(nil)
	_ drivers.FirmwareUpgrader   = (*e8.Driver)(nil)
	_ drivers.Rebooter           = (*e8.Driver)(nil)
)
