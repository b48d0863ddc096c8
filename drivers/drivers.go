// Package drivers holds what every device driver shares: the identity a
// device reports, the small capability interfaces that the workflow uses,
// and the errors that drivers return. One package per model (e8, itv, xt2)
// implements them over the transports (tr069/acs, drivers/snmp,
// drivers/sshcli). Drivers never print; they return values and errors.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"fieldagent/agent/secret"
)

// Errors returned by drivers. Wrap them with details; check with errors.Is.
var (
	// ErrMismatch means the device is not the one the order asks for.
	ErrMismatch = errors.New("device does not match the order")
	// ErrPPPoEAuth means the operator's server rejected the PPPoE account (691).
	ErrPPPoEAuth = errors.New("pppoe dial failed: the server rejected the credentials")
	// ErrPPPoENoServer means no access concentrator answered (no PADO).
	ErrPPPoENoServer = errors.New("pppoe dial failed: no access concentrator answered")
	// ErrLOIDRejected means ITMS refused the LOID registration.
	ErrLOIDRejected = errors.New("loid registration rejected")
	// ErrTimeout means the device did not reach the wanted state in time.
	ErrTimeout = errors.New("device did not reach the expected state in time")
	// ErrUnknownDevice means no registered driver matches what the device
	// reported; the error lists what was seen.
	ErrUnknownDevice = errors.New("no driver for this device")
	// ErrUnsupported means the device or its data model lacks the feature.
	ErrUnsupported = errors.New("not supported by this device")
	// ErrVerify means a change was applied but reading it back gave other
	// values.
	ErrVerify = errors.New("the device did not keep the values written")
	// ErrRestoreFailed means a failed change could not be rolled back: the
	// device may be half-configured and needs a look by hand.
	ErrRestoreFailed = errors.New("restoring the previous configuration failed")
	// ErrFirmware means a firmware download or install failed.
	ErrFirmware = errors.New("firmware upgrade failed")
	// ErrIPTVAuth means the set-top box's EPG authentication failed.
	ErrIPTVAuth = errors.New("iptv authentication failed")
	// ErrDiagnostics means a test the device ran itself (a TR-143 transfer,
	// a ping, a trace route) ended in an error state; a *DiagnosticsError
	// says which.
	ErrDiagnostics = errors.New("the device's diagnostics test failed")
)

// Kind is a device family of the operator's catalogue.
type Kind string

// The device kinds fieldagent installs.
const (
	KindE8  Kind = "e8"
	KindITV Kind = "itv"
	KindXT2 Kind = "xt2"
)

// Identity is what a device says it is.
type Identity struct {
	Kind         Kind   `json:"kind"`
	Vendor       string `json:"vendor"`
	Model        string `json:"model"`
	Serial       string `json:"serial"`
	OUI          string `json:"oui"`
	ProductClass string `json:"product_class"`
	Firmware     string `json:"firmware"`
	Hardware     string `json:"hardware,omitempty"`
	// Access is the WAN access type: lan, adsl, epon or gpon (e8 only).
	Access string `json:"access,omitempty"`
	// Class is the e8 gateway class: e8-B (data only) or e8-C (with voice).
	Class string `json:"class,omitempty"`
	// STBID is the iTV set-top box's operator id (itv only).
	STBID string `json:"stbid,omitempty"`
}

// Expectation is what an order asks of a device.
type Expectation struct {
	Kind   Kind
	Access string
	Class  string // e8-B or e8-C; empty: either
	// Model and Serial, if set, are the box the order was issued with.
	Model, Serial string
	Firmware      string // empty: any
}

