package verdict

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func TestProfileFor(t *testing.T) {
	for _, tc := range []struct {
		access     string
		down, up   float64
		name       string
		optical    OpticalLimits
		pkgDown    float64
		pkgUp      float64
		judgesOpts bool
	}{
		{"gpon", 300, 50, "gpon-class-b+", OpticalLimits{-27, -8, -25, -40}, 300, 50, true},
		{"GPON", 0, 0, "gpon-class-b+", OpticalLimits{-27, -8, -25, -40}, 0, 0, true},
		{"epon", 100, 20, "epon-px20", OpticalLimits{-24, -3, -22, -40}, 100, 20, true},
		{"adsl", 20, 1, "adsl", OpticalLimits{NoLightDBm: -40}, 20, 1, false},
		{"vdsl", 50, 10, "vdsl", OpticalLimits{NoLightDBm: -40}, 50, 10, false},
		{"lan", 1000, 1000, "lan", OpticalLimits{NoLightDBm: -40}, 1000, 1000, false},
		{"xgspon", 1000, 1000, "generic", OpticalLimits{NoLightDBm: -40}, 1000, 1000, false},
		{"gpon", -5, math.NaN(), "gpon-class-b+", OpticalLimits{-27, -8, -25, -40}, 0, 0, true},
		{"gpon", math.Inf(1), 10, "gpon-class-b+", OpticalLimits{-27, -8, -25, -40}, 0, 10, true},
	} {
		p := ProfileFor(tc.access, tc.down, tc.up)
		if p.Name != tc.name || p.Optical != tc.optical || p.Speed.DownMbps != tc.pkgDown || p.Speed.UpMbps != tc.pkgUp || p.Optical.judged() != tc.judgesOpts {
			t.Errorf("ProfileFor(%q, %v, %v) = %+v", tc.access, tc.down, tc.up, p)
		}
		if p.DSL.SNRMarginMinDB != 6 || p.Speed.MinRatio != 0.9 || p.IPTV != (IPTVLimits{0, 50, 1000}) || p.Ping.MaxLossPct != 0 ||
			!slices.Equal(p.LAN.GigabitPorts, []int{1}) || p.LAN.GigabitSpeedMbps != 1000 {
			t.Errorf("ProfileFor(%q) common thresholds = %+v", tc.access, p)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("ProfileFor(%q) does not validate: %v", tc.access, err)
		}
	}
}

func TestOverrideValid(t *testing.T) {
	doc, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := ProfileFor("gpon", 100, 30)
	if err := p.Override(doc); err != nil {
		t.Fatal(err)
	}
	want := ProfileFor("gpon", 300, 50)
	want.Optical.RxMinDBm, want.Optical.RxWarnDBm = -28, -26
	want.LAN.GigabitPorts = []int{1, 2, 3, 4}
	want.Speed.MinRatio = 0.85
	want.IPTV.MaxDFMs = 40
	if !reflect.DeepEqual(p, want) {
		t.Errorf("after override\n got %+v\nwant %+v", p, want)
	}

	// JSON is YAML too; an empty document changes nothing.
	for _, doc := range []string{`{"ping": {"max_loss_pct": 5}, "name": "site-7"}`, "", "# nothing\n", "~", "---\n"} {
		q := ProfileFor("epon", 100, 30)
		if err := q.Override([]byte(doc)); err != nil {
			t.Errorf("Override(%q): %v", doc, err)
		}
		w := ProfileFor("epon", 100, 30)
		if doc != "" && doc[0] == '{' {
			w.Ping.MaxLossPct, w.Name = 5, "site-7"
		}
		if !reflect.DeepEqual(q, w) {
			t.Errorf("Override(%q) = %+v, want %+v", doc, q, w)
		}
	}
}

