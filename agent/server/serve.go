package server

// This file is the remote-support API that `fieldagent serve` offers
// (docs/api.md): device list and search, diagnoses of one device or a
// fleet run as jobs, job results and progress (SSE), health and metrics.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/jobs"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/tr069/acs"
)

// Sentinel errors of the remote-support API.
var (
	// ErrNotGateway means a diagnosis was asked of a device that is not a
	// gateway (a set-top box): diag run reads gateways.
	ErrNotGateway = errors.New("the device is not a gateway")
)

// Job kinds the API submits.
const (
	JobKindDiagnose      = "diagnose"
	JobKindFleetDiagnose = "fleet_diagnose"
)

// Defaults of APIConfig.
const (
	// DefaultOnlineWindow is how recent a device's last Inform must be for
	// it to count as online when it reports no periodic interval (or a
	// short one).
	DefaultOnlineWindow = 10 * time.Minute
	// DefaultDiagnoseTimeout bounds one device's diagnosis.
	DefaultDiagnoseTimeout = 5 * time.Minute
	// periodicParam ends the name of a gateway's periodic inform interval.
	periodicParam = "ManagementServer.PeriodicInformInterval"
)

// serveACS is the subset of *acs.Server that the remote-support API uses:
// its device list, its Informs (for metrics), and what the TR-069 drivers
// need to diagnose a device.
type serveACS interface {
	catalog.ACS
	Devices() []acs.Device
	Device(id string) (acs.Device, bool)
	Subscribe(ctx context.Context) <-chan acs.InformEvent
}

// jobReader is the subset of *store.Store that the API reads jobs with.
type jobReader interface {
	Job(ctx context.Context, id string) (store.Job, error)
	JobResults(ctx context.Context, jobID string) ([]store.JobResult, error)
}

// DiagnoseFunc diagnoses one device the ACS knows and returns the outcome.
type DiagnoseFunc func(ctx context.Context, d acs.Device) (diagrun.Outcome, error)

// APIConfig configures NewAPI. ACS, Store, Runner and Auth are required.
type APIConfig struct {
	ACS    serveACS
	Store  jobReader
	Runner *jobs.Runner
	Auth   *auth.Authenticator
	// Metrics is the registry the API registers its metrics on and serves
	// at /metrics; nil means a fresh registry (the API's metrics only).
	Metrics *prometheus.Registry
	// Diagnose, if nil, opens the device's driver through the ACS
	// (drivers/catalog) and runs diagrun on it.
	Diagnose DiagnoseFunc
	// DiagnoseTimeout bounds one device's diagnosis; 0 means
	// DefaultDiagnoseTimeout.
	DiagnoseTimeout time.Duration
	// StepTimeout bounds each probe of a diagnosis; 0 keeps diagrun's.
	StepTimeout time.Duration
	// OnlineWindow, if zero, is DefaultOnlineWindow (see DeviceSummary.Online).
	OnlineWindow time.Duration
	// Logger, if nil, discards. The access log goes here too.
	Logger *slog.Logger
	// Now, if nil, is time.Now.
	Now func() time.Time
}

// API is the remote-support HTTP API. It is an http.Handler.
type API struct {
	cfg     APIConfig
	log     *slog.Logger
	handler http.Handler
	metrics *serveMetrics

	ready        atomic.Bool
	shuttingDown atomic.Bool
	watchers     sync.WaitGroup // job watchers that update metrics
}

