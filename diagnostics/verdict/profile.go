// Package verdict judges diagnostic readings against the thresholds of an
// access type and a broadband package, and turns what failed into findings
// a field technician can act on (with Chinese text for the customer).
//
// A Profile holds the thresholds (ProfileFor picks the defaults, Override
// lets configuration change any of them); Evaluate checks every reading of
// a set of diagnostics.Result against it and applies the finding rules to
// the checks and the facts (string state such as diagnostics/line's
// wan_last_error). The Report it returns marshals to JSON for --output json
// and writes itself as a text table.
package verdict

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Errors returned (wrapped) by Override, OverrideMap and Validate.
var (
	// ErrUnknownKey means an override names a threshold that does not
	// exist; the message names the key and lists the known ones.
	ErrUnknownKey = errors.New("unknown threshold")
	// ErrBadValue means an override gives a threshold a value of the wrong
	// type (text for a number, a mapping for a list).
	ErrBadValue = errors.New("bad threshold value")
	// ErrInvalidProfile means the thresholds contradict each other or are
	// out of range; the message names the key.
	ErrInvalidProfile = errors.New("invalid profile")
)

// Profile is the set of thresholds for one access type and package. The
// YAML/JSON keys are the override keys, e.g. optical.rx_min_dbm.
type Profile struct {
	// Name names the profile, e.g. "gpon-class-b+".
	Name string `yaml:"name" json:"name"`
	// Access is the access type the profile is for: gpon, epon, adsl, vdsl,
	// lan, or what ProfileFor was given.
	Access  string        `yaml:"access" json:"access"`
	Optical OpticalLimits `yaml:"optical" json:"optical"`
	DSL     DSLLimits     `yaml:"dsl" json:"dsl"`
	LAN     LANLimits     `yaml:"lan" json:"lan"`
	Speed   SpeedLimits   `yaml:"speed" json:"speed"`
	IPTV    IPTVLimits    `yaml:"iptv" json:"iptv"`
	Ping    PingLimits    `yaml:"ping" json:"ping"`
}

// OpticalLimits bound a PON receiver's power (optical_rx_power_dbm). Zero
// RxMinDBm and RxMaxDBm mean the access has no optical line and the
// reading is not judged.
type OpticalLimits struct {
	// RxMinDBm is the receiver sensitivity: lower power fails.
	RxMinDBm float64 `yaml:"rx_min_dbm" json:"rx_min_dbm"`
	// RxMaxDBm is the overload point: higher power fails.
	RxMaxDBm float64 `yaml:"rx_max_dbm" json:"rx_max_dbm"`
	// RxWarnDBm is the margin: power below it (but not below RxMinDBm)
	// warns. Equal to RxMinDBm means no warning band.
	RxWarnDBm float64 `yaml:"rx_warn_dbm" json:"rx_warn_dbm"`
	// NoLightDBm: power at or below it means no light reaches the ONU at
	// all (drivers report -40 dBm for a reading of zero).
	NoLightDBm float64 `yaml:"no_light_dbm" json:"no_light_dbm"`
}

// judged reports whether the limits apply (the access has optics).
func (o OpticalLimits) judged() bool { return o.RxMinDBm != 0 || o.RxMaxDBm != 0 }

// DSLLimits judge an ADSL/VDSL line.
type DSLLimits struct {
	// SNRMarginMinDB is the lowest noise margin, each direction.
	SNRMarginMinDB float64 `yaml:"snr_margin_min_db" json:"snr_margin_min_db"`
}

// LANLimits judge the gateway's Ethernet ports.
type LANLimits struct {
	// GigabitPorts are the ports that should link at GigabitSpeedMbps. An
	// e8-C gateway with one GE and three FE ports has [1]; set [1,2,3,4] for
	// an all-gigabit one. Half duplex fails on every port.
	GigabitPorts []int `yaml:"gigabit_ports" json:"gigabit_ports"`
	// GigabitSpeedMbps is the link speed a gigabit port should reach.
	GigabitSpeedMbps float64 `yaml:"gigabit_speed_mbps" json:"gigabit_speed_mbps"`
}

