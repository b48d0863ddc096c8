package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"fieldagent/agent/order"
)

// OrderSummary is one line of ListOrders.
type OrderSummary struct {
	ID          string
	Type        order.Type
	Technician  string
	Customer    string // Customer is the customer's name.
	Appointment order.Window
	// State is the workflow state set by PutOrder or SetOrderState.
	State     string
	FetchedAt time.Time
	UpdatedAt time.Time
}

// Step is one workflow step of an order. A zero StartedAt or FinishedAt means
// not yet.
type Step struct {
	ID         int64
	OrderID    string
	Seq        int // Seq counts an order's steps from 1 in the order begun.
	Name       string
	State      string // State is one of StepPending … StepSkipped.
	StartedAt  time.Time
	FinishedAt time.Time
	Detail     string
	Error      string
	// Result is what the step left for a resumed run (JSON), set by
	// SetStepResult; empty if nothing.
	Result []byte
}

// Reading is one measured value (a line rate, an optical power, a ping time).
// The store defines its own type so that it need not import diagnostics.
type Reading struct {
	// Step is the step that took the reading; AddReadings sets it, Readings
	// fills it.
	Step string
	// StepID, if not zero, is the step run (BeginStep's ID) that took
	// the reading, so that a resumed visit counts only finished steps'.
	StepID int64
	Name   string
	Value  float64 // Value must be finite.
	Unit   string
	At     time.Time // At, if zero, is the time of AddReadings.
}

// Finding is one diagnosed problem: symptom → likely cause → fix.
type Finding struct {
	Step     string // Step is filled by Findings.
	StepID   int64  // StepID is as for Reading.
	Code     string
	Severity string
	Symptom  string
	Cause    string
	Fix      string
	At       time.Time // At, if zero, is the time of AddFindings.
}

// Event is one timeline entry of an order (fetched, step started, uploaded…).
type Event struct {
	ID      int64
	OrderID string
	Kind    string
	At      time.Time
	Detail  string
}

// PutOrder stores o in its redacted JSON form (credentials become "******";
// see the package comment) with the workflow state, replacing any earlier
// copy. fetched_at is set to now.
func (s *Store) PutOrder(ctx context.Context, o *order.Order, state string) error {
	if o == nil || o.ID == "" {
		return fmt.Errorf("store: put order: %w: the order has no ID", ErrInvalidArgument)
	}
	if state == "" {
		return fmt.Errorf("store: put order %q: %w: state is empty", o.ID, ErrInvalidArgument)
	}
	body, err := json.Marshal(o) // redacts every secret.Secret
	if err != nil {
		return fmt.Errorf("store: encode order %q: %w", o.ID, err)
	}
	now := ts(s.now())
	_, err = s.db.ExecContext(ctx, `INSERT INTO orders (id, json, state, fetched_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET json = excluded.json, state = excluded.state,
			fetched_at = excluded.fetched_at, updated_at = excluded.updated_at`,
		o.ID, string(body), state, now, now)
	return wrap("put order", o.ID, err)
}

// GetOrder returns the stored order and its workflow state, or an error
// wrapping ErrNotFound. The order's credentials are empty: the store never
// holds them.
func (s *Store) GetOrder(ctx context.Context, id string) (*order.Order, string, error) {
	var body, state string
	err := s.db.QueryRowContext(ctx, `SELECT json, state FROM orders WHERE id = ?`, id).Scan(&body, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("store: order %q: %w: fetch it from the order system first", id, ErrNotFound)
	}
	if err != nil {
		return nil, "", wrap("get order", id, err)
	}
	var o order.Order
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		return nil, "", fmt.Errorf("store: decode stored order %q: %w", id, err)
	}
	return &o, state, nil
}

// ListOrders returns every stored order, by appointment start then ID.
func (s *Store) ListOrders(ctx context.Context) ([]OrderSummary, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, json, state, fetched_at, updated_at FROM orders ORDER BY id`)
	if err != nil {
		return nil, wrap("list orders", "", err)
	}
	defer rows.Close()
	var out []OrderSummary
	for rows.Next() {
		var id, body, state string
		var sum OrderSummary
		if err := rows.Scan(&id, &body, &state, nullTime{&sum.FetchedAt}, nullTime{&sum.UpdatedAt}); err != nil {
			return nil, wrap("list orders", "", err)
		}
		var o order.Order
		if err := json.Unmarshal([]byte(body), &o); err != nil {
			return nil, fmt.Errorf("store: decode stored order %q: %w", id, err)
		}
		sum.ID, sum.Type, sum.Technician, sum.Customer, sum.Appointment, sum.State =
			id, o.Type, o.Technician, o.Customer.Name, o.Appointment, state
		out = append(out, sum)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list orders", "", err)
	}
	slices.SortStableFunc(out, func(a, b OrderSummary) int {
		if c := a.Appointment.Start.Compare(b.Appointment.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// SetOrderState sets an order's workflow state; ErrNotFound if the order is
// not stored.
func (s *Store) SetOrderState(ctx context.Context, id, state string) error {
	if state == "" {
		return fmt.Errorf("store: set state of order %q: %w: state is empty", id, ErrInvalidArgument)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE orders SET state = ?, updated_at = ? WHERE id = ?`, state, ts(s.now()), id)
	return affected("set order state", id, res, err)
}

