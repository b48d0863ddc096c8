package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations returns the migrations in order; migration i is schema version
// i+1. Append new migrations; never edit one that has shipped.
func migrations() []string {
	return []string{
		// 1: the initial schema.
		`
CREATE TABLE orders (
	id         TEXT PRIMARY KEY,
	json       TEXT NOT NULL,
	state      TEXT NOT NULL,
	fetched_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE TABLE steps (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	order_id    TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	name        TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('pending','running','done','failed','skipped')),
	started_at  TEXT,
	finished_at TEXT,
	detail      TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT '',
	UNIQUE (order_id, seq)
);
CREATE TABLE readings (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
	step     TEXT NOT NULL,
	name     TEXT NOT NULL,
	value    REAL NOT NULL,
	unit     TEXT NOT NULL,
	at       TEXT NOT NULL
);
CREATE INDEX readings_order ON readings(order_id);
CREATE TABLE findings (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
	step     TEXT NOT NULL,
	code     TEXT NOT NULL,
	severity TEXT NOT NULL,
	symptom  TEXT NOT NULL,
	cause    TEXT NOT NULL,
	fix      TEXT NOT NULL,
	at       TEXT NOT NULL
);
CREATE INDEX findings_order ON findings(order_id);
CREATE TABLE reports (
	order_id   TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
	format     TEXT NOT NULL,
	body       BLOB NOT NULL,
	created_at TEXT NOT NULL,
	PRIMARY KEY (order_id, format)
);
CREATE TABLE outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	order_id        TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
	kind            TEXT NOT NULL,
	idempotency_key TEXT NOT NULL UNIQUE,
	body            BLOB NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	created_at      TEXT NOT NULL,
	next_attempt_at TEXT NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	delivered_at    TEXT,
	failed_at       TEXT,
	response        BLOB
);
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE TABLE events (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
	kind     TEXT NOT NULL,
	at       TEXT NOT NULL,
	detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_order ON events(order_id);
CREATE TABLE acs_devices (
	id            TEXT PRIMARY KEY,
	serial        TEXT NOT NULL,
	oui           TEXT NOT NULL,
	product_class TEXT NOT NULL,
	last_inform   TEXT,
	json          TEXT NOT NULL DEFAULT '{}'
);
`,
		// 2: resumable visits. A reading or finding belongs to the step
		// run that took it (a step killed half-way leaves readings that
		// a resumed run must not count twice); a step keeps a small JSON
		// result for a resumed run to pick up; an order remembers which
		// device it is working on.
		`
ALTER TABLE readings ADD COLUMN step_id INTEGER REFERENCES steps(id) ON DELETE SET NULL;
ALTER TABLE findings ADD COLUMN step_id INTEGER REFERENCES steps(id) ON DELETE SET NULL;
ALTER TABLE steps ADD COLUMN result TEXT NOT NULL DEFAULT '';
CREATE TABLE order_devices (
	order_id  TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
	role      TEXT NOT NULL,
	device_id TEXT NOT NULL,
	PRIMARY KEY (order_id, role)
);
`,
		// 3: jobs of the remote-support daemon (a diagnosis of one
		// device, or of a fleet) and each device's result. A job lists
		// its devices, so that a cancelled job can record the devices it
		// never ran and an interrupted one shows which are missing.
		`
CREATE TABLE jobs (
	id           TEXT PRIMARY KEY,
	kind         TEXT NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('queued','running','done','failed','cancelled','interrupted')),
	created_by   TEXT NOT NULL DEFAULT '',
	created_at   TEXT NOT NULL,
	started_at   TEXT,
	finished_at  TEXT,
	devices      TEXT NOT NULL DEFAULT '[]',
	total        INTEGER NOT NULL,
	done_count   INTEGER NOT NULL DEFAULT 0,
	failed_count INTEGER NOT NULL DEFAULT 0,
	error        TEXT NOT NULL DEFAULT '',
	params       TEXT
);
CREATE INDEX jobs_created ON jobs(created_at);
CREATE INDEX jobs_unfinished ON jobs(state) WHERE state IN ('queued','running');
CREATE TABLE job_results (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	device_id   TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('done','failed','cancelled')),
	result      TEXT,
	error       TEXT NOT NULL DEFAULT '',
	finished_at TEXT NOT NULL,
	UNIQUE (job_id, device_id)
);
`,
		// 4: the audit log of the changes the remote-support daemon makes
		// to devices (who, what, when, the relevant values before and
		// after; never a credential). An entry is written before the
		// change (outcome started) and finished after it, so a crash
		// mid-change leaves a trace; a finished entry cannot change and
		// no entry can be deleted. And an index to find a device's newest
		// job result (the findings an action fixes).
		`
CREATE TABLE audit_log (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at          TEXT NOT NULL,
	actor       TEXT NOT NULL,
	role        TEXT NOT NULL DEFAULT '',
	device_id   TEXT NOT NULL,
	action      TEXT NOT NULL,
	params      TEXT NOT NULL DEFAULT '{}',
	before      TEXT,
	after       TEXT,
	outcome     TEXT NOT NULL CHECK (outcome IN ('started','ok','failed','interrupted')),
	error       TEXT NOT NULL DEFAULT '',
	finished_at TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_device ON audit_log(device_id, at);
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted');
END;
CREATE TRIGGER audit_log_final BEFORE UPDATE ON audit_log
WHEN OLD.outcome <> 'started' OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor
	OR NEW.role IS NOT OLD.role OR NEW.device_id IS NOT OLD.device_id OR NEW.action IS NOT OLD.action
	OR NEW.params IS NOT OLD.params
BEGIN
	SELECT RAISE(ABORT, 'audit_log: a finished entry, and who did what to which device, cannot change');
END;
CREATE INDEX job_results_device ON job_results(device_id, finished_at);
`,
	}
}

// CurrentSchemaVersion is the schema version this package writes.
const CurrentSchemaVersion = 4

// migrate applies every migration the database has not seen, each in its
// own transaction together with its schema_migrations row. Running it again
// is a no-op.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: create schema_migrations in %s: %w", s.path, err)
	}
	for i, m := range migrations() {
		version := i + 1
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, ts(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate %s to schema version %d: %w", s.path, version, err)
		}
	}
	var newest int
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("store: read schema version of %s: %w", s.path, err)
	}
	if newest > CurrentSchemaVersion {
		return fmt.Errorf("store: %s has schema version %d, newer than this program's %d: upgrade fieldagent", s.path, newest, CurrentSchemaVersion)
	}
	return nil
}

// SchemaVersion returns the schema version recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v, nil
}
