package server

// This file is GET /probe, a blackbox_exporter-style endpoint: Prometheus
// names a device as the target and a module, and the API runs that module
// against the device there and then and answers with probe_success,
// probe_duration_seconds and the module's readings as gauges, from a fresh
// registry per request (docs/api.md). It also holds the table that turns a
// diagnosis's readings into gauges, which /metrics uses per device.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/server/auth"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/gateway"
	"fieldagent/diagnostics/line"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/tr069/acs"
)

// Modules of GET /probe.
const (
	// ProbeModuleLine reads the gateway's line: optical or DSL, WAN, LAN.
	ProbeModuleLine = "line"
	// ProbeModulePing has the gateway ping APIConfig.PingTarget (TR-098
	// IPPingDiagnostics).
	ProbeModulePing = "ping"
	// ProbeModuleSpeed has the gateway download from and upload to
	// APIConfig.SpeedURL (TR-143).
	ProbeModuleSpeed = "speed"
	// ProbeModuleDiag runs the API's whole diagnosis (APIConfig.Diagnose)
	// and adds its verdict.
	ProbeModuleDiag = "diag"
)

// Defaults of GET /probe.
const (
	// DefaultProbeSpeedBytes is the size of the speed module's download
	// and upload (10 MB, as diag run's smallest gateway test).
	DefaultProbeSpeedBytes = 10_000_000
	// ProbeTimeoutMargin is taken off the scrape timeout Prometheus sends
	// (X-Prometheus-Scrape-Timeout-Seconds) so that the answer arrives in
	// time, as blackbox_exporter's timeout offset does.
	ProbeTimeoutMargin = 500 * time.Millisecond
	// scrapeTimeoutHeader carries Prometheus's scrape timeout in seconds.
	scrapeTimeoutHeader = "X-Prometheus-Scrape-Timeout-Seconds"
)

// Sentinel errors of /probe's modules (they end up in the log, the answer
// being probe_success 0).
var (
	// ErrUnknownTarget means /probe's target names no device the ACS knows.
	ErrUnknownTarget = errors.New("no device with this ID or serial has informed the ACS")
	// ErrProbeUnsupported means the device's driver cannot run the module's
	// test (e.g. ping on a set-top box).
	ErrProbeUnsupported = errors.New("the device cannot run this probe")
)

// probeModule is one module of GET /probe.
type probeModule struct {
	// timeout bounds the module when the scrape gives none (or a longer one).
	timeout time.Duration
	// unavailable, if not empty, is why the server cannot run the module
	// (a missing setting): the request is answered 400.
	unavailable string
	// run probes the device; its Outcome's Results are the steps.
	run func(ctx context.Context, d acs.Device, log *slog.Logger) (diagrun.Outcome, error)
}

