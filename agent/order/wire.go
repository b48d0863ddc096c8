package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"fieldagent/agent/secret"
)

// wireOrder mirrors Order with credentials as plain strings and times as
// strings, so that Parse can name the field of every decoding error and
// WireJSON can write the credentials that secret.Secret redacts.
type wireOrder struct {
	ID               string        `json:"id"`
	Type             string        `json:"type"`
	Technician       string        `json:"technician"`
	Customer         wireCustomer  `json:"customer"`
	Appointment      wireWindow    `json:"appointment"`
	Services         []wireService `json:"services"`
	PPPoE            *wireAccount  `json:"pppoe,omitempty"`
	LOID             *wireLOID     `json:"loid,omitempty"`
	IPTV             *wireIPTV     `json:"iptv,omitempty"`
	BBMSCustomerID   string        `json:"bbms_customer_id,omitempty"`
	RequiredFirmware string        `json:"required_firmware,omitempty"`
	Notes            string        `json:"notes,omitempty"`
}

type wireCustomer struct {
	Name    string `json:"name"`
	Phone   string `json:"phone,omitempty"`
	Address string `json:"address"`
}

type wireWindow struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type wireService struct {
	Device        string `json:"device"`
	Access        string `json:"access"`
	BandwidthMbps int    `json:"bandwidth_mbps"`
	Model         string `json:"model,omitempty"`
	Serial        string `json:"serial,omitempty"`
}

type wireAccount struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type wireLOID struct {
	LOID     string `json:"loid"`
	Password string `json:"password,omitempty"`
}

type wireIPTV struct {
	Account  string `json:"account"`
	Password string `json:"password"`
	VLAN     int    `json:"vlan,omitempty"`
}

// Parse reads one order in wire form (credentials in clear) strictly: unknown
// fields, trailing data and more than MaxSize bytes are rejected, and the
// order is validated. Every error wraps ErrInvalid and names the field path,
// e.g. `order: services[0].access: "vdsl" is not one of lan, adsl, epon, gpon`.
// Callers reading from the network limit their read to MaxSize first.
func Parse(data []byte) (*Order, error) {
	if len(data) > MaxSize {
		return nil, fieldErr("", "is %d bytes, more than the %d-byte limit", len(data), MaxSize)
	}
	// Nested objects are decoded one by one so that an error can name its
	// path: encoding/json leaves the path out of unknown-field errors and the
	// index out of type errors.
	var in struct {
		wireOrder
		Customer    json.RawMessage   `json:"customer"`
		Appointment json.RawMessage   `json:"appointment"`
		Services    []json.RawMessage `json:"services"`
		PPPoE       json.RawMessage   `json:"pppoe"`
		LOID        json.RawMessage   `json:"loid"`
		IPTV        json.RawMessage   `json:"iptv"`
	}
	if err := strictDecode("", data, &in); err != nil {
		return nil, err
	}
	w := in.wireOrder
	nested := []struct {
		path string
		raw  json.RawMessage
		dst  any
	}{
		{"customer", in.Customer, &w.Customer},
		{"appointment", in.Appointment, &w.Appointment},
		{"pppoe", in.PPPoE, &w.PPPoE},
		{"loid", in.LOID, &w.LOID},
		{"iptv", in.IPTV, &w.IPTV},
	}
	for _, n := range nested {
		if n.raw == nil {
			continue
		}
		if err := strictDecode(n.path, n.raw, n.dst); err != nil {
			return nil, err
		}
	}
	for i, raw := range in.Services {
		var s wireService
		if err := strictDecode(fmt.Sprintf("services[%d]", i), raw, &s); err != nil {
			return nil, err
		}
		w.Services = append(w.Services, s)
	}
	o, errs := w.order()
	errs = append(errs, notReported(o.Validate(), errs)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return o, nil
}

// strictDecode decodes exactly one JSON value from data into dst, rejecting
// unknown fields; errors name fields below path.
func strictDecode(path string, data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeErr(path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fieldErr(path, "has data after the JSON object: send exactly one order")
	}
	return nil
}

// decodeErr turns a json decoding error into a *FieldError; prefix is the
// path of the value that was decoded.
func decodeErr(prefix string, err error) error {
	join := func(f string) string {
		switch {
		case prefix == "":
			return f
		case f == "":
			return prefix
		}
		return prefix + "." + f
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fieldErr(join(te.Field), "must be a JSON %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return fieldErr(prefix, "is not valid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.EOF):
		return fieldErr(prefix, "is empty: expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErr(prefix, "is truncated JSON: expected the rest of the object")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, `json: unknown field "`); ok {
		return fieldErr(join(strings.TrimSuffix(f, `"`)), "is not a field of a work order: remove it or check the spelling")
	}
	return fieldErr(prefix, "cannot be decoded: %s", msg)
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64":
		return "integer"
	case "float64":
		return "number"
	case "slice":
		return "array"
	case "struct", "ptr":
		return "object"
	}
	return k
}

// order converts the wire form; errs holds the time fields that did not parse
// and credentials that are the redacted placeholder.
func (w *wireOrder) order() (*Order, []error) {
	var errs []error
	o := &Order{
		ID:               w.ID,
		Type:             Type(w.Type),
		Technician:       w.Technician,
		Customer:         Customer(w.Customer),
		BBMSCustomerID:   w.BBMSCustomerID,
		RequiredFirmware: w.RequiredFirmware,
		Notes:            w.Notes,
	}
	parseTime := func(path, s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			errs = append(errs, fieldErr(path, "%q is not an RFC 3339 time such as 2025-03-01T09:00:00+08:00", s))
		}
		return t
	}
	o.Appointment.Start = parseTime("appointment.start", w.Appointment.Start)
	o.Appointment.End = parseTime("appointment.end", w.Appointment.End)
	for _, s := range w.Services {
		o.Services = append(o.Services, Service{Device: DeviceKind(s.Device), Access: AccessType(s.Access), BandwidthMbps: s.BandwidthMbps, Model: s.Model, Serial: s.Serial})
	}
	cred := func(path, v string) secret.Secret {
		if v == secret.Redacted {
			errs = append(errs, fieldErr(path, "is the redacted placeholder %q, not a credential: fetch the order from the order system again", secret.Redacted))
			return secret.Secret{}
		}
		return secret.New(v)
	}
	if w.PPPoE != nil {
		o.PPPoE = Account{Username: w.PPPoE.Username, Password: cred("pppoe.password", w.PPPoE.Password)}
	}
	if w.LOID != nil {
		o.LOID = LOIDCredential{LOID: cred("loid.loid", w.LOID.LOID), Password: cred("loid.password", w.LOID.Password)}
	}
	if w.IPTV != nil {
		o.IPTV = IPTVAccount{Account: w.IPTV.Account, Password: cred("iptv.password", w.IPTV.Password), VLAN: w.IPTV.VLAN}
	}
	return o, errs
}

