// Package gateway turns the tests a device runs itself — a gateway's TR-143
// download and upload, its IPPing and TraceRoute diagnostics, an XT-2's
// ping and speed-test — into probes of the one diagnostics shape, so that
// diag run can set the gateway's figures beside the laptop's: if the gateway
// reaches the package and the laptop does not, the fault is inside the home.
//
// Readings:
//
//	gateway_download_mbps, gateway_upload_mbps (Mbit/s), gateway_download_bytes,
//	gateway_upload_bytes (B), gateway_tcp_open_ms (ms)
//	gateway_ping_loss (%), gateway_ping_rtt_min, gateway_ping_rtt_avg,
//	gateway_ping_rtt_max (ms)
//	gateway_trace_hops, gateway_trace_hop_<n>_rtt_ms (ms)
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics"
	"fieldagent/drivers"
)

// DownloadProbe runs dev's download test of the URL given as target.
func DownloadProbe(dev drivers.DownloadTester, opts drivers.TransferOptions) diagnostics.Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, _ *slog.Logger) ([]diagnostics.Reading, error) {
		res, err := dev.DownloadTest(ctx, target, opts)
		if err != nil {
			return nil, fmt.Errorf("gateway download test: %w", err)
		}
		return transferReadings("download", res, reg), nil
	}
}

// UploadProbe runs dev's upload test of size bytes to the URL given as
// target.
func UploadProbe(dev drivers.UploadTester, size int64, opts drivers.TransferOptions) diagnostics.Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, _ *slog.Logger) ([]diagnostics.Reading, error) {
		res, err := dev.UploadTest(ctx, target, size, opts)
		if err != nil {
			return nil, fmt.Errorf("gateway upload test: %w", err)
		}
		return transferReadings("upload", res, reg), nil
	}
}

func transferReadings(dir string, res drivers.TransferResult, reg prometheus.Registerer) []diagnostics.Reading {
	rs := []diagnostics.Reading{
		{Name: "gateway_" + dir + "_mbps", Value: res.Mbps, Unit: "Mbit/s"},
		{Name: "gateway_" + dir + "_bytes", Value: float64(res.Bytes), Unit: "B"},
	}
	if !res.TCPOpenRequest.IsZero() && !res.TCPOpenResponse.IsZero() {
		rs = append(rs, diagnostics.Reading{Name: "gateway_tcp_open_ms", Value: ms(res.TCPOpenResponse.Sub(res.TCPOpenRequest)), Unit: "ms"})
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_gateway_" + dir + "_mbps", Help: "Throughput the gateway measured itself (TR-143), Mbit/s"})
	if reg != nil && reg.Register(g) == nil {
		g.Set(res.Mbps)
	}
	return rs
}

// PingProbe runs dev's ping of the host given as target.
func PingProbe(dev drivers.Pinger, opts drivers.PingOptions) diagnostics.Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, _ *slog.Logger) ([]diagnostics.Reading, error) {
		res, err := dev.Ping(ctx, target, opts)
		if err != nil {
			return nil, fmt.Errorf("gateway ping: %w", err)
		}
		rs := []diagnostics.Reading{{Name: "gateway_ping_loss", Value: res.Loss() * 100, Unit: "%"}}
		if res.Received > 0 {
			rs = append(rs,
				diagnostics.Reading{Name: "gateway_ping_rtt_min", Value: ms(res.Min), Unit: "ms"},
				diagnostics.Reading{Name: "gateway_ping_rtt_avg", Value: ms(res.Avg), Unit: "ms"},
				diagnostics.Reading{Name: "gateway_ping_rtt_max", Value: ms(res.Max), Unit: "ms"})
		}
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_gateway_ping_loss_ratio", Help: "Ping loss the gateway measured itself"})
		if reg != nil && reg.Register(g) == nil {
			g.Set(res.Loss())
		}
		if res.Received == 0 {
			return rs, fmt.Errorf("gateway ping: no reply from %s to %d requests", target, res.Sent)
		}
		return rs, nil
	}
}

// TraceProbe runs dev's trace route to the host given as target.
func TraceProbe(dev drivers.TraceRouter, opts drivers.TraceOptions) diagnostics.Probe {
	return func(ctx context.Context, target string, _ prometheus.Registerer, _ *slog.Logger) ([]diagnostics.Reading, error) {
		res, err := dev.TraceRoute(ctx, target, opts)
		if err != nil {
			return nil, fmt.Errorf("gateway trace route: %w", err)
		}
		rs := []diagnostics.Reading{{Name: "gateway_trace_hops", Value: float64(len(res.Hops))}}
		for i, h := range res.Hops {
			if len(h.RTTs) == 0 {
				continue
			}
			var sum time.Duration
			for _, r := range h.RTTs {
				sum += r
			}
			rs = append(rs, diagnostics.Reading{Name: "gateway_trace_hop_" + strconv.Itoa(i+1) + "_rtt_ms", Value: ms(sum / time.Duration(len(h.RTTs))), Unit: "ms"})
		}
		return rs, nil
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
