package e8

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fieldagent/drivers"
	"fieldagent/tr069/cwmp"
)

// ConfigureWiFi sets one SSID's name, key (WPA2-PSK) and channel as a
// transaction over that WLANConfiguration. The key is write-only: it is
// never logged, read back or restored.
func (d *Driver) ConfigureWiFi(ctx context.Context, cfg drivers.WiFiConfig) (drivers.Undo, error) {
	if cfg.Index == 0 {
		cfg.Index = 1
	}
	if cfg.SSID == "" || len(cfg.SSID) > 32 {
		return nil, fmt.Errorf("configure wi-fi: SSID %q must have 1 to 32 characters", cfg.SSID)
	}
	if k := len(cfg.Key.Reveal()); k < 8 || k > 63 {
		return nil, errors.New("configure wi-fi: the key must have 8 to 63 characters")
	}
	w := WLANConfig + strconv.Itoa(cfg.Index) + "."
	return d.transact(ctx, "configure wi-fi", []string{w}, func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		ps := []cwmp.ParameterValueStruct{
			boolean(w+"Enable", true), str(w+"SSID", cfg.SSID), str(w+"BeaconType", "11i"),
			str(w+"KeyPassphrase", cfg.Key.Reveal()),
		}
		if cfg.Channel > 0 {
			ps = append(ps, boolean(w+"AutoChannelEnable", false), unsigned(w+"Channel", cfg.Channel))
		} else {
			ps = append(ps, boolean(w+"AutoChannelEnable", true))
		}
		out, err := d.set(ctx, "fieldagent-wifi", ps, ".KeyPassphrase")
		if err != nil {
			return nil, fmt.Errorf("configure %s: %w", w, err)
		}
		return out, nil
	})
}

// ConfigureIPTV adds the IPTV service as a transaction over WANDevice.1 and
// Services.X_CT-COM_IPTV: a new WAN connection device on the IPTV VLAN with
// a bridged WANIPConnection, service list OTHER, bound to LAN4 (or cfg's
// ports), and IGMP snooping/proxy as asked.
func (d *Driver) ConfigureIPTV(ctx context.Context, cfg drivers.IPTVConfig) (drivers.Undo, error) {
	if cfg.VLAN <= 0 || cfg.VLAN > 4094 {
		return nil, fmt.Errorf("configure iptv: VLAN %d is out of range 1-4094: correct the order", cfg.VLAN)
	}
	ports := cfg.LANPorts
	if ports == nil {
		ports = []int{4}
	}
	access, err := d.access(ctx)
	if err != nil {
		return nil, fmt.Errorf("configure iptv: %w", err)
	}
	wcd, conn, err := d.findIPTVWAN(ctx)
	if err != nil {
		return nil, fmt.Errorf("configure iptv: %w", err)
	}
	if conn != "" {
		d.log().Info("reconfiguring the existing IPTV WAN", "device", d.deviceID, "path", conn)
	}
	addWCD := func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		if conn != "" {
			return nil, nil
		}
		n, err := d.acs.AddObject(ctx, d.deviceID, WANConnDevs, "fieldagent-iptv")
		if err != nil {
			return nil, fmt.Errorf("add WANConnectionDevice: %w", err)
		}
		wcd = WANConnDevs + strconv.FormatUint(uint64(n), 10) + "."
		m, err := d.acs.AddObject(ctx, d.deviceID, wcd+"WANIPConnection.", "fieldagent-iptv")
		if err != nil {
			return nil, fmt.Errorf("add WANIPConnection: %w", err)
		}
		conn = wcd + "WANIPConnection." + strconv.FormatUint(uint64(m), 10) + "."
		return nil, nil
	}
	wan := func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		ps := append(vlanParams(access, wcd, conn, cfg.VLAN),
			str(conn+"ConnectionType", "IP_Bridged"), boolean(conn+"NATEnabled", false),
			str(conn+"X_CT-COM_ServiceList", "OTHER"), str(conn+"X_CT-COM_LanInterface", lanBinding(ports, nil)),
			boolean(conn+"Enable", true))
		out, err := d.set(ctx, "fieldagent-iptv", ps)
		if err != nil {
			return nil, fmt.Errorf("configure %s: %w", conn, err)
		}
		return out, nil
	}
	igmp := func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		ps := []cwmp.ParameterValueStruct{
			boolean(IPTVService+"IGMPEnable", cfg.IGMPSnooping || cfg.IGMPProxy),
			boolean(IPTVService+"SnoopingEnable", cfg.IGMPSnooping),
			boolean(IPTVService+"ProxyEnable", cfg.IGMPProxy),
		}
		out, err := d.set(ctx, "fieldagent-iptv", ps)
		if err != nil {
			return nil, fmt.Errorf("configure IGMP: %w", err)
		}
		return out, nil
	}
	return d.transact(ctx, "configure iptv", []string{WANDevice, IPTVService}, addWCD, wan, igmp)
}

