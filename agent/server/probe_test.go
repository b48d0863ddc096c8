package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/server/auth"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/diagnostics/verdict"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
)

// probePath is GET /probe's URL for target and module.
func probePath(target, module string) string {
	return "/probe?" + url.Values{"target": {target}, "module": {module}}.Encode()
}

// /probe?module=line on a simulated GPON gateway answers what the
// simulator was configured with, in blackbox_exporter's shape, by device
// ID and by serial number.
func TestProbeLine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a testlab site")
	}
	const rx = -23.4
	l := startMetricsLab(t, testlab.Config{RxPowerDBm: rx}, nil)
	for _, target := range []string{l.gatewayID, testlab.SampleGatewaySN} {
		t.Run(target, func(t *testing.T) {
			code, body := l.get(t, auth.RoleDiagnose, probePath(target, ProbeModuleLine),
				http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"20"}})
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			m := parseExposition(t, body)
			if got := m.must(t, "probe_success"); got != 1 {
				t.Fatalf("probe_success %v; log: %s", got, l.logs)
			}
			if got := m.must(t, "probe_optical_rx_power_dbm"); got != rx {
				t.Errorf("probe_optical_rx_power_dbm = %v, want %v", got, rx)
			}
			if m.must(t, `probe_step_success{step="line"}`) != 1 || m.must(t, "probe_duration_seconds") <= 0 {
				t.Errorf("step or duration missing: %v", m)
			}
			m.must(t, "probe_optical_tx_power_dbm")
			for k := range m {
				if strings.Contains(k, "device=") || strings.HasPrefix(k, "fieldagent_") {
					t.Errorf("the probe's answer carries a process metric or a device label: %s", k)
				}
			}
		})
	}
}

// The gateway's ping and speed modules run its own tests (TR-098 ping,
// TR-143 download and upload) against the configured targets.
func TestProbePingAndSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a testlab site")
	}
	speed := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	defer speed.Close()
	l := startMetricsLab(t, testlab.Config{}, func(c *APIConfig) { c.SpeedURL = speed.URL })
	tests := []struct {
		module string
		steps  []string
		gauges []string
	}{
		{ProbeModulePing, []string{"gateway_ping"}, []string{`probe_gateway_ping_rtt_seconds{stat="avg"}`, "probe_gateway_ping_loss_ratio"}},
		{ProbeModuleSpeed, []string{"gateway_download", "gateway_upload"}, []string{"probe_gateway_download_mbps", "probe_gateway_upload_mbps"}},
	}
	for _, tc := range tests {
		t.Run(tc.module, func(t *testing.T) {
			code, body := l.get(t, auth.RoleDiagnose, probePath(l.gatewayID, tc.module), nil)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			m := parseExposition(t, body)
			if m.must(t, "probe_success") != 1 {
				t.Fatalf("probe failed: %s; log: %s", body, l.logs)
			}
			for _, s := range tc.steps {
				if m.must(t, `probe_step_success{step="`+s+`"}`) != 1 {
					t.Errorf("step %s failed", s)
				}
			}
			for _, g := range tc.gauges {
				if v := m.must(t, g); v < 0 {
					t.Errorf("%s = %v", g, v)
				}
			}
			if m["probe_gateway_ping_loss_ratio"] != 0 {
				t.Errorf("loss on loopback: %v", m["probe_gateway_ping_loss_ratio"])
			}
		})
	}
}

// The diag module runs the API's diagnosis and adds its verdict.
func TestProbeDiag(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a testlab site")
	}
	var seen string
	l := startMetricsLab(t, testlab.Config{}, func(c *APIConfig) {
		c.Diagnose = func(_ context.Context, d acs.Device) (diagrun.Outcome, error) {
			seen = d.ID
			return diagrun.Outcome{
				Results: []diagnostics.Result{{Probe: "line", Success: true, Readings: []diagnostics.Reading{{Name: "optical_rx_power_dbm", Value: -28.2}}}},
				Report:  verdict.Report{Status: verdict.StatusWarn, Findings: []verdict.Finding{{Code: "optical_rx_low"}}},
			}, nil
		}
	})
	code, body := l.get(t, auth.RoleDiagnose, probePath(testlab.SampleGatewaySN, ProbeModuleDiag), nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	m := parseExposition(t, body)
	if seen != l.gatewayID || m.must(t, "probe_success") != 1 || m.must(t, "probe_optical_rx_power_dbm") != -28.2 {
		t.Fatalf("diagnosed %q: %s", seen, body)
	}
	for status, want := range map[string]float64{"ok": 0, "skip": 0, "warn": 1, "fail": 0} {
		if got := m.must(t, `probe_diagnosis_status{status="`+status+`"}`); got != want {
			t.Errorf("status %s = %v, want %v", status, got, want)
		}
	}
	if m.must(t, "probe_diagnosis_findings") != 1 {
		t.Errorf("findings: %s", body)
	}
}

