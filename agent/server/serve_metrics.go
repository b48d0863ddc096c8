package server

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/diagrun"
)

// serveMetrics are the remote-support daemon's metrics, registered on the
// registry the daemon passes in.
type serveMetrics struct {
	informs       *prometheus.CounterVec
	jobsSubmitted *prometheus.CounterVec
	jobsFinished  *prometheus.CounterVec
	jobsRunning   prometheus.Gauge
	deviceResults *prometheus.CounterVec
	diagnoses     *prometheus.CounterVec
	findings      *prometheus.CounterVec
	probeSuccess  *prometheus.GaugeVec
	probeDuration *prometheus.GaugeVec
	diagDuration  prometheus.Histogram
}

// newServeMetrics registers the metrics on reg; counts gives the ACS's
// known and online devices at each scrape.
func newServeMetrics(reg prometheus.Registerer, counts func() (known, online int)) (*serveMetrics, error) {
	m := &serveMetrics{
		informs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_acs_informs_total", Help: "Inform events received by the ACS, by event code (e.g. \"2 PERIODIC\").",
		}, []string{"event"}),
		jobsSubmitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_jobs_submitted_total", Help: "Jobs submitted through the API, by kind.",
		}, []string{"kind"}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_jobs_finished_total", Help: "Jobs submitted through the API that ended, by final state.",
		}, []string{"state"}),
		jobsRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fieldagent_jobs_running", Help: "Jobs submitted through the API that have not ended.",
		}),
		deviceResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_job_device_results_total", Help: "Device results stored by jobs, by state (done, failed, cancelled).",
		}, []string{"state"}),
		diagnoses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_diagnoses_total", Help: "Device diagnoses run, by report status (ok, warn, fail) or error.",
		}, []string{"status"}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_diagnosis_findings_total", Help: "Findings of device diagnoses, by finding code.",
		}, []string{"code"}),
		probeSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_success", Help: "Whether the device's last probe of this kind succeeded (1) or not (0).",
		}, []string{"device", "probe"}),
		probeDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_duration_seconds", Help: "How long the device's last probe of this kind took.",
		}, []string{"device", "probe"}),
		diagDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fieldagent_diagnosis_duration_seconds", Help: "How long a device diagnosis took.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 10),
		}),
	}
	known := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fieldagent_acs_devices_known", Help: "Devices the ACS knows (have informed it, or were in its registry).",
	}, func() float64 { k, _ := counts(); return float64(k) })
	online := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fieldagent_acs_devices_online", Help: "Known devices that informed within twice their periodic interval or the online window.",
	}, func() float64 { _, o := counts(); return float64(o) })
	for _, c := range []prometheus.Collector{m.informs, m.jobsSubmitted, m.jobsFinished, m.jobsRunning, m.deviceResults,
		m.diagnoses, m.findings, m.probeSuccess, m.probeDuration, m.diagDuration, known, online} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one device's diagnosis.
func (m *serveMetrics) observe(device string, out diagrun.Outcome, took time.Duration, err error) {
	m.diagDuration.Observe(took.Seconds())
	status := string(out.Report.Status)
	if err != nil || status == "" {
		status = "error"
	}
	m.diagnoses.WithLabelValues(status).Inc()
	for _, f := range out.Report.Findings {
		m.findings.WithLabelValues(string(f.Code)).Inc()
	}
	for _, r := range out.Results {
		v := 0.0
		if r.Success {
			v = 1
		}
		m.probeSuccess.WithLabelValues(device, r.Probe).Set(v)
		m.probeDuration.WithLabelValues(device, r.Probe).Set(r.Duration.Seconds())
	}
}

// slogPromLogger passes promhttp's errors to a slog.Logger.
type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Error("metrics: " + fmt.Sprint(v...)) }