// NewAPI returns the API over cfg. It returns an error if a required field
// is missing or a metric cannot be registered (a name already taken on
// cfg.Metrics).
func NewAPI(cfg APIConfig) (*API, error) {
	if cfg.ACS == nil || cfg.Store == nil || cfg.Runner == nil || cfg.Auth == nil {
		return nil, errors.New("server: NewAPI needs ACS, Store, Runner and Auth")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnlineWindow <= 0 {
		cfg.OnlineWindow = DefaultOnlineWindow
	}
	if cfg.DiagnoseTimeout <= 0 {
		cfg.DiagnoseTimeout = DefaultDiagnoseTimeout
	}
	h := &API{cfg: cfg, log: cfg.Logger}
	if h.cfg.Diagnose == nil {
		h.cfg.Diagnose = h.diagnoseTR069
	}
	m, err := newServeMetrics(cfg.Metrics, h.deviceCounts)
	if err != nil {
		return nil, err
	}
	h.metrics = m

	a := cfg.Auth
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/devices", a.Middleware(auth.RoleRead, http.HandlerFunc(h.listDevices)))
	mux.Handle("GET /api/v1/devices/{id}", a.Middleware(auth.RoleRead, http.HandlerFunc(h.showDevice)))
	mux.Handle("POST /api/v1/devices/{id}/diagnose", a.Middleware(auth.RoleDiagnose, http.HandlerFunc(h.diagnoseDevice)))
	mux.Handle("POST /api/v1/fleet/diagnose", a.Middleware(auth.RoleDiagnose, http.HandlerFunc(h.diagnoseFleet)))
	mux.Handle("GET /api/v1/jobs/{id}", a.Middleware(auth.RoleRead, http.HandlerFunc(h.showJob)))
	mux.Handle("GET /api/v1/jobs/{id}/events", a.Middleware(auth.RoleRead,
		jobs.SSEHandler(cfg.Runner, func(r *http.Request) string { return r.PathValue("id") })))
	mux.Handle("GET /metrics", a.Middleware(auth.RoleRead,
		promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{ErrorLog: slogPromLogger{h.log}})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		auth.WriteError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path), "see docs/api.md for the routes")
	})
	h.handler = auth.AccessLog(h.log.With("component", "access"), mux)
	return h, nil
}

// ServeHTTP serves the API.
func (h *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

// SetReady marks the ACS and the store up: /readyz answers 200 from now
// until SetShuttingDown.
func (h *API) SetReady() { h.ready.Store(true) }

// SetShuttingDown makes /readyz answer 503, so that a load balancer stops
// sending work while running jobs finish.
func (h *API) SetShuttingDown() { h.shuttingDown.Store(true) }

func (h *API) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case h.shuttingDown.Load():
		auth.WriteError(w, http.StatusServiceUnavailable, "shutting down", "running jobs are finishing; send new work to another instance")
	case !h.ready.Load():
		auth.WriteError(w, http.StatusServiceUnavailable, "starting", "the ACS registry and the store are not loaded yet")
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// Run counts the ACS's Informs by event code until ctx ends. Informs the
// ACS drops for a slow subscriber are not counted (see acs.Server.DroppedEvents).
func (h *API) Run(ctx context.Context) {
	for ev := range h.cfg.ACS.Subscribe(ctx) {
		for _, e := range ev.Events {
			h.metrics.informs.WithLabelValues(e.EventCode).Inc()
		}
	}
}

// Wait waits for the API's job watchers (metrics of jobs submitted
// through it) to see their jobs end; call it after jobs.Runner.Shutdown.
func (h *API) Wait() { h.watchers.Wait() }

// DeviceSummary is a device in the device list.
type DeviceSummary struct {
	ID           string    `json:"id"`
	Serial       string    `json:"serial"`
	Manufacturer string    `json:"manufacturer"`
	OUI          string    `json:"oui"`
	ProductClass string    `json:"product_class"`
	Model        string    `json:"model,omitempty"`
	LastInform   time.Time `json:"last_inform"`
	// Online is true when the device informed within twice its periodic
	// inform interval, or within the API's online window (10 min).
	Online     bool   `json:"online"`
	RemoteAddr string `json:"remote_addr,omitempty"`
}

// model is the device's model name as its last Inform gave it, else its
// product class.
func model(d acs.Device) string {
	for k, v := range d.Params {
		if strings.HasSuffix(k, ".DeviceInfo.ModelName") && v != "" {
			return v
		}
	}
	return d.DeviceId.ProductClass
}

// online reports whether d informed recently enough to count as online.
func (h *API) online(d acs.Device, now time.Time) bool {
	window := h.cfg.OnlineWindow
	for k, v := range d.Params {
		if strings.HasSuffix(k, periodicParam) {
			if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
				window = max(window, 2*time.Duration(secs)*time.Second)
			}
		}
	}
	return !d.LastInform.IsZero() && now.Sub(d.LastInform) <= window
}

