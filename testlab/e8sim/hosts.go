package e8sim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// hostTable is the gateway's LAN hosts table (TR-098 LANDevice.Hosts).
const hostTable = root + "LANDevice.1.Hosts.Host."

// errNoLANHost means SetLANHostActive was given a MAC the table lacks.
var errNoLANHost = errors.New("e8sim: no such LAN host")

// LANHost is a device on the gateway's LAN, as
// InternetGatewayDevice.LANDevice.1.Hosts.Host lists it.
type LANHost struct {
	// MAC is the host's MAC address (required, any notation net.ParseMAC
	// accepts); the table shows it as aa:bb:cc:dd:ee:ff.
	MAC string
	// IP is its IPv4 address (required).
	IP string
	// HostName is the name it gave in its DHCP request; may be empty.
	HostName string
	// InterfaceType is Ethernet (also for ""), 802.11, USB, HomePNA,
	// HomePlug or Other.
	InterfaceType string
	// Port is the LAN port (Ethernet) or SSID (802.11) it is on, 1-based;
	// 0 means 1. It fills Layer2Interface.
	Port int
	// AddressSource is DHCP (also for ""), Static or AutoIP.
	AddressSource string
	// LeaseRemaining is what is left of a DHCP lease; 0 means the LAN's
	// whole DHCPLeaseTime. Other address sources report -1.
	LeaseRemaining time.Duration
	// Inactive hosts are remembered but not currently seen.
	Inactive bool
}

// AddLANHost adds a host to the LAN hosts table, as the gateway does when
// a device asks for a DHCP lease or is seen on a port. It returns the
// row's path ("...Hosts.Host.3."). It fails when MAC or IP do not parse,
// when a field is not one of its values, or when the MAC is already listed.
func (g *Gateway) AddLANHost(h LANHost) (string, error) {
	mac, err := net.ParseMAC(strings.TrimSpace(h.MAC))
	if err != nil {
		return "", fmt.Errorf("e8sim: LAN host MAC %q: %w", h.MAC, err)
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(h.IP))
	if err != nil || !ip.Is4() {
		return "", fmt.Errorf("e8sim: LAN host %s: IP %q is not an IPv4 address", mac, h.IP)
	}
	itype := h.InterfaceType
	if itype == "" {
		itype = "Ethernet"
	}
	src := h.AddressSource
	if src == "" {
		src = "DHCP"
	}
	port := max(h.Port, 1)
	var l2 string
	switch itype {
	case "Ethernet":
		l2 = fmt.Sprintf("%sLANDevice.1.LANEthernetInterfaceConfig.%d", root, port)
	case "802.11":
		l2 = fmt.Sprintf("%sLANDevice.1.WLANConfiguration.%d", root, port)
	case "USB", "HomePNA", "HomePlug", "Other":
	default:
		return "", fmt.Errorf("e8sim: LAN host %s: InterfaceType %q is not Ethernet, 802.11, USB, HomePNA, HomePlug or Other", mac, itype)
	}
	lease := "-1"
	switch src {
	case "DHCP":
		secs := int64(h.LeaseRemaining / time.Second)
		if h.LeaseRemaining <= 0 {
			secs, _ = strconv.ParseInt(g.tree.Value(root+"LANDevice.1.LANHostConfigManagement.DHCPLeaseTime"), 10, 64)
		}
		lease = strconv.FormatInt(secs, 10)
	case "Static", "AutoIP":
	default:
		return "", fmt.Errorf("e8sim: LAN host %s: AddressSource %q is not DHCP, Static or AutoIP", mac, src)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := g.findLANHost(mac.String()); err == nil {
		return "", fmt.Errorf("e8sim: LAN host %s is already listed", mac)
	}
	n, err := g.tree.AddInstance(hostTable)
	if err != nil {
		return "", fmt.Errorf("e8sim: %w", err)
	}
	inst := hostTable + strconv.FormatUint(uint64(n), 10) + "."
	active := "1"
	if h.Inactive {
		active = "0"
	}
	for _, kv := range [][2]string{
		{"MACAddress", mac.String()}, {"IPAddress", ip.String()}, {"HostName", h.HostName},
		{"InterfaceType", itype}, {"Layer2Interface", l2}, {"AddressSource", src},
		{"LeaseTimeRemaining", lease}, {"Active", active},
	} {
		if err := g.tree.SetValue(inst+kv[0], kv[1]); err != nil {
			return "", fmt.Errorf("e8sim: %w", err)
		}
	}
	return inst, nil
}

// SetLANHostActive marks the host with MAC address mac as seen (true) or
// gone (false), as the gateway does when a lease expires or a port loses
// link. It fails when no such host is listed.
func (g *Gateway) SetLANHostActive(mac string, active bool) error {
	hw, err := net.ParseMAC(strings.TrimSpace(mac))
	if err != nil {
		return fmt.Errorf("e8sim: LAN host MAC %q: %w", mac, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	inst, err := g.findLANHost(hw.String())
	if err != nil {
		return err
	}
	v := "0"
	if active {
		v = "1"
	}
	return g.tree.SetValue(inst+"Active", v)
}

// findLANHost returns the row of the host with a normalised MAC. Caller
// holds g.mu (so that two adds of one MAC cannot race).
func (g *Gateway) findLANHost(mac string) (string, error) {
	for _, p := range g.tree.Snapshot() {
		if strings.HasPrefix(p.Name, hostTable) && strings.HasSuffix(p.Name, ".MACAddress") && p.Value == mac {
			return strings.TrimSuffix(p.Name, "MACAddress"), nil
		}
	}
	return "", fmt.Errorf("%w: %s", errNoLANHost, mac)
}
