// Package workflow runs a work order's automatable steps against a device and
// records every step and reading in the local store before anything is
// uploaded. The first workflow is the e8 new install:
//
//	fetch_order → wait_inform → identify → configure_internet →
//	register_loid → wait_wan → ping → speed_test → report → upload (报竣)
//
// A step that fails stops the run; the configuration changes already made are
// rolled back in reverse order, and no completion is uploaded.
package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/agent/config"
	"fieldagent/agent/order"
	"fieldagent/agent/ordersys"
	"fieldagent/agent/report"
	"fieldagent/agent/store"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/drivers/e8"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Step names, in the order an e8 new install runs them.
const (
	StepFetchOrder = "fetch_order"
	StepWaitInform = "wait_inform"
	StepIdentify   = "identify"
	StepInternet   = "configure_internet"
	StepLOID       = "register_loid"
	StepWaitWAN    = "wait_wan"
	StepPing       = "ping"
	StepSpeed      = "speed_test"
	StepReport     = "report"
	StepUpload     = "upload"
	StepRollback   = "rollback"
)

// Step states.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
	StateSkipped = "skipped"
)

// errSkipped, returned by a step function, records the step as skipped
// (with its detail saying why) instead of failed.
var errSkipped = errors.New("skipped")

// Order states in the local store.
const (
	OrderFetched = "fetched"
	OrderRunning = "running"
	OrderFailed  = "failed"
	OrderPending = "completion_pending" // report stored, upload not yet acknowledged
	OrderClosed  = "closed"
)

// ErrUnsupported means the order asks for work this workflow does not do yet.
var ErrUnsupported = errors.New("order not supported by this workflow")

// ACS is the subset of acs.Server the workflow uses.
type ACS interface {
	WaitDevice(ctx context.Context, match func(acs.Device) bool) (acs.Device, error)
	GetParameterValues(ctx context.Context, deviceID string, names ...string) ([]cwmp.ParameterValueStruct, error)
	SetParameterValues(ctx context.Context, deviceID string, params []cwmp.ParameterValueStruct, key string) error
	GetParameterNames(ctx context.Context, deviceID, path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, error)
	AddObject(ctx context.Context, deviceID, objectName, key string) (uint32, error)
	DeleteObject(ctx context.Context, deviceID, objectName, key string) error
	Reboot(ctx context.Context, deviceID, commandKey string) error
	FactoryReset(ctx context.Context, deviceID string) error
	Download(ctx context.Context, deviceID string, d cwmp.Download) (cwmp.DownloadResponse, error)
	WaitTransferComplete(ctx context.Context, deviceID, commandKey string) (cwmp.TransferComplete, error)
	WaitInform(ctx context.Context, deviceID, eventCode string, after time.Time) (acs.Device, error)
}

// StepEvent reports progress to the caller (the CLI prints it as it goes).
type StepEvent struct {
	Step   string        `json:"step"`
	State  string        `json:"state"`
	Detail string        `json:"detail,omitempty"`
	Error  string        `json:"error,omitempty"`
	Took   time.Duration `json:"took_ns,omitempty"`
}

// Runner runs orders. Store, Orders and ACS are required.
type Runner struct {
	Store  *store.Store
	Orders *ordersys.Client
	ACS    ACS
	// Limits are the time limits of the steps.
	Limits config.Workflow
	// Diag says where the acceptance tests go.
	Diag config.Diag
	// Serial, if set, selects the gateway by serial number; otherwise the
	// first gateway that informs is used.
	Serial string
	// Agent names this program in reports (e.g. "fieldagent v0.1.0").
	Agent string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// Now, if nil, is time.Now.
	Now func() time.Time
	// Progress, if set, is called when a step starts and ends.
	Progress func(StepEvent)
	// PollInterval, if set, is how often device state is re-read.
	PollInterval time.Duration
	// Ping, if its Count is zero, is 5 echoes 100 ms apart in auto mode.
	Ping diagnostics.PingOptions
}

