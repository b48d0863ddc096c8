package scenario

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fieldagent/agent/order"
	"fieldagent/testlab"
	"fieldagent/testlab/e8sim"
)

// Every testdata/invalid-*.yaml is a case, paired with its exact error.
var invalidCases = map[string]string{
	"invalid-unknown-key.yaml":       "scenario invalid-unknown-key: invalid scenario: acces (line 3): unknown key (a scenario has name, description, devices, access, bandwidth_mbps, gateway, rx_power_dbm, lan_hosts, faults, order)",
	"invalid-unknown-host-key.yaml":  "scenario invalid-unknown-host-key: invalid scenario: lan_hosts[0].speed (line 5): unknown key (a scenario has hostname, mac, ip, port, wifi in a LAN host)",
	"invalid-bandwidth-type.yaml":    "scenario invalid-bandwidth-type: invalid scenario: bandwidth_mbps (line 2): cannot unmarshal !!str `fast` into int",
	"invalid-bandwidth-adsl.yaml":    "scenario invalid-bandwidth-adsl: invalid scenario: bandwidth_mbps (line 3): 300 is out of range 1 to 24 (adsl access)",
	"invalid-device.yaml":            `scenario invalid-device: invalid scenario: devices[1] (line 3): "ont" is not one of e8, itv, xt2`,
	"invalid-gateway.yaml":           `scenario invalid-gateway: invalid scenario: gateway (line 2): "broken" is not one of factory, installed, fault_pppoe`,
	"invalid-order.yaml":             `scenario invalid-order: invalid scenario: order (line 2): "WO-1" is not a sample order: one of WO-20261125-0001, WO-20261125-0002, WO-20261125-0003, WO-20261125-0004, WO-20261125-0005, WO-20261125-0006`,
	"invalid-order-device.yaml":      "scenario invalid-order-device: invalid scenario: order (line 2): WO-20261125-0003 (new_install) needs the xt2: add xt2 to devices",
	"invalid-no-order.yaml":          "scenario invalid-no-order: invalid scenario: order: is required: one of WO-20261125-0001, WO-20261125-0002, WO-20261125-0003, WO-20261125-0004, WO-20261125-0005, WO-20261125-0006",
	"invalid-fault.yaml":             `scenario invalid-fault: invalid scenario: faults[0] (line 3): "no_such_fault" is not in the fault catalogue (fieldagent lab fault list shows it)`,
	"invalid-access-without-e8.yaml": "scenario invalid-access-without-e8: invalid scenario: access (line 2): describes the e8 gateway, which this site does not run: add e8 to devices or remove access",
	"invalid-rx-power.yaml":          "scenario invalid-rx-power: invalid scenario: rx_power_dbm (line 3): 3 is out of range -40 to -1 dBm",
	"invalid-rx-power-lan.yaml":      "scenario invalid-rx-power-lan: invalid scenario: rx_power_dbm (line 3): needs epon or gpon access, not lan",
	"invalid-lan-host.yaml":          `scenario invalid-lan-host: invalid scenario: lan_hosts[0].port (line 3): 9 is out of range 1 to 4; lan_hosts[1].mac (line 4): 3c:22:fb:10:20:30 is listed twice; lan_hosts[1].ip (line 4): "fe80::1" is not an IPv4 address`,
	"invalid-syntax.yaml":            "scenario invalid-syntax: invalid scenario: line 1: did not find expected ',' or ']'",
	"invalid-not-mapping.yaml":       "scenario invalid-not-mapping: invalid scenario: line 1: a scenario is a mapping of keys (name, devices, order, ...)",
	"invalid-two-documents.yaml":     "scenario invalid-two-documents: invalid scenario: the file holds more than one YAML document (---): one scenario per file",
	"invalid-empty.yaml":             "scenario invalid-empty: invalid scenario: the file is empty: it needs at least devices and order",
}

