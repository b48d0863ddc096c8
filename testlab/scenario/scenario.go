// Package scenario reads scenario files: YAML that describes a simulated
// site for testlab — which devices run, the access line and package, the
// gateway's starting state, what is cabled to its LAN, the catalogued faults
// injected at start and the sample order to run. `fieldagent lab up` runs
// one; a handful are built in (Names, Builtin).
//
// A scenario file is untrusted input: decoding is strict (an unknown key, a
// bad value or a fault that is not in testlab.Faults is an error that names
// the key and its line) and bounded (MaxSize).
//
//	name: repair
//	description: e8 GPON repair — the gateway dials with an old PPPoE password
//	devices: [e8]            # e8, itv, xt2
//	access: gpon             # lan, adsl, epon, gpon (the e8's uplink)
//	bandwidth_mbps: 300      # the e8 orders' internet package
//	gateway: fault_pppoe     # factory, installed, fault_pppoe
//	rx_power_dbm: -18.5      # optical receive power (epon, gpon)
//	lan_hosts:               # cabled to the e8's LAN ports, or on its Wi-Fi
//	  - {hostname: laptop, mac: "3c:22:fb:10:20:30", ip: 192.168.1.100, port: 1}
//	faults: []               # testlab.Faults IDs, injected at start
//	order: WO-20261125-0005  # a testlab.SampleOrderIDs ID
package scenario

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"fieldagent/agent/order"
	"fieldagent/testlab"
	"fieldagent/testlab/e8sim"
)

// Errors, returned wrapped; the message names the key and line to fix.
var (
	// ErrInvalid is wrapped by every error about a scenario's content.
	ErrInvalid = errors.New("invalid scenario")
	// ErrUnknown means Builtin has no scenario of that name.
	ErrUnknown = errors.New("no such built-in scenario")
)

// MaxSize is the largest scenario file Parse accepts, in bytes.
const MaxSize = 64 << 10

// Limits of a scenario's lists and values.
const (
	maxLANHosts   = 32
	maxLANPort    = 4
	maxTextLen    = 200
	minRxPowerDBm = -40.0
	maxRxPowerDBm = -1.0
)

// Scenario is one decoded and validated scenario. Build it with Parse, Load
// or Builtin; the zero value is not a valid scenario.
type Scenario struct {
	// Name names the scenario (the file's name: key, else the name Parse
	// was given).
	Name string
	// Description says what the site is for.
	Description string
	// Devices are the device kinds that run: e8, itv, xt2 (at least one).
	Devices []order.DeviceKind
	// Access is the e8 gateway's uplink and its orders' access ("" is
	// testlab's default, gpon).
	Access order.AccessType
	// BandwidthMbps is the e8 orders' internet package (0: testlab's
	// default).
	BandwidthMbps int
	// Gateway is the e8 gateway's starting state.
	Gateway testlab.GatewayState
	// RxPowerDBm is the e8 gateway's optical receive power (0: the
	// simulator's default).
	RxPowerDBm float64
	// LANHosts are the devices on the e8 gateway's LAN.
	LANHosts []e8sim.LANHost
	// Faults are catalogue IDs (testlab.Faults) injected at start, in
	// order.
	Faults []string
	// Order is the sample order the scenario runs (testlab.SampleOrderIDs).
	Order string
}

// file is the YAML form of a scenario.
type file struct {
	Name          string    `yaml:"name"`
	Description   string    `yaml:"description"`
	Devices       []string  `yaml:"devices"`
	Access        string    `yaml:"access"`
	BandwidthMbps int       `yaml:"bandwidth_mbps"`
	Gateway       string    `yaml:"gateway"`
	RxPowerDBm    *float64  `yaml:"rx_power_dbm"`
	LANHosts      []lanHost `yaml:"lan_hosts"`
	Faults        []string  `yaml:"faults"`
	Order         string    `yaml:"order"`
}

// lanHost is the YAML form of one LAN host.
type lanHost struct {
	Hostname string `yaml:"hostname"`
	MAC      string `yaml:"mac"`
	IP       string `yaml:"ip"`
	// Port is the LAN port (1-4) or, with WiFi, the SSID (1-4); 0 is 1.
	Port int  `yaml:"port"`
	WiFi bool `yaml:"wifi"`
}

