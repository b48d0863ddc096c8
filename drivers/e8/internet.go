package e8

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/tr069/cwmp"
)

// findInternetWAN returns the WANPPPConnection instance that already carries
// the INTERNET service, or "".
func (d *Driver) findInternetWAN(ctx context.Context) (string, error) {
	infos, err := d.acs.GetParameterNames(ctx, d.deviceID, WANPPPTable, true)
	if err != nil {
		return "", fmt.Errorf("list WAN connections: %w", err)
	}
	for _, in := range infos {
		if !strings.HasSuffix(in.Name, ".") {
			continue
		}
		m, err := d.get(ctx, in.Name+"X_CT-COM_ServiceList")
		if err != nil {
			return "", fmt.Errorf("read %s: %w", in.Name, err)
		}
		if strings.Contains(strings.ToUpper(m[in.Name+"X_CT-COM_ServiceList"]), "INTERNET") {
			return in.Name, nil
		}
	}
	return "", nil
}

// lanBinding is the X_CT-COM_LanInterface value that binds LAN ports and
// SSIDs to a WAN.
func lanBinding(ports, ssids []int) string {
	var parts []string
	for _, p := range ports {
		parts = append(parts, LANEthernet+strconv.Itoa(p))
	}
	for _, s := range ssids {
		parts = append(parts, WLANConfig+strconv.Itoa(s))
	}
	return strings.Join(parts, ",")
}

// access reads the WAN access type (lan, adsl, epon, gpon).
func (d *Driver) access(ctx context.Context) (string, error) {
	name := WANDevice + "WANCommonInterfaceConfig.WANAccessType"
	m, err := d.get(ctx, name)
	if err != nil {
		return "", fmt.Errorf("read the access type: %w", err)
	}
	return accessType(m[name]), nil
}

// vlanParams tags the WAN connection device wcd (or, on LAN and ADSL
// uplinks, the connection conn itself) with vlan.
func vlanParams(access, wcd, conn string, vlan int) []cwmp.ParameterValueStruct {
	switch access {
	case "gpon":
		return []cwmp.ParameterValueStruct{unsigned(wcd+"X_CT-COM_WANGponLinkConfig.VLANIDMark", vlan), unsigned(wcd+"X_CT-COM_WANGponLinkConfig.Mode", 2)}
	case "epon":
		return []cwmp.ParameterValueStruct{unsigned(wcd+"X_CT-COM_WANEponLinkConfig.VLANIDMark", vlan), unsigned(wcd+"X_CT-COM_WANEponLinkConfig.Mode", 2)}
	}
	return []cwmp.ParameterValueStruct{unsigned(conn+"X_CT-COM_VLANIDMark", vlan)}
}

