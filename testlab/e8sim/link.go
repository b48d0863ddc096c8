package e8sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"fieldagent/tr069/cwmp"
)

// The PON interface's Status values (X_CT-COM_EponInterfaceConfig.Status,
// X_CT-COM_GponInterfaceConfig.Status) the gateway reports.
const (
	// PONStatusUp: the ONU is ranged and authorised by the OLT.
	PONStatusUp = "Up"
	// PONStatusNoSignal: no light reaches the ONU (LOS).
	PONStatusNoSignal = "NoSignal"
	// PONStatusInitializing: light reaches the ONU but the OLT has not
	// authorised it (registration failed): no traffic passes.
	PONStatusInitializing = "Initializing"
)

// errNotRunning: a knob that needs the gateway's Run was used before it.
var errNotRunning = errors.New("e8sim: the gateway is not running")

// linkState is what the lab changed on the gateway's uplink.
type linkState struct {
	// fibreOut: the drop fibre is unplugged (no light).
	fibreOut bool
	// rxDBm is the receive power the transceiver reads with the fibre in;
	// 0 means Config.RxPowerDBm.
	rxDBm float64
}

// linkError is the LastConnectionError of a WAN that cannot dial because
// the uplink is down, or "".
func (g *Gateway) linkError() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.link.fibreOut {
		return "ERROR_NO_CARRIER"
	}
	return ""
}

// ponObj is the PON interface object, "" on a LAN or ADSL uplink.
func (g *Gateway) ponObj() string {
	switch g.cfg.Access {
	case "epon":
		return wanDev + "X_CT-COM_EponInterfaceConfig."
	case "gpon":
		return wanDev + "X_CT-COM_GponInterfaceConfig."
	}
	return ""
}

// ponRegistered follows a registration's outcome on a PON uplink: the OLT
// lets an authorised ONU onto the PON (Status Up); one it refuses loses
// its link, and the WANs that were connected drop, their PPPoE discovery
// unanswered.
func (g *Gateway) ponRegistered(ok bool) {
	obj := g.ponObj()
	if obj == "" || g.linkError() != "" {
		return
	}
	if ok {
		_ = g.tree.SetValue(obj+"Status", PONStatusUp)
		return
	}
	_ = g.tree.SetValue(obj+"Status", PONStatusInitializing)
	for _, inst := range g.wanInstances() {
		if g.tree.Value(inst+"ConnectionStatus") == "Connected" {
			g.down(inst, "ERROR_ISP_TIME_OUT", "Disconnected")
		}
	}
}

// WANVLAN is the VLAN the WAN connection inst ("...WANPPPConnection.1.")
// tags its traffic with: its connection device's PON link VLAN (when
// tagging, Mode not 0), else the connection's own X_CT-COM_VLANIDMark; 0
// is untagged.
func (g *Gateway) WANVLAN(inst string) int {
	i := strings.Index(inst, "WANConnectionDevice.")
	if i < 0 {
		return 0
	}
	rest := inst[i+len("WANConnectionDevice."):]
	wcd := inst[:i+len("WANConnectionDevice.")+strings.Index(rest, ".")+1]
	for _, link := range []string{"X_CT-COM_WANGponLinkConfig.", "X_CT-COM_WANEponLinkConfig."} {
		if m := g.tree.Value(wcd + link + "Mode"); m != "" && m != "0" {
			return atoi(g.tree.Value(wcd + link + "VLANIDMark"))
		}
	}
	return atoi(g.tree.Value(inst + "X_CT-COM_VLANIDMark"))
}

// SetRxPower sets the optical receive power (dBm) the transceiver reads, as
// a dirty connector, a tight bend or a missing attenuator changes it; 0
// means Config.RxPowerDBm again. The link stays up. With the fibre out the
// value applies once it is back. A LAN or ADSL uplink has no transceiver:
// it fails.
func (g *Gateway) SetRxPower(dbm float64) error {
	obj := g.ponObj()
	if obj == "" {
		return fmt.Errorf("e8sim: a %s uplink has no optical transceiver", g.cfg.Access)
	}
	g.mu.Lock()
	g.link.rxDBm = dbm
	out := g.link.fibreOut
	g.mu.Unlock()
	if out {
		return nil
	}
	return g.writeRx()
}