// findIPTVWAN returns the bridged WANIPConnection that already carries the
// IPTV service (X_CT-COM_ServiceList OTHER or IPTV) and its connection
// device, or "" for both, so that configuring IPTV twice reuses it.
func (d *Driver) findIPTVWAN(ctx context.Context) (wcd, conn string, err error) {
	infos, err := d.acs.GetParameterNames(ctx, d.deviceID, WANConnDevs, false)
	if err != nil {
		return "", "", fmt.Errorf("list WAN connections: %w", err)
	}
	var lists []string
	for _, in := range infos {
		if strings.Contains(in.Name, ".WANIPConnection.") && strings.HasSuffix(in.Name, ".X_CT-COM_ServiceList") {
			lists = append(lists, in.Name)
		}
	}
	for _, name := range lists {
		c := strings.TrimSuffix(name, "X_CT-COM_ServiceList")
		m, err := d.get(ctx, name, c+"ConnectionType")
		if err != nil {
			return "", "", fmt.Errorf("read %s: %w", c, err)
		}
		svc := strings.ToUpper(m[name])
		if m[c+"ConnectionType"] == "IP_Bridged" && (svc == "OTHER" || svc == "IPTV") {
			return c[:strings.Index(c, "WANIPConnection.")], c, nil
		}
	}
	return "", "", nil
}

// UpgradeFirmware installs img unless the gateway already runs img.Version:
// a Download RPC ("1 Firmware Upgrade Image"), then TRANSFER COMPLETE, then
// the "1 BOOT" Inform of the restart, then SoftwareVersion is checked.
// Errors wrap drivers.ErrFirmware.
func (d *Driver) UpgradeFirmware(ctx context.Context, img drivers.FirmwareImage) (string, bool, error) {
	sv := DeviceInfo + "SoftwareVersion"
	m, err := d.get(ctx, sv)
	if err != nil {
		return "", false, fmt.Errorf("%w: read the running version: %w", drivers.ErrFirmware, err)
	}
	if m[sv] == img.Version {
		return img.Version, false, nil
	}
	if img.URL == "" {
		return m[sv], false, fmt.Errorf("%w: runs %s, %s is required and no image URL was given: add the image to the file server", drivers.ErrFirmware, m[sv], img.Version)
	}
	key := "fieldagent-fw-" + img.Version
	start := d.now()
	resp, err := d.acs.Download(ctx, d.deviceID, cwmp.Download{
		CommandKey: key, FileType: "1 Firmware Upgrade Image", URL: img.URL,
		Username: img.Username, Password: img.Password.Reveal(), FileSize: uint32(img.Size),
	})
	if err != nil {
		return m[sv], false, fmt.Errorf("%w: Download %s: %w", drivers.ErrFirmware, img.Version, err)
	}
	d.log().Info("firmware download started", "device", d.deviceID, "from", m[sv], "to", img.Version)
	if resp.Status == 1 {
		if _, err := d.acs.WaitTransferComplete(ctx, d.deviceID, key); err != nil {
			return m[sv], false, fmt.Errorf("%w: %s: %w", drivers.ErrFirmware, img.Version, err)
		}
		if _, err := d.acs.WaitInform(ctx, d.deviceID, "1 BOOT", start); err != nil {
			return m[sv], false, fmt.Errorf("%w: no BOOT Inform after installing %s: check the gateway's power and lights: %w", drivers.ErrFirmware, img.Version, err)
		}
	}
	got, err := d.get(ctx, sv)
	if err != nil {
		return "", false, fmt.Errorf("%w: read the version after the upgrade: %w", drivers.ErrFirmware, err)
	}
	if got[sv] != img.Version {
		return got[sv], false, fmt.Errorf("%w: the gateway runs %s after installing %s: the image may be for another model", drivers.ErrFirmware, got[sv], img.Version)
	}
	d.log().Info("firmware upgraded", "device", d.deviceID, "version", img.Version)
	return got[sv], true, nil
}

// Reboot restarts the gateway and waits for its "1 BOOT" Inform.
func (d *Driver) Reboot(ctx context.Context) error {
	start := d.now()
	if err := d.acs.Reboot(ctx, d.deviceID, "fieldagent-reboot-"+strconv.FormatInt(start.UnixNano(), 36)); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	if _, err := d.acs.WaitInform(ctx, d.deviceID, "1 BOOT", start); err != nil {
		return fmt.Errorf("reboot: the gateway did not come back: %w", err)
	}
	return nil
}

// FactoryReset resets the gateway to factory defaults and waits for its
// "0 BOOTSTRAP" Inform. Everything configured, the LOID included, is gone.
func (d *Driver) FactoryReset(ctx context.Context) error {
	start := d.now()
	if err := d.acs.FactoryReset(ctx, d.deviceID); err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	if _, err := d.acs.WaitInform(ctx, d.deviceID, "0 BOOTSTRAP", start); err != nil {
		return fmt.Errorf("factory reset: the gateway did not come back: %w", err)
	}
	d.wanPath = ""
	return nil
}