// probeModules returns the modules by name, built from the API's config.
func (h *API) probeModules() map[string]probeModule {
	step := h.cfg.StepTimeout
	if step <= 0 {
		step = 30 * time.Second
	}
	speedURL := strings.TrimSuffix(h.cfg.SpeedURL, "/")
	pingTarget := h.cfg.PingTarget
	if pingTarget == "" && speedURL != "" {
		pingTarget = diagrun.HostOf(speedURL)
	}
	const size = DefaultProbeSpeedBytes
	m := map[string]probeModule{
		ProbeModuleLine: {timeout: step, run: h.probeDevice(func(drv drivers.Identifier, id drivers.Identity, facts map[string]string) ([]probeStep, error) {
			sr, ok := drv.(drivers.StatusReader)
			if !ok {
				return nil, fmt.Errorf("%w: it is a %s, not a gateway", ErrProbeUnsupported, id.Kind)
			}
			lo := line.Options{Access: id.Access, Logger: h.log, OnFacts: func(f map[string]string) { maps.Copy(facts, f) }}
			return []probeStep{{"line", "gateway", line.Probe(sr, lo)}}, nil
		})},
		ProbeModulePing: {timeout: step, run: h.probeDevice(func(drv drivers.Identifier, id drivers.Identity, _ map[string]string) ([]probeStep, error) {
			p, ok := drv.(drivers.Pinger)
			if !ok {
				return nil, fmt.Errorf("%w: a %s cannot ping", ErrProbeUnsupported, id.Kind)
			}
			return []probeStep{{"gateway_ping", pingTarget, gateway.PingProbe(p, drivers.PingOptions{Count: 5})}}, nil
		})},
		ProbeModuleSpeed: {timeout: 4 * step, run: h.probeDevice(func(drv drivers.Identifier, id drivers.Identity, _ map[string]string) ([]probeStep, error) {
			dt, ok := drv.(drivers.DownloadTester)
			if !ok {
				return nil, fmt.Errorf("%w: a %s has no download test", ErrProbeUnsupported, id.Kind)
			}
			steps := []probeStep{{"gateway_download", speedURL + "/file/" + strconv.FormatInt(size, 10), gateway.DownloadProbe(dt, drivers.TransferOptions{})}}
			if ut, ok := drv.(drivers.UploadTester); ok {
				steps = append(steps, probeStep{"gateway_upload", speedURL + "/upload", gateway.UploadProbe(ut, size, drivers.TransferOptions{})})
			}
			return steps, nil
		})},
		ProbeModuleDiag: {timeout: h.cfg.DiagnoseTimeout, run: func(ctx context.Context, d acs.Device, _ *slog.Logger) (diagrun.Outcome, error) {
			return h.diagnoseForProbe(ctx, d)
		}},
	}
	if pingTarget == "" {
		m[ProbeModulePing] = probeModule{unavailable: "the server has no ping target: set diag.ping_target (or diag.speed_url) in its config"}
	}
	if speedURL == "" {
		m[ProbeModuleSpeed] = probeModule{unavailable: "the server has no speed server: set diag.speed_url in its config"}
	}
	return m
}

// diagnoseForProbe is the diag module: the API's diagnosis of d, as a
// diagnose job runs it with every probe (without recording it in /metrics).
func (h *API) diagnoseForProbe(ctx context.Context, d acs.Device) (diagrun.Outcome, error) {
	if h.cfg.Diagnose != nil {
		return h.cfg.Diagnose(ctx, d)
	}
	return h.diagnoseTR069(ctx, d, nil)
}

// probeStep is one probe of a module.
type probeStep struct {
	name, target string
	probe        diagnostics.Probe
}

// probeDevice returns a module's run function: it opens the device's
// driver through the ACS, identifies it, and runs the steps that steps
// builds from the driver, each with the module's deadline. facts collects
// what the steps find (line's wan_status).
func (h *API) probeDevice(steps func(drivers.Identifier, drivers.Identity, map[string]string) ([]probeStep, error)) func(context.Context, acs.Device, *slog.Logger) (diagrun.Outcome, error) {
	return func(ctx context.Context, d acs.Device, log *slog.Logger) (diagrun.Outcome, error) {
		out := diagrun.Outcome{Facts: map[string]string{}}
		reg := catalog.New(catalog.Options{ACS: h.cfg.ACS, Logger: log})
		drv, _, err := catalog.OpenTR069(ctx, reg, d)
		if err != nil {
			return out, fmt.Errorf("open a driver for %s: %w", d.ID, err)
		}
		ident, err := drv.Identify(ctx)
		if err != nil {
			return out, fmt.Errorf("identify %s: %w", d.ID, err)
		}
		ss, err := steps(drv, ident, out.Facts)
		if err != nil {
			return out, fmt.Errorf("probe %s: %w", d.ID, err)
		}
		timeout := time.Duration(0) // diagnostics.Run's default; ctx carries the module's deadline
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		for _, s := range ss {
			// The step's own metrics stay private: the answer's gauges come
			// from the readings (readingGauges), the same for every module.
			out.Results = append(out.Results, diagnostics.Run(ctx, s.name, s.probe, s.target, timeout, nil, log))
		}
		return out, ctx.Err()
	}
}