// Refusals: no token 401, a read token 403 (a probe is a diagnose
// action), a bad or missing module or target 400 with the reason, and a
// target no device matches 200 with probe_success 0, as blackbox answers a
// host it cannot reach.
func TestProbeRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a testlab site")
	}
	l := startMetricsLab(t, testlab.Config{}, nil)
	tests := []struct {
		name string
		role auth.Role
		path string
		hdr  http.Header
		code int
		body string
	}{
		{"no token", "", probePath(l.gatewayID, "line"), nil, http.StatusUnauthorized, ""},
		{"read token", auth.RoleRead, probePath(l.gatewayID, "line"), nil, http.StatusForbidden, "diagnose"},
		{"unknown module", auth.RoleDiagnose, probePath(l.gatewayID, "icmp"), nil, http.StatusBadRequest, `unknown module \"icmp\"`},
		{"no module", auth.RoleDiagnose, "/probe?target=" + l.gatewayID, nil, http.StatusBadRequest, "unknown module"},
		{"no target", auth.RoleDiagnose, "/probe?module=line", nil, http.StatusBadRequest, "target parameter is missing"},
		{"speed without a speed server", auth.RoleDiagnose, probePath(l.gatewayID, "speed"), nil, http.StatusBadRequest, "diag.speed_url"},
		{"bad timeout", auth.RoleDiagnose, probePath(l.gatewayID, "line") + "&timeout=soon", nil, http.StatusBadRequest, "timeout"},
		{"bad scrape header", auth.RoleDiagnose, probePath(l.gatewayID, "line"),
			http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"-3"}}, http.StatusBadRequest, "X-Prometheus-Scrape-Timeout-Seconds"},
		{"unknown device", auth.RoleDiagnose, probePath("NOSUCHSERIAL", "line"), nil, http.StatusOK, "probe_success 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := l.get(t, tc.role, tc.path, tc.hdr)
			if code != tc.code || !strings.Contains(string(body), tc.body) {
				t.Fatalf("status %d, body %s; want %d with %q", code, body, tc.code, tc.body)
			}
			if code >= 400 {
				var e auth.ErrorBody
				if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
					t.Errorf("refusal is not a JSON error: %s", body)
				}
			}
		})
	}
	if !strings.Contains(l.logs.String(), "NOSUCHSERIAL") {
		t.Errorf("the unknown target was not logged")
	}
}

func TestProbeTimeout(t *testing.T) {
	const module = 30 * time.Second
	tests := []struct {
		name, query, header string
		want                time.Duration
		bad                 bool
	}{
		{"no scrape timeout: the module's", "", "", module, false},
		{"Prometheus's header less the margin", "", "10", 9500 * time.Millisecond, false},
		{"fractional seconds", "", "2.5", 2 * time.Second, false},
		{"longer than the module", "", "120", module, false},
		{"query as a duration", "5s", "", 4500 * time.Millisecond, false},
		{"query wins over the header", "5", "10", 4500 * time.Millisecond, false},
		{"shorter than the margin: whole", "", "0.3", 300 * time.Millisecond, false},
		{"garbage", "soon", "", 0, true},
		{"zero", "", "0", 0, true},
		{"negative duration", "-5s", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/probe?"+url.Values{"timeout": {tc.query}}.Encode(), nil)
			if tc.header != "" {
				r.Header.Set(scrapeTimeoutHeader, tc.header)
			}
			got, err := probeTimeout(r, module)
			if (err != nil) != tc.bad || got != tc.want {
				t.Fatalf("probeTimeout = %v, %v; want %v (error %v)", got, err, tc.want, tc.bad)
			}
		})
	}
}
