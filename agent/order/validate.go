package order

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FieldError is one problem with one field of an order. It wraps ErrInvalid.
type FieldError struct {
	// Field is the path of the field, e.g. "services[0].access"; empty for
	// the order as a whole.
	Field string
	// Problem says what is wrong and, where it helps, what to do.
	Problem string
}

// Error returns "order: <field>: <problem>".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return "order: " + e.Problem
	}
	return "order: " + e.Field + ": " + e.Problem
}

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Length limits, in characters.
const (
	maxIDLen       = 64
	maxNameLen     = 200
	maxAddressLen  = 500
	maxLOIDLen     = 24
	maxLOIDPassLen = 12
	maxNotesLen    = 4000
	maxBandwidth   = 10000
)

// Validate checks every rule of a work order and returns nil, or all the
// problems found joined with errors.Join; each is a *FieldError wrapping
// ErrInvalid. Credentials are checked for presence and shape, never printed.
func (o *Order) Validate() error {
	if o == nil {
		return fieldErr("", "is missing")
	}
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, fieldErr(field, format, args...)) }

	switch {
	case o.ID == "":
		add("id", "is required")
	case utf8.RuneCountInString(o.ID) > maxIDLen || strings.IndexFunc(o.ID, notIDRune) >= 0:
		add("id", "%q must be 1 to %d characters of A-Z, a-z, 0-9, '.', '_' or '-'", o.ID, maxIDLen)
	case o.ID == "." || o.ID == "..":
		add("id", "%q is not a usable identifier", o.ID)
	}
	if o.Type == "" {
		add("type", "is required: one of %s", list(Types()))
	} else if !slices.Contains(Types(), o.Type) {
		add("type", "%q is not one of %s", o.Type, list(Types()))
	}
	text(add, "technician", o.Technician, true, maxNameLen)
	text(add, "customer.name", o.Customer.Name, true, maxNameLen)
	text(add, "customer.address", o.Customer.Address, true, maxAddressLen)
	if p := o.Customer.Phone; p != "" && !validPhone(p) {
		add("customer.phone", "%q is not a phone number: use digits, spaces and '-', with an optional leading '+'", p)
	}
	switch w := o.Appointment; {
	case w.Start.IsZero() && w.End.IsZero():
		add("appointment", "is required: give start and end")
	case w.Start.IsZero():
		add("appointment.start", "is required")
	case w.End.IsZero():
		add("appointment.end", "is required")
	case !w.End.After(w.Start):
		add("appointment.end", "must be after appointment.start")
	}

	if len(o.Services) == 0 {
		add("services", "is required: at least one service")
	}
	for i, s := range o.Services {
		p := fmt.Sprintf("services[%d]", i)
		if !slices.Contains(DeviceKinds(), s.Device) {
			add(p+".device", "%q is not one of %s", s.Device, list(DeviceKinds()))
		}
		if !slices.Contains(AccessTypes(), s.Access) {
			add(p+".access", "%q is not one of %s", s.Access, list(AccessTypes()))
		}
		switch {
		case s.BandwidthMbps < 0 || s.BandwidthMbps > maxBandwidth:
			add(p+".bandwidth_mbps", "%d is out of range 0 to %d", s.BandwidthMbps, maxBandwidth)
		case MaxBandwidthMbps(s.Access) > 0 && s.BandwidthMbps > MaxBandwidthMbps(s.Access):
			add(p+".bandwidth_mbps", "%d Mbit/s is more than %s access carries (%d Mbit/s): check the order with dispatch",
				s.BandwidthMbps, s.Access, MaxBandwidthMbps(s.Access))
		case s.BandwidthMbps == 0 && s.Device != DeviceITV && o.Type != TypeRemoval:
			add(p+".bandwidth_mbps", "is required for a %s service", s.Device)
		}
		if len(s.Model) > 64 || strings.ContainsFunc(s.Model, unicode.IsControl) {
			add(p+".model", "must be at most 64 printable characters")
		}
		if len(s.Serial) > 64 || strings.IndexFunc(s.Serial, notIDRune) >= 0 {
			add(p+".serial", "must be at most 64 characters from A-Z a-z 0-9 . _ -")
		}
	}

	provisioning := o.Type == TypeNewInstall || o.Type == TypeMove
	internet := o.HasDevice(DeviceE8) || o.HasDevice(DeviceXT2)
	switch {
	case o.PPPoE.Username == "" && !o.PPPoE.Password.IsZero():
		add("pppoe.username", "is required when pppoe.password is given")
	case o.PPPoE.Username != "" && o.PPPoE.Password.IsZero():
		add("pppoe.password", "is required when pppoe.username is given")
	case o.PPPoE.Username == "" && provisioning && internet:
		add("pppoe", "is required for a %s order with an e8 or xt2 service: ask dispatch for the broadband account", o.Type)
	case o.PPPoE.Username != "":
		text(add, "pppoe.username", o.PPPoE.Username, true, maxNameLen)
	}
	if err := secretText(o.PPPoE.Password.Reveal(), maxNameLen); err != "" {
		add("pppoe.password", "%s", err)
	}

	loid, loidPass := o.LOID.LOID.Reveal(), o.LOID.Password.Reveal()
	switch {
	case loid == "" && loidPass != "":
		add("loid.loid", "is required when loid.password is given")
	case loid == "" && provisioning && o.HasPON():
		add("loid", "is required for a %s order on epon or gpon access: ask dispatch for the LOID", o.Type)
	}
	if err := secretText(loid, maxLOIDLen); err != "" {
		add("loid.loid", "%s", err)
	}
	if err := secretText(loidPass, maxLOIDPassLen); err != "" {
		add("loid.password", "%s", err)
	}

	switch {
	case o.IPTV.Account == "" && !o.IPTV.Password.IsZero():
		add("iptv.account", "is required when iptv.password is given")
	case o.IPTV.Account != "" && o.IPTV.Password.IsZero():
		add("iptv.password", "is required when iptv.account is given")
	case o.IPTV.Account == "" && provisioning && o.HasDevice(DeviceITV):
		add("iptv", "is required for a %s order with an itv service: ask dispatch for the IPTV account", o.Type)
	case o.IPTV.Account != "":
		text(add, "iptv.account", o.IPTV.Account, true, maxNameLen)
	}
	if o.IPTV.VLAN != 0 && (o.IPTV.VLAN < 1 || o.IPTV.VLAN > 4094) {
		add("iptv.vlan", "is %d; a VLAN is 1–4094", o.IPTV.VLAN)
	}
	if err := secretText(o.IPTV.Password.Reveal(), maxNameLen); err != "" {
		add("iptv.password", "%s", err)
	}

	text(add, "bbms_customer_id", o.BBMSCustomerID, false, maxNameLen)
	if f := o.RequiredFirmware; f != "" && (strings.IndexFunc(f, unicode.IsSpace) >= 0 || utf8.RuneCountInString(f) > maxNameLen) {
		add("required_firmware", "%q must be a version without spaces, at most %d characters", f, maxNameLen)
	}
	if utf8.RuneCountInString(o.Notes) > maxNotesLen {
		add("notes", "is longer than %d characters", maxNotesLen)
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// text checks a single-line text field.
func text(add func(string, string, ...any), field, v string, required bool, limit int) {
	switch {
	case v == "" && required:
		add(field, "is required")
	case strings.TrimSpace(v) == "" && v != "":
		add(field, "is blank")
	case utf8.RuneCountInString(v) > limit:
		add(field, "is longer than %d characters", limit)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		add(field, "contains a control character: use a single line of text")
	}
}

// secretText checks a credential's shape without ever putting its value in
// the message; it returns "" if the value is fine (or empty).
func secretText(v string, limit int) string {
	switch {
	case utf8.RuneCountInString(v) > limit:
		return fmt.Sprintf("is longer than %d characters", limit)
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return "contains a control character"
	}
	return ""
}

func notIDRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
}

func validPhone(p string) bool {
	digits := 0
	for i, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '-':
		case r == '+' && i == 0:
		default:
			return false
		}
	}
	return digits >= 3 && digits <= 20
}

func list[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