// Outcome is what a run did.
type Outcome struct {
	OrderID    string             `json:"order_id"`
	State      string             `json:"state"`
	FailedStep string             `json:"failed_step,omitempty"`
	Error      string             `json:"error,omitempty"`
	Device     drivers.Identity   `json:"device"`
	WAN        drivers.WANStatus  `json:"wan"`
	LOID       *report.LOID       `json:"loid,omitempty"`
	Readings   []report.Reading   `json:"readings"`
	Steps      []report.Step      `json:"steps"`
	Receipt    *ordersys.Receipt  `json:"receipt,omitempty"`
	Completion *report.Completion `json:"-"`
	// TimeLimit is the operator's limit for the visit, Elapsed the time
	// spent at the last step, Overrun whether it went past the limit.
	TimeLimit time.Duration `json:"time_limit_ns,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns,omitempty"`
	Overrun   bool          `json:"overrun,omitempty"`
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// run holds the state of one order run.
type run struct {
	*Runner
	out      *Outcome
	ord      *order.Order
	deviceID string
	drv      *e8.Driver
	undo     []namedUndo
	started  time.Time
	warned   bool // the 80% time warning was given
}

type namedUndo struct {
	what string
	fn   drivers.Undo
}

// Run runs the order with the given id from fetch to 报竣. It returns the
// outcome and, if a step failed, an error that names the step.
func (r *Runner) Run(ctx context.Context, orderID string) (*Outcome, error) {
	ru := &run{Runner: r, out: &Outcome{OrderID: orderID}, started: r.now()}
	err := ru.all(ctx)
	if err != nil {
		ru.rollback(ctx)
		ru.out.State = OrderFailed
		if ru.out.FailedStep == StepUpload {
			// The installation is done and its report is safe in the
			// outbox; only the delivery is pending.
			ru.out.State = OrderPending
		}
		ru.out.Error = err.Error()
		if serr := r.Store.SetOrderState(context.WithoutCancel(ctx), orderID, ru.out.State); serr != nil && !errors.Is(serr, store.ErrNotFound) {
			r.log().Error("record order state", "order", orderID, "err", serr)
		}
		return ru.out, err
	}
	return ru.out, nil
}

func (ru *run) all(ctx context.Context) error {
	lim := ru.Limits
	steps := []struct {
		name    string
		timeout time.Duration
		fn      func(context.Context) (string, error)
	}{
		{StepFetchOrder, lim.StepTimeout, ru.fetch},
		{StepWaitInform, lim.InformTimeout, ru.waitInform},
		{StepIdentify, lim.StepTimeout, ru.identify},
		{StepInternet, lim.StepTimeout, ru.configureInternet},
		{StepLOID, lim.LOIDTimeout, ru.registerLOID},
		{StepWaitWAN, lim.WANTimeout, ru.waitWAN},
		{StepPing, lim.StepTimeout, ru.ping},
		{StepSpeed, ru.Diag.SpeedDuration*3 + 10*time.Second, ru.speed},
		{StepReport, lim.StepTimeout, ru.report},
		{StepUpload, lim.StepTimeout, ru.upload},
	}
	for _, s := range steps {
		if err := ru.step(ctx, s.name, s.timeout, s.fn); err != nil {
			ru.out.FailedStep = s.name
			return fmt.Errorf("step %s: %w", s.name, err)
		}
		ru.checkTime(ctx)
	}
	return nil
}

// StepTimeLimit names the StepEvent that warns of the visit's time limit
// (State StateWarning at 80%, StateOverrun past it).
const StepTimeLimit = "time_limit"

// States of the StepTimeLimit event.
const (
	StateWarning = "warning"
	StateOverrun = "overrun"
)

// visitLimit is the operator's time limit for the order's devices: the
// XT-2's when the order installs one, else the e8's.
func (ru *run) visitLimit() time.Duration {
	if ru.ord != nil && ru.ord.HasDevice(order.DeviceXT2) {
		return ru.Limits.VisitLimitXT2
	}
	return ru.Limits.VisitLimitE8
}

// checkTime compares the time spent with the visit's limit after a step:
// once past 80% it warns, once past the limit it records the overrun (the
// work goes on: the limit is the operator's rubric, not a deadline).
func (ru *run) checkTime(ctx context.Context) {
	limit := ru.visitLimit()
	if limit <= 0 || ru.ord == nil {
		return
	}
	elapsed := ru.now().Sub(ru.started)
	ru.out.TimeLimit, ru.out.Elapsed = limit, elapsed
	var state string
	switch {
	case elapsed > limit && !ru.out.Overrun:
		ru.out.Overrun, state = true, StateOverrun
	case elapsed >= limit*8/10 && !ru.warned && !ru.out.Overrun:
		ru.warned, state = true, StateWarning
	default:
		return
	}
	detail := fmt.Sprintf("%s of the %s limit used", elapsed.Round(time.Second), limit)
	ru.log().Warn("visit time limit", "order", ru.out.OrderID, "state", state, "elapsed", elapsed, "limit", limit)
	if err := ru.Store.AddEvent(ctx, ru.out.OrderID, "time_"+state, detail); err != nil {
		ru.log().Warn("could not record the time limit event", "err", err)
	}
	ru.emit(StepEvent{Step: StepTimeLimit, State: state, Detail: detail, Took: elapsed})
}

// step runs fn with its own deadline and records it in the store.
func (ru *run) step(ctx context.Context, name string, timeout time.Duration, fn func(context.Context) (string, error)) error {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	start := ru.now()
	var stepID int64
	haveOrder := ru.ord != nil
	if haveOrder {
		id, err := ru.Store.BeginStep(ctx, ru.out.OrderID, name)
		if err != nil {
			return fmt.Errorf("record step start: %w", err)
		}
		stepID = id
	}
	ru.emit(StepEvent{Step: name, State: StateRunning})
	sctx, cancel := context.WithTimeout(ctx, timeout)
	detail, err := fn(sctx)
	if err != nil && errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("%w (step limit %s)", err, timeout)
	}
	cancel()
	st := report.Step{Name: name, State: StateDone, StartedAt: start, FinishedAt: ru.now(), Detail: detail}
	if errors.Is(err, errSkipped) {
		st.State, err = StateSkipped, nil
	}
	if err != nil {
		st.State = StateFailed
		st.Error = err.Error()
	}
	// The fetch step creates the order row, so it is recorded afterwards.
	if !haveOrder && ru.ord != nil {
		id, serr := ru.Store.BeginStep(ctx, ru.out.OrderID, name)
		if serr == nil {
			stepID, haveOrder = id, true
		}
	}
	if haveOrder {
		if serr := ru.Store.FinishStep(context.WithoutCancel(ctx), stepID, st.State, st.Detail, st.Error); serr != nil {
			err = errors.Join(err, fmt.Errorf("record step: %w", serr))
		}
	}
	ru.out.Steps = append(ru.out.Steps, st)
	ru.emit(StepEvent{Step: name, State: st.State, Detail: detail, Error: st.Error, Took: st.FinishedAt.Sub(start)})
	return err
}

