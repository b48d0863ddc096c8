package e8

import (
	"errors"
	"strings"
	"testing"

	"fieldagent/drivers"
)

func TestPPPError(t *testing.T) {
	cases := []struct {
		last string
		want error
		says string
	}{
		{"ERROR_AUTHENTICATION_FAILURE", drivers.ErrPPPoEAuth, "691"},
		{"ERROR_ISP_TIME_OUT", drivers.ErrPPPoENoServer, "PADO"},
		{"ERROR_NO_CARRIER", drivers.ErrPPPoENoServer, "VLAN"},
		{"ERROR_NONE", nil, ""},
		{"", nil, ""},
	}
	for _, tc := range cases {
		err := pppError(drivers.WANStatus{LastError: tc.last})
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.last, err, tc.want)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %q does not mention %q", tc.last, err, tc.says)
		}
	}
}

func TestLOIDResult(t *testing.T) {
	cases := []struct {
		status, result string
		registered     bool
		says           string
	}{
		{"0", "1", true, "registered"},
		{"0", "0", false, "in progress"},
		{"0", "2", false, "delivery failed"},
		{"1", "2", false, "does not know this LOID"},
		{"2", "2", false, "password"},
		{"3", "2", false, "optical"},
		{"4", "2", false, "another gateway"},
		{"99", "99", false, "in progress"},
	}
	for _, tc := range cases {
		r := loidResult(tc.status, tc.result)
		if r.Registered != tc.registered || !strings.Contains(r.Detail, tc.says) {
			t.Errorf("loidResult(%s,%s) = %+v, want registered=%v and %q", tc.status, tc.result, r, tc.registered, tc.says)
		}
	}
}

func TestAccessType(t *testing.T) {
	for in, want := range map[string]string{"DSL": "adsl", "Ethernet": "lan", "EPON": "epon", "GPON": "gpon", "POTS": "pots"} {
		if got := accessType(in); got != want {
			t.Errorf("accessType(%q) = %q, want %q", in, got, want)
		}
	}
}
