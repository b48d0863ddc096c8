// Package jobs runs the remote-support daemon's long work — a diagnosis of
// one device, or of a fleet — as jobs recorded in the local store.
//
// A job runs one function per device, at most Runner.Concurrency devices at
// once across all the runner's jobs, and at most its own
// SubmitOptions.Limit. Each device's result is stored as soon as it
// finishes, with the job's counts, in one transaction; the job is
// finished (done, failed or cancelled) in one more. Progress is published as
// Events to subscribers, and SSEHandler serves them as Server-Sent Events.
//
// Nothing in the store is left half-written: every write is a transaction,
// a device's first result is final (store.AddJobResult), and a job that an
// agent left queued or running (kill -9, power cut) is marked interrupted by
// Recover at the next start, with the results it finished intact.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"fieldagent/agent/store"
)

// Sentinel errors.
var (
	// ErrShuttingDown means Submit was called after Shutdown.
	ErrShuttingDown = errors.New("the job runner is shutting down: no new jobs are accepted")
	// ErrNotActive means the job is not running in this runner (it has
	// finished, or it never ran here): there is nothing to cancel.
	ErrNotActive = errors.New("the job is not running in this agent")
)

// Causes of a job's cancellation; their text is stored as the error of the
// job and of its cancelled devices.
var (
	errCancelled  = errors.New("cancelled by request")
	errShutdown   = errors.New("cancelled: the agent is shutting down")
	errStoreWrite = errors.New("stopped: a device result could not be stored")
)

// Event types.
const (
	// EventSnapshot is the first event of a subscription: the job's
	// current state and counts, and the devices running now.
	EventSnapshot = "snapshot"
	// EventDeviceStarted: a device's run has started.
	EventDeviceStarted = "device_started"
	// EventDeviceFinished: a device's result is stored (State is its
	// store.Result* state, Result its JSON result, Error why it failed).
	EventDeviceFinished = "device_finished"
	// EventJobFinished: the job has ended and is stored as such (State is
	// its store.Job* state). It is the last event; the channel is closed
	// after it.
	EventJobFinished = "job_finished"
)

// defaults
const (
	defaultConcurrency = 4
	defaultEventBuffer = 64
	defaultGrace       = 5 * time.Second
	// storeTimeout bounds each store write of a job; the writes do not use
	// the job's context, so that a cancelled job can still record itself.
	storeTimeout = 30 * time.Second
)

