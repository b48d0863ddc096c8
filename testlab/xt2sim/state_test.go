package xt2sim

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"fieldagent/agent/secret"
	"fieldagent/drivers/snmp"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCountersAndUptimeFollowTheClock(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := startLab(t, func(c *Config) { c.Now = clk.Now })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := snmp.Dial(ctx, snmp.Target{Addr: l.r.SNMPAddr(), Version: snmp.V2c, Community: secret.New(community)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() uint64 {
		t.Helper()
		v, err := c.Get(ctx, ".1.3.6.1.2.1.31.1.1.1.6.2") // ifHCInOctets of LAN1 (up)
		if err != nil {
			t.Fatal(err)
		}
		return v[0].Raw.(uint64)
	}
	before := read()
	clk.Advance(65 * time.Minute)
	if after := read(); after <= before {
		t.Fatalf("ifHCInOctets did not grow: %d then %d", before, after)
	}
	tm := dialTerm(t, l.r)
	if out := tm.cmd("display version", "<XT2>"); !strings.Contains(out, "Uptime is 0 weeks, 0 days, 1 hour, 5 minutes\r\n") {
		t.Fatalf("display version:\n%s", out)
	}
}

func TestConfiguredHostKey(t *testing.T) {
	key := newKey(t)
	l := startLab(t, func(c *Config) { c.HostKey = key })
	if string(l.r.HostKey().Marshal()) != string(key.PublicKey().Marshal()) {
		t.Fatal("HostKey is not the configured key")
	}
	dialTerm(t, l.r) // FixedHostKey(r.HostKey()) accepts it
}

func FuzzMatch(f *testing.F) {
	for _, s := range []string{"display version", "interface GE0/0/1", "ip route-static 0.0.0.0 0.0.0.0 Dialer1",
		"dialer user a b", "dns-list 1.1.1.1 8.8.8.8", "rule 5 permit source 192.168.1.0 0.0.0.255", "undo", " x  y ", "display"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		toks := tokenize(line)
		for _, v := range []viewKind{viewUser, viewSystem, viewEth, viewDialer, viewPool, viewACL} {
			for _, prefix := range []bool{false, true} {
				_, _, merr := match(patternsFor(v), toks, len(line), prefix)
				if merr != nil && (merr.pos < 0 || merr.pos > len(line)) {
					t.Fatalf("caret position %d outside line %q", merr.pos, line)
				}
			}
		}
		_ = canonIfname(line)
		_ = maskLine(line)
	})
}

// FuzzSNMPHandle feeds the agent arbitrary datagrams: it must never panic.
func FuzzSNMPHandle(f *testing.F) {
	for _, pkt := range []*gosnmp.SnmpPacket{
		{Version: gosnmp.Version2c, Community: community, PDUType: gosnmp.GetRequest, RequestID: 1,
			Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.1.0", Type: gosnmp.Null}}},
		{Version: gosnmp.Version2c, Community: community, PDUType: gosnmp.GetBulkRequest, RequestID: 2, MaxRepetitions: 50,
			Variables: []gosnmp.SnmpPDU{{Name: ".1.3", Type: gosnmp.Null}}},
		{Version: gosnmp.Version3, MsgFlags: gosnmp.Reportable, SecurityModel: gosnmp.UserSecurityModel,
			SecurityParameters: &gosnmp.UsmSecurityParameters{}, PDUType: gosnmp.GetRequest, MsgID: 3, RequestID: 3},
	} {
		pkt.Logger = gosnmp.NewLogger(nil)
		b, err := pkt.MarshalMsg()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	r, err := Start(f.Context(), Config{
		Users: map[string]secret.Secret{"a": secret.New("b")}, SNMPCommunity: secret.New(community),
		SNMPv3User: v3User, SNMPv3AuthKey: secret.New(v3Auth), SNMPv3PrivKey: secret.New(v3Priv),
	})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = r.snmp.handle(b)
	})
}
