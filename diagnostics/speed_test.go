package diagnostics

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics/ndt7"
	"fieldagent/diagnostics/speedtest"
)

func TestSpeedProbes(t *testing.T) {
	srv := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	defer srv.Close()
	opts := speedtest.ClientOptions{Duration: time.Second, SampleInterval: 100 * time.Millisecond}
	for _, tc := range []struct {
		name, reading, direction string
		probe                    Probe
	}{
		{"speed_download", "download_mbps", "download", SpeedDownloadProbe(opts)},
		{"speed_upload", "upload_mbps", "upload", SpeedUploadProbe(opts)},
		{"ndt7_download", "download_mbps", "download", NDT7DownloadProbe(ndt7.ClientOptions{Duration: time.Second})},
		{"ndt7_upload", "upload_mbps", "upload", NDT7UploadProbe(ndt7.ClientOptions{Duration: time.Second})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			res := Run(t.Context(), tc.name, tc.probe, srv.URL, 10*time.Second, reg, nil)
			if !res.Success {
				t.Fatalf("%s: %s", tc.name, res.Err)
			}
			t.Logf("detail: %s", res.Detail)
			if r, ok := res.Reading(tc.reading); !ok || r.Value <= 0 || r.Unit != "Mbit/s" {
				t.Errorf("%s = %+v (present %v), want > 0 Mbit/s", tc.reading, r, ok)
			}
			for _, name := range []string{"latency_under_load_ms", "speed_streams", "speed_bytes"} {
				if _, ok := res.Reading(name); !ok {
					t.Errorf("reading %s missing", name)
				}
			}
			if v, ok := metricValue(t, reg, "probe_speed_mbps", "direction", tc.direction); !ok || v <= 0 {
				t.Errorf("probe_speed_mbps{direction=%q} = %v (present %v)", tc.direction, v, ok)
			}
		})
	}
}

func TestSpeedProbeErrors(t *testing.T) {
	tests := []struct {
		name   string
		opts   speedtest.ClientOptions
		target string
		want   error
	}{
		{"bad options", speedtest.ClientOptions{Duration: time.Second, RampUp: 2 * time.Second}, "http://127.0.0.1:1", ErrInvalidOptions},
		{"bad target", speedtest.ClientOptions{}, "127.0.0.1", ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SpeedDownloadProbe(tc.opts)(t.Context(), tc.target, nil, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	// ndt7 caps a test at 13 s, as its spec does.
	if _, err := NDT7DownloadProbe(ndt7.ClientOptions{Duration: 20 * time.Second})(t.Context(), "http://127.0.0.1:1", nil, nil); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("ndt7 over 13s: err %v, want ErrInvalidOptions", err)
	}
}
