package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/order"
	"fieldagent/agent/report"
	"fieldagent/agent/store"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/diagnostics/verdict"
)

func (ru *run) pingTarget() string {
	if ru.Diag.PingTarget != "" {
		return ru.Diag.PingTarget
	}
	if u, err := url.Parse(ru.Diag.SpeedURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return ""
}

// probe runs one probe with a fresh metrics registry and stores its
// readings, whatever the outcome.
func (ru *run) probe(ctx context.Context, step string, p diagnostics.Probe, target string) ([]diagnostics.Reading, error) {
	rs, err := p(ctx, target, prometheus.NewRegistry(), ru.Logger)
	if rerr := ru.record(ctx, step, rs); rerr != nil {
		return rs, rerr
	}
	if err != nil {
		return rs, fmt.Errorf("%s %s: %w", step, target, err)
	}
	return rs, nil
}

// record stores readings with the step run that took them, then adds them
// to the outcome.
func (ru *run) record(ctx context.Context, step string, rs []diagnostics.Reading) error {
	id := stepIDOf(ctx)
	srs := make([]store.Reading, 0, len(rs))
	for _, r := range rs {
		srs = append(srs, store.Reading{StepID: id, Name: r.Name, Value: r.Value, Unit: r.Unit, At: r.Time})
	}
	if err := ru.Store.AddReadings(ctx, ru.out.OrderID, step, srs); err != nil {
		return fmt.Errorf("store readings: %w", err)
	}
	for _, r := range rs {
		ru.out.Readings = append(ru.out.Readings, report.Reading{Step: step, Name: r.Name, Value: r.Value, Unit: r.Unit, At: r.Time})
	}
	return nil
}

func (ru *run) ping(ctx context.Context) (string, error) {
	target := ru.pingTarget()
	if target == "" {
		return "no ping target configured (diag.ping_target)", errSkipped
	}
	opts := ru.Ping
	if opts.Count == 0 {
		opts = diagnostics.PingOptions{Count: 5, Interval: 100 * time.Millisecond, Mode: opts.Mode}
	}
	rs, err := ru.probe(ctx, StepPing, pingOnceMore(diagnostics.PingProbe(opts)), target)
	if errors.Is(err, diagnostics.ErrPingNotPermitted) {
		// A laptop policy, not a customer fault: say how to enable it.
		return err.Error(), errSkipped
	}
	if err != nil {
		return "", err
	}
	return summary(rs), nil
}

// pingSettle is how long pingOnceMore waits before its second try.
const pingSettle = 2 * time.Second

// pingOnceMore runs p again, once, after pingSettle when every echo was
// lost: right after a WAN comes up the first echoes can be lost while the
// gateway's routes and NAT settle, which is not yet a fault.
func pingOnceMore(p diagnostics.Probe) diagnostics.Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, log *slog.Logger) ([]diagnostics.Reading, error) {
		rs, err := p(ctx, target, reg, log)
		if !errors.Is(err, diagnostics.ErrPingLoss) {
			return rs, err
		}
		if log != nil {
			log.Info("no ping replies just after the WAN came up; trying once more", "target", target, "wait", pingSettle)
		}
		t := time.NewTimer(pingSettle)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return rs, err
		case <-t.C:
		}
		return p(ctx, target, prometheus.NewRegistry(), log)
	}
}

func (ru *run) speed(ctx context.Context) (string, error) {
	if ru.Diag.SpeedURL == "" {
		return "no speed server configured (diag.speed_url)", errSkipped
	}
	p := diagnostics.SpeedDownloadProbe(speedtest.ClientOptions{Duration: ru.Diag.SpeedDuration})
	rs, err := ru.probe(ctx, StepSpeed, p, ru.Diag.SpeedURL)
	if err != nil {
		return "", err
	}
	return summary(rs), nil
}