func (h *API) summary(d acs.Device, now time.Time) DeviceSummary {
	return DeviceSummary{
		ID: d.ID, Serial: d.DeviceId.SerialNumber, Manufacturer: d.DeviceId.Manufacturer, OUI: d.DeviceId.OUI,
		ProductClass: d.DeviceId.ProductClass, Model: model(d), LastInform: d.LastInform,
		Online: h.online(d, now), RemoteAddr: d.RemoteAddr,
	}
}

// deviceCounts returns how many devices the ACS knows and how many are online.
func (h *API) deviceCounts() (known, online int) {
	now := h.cfg.Now()
	for _, d := range h.cfg.ACS.Devices() {
		known++
		if h.online(d, now) {
			online++
		}
	}
	return known, online
}

// listDevices answers GET /api/v1/devices?serial=&model=&q=: serial and
// model match exactly (case-insensitive), q is a case-insensitive
// substring of the ID, serial, model, manufacturer or product class.
func (h *API) listDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	serial, mdl, text := q.Get("serial"), q.Get("model"), strings.ToLower(q.Get("q"))
	now := h.cfg.Now()
	out := []DeviceSummary{}
	for _, d := range h.cfg.ACS.Devices() {
		s := h.summary(d, now)
		if serial != "" && !strings.EqualFold(s.Serial, serial) {
			continue
		}
		if mdl != "" && !strings.EqualFold(s.Model, mdl) && !strings.EqualFold(s.ProductClass, mdl) {
			continue
		}
		if text != "" && !slices.ContainsFunc([]string{s.ID, s.Serial, s.Model, s.Manufacturer, s.ProductClass}, func(f string) bool {
			return strings.Contains(strings.ToLower(f), text)
		}) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b DeviceSummary) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"devices": out, "count": len(out)})
}

