package xt2sim

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers/snmp"
)

func snmpTargets(addr string) map[string]snmp.Target {
	return map[string]snmp.Target{
		"v2c": {Addr: addr, Version: snmp.V2c, Community: secret.New(community), Timeout: 2 * time.Second, Retries: 1},
		"v3": {Addr: addr, Version: snmp.V3, User: v3User, AuthProtocol: snmp.SHA256, AuthKey: secret.New(v3Auth),
			PrivProtocol: snmp.AES, PrivKey: secret.New(v3Priv), Timeout: 2 * time.Second, Retries: 1},
	}
}

func TestSNMPWithDriver(t *testing.T) {
	l := startLab(t, nil)
	tm := dialTerm(t, l.r)
	configureInternet(tm, pppUser, pppPassword, "bbms bind customer "+customerID)
	addr := l.r.SNMPAddr()
	for name, tg := range snmpTargets(addr) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			c, err := snmp.Dial(ctx, tg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			vals, err := c.Get(ctx, ".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.2.0", ".1.3.6.1.2.1.1.5.0",
				".1.3.6.1.4.1.99999.2.1.0", ".1.3.6.1.4.1.99999.2.3.0", ".1.3.6.1.4.1.99999.2.4.0", ".1.3.6.1.4.1.99999.2.5.0")
			if err != nil {
				t.Fatal(err)
			}
			st := l.r.State()
			want := []string{"XT-2 Business Router V300R001C10SPC200", SysObjectID, "XT2", "3", st.Address, "2", customerID}
			for i, v := range vals {
				if got := v.String(); got != want[i] {
					t.Errorf("%s = %q (%s), want %q", v.OID, got, v.Type, want[i])
				}
			}

			// The walk of IF-MIB ifTable has six rows of each column.
			walk, err := c.Walk(ctx, ".1.3.6.1.2.1.2.2.1.2")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, v := range walk {
				names = append(names, v.String())
			}
			if got := strings.Join(names, ","); got != "GigabitEthernet0/0/0,GigabitEthernet0/0/1,GigabitEthernet0/0/2,GigabitEthernet0/0/3,GigabitEthernet0/0/4,Dialer1" {
				t.Fatalf("ifDescr walk: %s", got)
			}
			oper, err := c.Walk(ctx, ".1.3.6.1.2.1.2.2.1.8")
			if err != nil || len(oper) != 6 || oper[0].String() != "1" || oper[5].String() != "1" || oper[2].String() != "2" {
				t.Fatalf("ifOperStatus walk: %v %v", oper, err)
			}
			all, err := c.Walk(ctx, ".1.3")
			if err != nil || len(all) < 100 {
				t.Fatalf("full walk: %d values, %v", len(all), err)
			}
			hc1, err := c.Get(ctx, ".1.3.6.1.2.1.31.1.1.1.6.6")
			if err != nil || hc1[0].Type != "Counter64" {
				t.Fatalf("ifHCInOctets: %v %v", hc1, err)
			}

			_, err = c.Get(ctx, ".1.3.6.1.2.1.1.5")
			if !errors.Is(err, snmp.ErrNoSuchInstance) {
				t.Errorf("sysName without .0: %v, want no such instance", err)
			}
			_, err = c.Get(ctx, ".1.3.6.1.4.1.12345.1.0")
			if !errors.Is(err, snmp.ErrNoSuchObject) {
				t.Errorf("unknown object: %v, want no such object", err)
			}
		})
	}
}

func TestSNMPRejectsWrongCredentials(t *testing.T) {
	l := startLab(t, nil)
	addr := l.r.SNMPAddr()
	tests := []struct {
		name string
		tg   snmp.Target
		want error
	}{
		{"wrong community", snmp.Target{Addr: addr, Version: snmp.V2c, Community: secret.New("public"), Timeout: 200 * time.Millisecond}, snmp.ErrTimeout},
		{"wrong v3 auth key", snmp.Target{Addr: addr, Version: snmp.V3, User: v3User, AuthKey: secret.New("wrong-auth-key"), PrivKey: secret.New(v3Priv)}, snmp.ErrAuth},
		{"unknown v3 user", snmp.Target{Addr: addr, Version: snmp.V3, User: "nobody", AuthKey: secret.New(v3Auth), PrivKey: secret.New(v3Priv)}, snmp.ErrAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, err := snmp.Dial(ctx, tc.tg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Get(ctx, ".1.3.6.1.2.1.1.1.0"); !errors.Is(err, tc.want) {
				t.Fatalf("Get: %v, want %v", err, tc.want)
			}
		})
	}
}