// affected turns "no row changed" into ErrNotFound.
func affected(op, id string, res sql.Result, err error) error {
	if err != nil {
		return wrap(op, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s: %q: %w", op, id, ErrNotFound)
	}
	return nil
}

// BeginStep records that the named step of an order has started (state
// running, the next seq) and returns its ID for FinishStep.
func (s *Store) BeginStep(ctx context.Context, orderID, name string) (int64, error) {
	if name == "" {
		return 0, fmt.Errorf("store: begin step for order %q: %w: step name is empty", orderID, ErrInvalidArgument)
	}
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var seq int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM steps WHERE order_id = ?`, orderID).Scan(&seq); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO steps (order_id, seq, name, state, started_at) VALUES (?, ?, ?, ?, ?)`,
			orderID, seq, name, StepRunning, ts(s.now()))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		if err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE orders SET updated_at = ? WHERE id = ?`, ts(s.now()), orderID)
		}
		return err
	})
	if err != nil {
		return 0, wrap("begin step "+name, orderID, err)
	}
	return id, nil
}

// FinishStep records the outcome of a step begun with BeginStep: state is
// StepDone, StepFailed or StepSkipped (StepPending and StepRunning are
// accepted too, to reset a step); detail and errText are free text and must
// not contain credentials.
func (s *Store) FinishStep(ctx context.Context, stepID int64, state, detail, errText string) error {
	switch state {
	case StepPending, StepRunning, StepDone, StepFailed, StepSkipped:
	default:
		return fmt.Errorf("store: finish step %d: %w: state %q is not one of pending, running, done, failed, skipped", stepID, ErrInvalidArgument, state)
	}
	var finished any
	if state != StepPending && state != StepRunning {
		finished = ts(s.now())
	}
	res, err := s.db.ExecContext(ctx, `UPDATE steps SET state = ?, finished_at = ?, detail = ?, error = ? WHERE id = ?`,
		state, finished, detail, errText, stepID)
	return affected("finish step", fmt.Sprint(stepID), res, err)
}

// SetStepResult keeps a small JSON result with a step (what a resumed run
// needs of it, e.g. the LOID registration outcome). It must not contain
// credentials.
func (s *Store) SetStepResult(ctx context.Context, stepID int64, result []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE steps SET result = ? WHERE id = ?`, string(result), stepID)
	return affected("set step result", fmt.Sprint(stepID), res, err)
}

// nullID stores a zero ID as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// SetOrderDevice records which device (its ACS id, or an XT-2's address)
// plays a role ("gateway", "stb", "xt2") in an order's visit.
func (s *Store) SetOrderDevice(ctx context.Context, orderID, role, deviceID string) error {
	if role == "" || deviceID == "" {
		return fmt.Errorf("store: set device of order %q: %w: role and device ID are required", orderID, ErrInvalidArgument)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO order_devices (order_id, role, device_id) VALUES (?, ?, ?)
		ON CONFLICT (order_id, role) DO UPDATE SET device_id = excluded.device_id`, orderID, role, deviceID)
	return wrap("set "+role+" device", orderID, err)
}

// OrderDevice returns the device recorded for a role in an order's visit,
// or an error wrapping ErrNotFound.
func (s *Store) OrderDevice(ctx context.Context, orderID, role string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT device_id FROM order_devices WHERE order_id = ? AND role = ?`, orderID, role).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("store: %s device of order %q: %w", role, orderID, ErrNotFound)
	}
	return id, wrap("get "+role+" device", orderID, err)
}