// Event is one step of a job's progress. Every event carries the job's
// counts at the time it was published, so a subscriber that missed events
// still sees the right progress.
type Event struct {
	Type  string    `json:"type"` // Type is one of EventSnapshot … EventJobFinished.
	JobID string    `json:"job_id"`
	Seq   int64     `json:"seq"` // Seq numbers a job's events from 1; a snapshot has the Seq of the last event it includes.
	At    time.Time `json:"at"`
	// DeviceID is set on device events.
	DeviceID string `json:"device_id,omitempty"`
	// State is "running" for EventDeviceStarted, the device's result
	// state for EventDeviceFinished, the job's state otherwise.
	State  string          `json:"state"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	// Total is the job's number of devices, Done how many have a result
	// (done, failed or cancelled), Failed how many of those failed.
	Total  int `json:"total"`
	Done   int `json:"done"`
	Failed int `json:"failed"`
	// Running lists the devices running now (EventSnapshot only).
	Running []string `json:"running,omitempty"`
	// Missed is how many events this subscriber lost just before this one
	// because it did not keep up.
	Missed int `json:"missed,omitempty"`
}

// JobStore is the subset of *store.Store that the Runner uses.
type JobStore interface {
	CreateJob(ctx context.Context, j store.Job) error
	StartJob(ctx context.Context, id string) error
	AddJobResult(ctx context.Context, r store.JobResult) error
	FinishJob(ctx context.Context, id, state, errText string) error
	Job(ctx context.Context, id string) (store.Job, error)
	MarkInterrupted(ctx context.Context) (int, error)
}

// RunFunc does a job's work for one device. Its ctx ends when the job is
// cancelled (Cancel, Shutdown); it should then return promptly. result, if
// not nil, is stored as JSON, also when err is not nil (a partial result).
type RunFunc func(ctx context.Context, deviceID string) (result any, err error)

// Runner runs jobs. Set its fields before the first call; the zero value of
// every field but Store is usable. Its methods are safe for concurrent use.
type Runner struct {
	// Store records jobs and results; required.
	Store JobStore
	// Concurrency, if less than 1, is 4: how many devices run at once,
	// across all the runner's jobs.
	Concurrency int
	// Logger, if nil, discards.
	Logger *slog.Logger
	// Now, if nil, is time.Now. It stamps events.
	Now func() time.Time
	// EventBuffer, if less than 1, is 64: how many events a subscriber may
	// fall behind before it loses events (see Subscribe).
	EventBuffer int
	// Grace, if zero, is 5 s: how long Shutdown waits, once its context
	// has ended and work is cancelled, for device runs to return before
	// it marks their jobs interrupted.
	Grace time.Duration

	mu      sync.Mutex
	started bool
	closed  bool
	base    context.Context
	stop    context.CancelCauseFunc
	sem     chan struct{}
	active  map[string]*job
	wg      sync.WaitGroup // one per submitted job, until it is recorded as finished
}

// job is the in-memory state of a running job; guarded by Runner.mu.
type job struct {
	id     string
	ctx    context.Context
	cancel context.CancelCauseFunc

	state     string
	total     int
	done      int
	failed    int
	cancelled int
	running   map[string]bool
	seq       int64
	subs      map[*subscriber]struct{}
	ended     bool  // job_finished published, subscribers closed
	storeErr  error // the first failed result write
}

type subscriber struct {
	ch     chan Event
	missed int
}

// setup initializes the runner's state; r.mu must be held.
func (r *Runner) setup() {
	if r.started {
		return
	}
	r.started = true
	r.base, r.stop = context.WithCancelCause(context.Background())
	n := r.Concurrency
	if n < 1 {
		n = defaultConcurrency
	}
	r.sem = make(chan struct{}, n)
	r.active = make(map[string]*job)
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) eventBuffer() int {
	if r.EventBuffer < 1 {
		return defaultEventBuffer
	}
	return r.EventBuffer
}

func (r *Runner) grace() time.Duration {
	if r.Grace == 0 {
		return defaultGrace
	}
	return r.Grace
}

// withStore runs a store call with its own deadline, independent of any
// job's cancellation.
func withStore[T any](f func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	return f(ctx)
}

func newJobID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "job-" + hex.EncodeToString(b[:])
}

// SubmitOptions are a job's optional settings (SubmitWith).
type SubmitOptions struct {
	// Limit, if positive, caps how many of this job's devices run at
	// once: the job holds at most Limit of the runner's Concurrency slots,
	// and a device waiting for the job's limit holds none, so the other
	// jobs keep the rest. Zero or less means only the runner's limit.
	Limit int
}

// Submit is SubmitWith with the zero SubmitOptions.
func (r *Runner) Submit(ctx context.Context, kind, createdBy string, devices []string, params any, run RunFunc) (string, error) {
	return r.SubmitWith(ctx, kind, createdBy, devices, params, run, SubmitOptions{})
}

// SubmitWith stores a new job of a kind over devices and starts it; it returns
// the job's ID at once. run is called once per device, in the order given,
// with at most Concurrency devices running at once (and at most opts.Limit
// of this job's); each device's result is stored as it finishes (done, or
// failed with the error text). The job ends
// done when every device has a result, cancelled if it was cancelled first
// (devices not finished are then recorded cancelled), failed if a result
// could not be stored. params, if not nil, is stored as JSON with the job.
//
// ctx bounds only the store write that creates the job: the job runs until
// it ends, Cancel or Shutdown. Device IDs must be non-empty and distinct
// (else an error wrapping store.ErrInvalidArgument); after Shutdown, Submit
// returns ErrShuttingDown.
func (r *Runner) SubmitWith(ctx context.Context, kind, createdBy string, devices []string, params any, run RunFunc, opts SubmitOptions) (string, error) {
	if run == nil {
		return "", fmt.Errorf("jobs: submit %s job: %w: no run function", kind, store.ErrInvalidArgument)
	}
	var pb []byte
	if params != nil {
		var err error
		if pb, err = json.Marshal(params); err != nil {
			return "", fmt.Errorf("jobs: submit %s job: encode params: %w", kind, err)
		}
	}
	devices = slices.Clone(devices)
	id := newJobID()

	r.mu.Lock()
	r.setup()
	if r.closed {
		r.mu.Unlock()
		return "", fmt.Errorf("jobs: submit %s job: %w", kind, ErrShuttingDown)
	}
	r.wg.Add(1) // before Shutdown can wait: the job is accounted for from here
	r.mu.Unlock()

	if err := r.Store.CreateJob(ctx, store.Job{ID: id, Kind: kind, CreatedBy: createdBy, Devices: devices, Params: pb}); err != nil {
		r.wg.Done()
		return "", fmt.Errorf("jobs: submit %s job: %w", kind, err)
	}
	jctx, cancel := context.WithCancelCause(r.base)
	j := &job{
		id: id, ctx: jctx, cancel: cancel,
		state: store.JobQueued, total: len(devices),
		running: make(map[string]bool), subs: make(map[*subscriber]struct{}),
	}
	r.mu.Lock()
	r.active[id] = j
	r.mu.Unlock()
	r.logger().Info("job submitted", "job", id, "kind", kind, "devices", len(devices), "by", createdBy)
	go r.run(j, devices, run, opts.Limit)
	return id, nil
}

// run runs a job to its end, at most limit of its devices at once (when
// limit is positive).
func (r *Runner) run(j *job, devices []string, fn RunFunc, limit int) {
	defer r.wg.Done()
	log := r.logger().With("job", j.id)
	if _, err := withStore(func(ctx context.Context) (struct{}, error) { return struct{}{}, r.Store.StartJob(ctx, j.id) }); err != nil {
		log.Error("job could not start", "err", err)
		r.finish(j, store.JobFailed, "start: "+err.Error())
		return
	}
	r.mu.Lock()
	j.state = store.JobRunning
	r.mu.Unlock()

	// own holds the job's slots when it has a limit: a device takes one of
	// its job's slots first, then one of the runner's, so that a job at its
	// limit does not sit on shared slots that other jobs could use.
	var own chan struct{}
	if limit > 0 && limit < len(devices) {
		own = make(chan struct{}, limit)
	}
	release := func() {
		<-r.sem
		if own != nil {
			<-own
		}
	}
	var wg sync.WaitGroup
loop:
	for _, d := range devices {
		if own != nil {
			select {
			case <-j.ctx.Done():
				break loop
			case own <- struct{}{}:
			}
		}
		select {
		case <-j.ctx.Done():
			if own != nil {
				<-own
			}
			break loop
		case r.sem <- struct{}{}:
		}
		if j.ctx.Err() != nil { // both were ready and select chose the slot
			release()
			break
		}
		r.mu.Lock()
		j.running[d] = true
		r.publish(j, Event{Type: EventDeviceStarted, DeviceID: d, State: "running"})
		r.mu.Unlock()
		wg.Go(func() {
			defer release()
			r.runDevice(j, d, fn, log)
		})
	}
	wg.Wait()

	r.mu.Lock()
	storeErr, done, cancelled := j.storeErr, j.done, j.cancelled
	r.mu.Unlock()
	switch {
	case storeErr != nil:
		r.finish(j, store.JobFailed, errStoreWrite.Error()+": "+storeErr.Error())
	case done == j.total && cancelled == 0:
		r.finish(j, store.JobDone, "")
	default:
		r.finish(j, store.JobCancelled, context.Cause(j.ctx).Error())
	}
}

// runDevice runs one device and records its result.
func (r *Runner) runDevice(j *job, deviceID string, fn RunFunc, log *slog.Logger) {
	res := store.JobResult{JobID: j.id, DeviceID: deviceID}
	out, err := call(j.ctx, deviceID, fn)
	if out != nil {
		b, merr := json.Marshal(out)
		switch {
		case merr != nil && err == nil:
			err = fmt.Errorf("encode the device's result: %w", merr)
		case merr == nil && string(b) != "null":
			res.Result = b
		}
	}
	switch {
	case err == nil:
		res.State = store.ResultDone
	case j.ctx.Err() != nil:
		res.State, res.Error = store.ResultCancelled, context.Cause(j.ctx).Error()
	default:
		res.State, res.Error = store.ResultFailed, err.Error()
	}
	_, werr := withStore(func(ctx context.Context) (struct{}, error) { return struct{}{}, r.Store.AddJobResult(ctx, res) })

	r.mu.Lock()
	defer r.mu.Unlock()
	delete(j.running, deviceID)
	if werr != nil {
		if j.ended { // Shutdown gave up on this run and marked the job interrupted
			log.Warn("device finished after its job was marked interrupted; result dropped", "device", deviceID, "state", res.State)
			return
		}
		log.Error("device result not stored; stopping the job", "device", deviceID, "err", werr)
		if j.storeErr == nil {
			j.storeErr = werr
		}
		j.cancel(errStoreWrite)
		return
	}
	j.done++
	switch res.State {
	case store.ResultFailed:
		j.failed++
	case store.ResultCancelled:
		j.cancelled++
	}
	r.publish(j, Event{Type: EventDeviceFinished, DeviceID: deviceID, State: res.State, Error: res.Error, Result: res.Result})
}

// call runs fn, turning a panic into an error.
func call(ctx context.Context, deviceID string, fn RunFunc) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(ctx, deviceID)
}

// finish records the end of a job in the store, publishes job_finished and
// closes the subscriptions. If the job was already marked ended (Shutdown
// gave up on it), the store refuses the second finish and nothing is
// published again.
func (r *Runner) finish(j *job, state, errText string) {
	defer j.cancel(nil)
	log := r.logger().With("job", j.id)
	if _, err := withStore(func(ctx context.Context) (struct{}, error) {
		return struct{}{}, r.Store.FinishJob(ctx, j.id, state, errText)
	}); err != nil {
		r.mu.Lock()
		ended := j.ended
		r.mu.Unlock()
		if !ended {
			// The job stays queued or running in the store; Recover
			// marks it interrupted at the next start.
			log.Error("job end not stored", "state", state, "err", err)
		}
	} else {
		log.Info("job finished", "state", state, "err", errText)
	}
	r.end(j, state, errText)
}

// end publishes job_finished with the stored state of the job (or state
// and errText if it cannot be read), closes the subscriptions and forgets
// the job. A second call is a no-op.
func (r *Runner) end(j *job, state, errText string) {
	sj, err := withStore(func(ctx context.Context) (store.Job, error) { return r.Store.Job(ctx, j.id) })
	r.mu.Lock()
	defer r.mu.Unlock()
	if j.ended {
		return
	}
	ev := Event{Type: EventJobFinished, State: state, Error: errText}
	if err == nil {
		ev.State, ev.Error = sj.State, sj.Error
		j.done, j.failed = sj.DoneCount, sj.FailedCount
	}
	j.state = ev.State
	r.publish(j, ev)
	j.ended = true
	for s := range j.subs {
		close(s.ch)
	}
	clear(j.subs)
	delete(r.active, j.id)
}

// publish numbers ev, stamps it with the job's counts and sends it to every
// subscriber that has room; r.mu must be held. A subscriber's channel holds
// EventBuffer events plus one slot kept for job_finished, so the last event
// is never dropped.
func (r *Runner) publish(j *job, ev Event) {
	j.seq++
	ev.Seq, ev.JobID, ev.At = j.seq, j.id, r.now()
	ev.Total, ev.Done, ev.Failed = j.total, j.done, j.failed
	for s := range j.subs {
		if ev.Type != EventJobFinished && len(s.ch) >= r.eventBuffer() {
			s.missed++
			continue
		}
		e := ev
		e.Missed, s.missed = s.missed, 0
		s.ch <- e
	}
}

// snapshot is the job's current state as an event; r.mu must be held.
func (r *Runner) snapshot(j *job) Event {
	running := make([]string, 0, len(j.running))
	for d := range j.running {
		running = append(running, d)
	}
	slices.Sort(running)
	return Event{
		Type: EventSnapshot, JobID: j.id, Seq: j.seq, At: r.now(), State: j.state,
		Total: j.total, Done: j.done, Failed: j.failed, Running: running,
	}
}

// Subscribe follows a job's progress. The first event is an EventSnapshot
// of the job's current state; then come the job's events as they happen,
// in the order they happened (a device's device_started before its
// device_finished), ending with EventJobFinished, after which the channel
// is closed.
//
// A subscriber that does not keep up never slows the work: once it is
// EventBuffer events behind, further events are dropped for it (except
// job_finished, which always arrives), and the next event it gets says in
// Missed how many it lost. Counts are in every event, so its progress stays
// right; the stored results (store.JobResults) have the details.
//
// A job that is not running in this runner gets one event from the store:
// EventJobFinished if it has finished, else an EventSnapshot (a job left
// by another agent process); then the channel is closed. An unknown job is
// an error wrapping store.ErrNotFound. Call unsubscribe when done
// listening; it closes the channel if it is still open, and may be called
// more than once.
func (r *Runner) Subscribe(ctx context.Context, jobID string) (events <-chan Event, unsubscribe func(), err error) {
	r.mu.Lock()
	r.setup()
	if j, ok := r.active[jobID]; ok && !j.ended {
		s := &subscriber{ch: make(chan Event, r.eventBuffer()+1)}
		s.ch <- r.snapshot(j)
		j.subs[s] = struct{}{}
		r.mu.Unlock()
		return s.ch, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if _, ok := j.subs[s]; ok {
				delete(j.subs, s)
				close(s.ch)
			}
		}, nil
	}
	r.mu.Unlock()
	sj, err := r.Store.Job(ctx, jobID)
	if err != nil {
		return nil, nil, fmt.Errorf("jobs: subscribe to job %q: %w", jobID, err)
	}
	ev := Event{
		Type: EventSnapshot, JobID: sj.ID, At: r.now(), State: sj.State, Error: sj.Error,
		Total: sj.Total, Done: sj.DoneCount, Failed: sj.FailedCount,
	}
	if sj.Finished() {
		ev.Type = EventJobFinished
	}
	ch := make(chan Event, 1)
	ch <- ev
	close(ch)
	return ch, func() {}, nil
}

// Cancel cancels a running job: its device runs' contexts end, devices not
// yet finished are recorded cancelled, and the job ends cancelled (unless
// every device had finished already). It returns at once; follow the job
// with Subscribe to see it end. A job not running here is ErrNotActive.
func (r *Runner) Cancel(jobID string) error {
	r.mu.Lock()
	j, ok := r.active[jobID]
	ok = ok && !j.ended
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("jobs: cancel job %q: %w", jobID, ErrNotActive)
	}
	j.cancel(errCancelled)
	r.logger().Info("job cancel requested", "job", jobID)
	return nil
}

// Recover marks the jobs a previous agent left queued or running as
// interrupted (store.MarkInterrupted) and returns how many. Call it once at
// start, before the first Submit; it refuses to run while this runner has
// jobs running.
func (r *Runner) Recover(ctx context.Context) (int, error) {
	r.mu.Lock()
	r.setup()
	n := len(r.active)
	r.mu.Unlock()
	if n > 0 {
		return 0, fmt.Errorf("jobs: recover: %d jobs are running in this runner: call Recover at start, before Submit", n)
	}
	marked, err := r.Store.MarkInterrupted(ctx)
	if err != nil {
		return 0, fmt.Errorf("jobs: recover: %w", err)
	}
	if marked > 0 {
		r.logger().Warn("jobs left unfinished by a previous run marked interrupted", "jobs", marked)
	}
	return marked, nil
}

// Shutdown stops accepting jobs and waits for the running ones to finish.
// When ctx ends first, it cancels them (they end cancelled, their unfinished
// devices recorded so) and waits up to Grace for their device runs to
// return; a job whose runs still have not returned is then marked
// interrupted in the store, and a result it produces later is refused. So
// when Shutdown returns, no job of this runner is queued or running in the
// store (unless the store itself failed, which is logged; Recover then
// marks the job interrupted at the next start).
//
// Shutdown returns nil if every job finished on its own, else an error
// wrapping ctx's error.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.setup()
	r.closed = true
	r.mu.Unlock()

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	r.stop(errShutdown)
	t := time.NewTimer(r.grace())
	defer t.Stop()
	select {
	case <-done:
		return fmt.Errorf("jobs: shutdown: %w: unfinished jobs were cancelled", ctx.Err())
	case <-t.C:
	}

	r.mu.Lock()
	var stuck []*job
	for _, j := range r.active {
		if !j.ended {
			stuck = append(stuck, j)
		}
	}
	r.mu.Unlock()
	for _, j := range stuck {
		r.mu.Lock()
		running := make([]string, 0, len(j.running))
		for d := range j.running {
			running = append(running, d)
		}
		r.mu.Unlock()
		slices.Sort(running)
		msg := fmt.Sprintf("interrupted: the agent shut down and the runs of devices %v did not stop after cancellation", running)
		if _, err := withStore(func(ctx context.Context) (struct{}, error) {
			return struct{}{}, r.Store.FinishJob(ctx, j.id, store.JobInterrupted, msg)
		}); err != nil {
			r.logger().Error("job end not stored at shutdown", "job", j.id, "err", err)
		}
		r.logger().Warn("job marked interrupted at shutdown", "job", j.id, "running", running)
		r.end(j, store.JobInterrupted, msg)
	}
	return fmt.Errorf("jobs: shutdown: %w: %d jobs did not stop within the grace period and were marked interrupted", ctx.Err(), len(stuck))
}
