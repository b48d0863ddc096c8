package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Audit outcomes. An entry is written started, before the change, and
// finished ok or failed after it; MarkAuditInterrupted turns the entries
// an agent left started (it stopped mid-change) into interrupted.
const (
	AuditStarted     = "started"
	AuditOK          = "ok"
	AuditFailed      = "failed"
	AuditInterrupted = "interrupted"
)

// AuditEntry is one change made to a device through the remote-support
// API: who asked for it, what was done, and the device's relevant values
// just before and after. Params, Before and After are JSON and never hold
// a credential: the caller writes "(set)" or leaves the value out.
type AuditEntry struct {
	ID int64
	// At is when the entry was started (stamped by the store).
	At time.Time
	// Actor is who asked (the API token's name); Role is its role.
	Actor string
	Role  string
	// DeviceID is the ACS device ID the change was made on.
	DeviceID string
	// Action names the change, e.g. "redial_pppoe".
	Action string
	// Params is the action's parameters as JSON, secrets redacted; nil
	// is stored as {}.
	Params []byte
	// Before and After are the device's relevant values as JSON; nil if
	// they were not read (the device did not answer).
	Before []byte
	After  []byte
	// Outcome is AuditStarted, AuditOK, AuditFailed or AuditInterrupted.
	Outcome string
	// Error says why a failed or interrupted change failed.
	Error string
	// FinishedAt is zero while the entry is started.
	FinishedAt time.Time
}

// AuditQuery selects audit entries. The zero value selects every entry.
type AuditQuery struct {
	// DeviceID, if set, selects one device's entries.
	DeviceID string
	// Since, if set, selects entries started at or after it.
	Since time.Time
	// Limit caps the number of entries (the newest are kept); <= 0 means
	// no limit.
	Limit int
}

// jsonOrNil returns b as a stored JSON text, nil for empty b, or an error
// for b that is not JSON.
func jsonOrNil(what string, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%w: %s is not JSON", ErrInvalidArgument, what)
	}
	return string(b), nil
}

// StartAudit writes a new entry with outcome AuditStarted, stamped now, and
// returns its ID. Actor, DeviceID and Action are required; Params, Before
// and After, if set, must be JSON. ID, At, Outcome, Error and FinishedAt
// of e are ignored.
func (s *Store) StartAudit(ctx context.Context, e AuditEntry) (int64, error) {
	if e.Actor == "" || e.DeviceID == "" || e.Action == "" {
		return 0, fmt.Errorf("store: start audit entry: %w: actor, device and action are required", ErrInvalidArgument)
	}
	params, err := jsonOrNil("params", e.Params)
	if err != nil {
		return 0, fmt.Errorf("store: start audit entry for %s on %s: %w", e.Action, e.DeviceID, err)
	}
	if params == nil {
		params = "{}"
	}
	before, err := jsonOrNil("before", e.Before)
	if err != nil {
		return 0, fmt.Errorf("store: start audit entry for %s on %s: %w", e.Action, e.DeviceID, err)
	}
	after, err := jsonOrNil("after", e.After)
	if err != nil {
		return 0, fmt.Errorf("store: start audit entry for %s on %s: %w", e.Action, e.DeviceID, err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO audit_log (at, actor, role, device_id, action, params, before, after, outcome)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ts(s.now()), e.Actor, e.Role, e.DeviceID, e.Action, params, before, after, AuditStarted)
	if err != nil {
		return 0, fmt.Errorf("store: start audit entry for %s on %s: %w", e.Action, e.DeviceID, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("store: start audit entry for %s on %s: %w", e.Action, e.DeviceID, err)
	}
	return id, nil
}

// RecordAuditBefore sets the Before values of a started entry. An entry
// that has finished is refused (ErrInvalidArgument); an unknown one is
// ErrNotFound.
func (s *Store) RecordAuditBefore(ctx context.Context, id int64, before []byte) error {
	v, err := jsonOrNil("before", before)
	if err != nil {
		return fmt.Errorf("store: record audit entry %d: %w", id, err)
	}
	return s.updateStarted(ctx, "record the before values of", id, `UPDATE audit_log SET before = ? WHERE id = ? AND outcome = ?`, v, id, AuditStarted)
}

// FinishAudit ends a started entry with outcome AuditOK or AuditFailed, the
// After values (nil if not read) and errText, and stamps FinishedAt. An
// entry that has finished is refused (ErrInvalidArgument) and left as it
// was; an unknown one is ErrNotFound.
func (s *Store) FinishAudit(ctx context.Context, id int64, outcome string, after []byte, errText string) error {
	if outcome != AuditOK && outcome != AuditFailed {
		return fmt.Errorf("store: finish audit entry %d: %w: outcome %q is not ok or failed", id, ErrInvalidArgument, outcome)
	}
	v, err := jsonOrNil("after", after)
	if err != nil {
		return fmt.Errorf("store: finish audit entry %d: %w", id, err)
	}
	return s.updateStarted(ctx, "finish", id, `UPDATE audit_log SET outcome = ?, after = ?, error = ?, finished_at = ? WHERE id = ? AND outcome = ?`,
		outcome, v, errText, ts(s.now()), id, AuditStarted)
}

// updateStarted runs an UPDATE of one started entry and tells a finished
// entry (ErrInvalidArgument) from a missing one (ErrNotFound).
func (s *Store) updateStarted(ctx context.Context, op string, id int64, query string, args ...any) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("store: %s audit entry %d: %w", op, id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: %s audit entry %d: %w", op, id, err)
		} else if n == 1 {
			return nil
		}
		var outcome string
		err = tx.QueryRowContext(ctx, `SELECT outcome FROM audit_log WHERE id = ?`, id).Scan(&outcome)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: %s audit entry %d: %w", op, id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: %s audit entry %d: %w", op, id, err)
		}
		return fmt.Errorf("store: %s audit entry %d: %w: it has finished already (%s)", op, id, ErrInvalidArgument, outcome)
	})
}