// DeviceDetail is one device: its summary and its last Inform.
type DeviceDetail struct {
	DeviceSummary
	FirstInform time.Time         `json:"first_inform"`
	LastEvents  []string          `json:"last_events,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
}

func (h *API) showDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := h.cfg.ACS.Device(r.PathValue("id"))
	if !ok {
		unknownDevice(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, DeviceDetail{
		DeviceSummary: h.summary(d, h.cfg.Now()), FirstInform: d.FirstInform, LastEvents: d.LastEvents, Params: d.Params,
	})
}

func unknownDevice(w http.ResponseWriter, id string) {
	auth.WriteError(w, http.StatusNotFound, fmt.Sprintf("no device %q has informed this ACS", id),
		"GET /api/v1/devices lists the known devices")
}

// diagnoseRequest is the (optional) body of POST /devices/{id}/diagnose.
type diagnoseRequest struct{}

// fleetRequest is the body of POST /fleet/diagnose.
type fleetRequest struct {
	// Devices are device IDs (or serial numbers).
	Devices []string `json:"devices"`
	// SerialPrefix selects every known device whose serial starts with it.
	SerialPrefix string `json:"serial_prefix"`
	// Concurrency caps this job's devices at once (at most the server's).
	Concurrency int `json:"concurrency"`
}

// jobAccepted is the 202 answer to a diagnosis.
type jobAccepted struct {
	JobID   string   `json:"job_id"`
	Devices []string `json:"devices"`
	Events  string   `json:"events"`
	Status  string   `json:"status"`
}

func (h *API) diagnoseDevice(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		var req diagnoseRequest
		if err := auth.DecodeJSON(w, r, &req, 4<<10); err != nil {
			return
		}
	}
	id := r.PathValue("id")
	if _, ok := h.cfg.ACS.Device(id); !ok {
		unknownDevice(w, id)
		return
	}
	h.submit(w, r, JobKindDiagnose, []string{id}, nil, 1)
}

func (h *API) diagnoseFleet(w http.ResponseWriter, r *http.Request) {
	var req fleetRequest
	if err := auth.DecodeJSON(w, r, &req, 0); err != nil {
		return
	}
	if (len(req.Devices) == 0) == (req.SerialPrefix == "") {
		auth.WriteError(w, http.StatusBadRequest, "give either devices or serial_prefix",
			`e.g. {"devices": ["00D0D0-F650-FLT00"]} or {"serial_prefix": "FLT"}`)
		return
	}
	if req.Concurrency < 0 {
		auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("concurrency is %d", req.Concurrency), "give a positive number, or leave it out for the server's")
		return
	}
	known := h.cfg.ACS.Devices()
	var ids []string
	if req.SerialPrefix != "" {
		for _, d := range known {
			if strings.HasPrefix(d.DeviceId.SerialNumber, req.SerialPrefix) {
				ids = append(ids, d.ID)
			}
		}
		slices.Sort(ids)
		if len(ids) == 0 {
			auth.WriteError(w, http.StatusNotFound, fmt.Sprintf("no known device has a serial starting with %q", req.SerialPrefix), "GET /api/v1/devices lists the known devices")
			return
		}
	} else {
		bySerial := make(map[string]string, len(known))
		byID := make(map[string]bool, len(known))
		for _, d := range known {
			bySerial[d.DeviceId.SerialNumber] = d.ID
			byID[d.ID] = true
		}
		seen := map[string]bool{}
		var unknown []string
		for _, name := range req.Devices {
			id := name
			if !byID[id] {
				id = bySerial[name]
			}
			switch {
			case id == "":
				unknown = append(unknown, name)
			case !seen[id]:
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if len(unknown) > 0 {
			if len(unknown) > 10 {
				unknown = append(unknown[:10], fmt.Sprintf("and %d more", len(unknown)-10))
			}
			auth.WriteError(w, http.StatusNotFound, fmt.Sprintf("unknown devices: %s", strings.Join(unknown, ", ")),
				"give device IDs or serial numbers of devices that have informed this ACS")
			return
		}
	}
	h.submit(w, r, JobKindFleetDiagnose, ids, req, req.Concurrency)
}

// submit starts a diagnosis job over ids with at most limit devices of it
// at once (0: only the runner's limit) and answers 202.
func (h *API) submit(w http.ResponseWriter, r *http.Request, kind string, ids []string, params any, limit int) {
	caller, _ := auth.Caller(r.Context())
	run := h.runDiagnosis
	if limit > 0 && limit < len(ids) {
		sem := make(chan struct{}, limit)
		run = func(ctx context.Context, id string) (any, error) {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			defer func() { <-sem }()
			return h.runDiagnosis(ctx, id)
		}
	}
	jobID, err := h.cfg.Runner.Submit(r.Context(), kind, caller.Name, ids, params, run)
	switch {
	case errors.Is(err, jobs.ErrShuttingDown):
		auth.WriteError(w, http.StatusServiceUnavailable, "the server is shutting down and accepts no new jobs", "retry against the restarted server")
		return
	case err != nil:
		h.log.Error("api: job not submitted", "kind", kind, "devices", len(ids), "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the job could not be stored", "see the server's log")
		return
	}
	h.metrics.jobsSubmitted.WithLabelValues(kind).Inc()
	h.metrics.jobsRunning.Inc()
	h.watch(jobID)
	w.Header().Set("Location", "/api/v1/jobs/"+jobID)
	writeJSON(w, http.StatusAccepted, jobAccepted{JobID: jobID, Devices: ids, Events: "/api/v1/jobs/" + jobID + "/events", Status: store.JobQueued})
}

// watch follows a job to its end for the job metrics.
func (h *API) watch(jobID string) {
	events, unsubscribe, err := h.cfg.Runner.Subscribe(context.Background(), jobID)
	if err != nil {
		h.log.Warn("api: job not watched for metrics", "job", jobID, "err", err)
		h.metrics.jobsRunning.Dec()
		return
	}
	h.watchers.Go(func() {
		defer unsubscribe()
		defer h.metrics.jobsRunning.Dec()
		for ev := range events {
			switch ev.Type {
			case jobs.EventDeviceFinished:
				h.metrics.deviceResults.WithLabelValues(ev.State).Inc()
			case jobs.EventJobFinished:
				h.metrics.jobsFinished.WithLabelValues(ev.State).Inc()
				return
			}
		}
	})
}

// runDiagnosis is the jobs.RunFunc of a diagnosis: it returns the
// device's diagrun.Outcome and records its metrics.
func (h *API) runDiagnosis(ctx context.Context, id string) (any, error) {
	d, ok := h.cfg.ACS.Device(id)
	if !ok {
		return nil, fmt.Errorf("diagnose %s: %w", id, acs.ErrUnknownDevice)
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.DiagnoseTimeout)
	defer cancel()
	start := time.Now()
	out, err := h.cfg.Diagnose(ctx, d)
	h.metrics.observe(id, out, time.Since(start), err)
	if err != nil {
		if len(out.Results) == 0 {
			return nil, err
		}
		return out, err
	}
	return out, nil
}

// diagnoseTR069 is the default DiagnoseFunc: the device's driver through
// the ACS, then diagrun with the gateway's line and IPTV checks.
func (h *API) diagnoseTR069(ctx context.Context, d acs.Device) (diagrun.Outcome, error) {
	reg := catalog.New(catalog.Options{ACS: h.cfg.ACS, Logger: h.log})
	drv, _, err := catalog.OpenTR069(ctx, reg, d)
	if err != nil {
		return diagrun.Outcome{}, fmt.Errorf("open a driver for %s: %w", d.ID, err)
	}
	ident, err := drv.Identify(ctx)
	if err != nil {
		return diagrun.Outcome{}, fmt.Errorf("identify %s: %w", d.ID, err)
	}
	sr, ok := drv.(drivers.StatusReader)
	if !ok {
		return diagrun.Outcome{}, fmt.Errorf("diagnose %s: %w (it is a %s)", d.ID, ErrNotGateway, ident.Kind)
	}
	return diagrun.Run(ctx, diagrun.Site{Gateway: sr, Access: ident.Access},
		diagrun.Options{Timeout: h.cfg.StepTimeout, Logger: h.log.With("device", d.ID)})
}

// JobView is a job and its results as GET /api/v1/jobs/{id} answers.
type JobView struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	CreatedBy   string          `json:"created_by,omitempty"`
	State       string          `json:"state"`
	CreatedAt   time.Time       `json:"created_at"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	Devices     []string        `json:"devices"`
	Total       int             `json:"total"`
	Done        int             `json:"done"`
	Failed      int             `json:"failed"`
	Error       string          `json:"error,omitempty"`
	Params      json.RawMessage `json:"params,omitempty"`
	Results     []ResultView    `json:"results"`
	ResultCount int             `json:"result_count"`
}

