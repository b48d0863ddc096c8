// Package store is the agent's local, embedded SQLite database: the orders a
// technician works on, the steps of each order's workflow and their results
// (readings, findings, events, reports), the outbox of results still to be
// uploaded, and the devices the ACS has seen. It is the single source of truth
// for an order's progress; the workflow can be killed at any point and resumed
// from it.
//
// The store never holds a credential. Orders are kept in their redacted JSON
// form (json.Marshal, which writes "******" for every secret.Secret), so an
// order read back with GetOrder has empty PPPoE, LOID and IPTV credentials.
// The workflow keeps the credentials in memory from the fetch (ordersys
// GetOrder) and fetches the order again if it restarts. Callers must likewise
// keep credentials out of step details, events, reports and outbox bodies; Dump
// lets tests check that they did.
//
// The database file is created with mode 0600 and opened in WAL mode with a
// busy timeout and foreign keys on. The schema is versioned: Open applies the
// migrations the file has not seen yet, each in its own transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors.
var (
	// ErrNotFound means the order (or step, report, outbox item) is not in
	// the store.
	ErrNotFound = errors.New("not found in the local store")
	// ErrInvalidArgument means a caller passed a value the store refuses
	// (an empty ID, an unknown step state, a NaN reading).
	ErrInvalidArgument = errors.New("invalid argument to the local store")
)

// Step states.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepDone    = "done"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// busyTimeout is how long a connection waits for a lock before SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string

	// Now, if nil, is time.Now. It stamps fetched_at, updated_at, step
	// start and finish times, events and outbox items. Set it before use.
	Now func() time.Time
}

// Open opens the database at path, creating it (mode 0600) if missing and
// tightening an existing file to 0600, and applies pending migrations.
func Open(path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("%w: database path %q must be a plain file path (no '?', '#' or file: prefix)", ErrInvalidArgument, path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create database file %s: %w: check that the directory exists and is writable", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: create database file %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("store: restrict database file %s to mode 0600: %w", path, err)
	}
	dsn := path + "?_pragma=" + fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One connection: writes are serialized in the process (no
	// SQLITE_BUSY between our own goroutines), and per-connection pragmas
	// hold everywhere. A field agent's write rate is low.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path}
	if err := s.migrate(context.Background()); err != nil {
		_ = db.Close()
		return nil, err
	}
	// WAL and SHM files hold database pages too: keep them private.
	for _, side := range []string{path + "-wal", path + "-shm"} {
		if err := os.Chmod(side, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = db.Close()
			return nil, fmt.Errorf("store: restrict %s to mode 0600: %w", side, err)
		}
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the path of the database file.
func (s *Store) Path() string { return s.path }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// timeFormat is fixed-width UTC, so that stored times compare as text.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// ts turns t into a stored time; the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeFormat)
}

// nullTime reads a stored time.
type nullTime struct{ t *time.Time }

func (n nullTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*n.t = time.Time{}
		return nil
	case string:
		t, err := time.Parse(timeFormat, v)
		if err != nil {
			return fmt.Errorf("stored time %q: %w", v, err)
		}
		*n.t = t
		return nil
	case []byte:
		return nullTime(n).Scan(string(v))
	case time.Time:
		*n.t = v.UTC()
		return nil
	}
	return fmt.Errorf("stored time has type %T", v)
}

// inTx runs fn in a transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wrap names the operation that failed and turns a foreign-key failure into
// ErrNotFound for the order.
func wrap(op, orderID string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return fmt.Errorf("store: %s: order %q: %w: store the order with PutOrder first", op, orderID, ErrNotFound)
	}
	if orderID != "" {
		return fmt.Errorf("store: %s for order %q: %w", op, orderID, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
