package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrDuplicate means the record is already in the store and was left as it
// was: a job with the same ID, or a second result for a device of a job.
// (It sits here rather than with the other sentinels in store.go because
// only the jobs use it.)
var ErrDuplicate = errors.New("already recorded in the local store")

// Job states. A job is created queued, becomes running when its runner
// starts it, and ends in one of the other four: done (every device has a
// result, failed or not), failed (the runner itself could not go on, e.g.
// the store refused a result), cancelled (on request or at shutdown), or
// interrupted (the agent stopped without finishing it; see MarkInterrupted).
const (
	JobQueued      = "queued"
	JobRunning     = "running"
	JobDone        = "done"
	JobFailed      = "failed"
	JobCancelled   = "cancelled"
	JobInterrupted = "interrupted"
)

// Job result states, one per device of a job.
const (
	ResultDone      = "done"
	ResultFailed    = "failed"
	ResultCancelled = "cancelled"
)

// Job is one job of the remote-support daemon: one kind of work (a
// diagnosis, a probe) run over a list of devices.
type Job struct {
	ID        string
	Kind      string
	CreatedBy string // CreatedBy names who asked for the job (a user or token name); may be empty.
	State     string // State is one of JobQueued … JobInterrupted.
	CreatedAt time.Time
	// StartedAt and FinishedAt are zero until the job starts and ends.
	StartedAt  time.Time
	FinishedAt time.Time
	// Devices are the job's device IDs, in the order they are run.
	Devices []string
	// Total is len(Devices).
	Total int
	// DoneCount is how many devices have a result (done, failed or
	// cancelled); FailedCount how many of those failed. For an
	// interrupted job, the Total-DoneCount devices without a result never
	// finished.
	DoneCount   int
	FailedCount int
	// Error says why a job failed, was cancelled or was interrupted.
	Error string
	// Params is the job's parameters as JSON; nil if none.
	Params []byte
}

// Finished reports whether the job has ended (any state but queued and
// running).
func (j Job) Finished() bool { return j.State != JobQueued && j.State != JobRunning }

// JobResult is the result of one device of a job.
type JobResult struct {
	JobID    string
	DeviceID string
	State    string // State is ResultDone, ResultFailed or ResultCancelled.
	// Result is the device's result as JSON; nil if none (a device that
	// failed or was cancelled may still have a partial result).
	Result []byte
	// Error is the error text of a failed or cancelled device.
	Error string
	// FinishedAt is stamped by the store.
	FinishedAt time.Time
}

