// Package order is the work-order model: what the order system assigns to a
// technician (customer, appointment, services to install, and the credentials
// the devices need), its validation, and its two JSON forms.
//
// An Order has two JSON forms:
//
//   - json.Marshal(o) gives the redacted form: every credential (PPPoE password,
//     LOID and LOID password, IPTV password) is written as "******" by
//     secret.Secret. Use it for logs, reports, the local store and
//     --output json. Read back with json.Unmarshal it yields empty credentials.
//   - o.WireJSON() gives the wire form, with credentials in clear. Only the
//     order system (and its simulator in testlab) speaks it.
//
// Parse reads the wire form strictly and validates it.
package order

import (
	"errors"
	"time"

	"fieldagent/agent/secret"
)

// ErrInvalid is wrapped by every error that Parse and Validate return for an
// order that is malformed or breaks a rule; errors.As with *FieldError gives
// the field path.
var ErrInvalid = errors.New("invalid work order")

// MaxSize is the largest wire-form order Parse accepts, in bytes (1 MiB).
// Callers reading from the network limit their reads to it as well.
const MaxSize = 1 << 20

// Type is the kind of work an order asks for.
type Type string

// The order types.
const (
	TypeNewInstall Type = "new_install" // install a new service
	TypeMove       Type = "move"        // move a service to a new address
	TypeRepair     Type = "repair"      // fix a fault on an existing service
	TypeRemoval    Type = "removal"     // take a service out
)

// Types lists every valid Type, in documentation order.
func Types() []Type { return []Type{TypeNewInstall, TypeMove, TypeRepair, TypeRemoval} }

// DeviceKind is the model family of a customer device.
type DeviceKind string

// The device kinds.
const (
	DeviceE8  DeviceKind = "e8"  // home gateway / ONT managed by TR-069
	DeviceITV DeviceKind = "itv" // IPTV set-top box managed by TR-069
	DeviceXT2 DeviceKind = "xt2" // gateway managed over SSH CLI and SNMP
)

// DeviceKinds lists every valid DeviceKind.
func DeviceKinds() []DeviceKind { return []DeviceKind{DeviceE8, DeviceITV, DeviceXT2} }

// AccessType is the physical access line of a service.
type AccessType string

// The access types.
const (
	AccessLAN  AccessType = "lan"
	AccessADSL AccessType = "adsl"
	AccessEPON AccessType = "epon"
	AccessGPON AccessType = "gpon"
)

// AccessTypes lists every valid AccessType.
func AccessTypes() []AccessType { return []AccessType{AccessLAN, AccessADSL, AccessEPON, AccessGPON} }

// MaxBandwidthMbps returns the highest subscribed bandwidth the access type
// can carry, in Mbit/s (0 for an unknown access type).
func MaxBandwidthMbps(a AccessType) int {
	switch a {
	case AccessADSL:
		return 24
	case AccessLAN, AccessEPON:
		return 1000
	case AccessGPON:
		return 2500
	}
	return 0
}

// IsPON reports whether the access type is a passive optical network, on
// which the ONT registers with a LOID.
func (a AccessType) IsPON() bool { return a == AccessEPON || a == AccessGPON }

