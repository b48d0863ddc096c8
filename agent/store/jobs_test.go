package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// fakeClock returns times one second apart.
func fakeClock() func() time.Time {
	t := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func TestCreateJobRefusesBadInput(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if err := s.CreateJob(ctx, Job{ID: "j1", Kind: "diag", Devices: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		job  Job
		want error
	}{
		{"no ID", Job{Kind: "diag", Devices: []string{"a"}}, ErrInvalidArgument},
		{"no kind", Job{ID: "j2", Devices: []string{"a"}}, ErrInvalidArgument},
		{"no devices", Job{ID: "j2", Kind: "diag"}, ErrInvalidArgument},
		{"empty device", Job{ID: "j2", Kind: "diag", Devices: []string{"a", ""}}, ErrInvalidArgument},
		{"device twice", Job{ID: "j2", Kind: "diag", Devices: []string{"a", "b", "a"}}, ErrInvalidArgument},
		{"params not JSON", Job{ID: "j2", Kind: "diag", Devices: []string{"a"}, Params: []byte("{")}, ErrInvalidArgument},
		{"ID taken", Job{ID: "j1", Kind: "probe", Devices: []string{"b"}}, ErrDuplicate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreateJob(ctx, tc.job); !errors.Is(err, tc.want) {
				t.Errorf("CreateJob = %v, want %v", err, tc.want)
			}
		})
	}
	jobs, err := s.Jobs(ctx, 0)
	if err != nil || len(jobs) != 1 || jobs[0].Kind != "diag" {
		t.Errorf("after refused creates: %+v, %v; want only j1 as created", jobs, err)
	}
}

func TestJobLifecycle(t *testing.T) {
	s, _ := openTemp(t)
	s.Now = fakeClock()
	ctx := context.Background()
	devices := []string{"d1", "d2", "d3", "d4"}
	if err := s.CreateJob(ctx, Job{ID: "j1", Kind: "diag", CreatedBy: "ops", Devices: devices, Params: []byte(`{"profile":"quick"}`)}); err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if j.State != JobQueued || j.Total != 4 || !slices.Equal(j.Devices, devices) || string(j.Params) != `{"profile":"quick"}` ||
		j.CreatedBy != "ops" || j.CreatedAt.IsZero() || !j.StartedAt.IsZero() || j.Finished() {
		t.Fatalf("new job = %+v", j)
	}
	if err := s.StartJob(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	if err := s.StartJob(ctx, "j1"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("StartJob twice: %v, want ErrInvalidArgument", err)
	}
	if err := s.StartJob(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("StartJob of an unknown job: %v, want ErrNotFound", err)
	}

	if err := s.AddJobResult(ctx, JobResult{JobID: "j1", DeviceID: "d2", State: ResultDone, Result: []byte(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddJobResult(ctx, JobResult{JobID: "j1", DeviceID: "d1", State: ResultFailed, Error: "unreachable"}); err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		r    JobResult
		want error
	}{
		{"second result", JobResult{JobID: "j1", DeviceID: "d2", State: ResultFailed, Error: "again"}, ErrDuplicate},
		{"device not in job", JobResult{JobID: "j1", DeviceID: "d9", State: ResultDone}, ErrInvalidArgument},
		{"unknown state", JobResult{JobID: "j1", DeviceID: "d3", State: "running"}, ErrInvalidArgument},
		{"result not JSON", JobResult{JobID: "j1", DeviceID: "d3", State: ResultDone, Result: []byte("x")}, ErrInvalidArgument},
		{"unknown job", JobResult{JobID: "nope", DeviceID: "d3", State: ResultDone}, ErrNotFound},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.AddJobResult(ctx, tc.r); !errors.Is(err, tc.want) {
				t.Errorf("AddJobResult = %v, want %v", err, tc.want)
			}
		})
	}
	j, _ = s.Job(ctx, "j1")
	if j.State != JobRunning || j.DoneCount != 2 || j.FailedCount != 1 || j.StartedAt.IsZero() {
		t.Errorf("running job = %+v; want running, 2 done, 1 failed", j)
	}
	rs, err := s.JobResults(ctx, "j1")
	if err != nil || len(rs) != 2 {
		t.Fatalf("JobResults = %+v, %v", rs, err)
	}
	if rs[0].DeviceID != "d2" || rs[0].State != ResultDone || string(rs[0].Result) != `{"ok":true}` || rs[0].FinishedAt.IsZero() {
		t.Errorf("first result = %+v; want d2 done with its result kept (not replaced by the duplicate)", rs[0])
	}
	if rs[1].DeviceID != "d1" || rs[1].State != ResultFailed || rs[1].Error != "unreachable" || rs[1].Result != nil {
		t.Errorf("second result = %+v", rs[1])
	}

	// Cancelling fills in the devices without a result.
	if err := s.FinishJob(ctx, "j1", JobCancelled, "cancelled by ops"); err != nil {
		t.Fatal(err)
	}
	j, _ = s.Job(ctx, "j1")
	if j.State != JobCancelled || j.DoneCount != 4 || j.FailedCount != 1 || j.Error != "cancelled by ops" || j.FinishedAt.IsZero() || !j.Finished() {
		t.Errorf("cancelled job = %+v", j)
	}
	rs, _ = s.JobResults(ctx, "j1")
	var got []string
	for _, r := range rs {
		got = append(got, r.DeviceID+"="+r.State)
	}
	if want := []string{"d2=done", "d1=failed", "d3=cancelled", "d4=cancelled"}; !slices.Equal(got, want) {
		t.Errorf("results after cancel = %v, want %v", got, want)
	}
	if rs[3].Error != "cancelled by ops" {
		t.Errorf("cancelled device error = %q", rs[3].Error)
	}

	// A finished job takes no more results and cannot be finished again.
	if err := s.FinishJob(ctx, "j1", JobDone, ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("FinishJob twice: %v", err)
	}
	if err := s.CreateJob(ctx, Job{ID: "j2", Kind: "diag", Devices: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishJob(ctx, "j2", JobInterrupted, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddJobResult(ctx, JobResult{JobID: "j2", DeviceID: "a", State: ResultDone}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("AddJobResult to an interrupted job: %v, want ErrInvalidArgument", err)
	}
	if err := s.FinishJob(ctx, "j2", "running", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("FinishJob to running: %v", err)
	}
	if err := s.FinishJob(ctx, "nope", JobDone, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishJob of an unknown job: %v", err)
	}
	if _, err := s.Job(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job of an unknown job: %v", err)
	}
}

func TestFinishJobDoneKeepsMissingDevicesMissing(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if err := s.CreateJob(ctx, Job{ID: "j", Kind: "diag", Devices: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddJobResult(ctx, JobResult{JobID: "j", DeviceID: "a", State: ResultDone}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishJob(ctx, "j", JobFailed, "store full"); err != nil {
		t.Fatal(err)
	}
	j, _ := s.Job(ctx, "j")
	rs, _ := s.JobResults(ctx, "j")
	if j.State != JobFailed || j.DoneCount != 1 || len(rs) != 1 {
		t.Errorf("failed job = %+v with %d results; want failed, 1 result", j, len(rs))
	}
}

func TestJobsNewestFirstAndMarkInterrupted(t *testing.T) {
	s, _ := openTemp(t)
	s.Now = fakeClock()
	ctx := context.Background()
	for i := range 5 {
		if err := s.CreateJob(ctx, Job{ID: fmt.Sprintf("j%d", i), Kind: "diag", Devices: []string{"a", "b"}}); err != nil {
			t.Fatal(err)
		}
	}
	// j0 finished, j1 running with one result, j2 running, j3 and j4 queued.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.StartJob(ctx, "j0"))
	must(s.FinishJob(ctx, "j0", JobDone, ""))
	must(s.StartJob(ctx, "j1"))
	must(s.AddJobResult(ctx, JobResult{JobID: "j1", DeviceID: "b", State: ResultDone, Result: []byte(`1`)}))
	must(s.StartJob(ctx, "j2"))

	jobs, err := s.Jobs(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	if want := []string{"j4", "j3", "j2"}; !slices.Equal(ids, want) {
		t.Errorf("Jobs(3) = %v, want %v", ids, want)
	}

	n, err := s.MarkInterrupted(ctx)
	if err != nil || n != 4 {
		t.Fatalf("MarkInterrupted = %d, %v; want 4", n, err)
	}
	all, _ := s.Jobs(ctx, 0)
	if len(all) != 5 {
		t.Fatalf("Jobs(0) has %d jobs, want 5", len(all))
	}
	for _, j := range all {
		want := JobInterrupted
		if j.ID == "j0" {
			want = JobDone
		}
		if j.State != want || j.FinishedAt.IsZero() {
			t.Errorf("job %s: state %s, finished %v; want %s, finished", j.ID, j.State, j.FinishedAt, want)
		}
	}
	j1, _ := s.Job(ctx, "j1")
	rs, _ := s.JobResults(ctx, "j1")
	if j1.DoneCount != 1 || len(rs) != 1 || string(rs[0].Result) != "1" {
		t.Errorf("interrupted j1 = %+v, results %+v; want its one result kept", j1, rs)
	}
	if n, err := s.MarkInterrupted(ctx); err != nil || n != 0 {
		t.Errorf("MarkInterrupted again = %d, %v; want 0", n, err)
	}
}

func TestJobStateCheckedBySchema(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, kind, state, created_at, total) VALUES ('x', 'diag', 'paused', 'now', 1)`); err == nil {
		t.Error("the schema accepted job state 'paused'")
	}
}

// TestUpgradeFromSchema2 opens a database written by the previous version
// (schema 2): migration 3 adds the job tables and keeps the orders.
func TestUpgradeFromSchema2(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.PutOrder(ctx, testOrder("WO-1"), "fetched"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `DROP TABLE audit_log; DROP TABLE job_results; DROP TABLE jobs; DELETE FROM schema_migrations WHERE version >= 3`); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersion(ctx); v != 2 {
		t.Fatalf("downgraded to version %d, want 2", v)
	}
	_ = s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != CurrentSchemaVersion {
		t.Fatalf("schema version after upgrade %d, %v; want %d", v, err, CurrentSchemaVersion)
	}
	if _, state, err := s.GetOrder(ctx, "WO-1"); err != nil || state != "fetched" {
		t.Errorf("order after upgrade: %q, %v", state, err)
	}
	if err := s.CreateJob(ctx, Job{ID: "j", Kind: "diag", Devices: []string{"a"}}); err != nil {
		t.Errorf("CreateJob after upgrade: %v", err)
	}
}
