package xt2

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers/snmp"
	"fieldagent/drivers/snmp/snmptest"
)

// TestStatusAgainstRealSNMPD reads the XT-2's SNMP status from a real
// net-snmp snmpd: its own system group and IF-MIB, and the XT2-MIB served by
// a `pass` handler. The CLI side stays on the simulated router.
func TestStatusAgainstRealSNMPD(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed (it runs the XT2-MIB pass handler): run `make test-deps`")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "xt2mib-pass.py"))
	if err != nil {
		t.Fatal(err)
	}
	const descr = "XT-2 Business Router V300R001C10SPC200"
	addr := snmptest.Start(t, snmptest.Options{
		Community: "xt2-real", User: v3User, AuthKey: v3Auth, PrivKey: v3Priv,
		Extra: []string{
			`sysDescr ` + descr,
			`sysObjectID ` + SysObjectIDPrefix,
			`pass .1.3.6.1.4.1.99999.2 ` + py + ` ` + script,
		},
	})
	l := startLab(t)
	for _, tc := range []struct {
		name   string
		target snmp.Target
	}{
		{"v2c", snmp.Target{Addr: addr, Version: snmp.V2c, Community: secret.New("xt2-real"), Timeout: 2 * time.Second, Retries: 1}},
		{"v3 authPriv", snmp.Target{Addr: addr, Version: snmp.V3, User: v3User, AuthKey: secret.New(v3Auth), PrivKey: secret.New(v3Priv), Timeout: 2 * time.Second, Retries: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := l.config(false, nil)
			cfg.SNMP = tc.target
			d, err := Open(testCtx(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			st, err := d.Status(testCtx(t))
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if st.System.Descr != descr || st.System.ObjectID != SysObjectIDPrefix || st.System.UptimeTicks == 0 {
				t.Errorf("system = %+v", st.System)
			}
			if st.PPP.State != "up" || st.PPP.Address != "100.64.7.9" || !st.BBMS.Bound || st.BBMS.Customer != "88001234" {
				t.Errorf("XT2-MIB via pass: ppp %+v, bbms %+v", st.PPP, st.BBMS)
			}
			var lo bool
			for _, i := range st.Interfaces {
				if strings.HasPrefix(i.Descr, "lo") && i.OperStatus == "up" {
					lo = true
				}
			}
			if !lo {
				t.Errorf("IF-MIB from snmpd lacks an up loopback: %+v", st.Interfaces)
			}
		})
	}
}
