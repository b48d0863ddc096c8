package e8

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"fieldagent/drivers"
	"fieldagent/tr069/cwmp"
)

// OpticalProfile is how a vendor encodes the PON transceiver readings in
// X_CT-COM_EponInterfaceConfig / X_CT-COM_GponInterfaceConfig. The scale
// factors convert a reading to dBm-free SI units; PowerUW01 means the power
// is given in 0.1 µW (converted to dBm), otherwise as dBm text.
type OpticalProfile struct {
	Name string
	// PowerUW01 is true when RXPower/TXPower are in units of 0.1 µW.
	PowerUW01 bool
	// TempScale, VoltScale and BiasScale multiply the raw values to give °C,
	// V and mA.
	TempScale, VoltScale, BiasScale float64
}

// NoLightDBm is the power reported when a transceiver reads (almost) zero,
// where the logarithm has no finite value.
const NoLightDBm = -40.0

// Built-in optical profiles.
var (
	// ProfileDBmText reads decimal text in dBm, °C, V and mA.
	ProfileDBmText = OpticalProfile{Name: "dbm-text", TempScale: 1, VoltScale: 1, BiasScale: 1}
	// ProfileSFF8472 reads the transceiver's raw SFF-8472 units: power in
	// 0.1 µW, temperature in 1/256 °C, voltage in 100 µV, bias in 2 µA.
	ProfileSFF8472 = OpticalProfile{Name: "sff8472", PowerUW01: true, TempScale: 1.0 / 256, VoltScale: 1e-4, BiasScale: 2e-3}
)

// OpticalProfileFor returns the decoding for a manufacturer's gateways:
// vendors known to pass SFF-8472 units through get ProfileSFF8472, the rest
// ProfileDBmText.
func OpticalProfileFor(manufacturer string) OpticalProfile {
	switch strings.ToUpper(manufacturer) {
	case "FIBERHOME", "YOUHUA", "SKYWORTH":
		return ProfileSFF8472
	}
	return ProfileDBmText
}

// Decode turns one reading into dBm (power; NoLightDBm for no light) or
// °C, V and mA; field is
// RXPower, TXPower, TransceiverTemperature, SupplyVottage or BiasCurrent.
func (p OpticalProfile) Decode(field, raw string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("optical %s %q is not a number (profile %s)", field, raw, p.Name)
	}
	switch field {
	case "RXPower", "TXPower":
		if !p.PowerUW01 {
			return v, nil
		}
		if v < 1 { // below 0.1 µW: no light
			return NoLightDBm, nil
		}
		return math.Round(10*math.Log10(v/10/1000)*100) / 100, nil
	case "TransceiverTemperature":
		return v * p.TempScale, nil
	case "SupplyVottage":
		return v * p.VoltScale, nil
	case "BiasCurrent":
		return v * p.BiasScale, nil
	}
	return v, nil
}

// Optical reads the PON transceiver (EPON or GPON). A LAN or ADSL uplink
// gives drivers.ErrUnsupported.
func (d *Driver) Optical(ctx context.Context) (drivers.Optical, error) {
	m, err := d.get(ctx, WANDevice+"WANCommonInterfaceConfig.WANAccessType", DeviceInfo+"Manufacturer")
	if err != nil {
		return drivers.Optical{}, fmt.Errorf("read optical: %w", err)
	}
	access := accessType(m[WANDevice+"WANCommonInterfaceConfig.WANAccessType"])
	var obj string
	switch access {
	case "epon":
		obj = WANDevice + "X_CT-COM_EponInterfaceConfig."
	case "gpon":
		obj = WANDevice + "X_CT-COM_GponInterfaceConfig."
	default:
		return drivers.Optical{}, fmt.Errorf("read optical: %w: the uplink is %s, not PON", drivers.ErrUnsupported, access)
	}
	prof := OpticalProfileFor(m[DeviceInfo+"Manufacturer"])
	if d.OpticalProfile != nil {
		prof = *d.OpticalProfile
	}
	fields := []string{"Status", "RXPower", "TXPower", "TransceiverTemperature", "SupplyVottage", "BiasCurrent"}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = obj + f
	}
	v, err := d.get(ctx, names...)
	if err != nil {
		return drivers.Optical{}, fmt.Errorf("read optical: %w", err)
	}
	o := drivers.Optical{Access: access, Status: v[obj+"Status"], Profile: prof.Name}
	dst := map[string]*float64{"RXPower": &o.RxPowerDBm, "TXPower": &o.TxPowerDBm, "TransceiverTemperature": &o.TemperatureC, "SupplyVottage": &o.VoltageV, "BiasCurrent": &o.BiasMA}
	for f, p := range dst {
		x, err := prof.Decode(f, v[obj+f])
		if err != nil {
			return o, fmt.Errorf("read optical: %w", err)
		}
		*p = x
	}
	return o, nil
}

