package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fieldagent/agent/ordersys"
	"fieldagent/agent/report"
	"fieldagent/agent/store"
)

func (ru *run) completion() *report.Completion {
	c := &report.Completion{
		OrderID:      ru.out.OrderID,
		Result:       report.ResultSuccess,
		Technician:   ru.ord.Technician,
		Device:       ru.out.Device,
		OtherDevices: ru.out.Others,
		WAN:          ru.out.WAN,
		LOID:         ru.out.LOID,
		Readings:     ru.out.Readings,
		Steps:        append([]report.Step(nil), ru.out.Steps...),
		Fixes:        ru.out.Fixes,
		Verdict:      ru.out.Verdict,
		Acceptance:   ru.out.Acceptance,
		StartedAt:    ru.started,
		FinishedAt:   ru.now(),
		Agent:        ru.Agent,
	}
	if a := ru.out.Acceptance; a != nil && !a.Accepted {
		c.Result = report.ResultFailed
	}
	c.SetOrder(ru.ord)
	c.SetTimeLimit(ru.visitLimit())
	return c
}

// EventArrived is the store event `order arrive` records.
const EventArrived = "arrived"

// arrivedAt is when the technician recorded the arrival for this order
// (the latest "arrived" event), if they did.
func (ru *run) arrivedAt(ctx context.Context) (time.Time, bool) {
	evs, err := ru.Store.Events(ctx, ru.out.OrderID)
	if err != nil {
		ru.log().Warn("could not read the order's events", "err", err)
		return time.Time{}, false
	}
	var at time.Time
	for _, e := range evs {
		if e.Kind == EventArrived && e.At.After(at) {
			at = e.At
		}
	}
	return at, !at.IsZero()
}

// IdempotencyKey is the key of an order's completion upload: the same for
// every retry and every re-run, so the order system closes the order once.
func IdempotencyKey(orderID string) string { return "fieldagent-completion-" + orderID }

// report renders the completion report (JSON for the order system, the
// customer's bilingual page), stores both and queues the upload. Once the
// report is queued the visit's changes stay: they are part of a delivered
// installation.
func (ru *run) report(ctx context.Context) (string, error) {
	c := ru.completion()
	if at, ok := ru.arrivedAt(ctx); ok {
		c.ArrivedAt = at
		c.SetTimeLimit(ru.visitLimit()) // the limit counts from the arrival
	}
	body, err := c.JSON()
	if err != nil {
		return "", fmt.Errorf("encode report: %w", err)
	}
	if err := ru.Store.PutReport(ctx, ru.out.OrderID, "json", body); err != nil {
		return "", fmt.Errorf("store report: %w", err)
	}
	var page bytes.Buffer
	if err := c.WriteHTML(&page, report.Bilingual); err != nil {
		return "", fmt.Errorf("render the customer's report: %w", err)
	}
	if err := ru.Store.PutReport(ctx, ru.out.OrderID, "html", page.Bytes()); err != nil {
		return "", fmt.Errorf("store report: %w", err)
	}
	// A resumed run that renders the report again keeps the first queued
	// body: the outbox ignores a second item with the same key, and the
	// order system answers a repeated key with its first result.
	if err := ru.Store.Enqueue(ctx, store.OutboxItem{OrderID: ru.out.OrderID, Kind: ordersys.KindCompletion, IdempotencyKey: IdempotencyKey(ru.out.OrderID), Body: body}); err != nil {
		return "", fmt.Errorf("queue upload: %w", err)
	}
	if err := ru.Store.SetOrderState(ctx, ru.out.OrderID, OrderPending); err != nil {
		return "", err
	}
	ru.out.Completion = c
	// Changes are now part of a delivered installation, not to be undone.
	ru.undo = nil
	return fmt.Sprintf("report stored (%d bytes), upload queued", len(body)), nil
}

// upload delivers the outbox (this order's report and anything still
// pending) and reads this order's receipt from the store.
func (ru *run) upload(ctx context.Context) (string, error) {
	u := &ordersys.Uploader{Store: ru.Store, Client: ru.Orders, Logger: ru.Logger, Now: ru.Now}
	_, ferr := u.Flush(ctx)
	items, err := ru.Store.Outbox(ctx, ru.out.OrderID)
	if err != nil {
		return "", err
	}
	for _, it := range items {
		if it.IdempotencyKey != IdempotencyKey(ru.out.OrderID) {
			continue
		}
		if !it.Delivered() {
			cause := ferr
			if cause == nil {
				cause = errors.New(it.LastError)
			}
			return "report kept in the outbox: `fieldagent upload` delivers it later", fmt.Errorf("upload completion: %w", cause)
		}
		var rc ordersys.Receipt
		if err := json.Unmarshal(it.Response, &rc); err != nil {
			return "", fmt.Errorf("read the upload receipt: %w", err)
		}
		if err := ru.Store.SetOrderState(ctx, ru.out.OrderID, OrderClosed); err != nil {
			return "", err
		}
		ru.out.Receipt = &rc
		ru.out.State = OrderClosed
		return fmt.Sprintf("order %s in the order system, receipt %s", rc.State, rc.Receipt), nil
	}
	return "", errors.New("upload completion: the report is not in the outbox")
}

// rollback undoes the configuration changes of a failed run, newest first.
func (ru *run) rollback(ctx context.Context) {
	if len(ru.undo) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	_ = ru.step(ctx, StepRollback, ru.Limits.StepTimeout*time.Duration(len(ru.undo)), func(ctx context.Context) (string, error) {
		var errs []error
		done := ""
		for i := len(ru.undo) - 1; i >= 0; i-- {
			u := ru.undo[i]
			if err := u.fn(ctx); err != nil {
				errs = append(errs, fmt.Errorf("undo %s: %w", u.what, err))
				continue
			}
			if done != "" {
				done += ", "
			}
			done += "removed " + u.what
		}
		ru.undo = nil
		return done, errors.Join(errs...)
	})
}
