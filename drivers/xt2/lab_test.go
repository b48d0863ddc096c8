package xt2

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/snmp"
	"fieldagent/drivers/sshcli"
	"fieldagent/testlab/bbms"
	"fieldagent/testlab/operator"
	"fieldagent/testlab/xt2sim"
)

// Lab credentials.
const (
	labUser     = "admin"
	labPassword = "Admin@123"
	pppUser     = "biz0755001"
	pppPassword = "ppp-Secret-9"
	customerID  = "88001234"
	community   = "lab-community"
	v3User      = "fieldagent"
	v3Auth      = "auth-pass-123"
	v3Priv      = "priv-pass-456"
)

// lab is a simulated XT-2 with its BRAS and BBMS.
type lab struct {
	r          *xt2sim.Router
	op         *operator.Server
	bbms       *bbms.Server
	knownHosts string
}

func startLab(tb testing.TB) *lab {
	tb.Helper()
	op := operator.New(secret.New("op-token"), nil)
	op.AddPPPoEAccount(pppUser, secret.New(pppPassword))
	opSrv := httptest.NewServer(op)
	tb.Cleanup(opSrv.Close)
	bb := bbms.New(secret.New("bbms-token"), nil)
	bb.AddCustomer(customerID)
	bbSrv := httptest.NewServer(bb)
	tb.Cleanup(bbSrv.Close)
	r, err := xt2sim.Start(tb.Context(), xt2sim.Config{
		Users:         map[string]secret.Secret{labUser: secret.New(labPassword)},
		SNMPCommunity: secret.New(community),
		SNMPv3User:    v3User, SNMPv3AuthKey: secret.New(v3Auth), SNMPv3PrivKey: secret.New(v3Priv),
		BRASURL: opSrv.URL, BRASToken: secret.New("op-token"),
		BBMSURL: bbSrv.URL, BBMSToken: secret.New("bbms-token"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	kh := filepath.Join(tb.TempDir(), "known_hosts")
	writeKnownHosts(tb, kh, r.SSHAddr(), r.HostKey())
	return &lab{r: r, op: op, bbms: bb, knownHosts: kh}
}

func writeKnownHosts(tb testing.TB, file, addr string, key ssh.PublicKey) {
	tb.Helper()
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// config returns a driver Config for the lab; v3 selects SNMPv3.
func (l *lab) config(v3 bool, transcript *syncBuffer) Config {
	t := snmp.Target{Addr: l.r.SNMPAddr(), Version: snmp.V2c, Community: secret.New(community), Timeout: time.Second, Retries: 2}
	if v3 {
		t = snmp.Target{Addr: l.r.SNMPAddr(), Version: snmp.V3, User: v3User, AuthKey: secret.New(v3Auth), PrivKey: secret.New(v3Priv), Timeout: time.Second, Retries: 2}
	}
	c := Config{
		SSH: sshcli.Config{
			Addr: l.r.SSHAddr(), User: labUser, Password: secret.New(labPassword),
			KnownHostsFile: l.knownHosts,
		},
		SNMP:          t,
		PollInterval:  20 * time.Millisecond,
		VerifyTimeout: 10 * time.Second,
	}
	if transcript != nil {
		c.Transcript = transcript
	}
	return c
}

func (l *lab) open(tb testing.TB, v3 bool, transcript *syncBuffer) *Driver {
	tb.Helper()
	d, err := Open(tb.Context(), l.config(v3, transcript))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

// syncBuffer is a transcript sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(tb.Context(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

func internet(password string) InternetConfig {
	return InternetConfig{
		PPPoE: drivers.PPPoEConfig{Username: pppUser, Password: secret.New(password)},
		DNS:   []netip.Addr{netip.MustParseAddr("100.64.0.53")},
	}
}

// provision is the XT-2 rubric: identify, line test, routed internet,
// BBMS binding, save.
func provision(ctx context.Context, d *Driver) ([]drivers.Undo, error) {
	if _, err := d.Identify(ctx); err != nil {
		return nil, err
	}
	if _, err := d.LineTest(ctx); err != nil {
		return nil, err
	}
	u1, err := d.ConfigureInternet(ctx, internet(pppPassword))
	if err != nil {
		return nil, err
	}
	_, u2, err := d.BindBBMS(ctx, customerID)
	if err != nil {
		return []drivers.Undo{u1}, err
	}
	return []drivers.Undo{u1, u2}, d.Save(ctx)
}

func TestProvisionEndToEnd(t *testing.T) {
	l := startLab(t)
	var tr syncBuffer
	d := l.open(t, true, &tr)
	ctx := testCtx(t)
	initial := l.r.Running()

	start := time.Now()
	undos, err := provision(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lab provisioning (identify, line test, routed internet, BBMS bind, save) took %s", time.Since(start))

	run := l.r.Running()
	for _, want := range []string{"interface Dialer1", " dialer user " + pppUser, " nat outbound 3000", " pppoe-client dial-bundle-number 1",
		"ip route-static 0.0.0.0 0.0.0.0 Dialer1", " rule 5 permit source 192.168.1.0 0.0.0.255", "ip pool lan",
		" gateway-list 192.168.1.1", " network 192.168.1.0 mask 255.255.255.0", " dns-list 100.64.0.53", " bbms bind customer " + customerID} {
		if !strings.Contains(run, want) {
			t.Errorf("running configuration lacks %q:\n%s", want, run)
		}
	}
	st := l.r.State()
	if st.PPP != xt2sim.PPPUp || st.Address == "" || st.Address != l.op.Sessions()[pppUser] {
		t.Errorf("PPP state %+v, BRAS sessions %v", st, l.op.Sessions())
	}
	if c, ok := l.bbms.Binding(l.r.Serial()); !ok || c != customerID || !st.BBMSBound {
		t.Errorf("BBMS binding %q %v, router state %+v", c, ok, st)
	}
	if l.r.Startup() != run {
		t.Errorf("startup configuration was not saved")
	}
	if s := tr.String(); strings.Contains(s, pppPassword) || strings.Contains(s, labPassword) {
		t.Errorf("transcript shows a password")
	}

	w, err := d.WANStatus(ctx)
	if err != nil || !w.Up() || w.ExternalIP != st.Address || !w.NAT {
		t.Errorf("WANStatus = %+v, %v", w, err)
	}
	s, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.System.ObjectID != SysObjectIDPrefix || s.PPP.State != "up" || s.PPP.Address != st.Address || !s.BBMS.Bound || s.BBMS.Customer != customerID {
		t.Errorf("Status = %+v", s)
	}
	if len(s.Interfaces) != 6 || s.Interfaces[0].OperStatus != "up" || s.Interfaces[0].HighSpeedMbps != 1000 || s.Interfaces[5].OperStatus != "up" {
		t.Errorf("Status interfaces = %+v", s.Interfaces)
	}
	cs, err := d.CLIStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Interfaces) != 6 || cs.PPPState != "UP" || !cs.BBMS.Bound || cs.Interfaces[5].Name != "Dialer1" || !strings.HasPrefix(cs.Interfaces[5].Address, st.Address) {
		t.Errorf("CLIStatus = %+v", cs)
	}
	lt, err := d.LineTest(ctx)
	if err != nil || !lt.OK() || lt.PPPState != "UP" || lt.SpeedMbps != 1000 || lt.IfOperStatus != "up" || lt.IfHighSpeedMbps != 1000 {
		t.Errorf("LineTest = %+v, %v", lt, err)
	}

	// The Undos put the router back as it began, in reverse order.
	for i := len(undos) - 1; i >= 0; i-- {
		if err := undos[i](ctx); err != nil {
			t.Fatalf("undo %d: %v", i, err)
		}
	}
	if got := l.r.Running(); got != initial {
		t.Errorf("after undo the running configuration is\n%s\nwant\n%s", got, initial)
	}
}

func TestWrongPPPoEPassword(t *testing.T) {
	l := startLab(t)
	d := l.open(t, false, nil)
	ctx := testCtx(t)
	initial := l.r.Running()
	undo, err := d.ConfigureInternet(ctx, internet("wrong-password"))
	if !errors.Is(err, drivers.ErrPPPoEAuth) || undo != nil {
		t.Fatalf("err = %v, want ErrPPPoEAuth", err)
	}
	var re *drivers.RestoreError
	if !errors.As(err, &re) || !re.Restored() {
		t.Fatalf("err = %v, want a restored RestoreError", err)
	}
	if !strings.Contains(err.Error(), "check the account and password") || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("error message %q", err)
	}
	if got := l.r.Running(); got != initial {
		t.Errorf("running configuration changed:\n%s\nwant\n%s", got, initial)
	}
	lt, err := d.LineTest(ctx)
	if err != nil || lt.OK() || !strings.Contains(lt.PPPLastError, "691") {
		t.Errorf("LineTest after 691 = %+v, %v", lt, err)
	}
}

// TestSessionCutMidway cuts the SSH connection after each command of
// ConfigureInternet in turn, before and after the commit: every time the
// driver reports the failure and the router ends as it began.
func TestSessionCutMidway(t *testing.T) {
	l := startLab(t)
	d := l.open(t, false, nil)
	ctx := testCtx(t)
	initial := l.r.Running()
	cuts, restored := 0, 0
	for n := 1; n < 60; n++ {
		l.r.DropNextSessionAfter(n)
		undo, err := d.ConfigureInternet(ctx, internet(pppPassword))
		if err == nil {
			if undo == nil {
				t.Fatal("nil Undo on success")
			}
			if err := undo(ctx); err != nil {
				t.Fatal(err)
			}
			if n <= 2 {
				// Cut during the session's setup: the driver redialled
				// and went on.
				continue
			}
			break
		}
		cuts++
		t.Logf("cut after %d commands: %v", n, err)
		var re *drivers.RestoreError
		if errors.As(err, &re) {
			if !re.Restored() {
				t.Fatalf("cut after %d commands: %v", n, err)
			}
			restored++
		}
		if got := l.r.Running(); got != initial {
			t.Fatalf("cut after %d commands (%v): running configuration is\n%s\nwant\n%s", n, err, got, initial)
		}
	}
	if cuts < 5 || restored == 0 {
		t.Fatalf("only %d cuts (%d rolled back)", cuts, restored)
	}
	t.Logf("%d cuts, %d reported as rolled back", cuts, restored)
	if got := l.r.Running(); got != initial {
		t.Errorf("after the final undo: %s", got)
	}
}

func TestHostKeyChangedRefused(t *testing.T) {
	l := startLab(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	writeKnownHosts(t, l.knownHosts, l.r.SSHAddr(), other)
	cfg := l.config(false, nil)
	cfg.SSH.TrustOnFirstUse = true
	d, err := Open(testCtx(t), cfg)
	if !errors.Is(err, sshcli.ErrHostKeyChanged) {
		if d != nil {
			_ = d.Close()
		}
		t.Fatalf("Open = %v, want ErrHostKeyChanged", err)
	}
}

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		name string
		v3   bool
	}{{"snmpv2c", false}, {"snmpv3", true}} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t)
			d := l.open(t, tc.v3, nil)
			ctx := testCtx(t)
			id, err := d.Identify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := drivers.Identity{Kind: drivers.KindXT2, Vendor: "fieldagent testlab", Model: "XT-2", Serial: xt2sim.DefaultSerial,
				Firmware: xt2sim.DefaultSoftware, Hardware: "XT-2 (4GE LAN, 1GE WAN)"}
			if id != want {
				t.Errorf("Identify = %+v, want %+v", id, want)
			}
			seen, err := d.Seen(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var reg drivers.Registry
			reg.Register(drivers.Entry{Name: "e8", Kind: drivers.KindE8, Match: drivers.Match{RootObject: "InternetGatewayDevice"}})
			reg.Register(Entry(func(context.Context, drivers.Seen) (Config, error) { return l.config(tc.v3, nil), nil }))
			dev, err := reg.Open(ctx, seen)
			if err != nil {
				t.Fatalf("registry: %v (seen %s)", err, seen)
			}
			xd, ok := dev.(*Driver)
			if !ok {
				t.Fatalf("registry built %T", dev)
			}
			defer xd.Close()
			if id2, err := xd.Identify(ctx); err != nil || id2 != want {
				t.Errorf("Identify via registry = %+v, %v", id2, err)
			}
			// The registry wants both: the sysObjectID alone is not an
			// XT-2 (another model of the lab's enterprise could share it).
			if _, err := reg.Lookup(drivers.Seen{SysObjectID: seen.SysObjectID, DisplayVersion: "Huawei VRP"}); !errors.Is(err, drivers.ErrUnknownDevice) {
				t.Errorf("Lookup with another display version = %v", err)
			}
		})
	}
}

func TestBindBBMSFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		internet bool
		customer string
		want     string
	}{
		{"wan down", false, customerID, "configure routed internet first"},
		{"unknown customer", true, "99999999", "check the customer id on the order"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t)
			d := l.open(t, false, nil)
			ctx := testCtx(t)
			if tc.internet {
				if _, err := d.ConfigureInternet(ctx, internet(pppPassword)); err != nil {
					t.Fatal(err)
				}
			}
			before := l.r.Running()
			_, undo, err := d.BindBBMS(ctx, tc.customer)
			var re *drivers.RestoreError
			if !errors.Is(err, ErrBBMS) || !errors.As(err, &re) || !re.Restored() || undo != nil {
				t.Fatalf("err = %v, want a restored ErrBBMS", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if got := l.r.Running(); got != before {
				t.Errorf("running configuration changed:\n%s", got)
			}
		})
	}
}

func TestLineTestWANDown(t *testing.T) {
	l := startLab(t)
	d := l.open(t, false, nil)
	l.r.SetWANLink(false)
	lt, err := d.LineTest(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if lt.WANUp || lt.IfOperStatus != "down" || lt.OK() || !strings.Contains(lt.Problems[0], "check the cable") {
		t.Errorf("LineTest = %+v", lt)
	}
}

func TestConfigValidation(t *testing.T) {
	l := startLab(t)
	d := l.open(t, false, nil)
	initial := l.r.Running()
	for _, tc := range []struct {
		name string
		cfg  InternetConfig
		want error
	}{
		{"bridge", InternetConfig{PPPoE: drivers.PPPoEConfig{Bridge: true}}, drivers.ErrUnsupported},
		{"vlan", InternetConfig{PPPoE: drivers.PPPoEConfig{Username: "u", Password: secret.New("p"), VLAN: 41}}, drivers.ErrUnsupported},
		{"no user", InternetConfig{PPPoE: drivers.PPPoEConfig{Password: secret.New("p")}}, ErrInvalidConfig},
		{"blank in password", InternetConfig{PPPoE: drivers.PPPoEConfig{Username: "u", Password: secret.New("a b")}}, ErrInvalidConfig},
		{"gateway outside", InternetConfig{PPPoE: drivers.PPPoEConfig{Username: "u", Password: secret.New("p")}, Gateway: netip.MustParseAddr("10.0.0.1")}, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := d.ConfigureInternet(testCtx(t), tc.cfg); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if l.r.Running() != initial {
		t.Error("a rejected config changed the router")
	}
}
