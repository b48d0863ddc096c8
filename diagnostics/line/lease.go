package line

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"fieldagent/diagnostics"
)

// autoconf is IPv4 link-local space (RFC 3927): an address there means no
// DHCP server answered and the host picked one itself.
var autoconf = netip.MustParsePrefix("169.254.0.0/16")

// LocalLease looks at the laptop's side of the LAN: whether interface
// ifname holds a usable IPv4 address, as a DHCP lease from the gateway
// gives. Loopback, unspecified and link-local (169.254/16) addresses do
// not count. The observation has the reading dhcp_lease (1/0) and the facts
// dhcp_interface, dhcp_address (the usable address), dhcp_autoconf_address
// (a 169.254 address, the sign that DHCP went unanswered), laptop_link (wifi
// or ethernet, on Linux) and dhcp_error (the interface could not be read).
// It cannot tell a static address from a lease.
func LocalLease(ifname string) Observation {
	var addrs []net.Addr
	ifi, err := net.InterfaceByName(ifname)
	if err == nil {
		addrs, err = ifi.Addrs()
	}
	obs := leaseFromAddrs(ifname, addrs, err, time.Now())
	if err == nil && ifi.Flags&net.FlagLoopback == 0 {
		if kind := linkKind("/sys/class/net", ifname); kind != "" {
			obs.Facts["laptop_link"] = kind
		}
	}
	return obs
}

// leaseFromAddrs is LocalLease on addresses already read (err is the
// error reading them).
func leaseFromAddrs(ifname string, addrs []net.Addr, err error, now time.Time) Observation {
	obs := Observation{Facts: map[string]string{"dhcp_interface": ifname}}
	if err != nil {
		obs.Facts["dhcp_error"] = err.Error()
	}
	lease := 0.0
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		default:
			continue
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		switch {
		case !addr.Is4() || addr.IsLoopback() || addr.IsUnspecified() || addr.IsMulticast():
		case autoconf.Contains(addr):
			if _, seen := obs.Facts["dhcp_autoconf_address"]; !seen {
				obs.Facts["dhcp_autoconf_address"] = addr.String()
			}
		case lease == 0:
			lease = 1
			obs.Facts["dhcp_address"] = addr.String()
		}
	}
	obs.Readings = []diagnostics.Reading{{Name: "dhcp_lease", Value: lease, Time: now}}
	return obs
}

// linkKind tells a Wi-Fi interface from a wired one by its sysfs entry
// (sysfs/<ifname>/wireless or phy80211); "" when sysfs has no such
// interface (not Linux, or gone).
func linkKind(sysfs, ifname string) string {
	base := filepath.Join(sysfs, filepath.Base(ifname))
	if _, err := os.Stat(base); err != nil {
		return ""
	}
	for _, sub := range []string{"wireless", "phy80211"} {
		if _, err := os.Stat(filepath.Join(base, sub)); err == nil {
			return "wifi"
		}
	}
	return "ethernet"
}
