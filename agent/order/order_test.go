package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
)

// samples returns the testdata files matching pattern, by name.
func samples(t testing.TB, pattern string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata matching %s: %v", pattern, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

func TestParseValid(t *testing.T) {
	for name, data := range samples(t, "valid-*.json") {
		t.Run(filepath.Base(name), func(t *testing.T) {
			o, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := o.Validate(); err != nil {
				t.Fatalf("Validate after Parse: %v", err)
			}
			wire, err := o.WireJSON()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(wire)
			if err != nil {
				t.Fatalf("Parse(WireJSON): %v", err)
			}
			if !equalOrders(o, again) {
				t.Errorf("wire round trip changed the order:\n%s\n%s", wire, mustWire(t, again))
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for name, data := range samples(t, "invalid-*.json") {
		t.Run(filepath.Base(name), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(name, ".json") + ".err")
			if err != nil {
				t.Fatalf("every invalid sample needs its .err file: %v", err)
			}
			o, err := Parse(data)
			if err == nil {
				t.Fatalf("Parse accepted %s: %+v", name, o)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error is not a *FieldError: %v", err)
			}
			if got := err.Error(); got != string(want) {
				t.Errorf("error:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	o, err := Parse(samples(t, "valid-new-install-gpon.json")["testdata/valid-new-install-gpon.json"])
	if err != nil {
		t.Fatal(err)
	}
	cst := time.FixedZone("", 8*3600)
	tests := []struct {
		name      string
		got, want any
	}{
		{"id", o.ID, "WO-2025-0001"},
		{"type", o.Type, TypeNewInstall},
		{"technician", o.Technician, "zhang.wei"},
		{"customer", o.Customer, Customer{Name: "Li Na", Phone: "+86 138-0000-0001", Address: "12 Garden Road, Flat 3B"}},
		{"start", o.Appointment.Start.Equal(time.Date(2025, 3, 1, 9, 0, 0, 0, cst)), true},
		{"end", o.Appointment.End.Equal(time.Date(2025, 3, 1, 11, 0, 0, 0, cst)), true},
		{"services", len(o.Services), 2},
		{"service0", o.Services[0], Service{Device: DeviceE8, Access: AccessGPON, BandwidthMbps: 300}},
		{"pppoe user", o.PPPoE.Username, "ln0001@isp"},
		{"pppoe pass", o.PPPoE.Password.Reveal(), "pppoe-S3cret!"},
		{"loid", o.LOID.LOID.Reveal(), "LOID-00042"},
		{"loid pass", o.LOID.Password.Reveal(), "loidpw42"},
		{"iptv", o.IPTV.Account, "itv0001"},
		{"iptv pass", o.IPTV.Password.Reveal(), "iptv-S3cret!"},
		{"bbms", o.BBMSCustomerID, "BB-778899"},
		{"firmware", o.RequiredFirmware, "V2.1.7"},
		{"summary", o.Summary().CustomerName, "Li Na"},
		{"has pon", o.HasPON(), true},
		{"has xt2", o.HasDevice(DeviceXT2), false},
		{"in window", o.Appointment.Contains(time.Date(2025, 3, 1, 10, 0, 0, 0, cst)), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

// TestMarshalRedacts checks that the ordinary JSON form never carries a
// credential and reads back with empty credentials.
func TestMarshalRedacts(t *testing.T) {
	for name, data := range samples(t, "valid-*.json") {
		t.Run(filepath.Base(name), func(t *testing.T) {
			o, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []secret.Secret{o.PPPoE.Password, o.LOID.LOID, o.LOID.Password, o.IPTV.Password} {
				if !s.IsZero() && bytes.Contains(b, []byte(s.Reveal())) {
					t.Errorf("json.Marshal leaked a credential: %s", b)
				}
			}
			var back Order
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !back.PPPoE.Password.IsZero() || !back.LOID.LOID.IsZero() || !back.IPTV.Password.IsZero() {
				t.Errorf("redacted form read back with credentials")
			}
			if back.ID != o.ID || !back.Appointment.Start.Equal(o.Appointment.Start) || len(back.Services) != len(o.Services) {
				t.Errorf("redacted form lost non-secret fields: %+v", back)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	valid := func() *Order {
		o, err := Parse(samples(t, "valid-new-install-gpon.json")["testdata/valid-new-install-gpon.json"])
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		name   string
		change func(o *Order)
		want   string // substring of the error; "" means valid
	}{
		{"ok", func(*Order) {}, ""},
		{"no loid on gpon", func(o *Order) { o.LOID = LOIDCredential{} }, "order: loid: is required for a new_install order"},
		{"loid too long", func(o *Order) { o.LOID.LOID = secret.New(strings.Repeat("x", 25)) }, "order: loid.loid: is longer than 24 characters"},
		{"no iptv", func(o *Order) { o.IPTV = IPTVAccount{} }, "order: iptv: is required"},
		{"iptv without password", func(o *Order) { o.IPTV.Password = secret.Secret{} }, "order: iptv.password: is required when iptv.account is given"},
		{"iptv vlan out of range", func(o *Order) { o.IPTV.VLAN = 4095 }, "order: iptv.vlan: is 4095; a VLAN is 1–4094"},
		{"pppoe without user", func(o *Order) { o.PPPoE.Username = "" }, "order: pppoe.username: is required when pppoe.password is given"},
		{"repair needs no credentials", func(o *Order) {
			o.Type = TypeRepair
			o.PPPoE, o.LOID, o.IPTV = Account{}, LOIDCredential{}, IPTVAccount{}
		}, ""},
		{"bad phone", func(o *Order) { o.Customer.Phone = "call me" }, `order: customer.phone: "call me" is not a phone number`},
		{"blank name", func(o *Order) { o.Customer.Name = "   " }, "order: customer.name: is blank"},
		{"newline in address", func(o *Order) { o.Customer.Address = "a\nb" }, "order: customer.address: contains a control character"},
		{"no appointment", func(o *Order) { o.Appointment = Window{} }, "order: appointment: is required"},
		{"negative bandwidth", func(o *Order) { o.Services[0].BandwidthMbps = -1 }, "order: services[0].bandwidth_mbps: -1 is out of range"},
		{"serial with a space", func(o *Order) { o.Services[0].Serial = "ZTE 1" }, "order: services[0].serial: must be at most 64 characters"},
		{"model with a newline", func(o *Order) { o.Services[0].Model = "F650\nX" }, "order: services[0].model: must be at most 64 printable"},
		{"e8 without bandwidth", func(o *Order) { o.Services[0].BandwidthMbps = 0 }, "order: services[0].bandwidth_mbps: is required for a e8 service"},
		{"firmware with space", func(o *Order) { o.RequiredFirmware = "V 2" }, "order: required_firmware:"},
		{"long notes", func(o *Order) { o.Notes = strings.Repeat("n", 4001) }, "order: notes: is longer than 4000 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.change(o)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			case err != nil && !errors.Is(err, ErrInvalid):
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "S3cret") {
				t.Fatalf("error leaks a credential: %v", err)
			}
		})
	}
	var nilOrder *Order
	if err := nilOrder.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil order: %v", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse(bytes.Repeat([]byte(" "), MaxSize+1))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"valid-*.json", "invalid-*.json"} {
		for _, data := range samples(f, pattern) {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		wire, err := o.WireJSON()
		if err != nil {
			t.Fatalf("WireJSON of a parsed order: %v", err)
		}
		again, err := Parse(wire)
		if err != nil {
			t.Fatalf("WireJSON of a valid order does not parse: %v\n%s", err, wire)
		}
		if !equalOrders(o, again) {
			t.Fatalf("wire round trip changed the order:\n%s\n%s", wire, mustWire(t, again))
		}
	})
}

// equalOrders compares two orders field by field, times by instant and
// offset, credentials by value.
func equalOrders(a, b *Order) bool {
	sameTime := func(x, y time.Time) bool {
		_, xo := x.Zone()
		_, yo := y.Zone()
		return x.Equal(y) && xo == yo
	}
	if a.ID != b.ID || a.Type != b.Type || a.Technician != b.Technician || a.Customer != b.Customer ||
		!sameTime(a.Appointment.Start, b.Appointment.Start) || !sameTime(a.Appointment.End, b.Appointment.End) ||
		len(a.Services) != len(b.Services) || a.PPPoE != b.PPPoE || a.LOID != b.LOID || a.IPTV != b.IPTV ||
		a.BBMSCustomerID != b.BBMSCustomerID || a.RequiredFirmware != b.RequiredFirmware || a.Notes != b.Notes {
		return false
	}
	for i := range a.Services {
		if a.Services[i] != b.Services[i] {
			return false
		}
	}
	return true
}

func mustWire(t *testing.T, o *Order) []byte {
	t.Helper()
	b, err := o.WireJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The issued box's model and serial cross the wire and come back.
func TestIssuedDeviceRoundTrip(t *testing.T) {
	o, err := Parse(samples(t, "valid-new-install-gpon.json")["testdata/valid-new-install-gpon.json"])
	if err != nil {
		t.Fatal(err)
	}
	o.Services[0].Model, o.Services[0].Serial = "F650", "ZTEG1A2B3C4D"
	b, err := o.WireJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Services[0].Model != "F650" || back.Services[0].Serial != "ZTEG1A2B3C4D" || back.Services[1].Model != "" {
		t.Errorf("services after the round trip: %+v", back.Services)
	}
}

func TestIPTVVLANRoundTrip(t *testing.T) {
	o, err := Parse(samples(t, "valid-new-install-gpon.json")["testdata/valid-new-install-gpon.json"])
	if err != nil {
		t.Fatal(err)
	}
	if o.IPTV.Account == "" {
		t.Skip("the sample has no IPTV account")
	}
	o.IPTV.VLAN = 45
	b, err := o.WireJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.IPTV.VLAN != 45 {
		t.Errorf("iptv.vlan after the round trip = %d, want 45", back.IPTV.VLAN)
	}
}