// Steps returns an order's steps in the order they were begun.
func (s *Store) Steps(ctx context.Context, orderID string) ([]Step, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, order_id, seq, name, state, started_at, finished_at, detail, error, result
		FROM steps WHERE order_id = ? ORDER BY seq`, orderID)
	if err != nil {
		return nil, wrap("list steps", orderID, err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		var result string
		if err := rows.Scan(&st.ID, &st.OrderID, &st.Seq, &st.Name, &st.State, nullTime{&st.StartedAt}, nullTime{&st.FinishedAt}, &st.Detail, &st.Error, &result); err != nil {
			return nil, wrap("list steps", orderID, err)
		}
		if result != "" {
			st.Result = []byte(result)
		}
		out = append(out, st)
	}
	return out, wrap("list steps", orderID, rows.Err())
}

// AddReadings stores readings taken by a step, all in one transaction.
// Values must be finite.
func (s *Store) AddReadings(ctx context.Context, orderID, step string, rs []Reading) error {
	for _, r := range rs {
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			return fmt.Errorf("store: add readings for order %q: %w: reading %q is %v; record a finding instead of a non-finite value", orderID, ErrInvalidArgument, r.Name, r.Value)
		}
	}
	now := s.now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range rs {
			at := r.At
			if at.IsZero() {
				at = now
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO readings (order_id, step, step_id, name, value, unit, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				orderID, step, nullID(r.StepID), r.Name, r.Value, r.Unit, ts(at)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("add readings", orderID, err)
}

// Readings returns an order's readings in the order they were added.
func (s *Store) Readings(ctx context.Context, orderID string) ([]Reading, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT step, coalesce(step_id, 0), name, value, unit, at FROM readings WHERE order_id = ? ORDER BY id`, orderID)
	if err != nil {
		return nil, wrap("list readings", orderID, err)
	}
	defer rows.Close()
	var out []Reading
	for rows.Next() {
		var r Reading
		if err := rows.Scan(&r.Step, &r.StepID, &r.Name, &r.Value, &r.Unit, nullTime{&r.At}); err != nil {
			return nil, wrap("list readings", orderID, err)
		}
		out = append(out, r)
	}
	return out, wrap("list readings", orderID, rows.Err())
}

// AddFindings stores findings diagnosed by a step, all in one transaction.
func (s *Store) AddFindings(ctx context.Context, orderID, step string, fs []Finding) error {
	now := s.now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, f := range fs {
			at := f.At
			if at.IsZero() {
				at = now
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO findings (order_id, step, step_id, code, severity, symptom, cause, fix, at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, orderID, step, nullID(f.StepID), f.Code, f.Severity, f.Symptom, f.Cause, f.Fix, ts(at)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("add findings", orderID, err)
}

// Findings returns an order's findings in the order they were added.
func (s *Store) Findings(ctx context.Context, orderID string) ([]Finding, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT step, coalesce(step_id, 0), code, severity, symptom, cause, fix, at FROM findings WHERE order_id = ? ORDER BY id`, orderID)
	if err != nil {
		return nil, wrap("list findings", orderID, err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var f Finding
		if err := rows.Scan(&f.Step, &f.StepID, &f.Code, &f.Severity, &f.Symptom, &f.Cause, &f.Fix, nullTime{&f.At}); err != nil {
			return nil, wrap("list findings", orderID, err)
		}
		out = append(out, f)
	}
	return out, wrap("list findings", orderID, rows.Err())
}

// AddEvent appends an entry to an order's timeline, stamped now.
func (s *Store) AddEvent(ctx context.Context, orderID, kind, detail string) error {
	if kind == "" {
		return fmt.Errorf("store: add event for order %q: %w: kind is empty", orderID, ErrInvalidArgument)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO events (order_id, kind, at, detail) VALUES (?, ?, ?, ?)`, orderID, kind, ts(s.now()), detail)
	return wrap("add event "+kind, orderID, err)
}

// Events returns an order's timeline, oldest first.
func (s *Store) Events(ctx context.Context, orderID string) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, order_id, kind, at, detail FROM events WHERE order_id = ? ORDER BY id`, orderID)
	if err != nil {
		return nil, wrap("list events", orderID, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.ID, &e.OrderID, &e.Kind, nullTime{&e.At}, &e.Detail); err != nil {
			return nil, wrap("list events", orderID, err)
		}
		out = append(out, e)
	}
	return out, wrap("list events", orderID, rows.Err())
}

// PutReport stores (or replaces) an order's report in one format ("json",
// "html", "text", …).
func (s *Store) PutReport(ctx context.Context, orderID, format string, body []byte) error {
	if format == "" {
		return fmt.Errorf("store: put report for order %q: %w: format is empty", orderID, ErrInvalidArgument)
	}
	if body == nil {
		body = []byte{}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO reports (order_id, format, body, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (order_id, format) DO UPDATE SET body = excluded.body, created_at = excluded.created_at`,
		orderID, format, body, ts(s.now()))
	return wrap("put "+format+" report", orderID, err)
}

// Report returns an order's report in a format, or an error wrapping
// ErrNotFound.
func (s *Store) Report(ctx context.Context, orderID, format string) ([]byte, error) {
	var body []byte
	err := s.db.QueryRowContext(ctx, `SELECT body FROM reports WHERE order_id = ? AND format = ?`, orderID, format).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: %s report for order %q: %w: render the report first", format, orderID, ErrNotFound)
	}
	return body, wrap("get "+format+" report", orderID, err)
}
