package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/store"
	"fieldagent/agent/workflow"
	"fieldagent/tr069/acs"
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
	// readings are the reading gauges (readingGauges) by name, labelled by
	// device (and the gauge's own label); wanStatus is probe_wan_status_info.
	readings  map[string]*prometheus.GaugeVec
	wanStatus *prometheus.GaugeVec
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
	m.readings = map[string]*prometheus.GaugeVec{}
	m.wanStatus = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: wanStatusName, Help: wanStatusHelp + " Of the device's last diagnosis."},
		[]string{"device", "status", "last_error"})
	cs := []prometheus.Collector{m.informs, m.jobsSubmitted, m.jobsFinished, m.jobsRunning, m.deviceResults,
		m.diagnoses, m.findings, m.probeSuccess, m.probeDuration, m.diagDuration, known, online, m.wanStatus}
	for _, g := range readingGauges() {
		labels := []string{"device"}
		if g.label != "" {
			labels = append(labels, g.label)
		}
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: g.name, Help: g.help + " Of the device's last diagnosis."}, labels)
		m.readings[g.name] = vec
		cs = append(cs, vec)
	}
	for _, c := range cs {
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
	// The readings gauges hold the last diagnosis only: a reading it did
	// not take (a failed probe, a changed line) is dropped, not kept stale.
	only := prometheus.Labels{"device": device}
	m.wanStatus.DeletePartialMatch(only)
	for _, vec := range m.readings {
		vec.DeletePartialMatch(only)
	}
	for name, values := range readingValues(out.Results) {
		for lv, v := range values {
			if lv == "" {
				m.readings[name].WithLabelValues(device).Set(v)
			} else {
				m.readings[name].WithLabelValues(device, lv).Set(v)
			}
		}
	}
	if status, lastErr, ok := wanStatus(out.Facts); ok {
		m.wanStatus.WithLabelValues(device, status, lastErr).Set(1)
	}
}

// ACSMetrics are the ACS's session metrics: it implements
// acs.SessionObserver (set it as acs.Config.Observer) with Prometheus
// metrics registered by NewACSMetrics.
type ACSMetrics struct {
	sessions *prometheus.CounterVec
	active   prometheus.Gauge
	duration prometheus.Histogram
	faults   *prometheus.CounterVec
	connReqs *prometheus.CounterVec
}

// NewACSMetrics registers the ACS session metrics on reg:
// fieldagent_acs_sessions_total{outcome}, fieldagent_acs_sessions_active,
// fieldagent_acs_session_duration_seconds,
// fieldagent_acs_faults_total{code,method} and
// fieldagent_acs_connection_requests_total{outcome}. It returns an error
// when a name is already registered on reg.
func NewACSMetrics(reg prometheus.Registerer) (*ACSMetrics, error) {
	m := &ACSMetrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_acs_sessions_total",
			Help: "CWMP sessions ended, by outcome: ok (ended normally) or error (idle timeout, connection lost, replaced by a new Inform).",
		}, []string{"outcome"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fieldagent_acs_sessions_active", Help: "CWMP sessions open now.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "fieldagent_acs_session_duration_seconds", Help: "How long CWMP sessions lasted, from the Inform to their end.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12), // 50ms to 102s
		}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_acs_faults_total",
			Help: "CWMP faults CPEs answered the ACS's requests with, by fault code and RPC method (TransferComplete: a failed transfer).",
		}, []string{"code", "method"}),
		connReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldagent_acs_connection_requests_total",
			Help: "Connection requests to CPEs, by outcome: ok, refused, timeout, unreachable, unauthorized, http_error, no_url, cancelled or failed.",
		}, []string{"outcome"}),
	}
	for _, o := range []string{"ok", "error"} {
		m.sessions.WithLabelValues(o)
	}
	for _, o := range []string{"ok", "refused", "timeout", "unreachable", "unauthorized", "http_error", "no_url", "cancelled", "failed"} {
		m.connReqs.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{m.sessions, m.active, m.duration, m.faults, m.connReqs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register ACS metrics: %w", err)
		}
	}
	return m, nil
}

// SessionStarted counts an open session.
func (m *ACSMetrics) SessionStarted(string) { m.active.Inc() }