// MarkAuditInterrupted marks every started entry interrupted (stamping
// FinishedAt) and returns how many it marked. The daemon calls it at
// start, before it serves the API: an entry still started then was left by
// an agent that stopped in the middle of the change, which may or may not
// have reached the device.
func (s *Store) MarkAuditInterrupted(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE audit_log SET outcome = ?, finished_at = ?,
		error = 'interrupted: the agent stopped during the change; read the device to see whether it was made'
		WHERE outcome = ?`, AuditInterrupted, ts(s.now()), AuditStarted)
	if err != nil {
		return 0, fmt.Errorf("store: mark interrupted audit entries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: mark interrupted audit entries: %w", err)
	}
	return int(n), nil
}

const auditColumns = `id, at, actor, role, device_id, action, params, before, after, outcome, error, finished_at`

func scanAudit(sc interface{ Scan(...any) error }) (AuditEntry, error) {
	var e AuditEntry
	var params string
	var before, after sql.NullString
	if err := sc.Scan(&e.ID, nullTime{&e.At}, &e.Actor, &e.Role, &e.DeviceID, &e.Action, &params, &before, &after,
		&e.Outcome, &e.Error, nullTime{&e.FinishedAt}); err != nil {
		return AuditEntry{}, err
	}
	e.Params = []byte(params)
	if before.Valid {
		e.Before = []byte(before.String)
	}
	if after.Valid {
		e.After = []byte(after.String)
	}
	return e, nil
}

// Audit returns one audit entry, or an error wrapping ErrNotFound.
func (s *Store) Audit(ctx context.Context, id int64) (AuditEntry, error) {
	e, err := scanAudit(s.db.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return AuditEntry{}, fmt.Errorf("store: audit entry %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return AuditEntry{}, fmt.Errorf("store: audit entry %d: %w", id, err)
	}
	return e, nil
}

// AuditLog returns the entries q selects, newest first.
func (s *Store) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	since := ts(q.Since)
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log
		WHERE (? = '' OR device_id = ?) AND (? IS NULL OR at >= ?)
		ORDER BY at DESC, id DESC LIMIT ?`, q.DeviceID, q.DeviceID, since, since, limit)
	if err != nil {
		return nil, fmt.Errorf("store: read the audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: read the audit log: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read the audit log: %w", err)
	}
	return out, nil
}
