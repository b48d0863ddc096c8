package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/agent/ordersys"
	"fieldagent/agent/report"
	"fieldagent/agent/store"
	"fieldagent/agent/workflow"
)

func newOrderCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "order",
		Short: "Work orders: run one end to end, list and show them from the local store",
		Example: `  fieldagent order run WO-20261125-0001
  fieldagent order list
  fieldagent order show WO-20261125-0001 --output json
  fieldagent order report WO-20261125-0001 --file report.html`,
	}
	cmd.AddCommand(newOrderRunCmd(f, nil), newOrderListCmd(f, nil), newOrderShowCmd(f, nil), newOrderReportCmd(f), newOrderArriveCmd(f), newOrderAcceptCmd(f), newOrderEventCmd(f))
	return cmd
}

type orderRunOptions struct {
	f       *Factory
	OrderID string
	Serial  string
	// AcceptedBy and Comment record the customer's acceptance at the
	// laptop; Refused records a refusal instead.
	AcceptedBy string
	Comment    string
	Restart    bool
}

func newOrderRunCmd(f *Factory, runF func(context.Context, *orderRunOptions) error) *cobra.Command {
	opts := &orderRunOptions{f: f}
	cmd := &cobra.Command{
		Use:   "run ORDER-ID",
		Short: "Run a work order: fetch, identify, configure, register, test, 报竣",
		Long: `order run fetches the order from the order system into the local store,
starts the ACS on acs.listen and waits for the gateway's Inform, identifies the
gateway and checks it against the order, configures PPPoE routed internet,
registers the LOID with ITMS, waits for the WAN, runs a ping and a speed test,
stores every reading and uploads the completion report (报竣).

The steps follow the order: an e8 new install or move configures PPPoE routed
internet and registers the LOID (and, with an iTV on the order, the gateway's
IPTV VLAN and the set-top box's account); an XT-2 gets a line test, PPPoE and
its BBMS binding over SSH; a repair diagnoses the line and WAN, applies the fix
the findings call for and re-tests; a removal factory-resets the gateway.

The customer's acceptance comes next: --accepted-by when the customer accepts
at the laptop, otherwise the run stops (order state awaiting_acceptance) until
'order accept' records it, and running the order again closes it.

A run is resumable: stopped or killed at any moment, 'order run' again
continues at the first unfinished step; a device change or a measurement that
was done is not repeated. --restart runs the whole visit again.

A failed step stops the run, rolls back the changes made so far and uploads
nothing; the step's error says what to check.`,
		Example: `  # Gateway plugged in, its ACS URL pointing at this laptop
  fieldagent order run WO-20261125-0001

  # Pick one gateway when several inform
  fieldagent order run WO-20261125-0001 --serial ZTEG1A2B3C4D --output json

  # The customer accepts at the laptop: the run closes the order (报竣)
  fieldagent order run WO-20261125-0001 --accepted-by "张伟" --comment "满意"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.OrderID = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runOrderRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Serial, "serial", "", "serial number of the gateway to use (default: the first that informs)")
	cmd.Flags().StringVar(&opts.AcceptedBy, "accepted-by", "", "the customer's name, when they accept at the laptop once the tests pass")
	cmd.Flags().StringVar(&opts.Comment, "comment", "", "the customer's comment with --accepted-by")
	cmd.Flags().BoolVar(&opts.Restart, "restart", false, "run the whole visit again instead of resuming it")
	return cmd
}

func runOrderRun(ctx context.Context, opts *orderRunOptions) error {
	cfg := opts.f.Config()
	if opts.Comment != "" && opts.AcceptedBy == "" {
		return &usageError{errors.New("--comment goes with --accepted-by (or use 'order accept')")}
	}
	r := orderRun{OrderID: opts.OrderID, Serial: opts.Serial, StorePath: cfg.Store, Cfg: cfg, Restart: opts.Restart}
	if opts.AcceptedBy != "" {
		r.Accept = &report.Acceptance{Name: opts.AcceptedBy, Comment: opts.Comment, Accepted: true, At: opts.f.Now()}
	}
	_, err := executeOrder(ctx, opts.f, opts.f.Logger(), r)
	return err
}

type orderListOptions struct{ f *Factory }

func newOrderListCmd(f *Factory, runF func(context.Context, *orderListOptions) error) *cobra.Command {
	opts := &orderListOptions{f: f}
	return &cobra.Command{
		Use:     "list",
		Short:   "List the orders in the local store (works offline)",
		Example: "  fieldagent order list\n  fieldagent order list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runOrderList(cmd.Context(), opts)
		},
	}
}

func openStore(f *Factory) (*store.Store, error) {
	path := f.Config().Store
	if err := ensureDir(path); err != nil {
		return nil, err
	}
	st, err := store.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return st, nil
}

func runOrderList(ctx context.Context, opts *orderListOptions) error {
	f := opts.f
	st, err := openStore(f)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.ListOrders(ctx)
	if err != nil {
		return err
	}
	if f.jsonOutput() {
		return f.writeJSON(map[string]any{"orders": list})
	}
	if len(list) == 0 {
		fmt.Fprintln(f.IO.Out, "no orders in the local store: run `fieldagent order run ID` to fetch one")
		return nil
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tTYPE\tSTATE\tCUSTOMER\tUPDATED")
	for _, o := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.ID, o.Type, o.State, o.Customer, o.UpdatedAt.Local().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

type orderShowOptions struct {
	f       *Factory
	OrderID string
}

func newOrderShowCmd(f *Factory, runF func(context.Context, *orderShowOptions) error) *cobra.Command {
	opts := &orderShowOptions{f: f}
	return &cobra.Command{
		Use:     "show ORDER-ID",
		Short:   "Show an order's steps and readings from the local store (works offline)",
		Example: "  fieldagent order show WO-20261125-0001\n  fieldagent order show WO-20261125-0001 --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.OrderID = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runOrderShow(cmd.Context(), opts)
		},
	}
}

func runOrderShow(ctx context.Context, opts *orderShowOptions) error {
	f := opts.f
	st, err := openStore(f)
	if err != nil {
		return err
	}
	defer st.Close()
	o, state, err := st.GetOrder(ctx, opts.OrderID)
	if errors.Is(err, store.ErrNotFound) {
		return &usageError{fmt.Errorf("order %s is not in the local store: `fieldagent order list` shows what is", opts.OrderID)}
	}
	if err != nil {
		return err
	}
	steps, err := st.Steps(ctx, opts.OrderID)
	if err != nil {
		return err
	}
	readings, err := st.Readings(ctx, opts.OrderID)
	if err != nil {
		return err
	}
	if f.jsonOutput() {
		return f.writeJSON(map[string]any{"order": o, "state": state, "steps": steps, "readings": readings})
	}
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Order\t%s (%s)\nState\t%s\nCustomer\t%s, %s\n\n", o.ID, o.Type, state, o.Customer.Name, o.Customer.Address)
	fmt.Fprintln(tw, "STEP\tSTATE\tDETAIL")
	for _, s := range steps {
		d := s.Detail
		if s.Error != "" {
			d = s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.State, d)
	}
	if len(readings) > 0 {
		fmt.Fprintln(tw, "\nREADING\tVALUE\tUNIT")
		for _, r := range readings {
			fmt.Fprintf(tw, "%s\t%.2f\t%s\n", r.Name, r.Value, r.Unit)
		}
	}
	return tw.Flush()
}

type orderReportOptions struct {
	f       *Factory
	OrderID string
	Format  string
	Lang    string
	File    string
}

func newOrderReportCmd(f *Factory) *cobra.Command {
	opts := &orderReportOptions{f: f}
	cmd := &cobra.Command{
		Use:   "report ORDER-ID",
		Short: "Print or save an order's completion report (报竣) from the local store (works offline)",
		Long: `order report prints the completion report that 'order run' stored: the
customer's printable page (--format html, Chinese and English by default,
--lang zh or en for one language) or the JSON sent to the order system.
--file writes it to a file (created 0600) instead of stdout; open the HTML in
a browser and print it for the customer.`,
		Example: `  fieldagent order report WO-20261125-0001 --file report.html
  fieldagent order report WO-20261125-0001 --format html --lang zh > 竣工报告.html
  fieldagent order report WO-20261125-0001 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.OrderID = args[0]
			return runOrderReport(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "html", "html (the customer's page) or json (what the order system gets)")
	cmd.Flags().StringVar(&opts.Lang, "lang", "both", "html language: both, zh or en")
	cmd.Flags().StringVar(&opts.File, "file", "", "write to this file instead of stdout")
	return cmd
}

