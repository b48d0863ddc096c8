package diagrun_test

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/diagrun"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/diagnostics/verdict"
)

// failingDNS answers every query with SERVFAIL.
func failingDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// Laptop-side checks only: the probes run in order, each result is kept,
// and the verdict blames DNS when ping works and DNS does not.
func TestRunLaptopSide(t *testing.T) {
	speed := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	defer speed.Close()
	site := diagrun.Site{
		Access: "gpon", PackageDownMbps: 100,
		HTTPURL: speed.URL + "/healthz", SpeedURL: speed.URL + "/",
		Resolvers: []string{failingDNS(t)},
	}
	reg := prometheus.NewRegistry()
	var started []string
	out, err := diagrun.Run(context.Background(), site, diagrun.Options{
		Speed:      speedtest.ClientOptions{Duration: 300 * time.Millisecond},
		Registerer: reg,
		Progress: func(probe, _ string, res *diagnostics.Result) {
			if res == nil {
				started = append(started, probe)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, r := range out.Results {
		ran = append(ran, r.Probe)
	}
	want := []string{"dns", "http", "speed_download"}
	if len(ran) != len(want) || len(started) != len(want) {
		t.Fatalf("ran %v (started %v), want %v", ran, started, want)
	}
	for i := range want {
		if ran[i] != want[i] || started[i] != want[i] {
			t.Fatalf("ran %v (started %v), want %v", ran, started, want)
		}
	}
	if out.Results[0].Success || !out.Results[1].Success || !out.Results[2].Success {
		t.Errorf("successes: dns %v http %v speed %v", out.Results[0].Success, out.Results[1].Success, out.Results[2].Success)
	}
	if out.Report.Status != verdict.StatusFail || out.Report.Access != "gpon" {
		t.Errorf("report %s for %q", out.Report.Status, out.Report.Access)
	}
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labelled := 0
	for _, f := range mf {
		if f.GetName() == "probe_success" {
			labelled = len(f.GetMetric())
		}
	}
	if labelled != 3 {
		t.Errorf("probe_success has %d series, want one per probe", labelled)
	}
}

// A cancelled run stops before the next probe and says where.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := diagrun.Run(ctx, diagrun.Site{PingTarget: "127.0.0.1"}, diagrun.Options{})
	if err == nil {
		t.Fatal("a cancelled run reported no error")
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"http://192.0.2.7:8080/": "192.0.2.7", "speed.example:8080": "speed.example", "192.0.2.9": "192.0.2.9",
	} {
		if got := diagrun.HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
}