// probeTimeout is the module's deadline: the scrape's timeout
// (?timeout=, or Prometheus's header) less ProbeTimeoutMargin when that
// is shorter than the module's own, as blackbox_exporter computes it.
func probeTimeout(r *http.Request, module time.Duration) (time.Duration, error) {
	raw, from := r.URL.Query().Get("timeout"), "timeout"
	if raw == "" {
		raw, from = r.Header.Get(scrapeTimeoutHeader), scrapeTimeoutHeader
	}
	if raw == "" {
		return module, nil
	}
	scrape, err := time.ParseDuration(raw)
	if err != nil {
		secs, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil || secs <= 0 || secs > 1e6 {
			return 0, fmt.Errorf("%s %q is neither seconds nor a duration such as 30s", from, raw)
		}
		scrape = time.Duration(secs * float64(time.Second))
	}
	if scrape <= 0 {
		return 0, fmt.Errorf("%s %q is not positive", from, raw)
	}
	if limit := scrape - ProbeTimeoutMargin; limit > 0 && limit < module {
		return limit, nil
	}
	if scrape-ProbeTimeoutMargin <= 0 && scrape < module {
		return scrape, nil // too short for the margin: use it whole
	}
	return module, nil
}

// resolveDevice finds a device by ID, else by serial number.
func (h *API) resolveDevice(target string) (acs.Device, bool) {
	if d, ok := h.cfg.ACS.Device(target); ok {
		return d, true
	}
	for _, d := range h.cfg.ACS.Devices() {
		if d.DeviceId.SerialNumber == target {
			return d, true
		}
	}
	return acs.Device{}, false
}

// probe answers GET /probe?target=&module=[&timeout=]: it runs the module
// against the device synchronously and answers with the Prometheus text
// exposition of a fresh registry. A bad request (no target, an unknown or
// unavailable module, a bad timeout) is 400; a target no device matches,
// and a probe that fails, answer 200 with probe_success 0 (and a log line),
// as blackbox_exporter does for a host it cannot reach.
func (h *API) probe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target, name := q.Get("target"), q.Get("module")
	modules := h.probeModules()
	mod, ok := modules[name]
	if !ok {
		auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("unknown module %q", name),
			"module is one of "+strings.Join(slices.Sorted(maps.Keys(modules)), ", "))
		return
	}
	if mod.unavailable != "" {
		auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("module %q is not available", name), mod.unavailable)
		return
	}
	if target == "" {
		auth.WriteError(w, http.StatusBadRequest, "target parameter is missing", "give a device ID or serial number: /probe?target=SERIAL&module="+name)
		return
	}
	timeout, err := probeTimeout(r, mod.timeout)
	if err != nil {
		auth.WriteError(w, http.StatusBadRequest, err.Error(), "give the timeout in seconds (e.g. 9.5) or as a duration (e.g. 10s)")
		return
	}
	log := h.log.With("probe_module", name, "target", target)

	reg := prometheus.NewRegistry()
	success := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_success", Help: "Whether the probe succeeded (every step ran without error)."})
	duration := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_duration_seconds", Help: "How long the probe took, opening the device's driver included."})
	reg.MustRegister(success, duration)

	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	start := time.Now()
	var out diagrun.Outcome
	d, ok := h.resolveDevice(target)
	if ok {
		out, err = mod.run(ctx, d, log.With("device", d.ID))
	} else {
		err = fmt.Errorf("probe %q: %w", target, ErrUnknownTarget)
	}
	duration.Set(time.Since(start).Seconds())
	ok = err == nil && len(out.Results) > 0
	for _, res := range out.Results {
		ok = ok && res.Success
	}
	if ok {
		success.Set(1)
	}
	exportProbe(reg, out)
	switch {
	case err != nil:
		log.Warn("probe failed", "timeout", timeout, "err", err)
	case !ok:
		log.Info("probe failed", "steps", stepErrors(out.Results))
	default:
		log.Debug("probe succeeded", "duration_seconds", time.Since(start).Seconds())
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPromLogger{h.log}}).ServeHTTP(w, r)
}

