package verdict

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"fieldagent/diagnostics"
)

func rd(name string, v float64, unit string) diagnostics.Reading {
	return diagnostics.Reading{Name: name, Value: v, Unit: unit}
}

func ok(probe string, rs ...diagnostics.Reading) diagnostics.Result {
	return diagnostics.Result{Probe: probe, Success: true, Readings: rs}
}

// TestThresholdBoundaries walks each threshold across its boundary.
func TestThresholdBoundaries(t *testing.T) {
	gpon := ProfileFor("gpon", 100, 30)
	epon := ProfileFor("epon", 100, 30)
	lan := ProfileFor("lan", 100, 30)
	big := ProfileFor("gpon", 300, 30)
	noPkg := ProfileFor("gpon", 0, 0)
	bridged := map[string]string{FactWANConnectionType: "PPPoE_Bridged"}
	for _, tc := range []struct {
		name    string
		p       Profile
		reading diagnostics.Reading
		facts   map[string]string
		want    Status // "" means no check at all
		limit   string
	}{
		{"gpon rx at sensitivity", gpon, rd("optical_rx_power_dbm", -27.0, "dBm"), nil, StatusWarn, "−27 … −8 dBm (warn below −25)"},
		{"gpon rx below sensitivity", gpon, rd("optical_rx_power_dbm", -27.1, "dBm"), nil, StatusFail, "−27 … −8 dBm (warn below −25)"},
		{"gpon rx at warn", gpon, rd("optical_rx_power_dbm", -25.0, "dBm"), nil, StatusOK, ""},
		{"gpon rx below warn", gpon, rd("optical_rx_power_dbm", -25.1, "dBm"), nil, StatusWarn, ""},
		{"gpon rx at overload", gpon, rd("optical_rx_power_dbm", -8.0, "dBm"), nil, StatusOK, ""},
		{"gpon rx above overload", gpon, rd("optical_rx_power_dbm", -7.9, "dBm"), nil, StatusFail, ""},
		{"gpon no light", gpon, rd("optical_rx_power_dbm", -40, "dBm"), nil, StatusFail, ""},
		{"epon rx at sensitivity", epon, rd("optical_rx_power_dbm", -24.0, "dBm"), nil, StatusWarn, "−24 … −3 dBm (warn below −22)"},
		{"epon rx below sensitivity", epon, rd("optical_rx_power_dbm", -24.1, "dBm"), nil, StatusFail, ""},
		{"epon rx at warn", epon, rd("optical_rx_power_dbm", -22.0, "dBm"), nil, StatusOK, ""},
		{"epon rx at overload", epon, rd("optical_rx_power_dbm", -3.0, "dBm"), nil, StatusOK, ""},
		{"epon rx above overload", epon, rd("optical_rx_power_dbm", -2.9, "dBm"), nil, StatusFail, ""},
		{"−26 dBm is below epon sensitivity", epon, rd("optical_rx_power_dbm", -26, "dBm"), nil, StatusFail, ""},
		{"optical on a lan profile", lan, rd("optical_rx_power_dbm", -30, "dBm"), nil, StatusSkip, ""},
		{"snr down at 6", gpon, rd("dsl_snr_margin_down_db", 6.0, "dB"), nil, StatusOK, "≥ 6 dB"},
		{"snr down below 6", gpon, rd("dsl_snr_margin_down_db", 5.9, "dB"), nil, StatusFail, ""},
		{"snr up below 6", gpon, rd("dsl_snr_margin_up_db", 5.9, "dB"), nil, StatusFail, ""},
		{"gigabit port at 1000", gpon, rd("lan1_speed_mbps", 1000, "Mbit/s"), nil, StatusOK, "≥ 1000 Mbit/s"},
		{"gigabit port at 100, 100M package", gpon, rd("lan1_speed_mbps", 100, "Mbit/s"), nil, StatusWarn, ""},
		{"gigabit port at 100, 300M package", big, rd("lan1_speed_mbps", 100, "Mbit/s"), nil, StatusFail, ""},
		{"fast ethernet port at 100", gpon, rd("lan2_speed_mbps", 100, "Mbit/s"), nil, "", ""},
		{"full duplex", gpon, rd("lan3_full_duplex", 1, ""), nil, StatusOK, "full duplex"},
		{"half duplex on any port", gpon, rd("lan3_full_duplex", 0, ""), nil, StatusFail, ""},
		{"download at 90%", gpon, rd("download_mbps", 90, "Mbit/s"), nil, StatusOK, "≥ 90 Mbit/s (90% of 100)"},
		{"download below 90%", gpon, rd("download_mbps", 89.9, "Mbit/s"), nil, StatusFail, ""},
		{"upload at 90%", gpon, rd("upload_mbps", 27, "Mbit/s"), nil, StatusOK, "≥ 27 Mbit/s (90% of 30)"},
		{"upload below 90%", gpon, rd("upload_mbps", 26.9, "Mbit/s"), nil, StatusFail, ""},
		{"gateway download at 90%", gpon, rd("gateway_download_mbps", 90, "Mbit/s"), nil, StatusOK, ""},
		{"gateway download below 90%", gpon, rd("gateway_download_mbps", 89.99, "Mbit/s"), nil, StatusFail, ""},
		{"gateway upload below 90%", gpon, rd("gateway_upload_mbps", 20, "Mbit/s"), nil, StatusFail, ""},
		{"download, package unknown", noPkg, rd("download_mbps", 1, "Mbit/s"), nil, StatusSkip, ""},
		{"ping loss 0", gpon, rd("ping_loss", 0, "%"), nil, StatusOK, "≤ 0 %"},
		{"ping loss 20", gpon, rd("ping_loss", 20, "%"), nil, StatusFail, ""},
		{"mlr 0", gpon, rd("iptv_mlr", 0, ""), nil, StatusOK, "≤ 0"},
		{"mlr 0.1", gpon, rd("iptv_mlr", 0.1, ""), nil, StatusFail, ""},
		{"df 50", gpon, rd("iptv_df_ms", 50, "ms"), nil, StatusOK, "≤ 50 ms"},
		{"df 50.1", gpon, rd("iptv_df_ms", 50.1, "ms"), nil, StatusFail, ""},
		{"join 1000", gpon, rd("iptv_join_ms", 1000, "ms"), nil, StatusOK, "≤ 1000 ms"},
		{"join 1000.5", gpon, rd("iptv_join_ms", 1000.5, "ms"), nil, StatusFail, ""},
		{"iptv packets 1", gpon, rd("iptv_packets", 1, ""), nil, StatusOK, "≥ 1"},
		{"iptv packets 0", gpon, rd("iptv_packets", 0, ""), nil, StatusFail, ""},
		{"wan up", gpon, rd("wan_up", 1, ""), nil, StatusOK, "connected with an address"},
		{"wan down", gpon, rd("wan_up", 0, ""), nil, StatusFail, ""},
		{"wan down but bridged", gpon, rd("wan_up", 0, ""), bridged, StatusSkip, ""},
		{"dhcp lease", gpon, rd("dhcp_lease", 1, ""), nil, StatusOK, ""},
		{"no dhcp lease", gpon, rd("dhcp_lease", 0, ""), nil, StatusFail, ""},
		{"http 200", gpon, rd("http_status", 200, ""), nil, StatusOK, "2xx or 3xx"},
		{"http 399", gpon, rd("http_status", 399, ""), nil, StatusOK, ""},
		{"http 404", gpon, rd("http_status", 404, ""), nil, StatusFail, ""},
		{"http 199", gpon, rd("http_status", 199, ""), nil, StatusFail, ""},
		{"not a number", gpon, rd("download_mbps", math.NaN(), "Mbit/s"), nil, StatusSkip, ""},
		{"no threshold for rtt", gpon, rd("ping_rtt_avg", 900, "ms"), nil, "", ""},
		{"no threshold for link state", gpon, rd("lan1_up", 0, ""), nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Evaluate(tc.p, []diagnostics.Result{ok("x", tc.reading)}, tc.facts)
			if tc.want == "" {
				if len(rep.Checks) != 0 {
					t.Errorf("checks = %+v, want none", rep.Checks)
				}
				return
			}
			if len(rep.Checks) != 1 {
				t.Fatalf("checks = %+v, want one", rep.Checks)
			}
			c := rep.Checks[0]
			if c.Status != tc.want || c.Reading != tc.reading.Name || c.Probe != "x" {
				t.Errorf("check = %+v, want status %s", c, tc.want)
			}
			if tc.limit != "" && c.Limit != tc.limit {
				t.Errorf("limit = %q, want %q", c.Limit, tc.limit)
			}
		})
	}
}

