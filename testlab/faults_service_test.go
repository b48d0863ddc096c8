package testlab_test

import (
	"context"
	"encoding/json"
	"errors"
	"fieldagent/agent/diagrun"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/iptv"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/xt2"
	"fieldagent/testlab"
	"fieldagent/testlab/labtest"
	"fieldagent/testlab/mcast/mcasttest"
	"fieldagent/tr069/acs"
)

// The multicast scenarios run in a network namespace of their own (see
// mcasttest): the site's head-end and the IPTV check need multicast on lo.
var scenarios = mcasttest.Scenarios{"multicast_loss": multicastLossScenario, "iptv_vlan_not_bound": unboundProbeScenario}

func TestMain(m *testing.M) { scenarios.Main(m) }

// serviceFaultIDs are the faults of faults_service.go.
var serviceFaultIDs = []string{
	"iptv_vlan_not_bound", "igmp_snooping_off", "stb_account_wrong", "multicast_loss",
	"xt2_not_bound_bbms", "xt2_nat_missing", "xt2_pppoe_wrong_password",
}

// siteDevices are the drivers fieldagent's diagnosis reads a site with; a
// nil driver (or an empty Channel) leaves its evidence out.
type siteDevices struct {
	Gateway *e8.Driver
	STB     *itv.Driver
	XT2     *xt2.Driver
	// Channel is the IPTV check's target and Interface where it joins.
	Channel, Interface string
	// STBPort is the gateway port the set-top box is cabled to.
	STBPort int
	// StreamWindow is how long the set-top box's counters are watched.
	StreamWindow time.Duration
}

// diagnosis is what fieldagent's diagnosis gathered and concluded.
type diagnosis struct {
	Results []diagnostics.Result `json:"results"`
	Facts   map[string]string    `json:"facts"`
	Report  verdict.Report       `json:"report"`
}

// codes returns the codes of the report's findings, in order.
func (d diagnosis) codes() []verdict.Code {
	var out []verdict.Code
	for _, f := range d.Report.Findings {
		out = append(out, f.Code)
	}
	return out
}

func (d diagnosis) String() string {
	b, _ := json.MarshalIndent(struct {
		Facts    map[string]string `json:"facts"`
		Results  any               `json:"results"`
		Findings []verdict.Finding `json:"findings"`
	}{d.Facts, d.Results, d.Report.Findings}, "", "  ")
	return string(b)
}

// diagnose is fieldagent's diagnosis of a site, as diag run would make it:
// it reads the gateway's IPTV configuration, the set-top box's
// authentication and stream counters, the XT-2's dialer and BBMS binding
// through their drivers, runs the IPTV check (diagnostics/iptv) on the
// channel, and judges the results and facts with verdict.Evaluate.
func (sd siteDevices) diagnose(ctx context.Context) (diagnosis, error) {
	facts := map[string]string{}
	var results []diagnostics.Result
	if sd.Gateway != nil {
		if err := diagrun.GatewayIPTVFacts(ctx, sd.Gateway, sd.STBPort, facts); err != nil {
			return diagnosis{}, err
		}
	}
	if sd.STB != nil {
		res, err := diagrun.STBEvidence(ctx, sd.STB, sd.StreamWindow, facts)
		if err != nil {
			return diagnosis{}, err
		}
		if res != nil {
			results = append(results, *res)
		}
	}
	if sd.XT2 != nil {
		if err := diagrun.XT2Facts(ctx, sd.XT2, facts); err != nil {
			return diagnosis{}, err
		}
	}
	if sd.Channel != "" {
		probe := iptv.Probe(iptv.Options{Interface: sd.Interface, Duration: 2 * time.Second, JoinTimeout: 2 * time.Second, Interval: 500 * time.Millisecond})
		results = append(results, diagnostics.Run(ctx, "iptv", probe, sd.Channel, 20*time.Second, nil, nil))
	}
	return diagnosis{Results: results, Facts: facts, Report: verdict.Evaluate(verdict.ProfileFor("gpon", 300, 30), results, facts)}, nil
}

