// Package e8 drives China Telecom e8 home gateways (ADSL, LAN, EPON and GPON
// uplinks) over TR-069, using the TR-098 data model with the X_CT-COM
// extensions:
//
//   - identity from InternetGatewayDevice.DeviceInfo and the access type from
//     WANDevice.1.WANCommonInterfaceConfig.WANAccessType;
//   - routed internet as a WANPPPConnection (IP_Routed, NAT, service list
//     INTERNET) under WANDevice.1.WANConnectionDevice.1;
//   - LOID registration with the operator's ITMS through
//     InternetGatewayDevice.X_CT-COM_UserInfo (UserName, Password, Status,
//     Result).
//
// Every change returns a drivers.Undo so that the workflow can roll back a
// half-finished install.
package e8

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"fieldagent/drivers"
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
}

// Driver drives one e8 gateway known to an ACS.
type Driver struct {
	acs      acsClient
	deviceID string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// PollInterval is how often Wait* re-read the device; zero means 500ms.
	PollInterval time.Duration
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

func (d *Driver) get(ctx context.Context, names ...string) (map[string]string, error) {
	pv, err := d.acs.GetParameterValues(ctx, d.deviceID, names...)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(pv))
	for _, p := range pv {
		m[p.Name] = p.Value
	}
	return m, nil
}