func runOrderReport(ctx context.Context, opts *orderReportOptions) error {
	if opts.Format != "html" && opts.Format != "json" {
		return &usageError{fmt.Errorf("--format %q: want html or json", opts.Format)}
	}
	lang := report.Lang(opts.Lang)
	if lang != report.Bilingual && lang != report.Chinese && lang != report.English {
		return &usageError{fmt.Errorf("--lang %q: want both, zh or en", opts.Lang)}
	}
	st, err := openStore(opts.f)
	if err != nil {
		return err
	}
	defer st.Close()
	body, err := st.Report(ctx, opts.OrderID, "json")
	if errors.Is(err, store.ErrNotFound) {
		return &usageError{fmt.Errorf("order %s has no completion report in the local store: run 'fieldagent order run %s' to finish it", opts.OrderID, opts.OrderID)}
	}
	if err != nil {
		return err
	}
	if opts.Format == "html" {
		var c report.Completion
		if err := json.Unmarshal(body, &c); err != nil {
			return fmt.Errorf("stored report of %s: %w", opts.OrderID, err)
		}
		var page bytes.Buffer
		if err := c.WriteHTML(&page, lang); err != nil {
			return err
		}
		body = page.Bytes()
	}
	if opts.File == "" {
		_, err := opts.f.IO.Out.Write(body)
		return err
	}
	if err := os.WriteFile(opts.File, body, 0o600); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	fmt.Fprintf(opts.f.IO.ErrOut, "wrote %s (%d bytes)\n", opts.File, len(body))
	return nil
}