// setupIPTV installs IPTV as fieldagent does (installIPTV) on a labtest
// site.
func setupIPTV(ctx context.Context, t *testing.T, l *labtest.Lab) siteDevices {
	t.Helper()
	gw, stb := l.Gateway(ctx, t), l.STB(ctx, t)
	if err := installIPTV(ctx, l.Site, gw, stb); err != nil {
		t.Fatal(err)
	}
	return siteDevices{Gateway: gw, STB: stb, STBPort: testlab.STBPort, StreamWindow: 400 * time.Millisecond}
}

// installIPTV installs IPTV as fieldagent does: the gateway's IPTV WAN on
// LAN4 with IGMP snooping and proxy, the set-top box's account, and waits
// for the box to authenticate.
func installIPTV(ctx context.Context, site *testlab.Site, gw *e8.Driver, stb *itv.Driver) error {
	if _, err := gw.ConfigureIPTV(ctx, drivers.IPTVConfig{VLAN: 45, LANPorts: []int{testlab.STBPort}, IGMPSnooping: true, IGMPProxy: true}); err != nil {
		return err
	}
	stb.PollInterval = 20 * time.Millisecond
	acct := drivers.STBAccount{UserID: testlab.SampleIPTVAccount, Password: site.Credentials.IPTVPassword, AuthURL: site.EPGURL}
	if _, err := stb.ConfigureAccount(ctx, acct); err != nil {
		return err
	}
	_, err := stb.WaitAuthenticated(ctx)
	return err
}

// setupXT2 installs the XT-2 as fieldagent does: routed PPPoE internet
// with NAT, then the BBMS binding.
func setupXT2(ctx context.Context, t *testing.T, l *labtest.Lab) siteDevices {
	t.Helper()
	d := l.XT2(ctx, t)
	if _, err := d.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: testlab.SampleXT2PPPoEUser, Password: l.Site.Credentials.XT2PPPoEPassword}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.BindBBMS(ctx, testlab.SampleBBMSCustomer); err != nil {
		t.Fatal(err)
	}
	return siteDevices{XT2: d}
}

// TestServiceFaultsAreFound is issue 7's acceptance test for the service
// faults: on a healthy site fieldagent's diagnosis finds nothing; with the
// fault injected it reports the catalogued finding (and the symptoms the
// fault causes); with the fault cleared the site is healthy again.
// multicast_loss needs multicast and runs in TestMulticastLossIsFound.
func TestServiceFaultsAreFound(t *testing.T) {
	iptvSite := testlab.Config{STB: true, Gateway: testlab.GatewayInstalled}
	xt2Site := testlab.Config{NoGateway: true, XT2: true}
	tests := []struct {
		id    string
		cfg   testlab.Config
		setup func(context.Context, *testing.T, *labtest.Lab) siteDevices
		// also are findings the fault's symptoms add beside its own.
		also []verdict.Code
	}{
		{"iptv_vlan_not_bound", iptvSite, setupIPTV, []verdict.Code{verdict.CodeIPTVNoStream}},
		{"igmp_snooping_off", iptvSite, setupIPTV, nil},
		{"stb_account_wrong", iptvSite, setupIPTV, nil},
		{"xt2_not_bound_bbms", xt2Site, setupXT2, nil},
		{"xt2_nat_missing", xt2Site, setupXT2, nil},
		{"xt2_pppoe_wrong_password", xt2Site, setupXT2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			f := fault(t, tc.id)
			l := labtest.Start(t, tc.cfg)
			ctx := labtest.Ctx(t, 90*time.Second)
			sd := tc.setup(ctx, t, l)

			healthy := func(when string) {
				t.Helper()
				d, err := sd.diagnose(ctx)
				if err != nil {
					t.Fatalf("%s: diagnosis: %v", when, err)
				}
				if len(d.Report.Findings) != 0 {
					t.Fatalf("%s: findings %v on a healthy site:\n%s", when, d.codes(), d)
				}
			}
			healthy("before the fault")

			if err := l.Site.InjectFault(tc.id); err != nil {
				t.Fatal(err)
			}
			d, err := sd.diagnose(ctx)
			if err != nil {
				t.Fatalf("diagnosis with the fault: %v", err)
			}
			want := append([]verdict.Code{f.Finding}, tc.also...)
			got := d.codes()
			for _, c := range want {
				if !slices.Contains(got, c) {
					t.Errorf("with %s the diagnosis found %v, want %s among them:\n%s", tc.id, got, c, d)
				}
			}
			for _, c := range got {
				if !slices.Contains(want, c) {
					t.Errorf("with %s the diagnosis also found %s, which the fault does not explain:\n%s", tc.id, c, d)
				}
			}

			if err := l.Site.ClearFault(tc.id); err != nil {
				t.Fatal(err)
			}
			if a := l.Site.ActiveFaults(); len(a) != 0 {
				t.Errorf("active faults after the clear: %v", a)
			}
			healthy("after the clear")
			if err := l.Site.Err(); err != nil {
				t.Errorf("site error: %v", err)
			}
		})
	}
}

