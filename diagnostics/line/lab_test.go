package line_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/line"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/operator"
	"fieldagent/tr069/acs"
)

// startGateway starts a simulated e8 gateway that informs a real ACS on
// loopback (as drivers/e8's lab tests do) and returns the e8 driver for it.
func startGateway(tb testing.TB, access string, rxDBm float64) *e8.Driver {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	cr := secret.New("cr")
	a := acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return "u", cr }})
	as := httptest.NewServer(a)
	tb.Cleanup(as.Close)
	op := operator.New(secret.New("optok"), nil)
	op.AddPPPoEAccount("ad1", secret.New("right"))
	op.AddLOID(secret.New("LOID1"), secret.New("lpw"))
	ops := httptest.NewServer(op)
	tb.Cleanup(ops.Close)
	gw, err := e8sim.New(e8sim.Config{
		ACSURL: as.URL + "/", Vendor: "ZTE", Model: "F650", OUI: "00D0D0", ProductClass: "F650",
		Serial: "SN1", Firmware: "V1", Access: access, ConnReqUsername: "u", ConnReqPassword: cr,
		OperatorURL: ops.URL, OperatorToken: secret.New("optok"), RxPowerDBm: rxDBm,
	})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(acs.Device) bool { return true })
	if err != nil {
		tb.Fatal(err)
	}
	drv := e8.New(a, d.ID)
	drv.PollInterval = 10 * time.Millisecond
	return drv
}

// TestReadLabGateway reads real gateways over CWMP: a GPON one whose LOID
// is registered but whose PPPoE account is refused (691), an ADSL one with
// its line readings, and a LAN-uplink one. Whatever the getters a model
// lacks (optical on DSL, DSL on PON, maybe the hosts table), Read must not
// report an error.
func TestReadLabGateway(t *testing.T) {
	for _, tc := range []struct {
		name, access string
		prep         func(context.Context, *testing.T, *e8.Driver) line.Options
		readings     map[string]float64
		facts        map[string]string
		absent       []string
		// findings are what verdict makes of the observation (package
		// 100/30 Mbit/s), in order.
		findings []verdict.Code
	}{
		{
			name: "gpon with a refused account", access: "gpon",
			prep: func(ctx context.Context, t *testing.T, d *e8.Driver) line.Options {
				res, _, err := d.RegisterLOID(ctx, "LOID1", "lpw")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := d.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("wrong"), VLAN: 41}); err != nil {
					t.Fatal(err)
				}
				if _, err := d.WaitWANUp(ctx); !errors.Is(err, drivers.ErrPPPoEAuth) {
					t.Fatalf("WaitWANUp = %v, want the 691 refusal", err)
				}
				return line.Options{LOID: &res}
			},
			readings: map[string]float64{
				"optical_rx_power_dbm": -27.4, "optical_tx_power_dbm": 2.5, "optical_temperature_c": 45.5,
				"optical_voltage_v": 3.3, "optical_bias_ma": 12,
				"lan1_up": 1, "lan1_speed_mbps": 1000, "lan1_full_duplex": 1, "lan2_up": 0,
				"wifi1_enabled": 1, "wifi1_clients": 2, "wan_up": 0,
			},
			facts: map[string]string{
				"access": "gpon", "optical_status": "Up", "wan_status": "Disconnected",
				"wan_last_error": "ERROR_AUTHENTICATION_FAILURE", "wan_connection_type": "IP_Routed", "wan_service_list": "INTERNET",
				"loid_outcome": "success", "loid_status": "0", "loid_result": "1",
			},
			absent:   []string{"dsl_snr_margin_down_db"},
			findings: []verdict.Code{verdict.CodePPPoEAuthFailed, verdict.CodeOpticalRxLow},
		},
		{
			name: "adsl line", access: "adsl",
			readings: map[string]float64{
				"dsl_snr_margin_down_db": 8.5, "dsl_snr_margin_up_db": 12, "dsl_attenuation_down_db": 24, "dsl_attenuation_up_db": 12,
				"dsl_sync_down_kbps": 20480, "dsl_sync_up_kbps": 1024, "dsl_crc_errors": 3, "lan1_up": 1,
			},
			facts:    map[string]string{"access": "adsl", "dsl_status": "Up", "wan_status": line.WANStatusNone},
			absent:   []string{"optical_rx_power_dbm", "wan_up"},
			findings: []verdict.Code{verdict.CodeWANDown},
		},
		{
			name: "lan uplink", access: "lan",
			readings: map[string]float64{"lan1_up": 1, "lan1_speed_mbps": 1000},
			facts:    map[string]string{"access": "lan", "wan_status": line.WANStatusNone},
			absent:   []string{"optical_rx_power_dbm", "dsl_snr_margin_down_db", "wan_up"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			drv := startGateway(t, tc.access, -27.4)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var opts line.Options
			if tc.prep != nil {
				opts = tc.prep(ctx, t, drv)
			}
			opts.Timeout = 10 * time.Second
			obs, err := line.Read(ctx, drv, opts)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			for name, want := range tc.readings {
				if r, ok := obs.Reading(name); !ok || !near(r, want) {
					t.Errorf("%s = %+v (present %v), want %v", name, r, ok, want)
				}
			}
			for _, name := range tc.absent {
				if r, ok := obs.Reading(name); ok {
					t.Errorf("%s present: %+v", name, r)
				}
			}
			for k, want := range tc.facts {
				if got := obs.Facts[k]; got != want {
					t.Errorf("fact %s = %q, want %q", k, got, want)
				}
			}
			if tc.findings == nil {
				return
			}
			rep := verdict.Evaluate(verdict.ProfileFor(obs.Facts["access"], 100, 30),
				[]diagnostics.Result{{Probe: "line", Success: true, Readings: obs.Readings}}, obs.Facts)
			var codes []verdict.Code
			for _, f := range rep.Findings {
				codes = append(codes, f.Code)
			}
			if !slices.Equal(codes, tc.findings) || !rep.Failed() {
				t.Errorf("verdict: %v (failed %v), want %v", codes, rep.Failed(), tc.findings)
			}
		})
	}
}

func near(r diagnostics.Reading, want float64) bool {
	d := r.Value - want
	return d < 0.01 && d > -0.01
}
