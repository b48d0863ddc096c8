// Package e8 drives China Telecom e8 home gateways (ADSL, LAN, EPON and GPON
// uplinks) over TR-069, using the TR-098 data model with the X_CT-COM
// extensions:
//
//   - identity from InternetGatewayDevice.DeviceInfo and the access type from
//     WANDevice.1.WANCommonInterfaceConfig.WANAccessType;
//   - internet as a WANPPPConnection (IP_Routed with NAT, or PPPoE_Bridged)
//     with service list INTERNET, bound to LAN1-3 and SSID1 through
//     X_CT-COM_LanInterface, on the VLAN of X_CT-COM_WANGponLinkConfig /
//     X_CT-COM_WANEponLinkConfig (the connection's own X_CT-COM_VLANIDMark on
//     LAN and ADSL uplinks);
//   - IPTV as a bridged WANIPConnection on its own WAN connection device and
//     VLAN, service list OTHER, bound to LAN4, with
//     Services.X_CT-COM_IPTV IGMP snooping/proxy;
//   - Wi-Fi (SSID, key, channel), status getters (WAN list, optical readings
//     decoded by a per-vendor OpticalProfile, DSL line, LAN ports, Wi-Fi,
//     LAN hosts), firmware upgrade through Download, reboot, factory reset;
//   - LOID registration with the operator's ITMS through
//     InternetGatewayDevice.X_CT-COM_UserInfo (UserName, UserId, Status,
//     Result, Limit, Times).
//
// Every change is a transaction (drivers/cwmptx): the objects it touches are
// snapshotted, the change is applied, read back and verified, and on any
// failure the snapshot is restored and a *drivers.RestoreError reports both.
// Every change returns a drivers.Undo that restores the snapshot, so that the
// workflow can roll back a half-finished install.
package e8

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"fieldagent/drivers"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Data model paths the driver uses.
const (
	Root        = "InternetGatewayDevice."
	DeviceInfo  = Root + "DeviceInfo."
	WANDevice   = Root + "WANDevice.1."
	WANConnDev  = WANDevice + "WANConnectionDevice.1."
	WANPPPTable = WANConnDev + "WANPPPConnection."
	UserInfo    = Root + "X_CT-COM_UserInfo."
	LANDefault  = Root + "LANDevice.1.LANEthernetInterfaceConfig.1"
	LANDev      = Root + "LANDevice.1."
	LANEthernet = LANDev + "LANEthernetInterfaceConfig."
	WLANConfig  = LANDev + "WLANConfiguration."
	IPTVService = Root + "Services.X_CT-COM_IPTV."
	WANConnDevs = WANDevice + "WANConnectionDevice."
)

// LOID registration states as the gateway reports them in
// X_CT-COM_UserInfo.Status and .Result.
const (
	LOIDStatusRegistered   = "0"
	LOIDStatusNoSuchLOID   = "1"
	LOIDStatusBadPassword  = "2"
	LOIDStatusTimeout      = "3"
	LOIDStatusTaken        = "4"
	LOIDStatusNotAttempted = "99"
	LOIDResultInProgress   = "0"
	LOIDResultSuccess      = "1"
	LOIDResultFailed       = "2"
)

// acsClient is the subset of acs.Server that the e8 driver uses.
type acsClient interface {
	GetParameterValues(ctx context.Context, deviceID string, names ...string) ([]cwmp.ParameterValueStruct, error)
	SetParameterValues(ctx context.Context, deviceID string, params []cwmp.ParameterValueStruct, key string) error
	GetParameterNames(ctx context.Context, deviceID, path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, error)
	AddObject(ctx context.Context, deviceID, objectName, key string) (uint32, error)
	DeleteObject(ctx context.Context, deviceID, objectName, key string) error
	Reboot(ctx context.Context, deviceID, commandKey string) error
	FactoryReset(ctx context.Context, deviceID string) error
	Download(ctx context.Context, deviceID string, d cwmp.Download) (cwmp.DownloadResponse, error)
	WaitTransferComplete(ctx context.Context, deviceID, commandKey string) (cwmp.TransferComplete, error)
	WaitInform(ctx context.Context, deviceID, eventCode string, after time.Time) (acs.Device, error)
}

// Driver drives one e8 gateway known to an ACS.
type Driver struct {
	acs      acsClient
	deviceID string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// PollInterval is how often Wait* re-read the device; zero means 500ms.
	PollInterval time.Duration
	// RestoreTimeout bounds the rollback after a failed change, which runs
	// even when the caller's ctx has ended; zero means 30s.
	RestoreTimeout time.Duration
	// Optical, if set, decodes the optical readings; nil picks the profile
	// by the gateway's manufacturer (see OpticalProfileFor).
	OpticalProfile *OpticalProfile
	// Now, if nil, is time.Now.
	Now func() time.Time
	// wanPath is the WANPPPConnection instance this driver created or found.
	wanPath string
}

// New returns a driver for the device with the ACS id deviceID.
func New(acs acsClient, deviceID string) *Driver {
	return &Driver{acs: acs, deviceID: deviceID}
}

