// Package workflow runs a work order's visit: the automatable steps against
// the customer's devices, the technician's records (arrival, the customer's
// acceptance), the report and the 报竣 upload. Every step and reading is in
// the local store before anything is uploaded.
//
// The steps depend on the order's type and devices (see Plan); an e8 new
// install runs
//
//	fetch_order → wait_inform → identify → configure_internet →
//	register_loid → wait_wan → ping → speed_test → acceptance →
//	report → upload (报竣)
//
// A step that fails stops the run; the configuration changes this run made
// are rolled back in reverse order, and no completion is uploaded.
//
// A run is resumable. Kill it at any moment and run the order again: it
// continues at the first unfinished step. A step the store shows done is
// not repeated — a device change is not made twice, a measurement is not
// taken twice (its readings come back from the store) — and the readings of
// a step that was cut short are not counted.
package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"fieldagent/agent/config"
	"fieldagent/agent/order"
	"fieldagent/agent/ordersys"
	"fieldagent/agent/report"
	"fieldagent/agent/store"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/xt2"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Step names. Plan says which an order runs, in which order.
const (
	StepFetchOrder   = "fetch_order"
	StepWaitInform   = "wait_inform"
	StepIdentify     = "identify"
	StepInternet     = "configure_internet"
	StepLOID         = "register_loid"
	StepIPTV         = "configure_iptv"
	StepWaitSTB      = "wait_stb"
	StepSTBAccount   = "configure_stb"
	StepSTBAuth      = "wait_stb_auth"
	StepConnectXT2   = "connect_xt2"
	StepLineTest     = "line_test"
	StepBindBBMS     = "bind_bbms"
	StepSaveConfig   = "save_config"
	StepWaitWAN      = "wait_wan"
	StepDiagnose     = "diagnose"
	StepFix          = "fix"
	StepRetest       = "retest"
	StepFactoryReset = "factory_reset"
	StepPing         = "ping"
	StepSpeed        = "speed_test"
	StepAcceptance   = "acceptance"
	StepReport       = "report"
	StepUpload       = "upload"
	StepRollback     = "rollback"
	// StepRestart marks a run that starts the visit over (Runner.Restart):
	// the steps before it no longer count as done.
	StepRestart = "restart"
)

// Step states.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
	StateSkipped = "skipped"
	// StatePending is the acceptance step waiting for the customer.
	StatePending = "pending"
)

// errSkipped, returned by a step function, records the step as skipped
// (with its detail saying why) instead of failed.
var errSkipped = errors.New("skipped")

// errAwaiting, returned by the acceptance step, stops the run without
// failing it: the customer has not answered yet.
var errAwaiting = errors.New("awaiting the customer's acceptance")

// Order states in the local store.
const (
	OrderFetched = "fetched"
	OrderRunning = "running"
	OrderFailed  = "failed"
	// OrderAwaiting: the work is done and tested; the customer's
	// acceptance (`order accept`) is what the visit waits for.
	OrderAwaiting = "awaiting_acceptance"
	OrderPending  = "completion_pending" // report stored, upload not yet acknowledged
	OrderClosed   = "closed"
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
	// Resumed is set for a step an earlier run finished: it is not run
	// again.
	Resumed bool `json:"resumed,omitempty"`
}

// IPTV says how the workflow sets up an IPTV service.
type IPTV struct {
	// VLAN is the IPTV VLAN when the order gives none; 0 means 85.
	VLAN int
	// AuthURL and AuthURLBackup are the operator's EPG authentication
	// servers the set-top box logs in to.
	AuthURL, AuthURLBackup string
}

