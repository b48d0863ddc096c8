package xt2sim

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"time"
)

// ifState is the live state of one interface, shared by the CLI and SNMP.
type ifState struct {
	index    int
	name     string
	up       bool   // link / protocol up
	admin    bool   // not shut down
	speed    int    // Mb/s
	addr     string // "a.b.c.d/len" or ""
	inOctets uint64
	outOcts  uint64
	inErrors uint32
	mac      []byte
}

// interfaces returns the state of the five Ethernet ports and Dialer1.
// Counters grow with uptime on interfaces that are up.
func (r *Router) interfaces() []ifState {
	r.mu.Lock()
	defer r.mu.Unlock()
	up := r.uptime()
	out := make([]ifState, 0, len(ethPorts)+1)
	for i, p := range ethPorts {
		st := ifState{index: i + 1, name: p, admin: true, speed: 1000, mac: []byte{0x00, 0xe0, 0xfc, 0x12, 0x34, byte(0x50 + i)}}
		if _, off := r.running.value("interface "+p, "shutdown"); off {
			st.admin = false
		}
		switch i {
		case 0:
			st.up = r.state.WANUp && st.admin
			st.speed = r.wanSpeed
		case 1:
			st.up = st.admin
		}
		if a, ok := r.running.value("interface "+p, "ip address"); ok {
			st.addr = prefixOf(a)
		}
		if st.up {
			ms := uint64(up / time.Millisecond)
			st.inOctets = ms*1250/uint64(i+1) + 4096
			st.outOcts = ms*250/uint64(i+1) + 2048
		}
		out = append(out, st)
	}
	d := ifState{index: len(ethPorts) + 1, name: dialerName, admin: true, speed: r.wanSpeed, up: r.state.PPP == PPPUp}
	if _, off := r.running.value("interface "+dialerName, "shutdown"); off {
		d.admin = false
	}
	if d.up {
		d.addr = r.state.Address + "/32"
		ms := uint64(up / time.Millisecond)
		d.inOctets, d.outOcts = ms*1200+1024, ms*240+512
	}
	return append(out, d)
}

// prefixOf turns "192.168.1.1 255.255.255.0" into "192.168.1.1/24".
func prefixOf(addrMask string) string {
	w := strings.Fields(addrMask)
	if len(w) != 2 || !isIPv4(w[0]) || !isIPv4(w[1]) {
		return ""
	}
	n := 0
	for _, b := range netip.MustParseAddr(w[1]).As4() {
		n += bits.OnesCount8(b)
	}
	return fmt.Sprintf("%s/%d", w[0], n)
}

func updown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}

