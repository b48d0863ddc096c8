package testlab_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/snmp"
	"fieldagent/drivers/sshcli"
	"fieldagent/drivers/xt2"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
)

func e8Driver(t *testing.T, a *acs.Server) *e8.Driver {
	t.Helper()
	d := waitDevice(t, a, testlab.SampleGatewaySN)
	drv := e8.New(a, d.ID)
	drv.PollInterval = 20 * time.Millisecond
	return drv
}

// The default gateway is factory-fresh, as before gateway states existed.
func TestGatewayFactory(t *testing.T) {
	a, site := startSite(t, testlab.Config{})
	waitDevice(t, a, testlab.SampleGatewaySN)
	tr := site.Gateway.Tree()
	if v := tr.Value(e8.WANConnDev + "WANPPPConnectionNumberOfEntries"); v != "0" {
		t.Errorf("WANPPPConnectionNumberOfEntries = %q, want 0", v)
	}
	if v := tr.Value(e8.UserInfo + "UserName"); v != "" {
		t.Errorf("LOID %q on a factory gateway", v)
	}
	if site.STB != nil || site.XT2 != nil || site.EPGURL != "" || site.BBMS != nil {
		t.Error("optional devices started without being asked for")
	}
}

// An installed gateway registers and dials on its own; the driver finds
// the WAN it would have made and the LOID already registered.
func TestGatewayInstalled(t *testing.T) {
	a, site := startSite(t, testlab.Config{Gateway: testlab.GatewayInstalled})
	drv := e8Driver(t, a)
	ctx := ctxT(t)
	st, err := drv.WaitWANUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ip := site.Operator.Sessions()[testlab.SamplePPPoEUser]; ip == "" || st.ExternalIP != ip {
		t.Errorf("WAN address %q, BRAS session address %q", st.ExternalIP, ip)
	}
	if st.ConnectionType != "IP_Routed" || !st.NAT || st.ServiceList != "INTERNET" {
		t.Errorf("WAN %+v, want routed INTERNET with NAT", st)
	}
	if sn, ok := site.Operator.BoundSerial(site.Credentials.LOID.Reveal()); !ok || sn != testlab.SampleGatewaySN {
		t.Errorf("ITMS binds the LOID to %q (%v), want %s", sn, ok, testlab.SampleGatewaySN)
	}
	o := site.SampleOrders[testlab.SampleMoveOrderID]
	r, undo, err := drv.RegisterLOID(ctx, o.LOID.LOID.Reveal(), o.LOID.Password.Reveal())
	if err != nil || r.Outcome != drivers.LOIDAlreadyRegistered || undo != nil {
		t.Errorf("RegisterLOID = %+v, %v; want already registered", r, err)
	}
}

// A gateway with the PPPoE fault is rejected by the BRAS until the order's
// true account is configured again; the repair reuses the INTERNET WAN.
func TestGatewayFaultPPPoE(t *testing.T) {
	a, site := startSite(t, testlab.Config{Gateway: testlab.GatewayFaultPPPoE})
	drv := e8Driver(t, a)
	ctx := ctxT(t)
	st, err := drv.WaitWANUp(ctx)
	if !errors.Is(err, drivers.ErrPPPoEAuth) || st.LastError != "ERROR_AUTHENTICATION_FAILURE" || st.Up() {
		t.Fatalf("WAN %+v, err %v; want rejected with ERROR_AUTHENTICATION_FAILURE", st, err)
	}
	if _, up := site.Operator.Sessions()[testlab.SamplePPPoEUser]; up {
		t.Error("the BRAS has a session for the faulty gateway")
	}
	// The LOID is fine: only the account is wrong.
	if v := site.Gateway.Tree().Value(e8.UserInfo + "Status"); v != e8.LOIDStatusRegistered {
		t.Errorf("LOID status %q, want registered", v)
	}

	o := site.SampleOrders[testlab.SampleRepairOrderID]
	if _, err := drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: o.PPPoE.Username, Password: o.PPPoE.Password}); err != nil {
		t.Fatal(err)
	}
	st, err = drv.WaitWANUp(ctx)
	if err != nil || st.ExternalIP != site.Operator.Sessions()[testlab.SamplePPPoEUser] {
		t.Fatalf("after the repair WAN %+v, err %v", st, err)
	}
	wans, err := drv.WANConnections(ctx)
	if err != nil || len(wans) != 1 || wans[0].Instance != st.Instance {
		t.Errorf("WAN connections %+v (%v), want the one repaired", wans, err)
	}
}

