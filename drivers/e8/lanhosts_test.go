package e8_test

import (
	"testing"
	"time"

	"fieldagent/drivers"
	"fieldagent/testlab/e8sim"
)

func TestLANHosts(t *testing.T) {
	l := startLab(t, "gpon")
	for _, h := range []e8sim.LANHost{
		{MAC: "00:1A:2B:3C:4D:5E", IP: "192.168.1.23", HostName: "tech-laptop", LeaseRemaining: 2 * time.Hour},
		{MAC: "a4:5e:60:00:00:01", IP: "192.168.1.40", HostName: "phone", InterfaceType: "802.11", Inactive: true},
		{MAC: "00:e0:4c:00:00:02", IP: "192.168.1.100", InterfaceType: "Ethernet", Port: 4, AddressSource: "Static"},
	} {
		if _, err := l.gw.AddLANHost(h); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.drv.LANHosts(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []drivers.LANHost{
		{MAC: "00:1a:2b:3c:4d:5e", IP: "192.168.1.23", Hostname: "tech-laptop", Interface: "Ethernet", Active: true, AddressSource: "DHCP", LeaseSeconds: 7200},
		{MAC: "a4:5e:60:00:00:01", IP: "192.168.1.40", Hostname: "phone", Interface: "802.11", Active: false, AddressSource: "DHCP", LeaseSeconds: 86400},
		{MAC: "00:e0:4c:00:00:02", IP: "192.168.1.100", Interface: "Ethernet", Active: true, AddressSource: "Static", LeaseSeconds: -1},
	}
	if len(got) != len(want) {
		t.Fatalf("LANHosts = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("host %d = %+v, want %+v", i+1, got[i], want[i])
		}
	}
}