// gatewayState maps a YAML word to testlab's state.
func gatewayState(word string) (testlab.GatewayState, bool) {
	switch word {
	case "factory":
		return testlab.GatewayFactory, true
	case "installed":
		return testlab.GatewayInstalled, true
	case "fault_pppoe":
		return testlab.GatewayFaultPPPoE, true
	}
	return "", false
}

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Names returns the names of the built-in scenarios, sorted.
func Names() []string {
	ents, _ := fs.ReadDir(builtinFS, "builtin")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(out)
	return out
}

// Builtin returns the built-in scenario name. An unknown name gives an
// error wrapping ErrUnknown that lists the names.
func Builtin(name string) (*Scenario, error) {
	if !slices.Contains(Names(), name) {
		return nil, fmt.Errorf("%w: %q is not one of %s (or give a scenario file, *.yaml)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	b, err := builtinFS.ReadFile(path.Join("builtin", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return Parse(name, b)
}

// Load reads and parses the scenario file at p; a file without a name: key
// is named after the file (without .yaml or .yml).
func Load(p string) (*Scenario, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", p, err)
	}
	base := filepath.Base(p)
	for _, ext := range []string{".yaml", ".yml"} {
		base = strings.TrimSuffix(base, ext)
	}
	s, err := Parse(base, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return s, nil
}

// Parse decodes and validates a scenario. name labels its errors and names
// the scenario when data has no name: key. Every error wraps ErrInvalid and
// names the key and the line: "scenario x: faults[1] (line 7): ...".
func Parse(name string, data []byte) (*Scenario, error) {
	fail := func(msg string) error { return fmt.Errorf("scenario %s: %w: %s", name, ErrInvalid, msg) }
	if len(data) > MaxSize {
		return nil, fail(fmt.Sprintf("the file is larger than %d bytes", MaxSize))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fail(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, fail("the file is empty: it needs at least devices and order")
	}
	if root.Content[0].Kind != yaml.MappingNode {
		return nil, fail(fmt.Sprintf("line %d: a scenario is a mapping of keys (name, devices, order, ...)", root.Content[0].Line))
	}
	lines := map[string]int{}
	walk(root.Content[0], "", lines)

	var raw file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fail(annotate(te.Errors, lines))
		}
		return nil, fail(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fail("the file holds more than one YAML document (---): one scenario per file")
	}

	s, errs := validate(raw, lines)
	if len(errs) > 0 {
		return nil, fail(strings.Join(errs, "; "))
	}
	if s.Name == "" {
		s.Name = name
	}
	return s, nil
}

// walk records the line of every key's value, by dotted path
// ("lan_hosts[0].mac").
func walk(n *yaml.Node, prefix string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if prefix != "" {
				k = prefix + "." + k
			}
			if _, dup := lines[k]; !dup {
				lines[k] = n.Content[i].Line
			}
			walk(n.Content[i+1], k, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			k := fmt.Sprintf("%s[%d]", prefix, i)
			lines[k] = c.Line
			walk(c, k, lines)
		}
	}
}

var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type \S+$`)
	lineRE         = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// annotate rewrites yaml's type errors to name the key: "line 4: field
// x not found in type scenario.file" reads "x (line 4): unknown key".
func annotate(errs []string, lines map[string]int) string {
	byLine := map[int]string{}
	for k, l := range lines {
		if old, ok := byLine[l]; !ok || len(k) > len(old) {
			byLine[l] = k // the innermost key on that line
		}
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		if m := unknownFieldRE.FindStringSubmatch(e); m != nil {
			l, _ := strconv.Atoi(m[1])
			key := m[2]
			if k, ok := byLine[l]; ok && strings.HasSuffix(k, key) {
				key = k
			}
			out = append(out, fmt.Sprintf("%s (line %d): unknown key (a scenario has %s)", key, l, knownKeys(key)))
			continue
		}
		if m := lineRE.FindStringSubmatch(e); m != nil {
			l, _ := strconv.Atoi(m[1])
			if k, ok := byLine[l]; ok {
				out = append(out, fmt.Sprintf("%s (line %d): %s", k, l, m[2]))
				continue
			}
		}
		out = append(out, e)
	}
	return strings.Join(out, "; ")
}

// knownKeys lists the keys valid where key is.
func knownKeys(key string) string {
	if strings.HasPrefix(key, "lan_hosts[") {
		return "hostname, mac, ip, port, wifi in a LAN host"
	}
	return "name, description, devices, access, bandwidth_mbps, gateway, rx_power_dbm, lan_hosts, faults, order"
}

// validate checks raw and converts it; errs name key and line.
func validate(raw file, lines map[string]int) (*Scenario, []string) {
	var errs []string
	add := func(key, format string, args ...any) {
		at := key
		if l, ok := lines[key]; ok {
			at = fmt.Sprintf("%s (line %d)", key, l)
		}
		errs = append(errs, at+": "+fmt.Sprintf(format, args...))
	}
	s := &Scenario{Name: raw.Name, Description: raw.Description, BandwidthMbps: raw.BandwidthMbps, Order: raw.Order}

	if msg := text(raw.Name, 64); msg != "" {
		add("name", "%s", msg)
	}
	if msg := text(raw.Description, maxTextLen); msg != "" {
		add("description", "%s", msg)
	}

	kinds := order.DeviceKinds()
	if len(raw.Devices) == 0 {
		add("devices", "is required: a list of %s", joinAny(kinds))
	}
	for i, d := range raw.Devices {
		k := order.DeviceKind(d)
		switch {
		case !slices.Contains(kinds, k):
			add(fmt.Sprintf("devices[%d]", i), "%q is not one of %s", d, joinAny(kinds))
		case slices.Contains(s.Devices, k):
			add(fmt.Sprintf("devices[%d]", i), "%q is listed twice", d)
		default:
			s.Devices = append(s.Devices, k)
		}
	}
	hasE8 := slices.Contains(s.Devices, order.DeviceE8)
	needE8 := func(key string) {
		if !hasE8 && len(s.Devices) > 0 {
			add(key, "describes the e8 gateway, which this site does not run: add e8 to devices or remove %s", key)
		}
	}

	if raw.Access != "" {
		s.Access = order.AccessType(raw.Access)
		if !slices.Contains(order.AccessTypes(), s.Access) {
			add("access", "%q is not one of %s", raw.Access, joinAny(order.AccessTypes()))
		}
		needE8("access")
	}
	access := s.Access
	if access == "" {
		access = order.AccessGPON
	}
	if _, set := lines["bandwidth_mbps"]; set {
		maxBW := order.MaxBandwidthMbps(access)
		switch {
		case raw.BandwidthMbps < 1 || (maxBW > 0 && raw.BandwidthMbps > maxBW):
			add("bandwidth_mbps", "%d is out of range 1 to %d (%s access)", raw.BandwidthMbps, maxBW, access)
		}
		needE8("bandwidth_mbps")
	}

	if raw.Gateway != "" {
		st, ok := gatewayState(raw.Gateway)
		if !ok {
			add("gateway", "%q is not one of factory, installed, fault_pppoe", raw.Gateway)
		}
		s.Gateway = st
		needE8("gateway")
	}

	if raw.RxPowerDBm != nil {
		v := *raw.RxPowerDBm
		switch {
		case !access.IsPON():
			add("rx_power_dbm", "needs epon or gpon access, not %s", access)
		case !(v >= minRxPowerDBm && v <= maxRxPowerDBm):
			add("rx_power_dbm", "%v is out of range %v to %v dBm", v, minRxPowerDBm, maxRxPowerDBm)
		default:
			s.RxPowerDBm = v
		}
		needE8("rx_power_dbm")
	}

	if len(raw.LANHosts) > 0 {
		needE8("lan_hosts")
	}
	if len(raw.LANHosts) > maxLANHosts {
		add("lan_hosts", "has %d hosts, at most %d", len(raw.LANHosts), maxLANHosts)
	}
	macs := map[string]bool{}
	for i, h := range raw.LANHosts[:min(len(raw.LANHosts), maxLANHosts)] {
		p := fmt.Sprintf("lan_hosts[%d]", i)
		host := e8sim.LANHost{HostName: h.Hostname, Port: h.Port, InterfaceType: "Ethernet"}
		if h.WiFi {
			host.InterfaceType = "802.11"
		}
		if msg := text(h.Hostname, 64); msg != "" {
			add(p+".hostname", "%s", msg)
		}
		mac, err := net.ParseMAC(h.MAC)
		switch {
		case h.MAC == "":
			add(p+".mac", "is required, e.g. \"3c:22:fb:10:20:30\"")
		case err != nil || len(mac) != 6:
			add(p+".mac", "%q is not a MAC address like 3c:22:fb:10:20:30", h.MAC)
		case macs[mac.String()]:
			add(p+".mac", "%s is listed twice", mac)
		default:
			macs[mac.String()] = true
			host.MAC = mac.String()
		}
		ip, err := netip.ParseAddr(h.IP)
		switch {
		case h.IP == "":
			add(p+".ip", "is required, e.g. 192.168.1.100")
		case err != nil || !ip.Is4():
			add(p+".ip", "%q is not an IPv4 address", h.IP)
		default:
			host.IP = ip.String()
		}
		if h.Port < 0 || h.Port > maxLANPort {
			add(p+".port", "%d is out of range 1 to %d", h.Port, maxLANPort)
		}
		s.LANHosts = append(s.LANHosts, host)
	}

	catalogue := testlab.Faults()
	for i, id := range raw.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		j := slices.IndexFunc(catalogue, func(f testlab.Fault) bool { return f.ID == id })
		switch {
		case j < 0:
			add(p, "%q is not in the fault catalogue (fieldagent lab fault list shows it)", id)
		case slices.Contains(s.Faults, id):
			add(p, "%q is listed twice", id)
		case !slices.Contains(s.Devices, order.DeviceKind(catalogue[j].Device)):
			add(p, "%q is a fault of the %s, which this site does not run: add %s to devices", id, catalogue[j].Device, catalogue[j].Device)
		default:
			s.Faults = append(s.Faults, id)
		}
	}

	ids := testlab.SampleOrderIDs()
	switch i := slices.Index(ids, raw.Order); {
	case raw.Order == "":
		add("order", "is required: one of %s", strings.Join(ids, ", "))
	case i < 0:
		add("order", "%q is not a sample order: one of %s", raw.Order, strings.Join(ids, ", "))
	default:
		o := testlab.AllSampleOrders(time.Now(), testlab.SampleCredentials{})[i]
		for _, k := range kinds {
			if o.HasDevice(k) && !slices.Contains(s.Devices, k) && len(s.Devices) > 0 {
				add("order", "%s (%s) needs the %s: add %s to devices", o.ID, o.Type, k, k)
			}
		}
	}
	return s, errs
}

// text checks a free-text value: at most n bytes of printable UTF-8.
func text(s string, n int) string {
	switch {
	case len(s) > n:
		return fmt.Sprintf("is %d bytes long, at most %d", len(s), n)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }):
		return "must be printable text, on one line"
	}
	return ""
}

func joinAny[T ~string](vs []T) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return strings.Join(out, ", ")
}

// Config returns the testlab configuration of the scenario's site: devices,
// access, package, gateway state, optical power and LAN hosts. The caller
// adds what connects it (ACSURL and credentials, Logger); the faults are
// injected on the running site with InjectFaults.
func (s *Scenario) Config() testlab.Config {
	return testlab.Config{
		Gateway:       s.Gateway,
		NoGateway:     !slices.Contains(s.Devices, order.DeviceE8),
		STB:           slices.Contains(s.Devices, order.DeviceITV),
		XT2:           slices.Contains(s.Devices, order.DeviceXT2),
		Access:        s.Access,
		BandwidthMbps: s.BandwidthMbps,
		RxPowerDBm:    s.RxPowerDBm,
		LANHosts:      slices.Clone(s.LANHosts),
	}
}

// InjectFaults injects the scenario's faults on site, in order, and stops at
// the first that fails, with an error wrapping ErrInvalid and testlab's
// (the site cannot take that fault in the state the scenario starts it).
func (s *Scenario) InjectFaults(site *testlab.Site) error {
	for _, id := range s.Faults {
		if err := site.InjectFault(id); err != nil {
			return fmt.Errorf("scenario %s: %w: fault %s: %w", s.Name, ErrInvalid, id, err)
		}
	}
	return nil
}

// Start starts the scenario's site with cfg's connection settings (ACSURL,
// credentials, Logger, Now; the site fields of cfg are replaced) and injects
// its faults. The caller closes the site.
func (s *Scenario) Start(ctx context.Context, cfg testlab.Config) (*testlab.Site, error) {
	sc := s.Config()
	cfg.Gateway, cfg.NoGateway, cfg.STB, cfg.XT2 = sc.Gateway, sc.NoGateway, sc.STB, sc.XT2
	cfg.Access, cfg.BandwidthMbps, cfg.RxPowerDBm, cfg.LANHosts = sc.Access, sc.BandwidthMbps, sc.RxPowerDBm, sc.LANHosts
	site, err := testlab.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.InjectFaults(site); err != nil {
		site.Close()
		return nil, err
	}
	return site, nil
}