func (ru *run) emit(ev StepEvent) {
	if ru.Progress != nil {
		ru.Progress(ev)
	}
}

func (ru *run) fetch(ctx context.Context) (string, error) {
	o, err := ru.Orders.GetOrder(ctx, ru.out.OrderID)
	if err != nil {
		return "", fmt.Errorf("fetch order %s: %w", ru.out.OrderID, err)
	}
	if !o.HasDevice(order.DeviceE8) || o.Type != order.TypeNewInstall {
		return "", fmt.Errorf("%w: order %s is a %s for %v; this version runs e8 new installs", ErrUnsupported, o.ID, o.Type, devices(o))
	}
	// The store keeps the order without credentials (json.Marshal redacts
	// them); the credentials live in memory for this run only.
	if err := ru.Store.PutOrder(ctx, o, OrderRunning); err != nil {
		return "", fmt.Errorf("store order: %w", err)
	}
	ru.ord = o
	if err := ru.Orders.PostEvent(ctx, o.ID, ordersys.Event{Kind: "started", At: ru.now()}); err != nil {
		ru.log().Warn("order system did not take the started event", "order", o.ID, "err", err)
	}
	return fmt.Sprintf("%s for %s, %s", o.Type, o.Customer.Name, o.Customer.Address), nil
}

func devices(o *order.Order) []string {
	var out []string
	for _, s := range o.Services {
		out = append(out, string(s.Device))
	}
	return out
}

func (ru *run) e8Service() order.Service {
	for _, s := range ru.ord.Services {
		if s.Device == order.DeviceE8 {
			return s
		}
	}
	return order.Service{}
}

func (ru *run) waitInform(ctx context.Context) (string, error) {
	reg := catalog.New(catalog.Options{ACS: ru.ACS, Logger: ru.Logger, PollInterval: ru.PollInterval})
	serial := ru.Serial
	if serial == "" {
		serial = ru.e8Service().Serial // the box the order was issued with
	}
	d, err := ru.ACS.WaitDevice(ctx, func(d acs.Device) bool {
		if serial != "" {
			return d.DeviceId.SerialNumber == serial
		}
		// Any gateway, or a device no driver knows (to say so); not the
		// customer's set-top box informing on the same LAN.
		e, err := reg.Lookup(drivers.SeenFromInform(d))
		return err != nil || e.Kind == drivers.KindE8
	})
	if err != nil {
		what := "any gateway"
		if serial != "" {
			what = "gateway " + serial
		}
		return "", fmt.Errorf("no Inform from %s: check that the gateway is powered, its WAN/LAN cable to this laptop, and that its ACS URL points here: %w", what, err)
	}
	drv, kind, err := catalog.OpenTR069(ctx, reg, d)
	if err != nil {
		return "", err
	}
	gw, ok := drv.(*e8.Driver)
	if !ok {
		return "", fmt.Errorf("%w: %s is a %s device, the order installs an e8 gateway: check --serial", drivers.ErrMismatch, d.ID, kind)
	}
	ru.deviceID = d.ID
	ru.drv = gw
	return fmt.Sprintf("%s from %s", d.ID, d.RemoteAddr), nil
}