// SpeedLimits compare speed tests with the subscribed package.
type SpeedLimits struct {
	// DownMbps and UpMbps are the package's rates in Mbit/s; 0 means
	// unknown and the speed readings are skipped.
	DownMbps float64 `yaml:"down_mbps" json:"down_mbps"`
	UpMbps   float64 `yaml:"up_mbps" json:"up_mbps"`
	// MinRatio is the share of the package a test must reach (0.9 = 90%).
	MinRatio float64 `yaml:"min_ratio" json:"min_ratio"`
}

// IPTVLimits judge a multicast IPTV stream (RFC 4445 media delivery index).
type IPTVLimits struct {
	// MaxMLR is the highest media loss rate (iptv_mlr, packets/s).
	MaxMLR float64 `yaml:"max_mlr" json:"max_mlr"`
	// MaxDFMs is the highest delay factor (iptv_df_ms).
	MaxDFMs float64 `yaml:"max_df_ms" json:"max_df_ms"`
	// MaxJoinMs is the longest channel join (iptv_join_ms).
	MaxJoinMs float64 `yaml:"max_join_ms" json:"max_join_ms"`
}

// PingLimits judge a ping run.
type PingLimits struct {
	// MaxLossPct is the highest loss in percent (ping_loss).
	MaxLossPct float64 `yaml:"max_loss_pct" json:"max_loss_pct"`
}

// ProfileFor returns the default thresholds for an access type and a
// package of packageDownMbps/packageUpMbps (0, negative or NaN: unknown,
// speed tests are then not judged):
//
//   - gpon: class B+ receiver, Rx −27 … −8 dBm, warn below −25 dBm;
//   - epon: PX20 receiver, Rx −24 … −3 dBm, warn below −22 dBm;
//   - adsl, vdsl, lan and anything else: no optical limits;
//   - all: DSL SNR margin ≥ 6 dB, LAN1 gigabit at 1000 Mbit/s full
//     duplex, speed ≥ 90% of the package, IPTV MLR 0, DF ≤ 50 ms,
//     join ≤ 1000 ms, ping loss 0%.
//
// access is matched without regard to case; unknown ones give a profile
// named "generic".
func ProfileFor(access string, packageDownMbps, packageUpMbps float64) Profile {
	access = strings.ToLower(strings.TrimSpace(access))
	p := Profile{
		Name:    access,
		Access:  access,
		Optical: OpticalLimits{NoLightDBm: -40},
		DSL:     DSLLimits{SNRMarginMinDB: 6},
		LAN:     LANLimits{GigabitPorts: []int{1}, GigabitSpeedMbps: 1000},
		Speed:   SpeedLimits{DownMbps: rate(packageDownMbps), UpMbps: rate(packageUpMbps), MinRatio: 0.9},
		IPTV:    IPTVLimits{MaxMLR: 0, MaxDFMs: 50, MaxJoinMs: 1000},
		Ping:    PingLimits{MaxLossPct: 0},
	}
	switch access {
	case "gpon":
		p.Name = "gpon-class-b+"
		p.Optical = OpticalLimits{RxMinDBm: -27, RxMaxDBm: -8, RxWarnDBm: -25, NoLightDBm: -40}
	case "epon":
		p.Name = "epon-px20"
		p.Optical = OpticalLimits{RxMinDBm: -24, RxMaxDBm: -3, RxWarnDBm: -22, NoLightDBm: -40}
	case "adsl", "vdsl", "lan":
	default:
		p.Name = "generic"
	}
	return p
}

func rate(mbps float64) float64 {
	if mbps > 0 && !math.IsInf(mbps, 1) {
		return mbps
	}
	return 0
}