func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(invalidCases) {
		t.Errorf("%d testdata/invalid-*.yaml files, %d cases: pair every file with its error", len(files), len(invalidCases))
	}
	for _, p := range files {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			want, ok := invalidCases[name]
			if !ok {
				t.Fatalf("no expected error for %s", p)
			}
			s, err := Load(p)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", p, s)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if got := strings.TrimPrefix(err.Error(), p+": "); got != want {
				t.Errorf("error\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestLoadValid(t *testing.T) {
	s, err := Load("testdata/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "weak-light" || s.Access != order.AccessEPON || s.BandwidthMbps != 100 || s.RxPowerDBm != -26.5 ||
		s.Order != testlab.SampleITVOrderID || !slices.Equal(s.Devices, []order.DeviceKind{order.DeviceE8, order.DeviceITV}) {
		t.Errorf("scenario = %+v", s)
	}
	wantHosts := []e8sim.LANHost{
		{HostName: "laptop", MAC: "3c:22:fb:10:20:30", IP: "192.168.1.100", Port: 1, InterfaceType: "Ethernet"},
		{HostName: "phone", MAC: "3c:22:fb:10:20:31", IP: "192.168.1.101", InterfaceType: "802.11"},
	}
	if !slices.Equal(s.LANHosts, wantHosts) {
		t.Errorf("LAN hosts = %+v, want %+v", s.LANHosts, wantHosts)
	}
	c := s.Config()
	if c.NoGateway || !c.STB || c.XT2 || c.Gateway != testlab.GatewayFactory || c.Access != order.AccessEPON ||
		c.BandwidthMbps != 100 || c.RxPowerDBm != -26.5 || len(c.LANHosts) != 2 {
		t.Errorf("Config() = %+v", c)
	}
}

// A file without name: is named after the file.
func TestLoadNamesAfterFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "my-site.yml")
	if err := os.WriteFile(p, []byte("devices: [xt2]\norder: WO-20261125-0003\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	if err != nil || s.Name != "my-site" {
		t.Fatalf("Load = %+v, %v", s, err)
	}
	if c := s.Config(); !c.NoGateway || !c.XT2 || c.STB {
		t.Errorf("Config() = %+v, want an XT-2-only site", c)
	}
}

func TestBuiltins(t *testing.T) {
	names := Names()
	for _, want := range []string{"default", "e8-itv", "xt2", "repair", "removal"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() = %v lacks %q", names, want)
		}
	}
	cases := map[string]struct {
		order   string
		gateway testlab.GatewayState
		noGW    bool
		stb     bool
		xt2     bool
	}{
		"default": {order: testlab.SampleOrderID},
		"e8-itv":  {order: testlab.SampleITVOrderID, stb: true},
		"xt2":     {order: testlab.SampleXT2OrderID, noGW: true, xt2: true},
		"repair":  {order: testlab.SampleRepairOrderID, gateway: testlab.GatewayFaultPPPoE},
		"removal": {order: testlab.SampleRemovalOrderID, gateway: testlab.GatewayInstalled},
		"move":    {order: testlab.SampleMoveOrderID, gateway: testlab.GatewayInstalled},
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s, err := Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != name || s.Description == "" {
				t.Errorf("built-in %s: name %q, description %q", name, s.Name, s.Description)
			}
			want, ok := cases[name]
			if !ok {
				return
			}
			c := s.Config()
			if s.Order != want.order || c.Gateway != want.gateway || c.NoGateway != want.noGW || c.STB != want.stb || c.XT2 != want.xt2 {
				t.Errorf("built-in %s: order %s, config %+v; want %+v", name, s.Order, c, want)
			}
		})
	}
	// The default scenario is the demo's site: testlab's zero Config.
	s, _ := Builtin("default")
	if c := s.Config(); c.Gateway != "" || c.NoGateway || c.STB || c.XT2 || (c.Access != "" && c.Access != order.AccessGPON) || (c.BandwidthMbps != 0 && c.BandwidthMbps != 300) || c.RxPowerDBm != 0 || len(c.LANHosts) != 0 {
		t.Errorf("default scenario %+v is not the demo's site", c)
	}
	if _, err := Builtin("nope"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "default") {
		t.Errorf("Builtin(nope) = %v, want ErrUnknown listing the names", err)
	}
}

// Faults are checked against the catalogue as it is when the test runs.
func TestFaults(t *testing.T) {
	cat := testlab.Faults()
	if len(cat) == 0 {
		t.Skip("the fault catalogue is empty")
	}
	f := cat[0]
	devices := "[e8, itv, xt2]"
	s, err := Parse("t", []byte("devices: "+devices+"\nfaults: ["+f.ID+"]\norder: WO-20261125-0001\n"))
	if err != nil || !slices.Equal(s.Faults, []string{f.ID}) {
		t.Fatalf("Parse with fault %s = %+v, %v", f.ID, s, err)
	}
	_, err = Parse("t", []byte("devices: "+devices+"\nfaults:\n  - "+f.ID+"\n  - "+f.ID+"\norder: WO-20261125-0001\n"))
	if want := "faults[1] (line 4): \"" + f.ID + "\" is listed twice"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("duplicate fault: %v, want %q", err, want)
	}
	// A fault of a device the site does not run.
	other := map[string]string{"e8": "[xt2]", "itv": "[xt2]", "xt2": "[e8]"}[f.Device]
	ord := map[string]string{"[xt2]": "WO-20261125-0003", "[e8]": "WO-20261125-0001"}[other]
	if other == "" {
		t.Fatalf("fault %s is on device %q", f.ID, f.Device)
	}
	_, err = Parse("t", []byte("devices: "+other+"\nfaults: ["+f.ID+"]\norder: "+ord+"\n"))
	if want := "faults[0] (line 2): \"" + f.ID + "\" is a fault of the " + f.Device + ", which this site does not run: add " + f.Device + " to devices"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("fault of a missing device: %v, want %q", err, want)
	}
}

