package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/agent/store"
)

// waitTimeout bounds every wait of these tests; a test that reaches it has
// hung, it does not measure anything.
const waitTimeout = 20 * time.Second

func openStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

// newRunner returns a runner on a fresh store; the cleanup shuts it down
// and waits for its work, so that no goroutine outlives the test.
func newRunner(t *testing.T, concurrency int) (*Runner, *store.Store) {
	t.Helper()
	s, _ := openStore(t)
	r := &Runner{Store: s, Concurrency: concurrency, EventBuffer: 1024}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = r.Shutdown(ctx)
	})
	return r, s
}

func deviceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("d%02d", i)
	}
	return ids
}

// collect reads events until the channel is closed.
func collect(t *testing.T, ch <-chan Event) []Event {
	t.Helper()
	var out []Event
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("event stream not closed; got %d events, the last %+v", len(out), out[len(out)-1:])
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkStream checks the invariants of a complete subscription: a snapshot
// first, numbered events in order, every device of devices finished exactly
// once and started (in the snapshot or by an event) before it finished,
// job_finished last. It returns the job_finished event.
func checkStream(t *testing.T, evs []Event, devices []string) Event {
	t.Helper()
	if len(evs) < 2 || evs[0].Type != EventSnapshot || evs[len(evs)-1].Type != EventJobFinished {
		t.Fatalf("stream %v: want a snapshot first and job_finished last", types(evs))
	}
	started := map[string]bool{}
	for _, d := range evs[0].Running {
		started[d] = true
	}
	finished := map[string]int{}
	seq := evs[0].Seq
	for _, ev := range evs[1:] {
		if ev.Seq != seq+1+int64(ev.Missed) {
			t.Errorf("event %+v follows seq %d with %d missed", ev, seq, ev.Missed)
		}
		seq = ev.Seq
		switch ev.Type {
		case EventDeviceStarted:
			if started[ev.DeviceID] {
				t.Errorf("device %s started twice", ev.DeviceID)
			}
			started[ev.DeviceID] = true
		case EventDeviceFinished:
			if !started[ev.DeviceID] {
				t.Errorf("device %s finished before it started", ev.DeviceID)
			}
			finished[ev.DeviceID]++
		}
	}
	for _, d := range devices {
		if finished[d] != 1 {
			t.Errorf("device %s finished %d times in the stream, want 1", d, finished[d])
		}
	}
	return evs[len(evs)-1]
}

func types(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type+":"+ev.DeviceID)
	}
	return out
}

