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
}

// Expectation is what an order asks of a device.
type Expectation struct {
	Kind     Kind
	Access   string
	Firmware string // empty: any
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
	if want.Firmware != "" && id.Firmware != want.Firmware {
		diffs = append(diffs, fmt.Sprintf("firmware is %s, order requires %s: upgrade the firmware first", id.Firmware, want.Firmware))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(diffs, "; "))
	}
	return nil
}

// PPPoEConfig is routed internet over PPPoE dialled by the gateway.
type PPPoEConfig struct {
	Username string
	Password secret.Secret
	// VLAN is the 802.1Q tag of the internet service; 0 means untagged.
	VLAN int
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
	Status string `json:"status"` // X_CT-COM_UserInfo.Status
	Result string `json:"result"` // X_CT-COM_UserInfo.Result
	// Registered is true when ITMS accepted the LOID and delivered the service.
	Registered bool   `json:"registered"`
	Detail     string `json:"detail"`
}

// Undo reverts one configuration change. Drivers return one with every
// change so that a workflow can roll back a half-finished install.
type Undo func(ctx context.Context) error

// Identifier is a device that reports who it is.
type Identifier interface {
	Identify(ctx context.Context) (Identity, error)
}

// InternetConfigurer configures routed internet over PPPoE.
type InternetConfigurer interface {
	ConfigurePPPoE(ctx context.Context, cfg PPPoEConfig) (Undo, error)
	WANStatus(ctx context.Context) (WANStatus, error)
}
