package line

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/diagnostics"
	"fieldagent/drivers"
)

// fakeDevice is a drivers.StatusReader of function fields; a nil field
// answers drivers.ErrUnsupported.
type fakeDevice struct {
	wans    func(context.Context) ([]drivers.WANStatus, error)
	optical func(context.Context) (drivers.Optical, error)
	dsl     func(context.Context) (drivers.DSLLine, error)
	ports   func(context.Context) ([]drivers.LANPort, error)
	wifi    func(context.Context) ([]drivers.WiFiStatus, error)
	hosts   func(context.Context) ([]drivers.LANHost, error)
}

var errUnsupported = fmt.Errorf("fake: %w", drivers.ErrUnsupported)

func (f fakeDevice) WANConnections(ctx context.Context) ([]drivers.WANStatus, error) {
	if f.wans == nil {
		return nil, errUnsupported
	}
	return f.wans(ctx)
}

func (f fakeDevice) Optical(ctx context.Context) (drivers.Optical, error) {
	if f.optical == nil {
		return drivers.Optical{}, errUnsupported
	}
	return f.optical(ctx)
}

func (f fakeDevice) DSLLine(ctx context.Context) (drivers.DSLLine, error) {
	if f.dsl == nil {
		return drivers.DSLLine{}, errUnsupported
	}
	return f.dsl(ctx)
}

func (f fakeDevice) LANPorts(ctx context.Context) ([]drivers.LANPort, error) {
	if f.ports == nil {
		return nil, errUnsupported
	}
	return f.ports(ctx)
}

func (f fakeDevice) WiFi(ctx context.Context) ([]drivers.WiFiStatus, error) {
	if f.wifi == nil {
		return nil, errUnsupported
	}
	return f.wifi(ctx)
}

func (f fakeDevice) LANHosts(ctx context.Context) ([]drivers.LANHost, error) {
	if f.hosts == nil {
		return nil, errUnsupported
	}
	return f.hosts(ctx)
}

func readingMap(rs []diagnostics.Reading) map[string]float64 {
	m := map[string]float64{}
	for _, r := range rs {
		if _, dup := m[r.Name]; dup {
			m[r.Name+"#dup"] = r.Value
		}
		m[r.Name] = r.Value
	}
	return m
}

