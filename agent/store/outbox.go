package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OutboxItem is one result waiting to be uploaded to the order system.
type OutboxItem struct {
	ID             int64
	OrderID        string
	Kind           string // Kind says what Body is, e.g. "completion" or "event".
	IdempotencyKey string // IdempotencyKey is unique across the outbox and sent with every attempt.
	Body           []byte // Body must not contain credentials.
	Attempts       int
	CreatedAt      time.Time
	NextAttemptAt  time.Time
	LastError      string
	DeliveredAt    time.Time // DeliveredAt is zero until delivered.
	FailedAt       time.Time // FailedAt is set when delivery failed for good (MarkFailed).
	Response       []byte    // Response is the server's answer on delivery.
}

// Delivered reports whether the item has been delivered.
func (it OutboxItem) Delivered() bool { return !it.DeliveredAt.IsZero() }

// Failed reports whether delivery failed for good.
func (it OutboxItem) Failed() bool { return !it.FailedAt.IsZero() }

// Enqueue adds an item to the outbox, due now. An item whose idempotency key
// is already in the outbox is left as it is (Enqueue is then a no-op), so a
// workflow resumed after a crash can enqueue its results again safely.
func (s *Store) Enqueue(ctx context.Context, it OutboxItem) error {
	if it.IdempotencyKey == "" || it.Kind == "" {
		return fmt.Errorf("store: enqueue for order %q: %w: kind and idempotency key are required", it.OrderID, ErrInvalidArgument)
	}
	if it.Body == nil {
		it.Body = []byte{}
	}
	now := ts(s.now())
	_, err := s.db.ExecContext(ctx, `INSERT INTO outbox (order_id, kind, idempotency_key, body, created_at, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING`,
		it.OrderID, it.Kind, it.IdempotencyKey, it.Body, now, now)
	return wrap("enqueue "+it.Kind, it.OrderID, err)
}

const outboxColumns = `id, order_id, kind, idempotency_key, body, attempts, created_at, next_attempt_at, last_error, delivered_at, failed_at, response`

func (s *Store) outboxQuery(ctx context.Context, op, orderID, query string, args ...any) ([]OutboxItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox `+query, args...)
	if err != nil {
		return nil, wrap(op, orderID, err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		if err := rows.Scan(&it.ID, &it.OrderID, &it.Kind, &it.IdempotencyKey, &it.Body, &it.Attempts,
			nullTime{&it.CreatedAt}, nullTime{&it.NextAttemptAt}, &it.LastError,
			nullTime{&it.DeliveredAt}, nullTime{&it.FailedAt}, &it.Response); err != nil {
			return nil, wrap(op, orderID, err)
		}
		out = append(out, it)
	}
	return out, wrap(op, orderID, rows.Err())
}

// Due returns the items neither delivered nor failed whose next attempt is at
// or before now, oldest first.
func (s *Store) Due(ctx context.Context, now time.Time) ([]OutboxItem, error) {
	return s.outboxQuery(ctx, "list due outbox items", "",
		`WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ? ORDER BY id`, ts(now))
}

// Outbox returns every outbox item of an order, in any state, oldest first.
func (s *Store) Outbox(ctx context.Context, orderID string) ([]OutboxItem, error) {
	return s.outboxQuery(ctx, "list outbox", orderID, `WHERE order_id = ? ORDER BY id`, orderID)
}

// OutboxItemByID returns one outbox item, or an error wrapping ErrNotFound.
func (s *Store) OutboxItemByID(ctx context.Context, id int64) (OutboxItem, error) {
	items, err := s.outboxQuery(ctx, "get outbox item", "", `WHERE id = ?`, id)
	if err != nil {
		return OutboxItem{}, err
	}
	if len(items) == 0 {
		return OutboxItem{}, fmt.Errorf("store: outbox item %d: %w", id, ErrNotFound)
	}
	return items[0], nil
}

// MarkAttempt records a failed delivery attempt: attempts+1, the error, and
// when to try again.
func (s *Store) MarkAttempt(ctx context.Context, id int64, attemptErr error, next time.Time) error {
	msg := ""
	if attemptErr != nil {
		msg = attemptErr.Error()
	}
	if next.IsZero() {
		next = s.now()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
		WHERE id = ? AND delivered_at IS NULL`, msg, ts(next), id)
	return affectedItem("record attempt on", id, res, err)
}