// Runner runs orders. Store, Orders and ACS are required; OpenXT2 for
// orders with an XT-2.
type Runner struct {
	Store  *store.Store
	Orders *ordersys.Client
	ACS    ACS
	// OpenXT2, if set, connects to the customer's XT-2 (SSH and SNMP).
	OpenXT2 func(ctx context.Context) (*xt2.Driver, error)
	// XT2Address, if set, is the XT-2's SSH address (xt2.address): the
	// visit records the XT-2 by it, as serve names its XT-2.
	XT2Address string
	// Limits are the time limits of the steps.
	Limits config.Workflow
	// Diag says where the acceptance tests go.
	Diag config.Diag
	// IPTV configures IPTV services.
	IPTV IPTV
	// Serial, if set, selects the gateway by serial number; otherwise the
	// order's serial, or the first gateway that informs.
	Serial string
	// Accept, if set, is the customer's acceptance given at the laptop
	// during the run; otherwise the run stops in OrderAwaiting until
	// `order accept` records it, and a later run finishes the order.
	Accept *report.Acceptance
	// Restart starts the visit over: steps an earlier run finished are run
	// again.
	Restart bool
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
	Others     []drivers.Identity `json:"other_devices,omitempty"`
	WAN        drivers.WANStatus  `json:"wan"`
	LOID       *report.LOID       `json:"loid,omitempty"`
	Readings   []report.Reading   `json:"readings"`
	Steps      []report.Step      `json:"steps"`
	Fixes      []report.Fix       `json:"fixes,omitempty"`
	Verdict    *report.Verdict    `json:"verdict,omitempty"`
	Acceptance *report.Acceptance `json:"acceptance,omitempty"`
	Receipt    *ordersys.Receipt  `json:"receipt,omitempty"`
	Completion *report.Completion `json:"-"`
	// Resumed counts the steps an earlier run had finished.
	Resumed int `json:"resumed,omitempty"`
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
	out *Outcome
	ord *order.Order
	// creds is set when ord came from the order system with its
	// credentials (a resumed run may go on from the stored copy).
	creds bool
	gwID  string
	gw    *e8.Driver
	stbID string
	stb   *itv.Driver
	xt    *xt2.Driver
	undo  []namedUndo
	// started is when this visit began (its first run's fetch).
	started time.Time
	warned  bool // the 80% time warning was given
	// done holds the steps earlier runs finished, by name.
	done map[string]store.Step
	// keep, set by a step function, is stored as the step's result.
	keep any
	// diagnosis is the repair's first verdict; retest the re-test's.
	diagnosis *verdict.Report
}

type namedUndo struct {
	what string
	fn   drivers.Undo
}

// stepKind says what a step does, for the record.
type stepKind int

const (
	kindObserve stepKind = iota // reads the device or the order system
	kindChange                  // changes a device or the operator's records
	kindMeasure                 // takes readings
	kindHuman                   // the technician's or customer's part
)

// stepSpec is one planned step.
type stepSpec struct {
	name    string
	kind    stepKind
	timeout time.Duration
	fn      func(context.Context) (string, error)
	// restore puts what a finished step kept (its result) back into the
	// run when a resumed run skips it; nil when there is nothing to get.
	restore func(result []byte) error
}

// Run runs the order with the given id to 报竣, continuing where an earlier
// run of the same order stopped. It returns the outcome and, if a step
// failed, an error that names the step. A run that stops to wait for the
// customer's acceptance returns State OrderAwaiting and no error.
func (r *Runner) Run(ctx context.Context, orderID string) (*Outcome, error) {
	ru := &run{Runner: r, out: &Outcome{OrderID: orderID}, started: r.now()}
	defer ru.close()
	err := ru.all(ctx)
	if errors.Is(err, errAwaiting) {
		ru.out.State = OrderAwaiting
		ru.setState(ctx, OrderAwaiting)
		return ru.out, nil
	}
	if err != nil {
		ru.rollback(ctx)
		ru.out.State = OrderFailed
		if ru.out.FailedStep == StepUpload {
			// The installation is done and its report is safe in the
			// outbox; only the delivery is pending.
			ru.out.State = OrderPending
		}
		ru.out.Error = err.Error()
		ru.setState(ctx, ru.out.State)
		return ru.out, err
	}
	return ru.out, nil
}

