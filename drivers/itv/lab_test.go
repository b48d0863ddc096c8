package itv_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/itv"
	"fieldagent/testlab/stbsim"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

type lab struct {
	box *stbsim.Box
	drv *itv.Driver
	epg string
}

func startLab(tb testing.TB) *lab {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	cr := secret.New("cr")
	a := acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return "u", cr }})
	as := httptest.NewServer(a)
	tb.Cleanup(as.Close)
	epg := stbsim.NewEPG()
	epg.AddAccount("itv0001", secret.New("tvpw"))
	es := httptest.NewServer(epg)
	tb.Cleanup(es.Close)
	box, err := stbsim.New(stbsim.Config{
		ACSURL: as.URL + "/", Vendor: "Huawei", Model: "EC6108V9", OUI: "00E0FC", ProductClass: "EC6108V9",
		Serial: "STB1", Firmware: "V100", STBID: "0010029900E06C0000001", ConnReqUsername: "u", ConnReqPassword: cr,
	})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = box.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(acs.Device) bool { return true })
	if err != nil {
		tb.Fatal(err)
	}
	drv := itv.New(a, d.ID)
	drv.PollInterval = 5 * time.Millisecond
	return &lab{box: box, drv: drv, epg: es.URL + "/auth"}
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func TestIdentify(t *testing.T) {
	l := startLab(t)
	id, err := l.drv.Identify(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if id.Kind != drivers.KindITV || id.STBID != "0010029900E06C0000001" || id.Model != "EC6108V9" {
		t.Errorf("identity %+v", id)
	}
}

func TestAccountSetupAuthenticates(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	undo, err := l.drv.ConfigureAccount(ctx, drivers.STBAccount{UserID: "itv0001", Password: secret.New("tvpw"), AuthURL: l.epg, Mode: itv.ModeDHCPOption60})
	if err != nil {
		t.Fatal(err)
	}
	st, err := l.drv.WaitAuthenticated(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Authenticated || st.Attempts != 1 || st.Failures != 0 {
		t.Errorf("auth %+v", st)
	}
	ig, err := l.drv.IGMP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ig.Enabled || len(ig.Groups) != 1 || ig.Groups[0] != "239.3.1.1" {
		t.Errorf("IGMP %+v", ig)
	}
	ss, err := l.drv.StreamStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ss.RTPLost != 12 || ss.TSDiscontinuity != 3 || ss.RTPLossRatio() <= 0 {
		t.Errorf("stream %+v", ss)
	}
	if v := l.box.Tree().Value(itv.ServiceInfo + "DHCPID"); v != "itv0001" {
		t.Errorf("DHCPID %q", v)
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if v := l.box.Tree().Value(itv.ServiceInfo + "UserID"); v != "" {
		t.Errorf("undo left UserID %q", v)
	}
}

func TestWrongPasswordIsRefused(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	if _, err := l.drv.ConfigureAccount(ctx, drivers.STBAccount{UserID: "itv0001", Password: secret.New("nope"), AuthURL: l.epg}); err != nil {
		t.Fatal(err)
	}
	st, err := l.drv.WaitAuthenticated(ctx)
	if !errors.Is(err, drivers.ErrIPTVAuth) || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("err = %v, want ErrIPTVAuth with the EPG's reason", err)
	}
	if strings.Contains(err.Error(), "nope") {
		t.Errorf("error reveals the password: %v", err)
	}
	if st.Failures != 1 {
		t.Errorf("failures %d", st.Failures)
	}
}

func TestAccountRollsBack(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	// A value the box refuses (AuthURL longer than 256) faults the whole
	// SetParameterValues; nothing may change.
	before := l.box.Tree().Value(itv.LAN + "AddressingType")
	_, err := l.drv.ConfigureAccount(ctx, drivers.STBAccount{UserID: "itv0001", Password: secret.New("tvpw"), AuthURL: "http://" + strings.Repeat("a", 300), Mode: itv.ModePPPoE, PPPoEID: "p", PPPoEPassword: secret.New("pp")})
	var re *drivers.RestoreError
	var f *cwmp.Fault
	if !errors.As(err, &re) || !re.Restored() || !errors.As(err, &f) {
		t.Fatalf("err = %v, want a restored RestoreError with the fault", err)
	}
	if v := l.box.Tree().Value(itv.LAN + "AddressingType"); v != before {
		t.Errorf("AddressingType %q, want %q", v, before)
	}
}

func TestReboot(t *testing.T) {
	l := startLab(t)
	if err := l.drv.Reboot(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

var (
	_ drivers.Identifier    = (*itv.Driver)(nil)
	_ drivers.STBConfigurer = (*itv.Driver)(nil)
	_ drivers.Rebooter      = (*itv.Driver)(nil)
)

// Static mode writes the whole address, and a bad one is refused before
// anything reaches the box, naming the field.
func TestStaticAddressing(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	acct := drivers.STBAccount{UserID: "itv0001", Password: secret.New("tvpw"), AuthURL: l.epg, Mode: itv.ModeStatic,
		Static: &drivers.StaticIP{Address: "10.64.3.20", Mask: "255.255.255.0", Gateway: "10.64.3.1", DNS: []string{"202.96.128.86", "202.96.134.133"}}}
	if _, err := l.drv.ConfigureAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	tr := l.box.Tree()
	for name, want := range map[string]string{
		"AddressingType": "Static", "IPAddress": "10.64.3.20", "SubnetMask": "255.255.255.0",
		"DefaultGateway": "10.64.3.1", "DNSServers": "202.96.128.86,202.96.134.133",
	} {
		if got := tr.Value(itv.LAN + name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	for _, tc := range []struct {
		static *drivers.StaticIP
		want   string
	}{
		{nil, "static mode needs"},
		{&drivers.StaticIP{Address: "10.64.3.300", Mask: "255.255.255.0", Gateway: "10.64.3.1", DNS: []string{"1.1.1.1"}}, "static address"},
		{&drivers.StaticIP{Address: "10.64.3.20", Mask: "255.0.255.0", Gateway: "10.64.3.1", DNS: []string{"1.1.1.1"}}, "subnet mask"},
		{&drivers.StaticIP{Address: "10.64.3.20", Mask: "255.255.255.0", Gateway: "10.64.4.1", DNS: []string{"1.1.1.1"}}, "not on the subnet"},
		{&drivers.StaticIP{Address: "10.64.3.20", Mask: "255.255.255.0", Gateway: "10.64.3.1"}, "DNS"},
	} {
		l2 := startLab(t)
		before := l2.box.Tree().Value(itv.LAN + "AddressingType")
		a := acct
		a.AuthURL = l2.epg
		a.Static = tc.static
		_, err := l2.drv.ConfigureAccount(ctx, a)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want it to mention %q", tc.static, err, tc.want)
		}
		if v := l2.box.Tree().Value(itv.LAN + "AddressingType"); v != before {
			t.Errorf("%+v: a refused address still changed the box (%s)", tc.static, v)
		}
	}
}