func (r *Router) showVersion() []string {
	up := r.uptime()
	weeks := int(up / (7 * 24 * time.Hour))
	days := int(up/(24*time.Hour)) % 7
	hours := int(up/time.Hour) % 24
	mins := int(up/time.Minute) % 60
	return []string{
		fmt.Sprintf("XT-2 Business Router, Software Version %s", r.cfg.Software),
		"Copyright (C) 2026 fieldagent testlab. All rights reserved.",
		"Serial Number: " + r.cfg.Serial,
		fmt.Sprintf("Uptime is %s, %s, %s, %s", plural(weeks, "week"), plural(days, "day"), plural(hours, "hour"), plural(mins, "minute")),
		"BOARD TYPE:          XT-2 (4GE LAN, 1GE WAN)",
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func (r *Router) showInterfaceBrief() []string {
	out := []string{
		"PHY: Physical",
		"*down: administratively down",
		"(s): spoofing",
		"InUti/OutUti: input utility/output utility",
		fmt.Sprintf("%-26s%-7s%-10s%-7s%-7s%-9s%s", "Interface", "PHY", "Protocol", "InUti", "OutUti", "inErrors", "outErrors"),
	}
	for _, st := range r.interfaces() {
		phy := updown(st.up)
		if !st.admin {
			phy = "*down"
		}
		proto := updown(st.up)
		if st.name == dialerName && st.up {
			proto = "up(s)"
			phy = "up"
		}
		out = append(out, fmt.Sprintf("%-26s%-7s%-10s%-7s%-7s%-9d%d", st.name, phy, proto, "0%", "0%", st.inErrors, 0))
	}
	return out
}

func (r *Router) showInterface(name string) []string {
	for _, st := range r.interfaces() {
		if st.name != name {
			continue
		}
		state := "UP"
		if !st.admin {
			state = "Administratively DOWN"
		} else if !st.up {
			state = "DOWN"
		}
		if name == dialerName {
			return []string{
				name + " current state : " + state,
				"Line protocol current state : " + strings.ToUpper(updown(st.up)),
				"Description:",
				"Route Port,The Maximum Transmit Unit is 1492, Hold timer is 10(sec)",
				"Link layer protocol is PPP",
				fmt.Sprintf("Internet Address is %s", orNone(st.addr, "negotiated")),
				fmt.Sprintf("Input:  %d bytes", st.inOctets),
				fmt.Sprintf("Output: %d bytes", st.outOcts),
			}
		}
		desc := "LAN"
		if name == wanPort {
			desc = "WAN"
		}
		return []string{
			name + " current state : " + state,
			"Line protocol current state : " + strings.ToUpper(updown(st.up)),
			"Description:" + desc,
			"Route Port,The Maximum Transmit Unit is 1500",
			"Internet Address is " + orNone(st.addr, "unassigned"),
			fmt.Sprintf("IP Sending Frames' Format is PKTFMT_ETHNT_2, Hardware address is %02x%02x-%02x%02x-%02x%02x", st.mac[0], st.mac[1], st.mac[2], st.mac[3], st.mac[4], st.mac[5]),
			"Port Mode: COMMON COPPER",
			fmt.Sprintf("Speed : %d,  Loopback: NONE", st.speed),
			"Duplex: FULL,  Negotiation: ENABLE",
			"Mdi   : AUTO",
			"Last 300 seconds input rate 0 bits/sec, 0 packets/sec",
			"Last 300 seconds output rate 0 bits/sec, 0 packets/sec",
			fmt.Sprintf("Input:  %d bytes, %d errors", st.inOctets, st.inErrors),
			fmt.Sprintf("Output: %d bytes, 0 errors", st.outOcts),
		}
	}
	return nil
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func (r *Router) showPPPoE() []string {
	r.mu.Lock()
	plan := r.plan()
	st := r.state
	r.mu.Unlock()
	out := []string{
		"PPPoE Client Session:",
		fmt.Sprintf("%-5s%-8s%-8s%-10s%-15s%-15s%s", "ID", "Bundle", "Dialer", "Intf", "Client-MAC", "Server-MAC", "State"),
	}
	if plan.ready || st.PPP != PPPIdle {
		server := "000000000000"
		if st.PPP == PPPUp {
			server = "00e0fc6543a1"
		}
		out = append(out, fmt.Sprintf("%-5s%-8s%-8s%-10s%-15s%-15s%s", "1", "1", "1", "GE0/0/0", "00e0fc123450", server, st.PPP))
	}
	switch st.LastError {
	case "":
		out = append(out, "Last error: none")
	case "691":
		out = append(out, "Last error: 691 authentication failure")
	default:
		out = append(out, "Last error: "+st.LastError)
	}
	return out
}

func (r *Router) showIPBrief() []string {
	ifs := r.interfaces()
	nUp := 0
	for _, st := range ifs {
		if st.up {
			nUp++
		}
	}
	out := []string{
		"*down: administratively down",
		"(s): spoofing",
		fmt.Sprintf("The number of interface that is UP in Physical is %d", nUp),
		fmt.Sprintf("The number of interface that is DOWN in Physical is %d", len(ifs)-nUp),
		"",
		fmt.Sprintf("%-26s%-20s%-10s%s", "Interface", "IP Address/Mask", "Physical", "Protocol"),
	}
	for _, st := range ifs {
		phys := updown(st.up)
		if !st.admin {
			phys = "*down"
		}
		out = append(out, fmt.Sprintf("%-26s%-20s%-10s%s", st.name, orNone(st.addr, "unassigned"), phys, updown(st.up)))
	}
	return out
}

func (r *Router) showBBMS() []string {
	st := r.State()
	if st.BBMSBound {
		return []string{fmt.Sprintf("BBMS binding: bound, customer %s, serial %s", st.BBMSCustomer, r.cfg.Serial)}
	}
	out := []string{"BBMS binding: unbound"}
	if st.BBMSError != "" {
		out = append(out, "Last error: "+st.BBMSError)
	}
	return out
}
