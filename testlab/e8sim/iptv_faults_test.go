package e8sim

import (
	"strconv"
	"testing"
)

// TestIPTVPath: the path to a port follows the IPTV WAN's binding and the
// IGMP proxy; snooping off floods but still delivers.
func TestIPTVPath(t *testing.T) {
	g, err := New(Config{Serial: "S1", ACSURL: "http://127.0.0.1:1/", OperatorURL: "http://127.0.0.1:1", Access: "gpon"})
	if err != nil {
		t.Fatal(err)
	}
	tr := g.Tree()
	if p := g.IPTVPath(4); p.WAN != "" || p.Delivers() {
		t.Fatalf("factory gateway: %+v", p)
	}
	n, err := tr.AddInstance(wanDev + "WANConnectionDevice.")
	if err != nil {
		t.Fatal(err)
	}
	wcd := wanDev + "WANConnectionDevice." + strconv.Itoa(int(n)) + "."
	m, err := tr.AddInstance(wcd + "WANIPConnection.")
	if err != nil {
		t.Fatal(err)
	}
	conn := wcd + "WANIPConnection." + strconv.Itoa(int(m)) + "."
	const svc, lan = root + "Services.X_CT-COM_IPTV.", root + "LANDevice.1.LANEthernetInterfaceConfig."
	set := func(kv ...string) {
		t.Helper()
		for i := 0; i+1 < len(kv); i += 2 {
			if err := tr.SetValue(kv[i], kv[i+1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	set(conn+"ConnectionType", "IP_Bridged", conn+"X_CT-COM_ServiceList", "OTHER", conn+"Enable", "1",
		conn+"X_CT-COM_LanInterface", lan+"3,"+lan+"4", svc+"IGMPEnable", "1", svc+"SnoopingEnable", "1", svc+"ProxyEnable", "1")
	for _, tc := range []struct {
		name                             string
		kv                               []string
		port                             int
		delivers, bound, snooping, proxy bool
	}{
		{"bound", nil, 4, true, true, true, true},
		{"another port", nil, 1, false, false, true, true},
		{"LAN4 unbound", []string{conn + "X_CT-COM_LanInterface", lan + "3"}, 4, false, false, true, true},
		{"bound again, trailing dot", []string{conn + "X_CT-COM_LanInterface", lan + "4."}, 4, true, true, true, true},
		{"snooping off floods", []string{svc + "SnoopingEnable", "0"}, 4, true, true, false, true},
		{"proxy off", []string{svc + "ProxyEnable", "0"}, 4, false, true, false, false},
		{"IGMP on again", []string{svc + "ProxyEnable", "true", svc + "SnoopingEnable", "true"}, 4, true, true, true, true},
		{"IGMP master switch off", []string{svc + "IGMPEnable", "0"}, 4, false, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set(tc.kv...)
			p := g.IPTVPath(tc.port)
			if p.WAN != conn || p.Delivers() != tc.delivers || p.Bound != tc.bound || p.Snooping != tc.snooping || p.Proxy != tc.proxy {
				t.Errorf("path %+v delivers %v, want WAN %s delivers %v bound %v snooping %v proxy %v", p, p.Delivers(), conn, tc.delivers, tc.bound, tc.snooping, tc.proxy)
			}
		})
	}
	set(conn+"X_CT-COM_ServiceList", "INTERNET")
	if p := g.IPTVPath(4); p.WAN != "" {
		t.Errorf("an INTERNET connection taken for the IPTV WAN: %+v", p)
	}
}
