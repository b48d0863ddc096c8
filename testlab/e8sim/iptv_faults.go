package e8sim

import (
	"strconv"
	"strings"
)

// IPTVPath is what the gateway's configuration does with IPTV multicast
// towards one LAN port.
type IPTVPath struct {
	// WAN is the enabled bridged WANIPConnection carrying the IPTV service
	// (X_CT-COM_ServiceList OTHER or IPTV), "" when there is none.
	WAN string
	// LanInterface is that WAN's X_CT-COM_LanInterface.
	LanInterface string
	// Bound reports whether the port is in LanInterface.
	Bound bool
	// Snooping and Proxy are Services.X_CT-COM_IPTV's SnoopingEnable and
	// ProxyEnable, each only with IGMPEnable on.
	Snooping, Proxy bool
}

// Delivers reports whether a channel a box on the port joins reaches it:
// the port is bound to the IPTV WAN and the IGMP proxy passes the join
// upstream. IGMP snooping off does not stop the stream: the gateway then
// floods the group to every LAN port and the Wi-Fi.
func (p IPTVPath) Delivers() bool { return p.WAN != "" && p.Bound && p.Proxy }

// IPTVPath reads from the gateway's configuration what it does with IPTV
// multicast towards LAN port (1-4).
func (g *Gateway) IPTVPath(port int) IPTVPath {
	const svc = root + "Services.X_CT-COM_IPTV."
	on := func(name string) bool { v := g.tree.Value(name); return v == "1" || v == "true" }
	p := IPTVPath{
		Snooping: on(svc+"IGMPEnable") && on(svc+"SnoopingEnable"),
		Proxy:    on(svc+"IGMPEnable") && on(svc+"ProxyEnable"),
	}
	for _, prm := range g.tree.Snapshot() {
		conn, ok := strings.CutSuffix(prm.Name, "X_CT-COM_ServiceList")
		if !ok || !strings.HasPrefix(conn, wanDev+"WANConnectionDevice.") || !strings.Contains(conn, ".WANIPConnection.") {
			continue
		}
		if s := strings.ToUpper(prm.Value); s != "OTHER" && s != "IPTV" {
			continue
		}
		if g.tree.Value(conn+"ConnectionType") != "IP_Bridged" || !on(conn+"Enable") {
			continue
		}
		p.WAN = conn
		p.LanInterface = g.tree.Value(conn + "X_CT-COM_LanInterface")
		want := root + "LANDevice.1.LANEthernetInterfaceConfig." + strconv.Itoa(port)
		for _, b := range strings.Split(p.LanInterface, ",") {
			if strings.TrimSuffix(strings.TrimSpace(b), ".") == want {
				p.Bound = true
			}
		}
		break
	}
	return p
}