// Override changes the thresholds named in doc, a YAML (or JSON) mapping
// shaped like the profile, e.g.
//
//	optical: {rx_min_dbm: -28}
//	speed: {min_ratio: 0.8}
//
// Keys not given keep their values; a list (lan.gigabit_ports) is
// replaced. An empty document changes nothing. An unknown key wraps
// ErrUnknownKey, a value of the wrong type ErrBadValue, and a result that
// fails Validate ErrInvalidProfile; each error names the key (as
// section.key) and p is then left unchanged.
func (p *Profile) Override(doc []byte) error {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return fmt.Errorf("profile override: %w", err)
	}
	if root.Kind == 0 {
		return nil
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	return p.apply(n)
}

// OverrideMap is Override for a map, e.g. from flags or a larger config:
// keys are sections holding maps, or dotted paths
// ({"optical.rx_min_dbm": -28}); values are numbers, strings or lists.
func (p *Profile) OverrideMap(m map[string]any) error {
	nested, err := expandDotted(m, "")
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := n.Encode(nested); err != nil {
		return fmt.Errorf("profile override: %w", err)
	}
	return p.apply(&n)
}

// apply overrides a copy of p from the mapping n, validates it and stores it.
func (p *Profile) apply(n *yaml.Node) error {
	np := *p
	np.LAN.GigabitPorts = slices.Clone(p.LAN.GigabitPorts)
	if err := override(n, reflect.ValueOf(&np).Elem(), ""); err != nil {
		return fmt.Errorf("profile override: %w", err)
	}
	if err := np.Validate(); err != nil {
		return err
	}
	*p = np
	return nil
}

// expandDotted turns {"a.b": 1} into {"a": {"b": 1}}, recursively.
func expandDotted(m map[string]any, prefix string) (map[string]any, error) {
	out := map[string]any{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		if sub, ok := v.(map[string]any); ok {
			e, err := expandDotted(sub, prefix+k+".")
			if err != nil {
				return nil, err
			}
			v = e
		}
		parts := strings.Split(k, ".")
		dst := out
		for i, part := range parts[:len(parts)-1] {
			next, exists := dst[part]
			if !exists {
				nm := map[string]any{}
				dst[part] = nm
				dst = nm
				continue
			}
			nm, ok := next.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("profile override: %s: %w: %s is a value, not a section", prefix+k, ErrBadValue, prefix+strings.Join(parts[:i+1], "."))
			}
			dst = nm
		}
		last := parts[len(parts)-1]
		if old, exists := dst[last]; exists {
			om, ok1 := old.(map[string]any)
			nm, ok2 := v.(map[string]any)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("profile override: %s: %w: given twice", prefix+k, ErrBadValue)
			}
			for kk, vv := range nm {
				if _, dup := om[kk]; dup {
					return nil, fmt.Errorf("profile override: %s.%s: %w: given twice", prefix+k, kk, ErrBadValue)
				}
				om[kk] = vv
			}
			continue
		}
		dst[last] = v
	}
	return out, nil
}

// override sets the fields of struct v named by the keys of mapping n.
func override(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if v.Kind() == reflect.Struct {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: %w: want a mapping of thresholds, got %s", where(path, n), ErrBadValue, describe(n))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: %w: a key must be a name, got %s", where(path, k), ErrBadValue, describe(k))
			}
			if seen[k.Value] {
				return fmt.Errorf("%s: %w: given twice", where(key, k), ErrBadValue)
			}
			seen[k.Value] = true
			f, ok := fieldByTag(v, k.Value)
			if !ok {
				return fmt.Errorf("%s: %w (known in %s: %s)", where(key, k), ErrUnknownKey, orTop(path), strings.Join(tags(v.Type()), ", "))
			}
			if err := override(val, f, key); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return fmt.Errorf("%s: %w: no value given", where(path, n), ErrBadValue)
	}
	tmp := reflect.New(v.Type())
	if err := n.Decode(tmp.Interface()); err != nil {
		return fmt.Errorf("%s: %w: %s is not %s", where(path, n), ErrBadValue, describe(n), want(v.Type()))
	}
	v.Set(tmp.Elem())
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the profile"
	}
	return path
}

// where names a key and, for YAML input, its line.
func where(path string, n *yaml.Node) string {
	if path == "" {
		path = "profile"
	}
	if n.Line > 0 {
		return fmt.Sprintf("%s (line %d)", path, n.Line)
	}
	return path
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return "an alias"
}

