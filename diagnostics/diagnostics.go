// Package diagnostics runs the field agent's network probes.
//
// Every probe has one shape (like blackbox_exporter's prober): it takes a
// context that already carries the deadline, a target, a prometheus.Registerer
// for its own metrics and a logger, and returns readings. Run is the edge that
// sets the deadline, registers probe_success and probe_duration_seconds and
// turns the outcome into a JSON-friendly Result.
package diagnostics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics/ndt7"
	"fieldagent/diagnostics/speedtest"
)

// Sentinel errors returned (wrapped) by the probes in this package.
var (
	// ErrInvalidTarget means the target string cannot be used by the probe
	// (empty, unresolvable, or the wrong kind of address).
	ErrInvalidTarget = errors.New("invalid probe target")
	// ErrInvalidOptions means a probe's options failed validation.
	ErrInvalidOptions = errors.New("invalid probe options")
	// ErrPingNotPermitted means neither raw ICMP nor unprivileged ICMP
	// datagram sockets may be opened by this process. Its message names the fix.
	ErrPingNotPermitted = errors.New(`ping not permitted: allow unprivileged ping with ` +
		`sysctl -w net.ipv4.ping_group_range="0 2147483647" ` +
		`or grant raw sockets with setcap cap_net_raw+ep <binary>`)
	// ErrPingLoss means a ping run finished but no echo reply came back.
	ErrPingLoss = errors.New("no ping replies received")
	// ErrTimeout means the probe's deadline passed before it finished.
	ErrTimeout = errors.New("probe deadline exceeded")
)

// DefaultTimeout is the deadline Run uses when it is given a timeout <= 0.
const DefaultTimeout = 30 * time.Second

// Reading is one measured value, e.g. {"ping_rtt_avg", 0.42, "ms"},
// {"ping_loss", 0, "%"} or {"download_mbps", 812.3, "Mbit/s"}.
// Time is when the value was taken; the zero Time means "when the probe ended"
// and Run fills it in.
type Reading struct {
	// Name is the reading's snake_case name, unique within one Result.
	Name string `json:"name"`
	// Value is the measured value in Unit.
	Value float64 `json:"value"`
	// Unit is a human unit such as "ms", "%", "Mbit/s" or "" for counts.
	Unit string `json:"unit"`
	// Time is when the value was measured.
	Time time.Time `json:"time"`
}

// Result is the outcome of one probe run, as stored and reported.
// Duration is encoded in JSON as float seconds (duration_seconds).
type Result struct {
	// Probe is the probe's name, e.g. "ping".
	Probe string `json:"probe"`
	// Target is what was probed, e.g. "192.0.2.1" or "http://speed:8080".
	Target string `json:"target"`
	// Success is true when the probe returned no error.
	Success bool `json:"success"`
	// Readings holds every value the probe produced, also on failure
	// (partial readings are kept).
	Readings []Reading `json:"readings"`
	// Duration is how long the probe ran.
	Duration time.Duration `json:"-"`
	// Detail is a one-line human summary of the readings ("name=value unit, ...").
	Detail string `json:"detail,omitempty"`
	// Err is the probe's error message; empty on success.
	Err string `json:"error,omitempty"`
}

// resultJSON is Result's wire form.
type resultJSON struct {
	Probe           string    `json:"probe"`
	Target          string    `json:"target"`
	Success         bool      `json:"success"`
	Readings        []Reading `json:"readings"`
	DurationSeconds float64   `json:"duration_seconds"`
	Detail          string    `json:"detail,omitempty"`
	Err             string    `json:"error,omitempty"`
}

// MarshalJSON encodes r with Duration as float seconds in duration_seconds.
func (r Result) MarshalJSON() ([]byte, error) {
	readings := r.Readings
	if readings == nil {
		readings = []Reading{}
	}
	return json.Marshal(resultJSON{
		Probe: r.Probe, Target: r.Target, Success: r.Success, Readings: readings,
		DurationSeconds: r.Duration.Seconds(), Detail: r.Detail, Err: r.Err,
	})
}