func (ru *run) identify(ctx context.Context) (string, error) {
	id, err := ru.drv.Identify(ctx)
	if err != nil {
		return "", err
	}
	ru.out.Device = id
	svc := ru.e8Service()
	if err := id.Check(drivers.Expectation{Kind: drivers.KindE8, Access: string(svc.Access), Firmware: ru.ord.RequiredFirmware,
		Model: svc.Model, Serial: svc.Serial}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s SN %s firmware %s (%s)", id.Vendor, id.Model, id.Serial, id.Firmware, id.Access), nil
}

func (ru *run) configureInternet(ctx context.Context) (string, error) {
	undo, err := ru.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{
		Username: ru.ord.PPPoE.Username,
		Password: ru.ord.PPPoE.Password,
	})
	if err != nil {
		return "", err
	}
	ru.undo = append(ru.undo, namedUndo{"internet WAN connection", undo})
	return "WANPPPConnection IP_Routed, NAT on, service INTERNET, account " + ru.ord.PPPoE.Username, nil
}

func (ru *run) registerLOID(ctx context.Context) (string, error) {
	if ru.ord.LOID.LOID.IsZero() {
		if ru.e8Service().Access.IsPON() {
			return "", errors.New("the order has no LOID for a PON access: ask dispatch for the LOID")
		}
		return "no LOID on the order (not a PON access)", errSkipped
	}
	res, undo, err := ru.drv.RegisterLOID(ctx, ru.ord.LOID.LOID.Reveal(), ru.ord.LOID.Password.Reveal())
	ru.out.LOID = &report.LOID{Registered: res.Registered, Status: res.Status, Result: res.Result}
	if undo != nil && !res.Registered {
		ru.undo = append(ru.undo, namedUndo{"LOID on the gateway", undo})
	}
	if err != nil {
		return res.Detail, err
	}
	return res.Detail, nil
}

func (ru *run) waitWAN(ctx context.Context) (string, error) {
	st, err := ru.drv.WaitWANUp(ctx)
	ru.out.WAN = st
	if err != nil {
		return fmt.Sprintf("WAN %s, last error %s", st.Status, st.LastError), err
	}
	return fmt.Sprintf("WAN connected, address %s", st.ExternalIP), nil
}

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