func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of port numbers"
	}
	return t.String()
}

func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func tags(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		out = append(out, tag)
	}
	return out
}

// Validate checks that every threshold is a finite number in its range and
// that the optical limits are ordered (no_light ≤ rx_min ≤ rx_warn < rx_max).
// The error wraps ErrInvalidProfile and names the key.
func (p Profile) Validate() error {
	if err := finite(reflect.ValueOf(p), ""); err != nil {
		return err
	}
	bad := func(key string, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidProfile, key, fmt.Sprintf(format, args...))
	}
	o := p.Optical
	if o.judged() {
		if o.RxMinDBm >= o.RxMaxDBm {
			return bad("optical.rx_min_dbm", "%s dBm is not below rx_max_dbm (%s dBm)", num(o.RxMinDBm), num(o.RxMaxDBm))
		}
		if o.RxWarnDBm < o.RxMinDBm || o.RxWarnDBm >= o.RxMaxDBm {
			return bad("optical.rx_warn_dbm", "%s dBm is outside rx_min_dbm … rx_max_dbm (%s … %s dBm); set it to rx_min_dbm for no warning band",
				num(o.RxWarnDBm), num(o.RxMinDBm), num(o.RxMaxDBm))
		}
		if o.NoLightDBm > o.RxMinDBm {
			return bad("optical.no_light_dbm", "%s dBm is above rx_min_dbm (%s dBm)", num(o.NoLightDBm), num(o.RxMinDBm))
		}
	}
	if p.DSL.SNRMarginMinDB < 0 {
		return bad("dsl.snr_margin_min_db", "%s dB is negative", num(p.DSL.SNRMarginMinDB))
	}
	seen := map[int]bool{}
	for _, port := range p.LAN.GigabitPorts {
		if port < 1 || port > 64 {
			return bad("lan.gigabit_ports", "port %d is not a LAN port number (1-64)", port)
		}
		if seen[port] {
			return bad("lan.gigabit_ports", "port %d is listed twice", port)
		}
		seen[port] = true
	}
	if p.LAN.GigabitSpeedMbps <= 0 {
		return bad("lan.gigabit_speed_mbps", "%s Mbit/s is not a link speed", num(p.LAN.GigabitSpeedMbps))
	}
	if p.Speed.DownMbps < 0 {
		return bad("speed.down_mbps", "%s Mbit/s is negative (0 means the package is unknown)", num(p.Speed.DownMbps))
	}
	if p.Speed.UpMbps < 0 {
		return bad("speed.up_mbps", "%s Mbit/s is negative (0 means the package is unknown)", num(p.Speed.UpMbps))
	}
	if p.Speed.MinRatio <= 0 || p.Speed.MinRatio > 1 {
		return bad("speed.min_ratio", "%s is not a share of the package above 0 and at most 1 (0.9 is 90%%)", num(p.Speed.MinRatio))
	}
	if p.IPTV.MaxMLR < 0 {
		return bad("iptv.max_mlr", "%s is negative", num(p.IPTV.MaxMLR))
	}
	if p.IPTV.MaxDFMs < 0 {
		return bad("iptv.max_df_ms", "%s ms is negative", num(p.IPTV.MaxDFMs))
	}
	if p.IPTV.MaxJoinMs <= 0 {
		return bad("iptv.max_join_ms", "%s ms leaves no time to join", num(p.IPTV.MaxJoinMs))
	}
	if p.Ping.MaxLossPct < 0 || p.Ping.MaxLossPct > 100 {
		return bad("ping.max_loss_pct", "%s%% is not a percentage", num(p.Ping.MaxLossPct))
	}
	return nil
}

// finite rejects NaN and infinite thresholds, naming the key.
func finite(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if err := finite(v.Field(i), join(path, tag)); err != nil {
				return err
			}
		}
	case reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%w: %s: %v is not a finite number", ErrInvalidProfile, path, f)
		}
	}
	return nil
}
