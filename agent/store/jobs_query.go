package store

import (
	"context"
	"database/sql"
	"strings"
)

// The remote-support API's read queries: jobs by state and kind, a
// device's results across jobs, and the devices of a customer account.
// They read the tables of migrations 2 and 3 and add no schema.

// JobQuery selects jobs for FindJobs. Empty fields select everything.
type JobQuery struct {
	// State, if set, is a job state (JobQueued … JobInterrupted).
	State string
	// Kind, if set, is a job kind.
	Kind string
	// Limit caps the answer; 0 or less means all.
	Limit int
}

// FindJobs returns the jobs q selects, newest first (by CreatedAt, then
// the order they were created).
func (s *Store) FindJobs(ctx context.Context, q JobQuery) ([]Job, error) {
	var where []string
	var args []any
	if q.State != "" {
		where, args = append(where, "state = ?"), append(args, q.State)
	}
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, q.Kind)
	}
	query := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY created_at DESC, rowid DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, wrapJob("find jobs", "", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, wrapJob("find jobs", "", err)
		}
		out = append(out, j)
	}
	return out, wrapJob("find jobs", "", rows.Err())
}

// DeviceResultQuery selects one device's results for DeviceResults.
type DeviceResultQuery struct {
	// DeviceID is the device (required).
	DeviceID string
	// Kinds, if not empty, keeps only results of jobs of these kinds.
	Kinds []string
	// WithResult keeps only results that carry a result (a done device,
	// or a failed or cancelled one with a partial result).
	WithResult bool
	// Limit caps the answer; 0 or less means all.
	Limit int
}

// DeviceResult is one of a device's results, with its job's kind.
type DeviceResult struct {
	JobResult
	JobKind string
}

// DeviceResults returns a device's results across jobs, newest first (by
// FinishedAt, then the order they were recorded).
func (s *Store) DeviceResults(ctx context.Context, q DeviceResultQuery) ([]DeviceResult, error) {
	query := `SELECT r.job_id, r.device_id, r.state, r.result, r.error, r.finished_at, j.kind
		FROM job_results r JOIN jobs j ON j.id = r.job_id WHERE r.device_id = ?`
	args := []any{q.DeviceID}
	if q.WithResult {
		query += ` AND r.result IS NOT NULL`
	}
	if len(q.Kinds) > 0 {
		query += ` AND j.kind IN (?` + strings.Repeat(", ?", len(q.Kinds)-1) + `)`
		for _, k := range q.Kinds {
			args = append(args, k)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY r.finished_at DESC, r.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, wrapJob("results of device "+q.DeviceID, "", err)
	}
	defer rows.Close()
	var out []DeviceResult
	for rows.Next() {
		var r DeviceResult
		var result sql.NullString
		if err := rows.Scan(&r.JobID, &r.DeviceID, &r.State, &result, &r.Error, nullTime{&r.FinishedAt}, &r.JobKind); err != nil {
			return nil, wrapJob("results of device "+q.DeviceID, "", err)
		}
		if result.Valid {
			r.Result = []byte(result.String)
		}
		out = append(out, r)
	}
	return out, wrapJob("results of device "+q.DeviceID, "", rows.Err())
}

// DevicesByAccount returns the devices (ACS ids, or XT-2 addresses) that
// the visits of a customer account's orders recorded (SetOrderDevice),
// sorted and without repeats. An order belongs to the account when its
// PPPoE username, its BBMS customer ID or its IPTV account equals account,
// ignoring case. An empty account matches nothing.
func (s *Store) DevicesByAccount(ctx context.Context, account string) ([]string, error) {
	if account == "" {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT d.device_id FROM order_devices d JOIN orders o ON o.id = d.order_id
		WHERE lower(coalesce(json_extract(o.json, '$.pppoe.username'), '')) = lower(?1)
		   OR lower(coalesce(json_extract(o.json, '$.bbms_customer_id'), '')) = lower(?1)
		   OR lower(coalesce(json_extract(o.json, '$.iptv.account'), '')) = lower(?1)
		ORDER BY d.device_id`, account)
	if err != nil {
		return nil, wrap("devices of an account", "", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("devices of an account", "", err)
		}
		out = append(out, id)
	}
	return out, wrap("devices of an account", "", rows.Err())
}