// writeRx writes the receive power the fibre delivers.
func (g *Gateway) writeRx() error {
	g.mu.Lock()
	dbm := g.link.rxDBm
	g.mu.Unlock()
	if dbm == 0 {
		dbm = g.cfg.RxPowerDBm
	}
	return g.setOptical("RXPower", dbm)
}

// setOptical writes one optical reading in the vendor's encoding.
func (g *Gateway) setOptical(field string, dbm float64) error {
	obj := g.ponObj()
	for _, kv := range optical(obj, g.cfg.OpticalEncoding, dbm) {
		if kv[0] == obj+field {
			return g.tree.SetValue(kv[0], kv[1])
		}
	}
	return fmt.Errorf("e8sim: no optical reading %s", field)
}

// noLight is RXPower with no light: 0 in SFF-8472 units, −40 dBm as text.
func (g *Gateway) noLight() string {
	if g.cfg.OpticalEncoding == "sff8472" {
		return "0"
	}
	return "-40.0"
}

// SetFibre plugs the drop fibre in or out. Out, the transceiver reads no
// light, the PON interface NoSignal (LOS), and every enabled WAN drops
// with ERROR_NO_CARRIER and cannot dial. Back in, the light returns, the
// ONU registers with ITMS again and, accepted, dials. A LAN or ADSL uplink
// fails.
func (g *Gateway) SetFibre(plugged bool) error {
	obj := g.ponObj()
	if obj == "" {
		return fmt.Errorf("e8sim: a %s uplink has no fibre", g.cfg.Access)
	}
	g.mu.Lock()
	was := g.link.fibreOut
	g.link.fibreOut = !plugged
	ctx := g.runCtx
	g.mu.Unlock()
	if !plugged {
		if err := g.tree.SetValue(obj+"RXPower", g.noLight()); err != nil {
			return fmt.Errorf("e8sim: %w", err)
		}
		_ = g.tree.SetValue(obj+"Status", PONStatusNoSignal)
		for _, inst := range g.wanInstances() {
			if g.enabled(inst) {
				g.down(inst, "ERROR_NO_CARRIER", "Disconnected")
			}
		}
		return nil
	}
	if err := g.writeRx(); err != nil {
		return fmt.Errorf("e8sim: %w", err)
	}
	_ = g.tree.SetValue(obj+"Status", PONStatusInitializing)
	if !was || ctx == nil {
		return nil
	}
	g.register(ctx)
	return nil
}

// ApplyLocal writes parameter values (full name → value) as the gateway
// itself or its local web page would — read-only ones too — and reacts as
// to an ACS write: a changed PPP WAN dials again, a new LOID registers
// with ITMS. It fails, writing nothing more, at the first value the data
// model refuses.
func (g *Gateway) ApplyLocal(values map[string]string) error {
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	changed := make([]cwmp.ParameterValueStruct, 0, len(names))
	for _, n := range names {
		if err := g.tree.SetValue(n, values[n]); err != nil {
			return fmt.Errorf("e8sim: local change of %s: %w", n, err)
		}
		changed = append(changed, cwmp.ParameterValueStruct{Name: n, Value: values[n]})
	}
	g.react(changed)
	return nil
}

// Redial drops and redials every enabled PPP WAN, as the gateway does
// when the BRAS ends its session or its WAN link flaps.
func (g *Gateway) Redial() error {
	ctx := g.runContext()
	if ctx == nil {
		return errNotRunning
	}
	for _, inst := range g.wanInstances() {
		g.down(inst, "ERROR_NONE", "Disconnected")
		g.startDial(ctx, inst)
	}
	return nil
}

// RegisterAgain registers the gateway's LOID with ITMS again and waits for
// the answer, as an ONU does when the OLT drops it or after a restart; an
// accepted registration dials the WANs that are down, a refused one on a
// PON uplink takes the link down.
func (g *Gateway) RegisterAgain() error {
	ctx := g.runContext()
	if ctx == nil {
		return errNotRunning
	}
	if g.tree.Value(userInfo+"UserName") == "" {
		return errors.New("e8sim: the gateway has no LOID to register")
	}
	_ = g.tree.SetValue(userInfo+"Times", strconv.Itoa(atoi(g.tree.Value(userInfo+"Times"))+1))
	g.register(ctx)
	return nil
}

// runContext is the gateway's Run context, nil before Run.
func (g *Gateway) runContext() context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.runCtx
}