// DSLLine reads the ADSL line (noise margins and attenuation in dB, rates
// in kbit/s).
func (d *Driver) DSLLine(ctx context.Context) (drivers.DSLLine, error) {
	access, err := d.access(ctx)
	if err != nil {
		return drivers.DSLLine{}, fmt.Errorf("read DSL line: %w", err)
	}
	if access != "adsl" {
		return drivers.DSLLine{}, fmt.Errorf("read DSL line: %w: the uplink is %s", drivers.ErrUnsupported, access)
	}
	p := WANDevice + "WANDSLInterfaceConfig."
	m, err := d.get(ctx, p)
	if err != nil {
		return drivers.DSLLine{}, fmt.Errorf("read DSL line: %w", err)
	}
	i := func(n string) int { v, _ := strconv.Atoi(m[p+n]); return v }
	tenth := func(n string) float64 { return float64(i(n)) / 10 }
	return drivers.DSLLine{
		Status: m[p+"Status"], UpstreamKbps: i("UpstreamCurrRate"), DownstreamKbps: i("DownstreamCurrRate"),
		UpstreamSNRdB: tenth("UpstreamNoiseMargin"), DownstreamSNRdB: tenth("DownstreamNoiseMargin"),
		UpstreamAttenDB: tenth("UpstreamAttenuation"), DownstreamAttenDB: tenth("DownstreamAttenuation"),
		CRCErrors: i("Stats.Total.CRCErrors"),
	}, nil
}

// instances groups the values under table (e.g. LANEthernet) by instance
// number: the result maps n to field name to value.
func (d *Driver) instances(ctx context.Context, table string) (map[int]map[string]string, []int, error) {
	pv, err := d.acs.GetParameterValues(ctx, d.deviceID, table)
	if err != nil {
		return nil, nil, err
	}
	out := map[int]map[string]string{}
	var order []int
	for _, p := range pv {
		nstr, field, ok := strings.Cut(strings.TrimPrefix(p.Name, table), ".")
		n, err := strconv.Atoi(nstr)
		if !ok || err != nil {
			continue
		}
		if out[n] == nil {
			out[n] = map[string]string{}
			order = append(order, n)
		}
		out[n][field] = p.Value
	}
	return out, order, nil
}

// LANPorts reads the Ethernet LAN ports.
func (d *Driver) LANPorts(ctx context.Context) ([]drivers.LANPort, error) {
	m, order, err := d.instances(ctx, LANEthernet)
	if err != nil {
		return nil, fmt.Errorf("read LAN ports: %w", err)
	}
	out := make([]drivers.LANPort, 0, len(order))
	for _, n := range order {
		f := m[n]
		speed, _ := strconv.Atoi(f["MaxBitRate"])
		out = append(out, drivers.LANPort{Port: n, Status: f["Status"], Up: f["Status"] == "Up", SpeedMbps: speed, Duplex: f["DuplexMode"]})
	}
	return out, nil
}

// WiFi reads the SSIDs (never their keys).
func (d *Driver) WiFi(ctx context.Context) ([]drivers.WiFiStatus, error) {
	m, order, err := d.instances(ctx, WLANConfig)
	if err != nil {
		return nil, fmt.Errorf("read Wi-Fi: %w", err)
	}
	out := make([]drivers.WiFiStatus, 0, len(order))
	for _, n := range order {
		f := m[n]
		ch, _ := strconv.Atoi(f["Channel"])
		cl, _ := strconv.Atoi(f["TotalAssociations"])
		out = append(out, drivers.WiFiStatus{Index: n, SSID: f["SSID"], Enabled: sameValue(f["Enable"], "1"), Channel: ch, Clients: cl})
	}
	return out, nil
}

// LANHosts reads LANDevice.1.Hosts.Host (the gateway's DHCP leases and
// learned hosts), in table order; a gateway whose data model lacks the
// table gives drivers.ErrUnsupported.
func (d *Driver) LANHosts(ctx context.Context) ([]drivers.LANHost, error) {
	table := LANDev + "Hosts.Host."
	m, order, err := d.instances(ctx, table)
	var f *cwmp.Fault
	if errors.As(err, &f) && f.Code == cwmp.FaultInvalidParameterName {
		return nil, fmt.Errorf("read LAN hosts: %w: %w", drivers.ErrUnsupported, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read LAN hosts: %w", err)
	}
	out := make([]drivers.LANHost, 0, len(order))
	for _, n := range order {
		f := m[n]
		lease, _ := strconv.Atoi(f["LeaseTimeRemaining"])
		out = append(out, drivers.LANHost{
			MAC: f["MACAddress"], IP: f["IPAddress"], Hostname: f["HostName"], Interface: f["InterfaceType"],
			Active: sameValue(f["Active"], "1"), AddressSource: f["AddressSource"], LeaseSeconds: lease,
		})
	}
	return out, nil
}
