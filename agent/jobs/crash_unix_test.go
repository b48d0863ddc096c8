//go:build unix

package jobs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldagent/agent/store"
)

// crashEnv, when set, makes TestCrashHelper run a fleet job in the store
// file it names and kill its own process in the middle.
const crashEnv = "FIELDAGENT_JOBS_CRASH_DB"

// TestCrashHelper is not a test on its own: TestKillDuringFleetRun runs the
// test binary again with crashEnv set to run it. It starts a job over 10
// devices (2 at once) whose first 4 finish and the rest hang, and SIGKILLs
// its process once the 4 results are stored.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestKillDuringFleetRun")
	}
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Store: s, Concurrency: 2}
	ctx := context.Background()
	id, err := r.Submit(ctx, "diag", "ops", deviceIDs(10), nil, func(ctx context.Context, d string) (any, error) {
		if d < "d04" {
			return map[string]string{"device": d}, nil
		}
		select {} // hangs until the process dies
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := r.Subscribe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for ev := range evs {
		if ev.Done >= 4 { // events are published after the result is committed
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	t.Fatal("event stream ended before 4 devices finished")
}

// TestKillDuringFleetRun: kill -9 during a fleet run; after restart the
// finished results are all there and the job is marked interrupted with
// the right count.
func TestKillDuringFleetRun(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("inside the helper")
	}
	_, path := openStore(t) // creates the file; the helper opens it too
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper exited with %v, want killed by SIGKILL; output:\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL || ctx.Err() != nil {
		t.Fatalf("helper ended with %v (timed out: %v), want killed by its own SIGKILL; output:\n%s", err, ctx.Err() != nil, out)
	}

	// Restart: a new store and runner on the file.
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	jobs, err := s.Jobs(ctx, 0)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Jobs = %+v, %v; want the helper's one job", jobs, err)
	}
	id := jobs[0].ID
	if jobs[0].State != store.JobRunning {
		t.Fatalf("job before recovery = %+v; want running (left by the killed agent)", jobs[0])
	}
	r := &Runner{Store: s, Now: func() time.Time { return time.Unix(0, 0) }}
	n, err := r.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want 1", n, err)
	}
	j, err := s.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.JobInterrupted || j.DoneCount != 4 || j.Total != 10 || j.FailedCount != 0 || j.FinishedAt.IsZero() ||
		!strings.Contains(j.Error, "interrupted") {
		t.Errorf("job after recovery = %+v; want interrupted, 4 of 10 done", j)
	}
	rs, err := s.JobResults(ctx, id)
	if err != nil || len(rs) != 4 {
		t.Fatalf("JobResults = %+v, %v; want the 4 finished", rs, err)
	}
	// Devices run two at a time, so results are stored in any order.
	slices.SortFunc(rs, func(a, b store.JobResult) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	for i, res := range rs {
		want := deviceIDs(4)[i]
		if res.DeviceID != want || res.State != store.ResultDone || string(res.Result) != `{"device":"`+want+`"}` {
			t.Errorf("result %d = %+v; want %s done with its result", i, res, want)
		}
	}
	if n, err := r.Recover(ctx); err != nil || n != 0 {
		t.Errorf("second Recover = %d, %v; want 0", n, err)
	}
	evs, _, err := r.Subscribe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, evs); len(got) != 1 || got[0].Type != EventJobFinished || got[0].State != store.JobInterrupted || got[0].Done != 4 {
		t.Errorf("subscription to the interrupted job = %+v", got)
	}
}