// TestFleetBoundedConcurrency runs 50 devices with Concurrency 5.
func TestFleetBoundedConcurrency(t *testing.T) {
	r, s := newRunner(t, 5)
	ctx := context.Background()
	var cur, peak, calls atomic.Int32
	release := make(chan struct{})
	run := func(ctx context.Context, id string) (any, error) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if strings.HasSuffix(id, "7") {
			return map[string]string{"device": id}, errors.New("unreachable: no route to host")
		}
		return map[string]string{"device": id}, nil
	}
	devices := deviceIDs(50)
	id, err := r.Submit(ctx, "diag", "ops", devices, map[string]string{"profile": "quick"}, run)
	if err != nil {
		t.Fatal(err)
	}
	evs := subscribe(t, ctx, r, id)

	// All runs block until released: the runner must stop at 5. (The pause
	// gives a runner that ignores the bound the chance to start a sixth.)
	waitFor(t, "5 devices running", func() bool { return cur.Load() == 5 })
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 5 {
		t.Fatalf("%d devices started while 5 were blocked, want 5", n)
	}
	close(release)
	stream := collect(t, evs)

	if p := peak.Load(); p != 5 {
		t.Errorf("peak concurrency %d, want 5", p)
	}
	if n := calls.Load(); n != 50 {
		t.Errorf("run called %d times, want 50", n)
	}
	last := checkStream(t, stream, devices)
	if last.State != store.JobDone || last.Done != 50 || last.Failed != 5 || last.Total != 50 {
		t.Errorf("job_finished = %+v; want done, 50 done, 5 failed of 50", last)
	}
	for _, ev := range stream {
		if ev.Missed != 0 {
			t.Errorf("event %+v: missed events with a large buffer", ev)
		}
		if ev.Type == EventDeviceFinished {
			want := store.ResultDone
			if strings.HasSuffix(ev.DeviceID, "7") {
				want = store.ResultFailed
			}
			if ev.State != want || string(ev.Result) != `{"device":"`+ev.DeviceID+`"}` {
				t.Errorf("device_finished %+v: want state %s and the device's result", ev, want)
			}
		}
	}

	j, err := s.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.JobDone || j.Kind != "diag" || j.CreatedBy != "ops" || j.Total != 50 || j.DoneCount != 50 || j.FailedCount != 5 ||
		string(j.Params) != `{"profile":"quick"}` || j.StartedAt.IsZero() || j.FinishedAt.IsZero() {
		t.Errorf("stored job = %+v", j)
	}
	rs, err := s.JobResults(ctx, id)
	if err != nil || len(rs) != 50 {
		t.Fatalf("JobResults: %d results, %v; want 50", len(rs), err)
	}
	for _, res := range rs {
		want, wantErr := store.ResultDone, ""
		if strings.HasSuffix(res.DeviceID, "7") {
			want, wantErr = store.ResultFailed, "unreachable: no route to host"
		}
		if res.State != want || res.Error != wantErr || string(res.Result) != `{"device":"`+res.DeviceID+`"}` {
			t.Errorf("stored result %+v: want %s %q with the device's result", res, want, wantErr)
		}
	}
	// Once finished, the job is no longer active; a late subscriber gets
	// its end from the store.
	if err := r.Cancel(id); !errors.Is(err, ErrNotActive) {
		t.Errorf("Cancel of a finished job: %v, want ErrNotActive", err)
	}
	late, _, err := r.Subscribe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, late); len(got) != 1 || got[0].Type != EventJobFinished || got[0].State != store.JobDone || got[0].Done != 50 {
		t.Errorf("late subscription = %+v; want one job_finished, done", got)
	}
	if _, _, err := r.Subscribe(ctx, "job-nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Subscribe to an unknown job: %v, want store.ErrNotFound", err)
	}
}

// TestCancelMidRun: the finished devices keep their results, the running
// and unstarted ones are recorded cancelled, the job ends cancelled.
func TestCancelMidRun(t *testing.T) {
	r, s := newRunner(t, 2)
	ctx := context.Background()
	var calls atomic.Int32
	blocked := make(chan string, 10)
	run := func(ctx context.Context, id string) (any, error) {
		calls.Add(1)
		if id < "d03" {
			return "ok", nil
		}
		blocked <- id
		<-ctx.Done()
		return nil, fmt.Errorf("diagnose %s: %w", id, ctx.Err())
	}
	devices := deviceIDs(10)
	id, err := r.Submit(ctx, "diag", "", devices, nil, run)
	if err != nil {
		t.Fatal(err)
	}
	evs := subscribe(t, ctx, r, id)
	for range 2 { // both slots are taken by blocked devices (d03, d04)
		select {
		case <-blocked:
		case <-time.After(waitTimeout):
			t.Fatal("no device blocked")
		}
	}
	if err := r.Cancel(id); err != nil {
		t.Fatal(err)
	}
	stream := collect(t, evs)
	end := stream[len(stream)-1]
	if end.Type != EventJobFinished || end.State != store.JobCancelled || end.Done != 10 || end.Error != errCancelled.Error() {
		t.Errorf("last event = %+v; want job_finished, cancelled, all 10 accounted for", end)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("run called %d times, want 5 (d00-d04): no device starts after the cancel", n)
	}
	j, _ := s.Job(ctx, id)
	if j.State != store.JobCancelled || j.DoneCount != 10 || j.Error != "cancelled by request" {
		t.Errorf("stored job = %+v", j)
	}
	rs, _ := s.JobResults(ctx, id)
	got := map[string]string{}
	for _, res := range rs {
		got[res.DeviceID] = res.State + "/" + res.Error
	}
	for _, d := range devices {
		want := "cancelled/cancelled by request"
		if d < "d03" {
			want = "done/"
		}
		if got[d] != want {
			t.Errorf("device %s: %q, want %q", d, got[d], want)
		}
	}
	if len(rs) != 10 {
		t.Errorf("%d results, want 10", len(rs))
	}
}

