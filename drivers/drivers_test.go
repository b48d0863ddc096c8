package drivers

import (
	"errors"
	"strings"
	"testing"
)

func TestIdentityCheck(t *testing.T) {
	id := Identity{Kind: KindE8, Access: "gpon", Firmware: "V2.1.0T6"}
	cases := []struct {
		name  string
		want  Expectation
		diffs []string
	}{
		{"match", Expectation{Kind: KindE8, Access: "GPON", Firmware: "V2.1.0T6"}, nil},
		{"any firmware", Expectation{Kind: KindE8, Access: "gpon"}, nil},
		{"wrong access", Expectation{Kind: KindE8, Access: "epon"}, []string{"access type is gpon, order wants epon"}},
		{"old firmware", Expectation{Kind: KindE8, Firmware: "V3"}, []string{"firmware is V2.1.0T6, order requires V3", "upgrade"}},
		{"wrong kind and access", Expectation{Kind: KindXT2, Access: "lan"}, []string{"kind is e8, order wants xt2", "access type is gpon"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := id.Check(tc.want)
			if len(tc.diffs) == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("Check = %v, want ErrMismatch", err)
			}
			for _, d := range tc.diffs {
				if !strings.Contains(err.Error(), d) {
					t.Errorf("error %q lacks %q", err, d)
				}
			}
		})
	}
}

func TestWANStatusUp(t *testing.T) {
	for _, tc := range []struct {
		s    WANStatus
		want bool
	}{
		{WANStatus{Status: "Connected", ExternalIP: "100.64.0.2"}, true},
		{WANStatus{Status: "Connected"}, false},
		{WANStatus{Status: "Connecting", ExternalIP: "100.64.0.2"}, false},
	} {
		if got := tc.s.Up(); got != tc.want {
			t.Errorf("%+v Up = %v", tc.s, got)
		}
	}
}
