package testlab_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers/e8"
	"fieldagent/testlab"
	"fieldagent/testlab/labtest"
)

// e8FaultCases are the e8 faults of the catalogue and what else the
// diagnosis must see with each: whether it takes the internet WAN down.
var e8FaultCases = []struct {
	id      string
	wanDown bool
}{
	{"pppoe_wrong_password", true},
	{"pppoe_account_not_opened", true},
	{"loid_wrong", true},
	{"onu_not_authorised", true},
	{"optical_rx_low", false},
	{"optical_rx_high", false},
	{"fibre_unplugged", true},
	{"lan_cable_wrong_pair", false},
	{"wan_vlan_wrong", true},
	{"dns_server_down", false},
	{"lan_dhcp_off", false},
	{"wifi_congested", false},
	{"firmware_outdated", false},
}

func catalogued(t *testing.T, id string) testlab.Fault {
	t.Helper()
	for _, f := range testlab.Faults() {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("fault %s is not in the catalogue", id)
	return testlab.Fault{}
}

// diagnose runs fieldagent's diagnosis of the site as a technician on a
// repair would: the gateway through its driver, the package and access
// from the order, the operator's resolver and a ping, and the firmware the
// order requires.
func diagnose(ctx context.Context, t *testing.T, l *labtest.Lab, gw *e8.Driver) diagrun.Outcome {
	t.Helper()
	svc := l.Site.Order.Services[0]
	out, err := diagrun.Run(ctx, diagrun.Site{
		Gateway: gw, Access: string(svc.Access), PackageDownMbps: float64(svc.BandwidthMbps),
		PingTarget: "127.0.0.1", Resolvers: []string{l.Site.DNSAddr},
		Facts: map[string]string{verdict.FactFirmwareRequired: l.Site.Order.RequiredFirmware},
	}, diagrun.Options{
		Ping:    diagnostics.PingOptions{Count: 2, Interval: 50 * time.Millisecond, Wait: 500 * time.Millisecond},
		DNS:     diagnostics.DNSOptions{Timeout: 300 * time.Millisecond, Attempts: 1},
		Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if line := out.Results[0]; line.Probe != "line" || !line.Success {
		t.Fatalf("the line probe failed: %+v", line)
	}
	return out
}

func codes(out diagrun.Outcome) []verdict.Code {
	var cs []verdict.Code
	for _, f := range out.Report.Findings {
		cs = append(cs, f.Code)
	}
	return cs
}

// TestE8FaultsFound is issue 7's acceptance test: fieldagent's own
// diagnosis finds every catalogued e8 fault on an installed site, and no
// longer once the fault is cleared (with the internet WAN back up).
func TestE8FaultsFound(t *testing.T) {
	for _, tc := range e8FaultCases {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			f := catalogued(t, tc.id)
			l := labtest.Start(t, testlab.Config{Gateway: testlab.GatewayInstalled})
			ctx := labtest.Ctx(t, 90*time.Second)
			gw := l.Gateway(ctx, t)
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if _, err := gw.WaitWANUp(wctx); err != nil {
				t.Fatalf("the installed site's WAN did not come up: %v", err)
			}

			before := diagnose(ctx, t, l, gw)
			if slices.Contains(codes(before), f.Finding) {
				t.Fatalf("%s found before the fault was injected: %v", f.Finding, before.Report.Findings)
			}

			if err := l.Site.InjectFault(tc.id); err != nil {
				t.Fatal(err)
			}
			if got := l.Site.ActiveFaults(); !slices.Equal(got, []string{tc.id}) {
				t.Errorf("active faults = %v, want [%s]", got, tc.id)
			}
			during := diagnose(ctx, t, l, gw)
			if !slices.Contains(codes(during), f.Finding) {
				t.Fatalf("the diagnosis did not find %s: findings %v, facts %v", f.Finding, codes(during), during.Facts)
			}
			if down := during.Facts[verdict.FactWANStatus] != "Connected"; down != tc.wanDown {
				t.Errorf("during the fault wan_status = %q, want down %v", during.Facts[verdict.FactWANStatus], tc.wanDown)
			}

			if err := l.Site.ClearFault(tc.id); err != nil {
				t.Fatal(err)
			}
			if got := l.Site.ActiveFaults(); len(got) != 0 {
				t.Errorf("active faults after the clear = %v", got)
			}
			after := diagnose(ctx, t, l, gw)
			if slices.Contains(codes(after), f.Finding) {
				t.Errorf("%s still found after the clear: %v", f.Finding, after.Report.Findings)
			}
			if s := after.Facts[verdict.FactWANStatus]; s != "Connected" {
				t.Errorf("after the clear wan_status = %q, want Connected", s)
			}
			if err := l.Site.Err(); err != nil {
				t.Errorf("site error: %v", err)
			}
		})
	}
}

func TestE8Catalogue(t *testing.T) {
	ids := map[string]bool{}
	for _, tc := range e8FaultCases {
		f := catalogued(t, tc.id)
		if ids[f.ID] {
			t.Errorf("fault %s listed twice", f.ID)
		}
		ids[f.ID] = true
		if f.Device != "e8" {
			t.Errorf("%s: device %q, want e8", f.ID, f.Device)
		}
		for name, v := range map[string]string{"Title": f.Title, "TitleZH": f.TitleZH, "Where": f.Where, "Fix": f.Fix, "FixZH": f.FixZH, "Finding": string(f.Finding)} {
			if v == "" {
				t.Errorf("%s: empty %s", f.ID, name)
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range testlab.Faults() {
		if seen[f.ID] {
			t.Errorf("catalogue lists %s twice", f.ID)
		}
		seen[f.ID] = true
	}
}

func TestInjectUnknownFault(t *testing.T) {
	l := labtest.Start(t, testlab.Config{Gateway: testlab.GatewayInstalled})
	if err := l.Site.InjectFault("no_such_fault"); !errors.Is(err, testlab.ErrUnknownFault) {
		t.Errorf("InjectFault(no_such_fault) = %v, want ErrUnknownFault", err)
	}
	if err := l.Site.ClearFault("no_such_fault"); !errors.Is(err, testlab.ErrUnknownFault) {
		t.Errorf("ClearFault(no_such_fault) = %v, want ErrUnknownFault", err)
	}
	if got := l.Site.ActiveFaults(); len(got) != 0 {
		t.Errorf("active faults = %v", got)
	}
}

// TestE8FaultNeedsGateway: an e8 fault on a site without the gateway is
// not applicable.
func TestE8FaultNeedsGateway(t *testing.T) {
	l := labtest.Start(t, testlab.Config{NoGateway: true})
	if err := l.Site.InjectFault("optical_rx_low"); !errors.Is(err, testlab.ErrFaultNotApplicable) {
		t.Errorf("InjectFault without a gateway = %v, want ErrFaultNotApplicable", err)
	}
}
