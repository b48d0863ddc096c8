package e8_test

import (
	"errors"
	"math"
	"net/http/httptest"
	"strings"
	"testing"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/testlab/e8sim"
	"fieldagent/tr069/acs"
)

func TestOpticalProfiles(t *testing.T) {
	for _, tc := range []struct {
		encoding, profile string
	}{{"", "dbm-text"}, {"sff8472", "sff8472"}} {
		t.Run(tc.profile, func(t *testing.T) {
			l := startLab(t, "epon", func(c *e8sim.Config) {
				c.OpticalEncoding = tc.encoding
				c.RxPowerDBm = -21.3
				if tc.encoding != "" {
					c.Vendor = "FiberHome"
				}
			})
			o, err := l.drv.Optical(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			near := func(name string, got, want, tol float64) {
				if math.Abs(got-want) > tol {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			near("rx", o.RxPowerDBm, -21.3, 0.05)
			near("tx", o.TxPowerDBm, 2.5, 0.05)
			near("temperature", o.TemperatureC, 45.5, 0.01)
			near("voltage", o.VoltageV, 3.3, 0.001)
			near("bias", o.BiasMA, 12, 0.01)
			if o.Profile != tc.profile || o.Access != "epon" {
				t.Errorf("profile %s access %s", o.Profile, o.Access)
			}
		})
	}
	l := startLab(t, "lan")
	if _, err := l.drv.Optical(ctxT(t)); !errors.Is(err, drivers.ErrUnsupported) {
		t.Errorf("optical on a LAN uplink: %v, want ErrUnsupported", err)
	}
}

func TestStatusGetters(t *testing.T) {
	l := startLab(t, "adsl")
	ctx := ctxT(t)
	dsl, err := l.drv.DSLLine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dsl.DownstreamKbps != 20480 || dsl.DownstreamSNRdB != 8.5 || dsl.DownstreamAttenDB != 24 || dsl.CRCErrors != 3 {
		t.Errorf("DSL = %+v", dsl)
	}
	ports, err := l.drv.LANPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 4 || !ports[0].Up || ports[0].SpeedMbps != 1000 || ports[0].Duplex != "Full" || ports[1].Up {
		t.Errorf("LAN ports = %+v", ports)
	}
	wifi, err := l.drv.WiFi(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(wifi) != 4 || wifi[0].SSID != "ChinaNet-SN1" || !wifi[0].Enabled || wifi[0].Clients != 2 {
		t.Errorf("Wi-Fi = %+v", wifi)
	}
	if _, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right")}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.drv.WaitWANUp(ctx); err != nil {
		t.Fatal(err)
	}
	wans, err := l.drv.WANConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(wans) != 1 || !wans[0].Up() || wans[0].ServiceList != "INTERNET" || !wans[0].NAT {
		t.Errorf("WANs = %+v", wans)
	}
	if h, err := l.drv.LANHosts(ctx); err != nil || len(h) != 0 {
		t.Errorf("LANHosts = %+v, %v, want an empty table", h, err)
	}
}

func TestConfigureWiFi(t *testing.T) {
	l := startLab(t, "lan")
	ctx := ctxT(t)
	key := secret.New("s3cret-wifi-key")
	undo, err := l.drv.ConfigureWiFi(ctx, drivers.WiFiConfig{SSID: "Home-5", Key: key, Channel: 11})
	if err != nil {
		t.Fatal(err)
	}
	tr := l.gw.Tree()
	w := "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
	if tr.Value(w+"SSID") != "Home-5" || tr.Value(w+"Channel") != "11" || tr.Value(w+"KeyPassphrase") != key.Reveal() {
		t.Errorf("SSID %q channel %q", tr.Value(w+"SSID"), tr.Value(w+"Channel"))
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if tr.Value(w+"SSID") != "ChinaNet-SN1" {
		t.Errorf("undo: SSID %q", tr.Value(w+"SSID"))
	}
	if _, err := l.drv.ConfigureWiFi(ctx, drivers.WiFiConfig{SSID: "x", Key: secret.New("short")}); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("short key: %v", err)
	}
}

func TestConfigureIPTV(t *testing.T) {
	l := startLab(t, "gpon")
	ctx := ctxT(t)
	if _, err := l.drv.ConfigureIPTV(ctx, drivers.IPTVConfig{VLAN: 43, IGMPSnooping: true}); err != nil {
		t.Fatal(err)
	}
	tr := l.gw.Tree()
	wcd2 := "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2."
	ip := wcd2 + "WANIPConnection.1."
	for k, v := range map[string]string{
		wcd2 + "X_CT-COM_WANGponLinkConfig.VLANIDMark":                "43",
		ip + "ConnectionType":                                         "IP_Bridged",
		ip + "X_CT-COM_ServiceList":                                   "OTHER",
		ip + "X_CT-COM_LanInterface":                                  "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.4",
		"InternetGatewayDevice.Services.X_CT-COM_IPTV.SnoopingEnable": "1",
	} {
		if got := tr.Value(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// A failure half-way leaves the gateway as it was.
	before := config(tr, "InternetGatewayDevice.")
	l.gw.FailSetWhere(func(n string) bool { return strings.Contains(n, "X_CT-COM_IPTV") }, 9002)
	_, err := l.drv.ConfigureIPTV(ctx, drivers.IPTVConfig{VLAN: 44, IGMPSnooping: true})
	var re *drivers.RestoreError
	if !errors.As(err, &re) || !re.Restored() {
		t.Fatalf("err = %v, want a restored RestoreError", err)
	}
	if d := diff(before, config(tr, "InternetGatewayDevice.")); len(d) > 0 {
		t.Errorf("gateway changed:\n%s", strings.Join(d, "\n"))
	}
	// Configuring again (a re-run, or a corrected VLAN) reuses the IPTV WAN.
	if _, err := l.drv.ConfigureIPTV(ctx, drivers.IPTVConfig{VLAN: 45, IGMPSnooping: true}); err != nil {
		t.Fatal(err)
	}
	if got := tr.Value(wcd2 + "X_CT-COM_WANGponLinkConfig.VLANIDMark"); got != "45" {
		t.Errorf("VLAN after the second run = %q, want 45", got)
	}
	for _, p := range tr.Snapshot() {
		if strings.HasPrefix(p.Name, "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.3.") || strings.HasPrefix(p.Name, wcd2+"WANIPConnection.2.") {
			t.Fatalf("the second run added another IPTV WAN: %s", p.Name)
		}
	}
}

func TestRegisterLOID(t *testing.T) {
	for _, tc := range []struct {
		name, loid, pw string
		prep           func(*lab)
		outcome        drivers.LOIDOutcome
		err            error
		says           string
	}{
		{"success", "LOID1", "lpw", nil, drivers.LOIDSuccess, nil, "service delivered"},
		{"unknown loid", "NOPE", "lpw", nil, drivers.LOIDFailure, drivers.ErrLOIDRejected, "does not know this LOID"},
		{"wrong password", "LOID1", "bad", nil, drivers.LOIDFailure, drivers.ErrLOIDRejected, "password"},
		{"attempts exceeded", "LOID1", "lpw", func(l *lab) {
			_ = l.gw.Tree().SetValue("InternetGatewayDevice.X_CT-COM_UserInfo.Times", "10")
		}, drivers.LOIDAttemptsExceeded, drivers.ErrLOIDRejected, "attempts"},
		{"already registered", "LOID1", "lpw", func(l *lab) {
			if _, _, err := l.drv.RegisterLOID(ctxT(l.t), "LOID1", "lpw"); err != nil {
				l.t.Fatal(err)
			}
		}, drivers.LOIDAlreadyRegistered, nil, "already registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t, "gpon")
			l.t = t
			if tc.prep != nil {
				tc.prep(l)
			}
			res, _, err := l.drv.RegisterLOID(ctxT(t), tc.loid, tc.pw)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if res.Outcome != tc.outcome || !strings.Contains(res.Detail, tc.says) {
				t.Errorf("result = %+v, want %s and %q", res, tc.outcome, tc.says)
			}
			if err != nil && strings.Contains(err.Error(), tc.pw) {
				t.Errorf("error reveals the password: %v", err)
			}
			// LOIDStatus reads back what the registration left, without
			// registering again.
			st, err := l.drv.LOIDStatus(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			wantReg := tc.outcome == drivers.LOIDSuccess || tc.outcome == drivers.LOIDAlreadyRegistered
			if st.Registered != wantReg || (tc.outcome == drivers.LOIDAttemptsExceeded && st.Outcome != drivers.LOIDAttemptsExceeded) ||
				(tc.outcome == drivers.LOIDFailure && (st.Outcome != drivers.LOIDFailure || !strings.Contains(st.Detail, tc.says))) {
				t.Errorf("LOIDStatus = %+v after %s", st, tc.outcome)
			}
		})
	}
}

func TestLOIDStatusWithoutLOID(t *testing.T) {
	l := startLab(t, "lan")
	st, err := l.drv.LOIDStatus(ctxT(t))
	if err != nil || st != (drivers.LOIDResult{}) {
		t.Errorf("LOIDStatus of a gateway without a LOID = %+v, %v; want nothing to judge", st, err)
	}
}

func TestUpgradeFirmware(t *testing.T) {
	l := startLab(t, "gpon")
	ctx := ctxT(t)
	fs := acs.NewFileServer("", nil)
	fsrv := httptest.NewServer(fs)
	t.Cleanup(fsrv.Close)
	fs.AddBlob("f650-v2.bin", e8sim.MakeFirmware("F650", "V2", 4096))
	fs.AddBlob("other.bin", e8sim.MakeFirmware("HG8245", "V9", 4096))
	fs.Register("f650-v2.bin", l.id, "fw", secret.New("fwpw"))
	fs.Register("other.bin", l.id, "fw", secret.New("fwpw"))

	v, upgraded, err := l.drv.UpgradeFirmware(ctx, drivers.FirmwareImage{Version: "V1"})
	if err != nil || upgraded || v != "V1" {
		t.Fatalf("same version: %s %v %v", v, upgraded, err)
	}
	_, _, err = l.drv.UpgradeFirmware(ctx, drivers.FirmwareImage{Version: "V9", URL: fsrv.URL + "/other.bin", Username: "fw", Password: secret.New("fwpw")})
	if !errors.Is(err, drivers.ErrFirmware) {
		t.Fatalf("wrong model's image: %v, want ErrFirmware", err)
	}
	v, upgraded, err = l.drv.UpgradeFirmware(ctx, drivers.FirmwareImage{Version: "V2", URL: fsrv.URL + "/f650-v2.bin", Username: "fw", Password: secret.New("fwpw")})
	if err != nil || !upgraded || v != "V2" {
		t.Fatalf("upgrade: %s %v %v", v, upgraded, err)
	}
}

func TestRebootAndFactoryReset(t *testing.T) {
	l := startLab(t, "lan")
	ctx := ctxT(t)
	if err := l.drv.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.drv.ConfigureWiFi(ctx, drivers.WiFiConfig{SSID: "Home", Key: secret.New("12345678")}); err != nil {
		t.Fatal(err)
	}
	if err := l.drv.FactoryReset(ctx); err != nil {
		t.Fatal(err)
	}
	if v := l.gw.Tree().Value("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"); v == "Home" {
		t.Errorf("SSID after factory reset = %q", v)
	}
}

// Identify tells an e8-C (voice) from an e8-B gateway, and Check holds the
// class against the order's.
func TestIdentifyClass(t *testing.T) {
	for _, tc := range []struct {
		access, class, want string
	}{
		{"gpon", "", "e8-C"},
		{"adsl", "", "e8-B"},
		{"lan", "e8-C", "e8-C"},
		{"epon", "e8-B", "e8-B"},
	} {
		l := startLab(t, tc.access, func(c *e8sim.Config) { c.Class = tc.class })
		id, err := l.drv.Identify(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if id.Class != tc.want || id.Access != tc.access || id.Kind != drivers.KindE8 {
			t.Errorf("%s/%q: identity %+v, want class %s", tc.access, tc.class, id, tc.want)
		}
		if err := id.Check(drivers.Expectation{Kind: drivers.KindE8, Class: tc.want}); err != nil {
			t.Errorf("check against its own class: %v", err)
		}
		other := map[string]string{"e8-B": "e8-C", "e8-C": "e8-B"}[tc.want]
		if err := id.Check(drivers.Expectation{Class: other}); !errors.Is(err, drivers.ErrMismatch) || !strings.Contains(err.Error(), "class is "+tc.want) {
			t.Errorf("check against %s: %v", other, err)
		}
	}
	if _, err := e8sim.New(e8sim.Config{Serial: "S", ACSURL: "http://127.0.0.1:1/", OperatorURL: "http://127.0.0.1:1", Class: "e8-X"}); err == nil {
		t.Error("e8sim accepted class e8-X")
	}
}
