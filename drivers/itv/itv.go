// Package itv drives China Telecom iTV set-top boxes over TR-069: the TR-106
// Device model with TR-135 STBService and the CT X_CTC_IPTV extensions.
//
//   - identity from Device.DeviceInfo and X_CTC_IPTV.STBID;
//   - the service account (ServiceInfo.UserID/UserIDPassword), the EPG
//     authentication servers (AuthURL, AuthURLBackup) and the network mode
//     (Device.LAN.AddressingType, PPPoEID/PPPoEPassword, DHCPID for DHCP
//     option 60), written as one transaction (drivers/cwmptx);
//   - authentication status and statistics, IGMP groups joined, and RTP and
//     MPEG-TS loss from ServiceMonitoring.MainStream;
//   - reboot.
package itv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/cwmptx"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Data model paths the driver uses.
const (
	Root        = "Device."
	DeviceInfo  = Root + "DeviceInfo."
	LAN         = Root + "LAN."
	IPTV        = Root + "X_CTC_IPTV."
	ServiceInfo = IPTV + "ServiceInfo."
	Statistics  = IPTV + "Statistics."
	IGMP        = Root + "STBService.1.Components.FrontEnd.1.IP.IGMP."
	MainStream  = Root + "STBService.1.ServiceMonitoring.MainStream."
)

// ServiceInfo.UserStatus values.
const (
	UserStatusNone          = "0"
	UserStatusAuthenticated = "1"
	UserStatusRefused       = "2"
)

// acsClient is the subset of acs.Server that the itv driver uses.
type acsClient interface {
	GetParameterValues(ctx context.Context, deviceID string, names ...string) ([]cwmp.ParameterValueStruct, error)
	SetParameterValues(ctx context.Context, deviceID string, params []cwmp.ParameterValueStruct, key string) error
	GetParameterNames(ctx context.Context, deviceID, path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, error)
	DeleteObject(ctx context.Context, deviceID, objectName, key string) error
	Reboot(ctx context.Context, deviceID, commandKey string) error
	WaitInform(ctx context.Context, deviceID, eventCode string, after time.Time) (acs.Device, error)
}

// Driver drives one set-top box known to an ACS.
type Driver struct {
	acs      acsClient
	deviceID string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// PollInterval is how often WaitAuthenticated re-reads; zero means 500ms.
	PollInterval time.Duration
	// RestoreTimeout bounds a rollback; zero means 30s.
	RestoreTimeout time.Duration
	// Now, if nil, is time.Now.
	Now func() time.Time
}

// New returns a driver for the box with the ACS id deviceID.
func New(acs acsClient, deviceID string) *Driver {
	return &Driver{acs: acs, deviceID: deviceID}
}

func (d *Driver) tx() *cwmptx.Device {
	return &cwmptx.Device{ACS: d.acs, DeviceID: d.deviceID, Logger: d.Logger, RestoreTimeout: d.RestoreTimeout}
}

func (d *Driver) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Identify reads who the box says it is, with its STBID.
func (d *Driver) Identify(ctx context.Context) (drivers.Identity, error) {
	m, err := d.tx().Get(ctx,
		DeviceInfo+"Manufacturer", DeviceInfo+"ManufacturerOUI", DeviceInfo+"ModelName", DeviceInfo+"ProductClass",
		DeviceInfo+"SerialNumber", DeviceInfo+"SoftwareVersion", DeviceInfo+"HardwareVersion", IPTV+"STBID")
	if err != nil {
		return drivers.Identity{}, fmt.Errorf("identify set-top box: %w", err)
	}
	return drivers.Identity{
		Kind: drivers.KindITV, Vendor: m[DeviceInfo+"Manufacturer"], OUI: m[DeviceInfo+"ManufacturerOUI"],
		Model: m[DeviceInfo+"ModelName"], ProductClass: m[DeviceInfo+"ProductClass"], Serial: m[DeviceInfo+"SerialNumber"],
		Firmware: m[DeviceInfo+"SoftwareVersion"], Hardware: m[DeviceInfo+"HardwareVersion"], STBID: m[IPTV+"STBID"],
	}, nil
}

// Network modes of STBAccount.Mode.
const (
	ModeDHCP         = "dhcp"
	ModePPPoE        = "pppoe"
	ModeStatic       = "static"
	ModeDHCPOption60 = "dhcp+option60"
)