func TestParseTooLarge(t *testing.T) {
	big := "devices: [e8]\norder: WO-20261125-0001\ndescription: x\n# " + strings.Repeat("x", MaxSize) + "\n"
	if _, err := Parse("big", []byte(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Parse of a %d-byte file: %v", len(big), err)
	}
}

// FuzzParse: scenario files are untrusted. Parse never panics, and what it
// accepts is a site testlab can run: known devices, a sample order the
// devices carry, catalogued faults.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, n := range Names() {
		b, _ := builtinFS.ReadFile("builtin/" + n + ".yaml")
		f.Add(b)
	}
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("devices: [e8]\nlan_hosts: [{mac: x}]\norder: WO-20261125-0001\nrx_power_dbm: .nan\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(s.Devices) == 0 || !slices.Contains(testlab.SampleOrderIDs(), s.Order) {
			t.Fatalf("accepted %+v", s)
		}
		for _, id := range s.Faults {
			if !slices.ContainsFunc(testlab.Faults(), func(f testlab.Fault) bool { return f.ID == id }) {
				t.Fatalf("accepted unknown fault %q", id)
			}
		}
		c := s.Config()
		if math.IsNaN(c.RxPowerDBm) || c.BandwidthMbps < 0 || len(c.LANHosts) > maxLANHosts {
			t.Fatalf("accepted config %+v", c)
		}
		if c.NoGateway && (c.Gateway != "" || len(c.LANHosts) > 0 || c.Access != "") {
			t.Fatalf("accepted e8 settings without the e8: %+v", c)
		}
	})
}

// Start runs what the scenario says: the gateway reports the access line,
// the optical power and the LAN hosts; the orders carry access and package;
// the faults are active.
func TestStartWiresSite(t *testing.T) {
	s, err := Load("testdata/valid-full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	site, err := s.Start(ctx, testlab.Config{ACSURL: "http://127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	tree := site.Gateway.Tree()
	const igd = "InternetGatewayDevice."
	if got := tree.Value(igd + "WANDevice.1.WANCommonInterfaceConfig.WANAccessType"); got != "EPON" {
		t.Errorf("WANAccessType = %q, want EPON", got)
	}
	if got := tree.Value(igd + "WANDevice.1.X_CT-COM_EponInterfaceConfig.RXPower"); got != "-26.5" {
		t.Errorf("RXPower = %q, want -26.5", got)
	}
	var macs []string
	for _, p := range tree.Snapshot() {
		if strings.HasPrefix(p.Name, igd+"LANDevice.1.Hosts.Host.") && strings.HasSuffix(p.Name, ".MACAddress") {
			macs = append(macs, p.Value)
		}
	}
	slices.Sort(macs)
	if !slices.Equal(macs, []string{"3c:22:fb:10:20:30", "3c:22:fb:10:20:31"}) {
		t.Errorf("LAN hosts %v", macs)
	}
	for _, id := range []string{testlab.SampleOrderID, testlab.SampleITVOrderID} {
		o := site.SampleOrders[id]
		for _, sv := range o.Services {
			if sv.Access != order.AccessEPON || (sv.Device == order.DeviceE8 && sv.BandwidthMbps != 100) {
				t.Errorf("order %s service %+v, want epon at 100 Mbit/s", id, sv)
			}
		}
		if err := o.Validate(); err != nil {
			t.Errorf("order %s: %v", id, err)
		}
	}
	if xt2 := site.SampleOrders[testlab.SampleXT2OrderID]; xt2.Services[0].Access != order.AccessLAN {
		t.Errorf("the XT-2 order's access changed: %+v", xt2.Services)
	}
	if got := site.ActiveFaults(); len(got) != 0 {
		t.Errorf("active faults %v, want none", got)
	}
}

// Start injects the scenario's faults; one the site cannot take fails it.
func TestStartInjectsFaults(t *testing.T) {
	cat := testlab.Faults()
	if len(cat) == 0 {
		t.Skip("the fault catalogue is empty")
	}
	s, err := Builtin("removal") // an installed gateway, connected
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cat {
		if f.Device != "e8" {
			continue
		}
		s.Faults = []string{f.ID}
		site, err := s.Start(context.Background(), testlab.Config{ACSURL: "http://127.0.0.1:1/"})
		if err != nil {
			continue // this one needs another state; try the next
		}
		got := site.ActiveFaults()
		site.Close()
		if !slices.Equal(got, s.Faults) {
			t.Fatalf("active faults %v, want %v", got, s.Faults)
		}
		return
	}
	t.Skip("no e8 fault that an installed gateway takes")
}
