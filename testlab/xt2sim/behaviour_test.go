package xt2sim

import (
	"log/slog"
	"strings"
	"testing"
)

// configureInternet types the routed-internet change of docs/xt2-cli.md
// with the PPPoE account user/password, and commits it.
func configureInternet(tm *term, user, password string, extra ...string) {
	lines := []struct{ line, prompt string }{
		{"system-view", "[XT2]"},
		{"acl number 3000", "[XT2-acl-adv-3000]"},
		{"rule 5 permit source 192.168.1.0 0.0.0.255", "[XT2-acl-adv-3000]"},
		{"quit", "[XT2]"},
		{"interface Dialer1", "[XT2-Dialer1]"},
		{"link-protocol ppp", "[XT2-Dialer1]"},
		{"dialer user " + user, "[XT2-Dialer1]"},
		{"ppp chap user " + user, "[XT2-Dialer1]"},
		{"ppp chap password cipher " + password, "[XT2-Dialer1]"},
		{"ip address ppp-negotiate", "[XT2-Dialer1]"},
		{"dialer bundle 1", "[XT2-Dialer1]"},
		{"nat outbound 3000", "[XT2-Dialer1]"},
		{"quit", "[XT2]"},
		{"interface GigabitEthernet0/0/0", "[XT2-GigabitEthernet0/0/0]"},
		{"pppoe-client dial-bundle-number 1", "[XT2-GigabitEthernet0/0/0]"},
		{"quit", "[XT2]"},
		{"ip route-static 0.0.0.0 0.0.0.0 Dialer1", "[XT2]"},
		{"ip pool lan", "[XT2-ip-pool-lan]"},
		{"gateway-list 192.168.1.1", "[XT2-ip-pool-lan]"},
		{"network 192.168.1.0 mask 255.255.255.0", "[XT2-ip-pool-lan]"},
		{"dns-list 100.64.0.53", "[XT2-ip-pool-lan]"},
		{"quit", "[XT2]"},
	}
	for _, l := range lines {
		tm.cmd(l.line, l.prompt)
	}
	for _, l := range extra {
		tm.cmd(l, "[XT2]")
	}
	tm.cmd("commit", "[XT2]")
}

func TestPPPoEDial(t *testing.T) {
	tests := []struct {
		name      string
		password  string
		wantState string
		wantError string
		wantLine  string
	}{
		{"right account", pppPassword, PPPUp, "", "Last error: none"},
		{"wrong password", "wrong-pass", PPPIdle, "691", "Last error: 691 authentication failure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t, nil)
			tm := dialTerm(t, l.r)
			configureInternet(tm, pppUser, tc.password)
			st := l.r.State()
			if st.PPP != tc.wantState || st.LastError != tc.wantError {
				t.Fatalf("state %+v, want PPP %s, last error %q", st, tc.wantState, tc.wantError)
			}
			out := tm.cmd("display pppoe-client session summary", "[XT2]")
			if !strings.Contains(out, tc.wantLine) || !strings.Contains(out, " "+tc.wantState+"\r\n") {
				t.Fatalf("display pppoe-client session summary:\n%s", out)
			}
			if strings.Contains(l.r.Running(), tc.password) {
				t.Fatalf("running config shows the password in clear:\n%s", l.r.Running())
			}
			if tc.wantState != PPPUp {
				return
			}
			if !strings.HasPrefix(st.Address, "100.64.") || l.op.Sessions()[pppUser] != st.Address {
				t.Fatalf("address %q, BRAS sessions %v", st.Address, l.op.Sessions())
			}
			ipb := tm.cmd("display ip interface brief", "[XT2]")
			if !strings.Contains(ipb, "Dialer1                   "+st.Address+"/32") {
				t.Fatalf("display ip interface brief:\n%s", ipb)
			}

			// Unplugging the WAN cable drops the session; plugging it in
			// dials again.
			l.r.SetWANLink(false)
			if st := l.r.State(); st.PPP != PPPIdle || st.WANUp {
				t.Fatalf("after unplug: %+v", st)
			}
			if out := tm.cmd("display interface GigabitEthernet0/0/0", "[XT2]"); !strings.Contains(out, "current state : DOWN") {
				t.Fatalf("display interface after unplug:\n%s", out)
			}
			l.r.SetWANLink(true)
			if st := l.r.State(); st.PPP != PPPUp {
				t.Fatalf("after replug: %+v", st)
			}
		})
	}
}

func TestNoBRAS(t *testing.T) {
	l := startLab(t, func(c *Config) { c.BRASURL = "" })
	tm := dialTerm(t, l.r)
	configureInternet(tm, pppUser, pppPassword)
	if st := l.r.State(); st.PPP != PPPPADI {
		t.Fatalf("state %+v, want PADI", st)
	}
}

func TestBBMSBinding(t *testing.T) {
	tests := []struct {
		name     string
		customer string
		password string
		want     string
		bound    bool
	}{
		{"bound", customerID, pppPassword, "BBMS binding: bound, customer 88001234, serial XT2A1B2C3D4\r\n", true},
		{"unknown customer", "77000000", pppPassword, "BBMS binding: unbound\r\nLast error: BBMS refused (HTTP 404)", false},
		{"wan down", customerID, "wrong", "BBMS binding: unbound\r\nLast error: WAN is down", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t, nil)
			tm := dialTerm(t, l.r)
			configureInternet(tm, pppUser, tc.password, "bbms bind customer "+tc.customer)
			out := tm.cmd("display bbms binding", "[XT2]")
			if !strings.HasPrefix(out, tc.want) {
				t.Fatalf("display bbms binding:\n%q\nwant prefix %q", out, tc.want)
			}
			cust, ok := l.bbms.Binding(l.r.Serial())
			if ok != tc.bound || (ok && cust != tc.customer) {
				t.Fatalf("BBMS has %q, %v", cust, ok)
			}
			if st := l.r.State(); st.BBMSBound != tc.bound {
				t.Fatalf("state %+v", st)
			}
		})
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	var buf syncBuffer
	buf.cond = make(chan struct{}, 1)
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := startLab(t, func(c *Config) { c.Logger = logger })
	tm := dialTerm(t, l.r)
	configureInternet(tm, pppUser, pppPassword, "bbms bind customer "+customerID)
	tm.cmd("interface Dialer1", "[XT2-Dialer1]")
	tm.cmd("ppp pap local-user "+pppUser+" password cipher "+pppPassword, "[XT2-Dialer1]")
	tm.cmd("commit", "[XT2-Dialer1]")
	logs := buf.String()
	if !strings.Contains(logs, "pppoe session up") || !strings.Contains(logs, "cipher ******") {
		t.Fatalf("expected log lines missing:\n%s", logs)
	}
	for _, s := range []string{pppPassword, testPassword, v3Auth, v3Priv, community} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret appears in the log:\n%s", logs)
		}
	}
}
