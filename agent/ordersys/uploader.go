package ordersys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"fieldagent/agent/store"
)

// Outbox item kinds that Uploader delivers.
const (
	// KindCompletion: Body is the completion report, posted with Complete.
	KindCompletion = "completion"
	// KindEvent: Body is an event, {"kind":…, "at":…, "detail":…}, posted
	// with PostEvent under the item's key.
	KindEvent = "event"
)

// Uploader delivers the store's outbox to the order system. Every attempt
// sends the item's idempotency key, so an item delivered twice (a crash
// between the server's answer and MarkDelivered) is recorded once.
type Uploader struct {
	Store  *store.Store
	Client *Client
	// Logger, if nil, discards.
	Logger *slog.Logger
	// Now, if nil, is time.Now. It decides which items are due and when to
	// try a failed one again.
	Now func() time.Time
	// Backoff is the wait after an item's first failed attempt, doubled for
	// each further failure, with jitter, up to MaxBackoff. 0 means 30s.
	Backoff time.Duration
	// MaxBackoff caps the wait between attempts. 0 means 1h.
	MaxBackoff time.Duration
}

func (u *Uploader) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Uploader) logger() *slog.Logger {
	if u.Logger != nil {
		return u.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Flush tries every due outbox item once and returns how many were delivered.
//
// A delivered item is marked delivered with the server's answer. A temporary
// failure (unreachable, 408, 429, 5xx) is recorded with the next attempt
// after an exponential backoff with jitter. A permanent refusal (a 4xx other
// than 401, 403, 408 and 429, or an item the uploader cannot read) is
// recorded as failed and not retried. When the order system is unreachable or
// refuses the token, Flush stops early: the other items stay due and are not
// counted as attempted.
//
// err is nil when every due item was delivered; otherwise it joins the errors
// of the items that were not (ErrUnreachable, ErrUnauthorized … are visible
// with errors.Is).
func (u *Uploader) Flush(ctx context.Context) (delivered int, err error) {
	if u.Store == nil || u.Client == nil {
		return 0, errors.New("ordersys: uploader needs a Store and a Client")
	}
	due, err := u.Store.Due(ctx, u.now())
	if err != nil {
		return 0, fmt.Errorf("ordersys: read the outbox: %w", err)
	}
	var errs []error
	for _, it := range due {
		if err := ctx.Err(); err != nil {
			return delivered, errors.Join(append(errs, err)...)
		}
		resp, derr := u.deliver(ctx, it)
		if derr == nil {
			if err := u.Store.MarkDelivered(ctx, it.ID, resp); err != nil {
				return delivered, errors.Join(append(errs, fmt.Errorf("ordersys: record delivery of outbox item %d: %w", it.ID, err))...)
			}
			delivered++
			u.logger().Info("outbox item delivered", "order", it.OrderID, "kind", it.Kind, "item", it.ID, "attempt", it.Attempts+1)
			continue
		}
		if ctx.Err() != nil && !errors.Is(derr, ErrUnreachable) {
			// Cancelled by the caller: not an attempt against the server.
			return delivered, errors.Join(append(errs, derr)...)
		}
		itemErr := fmt.Errorf("outbox item %d (%s for order %s): %w", it.ID, it.Kind, it.OrderID, derr)
		errs = append(errs, itemErr)
		if Permanent(derr) {
			u.logger().Warn("outbox item refused for good", "order", it.OrderID, "kind", it.Kind, "item", it.ID, "err", derr)
			if err := u.Store.MarkFailed(context.WithoutCancel(ctx), it.ID, derr); err != nil {
				return delivered, errors.Join(append(errs, err)...)
			}
			continue
		}
		next := u.now().Add(u.backoff(it.Attempts + 1))
		u.logger().Warn("outbox item not delivered, will retry", "order", it.OrderID, "kind", it.Kind, "item", it.ID, "next", next, "err", derr)
		if err := u.Store.MarkAttempt(context.WithoutCancel(ctx), it.ID, derr, next); err != nil {
			return delivered, errors.Join(append(errs, err)...)
		}
		if errors.Is(derr, ErrUnreachable) || errors.Is(derr, ErrUnauthorized) {
			break // every other item would fail the same way
		}
	}
	return delivered, errors.Join(errs...)
}

// backoff returns the wait after the n-th failed attempt.
func (u *Uploader) backoff(n int) time.Duration {
	base, limit := u.Backoff, u.MaxBackoff
	if base <= 0 {
		base = 30 * time.Second
	}
	if limit <= 0 {
		limit = time.Hour
	}
	return backoff(base, limit, n)
}

// deliver sends one item and returns the server's answer to record.
func (u *Uploader) deliver(ctx context.Context, it store.OutboxItem) ([]byte, error) {
	switch it.Kind {
	case KindCompletion:
		r, err := u.Client.Complete(ctx, it.OrderID, it.IdempotencyKey, it.Body)
		if err != nil {
			return nil, err
		}
		return json.Marshal(r)
	case KindEvent:
		var ev struct {
			Kind   EventKind `json:"kind"`
			At     time.Time `json:"at"`
			Detail string    `json:"detail"`
		}
		if err := json.Unmarshal(it.Body, &ev); err != nil {
			return nil, fmt.Errorf("ordersys: %w: event body is not {\"kind\",\"at\",\"detail\"} JSON: %w", ErrInvalidRequest, err)
		}
		err := u.Client.PostEvent(ctx, it.OrderID, Event{Kind: ev.Kind, At: ev.At, Detail: ev.Detail, Key: it.IdempotencyKey})
		if err != nil {
			return nil, err
		}
		return []byte(`{"status":"recorded"}`), nil
	}
	return nil, fmt.Errorf("ordersys: %w: unknown outbox kind %q (want %s or %s)", ErrInvalidRequest, it.Kind, KindCompletion, KindEvent)
}