// UnmarshalJSON decodes the form written by MarshalJSON.
func (r *Result) UnmarshalJSON(b []byte) error {
	var w resultJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Result{
		Probe: w.Probe, Target: w.Target, Success: w.Success, Readings: w.Readings,
		Duration: time.Duration(w.DurationSeconds * float64(time.Second)), Detail: w.Detail, Err: w.Err,
	}
	return nil
}

// Reading returns the reading called name and whether it was present.
func (r Result) Reading(name string) (Reading, bool) {
	for _, rd := range r.Readings {
		if rd.Name == name {
			return rd, true
		}
	}
	return Reading{}, false
}

// Probe is the one shape of every diagnostic. ctx carries the deadline (set by
// Run); target is probe specific (a host for ping, a base URL for the speed
// test); reg receives the probe's own metrics and is never nil when called by
// Run; logger is never nil when called by Run. A probe returns the readings it
// took, also partial ones alongside an error.
type Probe func(ctx context.Context, target string, reg prometheus.Registerer, logger *slog.Logger) ([]Reading, error)

// Probes returns the built-in probes by name, each with default options:
// "ping", "dns", "http", "trace", "speed_download", "speed_upload",
// "ndt7_download" and "ndt7_upload". The map is new on every call
// and may be modified by the caller.
func Probes() map[string]Probe {
	return map[string]Probe{
		"ping":           PingProbe(PingOptions{}),
		"dns":            DNSProbe(DNSOptions{}),
		"http":           HTTPProbe(HTTPOptions{}),
		"trace":          TraceProbe(TraceOptions{}),
		"speed_download": SpeedDownloadProbe(speedtest.ClientOptions{}),
		"speed_upload":   SpeedUploadProbe(speedtest.ClientOptions{}),
		"ndt7_download":  NDT7DownloadProbe(ndt7.ClientOptions{}),
		"ndt7_upload":    NDT7UploadProbe(ndt7.ClientOptions{}),
	}
}

// Run runs probe p (reported under name) against target with the deadline
// timeout (DefaultTimeout when timeout <= 0), registers probe_success and
// probe_duration_seconds on reg and returns the Result. A nil reg means the
// metrics are kept on a private registry and dropped; a nil logger discards.
// Run never panics on registration conflicts: they are logged and skipped.
func Run(ctx context.Context, name string, p Probe, target string, timeout time.Duration, reg prometheus.Registerer, logger *slog.Logger) Result {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	logger = logger.With("probe", name, "target", target)

	successGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_success",
		Help: "Displays whether or not the probe was a success",
	})
	durationGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_duration_seconds",
		Help: "Returns how long the probe took to complete in seconds",
	})
	register(reg, logger, successGauge, durationGauge)

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	start := time.Now()
	logger.Debug("probe starting", "timeout", timeout)
	readings, err := p(ctx, target, reg, logger)
	end := time.Now()
	elapsed := end.Sub(start)

	for i := range readings {
		if readings[i].Time.IsZero() {
			readings[i].Time = end
		}
	}
	res := Result{
		Probe:    name,
		Target:   target,
		Success:  err == nil,
		Readings: readings,
		Duration: elapsed,
		Detail:   summarize(readings),
	}
	durationGauge.Set(elapsed.Seconds())
	if err != nil {
		res.Err = err.Error()
		logger.Info("probe failed", "duration_seconds", elapsed.Seconds(), "err", err)
	} else {
		successGauge.Set(1)
		logger.Debug("probe succeeded", "duration_seconds", elapsed.Seconds())
	}
	return res
}

// register registers each collector, logging instead of panicking when reg
// already holds one (a registry reused across runs).
func register(reg prometheus.Registerer, logger *slog.Logger, cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			logger.Warn("metric not registered", "err", err)
		}
	}
}

// summarize renders readings as "name=value unit, ...".
func summarize(readings []Reading) string {
	parts := make([]string, 0, len(readings))
	for _, r := range readings {
		s := r.Name + "=" + formatValue(r.Value)
		if r.Unit != "" {
			s += " " + r.Unit
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// formatValue renders v with at most three decimals and no trailing zeros.
func formatValue(v float64) string {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// deadlineErr wraps ctx's error as ErrTimeout when the deadline passed, or
// returns the cancellation as is.
func deadlineErr(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, ErrTimeout)
	}
	return fmt.Errorf("%s: %w", what, ctx.Err())
}