// fault returns the catalogue entry id.
func fault(t *testing.T, id string) testlab.Fault {
	t.Helper()
	for _, f := range testlab.Faults() {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no fault %s in the catalogue", id)
	return testlab.Fault{}
}

// TestServiceFaultCatalogue: every service fault is catalogued once with
// all its text, on a device the site can run.
func TestServiceFaultCatalogue(t *testing.T) {
	seen := map[string]int{}
	for _, f := range testlab.Faults() {
		seen[f.ID]++
	}
	for _, id := range serviceFaultIDs {
		t.Run(id, func(t *testing.T) {
			if seen[id] != 1 {
				t.Fatalf("%s is catalogued %d times, want once", id, seen[id])
			}
			f := fault(t, id)
			for name, v := range map[string]string{
				"Title": f.Title, "TitleZH": f.TitleZH, "Where": f.Where, "Fix": f.Fix, "FixZH": f.FixZH, "Finding": string(f.Finding),
			} {
				if strings.TrimSpace(v) == "" {
					t.Errorf("%s is empty", name)
				}
			}
			want := "itv"
			if strings.HasPrefix(id, "xt2_") {
				want = "xt2"
			}
			if f.Device != want {
				t.Errorf("Device = %q, want %q", f.Device, want)
			}
		})
	}
}

// TestServiceFaultNotApplicable: a fault on a site without its device, or
// with the device not in the state the fault breaks, is refused with
// ErrFaultNotApplicable, and nothing is recorded as active.
func TestServiceFaultNotApplicable(t *testing.T) {
	stbOnly := labtest.Start(t, testlab.Config{STB: true, Gateway: testlab.GatewayInstalled})
	factoryXT2 := labtest.Start(t, testlab.Config{NoGateway: true, XT2: true})
	for _, tc := range []struct {
		name, id string
		site     *testlab.Site
		want     string
	}{
		{"XT-2 fault without an XT-2", "xt2_nat_missing", stbOnly.Site, "needs the xt2"},
		{"BBMS fault without an XT-2", "xt2_not_bound_bbms", stbOnly.Site, "needs the xt2"},
		{"PPPoE fault without an XT-2", "xt2_pppoe_wrong_password", stbOnly.Site, "needs the xt2"},
		{"set-top box fault without one", "stb_account_wrong", factoryXT2.Site, "needs the itv"},
		{"no IPTV WAN to unbind", "iptv_vlan_not_bound", stbOnly.Site, "no IPTV WAN"},
		{"no IPTV WAN for IGMP", "igmp_snooping_off", stbOnly.Site, "no IPTV WAN"},
		{"no head-end", "multicast_loss", stbOnly.Site, "no iTV head-end"},
		{"factory XT-2 has no NAT to remove", "xt2_nat_missing", factoryXT2.Site, "configure routed internet"},
		{"factory XT-2 is not bound", "xt2_not_bound_bbms", factoryXT2.Site, "bind it first"},
		{"factory XT-2 has no password", "xt2_pppoe_wrong_password", factoryXT2.Site, "configure routed internet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.site.InjectFault(tc.id)
			if !errors.Is(err, testlab.ErrFaultNotApplicable) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrFaultNotApplicable saying %q", err, tc.want)
			}
			if slices.Contains(tc.site.ActiveFaults(), tc.id) {
				t.Errorf("%s recorded as active after a refused injection", tc.id)
			}
		})
	}
}