func newOrderArriveCmd(f *Factory) *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:   "arrive ORDER-ID",
		Short: "Record the arrival at the customer's (the visit's clock starts here)",
		Long: `order arrive records, with the time, that the technician is at the customer's:
the visit standard's arrival step (show ID, confirm the address against the
order). It fetches the order into the local store if it is not there yet,
tells the order system (best effort: the arrival is kept locally either way),
and 'order run' then counts the visit's time limit from this moment.`,
		Example: `  fieldagent order arrive WO-20261125-0001
  fieldagent order arrive WO-20261125-0001 --note "customer asked to install in the study"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOrderArrive(cmd.Context(), f, args[0], note)
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "a note kept with the arrival")
	return cmd
}

func runOrderArrive(ctx context.Context, f *Factory, id, note string) error {
	return recordVisitEvent(ctx, f, id, ordersys.EventArrived, workflow.EventArrived, note)
}

// visitEvents are the events a technician records with 'order event', with
// what each means.
var visitEvents = map[ordersys.EventKind]string{
	ordersys.EventAccepted:             "the technician takes the order",
	ordersys.EventAppointmentConfirmed: "the customer was called 10–15 minutes ahead and confirmed",
	ordersys.EventCleanedUp:            "the work area is cleaned up, packaging taken away",
}

func newOrderEventCmd(f *Factory) *cobra.Command {
	var detail string
	cmd := &cobra.Command{
		Use:   "event ORDER-ID accepted|appointment_confirmed|cleaned_up",
		Short: "Record a step of the visit standard that only the technician can do",
		Long: `order event records, with the time, one of the visit standard's human steps:

  accepted               the technician takes the order
  appointment_confirmed  the customer was called 10–15 minutes ahead and confirmed
  cleaned_up             the work area is cleaned up, packaging taken away