// WireJSON returns the order in wire form, WITH EVERY CREDENTIAL IN CLEAR
// (PPPoE password, LOID and its password, IPTV password). It exists for the
// order system's side of the API (the testlab simulator) and for nothing else:
// never log it, store it, print it or put it in a report — use json.Marshal,
// which redacts, for all of those. Parse reads it back.
func (o *Order) WireJSON() ([]byte, error) {
	w := wireOrder{
		ID:               o.ID,
		Type:             string(o.Type),
		Technician:       o.Technician,
		Customer:         wireCustomer(o.Customer),
		Appointment:      wireWindow{Start: wireTime(o.Appointment.Start), End: wireTime(o.Appointment.End)},
		Services:         make([]wireService, 0, len(o.Services)),
		BBMSCustomerID:   o.BBMSCustomerID,
		RequiredFirmware: o.RequiredFirmware,
		Notes:            o.Notes,
	}
	for _, s := range o.Services {
		w.Services = append(w.Services, wireService{Device: string(s.Device), Access: string(s.Access), BandwidthMbps: s.BandwidthMbps, Model: s.Model, Serial: s.Serial})
	}
	if o.PPPoE != (Account{}) {
		w.PPPoE = &wireAccount{Username: o.PPPoE.Username, Password: o.PPPoE.Password.Reveal()}
	}
	if o.LOID != (LOIDCredential{}) {
		w.LOID = &wireLOID{LOID: o.LOID.LOID.Reveal(), Password: o.LOID.Password.Reveal()}
	}
	if o.IPTV != (IPTVAccount{}) {
		w.IPTV = &wireIPTV{Account: o.IPTV.Account, Password: o.IPTV.Password.Reveal(), VLAN: o.IPTV.VLAN}
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("order %s: encode wire form: %w", o.ID, err)
	}
	return b, nil
}

func wireTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// notReported returns the problems in err (a Validate result) whose field is
// not already covered by one in reported, so that a time that failed to parse
// is not also reported as missing.
func notReported(err error, reported []error) []error {
	if err == nil {
		return nil
	}
	all := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	}
	var out []error
next:
	for _, e := range all {
		var fe *FieldError
		if errors.As(e, &fe) {
			for _, r := range reported {
				var rf *FieldError
				if errors.As(r, &rf) && (rf.Field == fe.Field || strings.HasPrefix(rf.Field, fe.Field+".")) {
					continue next
				}
			}
		}
		out = append(out, e)
	}
	return out
}
