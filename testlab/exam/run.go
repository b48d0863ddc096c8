package exam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"fieldagent/agent/config"
	"fieldagent/agent/order"
	"fieldagent/agent/ordersys"
	"fieldagent/agent/report"
	"fieldagent/agent/secret"
	"fieldagent/agent/store"
	"fieldagent/agent/workflow"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
)

// Options says which exam to sit.
type Options struct {
	// Scenario names the site for the sheet.
	Scenario string
	// Site describes the site; Run fills its ACS fields.
	Site testlab.Config
	// OrderID is the order the candidate runs (default the e8 new
	// install, or the XT-2 one on an XT-2 site).
	OrderID string
	// Seed draws the faults; the same seed draws the same faults.
	Seed uint64
	// Faults is how many faults to draw (default 3); All sets every
	// fault the site's devices can have, one after another.
	Faults int
	All    bool
	// Rubric is the marks (default DefaultRubric).
	Rubric *Rubric
	// Limits are the workflow's step and visit limits (default
	// config.Default().Workflow with short lab timeouts).
	Limits *config.Workflow
	// SpeedDuration is the speed test's length (default 1s).
	SpeedDuration time.Duration
	// Candidate names who sits the exam on the sheet.
	Candidate string
	// Dir, if set, keeps the exam's store there; otherwise a temporary
	// directory is used and removed.
	Dir string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// Progress, if set, is told what the exam is doing.
	Progress func(string)
}

// Devices lists the device kinds a site config runs ("e8", "itv", "xt2").
func Devices(c testlab.Config) []string {
	var d []string
	if !c.NoGateway {
		d = append(d, "e8")
	}
	if c.STB {
		d = append(d, "itv")
	}
	if c.XT2 {
		d = append(d, "xt2")
	}
	return d
}

// lab is the running exam site: the ACS the candidate's workflow drives
// and the simulated site.
type lab struct {
	site *testlab.Site
	acs  *acs.Server
	st   *store.Store
}

