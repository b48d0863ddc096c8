package diagnostics

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metricValue returns the value of the gauge name with the given labels
// (name=value pairs) from reg, and whether it exists.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue metrics
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name && lp.GetValue() == value {
			return true
		}
	}
	return false
}

func TestRun(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name        string
		probe       Probe
		wantSuccess bool
		wantErr     string
		wantDetail  string
	}{
		{
			name: "success",
			probe: func(context.Context, string, prometheus.Registerer, *slog.Logger) ([]Reading, error) {
				return []Reading{{Name: "x_ms", Value: 1.5, Unit: "ms"}, {Name: "n", Value: 3}}, nil
			},
			wantSuccess: true,
			wantDetail:  "x_ms=1.5 ms, n=3",
		},
		{
			name: "failure keeps partial readings",
			probe: func(context.Context, string, prometheus.Registerer, *slog.Logger) ([]Reading, error) {
				return []Reading{{Name: "n", Value: 1}}, errBoom
			},
			wantErr:    "boom",
			wantDetail: "n=1",
		},
		{
			name: "deadline is set by Run",
			probe: func(ctx context.Context, _ string, _ prometheus.Registerer, _ *slog.Logger) ([]Reading, error) {
				if _, ok := ctx.Deadline(); !ok {
					return nil, errors.New("no deadline")
				}
				<-ctx.Done()
				return nil, deadlineErr(ctx, "wait")
			},
			wantErr: "wait: probe deadline exceeded",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			res := Run(t.Context(), "fake", tc.probe, "127.0.0.1", 50*time.Millisecond, reg, nil)
			if res.Success != tc.wantSuccess || res.Err != tc.wantErr || res.Detail != tc.wantDetail {
				t.Errorf("got success=%v err=%q detail=%q; want %v %q %q", res.Success, res.Err, res.Detail, tc.wantSuccess, tc.wantErr, tc.wantDetail)
			}
			if res.Probe != "fake" || res.Target != "127.0.0.1" {
				t.Errorf("probe %q target %q", res.Probe, res.Target)
			}
			for _, r := range res.Readings {
				if r.Time.IsZero() {
					t.Errorf("reading %s without a time", r.Name)
				}
			}
			want := 0.0
			if tc.wantSuccess {
				want = 1
			}
			if v, ok := metricValue(t, reg, "probe_success"); !ok || v != want {
				t.Errorf("probe_success = %v (present %v), want %v", v, ok, want)
			}
			if _, ok := metricValue(t, reg, "probe_duration_seconds"); !ok {
				t.Error("probe_duration_seconds missing")
			}
		})
	}
}

func TestRunReusedRegistryDoesNotPanic(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := func(context.Context, string, prometheus.Registerer, *slog.Logger) ([]Reading, error) { return nil, nil }
	for range 2 {
		if res := Run(t.Context(), "fake", p, "127.0.0.1", time.Second, reg, nil); !res.Success {
			t.Fatalf("run: %+v", res)
		}
	}
	// nil registry and logger are allowed too.
	if res := Run(t.Context(), "fake", p, "127.0.0.1", 0, nil, nil); !res.Success {
		t.Fatalf("run with nil registry: %+v", res)
	}
}

func TestResultJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res := Result{
		Probe: "ping", Target: "127.0.0.1", Success: true,
		Readings: []Reading{{Name: "ping_loss", Value: 0, Unit: "%", Time: at}},
		Duration: 1500 * time.Millisecond, Detail: "ping_loss=0 %",
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"probe":"ping","target":"127.0.0.1","success":true,"readings":[{"name":"ping_loss","value":0,"unit":"%","time":"2026-01-02T03:04:05Z"}],"duration_seconds":1.5,"detail":"ping_loss=0 %"}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Duration != res.Duration || back.Probe != res.Probe || len(back.Readings) != 1 || !back.Readings[0].Time.Equal(at) {
		t.Errorf("round trip: %+v", back)
	}
	if r, ok := back.Reading("ping_loss"); !ok || r.Unit != "%" {
		t.Errorf("Reading(ping_loss) = %+v, %v", r, ok)
	}
	if empty, _ := json.Marshal(Result{Probe: "x"}); !strings.Contains(string(empty), `"readings":[]`) {
		t.Errorf("empty readings encode as %s, want []", empty)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {3, "3"}, {1.5, "1.5"}, {0.144013, "0.144"}, {5181.005759, "5181.006"},
		{514588672, "514588672"}, {-0.0001, "0"}, {-2.25, "-2.25"},
	}
	for _, tc := range tests {
		if got := formatValue(tc.in); got != tc.want {
			t.Errorf("formatValue(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestProbes(t *testing.T) {
	got := slices.Sorted(maps.Keys(Probes()))
	want := []string{"dns", "http", "ndt7_download", "ndt7_upload", "ping", "speed_download", "speed_upload", "trace"}
	if !slices.Equal(got, want) {
		t.Errorf("Probes() names %v, want %v", got, want)
	}
}