// ConfigureAccount writes the service account, the EPG servers and the
// network mode as one transaction over ServiceInfo and Device.LAN; the box
// then authenticates (see WaitAuthenticated). Passwords are write-only and
// never logged. In dhcp+option60 mode the account doubles as the DHCP
// option 60 identity (DHCPID/DHCPPassword).
func (d *Driver) ConfigureAccount(ctx context.Context, a drivers.STBAccount) (drivers.Undo, error) {
	if a.UserID == "" || a.Password.IsZero() || a.AuthURL == "" {
		return nil, errors.New("configure iptv account: the order needs the iTV account, its password and the EPG authentication URL")
	}
	mode := strings.ToLower(a.Mode)
	if mode == "" {
		mode = ModeDHCP
	}
	ps := []cwmp.ParameterValueStruct{
		cwmptx.Str(ServiceInfo+"UserID", a.UserID), cwmptx.Str(ServiceInfo+"UserIDPassword", a.Password.Reveal()),
		cwmptx.Str(ServiceInfo+"AuthURLBackup", a.AuthURLBackup),
	}
	switch mode {
	case ModeDHCP:
		ps = append(ps, cwmptx.Str(LAN+"AddressingType", "DHCP"))
	case ModeStatic:
		if a.Static == nil {
			return nil, errors.New("configure iptv account: static mode needs the box's address, mask, gateway and DNS servers")
		}
		if err := a.Static.Validate(); err != nil {
			return nil, fmt.Errorf("configure iptv account: %w", err)
		}
		ps = append(ps, cwmptx.Str(LAN+"AddressingType", "Static"),
			cwmptx.Str(LAN+"IPAddress", a.Static.Address), cwmptx.Str(LAN+"SubnetMask", a.Static.Mask),
			cwmptx.Str(LAN+"DefaultGateway", a.Static.Gateway), cwmptx.Str(LAN+"DNSServers", strings.Join(a.Static.DNS, ",")))
	case ModePPPoE:
		if a.PPPoEID == "" || a.PPPoEPassword.IsZero() {
			return nil, errors.New("configure iptv account: pppoe mode needs the PPPoE account and password")
		}
		ps = append(ps, cwmptx.Str(LAN+"AddressingType", "PPPoE"),
			cwmptx.Str(ServiceInfo+"PPPoEID", a.PPPoEID), cwmptx.Str(ServiceInfo+"PPPoEPassword", a.PPPoEPassword.Reveal()))
	case ModeDHCPOption60:
		ps = append(ps, cwmptx.Str(LAN+"AddressingType", "DHCP"),
			cwmptx.Str(ServiceInfo+"DHCPID", a.UserID), cwmptx.Str(ServiceInfo+"DHCPPassword", a.Password.Reveal()))
	default:
		return nil, fmt.Errorf("configure iptv account: network mode %q is not one of dhcp, pppoe, static, dhcp+option60", a.Mode)
	}
	// AuthURL last: writing it starts the authentication on most boxes.
	ps = append(ps, cwmptx.Str(ServiceInfo+"AuthURL", a.AuthURL))
	tx := d.tx()
	undo, err := tx.Transact(ctx, "configure iptv account", []string{ServiceInfo, LAN}, func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
		return tx.Set(ctx, "fieldagent-itv", ps, "Password")
	})
	if err != nil {
		return nil, err
	}
	d.log().Info("configured iTV account", "device", d.deviceID, "user", secret.Hint(a.UserID), "mode", mode)
	return undo, nil
}

// AuthStatus is the box's EPG authentication state.
type AuthStatus struct {
	// UserStatus is ServiceInfo.UserStatus (0 none, 1 authenticated, 2 refused).
	UserStatus    string `json:"user_status"`
	Authenticated bool   `json:"authenticated"`
	Attempts      int    `json:"attempts"`
	Failures      int    `json:"failures"`
	// FailInfo is the EPG's last refusal.
	FailInfo string `json:"fail_info,omitempty"`
}

// AuthStatus reads the authentication state and statistics.
func (d *Driver) AuthStatus(ctx context.Context) (AuthStatus, error) {
	m, err := d.tx().Get(ctx, ServiceInfo+"UserStatus", Statistics)
	if err != nil {
		return AuthStatus{}, fmt.Errorf("read iptv authentication status: %w", err)
	}
	n := func(k string) int { v, _ := strconv.Atoi(m[k]); return v }
	return AuthStatus{
		UserStatus: m[ServiceInfo+"UserStatus"], Authenticated: m[ServiceInfo+"UserStatus"] == UserStatusAuthenticated,
		Attempts: n(Statistics + "AuthNumbers"), Failures: n(Statistics + "AuthFailNumbers"), FailInfo: m[Statistics+"AuthFailInfo"],
	}, nil
}