// TestOverrideMovesBoundary: an override changes where a reading fails.
func TestOverrideMovesBoundary(t *testing.T) {
	p := ProfileFor("gpon", 100, 30)
	r := []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -27.5, "dBm"))}
	if s := Evaluate(p, r, nil).Checks[0].Status; s != StatusFail {
		t.Fatalf("default: %s", s)
	}
	if err := p.Override([]byte("optical: {rx_min_dbm: -28, rx_warn_dbm: -28}")); err != nil {
		t.Fatal(err)
	}
	c := Evaluate(p, r, nil).Checks[0]
	if c.Status != StatusOK || c.Limit != "−28 … −8 dBm" {
		t.Errorf("after override: %+v", c)
	}
}

func TestEvaluateReport(t *testing.T) {
	p := ProfileFor("gpon", 100, 30)
	for _, tc := range []struct {
		name     string
		results  []diagnostics.Result
		status   Status
		failed   bool
		nChecks  int
		findings []Code
	}{
		{"nothing", nil, StatusOK, false, 0, nil},
		{"all good", []diagnostics.Result{
			ok("line", rd("optical_rx_power_dbm", -20, "dBm"), rd("wan_up", 1, ""), rd("lan_hosts", 3, "")),
			ok("ping", rd("ping_loss", 0, "%"), rd("ping_rtt_avg", 3, "ms")),
		}, StatusOK, false, 3, nil},
		{"only skipped", []diagnostics.Result{ok("speed_download", rd("download_mbps", 5, "Mbit/s"))}, StatusFail, true, 1, []Code{CodeSpeedBelowPackage}},
		{"a warning", []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -26, "dBm"))}, StatusWarn, false, 1, []Code{CodeOpticalRxLow}},
		{"a failed probe without readings", []diagnostics.Result{{Probe: "http", Target: "http://x", Err: "connection refused"}}, StatusFail, true, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Evaluate(p, tc.results, nil)
			if rep.Status != tc.status || rep.Failed() != tc.failed || len(rep.Checks) != tc.nChecks {
				t.Errorf("report = %+v", rep)
			}
			var codes []Code
			for _, f := range rep.Findings {
				codes = append(codes, f.Code)
			}
			if strings.Join(asStrings(codes), ",") != strings.Join(asStrings(tc.findings), ",") {
				t.Errorf("findings = %v, want %v", codes, tc.findings)
			}
		})
	}
	// "only skipped" above uses a package; without one it is all skip → ok.
	rep := Evaluate(ProfileFor("gpon", 0, 0), []diagnostics.Result{ok("speed_download", rd("download_mbps", 5, "Mbit/s"))}, nil)
	if rep.Status != StatusOK || rep.Checks[0].Status != StatusSkip || rep.Checks[0].Detail != "the package rate is unknown" {
		t.Errorf("skipped only: %+v", rep)
	}
}