// Run sits the exam with fieldagent as the candidate: it runs the order on
// a clean site (installation, activation, the customer's acceptance, 报竣),
// then sets each drawn fault in turn, diagnoses it and takes it away, and
// scores the sheet.
func Run(ctx context.Context, o Options) (*Sheet, error) {
	start := time.Now()
	rubric := DefaultRubric
	if o.Rubric != nil {
		rubric = *o.Rubric
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	say := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	lim := config.Default().Workflow
	lim.InformTimeout, lim.LOIDTimeout, lim.WANTimeout, lim.StepTimeout = 30*time.Second, 30*time.Second, 30*time.Second, 30*time.Second
	if o.Limits != nil {
		lim = *o.Limits
	}
	if o.SpeedDuration <= 0 {
		o.SpeedDuration = time.Second
	}
	if o.Faults <= 0 {
		o.Faults = 3
	}
	devs := Devices(o.Site)
	if o.OrderID == "" {
		switch {
		case slices.Contains(devs, "xt2") && !slices.Contains(devs, "e8"):
			o.OrderID = testlab.SampleXT2OrderID
		case slices.Contains(devs, "itv"):
			o.OrderID = testlab.SampleITVOrderID
		default:
			o.OrderID = testlab.SampleOrderID
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, cleanup, err := startLab(ctx, o, logger)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ord := l.site.SampleOrders[o.OrderID]
	if ord == nil {
		return nil, fmt.Errorf("exam: the site holds no order %s", o.OrderID)
	}
	device := "e8"
	if ord.HasDevice(order.DeviceXT2) {
		device = "xt2"
	}
	sheet := &Sheet{Candidate: o.Candidate, Scenario: o.Scenario, OrderID: o.OrderID, Device: device, Seed: o.Seed}
	sheet.Limit = Duration(lim.VisitLimitE8)
	if device == "xt2" {
		sheet.Limit = Duration(lim.VisitLimitXT2)
	}

	// The visit: appointment call, arrival, the order run, clean-up.
	say("running order %s", o.OrderID)
	r := &workflow.Runner{
		Store:        l.st,
		Orders:       &ordersys.Client{BaseURL: l.site.OrderSystemURL, Token: l.site.Token, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Logger: logger},
		ACS:          l.acs,
		OpenXT2:      xt2Opener(l.site, o.Dir),
		Limits:       lim,
		Diag:         config.Diag{SpeedURL: l.site.SpeedURL, SpeedDuration: o.SpeedDuration},
		IPTV:         workflow.IPTV{AuthURL: l.site.EPGURL},
		Accept:       &report.Acceptance{Name: ord.Customer.Name, Accepted: true, Comment: "exam"},
		Agent:        o.Candidate,
		Logger:       logger,
		PollInterval: 50 * time.Millisecond,
		Progress: func(ev workflow.StepEvent) {
			if ev.State != workflow.StateRunning {
				say("  %s %s %s", ev.Step, ev.State, ev.Detail)
			}
		},
	}
	if err := l.st.PutOrder(ctx, ord, "assigned"); err != nil {
		return nil, err
	}
	for _, ev := range []string{"appointment_confirmed", workflow.EventArrived} {
		if err := l.st.AddEvent(ctx, o.OrderID, ev, "exam"); err != nil {
			return nil, err
		}
	}
	out, runErr := r.Run(ctx, o.OrderID)
	if runErr == nil {
		if err := l.st.AddEvent(ctx, o.OrderID, "cleaned_up", "exam"); err != nil {
			return nil, err
		}
	}
	evs, err := l.st.Events(ctx, o.OrderID)
	if err != nil {
		return nil, err
	}
	sheet.Items = append(sheet.Items, serviceItems(rubric, evs, out, l.site.Orders.State(o.OrderID))...)
	sheet.Items = append(sheet.Items, installItems(rubric, out, ord)...)
	sheet.Items = append(sheet.Items, activationItems(rubric, out, ord)...)

	// The faults, one at a time, on the installed site.
	drawn := Draw(o.Seed, o.Faults, devs...)
	if o.All {
		drawn = Draw(o.Seed, len(testlab.Faults()), devs...)
	}
	d := &diagnoser{site: l.site, acs: l.acs, ord: ord, speedDuration: o.SpeedDuration, logger: logger, dir: o.Dir}
	defer d.close()
	for _, f := range drawn {
		say("fault: %s", f.ID)
		res, err := d.fault(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("exam: fault %s: %w", f.ID, err)
		}
		sheet.Faults = append(sheet.Faults, res)
	}
	sheet.Items = append(sheet.Items, faultItems(rubric, sheet.Faults)...)
	sheet.Elapsed = Duration(time.Since(start))
	sheet.finish()
	if runErr != nil {
		return sheet, fmt.Errorf("exam: the order run failed: %w", runErr)
	}
	return sheet, nil
}

// startLab starts the ACS, the site and the store.
func startLab(ctx context.Context, o Options, logger *slog.Logger) (*lab, func(), error) {
	crPass := secret.New("exam-cr-" + fmt.Sprint(time.Now().UnixNano()))
	a := acs.New(acs.Config{Logger: logger, ConnectionRequestAuth: func(string) (string, secret.Secret) { return "exam", crPass }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("exam: ACS listen: %w", err)
	}
	srv := &http.Server{Handler: a, ConnState: a.ConnState, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	cfg := o.Site
	cfg.ACSURL, cfg.ConnReqUsername, cfg.ConnReqPassword = "http://"+ln.Addr().String()+"/", "exam", crPass
	if cfg.Logger == nil {
		cfg.Logger = logger
	}
	site, err := testlab.Start(ctx, cfg)
	if err != nil {
		_ = srv.Close()
		return nil, nil, fmt.Errorf("exam: start the site: %w", err)
	}
	dir := o.Dir
	var rm func()
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fieldagent-exam-"); err != nil {
			site.Close()
			_ = srv.Close()
			return nil, nil, err
		}
		rm = func() { _ = os.RemoveAll(dir) }
	}
	st, err := store.Open(filepath.Join(dir, "exam.db"))
	if err != nil {
		site.Close()
		_ = srv.Close()
		return nil, nil, err
	}
	cleanup := func() {
		_ = st.Close()
		site.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if rm != nil {
			rm()
		}
	}
	return &lab{site: site, acs: a, st: st}, cleanup, nil
}

func hasEvent(evs []store.Event, kind string) bool {
	return slices.ContainsFunc(evs, func(e store.Event) bool { return e.Kind == kind })
}

func stepState(out *workflow.Outcome, name string) string {
	if out == nil {
		return ""
	}
	state := ""
	for _, s := range out.Steps {
		if s.Name == name {
			state = s.State
		}
	}
	return state
}

// item scores one yes/no line.
func item(section, name, nameZH string, max float64, ok bool, note string) Item {
	it := Item{Section: section, Name: name, NameZH: nameZH, Max: max, Note: note}
	if ok {
		it.Got = max
	}
	return it
}

func serviceItems(r Rubric, evs []store.Event, out *workflow.Outcome, orderState string) []Item {
	accepted := out != nil && out.Acceptance != nil && out.Acceptance.Accepted
	w := r.Service / 10
	return []Item{
		item(SectionService, "appointment confirmed by phone", "电话预约确认", 2*w, hasEvent(evs, "appointment_confirmed"), ""),
		item(SectionService, "arrival recorded", "上门签到", 2*w, hasEvent(evs, workflow.EventArrived), ""),
		item(SectionService, "customer's acceptance", "用户验收签字", 3*w, accepted, ""),
		item(SectionService, "work area cleaned up", "清理现场", 1*w, hasEvent(evs, "cleaned_up"), ""),
		item(SectionService, "order closed (报竣)", "报竣", 2*w, orderState == "closed", "order system: "+orderState),
	}
}

func installItems(r Rubric, out *workflow.Outcome, ord *order.Order) []Item {
	w := r.Install / 15
	bind, bindZH := workflow.StepLOID, "LOID 注册"
	if ord.HasDevice(order.DeviceXT2) {
		bind, bindZH = workflow.StepBindBBMS, "BBMS 绑定"
	}
	done := func(step string) bool {
		s := stepState(out, step)
		return s == workflow.StateDone || (s == workflow.StateSkipped && step == workflow.StepLOID)
	}
	identifyNote := ""
	if out != nil && out.Device.Serial != "" {
		identifyNote = out.Device.Model + " " + out.Device.Serial
	}
	items := []Item{
		item(SectionInstall, "device identified and checked against the order", "设备识别与核对", 5*w, done(workflow.StepIdentify), identifyNote),
		item(SectionInstall, "internet configured (PPPoE, NAT)", "宽带配置", 5*w, done(workflow.StepInternet), stepState(out, workflow.StepInternet)),
		item(SectionInstall, "bound to the account ("+bind+")", "建档绑定（"+bindZH+"）", 5*w, done(bind), stepState(out, bind)),
	}
	return items
}

func activationItems(r Rubric, out *workflow.Outcome, ord *order.Order) []Item {
	w := r.Activation / 30
	wanUp := out != nil && out.WAN.Up()
	var mbps float64
	if out != nil {
		for _, rd := range out.Readings {
			if rd.Name == "download_mbps" {
				mbps = rd.Value
			}
		}
	}
	pkg := 0
	for _, s := range ord.Services {
		if s.BandwidthMbps > 0 {
			pkg = s.BandwidthMbps
			break
		}
	}
	speedOK := mbps > 0 && (pkg == 0 || mbps >= 0.9*float64(pkg))
	speedNote := fmt.Sprintf("%.0f Mbit/s of %d", mbps, pkg)
	items := []Item{
		item(SectionActivation, "internet up (WAN connected)", "宽带开通", 10*w, wanUp, ""),
		item(SectionActivation, "connectivity test (ping)", "连通性测试", 5*w, stepState(out, workflow.StepPing) == workflow.StateDone, stepState(out, workflow.StepPing)),
		item(SectionActivation, "speed test at ≥ 90% of the package", "测速达标", 10*w, speedOK, speedNote),
	}
	demo := item(SectionActivation, "demo to the customer, accepted", "业务演示", 5*w, out != nil && out.Acceptance != nil && out.Acceptance.Accepted, "")
	if ord.HasDevice(order.DeviceITV) {
		stb := stepState(out, workflow.StepSTBAuth) == workflow.StateDone
		demo = item(SectionActivation, "IPTV demo: set-top box logged in, accepted", "IPTV 演示", 5*w, stb && out.Acceptance != nil && out.Acceptance.Accepted, stepState(out, workflow.StepSTBAuth))
	}
	return append(items, demo)
}

var errNoDiagnosis = errors.New("no diagnosis for this device")
