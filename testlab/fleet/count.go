package fleet

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// SessionFailures is a slog.Handler for Options.Logger that counts the
// gateways' failed CWMP sessions (each is retried later, with backoff)
// and drops every record: load tests count lost sessions with it.
type SessionFailures struct{ n atomic.Int64 }

// Count is how many CWMP sessions have failed so far.
func (c *SessionFailures) Count() int64 { return c.n.Load() }

// Enabled implements slog.Handler.
func (c *SessionFailures) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// WithAttrs implements slog.Handler.
func (c *SessionFailures) WithAttrs([]slog.Attr) slog.Handler { return c }

// WithGroup implements slog.Handler.
func (c *SessionFailures) WithGroup(string) slog.Handler { return c }

// Handle implements slog.Handler.
func (c *SessionFailures) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "CWMP session failed" {
		c.n.Add(1)
	}
	return nil
}