// CreateJob stores a new queued job. j.ID, j.Kind and at least one device
// are required; device IDs must be non-empty and distinct; j.Params, if not
// empty, must be JSON. CreatedAt, state, counts and Total are set by the
// store (the rest of j is ignored). A job whose ID is taken is refused with
// an error wrapping ErrDuplicate.
func (s *Store) CreateJob(ctx context.Context, j Job) error {
	if j.ID == "" || j.Kind == "" {
		return fmt.Errorf("store: create job %q: %w: ID and kind are required", j.ID, ErrInvalidArgument)
	}
	if len(j.Devices) == 0 {
		return fmt.Errorf("store: create job %q: %w: the job has no devices", j.ID, ErrInvalidArgument)
	}
	seen := make(map[string]bool, len(j.Devices))
	for _, d := range j.Devices {
		if d == "" || seen[d] {
			return fmt.Errorf("store: create job %q: %w: device ID %q is empty or listed twice", j.ID, ErrInvalidArgument, d)
		}
		seen[d] = true
	}
	var params any
	if len(j.Params) > 0 {
		if !json.Valid(j.Params) {
			return fmt.Errorf("store: create job %q: %w: params are not JSON", j.ID, ErrInvalidArgument)
		}
		params = string(j.Params)
	}
	devices, err := json.Marshal(j.Devices)
	if err != nil {
		return fmt.Errorf("store: create job %q: encode devices: %w", j.ID, err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, kind, state, created_by, created_at, devices, total, params)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		j.ID, j.Kind, JobQueued, j.CreatedBy, ts(s.now()), string(devices), len(j.Devices), params)
	if err != nil {
		return wrapJob("create job", j.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrapJob("create job", j.ID, err)
	} else if n == 0 {
		return fmt.Errorf("store: create job %q: %w: choose another job ID", j.ID, ErrDuplicate)
	}
	return nil
}

// StartJob marks a queued job running and stamps StartedAt. A job that is
// not queued is refused (ErrInvalidArgument); an unknown one is
// ErrNotFound.
func (s *Store) StartJob(ctx context.Context, id string) error {
	return s.inTxJob(ctx, "start job", id, func(tx *sql.Tx) error {
		state, err := jobState(ctx, tx, id)
		if err != nil {
			return err
		}
		if state != JobQueued {
			return fmt.Errorf("%w: the job is %s, not queued", ErrInvalidArgument, state)
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = ?, started_at = ? WHERE id = ?`, JobRunning, ts(s.now()), id)
		return err
	})
}

// AddJobResult records one device's result and counts it, in one
// transaction; FinishedAt is stamped now. The job must be queued or running
// and list the device (else ErrInvalidArgument; an unknown job is
// ErrNotFound). A device's first result is final: a second one is refused
// with an error wrapping ErrDuplicate and changes nothing, so a caller that
// retries after an uncertain write cannot count a device twice.
func (s *Store) AddJobResult(ctx context.Context, r JobResult) error {
	switch r.State {
	case ResultDone, ResultFailed, ResultCancelled:
	default:
		return fmt.Errorf("store: add result of device %q to job %q: %w: state %q is not one of done, failed, cancelled", r.DeviceID, r.JobID, ErrInvalidArgument, r.State)
	}
	var result any
	if len(r.Result) > 0 {
		if !json.Valid(r.Result) {
			return fmt.Errorf("store: add result of device %q to job %q: %w: the result is not JSON", r.DeviceID, r.JobID, ErrInvalidArgument)
		}
		result = string(r.Result)
	}
	return s.inTxJob(ctx, "add result of device "+r.DeviceID+" to job", r.JobID, func(tx *sql.Tx) error {
		var state string
		var listed bool
		err := tx.QueryRowContext(ctx, `SELECT state, EXISTS (SELECT 1 FROM json_each(jobs.devices) WHERE json_each.value = ?)
			FROM jobs WHERE id = ?`, r.DeviceID, r.JobID).Scan(&state, &listed)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if state != JobQueued && state != JobRunning {
			return fmt.Errorf("%w: the job is %s; results are only added to a queued or running job", ErrInvalidArgument, state)
		}
		if !listed {
			return fmt.Errorf("%w: the job does not list the device", ErrInvalidArgument)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO job_results (job_id, device_id, state, result, error, finished_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, device_id) DO NOTHING`,
			r.JobID, r.DeviceID, r.State, result, r.Error, ts(s.now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: the device has a result already", ErrDuplicate)
		}
		failed := 0
		if r.State == ResultFailed {
			failed = 1
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET done_count = done_count + 1, failed_count = failed_count + ? WHERE id = ?`, failed, r.JobID)
		return err
	})
}

// FinishJob ends a queued or running job in state JobDone, JobFailed,
// JobCancelled or JobInterrupted, with errText saying why (empty for done),
// and stamps FinishedAt. For JobCancelled, every device of the job that has
// no result yet gets a ResultCancelled result with errText, in the same
// transaction, so that a cancelled job accounts for all its devices. A job
// that has already finished is refused (ErrInvalidArgument) and left as it
// was; an unknown one is ErrNotFound.
func (s *Store) FinishJob(ctx context.Context, id, state, errText string) error {
	switch state {
	case JobDone, JobFailed, JobCancelled, JobInterrupted:
	default:
		return fmt.Errorf("store: finish job %q: %w: state %q is not one of done, failed, cancelled, interrupted", id, ErrInvalidArgument, state)
	}
	return s.inTxJob(ctx, "finish job", id, func(tx *sql.Tx) error {
		old, err := jobState(ctx, tx, id)
		if err != nil {
			return err
		}
		if old != JobQueued && old != JobRunning {
			return fmt.Errorf("%w: the job has finished already (%s)", ErrInvalidArgument, old)
		}
		now := ts(s.now())
		if state == JobCancelled {
			if _, err := tx.ExecContext(ctx, `INSERT INTO job_results (job_id, device_id, state, error, finished_at)
				SELECT jobs.id, json_each.value, ?, ?, ? FROM jobs, json_each(jobs.devices)
				WHERE jobs.id = ? AND json_each.value NOT IN (SELECT device_id FROM job_results WHERE job_id = ?)
				ORDER BY json_each.key`, ResultCancelled, errText, now, id, id); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = ?, error = ?, finished_at = ?,
			done_count = (SELECT count(*) FROM job_results WHERE job_id = ?),
			failed_count = (SELECT count(*) FROM job_results WHERE job_id = ? AND state = ?)
			WHERE id = ?`, state, errText, now, id, id, ResultFailed, id)
		return err
	})
}

// MarkInterrupted marks every queued or running job interrupted (stamping
// FinishedAt) and returns how many it marked. The daemon calls it at start,
// before it runs any job: a job still queued or running then was left by an
// agent that stopped (a crash, a kill -9, a power cut). Its finished
// results stay; the devices without one are those that never finished.
func (s *Store) MarkInterrupted(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = ?, finished_at = ?,
		error = 'interrupted: the agent stopped before the job finished; run it again for the devices without a result'
		WHERE state IN (?, ?)`, JobInterrupted, ts(s.now()), JobQueued, JobRunning)
	if err != nil {
		return 0, wrapJob("mark interrupted jobs", "", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrapJob("mark interrupted jobs", "", err)
	}
	return int(n), nil
}

const jobColumns = `id, kind, created_by, state, created_at, started_at, finished_at, devices, total, done_count, failed_count, error, params`

func scanJob(sc interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var devices string
	var params sql.NullString
	if err := sc.Scan(&j.ID, &j.Kind, &j.CreatedBy, &j.State, nullTime{&j.CreatedAt}, nullTime{&j.StartedAt}, nullTime{&j.FinishedAt},
		&devices, &j.Total, &j.DoneCount, &j.FailedCount, &j.Error, &params); err != nil {
		return Job{}, err
	}
	if err := json.Unmarshal([]byte(devices), &j.Devices); err != nil {
		return Job{}, fmt.Errorf("decode devices of job %q: %w", j.ID, err)
	}
	if params.Valid {
		j.Params = []byte(params.String)
	}
	return j, nil
}

// Job returns a job, or an error wrapping ErrNotFound.
func (s *Store) Job(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("store: job %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, wrapJob("get job", id, err)
	}
	return j, nil
}

// Jobs returns the newest jobs first (by CreatedAt, then the order they
// were created), at most limit of them; limit <= 0 means all.
func (s *Store) Jobs(ctx context.Context, limit int) ([]Job, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?`, limit)
	if err != nil {
		return nil, wrapJob("list jobs", "", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, wrapJob("list jobs", "", err)
		}
		out = append(out, j)
	}
	return out, wrapJob("list jobs", "", rows.Err())
}

// JobResults returns a job's results in the order they were recorded (for a
// job that does not exist, none).
func (s *Store) JobResults(ctx context.Context, jobID string) ([]JobResult, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT job_id, device_id, state, result, error, finished_at
		FROM job_results WHERE job_id = ? ORDER BY id`, jobID)
	if err != nil {
		return nil, wrapJob("list results", jobID, err)
	}
	defer rows.Close()
	var out []JobResult
	for rows.Next() {
		var r JobResult
		var result sql.NullString
		if err := rows.Scan(&r.JobID, &r.DeviceID, &r.State, &result, &r.Error, nullTime{&r.FinishedAt}); err != nil {
			return nil, wrapJob("list results", jobID, err)
		}
		if result.Valid {
			r.Result = []byte(result.String)
		}
		out = append(out, r)
	}
	return out, wrapJob("list results", jobID, rows.Err())
}

// jobState reads a job's state in tx; ErrNotFound if there is no such job.
func jobState(ctx context.Context, tx *sql.Tx, id string) (string, error) {
	var state string
	err := tx.QueryRowContext(ctx, `SELECT state FROM jobs WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return state, err
}

func (s *Store) inTxJob(ctx context.Context, op, id string, fn func(tx *sql.Tx) error) error {
	return wrapJob(op, id, s.inTx(ctx, fn))
}

// wrapJob names the operation and the job that failed.
func wrapJob(op, id string, err error) error {
	if err == nil {
		return nil
	}
	if id == "" {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: %s %q: %w: no such job", op, id, err)
	}
	return fmt.Errorf("store: %s %q: %w", op, id, err)
}