func (ru *run) setState(ctx context.Context, state string) {
	if err := ru.Store.SetOrderState(context.WithoutCancel(ctx), ru.out.OrderID, state); err != nil && !errors.Is(err, store.ErrNotFound) {
		ru.log().Error("record order state", "order", ru.out.OrderID, "err", err)
	}
}

func (ru *run) close() {
	if ru.xt != nil {
		_ = ru.xt.Close()
	}
}

func (ru *run) all(ctx context.Context) error {
	if err := ru.resume(ctx); err != nil {
		return err
	}
	if ru.finished() {
		return nil
	}
	fetch := stepSpec{name: StepFetchOrder, kind: kindObserve, timeout: ru.Limits.StepTimeout, fn: ru.fetch}
	if err := ru.do(ctx, fetch); err != nil {
		return err
	}
	steps, err := ru.plan(ru.ord)
	if err != nil {
		ru.out.FailedStep = StepFetchOrder
		return err
	}
	for _, s := range steps {
		if err := ru.do(ctx, s); err != nil {
			return err
		}
		ru.checkTime(ctx)
	}
	return nil
}

// do runs one planned step, or restores it when an earlier run finished it.
func (ru *run) do(ctx context.Context, s stepSpec) error {
	if prev, ok := ru.done[s.name]; ok && s.name != StepFetchOrder {
		if s.restore != nil && len(prev.Result) > 0 {
			if err := s.restore(prev.Result); err != nil {
				return fmt.Errorf("step %s: read what the earlier run kept: %w", s.name, err)
			}
		}
		st := report.Step{Name: s.name, State: prev.State, StartedAt: prev.StartedAt, FinishedAt: prev.FinishedAt, Detail: prev.Detail}
		ru.out.Steps = append(ru.out.Steps, st)
		ru.out.Resumed++
		ru.emit(StepEvent{Step: s.name, State: prev.State, Detail: prev.Detail, Resumed: true})
		return nil
	}
	if err := ru.step(ctx, s.name, s.timeout, s.fn); err != nil {
		if errors.Is(err, errAwaiting) {
			return err
		}
		ru.out.FailedStep = s.name
		return fmt.Errorf("step %s: %w", s.name, err)
	}
	return nil
}

