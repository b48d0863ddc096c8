package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fieldagent/agent/ordersys"
)

type uploadOptions struct{ f *Factory }

func newUploadCmd(f *Factory, runF func(context.Context, *uploadOptions) error) *cobra.Command {
	opts := &uploadOptions{f: f}
	return &cobra.Command{
		Use:   "upload",
		Short: "Deliver stored completion reports (报竣) that are still waiting in the outbox",
		Long: `upload sends every due item of the local outbox to the order system, each
with its idempotency key, so an item that already arrived is not recorded twice.
Items that fail for a temporary reason wait with exponential backoff; items the
order system refuses for good are marked failed. Run it when the signal is back.`,
		Example: `  fieldagent upload
  fieldagent upload --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runUpload(cmd.Context(), opts)
		},
	}
}

// uploadResult is what `upload` reports.
type uploadResult struct {
	Delivered int    `json:"delivered"`
	Pending   int    `json:"pending"`
	Failed    int    `json:"failed"`
	Error     string `json:"error,omitempty"`
}

func runUpload(ctx context.Context, opts *uploadOptions) error {
	f := opts.f
	cfg := f.Config()
	if cfg.OrderSystem.URL == "" || cfg.OrderSystem.Token.IsZero() {
		return &usageError{errors.New("order_system.url and order_system.token must be set to upload")}
	}
	st, err := openStore(f)
	if err != nil {
		return err
	}
	defer st.Close()
	u := &ordersys.Uploader{
		Store:  st,
		Client: &ordersys.Client{BaseURL: cfg.OrderSystem.URL, Token: cfg.OrderSystem.Token, HTTPClient: &http.Client{Timeout: cfg.OrderSystem.Timeout}, Logger: f.Logger()},
		Logger: f.Logger(),
		Now:    f.Now,
	}
	delivered, ferr := u.Flush(ctx)
	res := uploadResult{Delivered: delivered}
	orders, err := st.ListOrders(ctx)
	if err != nil {
		return err
	}
	for _, o := range orders {
		items, err := st.Outbox(ctx, o.ID)
		if err != nil {
			return err
		}
		for _, it := range items {
			switch {
			case it.Failed():
				res.Failed++
			case !it.Delivered():
				res.Pending++
			}
		}
	}
	if ferr != nil {
		res.Error = ferr.Error()
	}
	if f.jsonOutput() {
		if err := f.writeJSON(res); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "delivered\t%d\npending\t%d\nfailed\t%d\n", res.Delivered, res.Pending, res.Failed)
		if ferr != nil {
			fmt.Fprintf(tw, "error\t%v\n", ferr)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if ferr != nil {
		code := exitCheckFailed
		if unreachable(ferr) {
			code = exitUnreachable
		}
		return &silentError{err: ferr, code: code}
	}
	return nil
}
