package diagrun_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/diagrun"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/speedtest"
)

func TestSelects(t *testing.T) {
	tests := []struct {
		selection []string
		probe     string
		want      bool
	}{
		{nil, "line", true},
		{[]string{"line"}, "line", true},
		{[]string{"line"}, "iptv_config", false},
		{[]string{"wan"}, "line", true},
		{[]string{"optical"}, "line", true},
		{[]string{"speed"}, "speed_download", true},
		{[]string{"speed"}, "speed_upload", true},
		{[]string{"speed"}, "gateway_download", true},
		{[]string{"speed"}, "gateway_ping", false},
		{[]string{"ping"}, "gateway_ping", true},
		{[]string{"ping"}, "ping", true},
		{[]string{"gateway"}, "gateway_download", true},
		{[]string{"iptv"}, "iptv_config", true},
		{[]string{"iptv_config"}, "iptv", false},
		{[]string{"dns", "http"}, "http", true},
		{[]string{"dns", "http"}, "line", false},
	}
	for _, tc := range tests {
		if got := diagrun.Selects(tc.selection, tc.probe); got != tc.want {
			t.Errorf("Selects(%v, %q) = %v, want %v", tc.selection, tc.probe, got, tc.want)
		}
	}
	for _, name := range append(diagrun.ProbeNames(), "gateway_ping") {
		if !diagrun.ValidProbe(name) {
			t.Errorf("ValidProbe(%q) = false", name)
		}
	}
	for _, name := range []string{"", "nope", "gateway_", "LINE"} {
		if diagrun.ValidProbe(name) {
			t.Errorf("ValidProbe(%q) = true", name)
		}
	}
}

// A selection runs only the probes it names, in Run's order; one that
// matches none of the site's is ErrNoProbe, naming what the site has.
func TestRunSelectedProbes(t *testing.T) {
	speed := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	defer speed.Close()
	var gatewayRuns int
	site := diagrun.Site{
		HTTPURL: speed.URL + "/healthz", SpeedURL: speed.URL + "/", Resolvers: []string{failingDNS(t)},
		GatewayTests: map[string]diagnostics.Probe{"gateway_ping": func(context.Context, string, prometheus.Registerer, *slog.Logger) ([]diagnostics.Reading, error) {
			gatewayRuns++
			return []diagnostics.Reading{{Name: "gateway_ping_rtt_ms", Value: 3}}, nil
		}},
		GatewayTargets: map[string]string{"gateway_ping": "192.0.2.1"},
	}
	o := diagrun.Options{Speed: speedtest.ClientOptions{Duration: 200 * time.Millisecond}}
	ran := func(out diagrun.Outcome) []string {
		var names []string
		for _, r := range out.Results {
			names = append(names, r.Probe)
		}
		return names
	}
	tests := []struct {
		probes []string
		want   []string
	}{
		{[]string{"http"}, []string{"http"}},
		{[]string{"http", "dns"}, []string{"dns", "http"}},
		{[]string{"ping"}, []string{"gateway_ping"}},
	}
	for _, tc := range tests {
		o.Probes = tc.probes
		out, err := diagrun.Run(context.Background(), site, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := ran(out); !slices.Equal(got, tc.want) {
			t.Errorf("probes %v ran %v, want %v", tc.probes, got, tc.want)
		}
	}
	if gatewayRuns != 1 {
		t.Errorf("the gateway test ran %d times, want once", gatewayRuns)
	}
	o.Probes = []string{"xt2"}
	_, err := diagrun.Run(context.Background(), site, o)
	if !errors.Is(err, diagrun.ErrNoProbe) || !strings.Contains(err.Error(), "gateway_ping, dns, http, speed_download") {
		t.Errorf("a selection the site lacks: %v", err)
	}
}