// summary names the headline readings of a probe result.
func summary(rs []diagnostics.Reading) string {
	s := ""
	for _, r := range rs {
		switch r.Name {
		case "ping_loss", "ping_rtt_avg", "ping_jitter", "download_mbps", "upload_mbps", "latency_under_load_ms", "speed_streams":
		default:
			continue
		}
		if s != "" {
			s += ", "
		}
		s += r.Name + " " + report.FormatValue(r.Value, r.Unit)
	}
	return s
}

// lineCheck reads the line and the WAN and judges them: the gateway's
// status getters on an e8, the line test and PPPoE client on an XT-2.
func (ru *run) lineCheck(ctx context.Context, step string) (verdict.Report, error) {
	svc := ru.gatewayService()
	var (
		results []diagnostics.Result
		facts   = map[string]string{}
	)
	if ru.ord.HasDevice(order.DeviceXT2) {
		xt, err := ru.xt2(ctx)
		if err != nil {
			return verdict.Report{}, err
		}
		lt, err := xt.LineTest(ctx)
		if err != nil {
			return verdict.Report{}, err
		}
		w, err := xt.WANStatus(ctx)
		if err != nil {
			return verdict.Report{}, err
		}
		up := 0.0
		if lt.WANUp {
			up = 1
		}
		now := ru.now()
		results = append(results, diagnostics.Result{Probe: "line", Target: "xt2", Success: true, Readings: []diagnostics.Reading{
			{Name: "wan_link_up", Value: up, Unit: "bool", Time: now},
			{Name: "wan_link_speed_mbps", Value: float64(lt.SpeedMbps), Unit: "Mbit/s", Time: now},
		}})
		facts[verdict.FactWANStatus], facts[verdict.FactWANLastError], facts[verdict.FactWANConnectionType] = w.Status, w.LastError, w.ConnectionType
		facts["access"] = string(svc.Access)
	} else {
		gw, err := ru.gateway(ctx)
		if err != nil {
			return verdict.Report{}, err
		}
		known := map[string]string{}
		if ru.ord.RequiredFirmware != "" {
			known[verdict.FactFirmwareRequired] = ru.ord.RequiredFirmware
		}
		out, err := diagrun.Run(ctx, diagrun.Site{Gateway: gw, Access: string(svc.Access), PackageDownMbps: float64(svc.BandwidthMbps), Facts: known},
			diagrun.Options{Logger: ru.Logger, Timeout: ru.Limits.StepTimeout})
		if err != nil {
			return verdict.Report{}, err
		}
		results, facts = out.Results, out.Facts
	}
	var rs []diagnostics.Reading
	for _, r := range results {
		rs = append(rs, r.Readings...)
	}
	if err := ru.record(ctx, step, rs); err != nil {
		return verdict.Report{}, err
	}
	p := verdict.ProfileFor(string(svc.Access), float64(svc.BandwidthMbps), 0)
	rep := verdict.Evaluate(p, results, facts)
	fs := make([]store.Finding, 0, len(rep.Findings))
	for _, f := range rep.Findings {
		fs = append(fs, store.Finding{StepID: stepIDOf(ctx), Code: string(f.Code), Severity: string(f.Severity), Symptom: f.Symptom, Cause: f.Cause, Fix: f.Fix})
	}
	if err := ru.Store.AddFindings(ctx, ru.out.OrderID, step, fs); err != nil {
		return rep, err
	}
	return rep, nil
}

// diagnose is a repair's first look: the line and WAN judged, the faults
// found kept with the order.
func (ru *run) diagnose(ctx context.Context) (string, error) {
	rep, err := ru.lineCheck(ctx, StepDiagnose)
	if err != nil {
		return "", err
	}
	ru.diagnosis = &rep
	ru.keep = rep
	if len(rep.Findings) == 0 {
		return fmt.Sprintf("line and WAN %s: no fault found at the gateway", rep.Status), nil
	}
	var codes []string
	for _, f := range rep.Findings {
		codes = append(codes, string(f.Code))
	}
	return "found " + strings.Join(codes, ", "), nil
}

