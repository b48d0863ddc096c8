package drivers

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
)

type fakeDriver struct{ name string }

func (f fakeDriver) Identify(context.Context) (Identity, error) { return Identity{Model: f.name}, nil }

func TestRegistry(t *testing.T) {
	var r Registry
	mk := func(name string) Constructor {
		return func(context.Context, Seen) (Identifier, error) { return fakeDriver{name}, nil }
	}
	r.Register(Entry{Name: "e8", Kind: KindE8, Match: Match{RootObject: "InternetGatewayDevice"}, New: mk("e8")})
	r.Register(Entry{Name: "e8-zte", Kind: KindE8, Match: Match{RootObject: "InternetGatewayDevice", OUI: "00D0D0"}, New: mk("e8-zte")})
	r.Register(Entry{Name: "itv", Kind: KindITV, Match: Match{RootObject: "Device.STBService"}, New: mk("itv")})
	r.Register(Entry{Name: "xt2", Kind: KindXT2, Match: Match{SysObjectIDPrefix: "1.3.6.1.4.1.99999.1"}, New: mk("xt2")})
	r.Register(Entry{Name: "xt2-cli", Kind: KindXT2, Match: Match{DisplayVersion: regexp.MustCompile(`(?m)^XT-2 `)}, New: mk("xt2-cli")})
	cases := []struct {
		name string
		seen Seen
		want string
	}{
		{"generic e8", Seen{RootObject: "InternetGatewayDevice", OUI: "001122"}, "e8"},
		{"zte e8 is more specific", Seen{RootObject: "InternetGatewayDevice", OUI: "00d0d0"}, "e8-zte"},
		{"stb", Seen{RootObject: "Device.STBService.1."}, "itv"},
		{"snmp", Seen{SysObjectID: ".1.3.6.1.4.1.99999.1.2"}, "xt2"},
		{"snmp sibling is not a subtree", Seen{SysObjectID: "1.3.6.1.4.1.99999.10"}, ""},
		{"cli", Seen{DisplayVersion: "XT-2 Software, Version 7.1\nuptime 3 days"}, "xt2-cli"},
		{"unknown", Seen{Manufacturer: "Acme", ModelName: "Box 9", RootObject: "Device"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := r.Open(context.Background(), tc.seen)
			if tc.want == "" {
				if !errors.Is(err, ErrUnknownDevice) {
					t.Fatalf("Open = %v, want ErrUnknownDevice", err)
				}
				for _, v := range []string{tc.seen.ModelName, tc.seen.SysObjectID} {
					if v != "" && !strings.Contains(err.Error(), v) {
						t.Errorf("error %q does not list %q", err, v)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id, _ := d.Identify(context.Background()); id.Model != tc.want {
				t.Errorf("driver %s, want %s", id.Model, tc.want)
			}
		})
	}
}

func TestRestoreError(t *testing.T) {
	cause := errors.New("fault 9002")
	ok := &RestoreError{Op: "configure pppoe", Err: cause}
	if !errors.Is(ok, cause) || errors.Is(ok, ErrRestoreFailed) || !ok.Restored() {
		t.Errorf("restored: %v", ok)
	}
	bad := &RestoreError{Op: "configure pppoe", Err: cause, RestoreErr: errors.New("session lost")}
	if !errors.Is(bad, cause) || !errors.Is(bad, ErrRestoreFailed) || bad.Restored() {
		t.Errorf("not restored: %v", bad)
	}
	if !strings.Contains(bad.Error(), "session lost") || !strings.Contains(bad.Error(), "fault 9002") {
		t.Errorf("message %q", bad)
	}
}