func (d *Driver) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// get reads names into a map by full name (cwmptx.Device.Get).
func (d *Driver) get(ctx context.Context, names ...string) (map[string]string, error) {
	return d.tx().Get(ctx, names...)
}

// Identify reads who the gateway says it is.
func (d *Driver) Identify(ctx context.Context) (drivers.Identity, error) {
	names := []string{
		DeviceInfo + "Manufacturer", DeviceInfo + "ManufacturerOUI", DeviceInfo + "ModelName",
		DeviceInfo + "ProductClass", DeviceInfo + "SerialNumber", DeviceInfo + "SoftwareVersion",
		DeviceInfo + "HardwareVersion", WANDevice + "WANCommonInterfaceConfig.WANAccessType",
		Root + "DeviceSummary",
	}
	m, err := d.get(ctx, names...)
	if err != nil {
		return drivers.Identity{}, fmt.Errorf("identify e8 gateway: %w", err)
	}
	return drivers.Identity{
		Kind:         drivers.KindE8,
		Vendor:       m[DeviceInfo+"Manufacturer"],
		OUI:          m[DeviceInfo+"ManufacturerOUI"],
		Model:        m[DeviceInfo+"ModelName"],
		ProductClass: m[DeviceInfo+"ProductClass"],
		Serial:       m[DeviceInfo+"SerialNumber"],
		Firmware:     m[DeviceInfo+"SoftwareVersion"],
		Hardware:     m[DeviceInfo+"HardwareVersion"],
		Access:       accessType(m[WANDevice+"WANCommonInterfaceConfig.WANAccessType"]),
		Class:        Class(m[Root+"DeviceSummary"]),
	}, nil
}

// Class tells an e8-C gateway (voice ports: its DeviceSummary lists the
// TR-104 VoiceService profile) from an e8-B (data only).
func Class(deviceSummary string) string {
	if strings.Contains(deviceSummary, "VoiceService:") {
		return "e8-C"
	}
	return "e8-B"
}

// accessType maps WANAccessType to the order's access words.
func accessType(v string) string {
	switch strings.ToUpper(v) {
	case "DSL", "ADSL":
		return "adsl"
	case "ETHERNET", "LAN":
		return "lan"
	case "EPON":
		return "epon"
	case "GPON":
		return "gpon"
	}
	return strings.ToLower(v)
}

// WANStatus reads the state of the PPPoE connection this driver configured,
// or of the first one when it configured none.
func (d *Driver) WANStatus(ctx context.Context) (drivers.WANStatus, error) {
	path := d.wanPath
	if path == "" {
		path = WANPPPTable + "1."
	}
	m, err := d.get(ctx,
		path+"ConnectionType", path+"ConnectionStatus", path+"ExternalIPAddress",
		path+"LastConnectionError", path+"NATEnabled", path+"X_CT-COM_ServiceList", path+"Uptime")
	if err != nil {
		return drivers.WANStatus{}, fmt.Errorf("read WAN status: %w", err)
	}
	up, _ := strconv.Atoi(m[path+"Uptime"])
	return drivers.WANStatus{
		Instance:       path,
		ConnectionType: m[path+"ConnectionType"],
		Status:         m[path+"ConnectionStatus"],
		ExternalIP:     m[path+"ExternalIPAddress"],
		LastError:      m[path+"LastConnectionError"],
		NAT:            m[path+"NATEnabled"] == "1" || strings.EqualFold(m[path+"NATEnabled"], "true"),
		ServiceList:    m[path+"X_CT-COM_ServiceList"],
		Uptime:         up,
	}, nil
}

// pppError turns TR-098 LastConnectionError into a driver error that says
// what to check, or nil when the error is not final.
func pppError(s drivers.WANStatus) error {
	switch s.LastError {
	case "ERROR_AUTHENTICATION_FAILURE":
		return fmt.Errorf("%w: reply 691 (authentication rejected): check the PPPoE account and password on the order, and that the account is active", drivers.ErrPPPoEAuth)
	case "ERROR_ISP_TIME_OUT", "ERROR_NO_CARRIER":
		return fmt.Errorf("%w: no PADO (%s): check the fibre or line, the ONU registration and the internet VLAN", drivers.ErrPPPoENoServer, s.LastError)
	}
	return nil
}

// WaitWANUp polls until the WAN is connected with an address, the server
// rejects the account, or ctx ends.
func (d *Driver) WaitWANUp(ctx context.Context) (drivers.WANStatus, error) {
	var last drivers.WANStatus
	for {
		s, err := d.WANStatus(ctx)
		if err != nil {
			return last, err
		}
		last = s
		if s.Up() {
			return s, nil
		}
		if err := pppError(s); err != nil {
			return s, err
		}
		if err := d.sleep(ctx); err != nil {
			return s, fmt.Errorf("%w: WAN is %s (last error %s)", drivers.ErrTimeout, orNone(s.Status), orNone(s.LastError))
		}
	}
}

func (d *Driver) sleep(ctx context.Context) error {
	iv := d.PollInterval
	if iv <= 0 {
		iv = 500 * time.Millisecond
	}
	t := time.NewTimer(iv)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
