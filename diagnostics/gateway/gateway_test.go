package gateway_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/gateway"
	"fieldagent/drivers"
)

// device is a gateway's test results as its driver returns them (the
// drivers' own tests run them against the lab gateway over CWMP).
type device struct {
	transfer drivers.TransferResult
	ping     drivers.PingResult
	err      error
}

func (d device) DownloadTest(context.Context, string, drivers.TransferOptions) (drivers.TransferResult, error) {
	return d.transfer, d.err
}
func (d device) Ping(context.Context, string, drivers.PingOptions) (drivers.PingResult, error) {
	return d.ping, d.err
}

func run(p diagnostics.Probe) diagnostics.Result {
	return diagnostics.Run(context.Background(), "gw", p, "http://speed/file/1000", time.Second, prometheus.NewRegistry(), nil)
}

func TestDownloadReadings(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	d := device{transfer: drivers.TransferResult{Mbps: 287.5, Bytes: 143_750_000, TCPOpenRequest: t0, TCPOpenResponse: t0.Add(3 * time.Millisecond)}}
	res := run(gateway.DownloadProbe(d, drivers.TransferOptions{}))
	if !res.Success {
		t.Fatal(res.Err)
	}
	for name, want := range map[string]float64{"gateway_download_mbps": 287.5, "gateway_download_bytes": 143_750_000, "gateway_tcp_open_ms": 3} {
		if r, ok := res.Reading(name); !ok || r.Value != want {
			t.Errorf("%s = %v (present %v), want %v", name, r.Value, ok, want)
		}
	}
	d.err = &drivers.DiagnosticsError{Test: drivers.TestDownload, Target: "http://speed/file/1000", State: "Error_InitConnectionFailed"}
	res = run(gateway.DownloadProbe(d, drivers.TransferOptions{}))
	if res.Success || !strings.Contains(res.Err, "Error_InitConnectionFailed") {
		t.Errorf("failed test: %+v", res)
	}
}

func TestPingReadings(t *testing.T) {
	d := device{ping: drivers.PingResult{Sent: 5, Received: 4, Min: time.Millisecond, Avg: 2 * time.Millisecond, Max: 4 * time.Millisecond}}
	res := run(gateway.PingProbe(d, drivers.PingOptions{}))
	if r, _ := res.Reading("gateway_ping_loss"); !res.Success || r.Value != 20 {
		t.Errorf("loss %v, result %+v", r.Value, res)
	}
	d.ping = drivers.PingResult{Sent: 5}
	res = run(gateway.PingProbe(d, drivers.PingOptions{}))
	if r, _ := res.Reading("gateway_ping_loss"); res.Success || r.Value != 100 || !strings.Contains(res.Err, "no reply") {
		t.Errorf("no replies: %+v", res)
	}
	if _, ok := res.Reading("gateway_ping_rtt_avg"); ok {
		t.Error("an RTT reading without replies")
	}
	d.err = errors.New("boom")
	if res := run(gateway.PingProbe(d, drivers.PingOptions{})); res.Success {
		t.Error("a driver error passed")
	}
}