// Order is one work order. The zero value is not a valid order; build one with
// Parse, or fill it and call Validate.
type Order struct {
	// ID is the order system's identifier: 1–64 characters of A–Z, a–z,
	// 0–9, '.', '_' and '-' (it appears in URLs and file names).
	ID string `json:"id"`
	// Type is the kind of work.
	Type Type `json:"type"`
	// Technician is the login of the assigned technician.
	Technician string `json:"technician"`
	// Customer is who the work is for and where.
	Customer Customer `json:"customer"`
	// Appointment is the window agreed with the customer.
	Appointment Window `json:"appointment"`
	// Services are the services (one device each) the order covers; at
	// least one.
	Services []Service `json:"services"`
	// PPPoE is the broadband account; required for new_install and move
	// orders with an e8 or xt2 service.
	PPPoE Account `json:"pppoe,omitzero"`
	// LOID is the ONT registration credential; the LOID is required for
	// new_install and move orders on epon or gpon access.
	LOID LOIDCredential `json:"loid,omitzero"`
	// IPTV is the IPTV account; required for new_install and move orders
	// with an itv service.
	IPTV IPTVAccount `json:"iptv,omitzero"`
	// BBMSCustomerID is the customer's ID in the broadband billing and
	// management system, if the order system gave one.
	BBMSCustomerID string `json:"bbms_customer_id,omitempty"`
	// RequiredFirmware is the firmware version the devices must run, if any.
	RequiredFirmware string `json:"required_firmware,omitempty"`
	// Notes are free text from dispatch (at most 4000 characters).
	Notes string `json:"notes,omitempty"`
}

// Customer is the customer of an order.
type Customer struct {
	Name    string `json:"name"`            // Name is required.
	Phone   string `json:"phone,omitempty"` // Phone is optional: digits, spaces, '-', leading '+'.
	Address string `json:"address"`         // Address is the service address; required.
}

// Window is a time window; both ends are required and End is after Start.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Contains reports whether t is inside the window (Start ≤ t < End).
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// Service is one service of an order, delivered by one device.
type Service struct {
	Device DeviceKind `json:"device"`
	Access AccessType `json:"access"`
	// BandwidthMbps is the subscribed downstream bandwidth; 0 for a service
	// without one (an itv set-top box). At most MaxBandwidthMbps(Access).
	BandwidthMbps int `json:"bandwidth_mbps"`
	// Model and Serial, if set, are the device the warehouse issued for
	// this service (e.g. "F650" and its serial number): a different box at
	// the customer's stops the visit before anything is configured.
	Model  string `json:"model,omitempty"`
	Serial string `json:"serial,omitempty"`
}

// Account is a PPPoE account. Username and Password are both set or both
// empty.
type Account struct {
	Username string        `json:"username"`
	Password secret.Secret `json:"password"`
}

// LOIDCredential is the logical ONU ID an ONT registers with on a PON, and
// its optional password. Both are credentials (whoever holds them can
// register an ONT as this customer), so both are secrets.
type LOIDCredential struct {
	LOID     secret.Secret `json:"loid"`              // LOID is at most 24 characters.
	Password secret.Secret `json:"password,omitzero"` // Password is optional, at most 12 characters.
}

// IPTVAccount is the account an IPTV set-top box logs in with.
type IPTVAccount struct {
	Account  string        `json:"account"`
	Password secret.Secret `json:"password"`
	// VLAN, if set (1–4094), is the IPTV VLAN of the customer's line;
	// otherwise the agent's configured default.
	VLAN int `json:"vlan,omitempty"`
}

// Summary is one line of an order list: what a technician needs to pick an
// order, without credentials. State is the order system's state
// ("assigned", "in_progress", "closed").
type Summary struct {
	ID           string `json:"id"`
	Type         Type   `json:"type"`
	Technician   string `json:"technician"`
	CustomerName string `json:"customer_name"`
	Address      string `json:"address"`
	Appointment  Window `json:"appointment"`
	State        string `json:"state,omitempty"`
}

// Summary returns the order's summary line; State is left empty.
func (o *Order) Summary() Summary {
	return Summary{
		ID:           o.ID,
		Type:         o.Type,
		Technician:   o.Technician,
		CustomerName: o.Customer.Name,
		Address:      o.Customer.Address,
		Appointment:  o.Appointment,
	}
}

// HasDevice reports whether any service of the order uses device kind k.
func (o *Order) HasDevice(k DeviceKind) bool {
	for _, s := range o.Services {
		if s.Device == k {
			return true
		}
	}
	return false
}

// HasPON reports whether any service of the order is on epon or gpon access.
func (o *Order) HasPON() bool {
	for _, s := range o.Services {
		if s.Access.IsPON() {
			return true
		}
	}
	return false
}
