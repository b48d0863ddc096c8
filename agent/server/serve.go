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
	"fieldagent/tr069/genieacs"
)

// Sentinel errors of the remote-support API.
var (
	// ErrNotGateway means a diagnosis was asked of a device that is not a
	// gateway (a set-top box): diag run reads gateways.
	ErrNotGateway = diagrun.ErrNotGateway
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

// jobReader is the subset of *store.Store that the API reads jobs, a
// device's results and the devices of an account with.
type jobReader interface {
	Job(ctx context.Context, id string) (store.Job, error)
	JobResults(ctx context.Context, jobID string) ([]store.JobResult, error)
	FindJobs(ctx context.Context, q store.JobQuery) ([]store.Job, error)
	DeviceResults(ctx context.Context, q store.DeviceResultQuery) ([]store.DeviceResult, error)
	DevicesByAccount(ctx context.Context, account string) ([]string, error)
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
	// (drivers/catalog) and runs diagrun on it, with the gateway's own
	// download and ping tests when SpeedURL is set. A Diagnose that is set
	// ignores a diagnosis's probe selection.
	Diagnose DiagnoseFunc
	// XT2 are the XT-2 routers the API diagnoses over SSH and SNMP (the ACS
	// does not know them); nil means none. Names must be distinct.
	XT2 []XT2Target
	// SpeedURL, if set, is a fieldagent speed server that gateways test
	// against (TR-143 download and ping: the gateway_download and
	// gateway_ping probes); empty leaves those probes out.
	SpeedURL string
	// StatusTimeout bounds GET /devices/{id}/status; 0 means
	// DefaultStatusTimeout.
	StatusTimeout time.Duration
	// DiagnoseTimeout bounds one device's diagnosis; 0 means
	// DefaultDiagnoseTimeout.
	DiagnoseTimeout time.Duration
	// StepTimeout bounds each probe of a diagnosis; 0 keeps diagrun's.
	StepTimeout time.Duration
	// PingTarget, if set, is the host that GET /probe's ping module has the
	// gateway ping; empty means SpeedURL's host (no ping module if both
	// are empty).
	PingTarget string
	// OnlineWindow, if zero, is DefaultOnlineWindow (see DeviceSummary.Online).
	OnlineWindow time.Duration
	// ActionStore records the configure actions in the audit log (act.go);
	// nil means Store when it has the audit methods (a *store.Store has),
	// else the action and audit routes answer 503 and change nothing.
	ActionStore actionStore
	// ActionTimeout bounds one configure action other than a reboot; 0
	// means DefaultActionTimeout.
	ActionTimeout time.Duration
	// RebootTimeout bounds a reboot, the wait for its "1 BOOT" Inform
	// included; 0 means DefaultRebootTimeout.
	RebootTimeout time.Duration
	// ActionPollInterval is how often an action re-reads the device while
	// it waits for the WAN or the LOID registration; 0 means
	// DefaultActionPollInterval.
	ActionPollInterval time.Duration
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

	events *informLog            // recent Informs per device (Run)
	xt2    map[string]*XT2Target // cfg.XT2 by name
	kinds  *drivers.Registry     // finds DeviceSummary.Kind
	// ownDiagnose is set when the caller gave APIConfig.Diagnose.
	ownDiagnose bool
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
	if cfg.StatusTimeout <= 0 {
		cfg.StatusTimeout = DefaultStatusTimeout
	}
	h := &API{cfg: cfg, log: cfg.Logger, events: newInformLog(), xt2: map[string]*XT2Target{},
		kinds: catalog.New(catalog.Options{ACS: cfg.ACS}), ownDiagnose: cfg.Diagnose != nil}
	if h.cfg.Diagnose == nil {
		h.cfg.Diagnose = func(ctx context.Context, d acs.Device) (diagrun.Outcome, error) { return h.diagnoseTR069(ctx, d, nil) }
	}
	for i := range cfg.XT2 {
		x := &h.cfg.XT2[i]
		if x.Name == "" || x.Open == nil {
			return nil, fmt.Errorf("server: NewAPI: XT2[%d] needs a name and an Open function", i)
		}
		if _, dup := h.xt2[x.Name]; dup {
			return nil, fmt.Errorf("server: NewAPI: XT2[%d]: the name %q is taken by another XT-2", i, x.Name)
		}
		h.xt2[x.Name] = x
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
	mux.Handle("GET /api/v1/devices/{id}/status", a.Middleware(auth.RoleRead, http.HandlerFunc(h.deviceStatus)))
	mux.Handle("GET /api/v1/devices/{id}/events", a.Middleware(auth.RoleRead, http.HandlerFunc(h.deviceEvents)))
	mux.Handle("GET /api/v1/devices/{id}/findings", a.Middleware(auth.RoleRead, http.HandlerFunc(h.deviceFindings)))
	mux.Handle("POST /api/v1/devices/{id}/diagnose", a.Middleware(auth.RoleDiagnose, http.HandlerFunc(h.diagnoseDevice)))
	mux.Handle("POST /api/v1/fleet/diagnose", a.Middleware(auth.RoleDiagnose, http.HandlerFunc(h.diagnoseFleet)))
	mux.Handle("GET /api/v1/jobs", a.Middleware(auth.RoleRead, http.HandlerFunc(h.listJobs)))
	mux.Handle("GET /api/v1/jobs/{id}", a.Middleware(auth.RoleRead, http.HandlerFunc(h.showJob)))
	mux.Handle("DELETE /api/v1/jobs/{id}", a.Middleware(auth.RoleDiagnose, http.HandlerFunc(h.cancelJob)))
	mux.Handle("POST /api/v1/jobs/{id}/cancel", a.Middleware(auth.RoleDiagnose, http.HandlerFunc(h.cancelJob)))
	mux.Handle("GET /api/v1/devices/{id}/actions", a.Middleware(auth.RoleRead, http.HandlerFunc(h.listActions)))
	mux.Handle("POST /api/v1/devices/{id}/actions/{action}", a.Middleware(auth.RoleConfigure, h.newActor()))
	mux.Handle("GET /api/v1/audit", a.Middleware(auth.RoleConfigure, http.HandlerFunc(h.listAudit)))
	mux.Handle("GET /api/v1/jobs/{id}/events", a.Middleware(auth.RoleRead,
		jobs.SSEHandler(cfg.Runner, func(r *http.Request) string { return r.PathValue("id") })))
	mux.Handle("GET /probe", a.Middleware(auth.RoleDiagnose, http.HandlerFunc(h.probe)))
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

// Run counts the ACS's Informs by event code and keeps each device's
// recent ones (GET /devices/{id}/events) until ctx ends. Informs the ACS
// drops for a slow subscriber are not seen (see acs.Server.DroppedEvents).
func (h *API) Run(ctx context.Context) {
	for ev := range h.cfg.ACS.Subscribe(ctx) {
		h.events.add(ev)
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
	ID string `json:"id"`
	// Kind is the driver family: e8 (a gateway), itv (a set-top box), xt2
	// (an XT-2 from the config), or unknown (no driver matches the Inform).
	Kind         string `json:"kind"`
	Serial       string `json:"serial,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	OUI          string `json:"oui,omitempty"`
	ProductClass string `json:"product_class,omitempty"`
	Model        string `json:"model,omitempty"`
	// LastInform is zero (left out) for an XT-2.
	LastInform time.Time `json:"last_inform,omitzero"`
	// Online is true when the device informed within twice its periodic
	// inform interval, or within the API's online window (10 min); false
	// for an XT-2, whose state the list does not know.
	Online     bool   `json:"online"`
	RemoteAddr string `json:"remote_addr,omitempty"`
	// Address is an XT-2's SSH address.
	Address string `json:"address,omitempty"`
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
		ID: d.ID, Kind: h.kind(d), Serial: d.DeviceId.SerialNumber, Manufacturer: d.DeviceId.Manufacturer, OUI: d.DeviceId.OUI,
		ProductClass: d.DeviceId.ProductClass, Model: model(d), LastInform: d.LastInform,
		Online: h.online(d, now), RemoteAddr: d.RemoteAddr,
	}
}

// deviceCounts returns how many devices the ACS knows and how many are online.
func (h *API) deviceCounts() (known, online int) {
	now := h.cfg.Now()
	if g, ok := h.cfg.ACS.(remoteSearcher); ok {
		return g.counts(now.Add(-h.cfg.OnlineWindow))
	}
	h.eachDevice(func(d *acs.Device) {
		known++
		if h.online(*d, now) {
			online++
		}
	})
	return known, online
}

// deviceIterator is an ACS that can show its devices without copying them
// (*acs.Server).
type deviceIterator interface {
	EachDevice(fn func(d *acs.Device) bool)
}

// eachDevice calls fn for every device the ACS knows, in no order. fn must
// not keep d or its maps, nor call the ACS.
func (h *API) eachDevice(fn func(d *acs.Device)) {
	if it, ok := h.cfg.ACS.(deviceIterator); ok {
		it.EachDevice(func(d *acs.Device) bool { fn(d); return true })
		return
	}
	devs := h.cfg.ACS.Devices()
	for i := range devs {
		fn(&devs[i])
	}
}

// DeviceDetail is one device: its summary and its last Inform.
type DeviceDetail struct {
	DeviceSummary
	FirstInform time.Time         `json:"first_inform,omitzero"`
	LastEvents  []string          `json:"last_events,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
}

func (h *API) showDevice(w http.ResponseWriter, r *http.Request) {
	if x, ok := h.xt2[r.PathValue("id")]; ok {
		writeJSON(w, http.StatusOK, DeviceDetail{DeviceSummary: x.summary()})
		return
	}
	d, ok := h.cfg.ACS.Device(r.PathValue("id"))
	if !ok {
		unknownDevice(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, DeviceDetail{
		DeviceSummary: h.summary(d, h.cfg.Now()), FirstInform: d.FirstInform, LastEvents: d.LastEvents, Params: publicParams(d.Params),
	})
}

func unknownDevice(w http.ResponseWriter, id string) {
	auth.WriteError(w, http.StatusNotFound, fmt.Sprintf("no device %q has informed this ACS", id),
		"GET /api/v1/devices lists the known devices")
}

// diagnoseRequest is the (optional) body of POST /devices/{id}/diagnose.
type diagnoseRequest struct {
	// Probes, if not empty, runs only these probes (diagrun.Selects).
	Probes []string `json:"probes,omitempty"`
}

// fleetRequest is the body of POST /fleet/diagnose.
type fleetRequest struct {
	// Devices are device IDs (or serial numbers, or XT-2 names).
	Devices []string `json:"devices"`
	// SerialPrefix selects every known device whose serial starts with it.
	SerialPrefix string `json:"serial_prefix"`
	// Concurrency caps this job's devices at once (at most the server's).
	Concurrency int `json:"concurrency"`
	// Probes, if not empty, runs only these probes (diagrun.Selects).
	Probes []string `json:"probes,omitempty"`
	// Query selects the devices with a GenieACS (MongoDB-style) query,
	// when the server's ACS is the operator's GenieACS.
	Query json.RawMessage `json:"query,omitempty"`
}

// jobAccepted is the 202 answer to a diagnosis.
type jobAccepted struct {
	JobID   string   `json:"job_id"`
	Devices []string `json:"devices"`
	Events  string   `json:"events"`
	Status  string   `json:"status"`
}

func (h *API) diagnoseDevice(w http.ResponseWriter, r *http.Request) {
	var req diagnoseRequest
	if r.ContentLength != 0 {
		if err := auth.DecodeJSON(w, r, &req, 4<<10); err != nil {
			return
		}
	}
	if !checkProbes(w, req.Probes) {
		return
	}
	id := r.PathValue("id")
	_, isXT2 := h.xt2[id]
	if _, ok := h.cfg.ACS.Device(id); !ok && !isXT2 {
		unknownDevice(w, id)
		return
	}
	var params any
	if len(req.Probes) > 0 {
		params = req
	}
	h.submit(w, r, JobKindDiagnose, []string{id}, params, 1, req.Probes)
}

func (h *API) diagnoseFleet(w http.ResponseWriter, r *http.Request) {
	var req fleetRequest
	if err := auth.DecodeJSON(w, r, &req, 0); err != nil {
		return
	}
	given := 0
	for _, g := range []bool{len(req.Devices) > 0, req.SerialPrefix != "", len(req.Query) > 0} {
		if g {
			given++
		}
	}
	if given != 1 {
		auth.WriteError(w, http.StatusBadRequest, "give one of devices, serial_prefix or query",
			`e.g. {"devices": ["00D0D0-F650-FLT00"]}, {"serial_prefix": "FLT"}, or over GenieACS {"query": {"_deviceId._ProductClass": "F650"}}`)
		return
	}
	if req.Concurrency < 0 {
		auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("concurrency is %d", req.Concurrency), "give a positive number, or leave it out for the server's")
		return
	}
	if !checkProbes(w, req.Probes) {
		return
	}
	var ids []string
	if len(req.Query) > 0 {
		sel, ok := h.cfg.ACS.(querySelector)
		if !ok {
			auth.WriteError(w, http.StatusBadRequest, "query selects devices on GenieACS, and this server's ACS is its own",
				"give devices or serial_prefix")
			return
		}
		q := string(req.Query)
		if len(req.Query) > 0 && req.Query[0] == '"' { // the query as a JSON string
			if err := json.Unmarshal(req.Query, &q); err != nil {
				auth.WriteError(w, http.StatusBadRequest, "query is not a JSON object or string", err.Error())
				return
			}
		}
		ids, err := sel.Select(r.Context(), q)
		switch {
		case errors.Is(err, genieacs.ErrBadRequest):
			auth.WriteError(w, http.StatusBadRequest, "GenieACS refused the query: "+err.Error(), "a MongoDB-style query on the device documents, e.g. {\"_tags\": \"vip\"}")
			return
		case err != nil:
			h.log.Error("api: GenieACS query failed", "err", err)
			auth.WriteError(w, http.StatusBadGateway, "GenieACS could not be asked: "+err.Error(), "check acs.nbi_url and that GenieACS's NBI is up")
			return
		case len(ids) == 0:
			auth.WriteError(w, http.StatusNotFound, "the query matches no device on GenieACS", "")
			return
		}
		h.submit(w, r, JobKindFleetDiagnose, ids, req, req.Concurrency, req.Probes)
		return
	}
	known := h.cfg.ACS.Devices()
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
		for name := range h.xt2 {
			byID[name] = true
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
	h.submit(w, r, JobKindFleetDiagnose, ids, req, req.Concurrency, req.Probes)
}

// submit starts a diagnosis job over ids (of the probes selected, all if
// none) with at most limit devices of it at once (0: only the runner's
// limit) and answers 202.
func (h *API) submit(w http.ResponseWriter, r *http.Request, kind string, ids []string, params any, limit int, probes []string) {
	caller, _ := auth.Caller(r.Context())
	run := func(ctx context.Context, id string) (any, error) { return h.runDiagnosis(ctx, id, probes) }
	jobID, err := h.cfg.Runner.SubmitWith(r.Context(), kind, caller.Name, ids, params, run, jobs.SubmitOptions{Limit: limit})
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
// device's diagrun.Outcome (of the probes selected, all if none) and
// records its metrics. id is an ACS device or an XT-2 of the config.
func (h *API) runDiagnosis(ctx context.Context, id string, probes []string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.DiagnoseTimeout)
	defer cancel()
	start := time.Now()
	var out diagrun.Outcome
	var err error
	if x, isXT2 := h.xt2[id]; isXT2 {
		out, err = h.diagnoseXT2(ctx, x, probes)
	} else if d, ok := h.cfg.ACS.Device(id); !ok {
		return nil, fmt.Errorf("diagnose %s: %w", id, acs.ErrUnknownDevice)
	} else if h.ownDiagnose {
		out, err = h.cfg.Diagnose(ctx, d)
	} else {
		out, err = h.diagnoseTR069(ctx, d, probes)
	}
	h.metrics.observe(id, out, time.Since(start), err)
	if err != nil {
		if len(out.Results) == 0 {
			return nil, err
		}
		return out, err
	}
	return out, nil
}

// diagnoseTR069 is the default diagnosis: the device's driver through the
// ACS, then diagrun with the gateway's line and IPTV checks (and its own
// download and ping tests against SpeedURL, if set).
func (h *API) diagnoseTR069(ctx context.Context, d acs.Device, probes []string) (diagrun.Outcome, error) {
	return diagrun.DiagnoseTR069(ctx, h.cfg.ACS, d, diagrun.TR069Options{SpeedURL: h.cfg.SpeedURL, GatewayBytes: gatewayTestBytes,
		Options: diagrun.Options{Timeout: h.cfg.StepTimeout, Logger: h.log, Probes: probes}})
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

// JobViewOf is the view of a stored job and its results.
func JobViewOf(j store.Job, rs []store.JobResult) JobView {
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
	return v
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
	v := JobViewOf(j, rs)
	writeJSON(w, http.StatusOK, v)
}