// TestSlowSubscriberDoesNotBlock: a subscriber that never reads while the
// job runs loses events, but the job finishes, the last event is
// job_finished with the right counts, and Missed accounts for every lost
// event.
func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	r, s := newRunner(t, 1)
	r.EventBuffer = 4
	ctx := context.Background()
	gate := make(chan struct{})
	run := func(ctx context.Context, id string) (any, error) {
		<-gate
		return nil, nil
	}
	id, err := r.Submit(ctx, "diag", "", deviceIDs(20), nil, run)
	if err != nil {
		t.Fatal(err)
	}
	evs := subscribe(t, ctx, r, id)
	close(gate)
	waitFor(t, "the job to finish in the store", func() bool {
		j, err := s.Job(ctx, id)
		return err == nil && j.State == store.JobDone
	})
	stream := collect(t, evs)
	if len(stream) > 4+1 {
		t.Errorf("got %d events, more than the buffer of 4 plus job_finished", len(stream))
	}
	last := checkStreamEnds(t, stream)
	if last.Done != 20 || last.State != store.JobDone {
		t.Errorf("job_finished = %+v; want done, 20 done", last)
	}
	delivered, missed := int64(len(stream)-1), int64(0)
	for _, ev := range stream {
		missed += int64(ev.Missed)
	}
	if missed == 0 || delivered+missed != last.Seq-stream[0].Seq {
		t.Errorf("delivered %d + missed %d events, want > 0 missed and %d in all", delivered, missed, last.Seq-stream[0].Seq)
	}
}