// TestSTBAccountWrongOnFreshBox: on a set-top box nobody configured the
// fault gives it the sample account with a wrong password (the EPG refuses
// it), and clearing leaves it unconfigured again.
func TestSTBAccountWrongOnFreshBox(t *testing.T) {
	l := labtest.Start(t, testlab.Config{STB: true, Gateway: testlab.GatewayInstalled})
	ctx := labtest.Ctx(t, 30*time.Second)
	sd := siteDevices{STB: l.STB(ctx, t)}
	if err := l.Site.InjectFault("stb_account_wrong"); err != nil {
		t.Fatal(err)
	}
	d, err := sd.diagnose(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.codes(); !slices.Equal(got, []verdict.Code{verdict.CodeSTBAuthFailed}) {
		t.Errorf("findings %v, want IPTV_STB_AUTH_FAILED:\n%s", got, d)
	}
	if s := d.Facts[verdict.FactSTBAuthStatus]; !strings.Contains(s, "wrong password") {
		t.Errorf("stb_auth_status = %q, want the EPG's reason", s)
	}
	if err := l.Site.ClearFault("stb_account_wrong"); err != nil {
		t.Fatal(err)
	}
	if a := l.Site.STB.Account(); a.UserID != "" || !a.Password.IsZero() {
		t.Errorf("after the clear the box holds account %q", a.UserID)
	}
	if d, err = sd.diagnose(ctx); err != nil || len(d.Report.Findings) != 0 || d.Facts[verdict.FactSTBAuthStatus] != "none" {
		t.Errorf("after the clear: err %v, findings %v, stb_auth_status %q", err, d.codes(), d.Facts[verdict.FactSTBAuthStatus])
	}
}

// faultPhases is what a scenario's diagnosis saw before a fault, with it
// and after its clear: the findings and the readings by probe.name.
type faultPhases struct {
	Codes    map[string][]verdict.Code
	Readings map[string]map[string]float64
	Diag     map[string]string
}

// TestMulticastLossIsFound: with the head-end dropping packets, the IPTV
// check joining the channel on lo measures loss and the diagnosis reports
// IPTV_MULTICAST_LOSS; before the fault and after its clear it does not.
func TestMulticastLossIsFound(t *testing.T) {
	var out faultPhases
	scenarios.Run(t, "multicast_loss", nil, &out)
	for _, phase := range []string{"before", "with", "after"} {
		has := slices.Contains(out.Codes[phase], verdict.CodeIPTVMulticastLoss)
		if want := phase == "with"; has != want {
			t.Errorf("%s the fault: IPTV_MULTICAST_LOSS %v, want %v:\n%s", phase, has, want, out.Diag[phase])
		}
	}
	if mlr := out.Readings["with"]["iptv.iptv_mlr"]; mlr <= 0 {
		t.Errorf("MLR with the fault = %v, want > 0", mlr)
	}
}

// TestUnboundPortSeenByTheIPTVCheck: with LAN4 unbound from the IPTV WAN,
// the IPTV check joining at the set-top box's port gets no packets (the
// gateway no longer forwards the head-end's channel there), and the
// diagnosis reports the missing binding and the lost stream; before the
// fault and after its clear the check receives the channel.
func TestUnboundPortSeenByTheIPTVCheck(t *testing.T) {
	var out faultPhases
	scenarios.Run(t, "iptv_vlan_not_bound", nil, &out)
	for _, phase := range []string{"before", "with", "after"} {
		with := phase == "with"
		for _, c := range []verdict.Code{verdict.CodeIPTVPortNotBound, verdict.CodeIPTVNoStream} {
			if has := slices.Contains(out.Codes[phase], c); has != with {
				t.Errorf("%s the fault: %s %v, want %v:\n%s", phase, c, has, with, out.Diag[phase])
			}
		}
		for _, r := range []string{"iptv.iptv_packets", "stb.iptv_packets"} {
			if n := out.Readings[phase][r]; (n > 0) == with {
				t.Errorf("%s the fault: %s = %v", phase, r, n)
			}
		}
	}
}

// scenarioSite starts an ACS and a site on it, as labtest does, for a
// scenario (which has no testing.TB); stop undoes both.
func scenarioSite(ctx context.Context, cfg testlab.Config) (site *testlab.Site, a *acs.Server, stop func(), err error) {
	a = acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return labtest.CRUser, secret.New(labtest.CRPassword) }})
	srv := httptest.NewUnstartedServer(a)
	srv.Config.ConnState = a.ConnState
	srv.Start()
	cfg.ACSURL, cfg.ConnReqUsername, cfg.ConnReqPassword = srv.URL+"/", labtest.CRUser, secret.New(labtest.CRPassword)
	if site, err = testlab.Start(ctx, cfg); err != nil {
		srv.Close()
		return nil, nil, nil, err
	}
	return site, a, func() { site.Close(); srv.Close() }, nil
}

