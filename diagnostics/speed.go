package diagnostics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics/ndt7"
	"fieldagent/diagnostics/speedtest"
)

// SpeedDownloadProbe returns a Probe that runs speedtest.Download against
// target, the base URL of a speedtest.Server (e.g. "http://192.0.2.10:8080").
// Readings are those of SpeedReadings; gauges are probe_speed_mbps{direction},
// probe_speed_latency_under_load_seconds and probe_speed_streams. opts.Logger,
// if nil, is the probe's logger. Run's timeout must exceed opts.Duration
// (DefaultTimeout does for the default 10s).
func SpeedDownloadProbe(opts speedtest.ClientOptions) Probe {
	return speedProbe(speedtest.DirectionDownload, speedtest.Download, opts)
}

// SpeedUploadProbe is SpeedDownloadProbe for speedtest.Upload; its
// throughput reading is upload_mbps.
func SpeedUploadProbe(opts speedtest.ClientOptions) Probe {
	return speedProbe(speedtest.DirectionUpload, speedtest.Upload, opts)
}

// NDT7DownloadProbe is SpeedDownloadProbe over M-Lab's ndt7 protocol
// (ndt7.Download: one WebSocket stream for a fixed duration, at most 13s),
// against target, the base URL of any ndt7 server.
func NDT7DownloadProbe(opts ndt7.ClientOptions) Probe {
	return speedProbe(speedtest.DirectionDownload, ndt7Run(ndt7.Download, opts), speedtest.ClientOptions{Logger: opts.Logger})
}

// NDT7UploadProbe is NDT7DownloadProbe for ndt7.Upload.
func NDT7UploadProbe(opts ndt7.ClientOptions) Probe {
	return speedProbe(speedtest.DirectionUpload, ndt7Run(ndt7.Upload, opts), speedtest.ClientOptions{Logger: opts.Logger})
}

// ndt7Run adapts an ndt7 client function to speedFunc; the logger speedProbe
// chose is passed on.
func ndt7Run(run func(context.Context, string, ndt7.ClientOptions) (speedtest.Measurement, error), opts ndt7.ClientOptions) speedFunc {
	return func(ctx context.Context, baseURL string, so speedtest.ClientOptions) (speedtest.Measurement, error) {
		o := opts
		if o.Logger == nil {
			o.Logger = so.Logger
		}
		return run(ctx, baseURL, o)
	}
}

type speedFunc func(ctx context.Context, baseURL string, opts speedtest.ClientOptions) (speedtest.Measurement, error)

func speedProbe(dir string, run speedFunc, opts speedtest.ClientOptions) Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, logger *slog.Logger) ([]Reading, error) {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		o := opts
		if o.Logger == nil {
			o.Logger = logger
		}
		m, err := run(ctx, target, o)
		readings := SpeedReadings(m, time.Now())
		exportSpeedMetrics(reg, logger, m)
		switch {
		case (errors.Is(err, speedtest.ErrInvalidOptions) || errors.Is(err, ndt7.ErrInvalidOptions)) && ctx.Err() == nil:
			return readings, fmt.Errorf("speed %s %s: %w: %w", dir, target, ErrInvalidOptions, err)
		case err != nil && ctx.Err() != nil:
			return readings, deadlineErr(ctx, "speed "+dir+" "+target)
		case err != nil:
			return readings, fmt.Errorf("speed %s %s: %w", dir, target, err)
		}
		return readings, nil
	}
}

// SpeedReadings turns a measurement into readings taken at t:
// download_mbps or upload_mbps (Mbit/s), latency_under_load_ms (ms),
// speed_streams, speed_bytes (bytes in the measurement window),
// idle_latency_ms, and speed_retransmits when known. A measurement without a
// measurement window (a failed test) gives only speed_streams and, if
// measured, the latencies.
func SpeedReadings(m speedtest.Measurement, t time.Time) []Reading {
	rs := make([]Reading, 0, 6)
	if m.Duration > 0 {
		rs = append(rs,
			Reading{Name: m.Direction + "_mbps", Value: m.Mbps, Unit: "Mbit/s", Time: t},
			Reading{Name: "speed_bytes", Value: float64(m.Bytes), Unit: "B", Time: t},
		)
	}
	if m.LatencySamples > 0 {
		rs = append(rs, Reading{Name: "latency_under_load_ms", Value: m.LatencyUnderLoadMs, Unit: "ms", Time: t})
	}
	if m.IdleLatencyMs > 0 {
		rs = append(rs, Reading{Name: "idle_latency_ms", Value: m.IdleLatencyMs, Unit: "ms", Time: t})
	}
	if m.Streams > 0 {
		rs = append(rs, Reading{Name: "speed_streams", Value: float64(m.Streams), Time: t})
	}
	if m.Retransmits >= 0 && m.Duration > 0 {
		rs = append(rs, Reading{Name: "speed_retransmits", Value: float64(m.Retransmits), Time: t})
	}
	return rs
}

func exportSpeedMetrics(reg prometheus.Registerer, logger *slog.Logger, m speedtest.Measurement) {
	rate := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "probe_speed_mbps",
		Help: "Throughput after ramp-up in Mbit/s, by direction",
	}, []string{"direction"})
	lat := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_speed_latency_under_load_seconds",
		Help: "Median round-trip time of small requests during the transfer",
	})
	streams := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_speed_streams",
		Help: "Parallel TCP streams at the end of the transfer",
	})
	register(reg, logger, rate, lat, streams)
	if m.Duration > 0 {
		rate.WithLabelValues(m.Direction).Set(m.Mbps)
	}
	lat.Set(m.LatencyUnderLoadMs / 1000)
	streams.Set(float64(m.Streams))
}
