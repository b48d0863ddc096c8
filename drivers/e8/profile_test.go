package e8

import (
	"math"
	"testing"
)

func TestOpticalDecode(t *testing.T) {
	cases := []struct {
		prof  OpticalProfile
		field string
		raw   string
		want  float64
	}{
		{ProfileDBmText, "RXPower", "-18.5", -18.5},
		{ProfileSFF8472, "RXPower", "100", -20},
		{ProfileSFF8472, "RXPower", "0", NoLightDBm},
		{ProfileSFF8472, "TXPower", "17783", 2.5},
		{ProfileSFF8472, "TransceiverTemperature", "11648", 45.5},
		{ProfileSFF8472, "SupplyVottage", "33000", 3.3},
		{ProfileSFF8472, "BiasCurrent", "6000", 12},
	}
	for _, tc := range cases {
		got, err := tc.prof.Decode(tc.field, tc.raw)
		if err != nil || math.Abs(got-tc.want) > 0.01 {
			t.Errorf("%s %s(%q) = %v, %v; want %v", tc.prof.Name, tc.field, tc.raw, got, err, tc.want)
		}
	}
	if _, err := ProfileDBmText.Decode("RXPower", "n/a"); err == nil {
		t.Error("n/a decoded")
	}
}

func FuzzOpticalDecode(f *testing.F) {
	for _, s := range []string{"-18.5", "100", "0", "-1", "n/a", "1e400", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, p := range []OpticalProfile{ProfileDBmText, ProfileSFF8472} {
			v, err := p.Decode("RXPower", raw)
			if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
				t.Errorf("%s(%q) = %v, which JSON cannot carry", p.Name, raw, v)
			}
		}
	})
}

func TestLANBindingFits(t *testing.T) {
	if b := lanBinding([]int{1, 2, 3}, []int{1}); len(b) > 256 {
		t.Errorf("LanInterface of LAN1-3+SSID1 is %d characters, the model allows 256", len(b))
	}
}
