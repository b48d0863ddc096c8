package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/ordersys"
	"fieldagent/agent/report"
	"fieldagent/agent/store"
)

// plan returns the steps of an order's visit after fetch_order, following
// the operator's visit standard: identify the devices, configure, bind,
// test, the customer's acceptance, the report and 报竣.
//
//   - new_install and move (e8): wait_inform, identify, configure_internet,
//     register_loid, [configure_iptv, wait_stb, configure_stb,
//     wait_stb_auth when the order has an iTV], wait_wan, ping, speed_test.
//     A move re-registers the LOID: the ONT is on a new PON port.
//   - new_install and move (XT-2): connect_xt2, identify, line_test,
//     configure_internet, bind_bbms, wait_wan, save_config, ping,
//     speed_test.
//   - new_install (iTV only, on an existing gateway): wait_stb,
//     configure_stb, wait_stb_auth.
//   - repair (e8 or XT-2): wait_inform or connect_xt2, identify, diagnose,
//     fix (what the findings call for), wait_wan, ping, speed_test, retest.
//   - removal (e8): wait_inform, identify, factory_reset.
//
// Every plan ends acceptance, report, upload. It is an error wrapping
// ErrUnsupported for an order this workflow cannot do.
func (r *run) plan(o *order.Order) ([]stepSpec, error) {
	lim := r.Limits
	st := lim.StepTimeout
	speedTimeout := r.Diag.SpeedDuration*3 + 10*time.Second
	var s []stepSpec
	add := func(name string, k stepKind, timeout time.Duration, fn func(context.Context) (string, error), restore func([]byte) error) {
		s = append(s, stepSpec{name: name, kind: k, timeout: timeout, fn: fn, restore: restore})
	}
	tests := func() {
		add(StepPing, kindMeasure, st, r.ping, nil)
		add(StepSpeed, kindMeasure, speedTimeout, r.speed, nil)
	}
	identify := func() { add(StepIdentify, kindObserve, st, r.identify, restoreInto(&r.out.Device)) }
	switch {
	case o.HasDevice(order.DeviceXT2):
		if o.HasDevice(order.DeviceE8) {
			return nil, fmt.Errorf("%w: order %s has both an e8 and an XT-2: split it into one order per gateway", ErrUnsupported, o.ID)
		}
		add(StepConnectXT2, kindObserve, st, r.connectXT2, nil)
		identify()
		switch o.Type {
		case order.TypeNewInstall, order.TypeMove:
			add(StepLineTest, kindMeasure, st, r.lineTestXT2, nil)
			add(StepInternet, kindChange, lim.WANTimeout+st, r.configureInternet, nil)
			add(StepBindBBMS, kindChange, lim.LOIDTimeout+st, r.bindBBMS, nil)
			add(StepWaitWAN, kindObserve, lim.WANTimeout, r.waitWAN, restoreInto(&r.out.WAN))
			add(StepSaveConfig, kindChange, st, r.saveXT2, nil)
			tests()
		case order.TypeRepair:
			add(StepDiagnose, kindMeasure, 2*st, r.diagnose, r.restoreDiagnosis)
			add(StepFix, kindChange, lim.WANTimeout+st, r.fix, restoreInto(&r.out.Fixes))
			add(StepWaitWAN, kindObserve, lim.WANTimeout, r.waitWAN, restoreInto(&r.out.WAN))
			tests()
			add(StepRetest, kindMeasure, 2*st, r.retest, restoreInto(&r.out.Fixes))
		default:
			return nil, fmt.Errorf("%w: a %s of an XT-2 is not automated yet: do it by hand and close the order in the order system", ErrUnsupported, o.Type)
		}
	case o.HasDevice(order.DeviceE8):
		add(StepWaitInform, kindObserve, lim.InformTimeout, r.waitInform, nil)
		identify()
		switch o.Type {
		case order.TypeNewInstall, order.TypeMove:
			add(StepInternet, kindChange, st, r.configureInternet, nil)
			add(StepLOID, kindChange, lim.LOIDTimeout, r.registerLOID, restoreInto(&r.out.LOID))
			if o.HasDevice(order.DeviceITV) {
				r.planSTB(add, true)
			}
			add(StepWaitWAN, kindObserve, lim.WANTimeout, r.waitWAN, restoreInto(&r.out.WAN))
			tests()
		case order.TypeRepair:
			add(StepDiagnose, kindMeasure, 2*st, r.diagnose, r.restoreDiagnosis)
			add(StepFix, kindChange, lim.LOIDTimeout+st, r.fix, restoreInto(&r.out.Fixes))
			add(StepWaitWAN, kindObserve, lim.WANTimeout, r.waitWAN, restoreInto(&r.out.WAN))
			tests()
			add(StepRetest, kindMeasure, 2*st, r.retest, restoreInto(&r.out.Fixes))
		case order.TypeRemoval:
			add(StepFactoryReset, kindChange, lim.InformTimeout, r.factoryReset, nil)
		default:
			return nil, fmt.Errorf("%w: order type %q", ErrUnsupported, o.Type)
		}
	case o.HasDevice(order.DeviceITV):
		if o.Type != order.TypeNewInstall && o.Type != order.TypeMove {
			return nil, fmt.Errorf("%w: a %s of a set-top box alone is not automated yet", ErrUnsupported, o.Type)
		}
		r.planSTB(add, false)
	default:
		return nil, fmt.Errorf("%w: order %s names no device kind this workflow knows", ErrUnsupported, o.ID)
	}
	add(StepAcceptance, kindHuman, st, r.acceptance, restoreInto(&r.out.Acceptance))
	add(StepReport, kindObserve, st, r.report, nil)
	add(StepUpload, kindObserve, st, r.upload, nil)
	return s, nil
}

