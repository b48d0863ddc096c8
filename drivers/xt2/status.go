package xt2

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"fieldagent/drivers/snmp"
)

// LineTestResult is the state of the router's line: the WAN port as the
// CLI and IF-MIB see it, and the PPPoE client.
type LineTestResult struct {
	// WANState is the port's current state ("UP", "DOWN",
	// "Administratively DOWN"); WANUp is true when it is "UP".
	WANState string `json:"wan_state"`
	WANUp    bool   `json:"wan_up"`
	// SpeedMbps is the negotiated speed from the CLI, 0 when unknown.
	SpeedMbps int    `json:"speed_mbps"`
	Duplex    string `json:"duplex,omitempty"`
	// PPPState is UP, PADI (dialing, no answer) or IDLE.
	PPPState string `json:"ppp_state"`
	// PPPLastError is the PPPoE client's last error ("691 authentication
	// failure"), "" for none.
	PPPLastError string `json:"ppp_last_error,omitempty"`
	// IfOperStatus is ifOperStatus.1 over SNMP ("up", "down", ...).
	IfOperStatus string `json:"if_oper_status"`
	// IfHighSpeedMbps is ifHighSpeed.1 over SNMP.
	IfHighSpeedMbps uint64 `json:"if_high_speed_mbps"`
	// Problems says what is wrong and what to check; empty when the line
	// is fine.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether the line test found no problem.
func (r LineTestResult) OK() bool { return len(r.Problems) == 0 }

// LineTest reads the WAN port (`display interface GigabitEthernet0/0/0`),
// the PPPoE client (`display pppoe-client session summary`) and
// ifOperStatus/ifHighSpeed of ifIndex 1 over SNMP. Problems found are in
// the result, not the error; the error means a read failed.
func (d *Driver) LineTest(ctx context.Context) (LineTestResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var r LineTestResult
	out, err := d.command(ctx, "display interface "+wanPort)
	if err != nil {
		return r, fmt.Errorf("line test: %w", err)
	}
	wan := parseInterface(out)
	r.WANState, r.WANUp, r.SpeedMbps, r.Duplex = wan.State, wan.State == "UP", wan.SpeedMbps, wan.Duplex
	out, err = d.command(ctx, "display pppoe-client session summary")
	if err != nil {
		return r, fmt.Errorf("line test: %w", err)
	}
	ppp := parsePPPoE(out)
	r.PPPState, r.PPPLastError = ppp.State, ppp.LastError
	vs, err := d.get(ctx, oidIfOperStatus+".1", oidIfHighSpeed+".1")
	if err != nil {
		return r, fmt.Errorf("line test: %w", err)
	}
	r.IfOperStatus = operStatus(vs[0])
	r.IfHighSpeedMbps, _ = vs[1].Uint64()

	if !r.WANUp {
		r.Problems = append(r.Problems, fmt.Sprintf("WAN port %s is %s: check the cable and the modem or ONT in front of the router", wanPort, orNone(r.WANState)))
	} else if r.SpeedMbps > 0 && r.SpeedMbps < 1000 {
		r.Problems = append(r.Problems, fmt.Sprintf("WAN port negotiated %d Mb/s: check the cable (all 8 wires) for a gigabit line", r.SpeedMbps))
	}
	if (r.IfOperStatus == "up") != r.WANUp {
		r.Problems = append(r.Problems, fmt.Sprintf("SNMP ifOperStatus is %s but the CLI says %s: read again", r.IfOperStatus, orNone(r.WANState)))
	}
	if err := pppFailure(ppp); err != nil && ppp.State != "UP" {
		r.Problems = append(r.Problems, err.Error())
	}
	return r, nil
}

// operStatus names an IF-MIB ifOperStatus value.
func operStatus(v snmp.Value) string {
	n, ok := v.Uint64()
	if !ok {
		return v.String()
	}
	names := []string{1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}
	if n >= 1 && int(n) < len(names) {
		return names[n]
	}
	return strconv.FormatUint(n, 10)
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Status is the router's state over SNMP: the system group, the IF-MIB
// interfaces and the XT2-MIB PPP and BBMS objects.
type Status struct {
	System     System      `json:"system"`
	Interfaces []Interface `json:"interfaces"`
	PPP        PPPStatus   `json:"ppp"`
	BBMS       BBMSBinding `json:"bbms"`
}

// System is the SNMP system group.
type System struct {
	Descr    string `json:"descr"`
	ObjectID string `json:"object_id"`
	// UptimeTicks is sysUpTime in hundredths of a second.
	UptimeTicks uint64 `json:"uptime_ticks"`
	Contact     string `json:"contact,omitempty"`
	Name        string `json:"name"`
	Location    string `json:"location,omitempty"`
}

// Interface is one IF-MIB row.
type Interface struct {
	Index       int    `json:"index"`
	Descr       string `json:"descr"`
	AdminStatus string `json:"admin_status"`
	OperStatus  string `json:"oper_status"`
	// HighSpeedMbps is ifHighSpeed.
	HighSpeedMbps uint64 `json:"high_speed_mbps"`
	InOctets      uint64 `json:"in_octets"`
	OutOctets     uint64 `json:"out_octets"`
	InErrors      uint64 `json:"in_errors"`
}

// PPPStatus is the XT2-MIB PPP group.
type PPPStatus struct {
	// State is down, dialing or up (pppState).
	State     string `json:"state"`
	LastError string `json:"last_error,omitempty"`
	Address   string `json:"address,omitempty"`
}

// Status reads the system group, ifTable/ifXTable (two bulk walks) and the
// XT2-MIB over SNMP. Errors wrap those of drivers/snmp (snmp.ErrTimeout:
// check the address and community; snmp.ErrAuth: check the v3 user).
func (d *Driver) Status(ctx context.Context) (Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s Status
	vs, err := d.get(ctx, oidSysDescr, oidSysObjectID, oidSysUpTime, oidSysContact, oidSysName, oidSysLocation,
		oidPPPState, oidPPPLastError, oidPPPAddress, oidBBMSBound, oidBBMSCustomer)
	if err != nil {
		return s, fmt.Errorf("status: %w", err)
	}
	up, _ := vs[2].Uint64()
	s.System = System{Descr: vs[0].String(), ObjectID: vs[1].String(), UptimeTicks: up, Contact: vs[3].String(), Name: vs[4].String(), Location: vs[5].String()}
	st, _ := vs[6].Uint64()
	s.PPP = PPPStatus{State: map[uint64]string{1: "down", 2: "dialing", 3: "up"}[st], LastError: vs[7].String(), Address: vs[8].String()}
	if s.PPP.Address == "0.0.0.0" {
		s.PPP.Address = ""
	}
	bound, _ := vs[9].Uint64()
	s.BBMS = BBMSBinding{Bound: bound == 2, Customer: vs[10].String()}

	rows := map[int]*Interface{}
	var order []int
	row := func(idx int) *Interface {
		if r, ok := rows[idx]; ok {
			return r
		}
		r := &Interface{Index: idx}
		rows[idx] = r
		order = append(order, idx)
		return r
	}
	for _, root := range []string{oidIfEntry, oidIfXEntry} {
		walked, err := d.snmp.Walk(ctx, root) // d.snmp is set: d.get succeeded
		if err != nil {
			return s, fmt.Errorf("status: walk %s: %w", root, err)
		}
		for _, v := range walked {
			col, idx, ok := column(root, v.OID)
			if !ok {
				continue
			}
			r := row(idx)
			n, _ := v.Uint64()
			switch {
			case root == oidIfEntry && col == 2:
				r.Descr = v.String()
			case root == oidIfEntry && col == 7:
				r.AdminStatus = operStatus(v)
			case root == oidIfEntry && col == 8:
				r.OperStatus = operStatus(v)
			case root == oidIfEntry && col == 14:
				r.InErrors = n
			case root == oidIfXEntry && col == 6:
				r.InOctets = n
			case root == oidIfXEntry && col == 10:
				r.OutOctets = n
			case root == oidIfXEntry && col == 15:
				r.HighSpeedMbps = n
			}
		}
	}
	for _, i := range order {
		s.Interfaces = append(s.Interfaces, *rows[i])
	}
	return s, nil
}

// column splits root.COL.IDX.
func column(root, oid string) (col, idx int, ok bool) {
	rest, found := strings.CutPrefix(oid, root+".")
	if !found {
		return 0, 0, false
	}
	c, i, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	col, err1 := strconv.Atoi(c)
	idx, err2 := strconv.Atoi(i)
	return col, idx, err1 == nil && err2 == nil
}

// CLIStatus is the router's state as the CLI shows it.
type CLIStatus struct {
	Interfaces []CLIInterface `json:"interfaces"`
	PPPState   string         `json:"ppp_state"`
	PPPError   string         `json:"ppp_last_error,omitempty"`
	BBMS       BBMSBinding    `json:"bbms"`
}

// CLIStatus reads `display interface brief`, `display ip interface brief`,
// `display pppoe-client session summary` and `display bbms binding`.
func (d *Driver) CLIStatus(ctx context.Context) (CLIStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s CLIStatus
	outs := make([]string, 4)
	for i, cmd := range []string{"display interface brief", "display ip interface brief", "display pppoe-client session summary", "display bbms binding"} {
		out, err := d.command(ctx, cmd)
		if err != nil {
			return s, fmt.Errorf("cli status: %w", err)
		}
		outs[i] = out
	}
	s.Interfaces = parseIfBrief(outs[0])
	addrs := parseIPBrief(outs[1])
	for i := range s.Interfaces {
		s.Interfaces[i].Address = addrs[s.Interfaces[i].Name]
	}
	ppp := parsePPPoE(outs[2])
	s.PPPState, s.PPPError = ppp.State, ppp.LastError
	s.BBMS = BBMSBinding(parseBBMS(outs[3]))
	return s, nil
}