func (ru *run) restoreDiagnosis(b []byte) error {
	var rep verdict.Report
	if err := restoreInto(&rep)(b); err != nil {
		return err
	}
	ru.diagnosis = &rep
	return nil
}

// fix applies what the diagnosis calls for and the order makes possible:
// the PPPoE account written again for an authentication failure or a WAN
// that is down or missing, the LOID registered again when it is not. A
// fault that needs hands (a fibre, a cable) is left to the technician and
// stays in the report.
func (ru *run) fix(ctx context.Context) (string, error) {
	if ru.diagnosis == nil {
		return "", errors.New("no diagnosis to act on")
	}
	var done []string
	for _, f := range ru.diagnosis.Findings {
		fix := report.Fix{Code: string(f.Code), At: ru.now()}
		finding := report.FromVerdictFinding(f)
		fix.Finding = &finding
		switch f.Code {
		case verdict.CodePPPoEAuthFailed, verdict.CodeWANDown:
			if ru.ord.PPPoE.Username == "" {
				fix.Action = "no PPPoE account on the order to write: " + f.Fix
				break
			}
			if _, err := ru.configureInternet(ctx); err != nil {
				return strings.Join(done, "; "), fmt.Errorf("re-provision the PPPoE account: %w", err)
			}
			fix.Action = "PPPoE account " + ru.ord.PPPoE.Username + " written again to the internet WAN"
		case verdict.CodeLOIDNotRegistered:
			if _, err := ru.registerLOID(ctx); err != nil {
				return strings.Join(done, "; "), fmt.Errorf("register the LOID again: %w", err)
			}
			fix.Action = "LOID registered again with ITMS"
		default:
			fix.Action = "left to the technician: " + f.Fix
		}
		ru.out.Fixes = append(ru.out.Fixes, fix)
		done = append(done, string(f.Code)+": "+fix.Action)
	}
	ru.keep = ru.out.Fixes
	if len(done) == 0 {
		return "nothing to fix at the gateway", errSkipped
	}
	return strings.Join(done, "; "), nil
}

// retest judges the line again after the fix, with the ping and speed
// readings since, and marks each fix with what the re-test says.
func (ru *run) retest(ctx context.Context) (string, error) {
	rep, err := ru.lineCheck(ctx, StepRetest)
	if err != nil {
		return "", err
	}
	// The tests after the fix count in the re-test's verdict.
	var after []diagnostics.Result
	for _, r := range ru.out.Readings {
		if r.Step == StepPing || r.Step == StepSpeed {
			after = append(after, diagnostics.Result{Probe: r.Step, Success: true, Readings: []diagnostics.Reading{{Name: r.Name, Value: r.Value, Unit: r.Unit, Time: r.At}}})
		}
	}
	if len(after) > 0 {
		svc := ru.gatewayService()
		tests := verdict.Evaluate(verdict.ProfileFor(string(svc.Access), float64(svc.BandwidthMbps), 0), after, nil)
		rep.Checks = append(rep.Checks, tests.Checks...)
		rep.Findings = append(rep.Findings, tests.Findings...)
		if tests.Status == verdict.StatusFail || (tests.Status == verdict.StatusWarn && rep.Status != verdict.StatusFail) {
			rep.Status = tests.Status
		}
	}
	still := map[string]bool{}
	for _, f := range rep.Findings {
		still[string(f.Code)] = true
	}
	for i := range ru.out.Fixes {
		ru.out.Fixes[i].Retest = report.StatusOK
		if still[ru.out.Fixes[i].Code] {
			ru.out.Fixes[i].Retest = report.StatusFail
		}
	}
	ru.out.Verdict = report.FromVerdict(rep)
	ru.keep = ru.out.Fixes
	if len(rep.Findings) > 0 {
		return fmt.Sprintf("re-test %s: %d faults remain", rep.Status, len(rep.Findings)), fmt.Errorf("the re-test still finds %s: see the findings", rep.Findings[0].Code)
	}
	return fmt.Sprintf("re-test %s: no fault remains", rep.Status), nil
}