// PlanSteps returns the names of the steps a run of o goes through, in
// order (fetch_order first).
func PlanSteps(o *order.Order) ([]string, error) {
	r := &run{Runner: &Runner{}, out: &Outcome{}}
	steps, err := r.plan(o)
	if err != nil {
		return nil, err
	}
	names := []string{StepFetchOrder}
	for _, s := range steps {
		names = append(names, s.name)
	}
	return names, nil
}

// fetch gets the order from the order system, validated, and stores it
// (without credentials). A resumed run whose order system is out of reach
// goes on from the stored copy, without credentials: a step that needs
// them says so.
func (ru *run) fetch(ctx context.Context) (string, error) {
	o, err := ru.Orders.GetOrder(ctx, ru.out.OrderID)
	if err != nil {
		if stored, _, serr := ru.Store.GetOrder(ctx, ru.out.OrderID); serr == nil && len(ru.done) > 0 && unreachable(err) {
			ru.ord = stored
			return fmt.Sprintf("order system out of reach (%v): going on from the stored order", err), nil
		}
		return "", fmt.Errorf("fetch order %s: %w", ru.out.OrderID, err)
	}
	// The store keeps the order without credentials (json.Marshal redacts
	// them); the credentials live in memory for this run only.
	if err := ru.Store.PutOrder(ctx, o, OrderRunning); err != nil {
		return "", fmt.Errorf("store order: %w", err)
	}
	ru.ord, ru.creds = o, true
	if _, resumed := ru.done[StepFetchOrder]; !resumed {
		ru.queueEvent(ctx, ordersys.EventStarted, "", "fieldagent-started-"+o.ID)
	}
	detail := fmt.Sprintf("%s for %s, %s", o.Type, o.Customer.Name, o.Customer.Address)
	if len(ru.done) > 0 {
		detail += fmt.Sprintf("; resuming: %d steps done before", len(ru.done))
	}
	return detail, nil
}

// unreachable reports whether err means the order system could not be
// reached (rather than that it refused the request).
func unreachable(err error) bool { return errors.Is(err, ordersys.ErrUnreachable) }