// checkStreamEnds checks a lossy stream: a snapshot first, seq numbers
// increasing by 1 plus the missed count, job_finished last.
func checkStreamEnds(t *testing.T, evs []Event) Event {
	t.Helper()
	if len(evs) < 2 || evs[0].Type != EventSnapshot || evs[len(evs)-1].Type != EventJobFinished {
		t.Fatalf("stream %v: want a snapshot first and job_finished last", types(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1+int64(evs[i].Missed) {
			t.Errorf("event %d (%+v) after seq %d", i, evs[i], evs[i-1].Seq)
		}
	}
	return evs[len(evs)-1]
}

// TestDeviceOutcomes: what a device's run returns becomes its stored result.
func TestDeviceOutcomes(t *testing.T) {
	tests := []struct {
		device     string
		run        func() (any, error)
		state      string
		errPrefix  string
		wantResult string
	}{
		{"ok", func() (any, error) { return map[string]int{"loss": 0}, nil }, store.ResultDone, "", `{"loss":0}`},
		{"no-result", func() (any, error) { return nil, nil }, store.ResultDone, "", ""},
		{"failed-partial", func() (any, error) { return []int{1}, errors.New("probe line: timeout") }, store.ResultFailed, "probe line: timeout", `[1]`},
		{"panic", func() (any, error) { panic("boom") }, store.ResultFailed, "panic: boom", ""},
		{"unencodable", func() (any, error) { return func() {}, nil }, store.ResultFailed, "encode the device's result", ""},
	}
	r, s := newRunner(t, 2)
	ctx := context.Background()
	var devices []string
	byDevice := map[string]func() (any, error){}
	for _, tc := range tests {
		devices = append(devices, tc.device)
		byDevice[tc.device] = tc.run
	}
	id, err := r.Submit(ctx, "probe", "", devices, nil, func(ctx context.Context, d string) (any, error) { return byDevice[d]() })
	if err != nil {
		t.Fatal(err)
	}
	evs := subscribe(t, ctx, r, id)
	collect(t, evs)
	rs, err := s.JobResults(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.JobResult{}
	for _, res := range rs {
		got[res.DeviceID] = res
	}
	for _, tc := range tests {
		t.Run(tc.device, func(t *testing.T) {
			res := got[tc.device]
			if res.State != tc.state || !strings.HasPrefix(res.Error, tc.errPrefix) || string(res.Result) != tc.wantResult {
				t.Errorf("result = %+v; want %s, error %q…, result %s", res, tc.state, tc.errPrefix, tc.wantResult)
			}
		})
	}
	if j, _ := s.Job(ctx, id); j.State != store.JobDone || j.DoneCount != 5 || j.FailedCount != 3 {
		t.Errorf("job = %+v; want done, 5 done, 3 failed", j)
	}
}

// failingStore refuses the result of one device.
type failingStore struct {
	*store.Store
	device string
}

func (f failingStore) AddJobResult(ctx context.Context, r store.JobResult) error {
	if r.DeviceID == f.device {
		return errors.New("disk I/O error")
	}
	return f.Store.AddJobResult(ctx, r)
}

// TestStoreFailureFailsJob: a result that cannot be stored stops the job,
// which ends failed with the reason.
func TestStoreFailureFailsJob(t *testing.T) {
	s, _ := openStore(t)
	r := &Runner{Store: failingStore{s, "d02"}, Concurrency: 1}
	ctx := context.Background()
	var calls atomic.Int32
	id, err := r.Submit(ctx, "diag", "", deviceIDs(6), nil, func(context.Context, string) (any, error) {
		calls.Add(1)
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil { // waits for the job
		t.Fatal(err)
	}
	j, _ := s.Job(ctx, id)
	if j.State != store.JobFailed || j.DoneCount != 2 || !strings.Contains(j.Error, "disk I/O error") {
		t.Errorf("job = %+v; want failed after 2 results, naming the store error", j)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("run called %d times, want 3: no device starts after the store failed", n)
	}
}

func TestSubmitRefuses(t *testing.T) {
	r, s := newRunner(t, 1)
	ctx := context.Background()
	noop := func(context.Context, string) (any, error) { return nil, nil }
	tests := []struct {
		name    string
		devices []string
		params  any
		run     RunFunc
		want    error
	}{
		{"no devices", nil, nil, noop, store.ErrInvalidArgument},
		{"device twice", []string{"a", "a"}, nil, noop, store.ErrInvalidArgument},
		{"no run function", []string{"a"}, nil, nil, store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Submit(ctx, "diag", "", tc.devices, tc.params, tc.run); !errors.Is(err, tc.want) {
				t.Errorf("Submit = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := r.Submit(ctx, "diag", "", []string{"a"}, func() {}, noop); err == nil {
		t.Error("Submit with params that are not JSON-encodable succeeded")
	}
	if jobs, _ := s.Jobs(ctx, 0); len(jobs) != 0 {
		t.Errorf("refused submissions stored %d jobs", len(jobs))
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Submit(ctx, "diag", "", []string{"a"}, nil, noop); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Submit after Shutdown: %v, want ErrShuttingDown", err)
	}
}

// TestShutdown: Shutdown waits for work that finishes, cancels work that
// outlives its deadline, and gives up on work that ignores cancellation by
// marking its job interrupted; no job is left queued or running.
func TestShutdown(t *testing.T) {
	t.Run("work finishes in time", func(t *testing.T) {
		r, s := newRunner(t, 2)
		ctx := context.Background()
		gate := make(chan struct{})
		id, err := r.Submit(ctx, "diag", "", deviceIDs(4), nil, func(context.Context, string) (any, error) {
			<-gate
			return "ok", nil
		})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- r.Shutdown(ctx) }()
		waitFor(t, "Shutdown to stop accepting", func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.closed
		})
		close(gate)
		if err := <-errc; err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
		if j, _ := s.Job(ctx, id); j.State != store.JobDone || j.DoneCount != 4 {
			t.Errorf("job = %+v, want done with 4 results", j)
		}
	})

	t.Run("deadline cancels long work", func(t *testing.T) {
		r, s := newRunner(t, 2)
		ctx := context.Background()
		started := make(chan struct{}, 4)
		long := func(ctx context.Context, id string) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		var ids []string
		for range 2 {
			id, err := r.Submit(ctx, "diag", "", deviceIDs(3), nil, long)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		<-started
		<-started
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := r.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
		}
		jobs, err := s.Jobs(ctx, 0)
		if err != nil || len(jobs) != 2 || !slices.Contains(ids, jobs[0].ID) || !slices.Contains(ids, jobs[1].ID) {
			t.Fatalf("Jobs = %+v, %v; want the jobs %v", jobs, err, ids)
		}
		for _, j := range jobs {
			if j.State != store.JobCancelled || j.Error != errShutdown.Error() || j.DoneCount != 3 {
				t.Errorf("job %s = %+v; want cancelled at shutdown with every device accounted for", j.ID, j)
			}
			rs, _ := s.JobResults(ctx, j.ID)
			for _, res := range rs {
				if res.State != store.ResultCancelled {
					t.Errorf("job %s device %s: %s, want cancelled", j.ID, res.DeviceID, res.State)
				}
			}
		}
	})

	t.Run("work that ignores cancellation", func(t *testing.T) {
		s, _ := openStore(t)
		r := &Runner{Store: s, Concurrency: 2, Grace: 20 * time.Millisecond}
		ctx := context.Background()
		stuck, entered := make(chan struct{}), make(chan struct{}, 2)
		id, err := r.Submit(ctx, "diag", "", []string{"a", "b"}, nil, func(_ context.Context, d string) (any, error) {
			if d == "b" {
				return "fine", nil
			}
			entered <- struct{}{}
			<-stuck // ignores ctx
			return "late", nil
		})
		if err != nil {
			t.Fatal(err)
		}
		evs := subscribe(t, ctx, r, id)
		<-entered
		waitFor(t, "device b's result", func() bool {
			j, _ := s.Job(ctx, id)
			return j.DoneCount == 1
		})
		if _, err := r.Recover(ctx); err == nil {
			t.Error("Recover while a job runs succeeded")
		}
		sctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := r.Shutdown(sctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown = %v, want Canceled", err)
		}
		j, _ := s.Job(ctx, id)
		if j.State != store.JobInterrupted || j.DoneCount != 1 || !strings.Contains(j.Error, "[a]") {
			t.Errorf("job = %+v; want interrupted naming device a, b's result kept", j)
		}
		stream := collect(t, evs)
		if end := stream[len(stream)-1]; end.Type != EventJobFinished || end.State != store.JobInterrupted {
			t.Errorf("last event = %+v; want job_finished, interrupted", end)
		}
		// The stuck run returns later: its result is refused, the job
		// stays as recorded.
		close(stuck)
		r.wg.Wait()
		j2, _ := s.Job(ctx, id)
		rs, _ := s.JobResults(ctx, id)
		if j2.State != store.JobInterrupted || j2.DoneCount != 1 || len(rs) != 1 || rs[0].DeviceID != "b" {
			t.Errorf("after the late return: job %+v, results %+v; want unchanged", j2, rs)
		}
	})
}

// TestEventJSON pins the wire form of an event.
func TestEventJSON(t *testing.T) {
	ev := Event{Type: EventDeviceFinished, JobID: "job-1", Seq: 3, At: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC),
		DeviceID: "d1", State: "done", Result: json.RawMessage(`{"a": 1}`), Total: 2, Done: 1}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"device_finished","job_id":"job-1","seq":3,"at":"2025-03-01T09:00:00Z","device_id":"d1","state":"done","result":{"a":1},"total":2,"done":1,"failed":0}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	if slices.Contains(b, '\n') {
		t.Error("event JSON has a newline; it would break the SSE data line")
	}
}

// subscribe follows job id's events until the test ends.
func subscribe(t *testing.T, ctx context.Context, r *Runner, id string) <-chan Event {
	t.Helper()
	evs, unsubscribe, err := r.Subscribe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsubscribe)
	return evs
}
