package line

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics"
	"fieldagent/drivers"
)

func TestProbeGaugesAndFacts(t *testing.T) {
	dev := fakeDevice{
		dsl: func(context.Context) (drivers.DSLLine, error) {
			return drivers.DSLLine{Status: "Up", DownstreamSNRdB: 8.5, UpstreamSNRdB: 12, DownstreamKbps: 20480, UpstreamKbps: 1024, DownstreamAttenDB: 24, UpstreamAttenDB: 12}, nil
		},
		ports: func(context.Context) ([]drivers.LANPort, error) {
			return []drivers.LANPort{{Port: 1, Up: true, SpeedMbps: 1000, Duplex: "Full"}, {Port: 2, Up: true, SpeedMbps: 100, Duplex: "Full"}}, nil
		},
		wans: func(context.Context) ([]drivers.WANStatus, error) {
			return []drivers.WANStatus{{ServiceList: "INTERNET", ConnectionType: "IP_Routed", Status: "Connected", ExternalIP: "100.64.0.9"}}, nil
		},
	}
	var facts map[string]string
	p := Probe(dev, Options{OnFacts: func(f map[string]string) { facts = f }})
	res := diagnostics.Run(context.Background(), "line", p, "gw", 0, nil, nil)
	if !res.Success {
		t.Fatalf("probe failed: %s", res.Err)
	}
	if r, ok := res.Reading("dsl_snr_margin_down_db"); !ok || r.Value != 8.5 {
		t.Errorf("dsl_snr_margin_down_db = %+v", r)
	}
	if facts["access"] != "adsl" || facts["wan_status"] != "Connected" {
		t.Errorf("facts = %v", facts)
	}

	reg := prometheus.NewRegistry()
	if _, err := p(context.Background(), "gw", reg, nil); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for metric, want := range map[string]float64{
		`probe_dsl_snr_margin_db{direction="down"}`:  8.5,
		`probe_dsl_snr_margin_db{direction="up"}`:    12,
		`probe_dsl_sync_rate_kbps{direction="down"}`: 20480,
		`probe_lan_link_speed_mbps{port="1"}`:        1000,
		`probe_lan_link_speed_mbps{port="2"}`:        100,
		`probe_lan_link_full_duplex{port="2"}`:       1,
		`probe_wan_up`:                               1,
	} {
		if v, ok := got[metric]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", metric, v, ok, want)
		}
	}
	for metric := range got {
		if strings.HasPrefix(metric, "probe_optical_") || strings.HasPrefix(metric, "probe_lan_hosts") {
			t.Errorf("an ADSL gateway without a hosts table exports %s", metric)
		}
	}
	// A second run on the same registry logs the conflict instead of panicking.
	if _, err := p(context.Background(), "gw", reg, nil); err != nil {
		t.Fatal(err)
	}
}

func TestProbeReturnsPartialReadingsWithError(t *testing.T) {
	boom := errors.New("connection request refused")
	dev := fakeDevice{
		optical: func(context.Context) (drivers.Optical, error) {
			return drivers.Optical{Access: "gpon", RxPowerDBm: -30}, nil
		},
		wans: func(context.Context) ([]drivers.WANStatus, error) { return nil, boom },
	}
	res := diagnostics.Run(context.Background(), "line", Probe(dev, Options{}), "gw", 0, nil, nil)
	if res.Success || !strings.Contains(res.Err, boom.Error()) {
		t.Fatalf("result = %+v, want the WAN getter's error", res)
	}
	if r, ok := res.Reading("optical_rx_power_dbm"); !ok || r.Value != -30 {
		t.Errorf("partial reading lost: %+v", res.Readings)
	}
}

func TestIndexed(t *testing.T) {
	m := indexed("lan", "_up")
	for name, want := range map[string]string{"lan1_up": "1", "lan12_up": "12", "lan_hosts": "", "lanx_up": "", "lan1_speed_mbps": "", "wifi1_up": ""} {
		got, ok := m(name)
		if got != want || ok != (want != "") {
			t.Errorf("indexed(%q) = %q %v, want %q", name, got, ok, want)
		}
	}
}

// gather returns every sample on reg as `name{label="value"}` → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if lp := m.GetLabel(); len(lp) > 0 {
				var parts []string
				for _, l := range lp {
					parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
				}
				key += "{" + strings.Join(parts, ",") + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}