// queueEvent sends an event to the order system through the outbox: kept
// until delivered, delivered once (the key). It tries once now; the upload
// step and `fieldagent upload` retry.
func (ru *run) queueEvent(ctx context.Context, kind ordersys.EventKind, detail, key string) {
	body, err := json.Marshal(ordersys.Event{Kind: kind, At: ru.now(), Detail: detail})
	if err == nil {
		err = ru.Store.Enqueue(ctx, store.OutboxItem{OrderID: ru.out.OrderID, Kind: ordersys.KindEvent, IdempotencyKey: key, Body: body})
	}
	if err != nil {
		ru.log().Warn("could not queue the event", "order", ru.out.OrderID, "event", kind, "err", err)
		return
	}
	u := &ordersys.Uploader{Store: ru.Store, Client: ru.Orders, Logger: ru.Logger, Now: ru.Now}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := u.Flush(fctx); err != nil {
		ru.log().Info("event kept in the outbox for later", "order", ru.out.OrderID, "event", kind, "err", err)
	}
}

// needCredentials is called by a step that sends the order's credentials.
func (ru *run) needCredentials() error {
	if !ru.creds {
		return errors.New("this step needs the order's credentials, which are never stored on the laptop: run again where the order system can be reached")
	}
	return nil
}

func (ru *run) service(k order.DeviceKind) order.Service {
	for _, s := range ru.ord.Services {
		if s.Device == k {
			return s
		}
	}
	return order.Service{}
}

// gatewayService is the order's internet service: the e8's or the XT-2's.
func (ru *run) gatewayService() order.Service {
	if ru.ord.HasDevice(order.DeviceXT2) {
		return ru.service(order.DeviceXT2)
	}
	return ru.service(order.DeviceE8)
}

// EventAccepted is the store event `order accept` records; its detail is
// the report.Acceptance as JSON.
const EventAccepted = "customer_accepted"

// RecordAcceptance records the customer's answer for an order: a store
// event, and an event to the order system through the outbox. A later run
// of the order (or the one waiting) takes it from the store.
func RecordAcceptance(ctx context.Context, st *store.Store, orderID string, a report.Acceptance) error {
	if a.Name == "" {
		return errors.New("the customer's name is required: --name")
	}
	if a.At.IsZero() {
		a.At = time.Now()
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := st.AddEvent(ctx, orderID, EventAccepted, string(b)); err != nil {
		return err
	}
	detail := "accepted by " + a.Name
	if !a.Accepted {
		detail = "refused by " + a.Name
	}
	if a.Comment != "" {
		detail += ": " + a.Comment
	}
	body, err := json.Marshal(ordersys.Event{Kind: ordersys.EventCustomerAccepted, At: a.At, Detail: detail})
	if err != nil {
		return err
	}
	return st.Enqueue(ctx, store.OutboxItem{OrderID: orderID, Kind: ordersys.KindEvent,
		IdempotencyKey: fmt.Sprintf("fieldagent-accepted-%s-%d", orderID, a.At.UnixNano()), Body: body})
}

// acceptance is the customer's answer: given at the laptop during the run
// (Runner.Accept), or recorded by `order accept` since. Without one the
// run stops here, the work kept, and a later run goes on from here.
func (ru *run) acceptance(ctx context.Context) (string, error) {
	a, err := ru.storedAcceptance(ctx)
	if err != nil {
		return "", err
	}
	if a == nil && ru.Accept != nil {
		acc := *ru.Accept
		if acc.At.IsZero() {
			acc.At = ru.now()
		}
		if err := RecordAcceptance(ctx, ru.Store, ru.out.OrderID, acc); err != nil {
			return "", err
		}
		a = &acc
	}
	if a == nil {
		return fmt.Sprintf("waiting for the customer: fieldagent order accept %s --name NAME [--comment TEXT], then run the order again", ru.out.OrderID), errAwaiting
	}
	ru.out.Acceptance = a
	ru.keep = a
	if !a.Accepted {
		return "refused by " + a.Name, nil
	}
	return "accepted by " + a.Name, nil
}

// storedAcceptance is the latest acceptance recorded for the order.
func (ru *run) storedAcceptance(ctx context.Context) (*report.Acceptance, error) {
	evs, err := ru.Store.Events(ctx, ru.out.OrderID)
	if err != nil {
		return nil, err
	}
	var a *report.Acceptance
	for _, e := range evs {
		if e.Kind != EventAccepted {
			continue
		}
		var v report.Acceptance
		if err := json.Unmarshal([]byte(e.Detail), &v); err != nil {
			return nil, fmt.Errorf("stored acceptance: %w", err)
		}
		a = &v
	}
	return a, nil
}