// TestOverrideDoesNotAlias: the override replaces the port list in its own
// copy; the profile it started from keeps its list.
func TestOverrideDoesNotAlias(t *testing.T) {
	base := ProfileFor("gpon", 100, 30)
	p := base
	if err := p.Override([]byte("lan: {gigabit_ports: [2]}")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(base.LAN.GigabitPorts, []int{1}) || !slices.Equal(p.LAN.GigabitPorts, []int{2}) {
		t.Errorf("base %v, overridden %v", base.LAN.GigabitPorts, p.LAN.GigabitPorts)
	}
}

// invalidOverrides pairs every testdata/invalid-*.yaml with the error it
// gives (and the sentinel it wraps, if any).
var invalidOverrides = map[string]struct {
	is  error
	msg string
}{
	"invalid-unknown-key.yaml":     {ErrUnknownKey, "profile override: optical.rx_min_dbmx (line 2): unknown threshold (known in optical: rx_min_dbm, rx_max_dbm, rx_warn_dbm, no_light_dbm)"},
	"invalid-unknown-section.yaml": {ErrUnknownKey, "profile override: opticle (line 1): unknown threshold (known in the profile: name, access, optical, dsl, lan, speed, iptv, ping)"},
	"invalid-type.yaml":            {ErrBadValue, `profile override: speed.min_ratio (line 2): bad threshold value: "ninety" is not a number`},
	"invalid-optical-order.yaml":   {ErrInvalidProfile, "invalid profile: optical.rx_min_dbm: -5 dBm is not below rx_max_dbm (-8 dBm)"},
	"invalid-optical-warn.yaml":    {ErrInvalidProfile, "invalid profile: optical.rx_warn_dbm: -30 dBm is outside rx_min_dbm … rx_max_dbm (-27 … -8 dBm); set it to rx_min_dbm for no warning band"},
	"invalid-ratio.yaml":           {ErrInvalidProfile, "invalid profile: speed.min_ratio: 1.5 is not a share of the package above 0 and at most 1 (0.9 is 90%)"},
	"invalid-ports-twice.yaml":     {ErrInvalidProfile, "invalid profile: lan.gigabit_ports: port 1 is listed twice"},
	"invalid-ports-scalar.yaml":    {ErrBadValue, `profile override: lan.gigabit_ports (line 2): bad threshold value: "1" is not a list of port numbers`},
	"invalid-nan.yaml":             {ErrInvalidProfile, "invalid profile: iptv.max_df_ms: NaN is not a finite number"},
	"invalid-null.yaml":            {ErrBadValue, "profile override: ping.max_loss_pct (line 2): bad threshold value: no value given"},
	"invalid-not-mapping.yaml":     {ErrBadValue, "profile override: profile (line 1): bad threshold value: want a mapping of thresholds, got a list"},
	"invalid-duplicate.yaml":       {ErrBadValue, "profile override: speed.down_mbps (line 3): bad threshold value: given twice"},
	"invalid-syntax.yaml":          {nil, "profile override: yaml: line 1: did not find expected node content"},
	"invalid-section-scalar.yaml":  {ErrBadValue, `profile override: dsl (line 1): bad threshold value: want a mapping of thresholds, got "6"`},
}

func TestOverrideInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid files: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			tc, ok := invalidOverrides[name]
			if !ok {
				t.Fatalf("%s has no expected error in invalidOverrides", f)
			}
			doc, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p := ProfileFor("gpon", 100, 30)
			err = p.Override(doc)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.msg {
				t.Errorf("error\n got %s\nwant %s", err, tc.msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if !reflect.DeepEqual(p, ProfileFor("gpon", 100, 30)) {
				t.Errorf("a failed override changed the profile: %+v", p)
			}
		})
	}
	for name := range invalidOverrides {
		if !seen[name] {
			t.Errorf("invalidOverrides has %s but testdata has no such file", name)
		}
	}
}