// SessionEnded counts a session by outcome and observes its duration.
func (m *ACSMetrics) SessionEnded(_ string, took time.Duration, err error) {
	m.active.Dec()
	m.duration.Observe(took.Seconds())
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.sessions.WithLabelValues(outcome).Inc()
}

// Fault counts a CPE's fault by code and method.
func (m *ACSMetrics) Fault(_, method string, code int) {
	m.faults.WithLabelValues(strconv.Itoa(code), method).Inc()
}

// ConnectionRequest counts a connection request by outcome.
func (m *ACSMetrics) ConnectionRequest(_ string, _ time.Duration, err error) {
	m.connReqs.WithLabelValues(ConnectionRequestOutcome(err)).Inc()
}

// ConnectionRequestOutcome is the outcome label of a connection request
// that ended with err (see acs.Reason): ok for nil, refused, timeout,
// unreachable, unauthorized, http_error, no_url, cancelled (the caller gave
// up), or failed for anything else.
func ConnectionRequestOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	var cre *acs.ConnectionRequestError
	if errors.As(err, &cre) {
		switch cre.Reason {
		case acs.ReasonRefused:
			return "refused"
		case acs.ReasonTimeout:
			return "timeout"
		case acs.ReasonUnreachable:
			return "unreachable"
		case acs.ReasonUnauthorized:
			return "unauthorized"
		case acs.ReasonNoURL:
			return "no_url"
		case acs.ReasonHTTPStatus:
			return "http_error"
		}
		if cre.StatusCode != 0 {
			return "http_error"
		}
		return "failed"
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "failed"
}

// workflowStore is the subset of *store.Store that the outbox and order
// gauges read.
type workflowStore interface {
	Due(ctx context.Context, now time.Time) ([]store.OutboxItem, error)
	ListOrders(ctx context.Context) ([]store.OrderSummary, error)
}

// DefaultStoreMetricsTimeout bounds StoreCollector's store reads at one scrape.
const DefaultStoreMetricsTimeout = 2 * time.Second

// StoreCollector is a prometheus.Collector of the store's order workflow:
// fieldagent_outbox_pending (results not yet delivered to the order
// system, and not failed for good) and fieldagent_workflow_orders{state}
// (stored orders by workflow state; the workflow's states are always
// present, 0 when no order is in them). It reads the store at every
// scrape, bounded by a timeout; when a read fails its metric is left out
// of that scrape (and logged), so that /metrics still answers.
type StoreCollector struct {
	store   workflowStore
	timeout time.Duration
	log     *slog.Logger
	pending *prometheus.Desc
	orders  *prometheus.Desc
}

// NewStoreCollector returns the collector over st (a *store.Store).
// timeout bounds the reads of one scrape (0 means
// DefaultStoreMetricsTimeout); logger, if nil, discards.
func NewStoreCollector(st workflowStore, timeout time.Duration, logger *slog.Logger) *StoreCollector {
	if timeout <= 0 {
		timeout = DefaultStoreMetricsTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &StoreCollector{
		store: st, timeout: timeout, log: logger,
		pending: prometheus.NewDesc("fieldagent_outbox_pending",
			"Outbox items (completions, events) not yet delivered to the order system and not failed for good.", nil, nil),
		orders: prometheus.NewDesc("fieldagent_workflow_orders",
			"Orders in the local store, by workflow state.", []string{"state"}, nil),
	}
}

// Describe sends the collector's two descriptors.
func (c *StoreCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.orders
}

// Collect reads the store and sends the gauges.
func (c *StoreCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	// Every item neither delivered nor failed, whenever its next attempt.
	due, err := c.store.Due(ctx, time.Now().Add(100*365*24*time.Hour))
	if err != nil {
		c.log.Warn("metrics: outbox not read", "err", err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(len(due)))
	}
	orders, err := c.store.ListOrders(ctx)
	if err != nil {
		c.log.Warn("metrics: orders not read", "err", err)
		return
	}
	counts := map[string]int{}
	for _, s := range []string{workflow.OrderFetched, workflow.OrderRunning, workflow.OrderFailed,
		workflow.OrderAwaiting, workflow.OrderPending, workflow.OrderClosed} {
		counts[s] = 0
	}
	for _, o := range orders {
		counts[o.State]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.orders, prometheus.GaugeValue, float64(n), state)
	}
}

// slogPromLogger passes promhttp's errors to a slog.Logger.
type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Error("metrics: " + fmt.Sprint(v...)) }