(the arrival and the customer's acceptance have their own commands: 'order
arrive' and 'order accept'). The event is kept in the local store and sent to
the order system through the outbox: delivered once, later when offline.`,
		Example: `  fieldagent order event WO-20261125-0001 appointment_confirmed --detail "called at 09:40, customer home"
  fieldagent order event WO-20261125-0001 cleaned_up`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := ordersys.EventKind(args[1])
			if _, ok := visitEvents[kind]; !ok {
				return &usageError{fmt.Errorf("event %q is not one of accepted, appointment_confirmed, cleaned_up", args[1])}
			}
			return recordVisitEvent(cmd.Context(), f, args[0], kind, string(kind), detail)
		},
	}
	cmd.Flags().StringVar(&detail, "detail", "", "a note kept with the event")
	return cmd
}

// recordVisitEvent records a visit event for an order: in the store (as
// storeKind, fetching the order into the store if it is not there) and to
// the order system through the outbox, delivered now if it can be.
func recordVisitEvent(ctx context.Context, f *Factory, id string, kind ordersys.EventKind, storeKind, note string) error {
	cfg := f.Config()
	st, err := openStore(f)
	if err != nil {
		return err
	}
	defer st.Close()
	client := &ordersys.Client{BaseURL: cfg.OrderSystem.URL, Token: cfg.OrderSystem.Token,
		HTTPClient: &http.Client{Timeout: cfg.OrderSystem.Timeout}, Logger: f.Logger().With("component", "ordersys")}
	o, _, err := st.GetOrder(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		if cfg.OrderSystem.URL == "" {
			return &usageError{fmt.Errorf("order %s is not in the local store and order_system.url is not set to fetch it", id)}
		}
		if o, err = client.GetOrder(ctx, id); err != nil {
			return fmt.Errorf("fetch order %s: %w", id, err)
		}
		if err := st.PutOrder(ctx, o, "assigned"); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	now := f.Now()
	if err := st.AddEvent(ctx, id, storeKind, note); err != nil {
		return err
	}
	// The event leaves through the outbox: kept until the order system has
	// it, delivered once (its idempotency key) by this call or a later
	// 'fieldagent upload' when the network is back.
	body, err := json.Marshal(ordersys.Event{Kind: kind, At: now, Detail: note})
	if err != nil {
		return err
	}
	key := fmt.Sprintf("fieldagent-%s-%s-%d", kind, id, now.UnixNano())
	if err := st.Enqueue(ctx, store.OutboxItem{OrderID: id, Kind: ordersys.KindEvent, IdempotencyKey: key, Body: body}); err != nil {
		return err
	}
	posted := "queued for the order system (order_system.url not set)"
	if cfg.OrderSystem.URL != "" {
		up := &ordersys.Uploader{Store: st, Client: client, Logger: f.Logger().With("component", "outbox"), Now: f.Now}
		if _, err := up.Flush(ctx); err != nil {
			posted = "queued: the order system did not take it yet ('fieldagent upload' retries)"
			f.Logger().Warn("event not delivered yet", "order", id, "event", kind, "err", err)
		} else if delivered(ctx, st, id, key) {
			posted = "told the order system"
		} else {
			posted = "queued: 'fieldagent upload' delivers it"
		}
	}
	if f.jsonOutput() {
		return f.writeJSON(map[string]any{"order_id": id, "event": kind, "at": now, "order_system": posted})
	}
	if kind == ordersys.EventArrived {
		fmt.Fprintf(f.IO.Out, "Arrived at %s, %s (%s), %s — %s\n", o.Customer.Name, o.Customer.Address, id, now.Format("15:04"), posted)
		return nil
	}
	fmt.Fprintf(f.IO.Out, "%s %s at %s: %s — %s\n", id, kind, now.Format("15:04"), visitEvents[kind], posted)
	return nil
}

// delivered reports whether the outbox item of order id with the
// idempotency key has reached the order system.
func delivered(ctx context.Context, st *store.Store, id, key string) bool {
	items, err := st.Outbox(ctx, id)
	if err != nil {
		return false
	}
	for _, it := range items {
		if it.IdempotencyKey == key {
			return !it.DeliveredAt.IsZero()
		}
	}
	return false
}

func newOrderAcceptCmd(f *Factory) *cobra.Command {
	var (
		name, comment string
		refused       bool
	)
	cmd := &cobra.Command{
		Use:   "accept ORDER-ID",
		Short: "Record the customer's acceptance (or refusal) of the work",
		Long: `order accept records, with the time, the customer's answer after the demo:
the visit standard's acceptance step. It is kept in the local store and sent
to the order system through the outbox (delivered once, later if offline).

An order run that stopped waiting for the acceptance goes on from there when
run again: the report carries the acceptance and 报竣 closes the order. A
refusal (--refused) is reported too; the order is then not marked a success.`,
		Example: `  fieldagent order accept WO-20261125-0001 --name "张伟"
  fieldagent order accept WO-20261125-0001 --name "张伟" --comment "网速很快, 满意"
  fieldagent order accept WO-20261125-0001 --name "张伟" --refused --comment "IPTV still freezes"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(name) == "" {
				return &usageError{errors.New("--name is required: the name the customer gives")}
			}
			return runOrderAccept(cmd.Context(), f, args[0], report.Acceptance{Name: strings.TrimSpace(name), Comment: comment, Accepted: !refused, At: f.Now()})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the customer's name, as they give it (required)")
	cmd.Flags().StringVar(&comment, "comment", "", "what the customer said")
	cmd.Flags().BoolVar(&refused, "refused", false, "the customer refused the work")
	return cmd
}

func runOrderAccept(ctx context.Context, f *Factory, id string, a report.Acceptance) error {
	cfg := f.Config()
	st, err := openStore(f)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, _, err := st.GetOrder(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &usageError{fmt.Errorf("order %s is not in the local store: run or arrive at it first", id)}
		}
		return err
	}
	if err := workflow.RecordAcceptance(ctx, st, id, a); err != nil {
		return err
	}
	posted := "queued for the order system (order_system.url not set)"
	if cfg.OrderSystem.URL != "" {
		client := &ordersys.Client{BaseURL: cfg.OrderSystem.URL, Token: cfg.OrderSystem.Token,
			HTTPClient: &http.Client{Timeout: cfg.OrderSystem.Timeout}, Logger: f.Logger().With("component", "ordersys")}
		up := &ordersys.Uploader{Store: st, Client: client, Logger: f.Logger().With("component", "outbox"), Now: f.Now}
		if _, err := up.Flush(ctx); err != nil {
			posted = "queued: the order system did not take it yet ('fieldagent upload' retries)"
			f.Logger().Warn("acceptance not delivered yet", "order", id, "err", err)
		} else {
			posted = "told the order system"
		}
	}
	if f.jsonOutput() {
		return f.writeJSON(map[string]any{"order_id": id, "acceptance": a, "order_system": posted})
	}
	verb := "accepted"
	if !a.Accepted {
		verb = "refused"
	}
	fmt.Fprintf(f.IO.Out, "Order %s %s by %s at %s — %s\nNext: fieldagent order run %s (finishes the report and 报竣)\n", id, verb, a.Name, a.At.Format("15:04"), posted, id)
	return nil
}