// resume reads what earlier runs of the order did: the steps they finished
// (those after the last rollback or restart), the readings those steps
// took, and when the visit began.
func (ru *run) resume(ctx context.Context) error {
	ru.done = map[string]store.Step{}
	o, state, err := ru.Store.GetOrder(ctx, ru.out.OrderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if ru.Restart {
		if id, err := ru.Store.BeginStep(ctx, ru.out.OrderID, StepRestart); err == nil {
			_ = ru.Store.FinishStep(ctx, id, store.StepDone, "the visit starts over", "")
		}
		return nil
	}
	steps, err := ru.Store.Steps(ctx, ru.out.OrderID)
	if err != nil {
		return err
	}
	for _, st := range steps {
		switch {
		case st.Name == StepRollback || st.Name == StepRestart:
			// The changes before a rollback were undone; a restart
			// starts over.
			clear(ru.done)
			ru.started = time.Time{}
		case st.State == store.StepDone || st.State == store.StepSkipped:
			ru.done[st.Name] = st
			if st.Name == StepFetchOrder && ru.started.IsZero() {
				ru.started = st.StartedAt
			}
		default:
			delete(ru.done, st.Name)
		}
	}
	if ru.started.IsZero() {
		ru.started = ru.now()
	}
	if state == OrderClosed && len(ru.done) > 0 {
		ru.ord = o
	}
	if len(ru.done) == 0 {
		return nil
	}
	done := map[int64]bool{}
	for _, st := range ru.done {
		done[st.ID] = true
	}
	rs, err := ru.Store.Readings(ctx, ru.out.OrderID)
	if err != nil {
		return err
	}
	for _, r := range rs {
		// Readings of a step cut short (or undone) do not count; a
		// reading recorded outside a run (diag run --order) does.
		if r.StepID != 0 && !done[r.StepID] {
			continue
		}
		ru.out.Readings = append(ru.out.Readings, report.Reading{Step: r.Step, Name: r.Name, Value: r.Value, Unit: r.Unit, At: r.At})
	}
	return nil
}

// finished reports whether the order is already closed, by an earlier run
// of this visit: then the run does nothing.
func (ru *run) finished() bool {
	up, ok := ru.done[StepUpload]
	if !ok || ru.ord == nil {
		return false
	}
	ru.out.State = OrderClosed
	ru.out.Resumed = len(ru.done)
	ru.emit(StepEvent{Step: StepUpload, State: up.State, Detail: "the order is closed already: " + up.Detail + " (--restart runs the visit again)", Resumed: true})
	return true
}

// StepTimeLimit names the StepEvent that warns of the visit's time limit
// (State StateWarning at 80%, StateOverrun past it).
const StepTimeLimit = "time_limit"

// States of the StepTimeLimit event.
const (
	StateWarning = "warning"
	StateOverrun = "overrun"
)

// visitLimit is the operator's time limit for the visit: the order type's
// when one is configured, else the XT-2's when the order has one, else the
// e8's.
func (ru *run) visitLimit() time.Duration {
	if ru.ord == nil {
		return ru.Limits.VisitLimitE8
	}
	var byType time.Duration
	switch ru.ord.Type {
	case order.TypeMove:
		byType = ru.Limits.VisitLimitMove
	case order.TypeRepair:
		byType = ru.Limits.VisitLimitRepair
	case order.TypeRemoval:
		byType = ru.Limits.VisitLimitRemoval
	}
	switch {
	case byType > 0:
		return byType
	case ru.ord.HasDevice(order.DeviceXT2):
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

// curStep is the store ID of the step being run (0 before the order is
// stored); readings and findings are tied to it.
type curStepKey struct{}

func stepIDOf(ctx context.Context) int64 {
	id, _ := ctx.Value(curStepKey{}).(int64)
	return id
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
	sctx, cancel := context.WithTimeout(context.WithValue(ctx, curStepKey{}, stepID), timeout)
	ru.keep = nil
	detail, err := fn(sctx)
	if err != nil && errors.Is(sctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("%w (step limit %s)", err, timeout)
	}
	cancel()
	st := report.Step{Name: name, State: StateDone, StartedAt: start, FinishedAt: ru.now(), Detail: detail}
	switch {
	case errors.Is(err, errSkipped):
		st.State, err = StateSkipped, nil
	case errors.Is(err, errAwaiting):
		st.State = StatePending
	case err != nil:
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
		wctx := context.WithoutCancel(ctx)
		if ru.keep != nil && (st.State == StateDone || st.State == StateSkipped) {
			if b, jerr := json.Marshal(ru.keep); jerr != nil {
				err = errors.Join(err, fmt.Errorf("encode step result: %w", jerr))
			} else if serr := ru.Store.SetStepResult(wctx, stepID, b); serr != nil {
				err = errors.Join(err, fmt.Errorf("record step result: %w", serr))
			}
		}
		// Finishing the step comes last: a run killed before this line
		// left the step unfinished, and a resumed run does it again.
		if serr := ru.Store.FinishStep(wctx, stepID, st.State, st.Detail, st.Error); serr != nil {
			err = errors.Join(err, fmt.Errorf("record step: %w", serr))
		}
	}
	ru.keep = nil
	ru.out.Steps = append(ru.out.Steps, st)
	ru.emit(StepEvent{Step: name, State: st.State, Detail: detail, Error: st.Error, Took: st.FinishedAt.Sub(start)})
	return err
}

func (ru *run) emit(ev StepEvent) {
	if ru.Progress != nil {
		ru.Progress(ev)
	}
}

// restoreInto returns a restore function that decodes a kept result into v.
func restoreInto[T any](v *T) func([]byte) error {
	return func(b []byte) error { return json.Unmarshal(b, v) }
}