func TestOverrideMap(t *testing.T) {
	p := ProfileFor("gpon", 100, 30)
	err := p.OverrideMap(map[string]any{
		"optical.rx_min_dbm": -28.5,
		"optical":            map[string]any{"rx_warn_dbm": -26},
		"speed":              map[string]any{"down_mbps": 500, "up_mbps": 50},
		"lan.gigabit_ports":  []int{1, 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Optical.RxMinDBm != -28.5 || p.Optical.RxWarnDBm != -26 || p.Optical.RxMaxDBm != -8 ||
		p.Speed.DownMbps != 500 || p.Speed.UpMbps != 50 || !slices.Equal(p.LAN.GigabitPorts, []int{1, 4}) {
		t.Errorf("after OverrideMap: %+v", p)
	}

	for _, tc := range []struct {
		name string
		m    map[string]any
		is   error
		msg  string
	}{
		{"unknown dotted key", map[string]any{"optical.rx_min": -28}, ErrUnknownKey,
			"profile override: optical.rx_min: unknown threshold (known in optical: rx_min_dbm, rx_max_dbm, rx_warn_dbm, no_light_dbm)"},
		{"unknown nested key", map[string]any{"iptv": map[string]any{"max_mdi": 1}}, ErrUnknownKey,
			"profile override: iptv.max_mdi: unknown threshold (known in iptv: max_mlr, max_df_ms, max_join_ms)"},
		{"wrong type", map[string]any{"speed.min_ratio": "most"}, ErrBadValue,
			`profile override: speed.min_ratio: bad threshold value: "most" is not a number`},
		{"value and section", map[string]any{"speed": 1, "speed.min_ratio": 0.8}, ErrBadValue,
			"profile override: speed.min_ratio: bad threshold value: speed is a value, not a section"},
		{"given twice", map[string]any{"speed.min_ratio": 0.8, "speed": map[string]any{"min_ratio": 0.7}}, ErrBadValue,
			"profile override: speed.min_ratio: bad threshold value: given twice"},
		{"out of range", map[string]any{"ping.max_loss_pct": 101}, ErrInvalidProfile,
			"invalid profile: ping.max_loss_pct: 101% is not a percentage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := ProfileFor("gpon", 100, 30)
			err := q.OverrideMap(tc.m)
			if err == nil || err.Error() != tc.msg || !errors.Is(err, tc.is) {
				t.Errorf("error\n got %v\nwant %s (%v)", err, tc.msg, tc.is)
			}
			if !reflect.DeepEqual(q, ProfileFor("gpon", 100, 30)) {
				t.Errorf("a failed override changed the profile: %+v", q)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Profile)
		msg    string
	}{
		{"no light above sensitivity", func(p *Profile) { p.Optical.NoLightDBm = -20 }, "invalid profile: optical.no_light_dbm: -20 dBm is above rx_min_dbm (-27 dBm)"},
		{"warn at max", func(p *Profile) { p.Optical.RxWarnDBm = -8 }, "invalid profile: optical.rx_warn_dbm: -8 dBm is outside rx_min_dbm … rx_max_dbm (-27 … -8 dBm); set it to rx_min_dbm for no warning band"},
		{"negative snr", func(p *Profile) { p.DSL.SNRMarginMinDB = -1 }, "invalid profile: dsl.snr_margin_min_db: -1 dB is negative"},
		{"port 0", func(p *Profile) { p.LAN.GigabitPorts = []int{0} }, "invalid profile: lan.gigabit_ports: port 0 is not a LAN port number (1-64)"},
		{"no gigabit speed", func(p *Profile) { p.LAN.GigabitSpeedMbps = 0 }, "invalid profile: lan.gigabit_speed_mbps: 0 Mbit/s is not a link speed"},
		{"negative package", func(p *Profile) { p.Speed.DownMbps = -1 }, "invalid profile: speed.down_mbps: -1 Mbit/s is negative (0 means the package is unknown)"},
		{"negative upload", func(p *Profile) { p.Speed.UpMbps = -1 }, "invalid profile: speed.up_mbps: -1 Mbit/s is negative (0 means the package is unknown)"},
		{"zero ratio", func(p *Profile) { p.Speed.MinRatio = 0 }, "invalid profile: speed.min_ratio: 0 is not a share of the package above 0 and at most 1 (0.9 is 90%)"},
		{"negative mlr", func(p *Profile) { p.IPTV.MaxMLR = -0.5 }, "invalid profile: iptv.max_mlr: -0.5 is negative"},
		{"negative df", func(p *Profile) { p.IPTV.MaxDFMs = -1 }, "invalid profile: iptv.max_df_ms: -1 ms is negative"},
		{"zero join", func(p *Profile) { p.IPTV.MaxJoinMs = 0 }, "invalid profile: iptv.max_join_ms: 0 ms leaves no time to join"},
		{"infinite", func(p *Profile) { p.Speed.UpMbps = math.Inf(1) }, "invalid profile: speed.up_mbps: +Inf is not a finite number"},
		{"warn equal to min is no band", func(p *Profile) { p.Optical.RxWarnDBm = -27 }, ""},
		{"optics off", func(p *Profile) { p.Optical = OpticalLimits{} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ProfileFor("gpon", 100, 30)
			tc.change(&p)
			err := p.Validate()
			if tc.msg == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.msg || !errors.Is(err, ErrInvalidProfile) {
				t.Errorf("Validate\n got %v\nwant %s", err, tc.msg)
			}
		})
	}
}

// TestProfileJSONKeys: the JSON keys are the override keys.
func TestProfileJSONKeys(t *testing.T) {
	b, err := json.Marshal(ProfileFor("gpon", 100, 30))
	if err != nil {
		t.Fatal(err)
	}
	var p Profile
	if err := p.Override(b); err != nil {
		t.Fatalf("a profile's JSON is not an override: %v", err)
	}
	if !reflect.DeepEqual(p, ProfileFor("gpon", 100, 30)) {
		t.Errorf("round trip = %+v", p)
	}
}
