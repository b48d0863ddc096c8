package jobs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/agent/store"
)

// gauge counts concurrent runs and remembers the peak.
type gauge struct{ cur, peak atomic.Int32 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

// TestSubmitLimit: a job with Limit 2 never runs more than 2 devices at
// once, and while it waits for its own limit it holds none of the runner's
// slots: a second job, submitted after it, gets the other two.
func TestSubmitLimit(t *testing.T) {
	r, s := newRunner(t, 4)
	ctx := context.Background()
	var limited, other gauge
	release := make(chan struct{})
	blocking := func(g *gauge) RunFunc {
		return func(ctx context.Context, id string) (any, error) {
			g.enter()
			defer g.leave()
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return id, nil
		}
	}
	devices := deviceIDs(12)
	a, err := r.SubmitWith(ctx, "diag", "ops", devices, nil, blocking(&limited), SubmitOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the limited job's 2 devices running", func() bool { return limited.cur.Load() == 2 })
	b, err := r.Submit(ctx, "diag", "ops", deviceIDs(6), nil, blocking(&other))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other job's 2 devices running", func() bool { return other.cur.Load() == 2 })
	time.Sleep(50 * time.Millisecond) // a job that ignored a limit would start more now
	if p, q := limited.peak.Load(), other.peak.Load(); p != 2 || q != 2 {
		t.Fatalf("peaks: limited job %d (want 2), other job %d (want the 2 shared slots left)", p, q)
	}
	close(release)
	for _, id := range []string{a, b} {
		evs, unsubscribe, err := r.Subscribe(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		stream := collect(t, evs)
		unsubscribe()
		if end := stream[len(stream)-1]; end.State != store.JobDone {
			t.Errorf("job %s ended %+v, want done", id, end)
		}
	}
	if p := limited.peak.Load(); p != 2 {
		t.Errorf("limited job's peak %d, want 2", p)
	}
	if j, _ := s.Job(ctx, a); j.DoneCount != 12 {
		t.Errorf("limited job: %d results, want 12", j.DoneCount)
	}
}

// TestSubmitLimitMany: many jobs with limits side by side never exceed
// their limits or the runner's, and all finish.
func TestSubmitLimitMany(t *testing.T) {
	r, _ := newRunner(t, 6)
	ctx := context.Background()
	var total gauge
	var wg sync.WaitGroup
	for i := range 5 {
		limit := i%3 + 1
		var g gauge
		id, err := r.SubmitWith(ctx, "diag", "", deviceIDs(15), nil, func(ctx context.Context, _ string) (any, error) {
			g.enter()
			total.enter()
			defer g.leave()
			defer total.leave()
			time.Sleep(time.Millisecond)
			if n := g.cur.Load(); int(n) > limit {
				return nil, fmt.Errorf("%d running, over the limit %d", n, limit)
			}
			return nil, nil
		}, SubmitOptions{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		evs, unsubscribe, err := r.Subscribe(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer unsubscribe()
			var last Event
			for ev := range evs {
				last = ev
			}
			if last.State != store.JobDone || last.Failed != 0 || last.Done != 15 {
				t.Errorf("job with limit %d ended %+v; want done, none failed", limit, last)
			}
			if p := g.peak.Load(); int(p) > limit {
				t.Errorf("job with limit %d: peak %d", limit, p)
			}
		})
	}
	wg.Wait()
	if p := total.peak.Load(); p > 6 {
		t.Errorf("runner peak %d, over its concurrency 6", p)
	}
}

// TestCancelLimited: cancelling a job with a limit records its unstarted
// devices cancelled and keeps the finished ones.
func TestCancelLimited(t *testing.T) {
	r, s := newRunner(t, 8)
	ctx := context.Background()
	blocked := make(chan string, 20)
	id, err := r.SubmitWith(ctx, "diag", "", deviceIDs(10), nil, func(ctx context.Context, id string) (any, error) {
		if id < "d02" {
			return "ok", nil
		}
		blocked <- id
		<-ctx.Done()
		return nil, ctx.Err()
	}, SubmitOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	evs := subscribe(t, ctx, r, id)
	for range 2 {
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
	if end := stream[len(stream)-1]; end.State != store.JobCancelled || end.Done != 10 {
		t.Errorf("end %+v; want cancelled, 10 accounted for", end)
	}
	rs, _ := s.JobResults(ctx, id)
	states := map[string]int{}
	for _, res := range rs {
		states[res.State]++
	}
	if states[store.ResultDone] != 2 || states[store.ResultCancelled] != 8 {
		t.Errorf("results by state %v; want 2 done, 8 cancelled", states)
	}
}