// WaitAuthenticated polls until the box is authenticated (nil), refused
// (an error wrapping drivers.ErrIPTVAuth with the EPG's reason) or ctx ends
// (drivers.ErrTimeout).
func (d *Driver) WaitAuthenticated(ctx context.Context) (AuthStatus, error) {
	for {
		s, err := d.AuthStatus(ctx)
		if err != nil {
			return s, err
		}
		switch s.UserStatus {
		case UserStatusAuthenticated:
			return s, nil
		case UserStatusRefused:
			return s, fmt.Errorf("%w: the EPG answered %q: check the iTV account and password on the order, and the AuthURL", drivers.ErrIPTVAuth, s.FailInfo)
		}
		iv := d.PollInterval
		if iv <= 0 {
			iv = 500 * time.Millisecond
		}
		t := time.NewTimer(iv)
		select {
		case <-ctx.Done():
			t.Stop()
			return s, fmt.Errorf("%w: the set-top box has not authenticated (status %s): check that it reaches the EPG", drivers.ErrTimeout, s.UserStatus)
		case <-t.C:
		}
	}
}

// IGMPStatus is the box's multicast state.
type IGMPStatus struct {
	Enabled bool     `json:"enabled"`
	Status  string   `json:"status"`
	Groups  []string `json:"groups"`
}

// IGMP reads the IGMP state and the groups joined.
func (d *Driver) IGMP(ctx context.Context) (IGMPStatus, error) {
	m, err := d.tx().Get(ctx, IGMP)
	if err != nil {
		return IGMPStatus{}, fmt.Errorf("read IGMP: %w", err)
	}
	s := IGMPStatus{Enabled: cwmptx.SameValue(m[IGMP+"Enable"], "1"), Status: m[IGMP+"Status"], Groups: []string{}}
	for k, v := range m {
		if strings.HasPrefix(k, IGMP+"ClientGroup.") && strings.HasSuffix(k, ".GroupAddress") && v != "" {
			s.Groups = append(s.Groups, v)
		}
	}
	return s, nil
}

// StreamStats is the loss of the main stream since it started.
type StreamStats struct {
	RTPReceived     int `json:"rtp_received"`
	RTPLost         int `json:"rtp_lost"`
	TSReceived      int `json:"ts_received"`
	TSDiscontinuity int `json:"ts_discontinuities"`
}

// RTPLossRatio is RTPLost over the packets expected, 0 with no packets.
func (s StreamStats) RTPLossRatio() float64 {
	if s.RTPReceived+s.RTPLost == 0 {
		return 0
	}
	return float64(s.RTPLost) / float64(s.RTPReceived+s.RTPLost)
}

// StreamStats reads RTP and MPEG-TS counters of MainStream.1.
func (d *Driver) StreamStats(ctx context.Context) (StreamStats, error) {
	p := MainStream + "1.Total."
	m, err := d.tx().Get(ctx, p)
	if err != nil {
		return StreamStats{}, fmt.Errorf("read stream statistics: %w", err)
	}
	n := func(k string) int { v, _ := strconv.Atoi(m[p+k]); return v }
	return StreamStats{
		RTPReceived: n("RTPStats.PacketsReceived"), RTPLost: n("RTPStats.PacketsLost"),
		TSReceived: n("MPEG2TSStats.TSPacketsReceived"), TSDiscontinuity: n("MPEG2TSStats.TSPacketsDiscontinuityCounter"),
	}, nil
}

// Reboot restarts the box and waits for its "1 BOOT" Inform.
func (d *Driver) Reboot(ctx context.Context) error {
	start := time.Now()
	if d.Now != nil {
		start = d.Now()
	}
	if err := d.acs.Reboot(ctx, d.deviceID, "fieldagent-reboot"); err != nil {
		return fmt.Errorf("reboot set-top box: %w", err)
	}
	if _, err := d.acs.WaitInform(ctx, d.deviceID, "1 BOOT", start); err != nil {
		return fmt.Errorf("reboot set-top box: it did not come back: %w", err)
	}
	return nil
}