// Identify reads who the gateway says it is.
func (d *Driver) Identify(ctx context.Context) (drivers.Identity, error) {
	names := []string{
		DeviceInfo + "Manufacturer", DeviceInfo + "ManufacturerOUI", DeviceInfo + "ModelName",
		DeviceInfo + "ProductClass", DeviceInfo + "SerialNumber", DeviceInfo + "SoftwareVersion",
		DeviceInfo + "HardwareVersion", WANDevice + "WANCommonInterfaceConfig.WANAccessType",
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
	}, nil
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

// pppFields are the WANPPPConnection parameters ConfigurePPPoE writes,
// besides the write-only Password.
var pppFields = []string{"ConnectionType", "NATEnabled", "Username", "X_CT-COM_ServiceList", "X_CT-COM_LanInterface", "Enable"}

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

// ConfigurePPPoE configures routed internet: a WANPPPConnection in IP_Routed
// mode with NAT and the INTERNET service, dialled with the given account. A
// connection that already carries INTERNET is reconfigured rather than
// duplicated, so running an order twice leaves one internet WAN. The Undo
// deletes a connection this call created, or restores the previous values of
// one it changed (all but the write-only password, which no gateway reveals).
func (d *Driver) ConfigurePPPoE(ctx context.Context, cfg drivers.PPPoEConfig) (drivers.Undo, error) {
	if cfg.Username == "" || cfg.Password.IsZero() {
		return nil, errors.New("configure pppoe: the order has no PPPoE account or password")
	}
	path, err := d.findInternetWAN(ctx)
	if err != nil {
		return nil, fmt.Errorf("configure pppoe: %w", err)
	}
	var undo drivers.Undo
	if path == "" {
		n, err := d.acs.AddObject(ctx, d.deviceID, WANPPPTable, "fieldagent-wan")
		if err != nil {
			return nil, fmt.Errorf("configure pppoe: add WANPPPConnection: %w", err)
		}
		path = WANPPPTable + strconv.FormatUint(uint64(n), 10) + "."
		undo = func(ctx context.Context) error {
			if err := d.acs.DeleteObject(ctx, d.deviceID, path, "fieldagent-rollback"); err != nil {
				return fmt.Errorf("roll back %s: %w", path, err)
			}
			d.log().Info("rolled back WAN connection", "device", d.deviceID, "path", path)
			return nil
		}
	} else {
		names := make([]string, len(pppFields))
		for i, f := range pppFields {
			names[i] = path + f
		}
		prev, err := d.get(ctx, names...)
		if err != nil {
			return nil, fmt.Errorf("configure pppoe: read %s: %w", path, err)
		}
		undo = func(ctx context.Context) error {
			var ps []cwmp.ParameterValueStruct
			for _, f := range pppFields {
				ps = append(ps, cwmp.ParameterValueStruct{Name: path + f, Value: prev[path+f], Type: pppType(f)})
			}
			if err := d.acs.SetParameterValues(ctx, d.deviceID, ps, "fieldagent-rollback"); err != nil {
				return fmt.Errorf("roll back %s: %w", path, err)
			}
			d.log().Info("restored WAN connection", "device", d.deviceID, "path", path)
			return nil
		}
		d.log().Info("reconfiguring the existing internet WAN", "device", d.deviceID, "path", path)
	}
	params := []cwmp.ParameterValueStruct{
		{Name: path + "ConnectionType", Value: "IP_Routed", Type: "xsd:string"},
		{Name: path + "NATEnabled", Value: "1", Type: "xsd:boolean"},
		{Name: path + "Username", Value: cfg.Username, Type: "xsd:string"},
		{Name: path + "Password", Value: cfg.Password.Reveal(), Type: "xsd:string"},
		{Name: path + "X_CT-COM_ServiceList", Value: "INTERNET", Type: "xsd:string"},
		{Name: path + "X_CT-COM_LanInterface", Value: LANDefault, Type: "xsd:string"},
		{Name: path + "Enable", Value: "1", Type: "xsd:boolean"},
	}
	if err := d.acs.SetParameterValues(ctx, d.deviceID, params, "fieldagent-wan"); err != nil {
		// SetParameterValues is atomic on the device, but a connection this
		// call created is left unconfigured: remove it before reporting.
		if uerr := undo(context.WithoutCancel(ctx)); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, fmt.Errorf("configure pppoe on %s: %w", path, err)
	}
	d.wanPath = path
	d.log().Info("configured PPPoE WAN", "device", d.deviceID, "path", path, "user", cfg.Username)
	return undo, nil
}

func pppType(field string) string {
	switch field {
	case "NATEnabled", "Enable":
		return "xsd:boolean"
	}
	return "xsd:string"
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

// RegisterLOID writes the LOID and its password to X_CT-COM_UserInfo, which
// makes the gateway register with ITMS, and polls Status/Result until ITMS
// answers or ctx ends. The Undo clears the LOID on the gateway.
func (d *Driver) RegisterLOID(ctx context.Context, loid, password string) (drivers.LOIDResult, drivers.Undo, error) {
	if loid == "" {
		return drivers.LOIDResult{}, nil, errors.New("register loid: the order has no LOID")
	}
	params := []cwmp.ParameterValueStruct{
		{Name: UserInfo + "UserName", Value: loid, Type: "xsd:string"},
		{Name: UserInfo + "Password", Value: password, Type: "xsd:string"},
	}
	if err := d.acs.SetParameterValues(ctx, d.deviceID, params, "fieldagent-loid"); err != nil {
		return drivers.LOIDResult{}, nil, fmt.Errorf("register loid: %w", err)
	}
	undo := func(ctx context.Context) error {
		return d.acs.SetParameterValues(ctx, d.deviceID, []cwmp.ParameterValueStruct{
			{Name: UserInfo + "UserName", Value: "", Type: "xsd:string"},
			{Name: UserInfo + "Password", Value: "", Type: "xsd:string"},
		}, "fieldagent-rollback")
	}
	var last drivers.LOIDResult
	for {
		m, err := d.get(ctx, UserInfo+"Status", UserInfo+"Result")
		if err != nil {
			return last, undo, fmt.Errorf("register loid: read status: %w", err)
		}
		last = loidResult(m[UserInfo+"Status"], m[UserInfo+"Result"])
		if last.Registered {
			return last, undo, nil
		}
		if (last.Status != LOIDStatusNotAttempted && last.Status != LOIDStatusRegistered) || last.Result == LOIDResultFailed {
			return last, undo, fmt.Errorf("%w: %s", drivers.ErrLOIDRejected, last.Detail)
		}
		if err := d.sleep(ctx); err != nil {
			return last, undo, fmt.Errorf("%w: loid registration: %s", drivers.ErrTimeout, last.Detail)
		}
	}
}

func loidResult(status, result string) drivers.LOIDResult {
	r := drivers.LOIDResult{Status: status, Result: result}
	switch status {
	case LOIDStatusRegistered:
		switch result {
		case LOIDResultSuccess:
			r.Registered = true
			r.Detail = "registered with ITMS; service delivered"
		case LOIDResultFailed:
			r.Detail = "registered with ITMS but service delivery failed: ask ITMS support to re-deliver the work order"
		default:
			r.Detail = "registered with ITMS; service delivery in progress"
		}
	case LOIDStatusNoSuchLOID:
		r.Detail = "ITMS does not know this LOID: check the LOID on the order"
	case LOIDStatusBadPassword:
		r.Detail = "ITMS rejected the LOID password: check the password on the order"
	case LOIDStatusTimeout:
		r.Detail = "registration timed out: check the optical line and that the ONU is authorised on the OLT"
	case LOIDStatusTaken:
		r.Detail = "the LOID is already bound to another gateway: ask ITMS support to release it"
	default:
		r.Detail = "registration in progress"
	}
	return r
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