// The set-top box informs with the site's ACS credentials, and an account
// configured by the driver with the site's EPGURL authenticates.
func TestSTB(t *testing.T) {
	a, site := startSite(t, testlab.Config{STB: true, ACSUsername: cpeUser, ACSPassword: secret.New("cpe-pass")})
	d := waitDevice(t, a, testlab.SampleSTBSN)
	if d.AuthUsername != cpeUser {
		t.Errorf("the box authenticated to the ACS as %q, want %q", d.AuthUsername, cpeUser)
	}
	waitDevice(t, a, testlab.SampleGatewaySN)
	if site.STB == nil || site.EPG == nil || !strings.HasPrefix(site.EPGURL, "http://127.0.0.1:") {
		t.Fatalf("STB %v EPG %v EPGURL %q", site.STB, site.EPG, site.EPGURL)
	}
	drv := itv.New(a, d.ID)
	drv.PollInterval = 20 * time.Millisecond
	ctx := ctxT(t)
	o := site.SampleOrders[testlab.SampleITVOrderID]
	for _, tc := range []struct {
		name     string
		password secret.Secret
		ok       bool
	}{
		{"wrong password", secret.New("not-" + o.IPTV.Password.Reveal()), false},
		{"order's account", o.IPTV.Password, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := drivers.STBAccount{UserID: o.IPTV.Account, Password: tc.password, AuthURL: site.EPGURL, Mode: itv.ModeDHCP}
			if _, err := drv.ConfigureAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
			st, err := drv.WaitAuthenticated(ctx)
			if tc.ok && (err != nil || !st.Authenticated) {
				t.Errorf("auth %+v, %v; want authenticated", st, err)
			}
			if !tc.ok && !errors.Is(err, drivers.ErrIPTVAuth) {
				t.Errorf("auth %+v, %v; want ErrIPTVAuth", st, err)
			}
		})
	}
}

// An XT-2-only site: the driver opens the router with Site.XT2Access,
// dials the XT-2 order's account at the site's BRAS and binds its BBMS
// customer.
func TestXT2(t *testing.T) {
	_, site := startSite(t, testlab.Config{NoGateway: true, XT2: true})
	if site.Gateway != nil {
		t.Fatal("NoGateway site has a gateway")
	}
	acc := site.XT2Access
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(acc.KnownHostsLine()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	d, err := xt2.Open(ctx, xt2.Config{
		SSH:           sshcli.Config{Addr: acc.SSHAddr, User: acc.Username, Password: acc.Password, KnownHostsFile: kh},
		SNMP:          snmp.Target{Addr: acc.SNMPAddr, Version: snmp.V2c, Community: acc.SNMPCommunity, Timeout: time.Second, Retries: 2},
		PollInterval:  20 * time.Millisecond,
		VerifyTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	id, err := d.Identify(ctx)
	if err != nil || id.Serial != testlab.SampleXT2SN {
		t.Errorf("Identify = %+v, %v; want serial %s", id, err, testlab.SampleXT2SN)
	}

	o := site.SampleOrders[testlab.SampleXT2OrderID]
	if _, err := d.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: o.PPPoE.Username, Password: o.PPPoE.Password}); err != nil {
		t.Fatal(err)
	}
	b, _, err := d.BindBBMS(ctx, o.BBMSCustomerID)
	if err != nil || !b.Bound || b.Customer != testlab.SampleBBMSCustomer {
		t.Fatalf("BindBBMS = %+v, %v", b, err)
	}
	w, err := d.WANStatus(ctx)
	if ip := site.Operator.Sessions()[testlab.SampleXT2PPPoEUser]; err != nil || !w.Up() || ip == "" || w.ExternalIP != ip {
		t.Errorf("WAN %+v (%v), BRAS session address %q", w, err, ip)
	}
	if c, ok := site.BBMS.Binding(testlab.SampleXT2SN); !ok || c != testlab.SampleBBMSCustomer {
		t.Errorf("BBMS binds %s to %q (%v), want %s", testlab.SampleXT2SN, c, ok, testlab.SampleBBMSCustomer)
	}
	if st := site.XT2.State(); st.PPP != "UP" || !st.BBMSBound {
		t.Errorf("router state %+v", st)
	}
}