func asStrings(cs []Code) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func TestFailedProbeCheck(t *testing.T) {
	rep := Evaluate(ProfileFor("gpon", 100, 30), []diagnostics.Result{
		{Probe: "ping", Target: "192.0.2.1", Err: "no ping replies received", Readings: []diagnostics.Reading{rd("ping_loss", 100, "%")}},
	}, nil)
	if len(rep.Checks) != 2 {
		t.Fatalf("checks = %+v", rep.Checks)
	}
	pc := rep.Checks[0]
	if pc.Name != "ping probe" || pc.Status != StatusFail || pc.Detail != "no ping replies received" || pc.Reading != "" {
		t.Errorf("probe check = %+v", pc)
	}
	if rep.Checks[1].Reading != "ping_loss" || rep.Checks[1].Status != StatusFail {
		t.Errorf("loss check = %+v", rep.Checks[1])
	}
}

func TestReportJSON(t *testing.T) {
	rep := Evaluate(ProfileFor("gpon", 100, 30), []diagnostics.Result{
		ok("line", rd("optical_rx_power_dbm", -28, "dBm"), rd("download_mbps", math.Inf(1), "Mbit/s")),
	}, map[string]string{FactWANLastError: "ERROR_AUTHENTICATION_FAILURE", FactWANStatus: "Disconnected"})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("report does not marshal: %v", err)
	}
	var back struct {
		Profile  string `json:"profile"`
		Status   string `json:"status"`
		Checks   []map[string]any
		Findings []struct {
			Code     string   `json:"code"`
			Severity string   `json:"severity"`
			CauseZH  string   `json:"cause_zh"`
			Evidence []string `json:"evidence"`
		}
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Profile != "gpon-class-b+" || back.Status != "fail" || len(back.Checks) != 2 || len(back.Findings) != 2 {
		t.Fatalf("json = %s", b)
	}
	if back.Checks[0]["limit"] != "−27 … −8 dBm (warn below −25)" || back.Checks[1]["status"] != "skip" {
		t.Errorf("checks = %v", back.Checks)
	}
	for _, f := range back.Findings {
		if f.CauseZH == "" || len(f.Evidence) == 0 || f.Severity != "fail" {
			t.Errorf("finding = %+v", f)
		}
	}
	empty, err := json.Marshal(Evaluate(ProfileFor("lan", 0, 0), nil, nil))
	if err != nil || !strings.Contains(string(empty), `"checks":[]`) || !strings.Contains(string(empty), `"findings":[]`) {
		t.Errorf("empty report = %s (%v), want empty lists rather than null", empty, err)
	}
}

func TestStatusSymbol(t *testing.T) {
	for s, want := range map[Status]string{StatusOK: "✔", StatusWarn: "⚠", StatusFail: "✘", StatusSkip: "–", "": "–"} {
		if got := s.Symbol(); got != want {
			t.Errorf("%q.Symbol() = %s, want %s", s, got, want)
		}
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{-27, "dBm", "−27 dBm"}, {-27.05, "", "−27.05"}, {0, "", "0"}, {math.Copysign(0, -1), "", "0"},
		{90.00000000000001, "Mbit/s", "90 Mbit/s"}, {1e15, "", "1e+15"}, {0.1234, "%", "0.123 %"},
	} {
		if got := human(tc.v, tc.unit); got != tc.want {
			t.Errorf("human(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}
