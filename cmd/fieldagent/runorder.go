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
	"fieldagent/agent/report"
	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/store"
	"fieldagent/agent/workflow"
	"fieldagent/drivers/snmp"
	"fieldagent/drivers/sshcli"
	"fieldagent/drivers/xt2"
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
	// Accept, if set, is the customer's acceptance given at the laptop.
	Accept *report.Acceptance
	// Restart runs the visit over instead of resuming it.
	Restart bool
	// OpenXT2, if set, replaces the XT-2 connection from cfg.XT2.
	OpenXT2 func(context.Context) (*xt2.Driver, error)
}

// xt2Opener connects to the XT-2 that cfg.XT2 describes; nil when no
// address is configured.
func xt2Opener(cfg *config.Config, logger *slog.Logger) func(context.Context) (*xt2.Driver, error) {
	x := cfg.XT2
	if x.Address == "" {
		return nil
	}
	return func(ctx context.Context) (*xt2.Driver, error) {
		addr := x.Address
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "22")
		}
		snmpAddr := x.SNMPAddress
		if snmpAddr == "" {
			host, _, _ := net.SplitHostPort(addr)
			snmpAddr = net.JoinHostPort(host, "161")
		}
		t := snmp.Target{Addr: snmpAddr, Version: snmp.V3, User: x.SNMPUser,
			AuthProtocol: snmp.AuthProtocol(x.SNMPAuthProtocol), AuthKey: x.SNMPAuthKey,
			PrivProtocol: snmp.PrivProtocol(x.SNMPPrivProtocol), PrivKey: x.SNMPPrivKey}
		if x.SNMPVersion == "v2c" {
			t = snmp.Target{Addr: snmpAddr, Version: snmp.V2c, Community: x.SNMPCommunity}
		}
		return xt2.Open(ctx, xt2.Config{
			SSH: sshcli.Config{Addr: addr, User: x.Username, Password: x.Password,
				KnownHostsFile: x.KnownHosts, TrustOnFirstUse: x.TrustOnFirstUse, Logger: logger},
			SNMP:   t,
			Logger: logger.With("component", "xt2"),
		})
	}
}

// startACS serves an ACS on ln until ctx ends.
func startACS(ctx context.Context, cfg *config.Config, ln net.Listener, logger *slog.Logger) *acs.Server {
	return startACSWith(ctx, cfg, ln, logger, nil)
}

// startACSWith is startACS with a device registry (nil for none).
func startACSWith(ctx context.Context, cfg *config.Config, ln net.Listener, logger *slog.Logger, reg acs.Registry) *acs.Server {
	c := acsConfig(cfg, logger)
	c.Registry = reg
	a := acs.New(c)
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
		// The ACS keeps its devices in the store, so that a resumed run
		// reaches the gateway an earlier run found.
		a = startACSWith(actx, cfg, ln, logger, server.StoreRegistry{Store: st})
		if err := a.Start(ctx); err != nil {
			logger.Warn("ACS device registry not loaded", "err", err)
		}
		logger.Info("ACS listening", "addr", ln.Addr().String())
	}

	client := &ordersys.Client{
		BaseURL:    cfg.OrderSystem.URL,
		Token:      cfg.OrderSystem.Token,
		HTTPClient: &http.Client{Timeout: cfg.OrderSystem.Timeout},
		Logger:     logger.With("component", "ordersys"),
	}
	runner := &workflow.Runner{
		Store:      st,
		Orders:     client,
		ACS:        a,
		Limits:     cfg.Workflow,
		Diag:       cfg.Diag,
		Serial:     r.Serial,
		IPTV:       workflow.IPTV{VLAN: cfg.IPTV.VLAN, AuthURL: cfg.IPTV.AuthURL, AuthURLBackup: cfg.IPTV.AuthURLBackup},
		Accept:     r.Accept,
		Restart:    r.Restart,
		OpenXT2:    r.OpenXT2,
		XT2Address: cfg.XT2.Address,
		Agent:      "fieldagent " + f.Build.Version,
		Logger:     logger.With("order", r.OrderID),
		Now:        f.Now,
	}
	if runner.OpenXT2 == nil {
		runner.OpenXT2 = xt2Opener(cfg, logger)
	}
	if !f.jsonOutput() {
		runner.Progress = stepPrinter(f.IO.Out, f.IO.ErrOut, f.IO.ErrIsTerminal)
	}
	out, err := runner.Run(ctx, r.OrderID)
	if f.jsonOutput() {
		if werr := f.writeJSON(out); werr != nil {
			return out, werr
		}
	} else if out.State == workflow.OrderAwaiting {
		fmt.Fprintf(f.IO.Out, "\nOrder %s is installed and tested; it waits for the customer's acceptance:\n  fieldagent order accept %s --name NAME [--comment TEXT]\nthen run it again to close it (报竣).\n", out.OrderID, out.OrderID)
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
		case workflow.StateDone, workflow.StateSkipped:
			if ev.Resumed {
				fmt.Fprintf(w, "  ✓ %-20s %7s  done before: %s\n", ev.Step, "", ev.Detail)
				break
			}
			if ev.State == workflow.StateSkipped {
				fmt.Fprintf(w, "  – %-20s %6.2fs  skipped: %s\n", ev.Step, ev.Took.Seconds(), ev.Detail)
				break
			}
			fmt.Fprintf(w, "  ✓ %-20s %6.2fs  %s\n", ev.Step, ev.Took.Seconds(), ev.Detail)
		case workflow.StatePending:
			fmt.Fprintf(w, "  ⏸ %-20s %6.2fs  %s\n", ev.Step, ev.Took.Seconds(), ev.Detail)
		case workflow.StateWarning, workflow.StateOverrun:
			fmt.Fprintf(w, "  ⚠ %-20s %6.2fs  %s (%s)\n", ev.Step, ev.Took.Seconds(), ev.Detail, ev.State)
		default:
			fmt.Fprintf(w, "  ✗ %-20s %6.2fs  %s\n", ev.Step, ev.Took.Seconds(), ev.Error)
		}
	}
}