func (ru *run) record(ctx context.Context, step string, rs []diagnostics.Reading) error {
	srs := make([]store.Reading, 0, len(rs))
	for _, r := range rs {
		srs = append(srs, store.Reading{Name: r.Name, Value: r.Value, Unit: r.Unit, At: r.Time})
		ru.out.Readings = append(ru.out.Readings, report.Reading{Step: step, Name: r.Name, Value: r.Value, Unit: r.Unit, At: r.Time})
	}
	if err := ru.Store.AddReadings(ctx, ru.out.OrderID, step, srs); err != nil {
		return fmt.Errorf("store readings: %w", err)
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
	rs, err := ru.probe(ctx, StepPing, diagnostics.PingProbe(opts), target)
	if errors.Is(err, diagnostics.ErrPingNotPermitted) {
		// A laptop policy, not a customer fault: say how to enable it.
		return err.Error(), errSkipped
	}
	if err != nil {
		return "", err
	}
	return summary(rs), nil
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

func (ru *run) completion() *report.Completion {
	c := &report.Completion{
		OrderID:    ru.out.OrderID,
		Result:     report.ResultSuccess,
		Technician: ru.ord.Technician,
		Device:     ru.out.Device,
		WAN:        ru.out.WAN,
		LOID:       ru.out.LOID,
		Readings:   ru.out.Readings,
		Steps:      append([]report.Step(nil), ru.out.Steps...),
		StartedAt:  ru.started,
		FinishedAt: ru.now(),
		Agent:      ru.Agent,
	}
	c.SetOrder(ru.ord)
	c.SetTimeLimit(ru.visitLimit())
	return c
}

// EventArrived is the store event `order arrive` records.
const EventArrived = "arrived"

// arrivedAt is when the technician recorded the arrival for this order
// (the latest "arrived" event), if they did.
func (ru *run) arrivedAt(ctx context.Context) (time.Time, bool) {
	evs, err := ru.Store.Events(ctx, ru.out.OrderID)
	if err != nil {
		ru.log().Warn("could not read the order's events", "err", err)
		return time.Time{}, false
	}
	var at time.Time
	for _, e := range evs {
		if e.Kind == EventArrived && e.At.After(at) {
			at = e.At
		}
	}
	return at, !at.IsZero()
}

// IdempotencyKey is the key of an order's completion upload: the same for
// every retry and every re-run, so the order system closes the order once.
func IdempotencyKey(orderID string) string { return "fieldagent-completion-" + orderID }

func (ru *run) report(ctx context.Context) (string, error) {
	c := ru.completion()
	if at, ok := ru.arrivedAt(ctx); ok {
		c.ArrivedAt = at
		c.SetTimeLimit(ru.visitLimit()) // the limit counts from the arrival
	}
	body, err := c.JSON()
	if err != nil {
		return "", fmt.Errorf("encode report: %w", err)
	}
	if err := ru.Store.PutReport(ctx, ru.out.OrderID, "json", body); err != nil {
		return "", fmt.Errorf("store report: %w", err)
	}
	var page bytes.Buffer
	if err := c.WriteHTML(&page, report.Bilingual); err != nil {
		return "", fmt.Errorf("render the customer's report: %w", err)
	}
	if err := ru.Store.PutReport(ctx, ru.out.OrderID, "html", page.Bytes()); err != nil {
		return "", fmt.Errorf("store report: %w", err)
	}
	if err := ru.Store.Enqueue(ctx, store.OutboxItem{OrderID: ru.out.OrderID, Kind: ordersys.KindCompletion, IdempotencyKey: IdempotencyKey(ru.out.OrderID), Body: body}); err != nil {
		return "", fmt.Errorf("queue upload: %w", err)
	}
	if err := ru.Store.SetOrderState(ctx, ru.out.OrderID, OrderPending); err != nil {
		return "", err
	}
	ru.out.Completion = c
	// Changes are now part of a delivered installation, not to be undone.
	ru.undo = nil
	return fmt.Sprintf("report stored (%d bytes), upload queued", len(body)), nil
}

// upload delivers the outbox (this order's report and anything still
// pending) and reads this order's receipt from the store.
func (ru *run) upload(ctx context.Context) (string, error) {
	u := &ordersys.Uploader{Store: ru.Store, Client: ru.Orders, Logger: ru.Logger, Now: ru.Now}
	_, ferr := u.Flush(ctx)
	items, err := ru.Store.Outbox(ctx, ru.out.OrderID)
	if err != nil {
		return "", err
	}
	for _, it := range items {
		if it.IdempotencyKey != IdempotencyKey(ru.out.OrderID) {
			continue
		}
		if !it.Delivered() {
			cause := ferr
			if cause == nil {
				cause = errors.New(it.LastError)
			}
			return "report kept in the outbox: `fieldagent upload` delivers it later", fmt.Errorf("upload completion: %w", cause)
		}
		var rc ordersys.Receipt
		if err := json.Unmarshal(it.Response, &rc); err != nil {
			return "", fmt.Errorf("read the upload receipt: %w", err)
		}
		if err := ru.Store.SetOrderState(ctx, ru.out.OrderID, OrderClosed); err != nil {
			return "", err
		}
		ru.out.Receipt = &rc
		ru.out.State = OrderClosed
		return fmt.Sprintf("order %s in the order system, receipt %s", rc.State, rc.Receipt), nil
	}
	return "", errors.New("upload completion: the report is not in the outbox")
}

// rollback undoes the configuration changes of a failed run, newest first.
func (ru *run) rollback(ctx context.Context) {
	if len(ru.undo) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	_ = ru.step(ctx, StepRollback, ru.Limits.StepTimeout*time.Duration(len(ru.undo)), func(ctx context.Context) (string, error) {
		var errs []error
		done := ""
		for i := len(ru.undo) - 1; i >= 0; i-- {
			u := ru.undo[i]
			if err := u.fn(ctx); err != nil {
				errs = append(errs, fmt.Errorf("undo %s: %w", u.what, err))
				continue
			}
			if done != "" {
				done += ", "
			}
			done += "removed " + u.what
		}
		ru.undo = nil
		return done, errors.Join(errs...)
	})
}
