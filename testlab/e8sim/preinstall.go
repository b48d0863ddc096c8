package e8sim

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"fieldagent/agent/secret"
)

// Preinstall is what a completed install leaves on a gateway: the INTERNET
// PPPoE WAN and, on a PON uplink, the registered LOID. Config.Preinstall
// puts it on a gateway that then boots as an installed one would: it
// registers the LOID with ITMS again and dials, with no ACS involved.
type Preinstall struct {
	// PPPoEUser and PPPoEPassword are the account on the INTERNET WAN
	// (both required). A password the BRAS does not accept leaves the WAN
	// Disconnected with ERROR_AUTHENTICATION_FAILURE, as on a gateway whose
	// account was changed or mistyped.
	PPPoEUser     string
	PPPoEPassword secret.Secret
	// LOID and LOIDPassword are the ONT registration written to
	// X_CT-COM_UserInfo (UserName and UserId); an empty LOID leaves
	// UserInfo at its factory values, which on a PON uplink keeps the WAN
	// waiting for the optical link.
	LOID         secret.Secret
	LOIDPassword secret.Secret
}

// preinstall writes p into the tree after the engine took its factory
// snapshot, so a FactoryReset still returns the gateway to factory state.
// The WAN is the one drivers/e8 ConfigurePPPoE creates: WANPPPConnection.1
// of WANConnectionDevice.1, IP_Routed with NAT, service list INTERNET,
// bound to LAN1-3 and SSID1, enabled. Values are written without value
// change notification: the gateway was installed before it booted.
func (g *Gateway) preinstall(p Preinstall) error {
	if p.PPPoEUser == "" || p.PPPoEPassword.IsZero() {
		return errors.New("Preinstall needs PPPoEUser and PPPoEPassword")
	}
	n, err := g.tree.AddInstance(pppTable)
	if err != nil {
		return fmt.Errorf("preinstall WAN: %w", err)
	}
	inst := pppTable + strconv.FormatUint(uint64(n), 10) + "."
	const lan, wlan = root + "LANDevice.1.LANEthernetInterfaceConfig.", root + "LANDevice.1.WLANConfiguration."
	values := [][2]string{
		{inst + "X_CT-COM_ServiceList", "INTERNET"},
		{inst + "X_CT-COM_LanInterface", lan + "1," + lan + "2," + lan + "3," + wlan + "1"},
		{inst + "ConnectionType", "IP_Routed"},
		{inst + "NATEnabled", "1"},
		{inst + "Username", p.PPPoEUser},
		{inst + "Password", p.PPPoEPassword.Reveal()},
		{inst + "Enable", "1"},
		{inst + "ConnectionStatus", "Connecting"},
	}
	if !p.LOID.IsZero() {
		// What a successful RegisterLOID leaves: one attempt, registered,
		// service delivered.
		values = append(values,
			[2]string{userInfo + "UserName", p.LOID.Reveal()},
			[2]string{userInfo + "UserId", p.LOIDPassword.Reveal()},
			[2]string{userInfo + "Times", "1"},
			[2]string{userInfo + "Status", "0"},
			[2]string{userInfo + "Result", "1"},
		)
	}
	for _, kv := range values {
		prm, ok := g.tree.Get(kv[0])
		if !ok {
			return fmt.Errorf("preinstall: the data model has no %s", kv[0])
		}
		prm.Value = kv[1]
		g.tree.Set(prm)
	}
	g.mu.Lock()
	g.wans[inst] = true
	g.mu.Unlock()
	g.installed = true
	return nil
}

// boot brings a preinstalled gateway up as it would after a power cycle:
// with a LOID it registers with ITMS, which dials the WANs once ITMS accepts
// (on a PON uplink there is no link before that); a gateway without a LOID,
// or on a LAN or ADSL uplink that ITMS refused, dials at once.
func (g *Gateway) boot(ctx context.Context) {
	if g.tree.Value(userInfo+"UserName") != "" {
		g.register(ctx)
		if g.tree.Value(userInfo+"Status") == "0" || g.pon() {
			return
		}
	}
	for _, inst := range g.wanInstances() {
		g.startDial(ctx, inst)
	}
}

// wanInstances lists the gateway's PPP WAN instances.
func (g *Gateway) wanInstances() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	insts := make([]string, 0, len(g.wans))
	for inst := range g.wans {
		insts = append(insts, inst)
	}
	return insts
}