// openTR069 opens the driver of the device with serial through the
// catalogue, as fieldagent does.
func openTR069(ctx context.Context, a *acs.Server, serial string) (drivers.Identifier, error) {
	d, err := a.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == serial })
	if err != nil {
		return nil, fmt.Errorf("no Inform from %s: %w", serial, err)
	}
	drv, _, err := catalog.OpenTR069(ctx, catalog.New(catalog.Options{ACS: a, PollInterval: 20 * time.Millisecond}), d)
	return drv, err
}

// phases diagnoses sd before id is injected, with it and after its clear.
func phases(ctx context.Context, site *testlab.Site, sd siteDevices, id string) (faultPhases, error) {
	out := faultPhases{Codes: map[string][]verdict.Code{}, Readings: map[string]map[string]float64{}, Diag: map[string]string{}}
	for _, phase := range []string{"before", "with", "after"} {
		var err error
		switch phase {
		case "with":
			err = site.InjectFault(id)
		case "after":
			err = site.ClearFault(id)
		}
		if err != nil {
			return out, err
		}
		d, err := sd.diagnose(ctx)
		if err != nil {
			return out, err
		}
		out.Codes[phase], out.Diag[phase] = d.codes(), d.String()
		out.Readings[phase] = map[string]float64{}
		for _, r := range d.Results {
			for _, rd := range r.Readings {
				out.Readings[phase][r.Probe+"."+rd.Name] = rd.Value
			}
		}
	}
	return out, nil
}

// multicastLossScenario runs a site with its head-end on env's interface
// (no gateway: the channel reaches the check directly) and diagnoses it
// around multicast_loss.
func multicastLossScenario(ctx context.Context, env mcasttest.Env, _ json.RawMessage) (any, error) {
	site, _, stop, err := scenarioSite(ctx, testlab.Config{NoGateway: true, STB: true, Multicast: env.Interface})
	if err != nil {
		return nil, err
	}
	defer stop()
	return phases(ctx, site, siteDevices{Channel: site.Channel, Interface: env.Interface}, "multicast_loss")
}

// unboundProbeScenario runs an installed IPTV site with its head-end
// behind the gateway and diagnoses it around iptv_vlan_not_bound, with the
// IPTV check joining the channel at the set-top box's port.
func unboundProbeScenario(ctx context.Context, env mcasttest.Env, _ json.RawMessage) (any, error) {
	site, a, stop, err := scenarioSite(ctx, testlab.Config{STB: true, Gateway: testlab.GatewayInstalled, Multicast: env.Interface})
	if err != nil {
		return nil, err
	}
	defer stop()
	gwd, err := openTR069(ctx, a, testlab.SampleGatewaySN)
	if err != nil {
		return nil, err
	}
	stbd, err := openTR069(ctx, a, testlab.SampleSTBSN)
	if err != nil {
		return nil, err
	}
	gw, ok1 := gwd.(*e8.Driver)
	stb, ok2 := stbd.(*itv.Driver)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("drivers %T and %T, want e8 and itv", gwd, stbd)
	}
	if err := installIPTV(ctx, site, gw, stb); err != nil {
		return nil, err
	}
	sd := siteDevices{Gateway: gw, STB: stb, STBPort: testlab.STBPort, StreamWindow: 400 * time.Millisecond, Channel: site.Channel, Interface: env.Interface}
	return phases(ctx, site, sd, "iptv_vlan_not_bound")
}
