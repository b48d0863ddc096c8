package e8sim_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/operator"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cpe"
)

// preLab is one gateway behind a real ACS and operator, with a drivers/e8
// driver on it.
type preLab struct {
	gw  *e8sim.Gateway
	op  *operator.Server
	drv *e8.Driver
}

// startPre starts a gateway with pre (nil: factory-fresh) on access; the
// operator knows ad1/right and LOID1/lpw.
func startPre(t *testing.T, access string, pre *e8sim.Preinstall) *preLab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cr := secret.New("cr")
	a := acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return "u", cr }})
	as := httptest.NewServer(a)
	t.Cleanup(as.Close)
	op := operator.New(secret.New("optok"), nil)
	op.AddPPPoEAccount("ad1", secret.New("right"))
	op.AddLOID(secret.New("LOID1"), secret.New("lpw"))
	os := httptest.NewServer(op)
	t.Cleanup(os.Close)
	gw, err := e8sim.New(e8sim.Config{
		ACSURL: as.URL + "/", Vendor: "ZTE", Model: "F650", OUI: "00D0D0", ProductClass: "F650",
		Serial: "SN1", Firmware: "V1", Access: access, ConnReqUsername: "u", ConnReqPassword: cr,
		OperatorURL: os.URL, OperatorToken: secret.New("optok"), Preinstall: pre,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(acs.Device) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	drv := e8.New(a, d.ID)
	drv.PollInterval = 10 * time.Millisecond
	return &preLab{gw: gw, op: op, drv: drv}
}

// installed returns the parameters an install leaves: the WAN side and
// the LOID registration.
func installed(tr *cpe.Tree) map[string]string {
	out := map[string]string{}
	for _, p := range tr.Snapshot() {
		if strings.HasPrefix(p.Name, e8.WANDevice) || strings.HasPrefix(p.Name, e8.UserInfo) {
			out[p.Name] = p.Value
		}
	}
	return out
}

// A preinstalled gateway looks exactly like one the driver installed: same
// WAN object, same values, same LOID state, connected with the BRAS's
// address.
func TestPreinstallLooksLikeDriverInstall(t *testing.T) {
	for _, access := range []string{"gpon", "lan"} {
		t.Run(access, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			byDriver := startPre(t, access, nil)
			if _, err := byDriver.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right")}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := byDriver.drv.RegisterLOID(ctx, "LOID1", "lpw"); err != nil {
				t.Fatal(err)
			}
			if _, err := byDriver.drv.WaitWANUp(ctx); err != nil {
				t.Fatal(err)
			}

			pre := startPre(t, access, &e8sim.Preinstall{PPPoEUser: "ad1", PPPoEPassword: secret.New("right"), LOID: secret.New("LOID1"), LOIDPassword: secret.New("lpw")})
			st, err := pre.drv.WaitWANUp(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ip := pre.op.Sessions()["ad1"]; ip == "" || st.ExternalIP != ip {
				t.Errorf("WAN address %q, BRAS session %q", st.ExternalIP, ip)
			}
			if sn, ok := pre.op.BoundSerial("LOID1"); !ok || sn != "SN1" {
				t.Errorf("ITMS binding %q %v, want SN1", sn, ok)
			}
			want, got := installed(byDriver.gw.Tree()), installed(pre.gw.Tree())
			var diffs []string
			for k, v := range want {
				if w, ok := got[k]; !ok || w != v {
					diffs = append(diffs, k+": driver "+v+", preinstall "+w)
				}
			}
			for k, v := range got {
				if _, ok := want[k]; !ok {
					diffs = append(diffs, k+": only preinstalled, "+v)
				}
			}
			slices.Sort(diffs)
			for _, d := range diffs {
				t.Error(d)
			}
			if len(want) == 0 || want[e8.WANPPPTable+"1.X_CT-COM_ServiceList"] != "INTERNET" {
				t.Fatalf("the driver-installed gateway has no INTERNET WAN: %v", want)
			}
		})
	}
}

// A preinstalled WAN with a password the BRAS refuses fails with 691 and is
// repaired by ConfigurePPPoE, which reuses it.
func TestPreinstallWrongPassword(t *testing.T) {
	l := startPre(t, "gpon", &e8sim.Preinstall{PPPoEUser: "ad1", PPPoEPassword: secret.New("old"), LOID: secret.New("LOID1"), LOIDPassword: secret.New("lpw")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, _ := l.drv.WaitWANUp(ctx)
	if st.LastError != "ERROR_AUTHENTICATION_FAILURE" || st.Status != "Disconnected" {
		t.Fatalf("WAN %+v, want Disconnected with ERROR_AUTHENTICATION_FAILURE", st)
	}
	if _, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right")}); err != nil {
		t.Fatal(err)
	}
	if st, err := l.drv.WaitWANUp(ctx); err != nil || st.Instance != e8.WANPPPTable+"1." {
		t.Fatalf("after ConfigurePPPoE: %+v, %v", st, err)
	}
	if v := l.gw.Tree().Value(e8.WANConnDev + "WANPPPConnectionNumberOfEntries"); v != "1" {
		t.Errorf("WANPPPConnectionNumberOfEntries = %s, want 1 (the WAN reused)", v)
	}
}

func TestPreinstallNeedsAccount(t *testing.T) {
	_, err := e8sim.New(e8sim.Config{ACSURL: "http://127.0.0.1:1/", Serial: "SN1", OperatorURL: "http://127.0.0.1:1", Access: "gpon",
		Preinstall: &e8sim.Preinstall{LOID: secret.New("LOID1")}})
	if err == nil {
		t.Error("New accepted a Preinstall without a PPPoE account")
	}
}