// netSNMP runs a net-snmp command line tool against the agent.
func netSNMP(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s is not installed: run `make test-deps` (apt-get install snmp)", tool)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// -On: numeric OIDs, -M/-m: no MIB files needed.
	args = append([]string{"-On", "-M", "/nonexistent", "-m", "", "-t", "2", "-r", "1"}, args...)
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

func TestNetSNMPTools(t *testing.T) {
	l := startLab(t, nil)
	tm := dialTerm(t, l.r)
	configureInternet(tm, pppUser, "wrong-password")
	addr := "udp:" + l.r.SNMPAddr()
	v2c := []string{"-v2c", "-c", community, addr}
	v3 := []string{"-v3", "-l", "authPriv", "-u", v3User, "-a", "SHA-256", "-A", v3Auth, "-x", "AES", "-X", v3Priv, addr}
	for name, auth := range map[string][]string{"v2c": v2c, "v3": v3} {
		t.Run(name, func(t *testing.T) {
			tests := []struct {
				tool string
				args []string
				want []string
			}{
				{"snmpget", []string{".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.2.0", ".1.3.6.1.4.1.99999.2.1.0", ".1.3.6.1.4.1.99999.2.2.0"}, []string{
					`.1.3.6.1.2.1.1.1.0 = STRING: "XT-2 Business Router V300R001C10SPC200"`,
					`.1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.99999.1.2`,
					`.1.3.6.1.4.1.99999.2.1.0 = INTEGER: 1`,
					`.1.3.6.1.4.1.99999.2.2.0 = STRING: "691"`,
				}},
				{"snmpget", []string{".1.3.6.1.2.1.1.5", ".1.3.6.1.4.1.12345.0"}, []string{
					`.1.3.6.1.2.1.1.5 = No Such Instance currently exists at this OID`,
					`.1.3.6.1.4.1.12345.0 = No Such Object available on this agent at this OID`,
				}},
				{"snmpwalk", []string{".1.3.6.1.2.1.2.2.1.2"}, []string{
					`.1.3.6.1.2.1.2.2.1.2.1 = STRING: "GigabitEthernet0/0/0"`,
					`.1.3.6.1.2.1.2.2.1.2.6 = STRING: "Dialer1"`,
				}},
				{"snmpbulkwalk", []string{".1.3.6.1.2.1.31.1.1.1.6"}, []string{
					`.1.3.6.1.2.1.31.1.1.1.6.1 = Counter64: `,
					`.1.3.6.1.2.1.31.1.1.1.6.6 = Counter64: 0`,
				}},
				{"snmpwalk", []string{".1.3.6.1.4.1.99999.2"}, []string{
					`.1.3.6.1.4.1.99999.2.3.0 = IpAddress: 0.0.0.0`,
					`.1.3.6.1.4.1.99999.2.5.0 = ""`,
				}},
				{"snmpbulkwalk", []string{".1.3"}, []string{
					`.1.3.6.1.2.1.1.3.0 = Timeticks: `,
					`.1.3.6.1.2.1.2.2.1.3.6 = INTEGER: 23`,
					`.1.3.6.1.2.1.31.1.1.1.15.1 = Gauge32: 1000`,
				}},
			}
			for _, tc := range tests {
				out, err := netSNMP(t, tc.tool, append(auth, tc.args...)...)
				if err != nil {
					t.Fatalf("%s %v: %v\n%s", tc.tool, tc.args, err, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("%s %v: output lacks %q:\n%s", tc.tool, tc.args, w, out)
					}
				}
			}
		})
	}
	t.Run("wrong v3 key", func(t *testing.T) {
		args := []string{"-v3", "-l", "authPriv", "-u", v3User, "-a", "SHA-256", "-A", "not-the-key", "-x", "AES", "-X", v3Priv, addr, ".1.3.6.1.2.1.1.1.0"}
		out, err := netSNMP(t, "snmpget", args...)
		if err == nil || !strings.Contains(out, "Authentication failure") {
			t.Fatalf("wrong key: %v\n%s", err, out)
		}
	})
}
