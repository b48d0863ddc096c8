package line

import (
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func cidr(s string) net.Addr {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

func TestLeaseFromAddrs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		addrs []net.Addr
		err   error
		lease float64
		facts map[string]string
	}{
		{"lease", []net.Addr{cidr("fe80::1/64"), cidr("192.168.1.3/24")}, nil, 1,
			map[string]string{"dhcp_interface": "eth0", "dhcp_address": "192.168.1.3"}},
		{"self-assigned only", []net.Addr{cidr("169.254.7.9/16"), cidr("fe80::1/64")}, nil, 0,
			map[string]string{"dhcp_interface": "eth0", "dhcp_autoconf_address": "169.254.7.9"}},
		{"169.254 beside a lease", []net.Addr{cidr("169.254.7.9/16"), cidr("192.168.1.3/24"), cidr("192.168.1.4/24")}, nil, 1,
			map[string]string{"dhcp_interface": "eth0", "dhcp_address": "192.168.1.3", "dhcp_autoconf_address": "169.254.7.9"}},
		{"169.255 is usable", []net.Addr{&net.IPAddr{IP: net.ParseIP("169.255.0.1")}}, nil, 1,
			map[string]string{"dhcp_interface": "eth0", "dhcp_address": "169.255.0.1"}},
		{"loopback and unspecified", []net.Addr{cidr("127.0.0.1/8"), &net.IPAddr{IP: net.IPv4zero}}, nil, 0,
			map[string]string{"dhcp_interface": "eth0"}},
		{"no addresses", nil, nil, 0, map[string]string{"dhcp_interface": "eth0"}},
		{"interface error", nil, errors.New("route ip+net: no such network interface"), 0,
			map[string]string{"dhcp_interface": "eth0", "dhcp_error": "route ip+net: no such network interface"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := leaseFromAddrs("eth0", tc.addrs, tc.err, time.Unix(1, 0))
			r, ok := obs.Reading("dhcp_lease")
			if !ok || r.Value != tc.lease || len(obs.Readings) != 1 {
				t.Errorf("readings = %+v, want dhcp_lease %v", obs.Readings, tc.lease)
			}
			if !maps.Equal(obs.Facts, tc.facts) {
				t.Errorf("facts = %v, want %v", obs.Facts, tc.facts)
			}
		})
	}
}

func TestLocalLeaseRealInterfaces(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Skip(err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback == 0 {
			continue
		}
		obs := LocalLease(ifi.Name)
		if r, _ := obs.Reading("dhcp_lease"); r.Value != 0 {
			t.Errorf("%s: loopback counted as a lease: %v", ifi.Name, obs.Facts)
		}
		if _, ok := obs.Facts["laptop_link"]; ok {
			t.Errorf("%s: loopback given a laptop_link: %v", ifi.Name, obs.Facts)
		}
	}
	obs := LocalLease("fa-no-such-if0")
	if r, _ := obs.Reading("dhcp_lease"); r.Value != 0 || obs.Facts["dhcp_error"] == "" {
		t.Errorf("missing interface: %+v", obs)
	}
}

func TestLinkKind(t *testing.T) {
	sys := t.TempDir()
	for _, d := range []string{"eth0", "wlan0/wireless", "wlp2s0/phy80211"} {
		if err := os.MkdirAll(filepath.Join(sys, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for ifname, want := range map[string]string{"eth0": "ethernet", "wlan0": "wifi", "wlp2s0": "wifi", "gone0": "", "../eth0": "ethernet"} {
		if got := linkKind(sys, ifname); got != want {
			t.Errorf("linkKind(%q) = %q, want %q", ifname, got, want)
		}
	}
}