func TestReadMapping(t *testing.T) {
	stamp := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	gpon := fakeDevice{
		optical: func(context.Context) (drivers.Optical, error) {
			return drivers.Optical{Access: "GPON", Status: "Up", RxPowerDBm: -21.5, TxPowerDBm: 2.1, TemperatureC: 41, BiasMA: 11.5, VoltageV: 3.29}, nil
		},
		ports: func(context.Context) ([]drivers.LANPort, error) {
			return []drivers.LANPort{
				{Port: 1, Status: "Up", Up: true, SpeedMbps: 1000, Duplex: "Full"},
				{Port: 2, Status: "Up", Up: true, SpeedMbps: 100, Duplex: "Half"},
				{Port: 3, Status: "Up", Up: true, SpeedMbps: 0, Duplex: "Auto"},
				{Port: 4, Status: "NoLink", SpeedMbps: 1000, Duplex: "Full"},
			}, nil
		},
		wifi: func(context.Context) ([]drivers.WiFiStatus, error) {
			return []drivers.WiFiStatus{{Index: 1, SSID: "ChinaNet-AB12", Enabled: true, Channel: 6, Clients: 3}, {Index: 5, Channel: 0}}, nil
		},
		wans: func(context.Context) ([]drivers.WANStatus, error) {
			return []drivers.WANStatus{
				{Instance: "tr069", ServiceList: "TR069", Status: "Connected", ExternalIP: "10.0.0.2"},
				{Instance: "inet", ConnectionType: "IP_Routed", ServiceList: "INTERNET", Status: "Disconnected", LastError: "ERROR_AUTHENTICATION_FAILURE"},
			}, nil
		},
		hosts: func(context.Context) ([]drivers.LANHost, error) {
			return []drivers.LANHost{{MAC: "a", Active: true}, {MAC: "b", Active: false}, {MAC: "c", Active: true}}, nil
		},
	}
	adsl := fakeDevice{
		dsl: func(context.Context) (drivers.DSLLine, error) {
			return drivers.DSLLine{Status: "Up", UpstreamKbps: 1024, DownstreamKbps: 20480, UpstreamSNRdB: 12, DownstreamSNRdB: 5.9, UpstreamAttenDB: 12, DownstreamAttenDB: 24, CRCErrors: 7}, nil
		},
		wans: func(context.Context) ([]drivers.WANStatus, error) {
			return []drivers.WANStatus{{ConnectionType: "IP_Routed", ServiceList: "TR069_INTERNET", Status: "Connected", ExternalIP: "100.64.1.2", LastError: "ERROR_NONE"}}, nil
		},
	}
	bridged := fakeDevice{
		wans: func(context.Context) ([]drivers.WANStatus, error) {
			return []drivers.WANStatus{{ConnectionType: "PPPoE_Bridged", ServiceList: "INTERNET", Status: "Connected"}}, nil
		},
	}
	noInternet := fakeDevice{
		wans: func(context.Context) ([]drivers.WANStatus, error) {
			return []drivers.WANStatus{{ServiceList: "OTHER", Status: "Connected", ExternalIP: "10.1.1.1"}}, nil
		},
	}
	for _, tc := range []struct {
		name      string
		dev       fakeDevice
		opts      Options
		readings  map[string]float64
		facts     map[string]string
		firstUnit map[string]string
	}{
		{
			name: "gpon with ports wifi wan hosts", dev: gpon,
			readings: map[string]float64{
				"optical_rx_power_dbm": -21.5, "optical_tx_power_dbm": 2.1, "optical_temperature_c": 41, "optical_bias_ma": 11.5, "optical_voltage_v": 3.29,
				"lan1_up": 1, "lan1_speed_mbps": 1000, "lan1_full_duplex": 1,
				"lan2_up": 1, "lan2_speed_mbps": 100, "lan2_full_duplex": 0,
				"lan3_up": 1, "lan4_up": 0,
				"wifi1_enabled": 1, "wifi1_channel": 6, "wifi1_clients": 3,
				"wifi5_enabled": 0, "wifi5_channel": 0, "wifi5_clients": 0,
				"wan_up": 0, "lan_hosts": 2,
			},
			facts: map[string]string{
				"access": "gpon", "optical_status": "Up", "wan_status": "Disconnected",
				"wan_last_error": "ERROR_AUTHENTICATION_FAILURE", "wan_connection_type": "IP_Routed", "wan_service_list": "INTERNET",
			},
			firstUnit: map[string]string{"optical_rx_power_dbm": "dBm", "optical_temperature_c": "°C", "lan1_speed_mbps": "Mbit/s"},
		},
		{
			name: "adsl with the loid", dev: adsl,
			opts: Options{LOID: &drivers.LOIDResult{Outcome: drivers.LOIDFailure, Status: "2", Result: "0", Detail: "ITMS rejected the LOID password"}},
			readings: map[string]float64{
				"dsl_snr_margin_down_db": 5.9, "dsl_snr_margin_up_db": 12, "dsl_attenuation_down_db": 24, "dsl_attenuation_up_db": 12,
				"dsl_sync_down_kbps": 20480, "dsl_sync_up_kbps": 1024, "dsl_crc_errors": 7, "wan_up": 1,
			},
			facts: map[string]string{
				"access": "adsl", "dsl_status": "Up", "wan_status": "Connected", "wan_last_error": "ERROR_NONE",
				"wan_connection_type": "IP_Routed", "wan_service_list": "TR069_INTERNET", "wan_external_ip": "100.64.1.2",
				"loid_outcome": "failure", "loid_status": "2", "loid_result": "0", "loid_detail": "ITMS rejected the LOID password",
			},
			firstUnit: map[string]string{"dsl_sync_down_kbps": "kbit/s", "dsl_snr_margin_down_db": "dB"},
		},
		{
			name: "the order says vdsl", dev: adsl, opts: Options{Access: "VDSL"},
			readings: map[string]float64{
				"dsl_snr_margin_down_db": 5.9, "dsl_snr_margin_up_db": 12, "dsl_attenuation_down_db": 24, "dsl_attenuation_up_db": 12,
				"dsl_sync_down_kbps": 20480, "dsl_sync_up_kbps": 1024, "dsl_crc_errors": 7, "wan_up": 1,
			},
			facts: map[string]string{
				"access": "vdsl", "dsl_status": "Up", "wan_status": "Connected", "wan_last_error": "ERROR_NONE",
				"wan_connection_type": "IP_Routed", "wan_service_list": "TR069_INTERNET", "wan_external_ip": "100.64.1.2",
			},
		},
		{
			name: "bridged internet gives no wan_up and the uplink is lan", dev: bridged,
			readings: map[string]float64{},
			facts:    map[string]string{"access": "lan", "wan_status": "Connected", "wan_connection_type": "PPPoE_Bridged", "wan_service_list": "INTERNET"},
		},
		{
			name: "no internet wan", dev: noInternet, opts: Options{Access: "epon"},
			readings: map[string]float64{},
			facts:    map[string]string{"access": "epon", "wan_status": WANStatusNone},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = func() time.Time { return stamp }
			obs, err := Read(context.Background(), tc.dev, tc.opts)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got := readingMap(obs.Readings); !maps.Equal(got, tc.readings) {
				t.Errorf("readings\n got %v\nwant %v", got, tc.readings)
			}
			if !maps.Equal(obs.Facts, tc.facts) {
				t.Errorf("facts\n got %v\nwant %v", obs.Facts, tc.facts)
			}
			for name, unit := range tc.firstUnit {
				r, ok := obs.Reading(name)
				if !ok || r.Unit != unit {
					t.Errorf("%s: %+v, want unit %q", name, r, unit)
				}
			}
			for _, r := range obs.Readings {
				if !r.Time.Equal(stamp) {
					t.Errorf("%s stamped %v, want %v", r.Name, r.Time, stamp)
				}
			}
		})
	}
}

