package e8sim_test

import (
	"context"
	"testing"
	"time"

	"fieldagent/testlab/e8sim"
)

func TestLANHosts(t *testing.T) {
	a, id, gw := start(t, "lan")
	if v := value(t, a, id, hosts+"HostNumberOfEntries"); v != "0" {
		t.Fatalf("a new gateway lists %s hosts", v)
	}
	p1, err := gw.AddLANHost(e8sim.LANHost{MAC: "00-1A-2B-3C-4D-5E", IP: "192.168.1.23", HostName: "tech-laptop", LeaseRemaining: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := gw.AddLANHost(e8sim.LANHost{MAC: "a4:5e:60:00:00:01", IP: "192.168.1.40", InterfaceType: "802.11", Port: 2, AddressSource: "Static", Inactive: true})
	if err != nil {
		t.Fatal(err)
	}
	if p1 != hosts+"Host.1." || p2 != hosts+"Host.2." {
		t.Fatalf("rows %s %s", p1, p2)
	}
	m := values(t, a, id, hosts)
	want := map[string]string{
		"HostNumberOfEntries": "2",
		"Host.1.MACAddress":   "00:1a:2b:3c:4d:5e", "Host.1.IPAddress": "192.168.1.23", "Host.1.HostName": "tech-laptop",
		"Host.1.InterfaceType": "Ethernet", "Host.1.AddressSource": "DHCP", "Host.1.LeaseTimeRemaining": "3600", "Host.1.Active": "1",
		"Host.1.Layer2Interface": "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1",
		"Host.2.InterfaceType":   "802.11", "Host.2.AddressSource": "Static", "Host.2.LeaseTimeRemaining": "-1", "Host.2.Active": "0",
		"Host.2.Layer2Interface": "InternetGatewayDevice.LANDevice.1.WLANConfiguration.2",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if err := gw.SetLANHostActive("A4:5E:60:00:00:01", true); err != nil {
		t.Fatal(err)
	}
	if v := value(t, a, id, p2+"Active"); v != "1" {
		t.Errorf("Active after SetLANHostActive = %s", v)
	}
	for _, tc := range []struct {
		name string
		h    e8sim.LANHost
	}{
		{"duplicate MAC", e8sim.LANHost{MAC: "00:1a:2b:3c:4d:5e", IP: "192.168.1.24"}},
		{"bad MAC", e8sim.LANHost{MAC: "zz", IP: "192.168.1.24"}},
		{"IPv6", e8sim.LANHost{MAC: "00:1a:2b:3c:4d:5f", IP: "fe80::1"}},
		{"bad interface type", e8sim.LANHost{MAC: "00:1a:2b:3c:4d:5f", IP: "192.168.1.24", InterfaceType: "Fibre"}},
		{"bad address source", e8sim.LANHost{MAC: "00:1a:2b:3c:4d:5f", IP: "192.168.1.24", AddressSource: "BOOTP"}},
	} {
		if _, err := gw.AddLANHost(tc.h); err == nil {
			t.Errorf("%s: AddLANHost accepted %+v", tc.name, tc.h)
		}
	}
	if err := gw.SetLANHostActive("00:00:00:00:00:09", false); err == nil {
		t.Error("SetLANHostActive of an unknown host succeeded")
	}
	// The ACS cannot add rows to the table: the gateway fills it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.AddObject(ctx, id, hosts+"Host.", "k"); err == nil {
		t.Error("AddObject on the hosts table succeeded")
	}
}