// MarkDelivered records a successful delivery (attempts+1) and the server's
// response. The item is no longer due.
func (s *Store) MarkDelivered(ctx context.Context, id int64, response []byte) error {
	if response == nil {
		response = []byte{}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, delivered_at = ?, response = ?
		WHERE id = ? AND delivered_at IS NULL`, ts(s.now()), response, id)
	return affectedItem("mark delivered", id, res, err)
}

// MarkFailed records a final failed attempt (attempts+1): the server refused
// the item for a reason a retry cannot fix. The item is no longer due; it
// stays in the outbox for a person to look at.
func (s *Store) MarkFailed(ctx context.Context, id int64, failure error) error {
	msg := "failed"
	if failure != nil {
		msg = failure.Error()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = ?, failed_at = ?
		WHERE id = ? AND delivered_at IS NULL`, msg, ts(s.now()), id)
	return affectedItem("mark failed", id, res, err)
}

// RetryFailed makes a failed item due again now (after the cause was fixed).
func (s *Store) RetryFailed(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET failed_at = NULL, next_attempt_at = ?
		WHERE id = ? AND delivered_at IS NULL`, ts(s.now()), id)
	return affectedItem("retry", id, res, err)
}

func affectedItem(op string, id int64, res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("store: %s outbox item %d: %w", op, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: %s outbox item %d: %w", op, id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: %s outbox item %d: %w (or already delivered)", op, id, ErrNotFound)
	}
	return nil
}

// ACSDevice is a device the ACS has seen.
type ACSDevice struct {
	ID           string // ID is the CWMP device ID (OUI-ProductClass-Serial).
	Serial       string
	OUI          string
	ProductClass string
	LastInform   time.Time
	JSON         []byte // JSON is free-form device state; no credentials.
}

// PutACSDevice stores or replaces a device.
func (s *Store) PutACSDevice(ctx context.Context, d ACSDevice) error {
	if d.ID == "" {
		return fmt.Errorf("store: put ACS device: %w: the device has no ID", ErrInvalidArgument)
	}
	body := string(d.JSON)
	if body == "" {
		body = "{}"
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO acs_devices (id, serial, oui, product_class, last_inform, json) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET serial = excluded.serial, oui = excluded.oui, product_class = excluded.product_class,
			last_inform = excluded.last_inform, json = excluded.json`,
		d.ID, d.Serial, d.OUI, d.ProductClass, ts(d.LastInform), body)
	if err != nil {
		return fmt.Errorf("store: put ACS device %q: %w", d.ID, err)
	}
	return nil
}

// ACSDevice returns one device, or an error wrapping ErrNotFound.
func (s *Store) ACSDevice(ctx context.Context, id string) (ACSDevice, error) {
	var d ACSDevice
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT id, serial, oui, product_class, last_inform, json FROM acs_devices WHERE id = ?`, id).
		Scan(&d.ID, &d.Serial, &d.OUI, &d.ProductClass, nullTime{&d.LastInform}, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return ACSDevice{}, fmt.Errorf("store: ACS device %q: %w: has it sent an Inform?", id, ErrNotFound)
	}
	if err != nil {
		return ACSDevice{}, fmt.Errorf("store: get ACS device %q: %w", id, err)
	}
	d.JSON = []byte(body)
	return d, nil
}

// ACSDevices returns every device, by ID.
func (s *Store) ACSDevices(ctx context.Context) ([]ACSDevice, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, serial, oui, product_class, last_inform, json FROM acs_devices ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list ACS devices: %w", err)
	}
	defer rows.Close()
	var out []ACSDevice
	for rows.Next() {
		var d ACSDevice
		var body string
		if err := rows.Scan(&d.ID, &d.Serial, &d.OUI, &d.ProductClass, nullTime{&d.LastInform}, &body); err != nil {
			return nil, fmt.Errorf("store: list ACS devices: %w", err)
		}
		d.JSON = []byte(body)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list ACS devices: %w", err)
	}
	return out, nil
}