// stepErrors names the failed steps and their errors for the log.
func stepErrors(rs []diagnostics.Result) string {
	var parts []string
	for _, r := range rs {
		if !r.Success {
			parts = append(parts, r.Probe+": "+r.Err)
		}
	}
	return strings.Join(parts, "; ")
}

// exportProbe registers a probe's gauges on a per-request registry: each
// step's success, the readings' gauges, the WAN status and, for a whole
// diagnosis, its verdict.
func exportProbe(reg prometheus.Registerer, out diagrun.Outcome) {
	if len(out.Results) > 0 {
		steps := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "probe_step_success", Help: "Whether each step of the probe succeeded."}, []string{"step"})
		for _, r := range out.Results {
			steps.WithLabelValues(r.Probe).Set(boolValue(r.Success))
		}
		reg.MustRegister(steps)
	}
	values := readingValues(out.Results)
	for _, g := range readingGauges() {
		vs, ok := values[g.name]
		if !ok {
			continue
		}
		if g.label == "" {
			gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: g.name, Help: g.help})
			gauge.Set(vs[""])
			reg.MustRegister(gauge)
			continue
		}
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: g.name, Help: g.help}, []string{g.label})
		for lv, v := range vs {
			vec.WithLabelValues(lv).Set(v)
		}
		reg.MustRegister(vec)
	}
	if status, lastErr, ok := wanStatus(out.Facts); ok {
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: wanStatusName, Help: wanStatusHelp}, []string{"status", "last_error"})
		vec.WithLabelValues(status, lastErr).Set(1)
		reg.MustRegister(vec)
	}
	if out.Report.Status != "" {
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "probe_diagnosis_status",
			Help: "The diagnosis's verdict: 1 for its status (ok, skip, warn or fail), 0 for the others."}, []string{"status"})
		for _, s := range []verdict.Status{verdict.StatusOK, verdict.StatusSkip, verdict.StatusWarn, verdict.StatusFail} {
			vec.WithLabelValues(string(s)).Set(boolValue(out.Report.Status == s))
		}
		findings := prometheus.NewGauge(prometheus.GaugeOpts{Name: "probe_diagnosis_findings", Help: "Findings of the diagnosis."})
		findings.Set(float64(len(out.Report.Findings)))
		reg.MustRegister(vec, findings)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// The WAN status info gauge, from the line probe's wan_status and
// wan_last_error facts (e.g. a PPPoE dial refused with
// ERROR_AUTHENTICATION_FAILURE).
const (
	wanStatusName = "probe_wan_status_info"
	wanStatusHelp = "The internet WAN connection's status and last error as the gateway reports them (always 1)."
)

// wanStatus returns the WAN status facts, and false when the probe read none.
func wanStatus(facts map[string]string) (status, lastErr string, ok bool) {
	status, ok = facts["wan_status"]
	return status, facts["wan_last_error"], ok && status != ""
}

// readingGauge maps the readings of a diagnosis to one gauge.
type readingGauge struct {
	name, help string
	// label is the gauge's own label ("direction", "stat"); "" for none.
	label string
	// readings maps a reading's name to the label's value ("" without a label).
	readings map[string]string
	// scale multiplies a reading into the gauge's unit (ms to s: 0.001,
	// percent to a ratio: 0.01); 0 means 1.
	scale float64
}

