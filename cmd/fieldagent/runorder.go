package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"fieldagent/agent/config"
	"fieldagent/agent/ordersys"
	"fieldagent/agent/secret"
	"fieldagent/agent/store"
	"fieldagent/agent/workflow"
	"fieldagent/tr069/acs"
)

// orderRun is everything one order run needs, whether the order system and
// gateway are real (`order run`) or simulated (`lab demo`).
type orderRun struct {
	OrderID   string
	Serial    string
	StorePath string
	// ACSListener, if set, is used instead of listening on cfg.ACS.Listen.
	ACSListener net.Listener
	// ACS, if set, is a running ACS (the demo starts it before the lab).
	ACS *acs.Server
	Cfg *config.Config
}

// startACS serves an ACS on ln until ctx ends.
func startACS(ctx context.Context, cfg *config.Config, ln net.Listener, logger *slog.Logger) *acs.Server {
	a := acs.New(acsConfig(cfg, logger))
	srv := &http.Server{Handler: a, ConnState: a.ConnState, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return a
}

// acsConfig is the ACS configuration that every command uses.
func acsConfig(cfg *config.Config, logger *slog.Logger) acs.Config {
	c := acs.Config{
		Logger: logger.With("component", "acs"),
		ConnectionRequestAuth: func(string) (string, secret.Secret) {
			return cfg.ACS.ConnectionRequestUsername, cfg.ACS.ConnectionRequestPassword
		},
	}
	if !cfg.ACS.CPEPassword.IsZero() {
		c.CPEAuth = func(string) (string, secret.Secret, bool) {
			return cfg.ACS.CPEUsername, cfg.ACS.CPEPassword, true
		}
	}
	return c
}

// executeOrder runs one order and prints it as it goes (table) or at the end
// (json). The outcome is returned for callers that add to it.
func executeOrder(ctx context.Context, f *Factory, logger *slog.Logger, r orderRun) (*workflow.Outcome, error) {
	cfg := r.Cfg
	if cfg.OrderSystem.URL == "" {
		return nil, &usageError{errors.New("order_system.url is not set: put it in the config file or FIELDAGENT_ORDER_SYSTEM_URL")}
	}
	if cfg.OrderSystem.Token.IsZero() {
		return nil, &usageError{errors.New("order_system.token is not set: put it in the config file (env:NAME or file:/path) or FIELDAGENT_ORDER_SYSTEM_TOKEN")}
	}
	if err := ensureDir(r.StorePath); err != nil {
		return nil, fmt.Errorf("store directory: %w", err)
	}
	st, err := store.Open(r.StorePath)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", r.StorePath, err)
	}
	defer st.Close()

	a := r.ACS
	if a == nil {
		ln := r.ACSListener
		if ln == nil {
			ln, err = net.Listen("tcp", cfg.ACS.Listen)
			if err != nil {
				return nil, fmt.Errorf("ACS cannot listen on %s (acs.listen): %w", cfg.ACS.Listen, err)
			}
		}
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		a = startACS(actx, cfg, ln, logger)
		logger.Info("ACS listening", "addr", ln.Addr().String())
	}

	client := &ordersys.Client{
		BaseURL:    cfg.OrderSystem.URL,
		Token:      cfg.OrderSystem.Token,
		HTTPClient: &http.Client{Timeout: cfg.OrderSystem.Timeout},
		Logger:     logger.With("component", "ordersys"),
	}
	runner := &workflow.Runner{
		Store:  st,
		Orders: client,
		ACS:    a,
		Limits: cfg.Workflow,
		Diag:   cfg.Diag,
		Serial: r.Serial,
		Agent:  "fieldagent " + f.Build.Version,
		Logger: logger.With("order", r.OrderID),
		Now:    f.Now,
	}
	if !f.jsonOutput() {
		runner.Progress = stepPrinter(f.IO.Out, f.IO.ErrOut, f.IO.ErrIsTerminal)
	}
	out, err := runner.Run(ctx, r.OrderID)
	if f.jsonOutput() {
		if werr := f.writeJSON(out); werr != nil {
			return out, werr
		}
	} else if out.State == workflow.OrderClosed {
		fmt.Fprintf(f.IO.Out, "\nOrder %s closed (报竣) — receipt %s\n", out.OrderID, out.Receipt.Receipt)
		if out.Completion != nil {
			_ = out.Completion.WriteText(f.IO.Out)
		}
	}
	if err != nil {
		code := exitCheckFailed
		if unreachable(err) || out.FailedStep == workflow.StepWaitInform {
			code = exitUnreachable
		}
		if !f.jsonOutput() {
			cause := errors.Unwrap(err)
			if cause == nil {
				cause = err
			}
			fmt.Fprintf(f.IO.Out, "\nOrder %s stopped at step %s:\n  %v\nNo completion was uploaded.\n", out.OrderID, out.FailedStep, cause)
		}
		return out, &silentError{err: err, code: code}
	}
	return out, nil
}

// stepPrinter prints each step to w as it finishes and, when progress is a
// terminal, shows the running step there until it does.
func stepPrinter(w, progress io.Writer, terminal bool) func(workflow.StepEvent) {
	return func(ev workflow.StepEvent) {
		if terminal {
			fmt.Fprint(progress, "\r\033[K")
		}
		switch ev.State {
		case workflow.StateRunning:
			if terminal {
				fmt.Fprintf(progress, "  … %s", ev.Step)
			}
		case workflow.StateDone:
			fmt.Fprintf(w, "  ✓ %-20s %6.2fs  %s\n", ev.Step, ev.Took.Seconds(), ev.Detail)
		case workflow.StateSkipped:
			fmt.Fprintf(w, "  – %-20s %6.2fs  skipped: %s\n", ev.Step, ev.Took.Seconds(), ev.Detail)
		case workflow.StateWarning, workflow.StateOverrun:
			fmt.Fprintf(w, "  ⚠ %-20s %6.2fs  %s (%s)\n", ev.Step, ev.Took.Seconds(), ev.Detail, ev.State)
		default:
			fmt.Fprintf(w, "  ✗ %-20s %6.2fs  %s\n", ev.Step, ev.Took.Seconds(), ev.Error)
		}
	}
}
