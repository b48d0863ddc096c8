package snmp

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"fieldagent/drivers/snmp/snmptest"
)

func TestSNMPDSet(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed (it runs the pass handler): run `make test-deps`")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "rw-pass.py"))
	if err != nil {
		t.Fatal(err)
	}
	const rwOID = ".1.3.6.1.4.1.99999.9.1.0"
	addr := snmptest.Start(t, snmptest.Options{
		Community: testCommunity, User: testUser, AuthKey: testAuthKey, PrivKey: testPrivKey,
		SysName: testSysName, ReadWrite: true,
		Extra: []string{"pass .1.3.6.1.4.1.99999.9 " + py + " " + script + " " + filepath.Join(t.TempDir(), "store")},
	})
	for _, tg := range []Target{v2cTarget(addr), v3Target(addr)} {
		t.Run(tg.Version.String(), func(t *testing.T) {
			c := dial(t, tg)
			want := "set over " + tg.Version.String()
			if err := c.Set(testCtx(t), SetValue{OID: rwOID, Type: "OctetString", Value: want}); err != nil {
				t.Fatalf("Set: %v", err)
			}
			vs, err := c.Get(testCtx(t), rwOID)
			if err != nil || vs[0].String() != want {
				t.Errorf("read back %v, %v; want %q", vs, err, want)
			}
			// sysName is configured in snmpd.conf, so the agent makes it read-only.
			err = c.Set(testCtx(t), SetValue{OID: oidSysName, Type: "OctetString", Value: "x"})
			if !errors.Is(err, ErrNoAccess) {
				t.Errorf("Set of a read-only object: %v, want ErrNoAccess", err)
			}
			if sn, _ := c.Get(testCtx(t), oidSysName); sn[0].String() != testSysName {
				t.Errorf("sysName changed to %q", sn[0].String())
			}
			if err := c.Set(testCtx(t), SetValue{OID: rwOID, Type: "Float", Value: 1}); !errors.Is(err, ErrInvalidOID) {
				t.Errorf("Set with an unknown type: %v", err)
			}
		})
	}
	// Without write access the agent refuses.
	ro := snmptest.Start(t, snmptest.Options{Community: testCommunity, User: testUser, AuthKey: testAuthKey, PrivKey: testPrivKey})
	c := dial(t, v2cTarget(ro))
	if err := c.Set(testCtx(t), SetValue{OID: rwOID, Type: "OctetString", Value: "x"}); !errors.Is(err, ErrNoAccess) {
		t.Errorf("Set on a read-only community: %v, want ErrNoAccess", err)
	}
}