func TestReadKeepsPartialResults(t *testing.T) {
	boom := errors.New("acs session lost")
	dev := fakeDevice{
		optical: func(context.Context) (drivers.Optical, error) {
			return drivers.Optical{Access: "epon", Status: "Up", RxPowerDBm: -19}, nil
		},
		ports: func(context.Context) ([]drivers.LANPort, error) { return nil, boom },
		wifi: func(context.Context) ([]drivers.WiFiStatus, error) {
			return []drivers.WiFiStatus{{Index: 1, Enabled: true, Channel: 11, Clients: 1}}, nil
		},
		hosts: func(context.Context) ([]drivers.LANHost, error) {
			return nil, fmt.Errorf("read LAN hosts: %w", context.DeadlineExceeded)
		},
	}
	obs, err := Read(context.Background(), dev, Options{})
	if !errors.Is(err, boom) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want both getters' errors", err)
	}
	if errors.Is(err, drivers.ErrUnsupported) {
		t.Errorf("err = %v carries an unsupported getter", err)
	}
	for _, want := range []string{"read lan ports", "read lan hosts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, does not name %q", err, want)
		}
	}
	got := readingMap(obs.Readings)
	if got["optical_rx_power_dbm"] != -19 || got["wifi1_channel"] != 11 {
		t.Errorf("partial readings lost: %v", got)
	}
	if obs.Facts["access"] != "epon" {
		t.Errorf("access = %q", obs.Facts["access"])
	}
}

// TestReadAccessUnknownOnError: a failing optical getter says nothing about
// the uplink, so the access is not guessed as lan.
func TestReadAccessUnknownOnError(t *testing.T) {
	dev := fakeDevice{optical: func(context.Context) (drivers.Optical, error) { return drivers.Optical{}, errors.New("fault 9002") }}
	obs, err := Read(context.Background(), dev, Options{})
	if err == nil {
		t.Fatal("no error")
	}
	if a, ok := obs.Facts["access"]; ok {
		t.Errorf("access = %q, want none", a)
	}
}

// TestReadGetterDeadline: a getter that hangs is cut off by its own
// deadline and the next getters still run.
func TestReadGetterDeadline(t *testing.T) {
	var calls []string
	dev := fakeDevice{
		optical: func(ctx context.Context) (drivers.Optical, error) {
			calls = append(calls, "optical")
			<-ctx.Done()
			return drivers.Optical{}, ctx.Err()
		},
		ports: func(ctx context.Context) ([]drivers.LANPort, error) {
			calls = append(calls, "ports")
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return []drivers.LANPort{{Port: 1, Up: true, SpeedMbps: 1000, Duplex: "Full"}}, nil
		},
	}
	obs, err := Read(context.Background(), dev, Options{Timeout: 20 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the optical getter's deadline", err)
	}
	if !slices.Equal(calls, []string{"optical", "ports"}) {
		t.Errorf("calls = %v", calls)
	}
	if _, ok := obs.Reading("lan1_speed_mbps"); !ok {
		t.Errorf("LAN readings lost after the optical getter timed out: %v", obs.Readings)
	}
}

func TestReadUnsupportedEverywhere(t *testing.T) {
	obs, err := Read(context.Background(), fakeDevice{}, Options{})
	if err != nil {
		t.Fatalf("err = %v, want unsupported getters skipped quietly", err)
	}
	if len(obs.Readings) != 0 || obs.Facts["access"] != "lan" || len(obs.Facts) != 1 {
		t.Errorf("observation = %+v", obs)
	}
}

// TestDialSettles: a WAN found dialling is read again until the attempt
// ends, so the facts say how it ended; a WAN that keeps dialling is
// reported as dialling once DialSettle is over.
func TestDialSettles(t *testing.T) {
	dialling := drivers.WANStatus{ServiceList: "INTERNET", ConnectionType: "IP_Routed", Status: "Connecting"}
	refused := dialling
	refused.Status, refused.LastError = "Disconnected", "ERROR_AUTHENTICATION_FAILURE"
	reads := 0
	dev := fakeDevice{wans: func(context.Context) ([]drivers.WANStatus, error) {
		reads++
		if reads < 3 {
			return []drivers.WANStatus{dialling}, nil
		}
		return []drivers.WANStatus{refused}, nil
	}}
	obs, err := Read(context.Background(), dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if obs.Facts["wan_status"] != "Disconnected" || obs.Facts["wan_last_error"] != "ERROR_AUTHENTICATION_FAILURE" || reads != 3 {
		t.Errorf("facts %v after %d reads, want the refused attempt after 3", obs.Facts, reads)
	}
	always := fakeDevice{wans: func(context.Context) ([]drivers.WANStatus, error) { return []drivers.WANStatus{dialling}, nil }}
	start := time.Now()
	obs, err = Read(context.Background(), always, Options{DialSettle: 600 * time.Millisecond})
	if err != nil || obs.Facts["wan_status"] != "Connecting" {
		t.Errorf("facts %v, %v; want still Connecting", obs.Facts, err)
	}
	if took := time.Since(start); took < 600*time.Millisecond || took > 3*time.Second {
		t.Errorf("a WAN that keeps dialling was watched for %s, want about 600ms", took)
	}
}
