package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"fieldagent/agent/order"
	"fieldagent/agent/report"
	"fieldagent/agent/secret"
	"fieldagent/testlab"
)

func newLabCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the simulated site (testlab) for demos, tests and training",
		Example: `  fieldagent lab demo
  fieldagent lab demo --output json
  fieldagent lab up repair
  fieldagent lab fault list`,
	}
	cmd.AddCommand(newLabDemoCmd(f, nil), newLabUpCmd(f, nil), newLabFaultCmd(f, nil), newLabCleanCmd(f, nil), newLabScenariosCmd(f), newLabExamCmd(f, nil))
	return cmd
}

type labDemoOptions struct {
	f         *Factory
	StorePath string
	// PPPoEPassword, if set, is the lab account's password (tests use a
	// known one to prove it never leaks).
	PPPoEPassword string
	// WrongPassword puts a wrong PPPoE password on the order.
	WrongPassword bool
	SpeedDuration time.Duration
}

func newLabDemoCmd(f *Factory, runF func(context.Context, *labDemoOptions) error) *cobra.Command {
	opts := &labDemoOptions{f: f}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a simulated site on loopback and run one e8 new-install order end to end",
		Long: `lab demo starts an in-process testlab site on 127.0.0.1 — an order system
holding the sample orders (the demo runs WO-20261125-0001, an e8 GPON new
install), a simulated e8 gateway speaking TR-069, the operator's BRAS (PPPoE
account check) and ITMS (LOID registration), and a speed server — then runs
the order with the same code as 'order run': fetch and store the order, wait
for the gateway's Inform, identify it, configure PPPoE routed internet,
register the LOID, wait for the WAN, ping, speed test, record the customer's
acceptance (the customer watches at the laptop), store every reading, and
upload the completion report (报竣).`,
		Example: `  # The whole demo, step by step
  fieldagent lab demo

  # One JSON document, for scripts
  fieldagent lab demo --output json

  # See the failure a technician meets with a mistyped PPPoE password (691)
  fieldagent lab demo --wrong-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLabDemo(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.StorePath, "store", "", "keep the demo's store at this path (default: a temporary directory, removed afterwards)")
	cmd.Flags().StringVar(&opts.PPPoEPassword, "pppoe-password", "", "password of the lab's PPPoE account (default: random)")
	cmd.Flags().BoolVar(&opts.WrongPassword, "wrong-password", false, "put a wrong PPPoE password on the order, to see the 691 diagnosis")
	cmd.Flags().DurationVar(&opts.SpeedDuration, "speed-duration", 2*time.Second, "length of the download speed test")
	return cmd
}

func runLabDemo(ctx context.Context, opts *labDemoOptions) error {
	f := opts.f
	logger := f.Logger()
	if !f.logLevelExplicit() {
		// The demo's step table is the point; its logs are for --log-level info/debug.
		logger = newLogger(f.IO.ErrOut, "warn", f.Config().LogFormat)
	}
	storePath := opts.StorePath
	if storePath == "" {
		dir, err := os.MkdirTemp("", "fieldagent-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		storePath = filepath.Join(dir, "fieldagent.db")
	}

	cfg := *f.Config()
	cfg.ACS.ConnectionRequestUsername = "fieldagent-lab"
	cfg.ACS.ConnectionRequestPassword = secret.New(randomToken())
	// The lab gateway authenticates to the ACS with HTTP Digest, as a
	// gateway in the field would.
	cfg.ACS.CPEUsername = "cpe-lab"
	cfg.ACS.CPEPassword = secret.New(randomToken())
	cfg.Workflow.InformTimeout = 30 * time.Second
	cfg.Workflow.LOIDTimeout = 20 * time.Second
	cfg.Workflow.WANTimeout = 20 * time.Second
	cfg.Diag.SpeedDuration = opts.SpeedDuration

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("ACS listen: %w", err)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := startACS(actx, &cfg, ln, logger)

	site, err := testlab.Start(actx, testlab.Config{
		ACSURL:          "http://" + ln.Addr().String() + "/",
		ACSUsername:     cfg.ACS.CPEUsername,
		ACSPassword:     cfg.ACS.CPEPassword,
		ConnReqUsername: cfg.ACS.ConnectionRequestUsername,
		ConnReqPassword: cfg.ACS.ConnectionRequestPassword,
		PPPoEPassword:   secret.New(opts.PPPoEPassword),
		EditOrder: func(o *order.Order) {
			if opts.WrongPassword {
				o.PPPoE.Password = secret.New(o.PPPoE.Password.Reveal() + "-typo")
			}
		},
		Now:    f.Now,
		Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("start lab site: %w", err)
	}
	defer site.Close()
	cfg.OrderSystem.URL = site.OrderSystemURL
	cfg.OrderSystem.Token = site.Token
	cfg.Diag.SpeedURL = site.SpeedURL

	if !f.jsonOutput() {
		fmt.Fprintf(f.IO.Out, "testlab site up on 127.0.0.1: order system %s, ACS %s, speed server %s\n", site.OrderSystemURL, ln.Addr(), site.SpeedURL)
		fmt.Fprintf(f.IO.Out, "running order %s (%s, e8 %s) for %s\n\n", site.Order.ID, site.Order.Type, site.Order.Services[0].Access, site.Order.Customer.Name)
	}
	// The customer watches the demo at the laptop and accepts it there.
	accept := &report.Acceptance{Name: site.Order.Customer.Name, Accepted: true, Comment: "lab demo"}
	out, runErr := executeOrder(ctx, f, logger, orderRun{OrderID: site.Order.ID, StorePath: storePath, ACS: a, Cfg: &cfg, Accept: accept})
	if runErr == nil && !f.jsonOutput() {
		fmt.Fprintf(f.IO.Out, "\norder system reports order %s: %s\n", out.OrderID, site.Orders.State(out.OrderID))
	}
	return runErr
}