// readingGauges are the gauges that /metrics (per device) and /probe give
// a diagnosis's readings. Names follow the probes' own (diagnostics,
// diagnostics/line, diagnostics/gateway), in base units where the probes
// have one.
func readingGauges() []readingGauge {
	return []readingGauge{
		{name: "probe_optical_rx_power_dbm", help: "PON optical receive power in dBm.", readings: map[string]string{"optical_rx_power_dbm": ""}},
		{name: "probe_optical_tx_power_dbm", help: "PON optical transmit power in dBm.", readings: map[string]string{"optical_tx_power_dbm": ""}},
		{name: "probe_optical_temperature_celsius", help: "PON transceiver temperature.", readings: map[string]string{"optical_temperature_c": ""}},
		{name: "probe_dsl_sync_rate_kbps", help: "DSL sync rate in kbit/s, by direction.", label: "direction",
			readings: map[string]string{"dsl_sync_down_kbps": "down", "dsl_sync_up_kbps": "up"}},
		{name: "probe_dsl_snr_margin_db", help: "DSL noise margin in dB, by direction.", label: "direction",
			readings: map[string]string{"dsl_snr_margin_down_db": "down", "dsl_snr_margin_up_db": "up"}},
		{name: "probe_dsl_attenuation_db", help: "DSL line attenuation in dB, by direction.", label: "direction",
			readings: map[string]string{"dsl_attenuation_down_db": "down", "dsl_attenuation_up_db": "up"}},
		{name: "probe_dsl_crc_errors", help: "DSL CRC errors counted by the modem.", readings: map[string]string{"dsl_crc_errors": ""}},
		{name: "probe_wan_up", help: "Whether the internet WAN (PPPoE or IPoE) is connected with an address.", readings: map[string]string{"wan_up": ""}},
		{name: "probe_lan_hosts", help: "Active hosts the gateway sees on its LAN.", readings: map[string]string{"lan_hosts": ""}},
		{name: "probe_ping_rtt_seconds", help: "Round-trip time of the laptop's ping, by stat.", label: "stat", scale: 1e-3,
			readings: map[string]string{"ping_rtt_min": "min", "ping_rtt_avg": "avg", "ping_rtt_max": "max"}},
		{name: "probe_ping_loss_ratio", help: "Fraction of the laptop's echo requests without a reply.", scale: 0.01, readings: map[string]string{"ping_loss": ""}},
		{name: "probe_speed_mbps", help: "The laptop's speed test throughput in Mbit/s, by direction.", label: "direction",
			readings: map[string]string{"download_mbps": "download", "upload_mbps": "upload"}},
		{name: "probe_gateway_download_mbps", help: "Download throughput the gateway measured itself (TR-143), Mbit/s.", readings: map[string]string{"gateway_download_mbps": ""}},
		{name: "probe_gateway_upload_mbps", help: "Upload throughput the gateway measured itself (TR-143), Mbit/s.", readings: map[string]string{"gateway_upload_mbps": ""}},
		{name: "probe_gateway_ping_rtt_seconds", help: "Round-trip time of the gateway's own ping, by stat.", label: "stat", scale: 1e-3,
			readings: map[string]string{"gateway_ping_rtt_min": "min", "gateway_ping_rtt_avg": "avg", "gateway_ping_rtt_max": "max"}},
		{name: "probe_gateway_ping_loss_ratio", help: "Fraction of the gateway's echo requests without a reply.", scale: 0.01, readings: map[string]string{"gateway_ping_loss": ""}},
	}
}

// readingValues returns, by gauge name and label value, the gauges'
// values in rs (a reading that occurs twice: the last one).
func readingValues(rs []diagnostics.Result) map[string]map[string]float64 {
	type target struct {
		gauge, label string
		scale        float64
	}
	index := map[string]target{}
	for _, g := range readingGauges() {
		scale := g.scale
		if scale == 0 {
			scale = 1
		}
		for reading, lv := range g.readings {
			index[reading] = target{g.name, lv, scale}
		}
	}
	out := map[string]map[string]float64{}
	for _, r := range rs {
		for _, rd := range r.Readings {
			t, ok := index[rd.Name]
			if !ok {
				continue
			}
			if out[t.gauge] == nil {
				out[t.gauge] = map[string]float64{}
			}
			out[t.gauge][t.label] = rd.Value * t.scale
		}
	}
	return out
}