// ResultView is one device's stored result.
type ResultView struct {
	DeviceID   string          `json:"device_id"`
	State      string          `json:"state"`
	Error      string          `json:"error,omitempty"`
	FinishedAt time.Time       `json:"finished_at"`
	Result     json.RawMessage `json:"result,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (h *API) showJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j, err := h.cfg.Store.Job(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		auth.WriteError(w, http.StatusNotFound, fmt.Sprintf("no job %q", id), "a diagnosis answers with its job_id")
		return
	}
	var rs []store.JobResult
	if err == nil {
		rs, err = h.cfg.Store.JobResults(r.Context(), id)
	}
	if err != nil {
		h.log.Error("api: job not read", "job", id, "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the job could not be read from the store", "see the server's log")
		return
	}
	v := JobView{
		ID: j.ID, Kind: j.Kind, CreatedBy: j.CreatedBy, State: j.State, CreatedAt: j.CreatedAt,
		StartedAt: timePtr(j.StartedAt), FinishedAt: timePtr(j.FinishedAt), Devices: j.Devices,
		Total: j.Total, Done: j.DoneCount, Failed: j.FailedCount, Error: j.Error, Params: j.Params,
		Results: make([]ResultView, 0, len(rs)), ResultCount: len(rs),
	}
	for _, res := range rs {
		v.Results = append(v.Results, ResultView{DeviceID: res.DeviceID, State: res.State, Error: res.Error,
			FinishedAt: res.FinishedAt, Result: res.Result})
	}
	writeJSON(w, http.StatusOK, v)
}