// ConfigurePPPoE configures the internet WAN as one transaction: a
// WANPPPConnection in IP_Routed mode with NAT, the order's PPPoE account,
// service list INTERNET, bound to LAN1-3 and SSID1 (or cfg's ports), on the
// access type's VLAN; or PPPoE_Bridged when cfg.Bridge. A connection that
// already carries INTERNET is reconfigured rather than duplicated. The
// objects under WANConnectionDevice.1 are snapshotted first; if any step
// faults, the read-back differs or the session is lost, the snapshot is
// restored and the error is a *drivers.RestoreError saying whether that
// worked. The Undo restores the snapshot (all but a write-only password the
// change replaced, which no gateway reveals).
func (d *Driver) ConfigurePPPoE(ctx context.Context, cfg drivers.PPPoEConfig) (drivers.Undo, error) {
	if !cfg.Bridge && (cfg.Username == "" || cfg.Password.IsZero()) {
		return nil, errors.New("configure pppoe: the order has no PPPoE account or password")
	}
	if cfg.VLAN < 0 || cfg.VLAN > 4094 {
		return nil, fmt.Errorf("configure pppoe: VLAN %d is out of range 0-4094: correct the order", cfg.VLAN)
	}
	ports, ssids := cfg.LANPorts, cfg.SSIDs
	if ports == nil {
		ports = []int{1, 2, 3}
	}
	if ssids == nil {
		ssids = []int{1}
	}
	access, err := d.access(ctx)
	if err != nil {
		return nil, fmt.Errorf("configure pppoe: %w", err)
	}
	path, err := d.findInternetWAN(ctx)
	if err != nil {
		return nil, fmt.Errorf("configure pppoe: %w", err)
	}
	if path != "" {
		d.log().Info("reconfiguring the existing internet WAN", "device", d.deviceID, "path", path)
	}
	create := func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		if path != "" {
			return nil, nil
		}
		n, err := d.acs.AddObject(ctx, d.deviceID, WANPPPTable, "fieldagent-wan")
		if err != nil {
			return nil, fmt.Errorf("add WANPPPConnection: %w", err)
		}
		path = WANPPPTable + strconv.FormatUint(uint64(n), 10) + "."
		return nil, nil
	}
	vlan := func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		if cfg.VLAN == 0 {
			return nil, nil
		}
		ps, err := d.set(ctx, "fieldagent-wan", vlanParams(access, WANConnDev, path, cfg.VLAN))
		if err != nil {
			return nil, fmt.Errorf("set internet VLAN %d: %w", cfg.VLAN, err)
		}
		return ps, nil
	}
	wan := func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		ps := []cwmp.ParameterValueStruct{
			str(path+"X_CT-COM_ServiceList", "INTERNET"),
			str(path+"X_CT-COM_LanInterface", lanBinding(ports, ssids)),
		}
		if cfg.Bridge {
			ps = append(ps, str(path+"ConnectionType", "PPPoE_Bridged"), boolean(path+"NATEnabled", false))
		} else {
			ps = append(ps,
				str(path+"ConnectionType", "IP_Routed"), boolean(path+"NATEnabled", true),
				str(path+"Username", cfg.Username), str(path+"Password", cfg.Password.Reveal()))
		}
		ps = append(ps, boolean(path+"Enable", true))
		out, err := d.set(ctx, "fieldagent-wan", ps, ".Password")
		if err != nil {
			return nil, fmt.Errorf("configure %s: %w", path, err)
		}
		return out, nil
	}
	undo, err := d.transact(ctx, "configure internet WAN", []string{WANConnDev}, create, vlan, wan)
	if err != nil {
		return nil, err
	}
	d.wanPath = path
	mode := "routed"
	if cfg.Bridge {
		mode = "bridged"
	}
	d.log().Info("configured internet WAN", "device", d.deviceID, "path", path, "mode", mode, "vlan", cfg.VLAN, "user", secret.Hint(cfg.Username))
	return undo, nil
}

// WANConnections lists every WAN connection (PPP and IP) on every WAN
// connection device.
func (d *Driver) WANConnections(ctx context.Context) ([]drivers.WANStatus, error) {
	pv, err := d.acs.GetParameterValues(ctx, d.deviceID, WANConnDevs)
	if err != nil {
		return nil, fmt.Errorf("read WAN connections: %w", err)
	}
	byInst := map[string]map[string]string{}
	var order []string
	for _, p := range pv {
		rest := strings.TrimPrefix(p.Name, WANConnDevs)
		parts := strings.SplitN(rest, ".", 4)
		if len(parts) < 4 || (parts[1] != "WANPPPConnection" && parts[1] != "WANIPConnection") || strings.Contains(parts[3], ".") {
			continue
		}
		inst := WANConnDevs + strings.Join(parts[:3], ".") + "."
		if byInst[inst] == nil {
			byInst[inst] = map[string]string{}
			order = append(order, inst)
		}
		byInst[inst][parts[3]] = p.Value
	}
	out := make([]drivers.WANStatus, 0, len(order))
	for _, inst := range order {
		m := byInst[inst]
		up, _ := strconv.Atoi(m["Uptime"])
		out = append(out, drivers.WANStatus{
			Instance: inst, ConnectionType: m["ConnectionType"], Status: m["ConnectionStatus"],
			ExternalIP: m["ExternalIPAddress"], LastError: m["LastConnectionError"],
			NAT: sameValue(m["NATEnabled"], "1"), ServiceList: m["X_CT-COM_ServiceList"], Uptime: up,
		})
	}
	return out, nil
}