// Check compares an identity with what the order expects. The error wraps
// ErrMismatch and lists every difference.
func (id Identity) Check(want Expectation) error {
	var diffs []string
	if want.Kind != "" && id.Kind != want.Kind {
		diffs = append(diffs, fmt.Sprintf("kind is %s, order wants %s", id.Kind, want.Kind))
	}
	if want.Access != "" && !strings.EqualFold(id.Access, want.Access) {
		diffs = append(diffs, fmt.Sprintf("access type is %s, order wants %s: bring a %s gateway or correct the order", id.Access, want.Access, strings.ToUpper(want.Access)))
	}
	if want.Serial != "" && !strings.EqualFold(id.Serial, want.Serial) {
		diffs = append(diffs, fmt.Sprintf("serial is %s, the order was issued with %s: wrong box delivered, install the one on the order or correct the order", id.Serial, want.Serial))
	}
	if want.Model != "" && !strings.EqualFold(id.Model, want.Model) && !strings.EqualFold(id.ProductClass, want.Model) {
		diffs = append(diffs, fmt.Sprintf("model is %s, the order wants %s: wrong box delivered", orUnknown(id.Model), want.Model))
	}
	if want.Class != "" && !strings.EqualFold(id.Class, want.Class) {
		diffs = append(diffs, fmt.Sprintf("gateway class is %s, order wants %s: an e8-C carries the voice lines an e8-B lacks", orUnknown(id.Class), want.Class))
	}
	if want.Firmware != "" && id.Firmware != want.Firmware {
		diffs = append(diffs, fmt.Sprintf("firmware is %s, order requires %s: upgrade the firmware first", id.Firmware, want.Firmware))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(diffs, "; "))
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// PPPoEConfig is routed internet over PPPoE dialled by the gateway, or a
// bridged internet WAN that a PC behind the gateway dials.
type PPPoEConfig struct {
	// Username and Password are the PPPoE account; both are required unless
	// Bridge is set.
	Username string
	Password secret.Secret
	// VLAN is the 802.1Q tag of the internet service; 0 means untagged.
	VLAN int
	// Bridge asks for PPPoE_Bridged (no NAT, no account on the gateway)
	// instead of IP_Routed.
	Bridge bool
	// LANPorts are the LAN ports (1-based) bound to the WAN; nil means 1-3.
	LANPorts []int
	// SSIDs are the Wi-Fi SSIDs (1-based) bound to the WAN; nil means 1.
	SSIDs []int
}

// WANStatus is the state of the internet connection.
type WANStatus struct {
	Instance       string `json:"instance"`
	ConnectionType string `json:"connection_type"`
	Status         string `json:"status"`
	ExternalIP     string `json:"external_ip,omitempty"`
	LastError      string `json:"last_error,omitempty"`
	NAT            bool   `json:"nat"`
	ServiceList    string `json:"service_list,omitempty"`
	Uptime         int    `json:"uptime_seconds,omitempty"`
}

// Up reports whether the WAN is connected with an address.
func (s WANStatus) Up() bool { return s.Status == "Connected" && s.ExternalIP != "" }

// LOIDResult is the outcome of an e8 LOID registration with ITMS.
type LOIDResult struct {
	// Outcome is one of the LOIDOutcome values.
	Outcome LOIDOutcome `json:"outcome"`
	Status  string      `json:"status"` // X_CT-COM_UserInfo.Status
	Result  string      `json:"result"` // X_CT-COM_UserInfo.Result
	// Registered is true when ITMS accepted the LOID and delivered the service.
	Registered bool   `json:"registered"`
	Detail     string `json:"detail"`
}

// LOIDOutcome summarises a LOID registration.
type LOIDOutcome string

// The outcomes of a LOID registration.
const (
	LOIDInProgress        LOIDOutcome = "in_progress"
	LOIDSuccess           LOIDOutcome = "success"
	LOIDFailure           LOIDOutcome = "failure"
	LOIDAlreadyRegistered LOIDOutcome = "already_registered"
	LOIDAttemptsExceeded  LOIDOutcome = "attempts_exceeded"
)

// Undo reverts one configuration change. Drivers return one with every
// change so that a workflow can roll back a half-finished install.
type Undo func(ctx context.Context) error

// Identifier is a device that reports who it is.
type Identifier interface {
	Identify(ctx context.Context) (Identity, error)
}

// InternetConfigurer configures the internet WAN: routed PPPoE with a VLAN
// and LAN binding, or bridge mode.
type InternetConfigurer interface {
	ConfigurePPPoE(ctx context.Context, cfg PPPoEConfig) (Undo, error)
	WANStatus(ctx context.Context) (WANStatus, error)
}

// RestoreError reports a change that failed and what became of the restore
// of the snapshot taken before it. errors.Is sees both the failure and, when
// the restore failed, ErrRestoreFailed and the restore's own error.
type RestoreError struct {
	// Op names the change, e.g. "configure pppoe".
	Op string
	// Err is why the change failed (a fault, ErrVerify, a lost session).
	Err error
	// RestoreErr is nil when the device is back as it was.
	RestoreErr error
}

// Restored reports whether the device was returned to its snapshot.
func (e *RestoreError) Restored() bool { return e.RestoreErr == nil }

// Error says what failed and whether the device is back as it was.
func (e *RestoreError) Error() string {
	if e.RestoreErr == nil {
		return fmt.Sprintf("%s failed and was rolled back (the device is as before): %v", e.Op, e.Err)
	}
	return fmt.Sprintf("%s failed: %v; %v: %v: check the device by hand", e.Op, e.Err, ErrRestoreFailed, e.RestoreErr)
}

// Unwrap returns the failure and, if the restore failed, ErrRestoreFailed
// and the restore's error.
func (e *RestoreError) Unwrap() []error {
	if e.RestoreErr == nil {
		return []error{e.Err}
	}
	return []error{e.Err, ErrRestoreFailed, e.RestoreErr}
}

// AccountBinder registers the operator's account (the e8 LOID) on a device.
type AccountBinder interface {
	RegisterLOID(ctx context.Context, loid, password string) (LOIDResult, Undo, error)
}

// IPTVConfig is the IPTV service of a gateway: a bridged WAN on its own VLAN
// bound to LAN ports, with IGMP snooping.
type IPTVConfig struct {
	// VLAN is the IPTV VLAN (required).
	VLAN int
	// LANPorts are bound to the IPTV WAN; nil means 4.
	LANPorts []int
	// IGMPSnooping and IGMPProxy turn on the gateway's multicast handling.
	IGMPSnooping, IGMPProxy bool
}

// IPTVConfigurer configures the IPTV service of a gateway.
type IPTVConfigurer interface {
	ConfigureIPTV(ctx context.Context, cfg IPTVConfig) (Undo, error)
}

// WiFiConfig is the configuration of one SSID.
type WiFiConfig struct {
	// Index is the SSID number (1-based); 0 means 1.
	Index int
	SSID  string
	Key   secret.Secret
	// Channel is the radio channel; 0 means automatic.
	Channel int
}

// WiFiConfigurer configures a Wi-Fi SSID.
type WiFiConfigurer interface {
	ConfigureWiFi(ctx context.Context, cfg WiFiConfig) (Undo, error)
}

// Snapshot is the writable state of part of a device's configuration, taken
// before a change so that Restore can put it back. Write-only values
// (passwords, keys) cannot be read and are not in it.
type Snapshot struct {
	// Roots are the object paths the snapshot covers.
	Roots []string `json:"roots"`
	// Values holds the writable parameters' values by full path.
	Values map[string]string `json:"values"`
	// Types holds the parameters' xsd types by full path.
	Types map[string]string `json:"types"`
	// Instances are the multi-instance object instances that existed.
	Instances []string `json:"instances"`
}

// Snapshotter saves and restores the configuration under some objects.
type Snapshotter interface {
	Snapshot(ctx context.Context, roots ...string) (Snapshot, error)
	Restore(ctx context.Context, s Snapshot) error
}

// FirmwareImage is a firmware file the device can fetch.
type FirmwareImage struct {
	// Version is what the device reports once it runs the image.
	Version string
	// URL is where the device downloads it; Username and Password, if set,
	// authenticate the download.
	URL      string
	Username string
	Password secret.Secret
	// Size is the file size in bytes, 0 if unknown.
	Size int64
}

// FirmwareUpgrader compares a device's firmware with the one required and
// upgrades it. Upgrade returns the version running afterwards; upgraded is
// false when the device already ran img.Version.
type FirmwareUpgrader interface {
	UpgradeFirmware(ctx context.Context, img FirmwareImage) (version string, upgraded bool, err error)
}

// Rebooter restarts a device and waits until it is back.
type Rebooter interface {
	Reboot(ctx context.Context) error
}

// StatusReader reads a device's state. Methods a device cannot answer return
// an error that wraps ErrUnsupported.
type StatusReader interface {
	WANConnections(ctx context.Context) ([]WANStatus, error)
	Optical(ctx context.Context) (Optical, error)
	DSLLine(ctx context.Context) (DSLLine, error)
	LANPorts(ctx context.Context) ([]LANPort, error)
	WiFi(ctx context.Context) ([]WiFiStatus, error)
	LANHosts(ctx context.Context) ([]LANHost, error)
}

// Optical is a PON transceiver's readings, decoded to SI-ish units.
type Optical struct {
	// Access is epon or gpon.
	Access     string  `json:"access"`
	Status     string  `json:"status,omitempty"`
	RxPowerDBm float64 `json:"rx_power_dbm"`
	TxPowerDBm float64 `json:"tx_power_dbm"`
	// TemperatureC is the transceiver temperature in °C.
	TemperatureC float64 `json:"temperature_c"`
	// VoltageV is the supply voltage in volts.
	VoltageV float64 `json:"voltage_v"`
	// BiasMA is the laser bias current in mA.
	BiasMA float64 `json:"bias_ma"`
	// Profile names the vendor decoding used.
	Profile string `json:"profile"`
}

// DSLLine is an ADSL/VDSL line's state.
type DSLLine struct {
	Status            string  `json:"status"`
	UpstreamKbps      int     `json:"upstream_kbps"`
	DownstreamKbps    int     `json:"downstream_kbps"`
	UpstreamSNRdB     float64 `json:"upstream_snr_margin_db"`
	DownstreamSNRdB   float64 `json:"downstream_snr_margin_db"`
	UpstreamAttenDB   float64 `json:"upstream_attenuation_db"`
	DownstreamAttenDB float64 `json:"downstream_attenuation_db"`
	CRCErrors         int     `json:"crc_errors"`
}

// LANPort is one Ethernet LAN port.
type LANPort struct {
	Port   int    `json:"port"`
	Status string `json:"status"`
	Up     bool   `json:"up"`
	// SpeedMbps is 0 when unknown or automatic without link.
	SpeedMbps int    `json:"speed_mbps"`
	Duplex    string `json:"duplex"`
}

// WiFiStatus is one SSID's state; the key is never read.
type WiFiStatus struct {
	Index   int    `json:"index"`
	SSID    string `json:"ssid"`
	Enabled bool   `json:"enabled"`
	Channel int    `json:"channel"`
	Clients int    `json:"clients"`
}

// LANHost is a device seen on the LAN.
type LANHost struct {
	MAC       string `json:"mac"`
	IP        string `json:"ip"`
	Hostname  string `json:"hostname,omitempty"`
	Interface string `json:"interface,omitempty"`
	Active    bool   `json:"active"`
	// AddressSource is how the host got its address: DHCP, Static or
	// AutoIP; empty when the device does not say.
	AddressSource string `json:"address_source,omitempty"`
	// LeaseSeconds is what is left of a DHCP lease; -1 for none (a static
	// address), 0 when unknown.
	LeaseSeconds int `json:"lease_seconds,omitempty"`
}

// STBConfigurer sets a set-top box's service account, EPG servers and
// network mode.
type STBConfigurer interface {
	ConfigureAccount(ctx context.Context, acct STBAccount) (Undo, error)
}

// STBAccount is the iTV service account of a set-top box.
type STBAccount struct {
	UserID   string
	Password secret.Secret
	// AuthURL and AuthURLBackup are the EPG authentication servers.
	AuthURL, AuthURLBackup string
	// Mode is the network mode: dhcp, pppoe, static or dhcp+option60.
	Mode string
	// PPPoEID and PPPoEPassword are the access account in pppoe mode.
	PPPoEID       string
	PPPoEPassword secret.Secret
	// Static is the box's address in static mode (required there).
	Static *StaticIP
}

// StaticIP is a fixed IPv4 configuration: dotted-quad address, mask and
// gateway, and up to two DNS servers.
type StaticIP struct {
	Address, Mask, Gateway string
	DNS                    []string
}

// Validate checks that the addresses parse, the mask is contiguous and the
// gateway is on the address's subnet; the error names the bad field.
func (s StaticIP) Validate() error {
	ip := net.ParseIP(s.Address).To4()
	if ip == nil {
		return fmt.Errorf("static address %q is not an IPv4 address", s.Address)
	}
	m := net.ParseIP(s.Mask).To4()
	if m == nil {
		return fmt.Errorf("subnet mask %q is not a dotted-quad mask", s.Mask)
	}
	mask := net.IPMask(m)
	if ones, bits := mask.Size(); bits == 0 || ones == 0 {
		return fmt.Errorf("subnet mask %q is not contiguous", s.Mask)
	}
	gw := net.ParseIP(s.Gateway).To4()
	if gw == nil {
		return fmt.Errorf("default gateway %q is not an IPv4 address", s.Gateway)
	}
	if !ip.Mask(mask).Equal(gw.Mask(mask)) {
		return fmt.Errorf("default gateway %s is not on the subnet of %s/%s", s.Gateway, s.Address, s.Mask)
	}
	if ip.Equal(gw) {
		return fmt.Errorf("static address %s is the default gateway's", s.Address)
	}
	if len(s.DNS) == 0 || len(s.DNS) > 2 {
		return fmt.Errorf("static mode needs one or two DNS servers, got %d", len(s.DNS))
	}
	for _, d := range s.DNS {
		if net.ParseIP(d).To4() == nil {
			return fmt.Errorf("DNS server %q is not an IPv4 address", d)
		}
	}
	return nil
}
