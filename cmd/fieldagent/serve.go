package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"fieldagent/agent/config"
	"fieldagent/agent/jobs"
	"fieldagent/agent/server"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/tr069/acs"
)

func newServeCmd(f *Factory, runF func(context.Context, *serveOptions) error) *cobra.Command {
	opts := &serveOptions{f: f}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the remote-support daemon: the ACS, an authenticated API and Prometheus metrics",
		Long: `serve runs one long-lived process for remote support: the TR-069 ACS on
acs.listen (with its device registry in the store), and the remote-support API
on serve.api_listen (HTTPS with serve.tls_cert and serve.tls_key) with
/metrics, /probe (blackbox_exporter style: one device's line, ping or speed
readings for Prometheus), /healthz and /readyz. The API lists the devices the
ACS knows and diagnoses one device or a fleet as jobs whose results are stored
and whose progress streams as Server-Sent Events (docs/api.md).

Callers present bearer tokens listed, hashed, under serve.tokens; make one with
'fieldagent serve token new'. SIGINT or SIGTERM stops it gracefully: no new
jobs, running ones get serve.shutdown_timeout to finish, then are cancelled.`,
		Example: `  fieldagent serve token new --name alice --role diagnose
  fieldagent serve
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:7550/api/v1/devices`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
	token := &cobra.Command{Use: "token", Short: "Make API tokens for serve",
		Example: "  fieldagent serve token new --name alice --role diagnose"}
	token.AddCommand(newServeTokenNewCmd(f, nil))
	cmd.AddCommand(token)
	return cmd
}

type serveOptions struct {
	f *Factory
	// ready, if set, receives the listeners' addresses (tests).
	ready func(acsAddr, apiAddr string)
}

type serveTokenNewOptions struct {
	f    *Factory
	Name string
	Role string
}

func newServeTokenNewCmd(f *Factory, runF func(context.Context, *serveTokenNewOptions) error) *cobra.Command {
	opts := &serveTokenNewOptions{f: f}
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Make a new API token: print it once, and the config line with its hash",
		Long: `token new makes a random API token and prints it once on stdout, followed
by the line to add under serve.tokens in the config: the config keeps only the
token's hash. Give the token to its user; it cannot be shown again.`,
		Example: `  fieldagent serve token new --name alice --role diagnose
  fieldagent serve token new --name prometheus --role read --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServeTokenNew(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "who the token is for (letters, digits, . _ - @); appears in logs")
	cmd.Flags().StringVar(&opts.Role, "role", "", "read, diagnose or configure")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", fixedCompletions("read", "diagnose", "configure"))
	return cmd
}

func runServeTokenNew(_ context.Context, opts *serveTokenNewOptions) error {
	f := opts.f
	plain, hash := auth.NewToken()
	// auth.New checks the name and role as serve will.
	if _, err := auth.New([]auth.Token{{Name: opts.Name, Hash: hash, Role: auth.Role(opts.Role)}}, auth.Options{}); err != nil {
		return &usageError{fmt.Errorf("--name/--role: %w", err)}
	}
	if f.jsonOutput() {
		return f.writeJSON(map[string]string{"name": opts.Name, "role": opts.Role, "token": plain.Reveal(), "hash": hash})
	}
	fmt.Fprintln(f.IO.Out, plain.Reveal())
	fmt.Fprintf(f.IO.Out, "# The token above is shown only now. Add this line under serve.tokens in the config:\n")
	fmt.Fprintf(f.IO.Out, "    - {name: %q, hash: %q, role: %s}\n", opts.Name, hash, opts.Role)
	return nil
}

// serveTokens converts the config's token list for auth.New.
func serveTokens(cfg *config.Config) []auth.Token {
	out := make([]auth.Token, 0, len(cfg.Serve.Tokens))
	for _, t := range cfg.Serve.Tokens {
		out = append(out, auth.Token{Name: t.Name, Hash: t.Hash, Role: auth.Role(t.Role)})
	}
	return out
}

func loadTLS(cert, key, keys string) (*tls.Config, error) {
	if cert == "" {
		return nil, nil
	}
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, &usageError{fmt.Errorf("%s: %w", keys, err)}
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}

func runServe(ctx context.Context, opts *serveOptions) error {
	f := opts.f
	cfg := f.Config()
	logger := f.Logger()
	if len(cfg.Serve.Tokens) == 0 {
		return &usageError{errors.New("serve.tokens is empty: the API authenticates every caller. Make a token with `fieldagent serve token new --name NAME --role read|diagnose|configure` and add the line it prints under serve.tokens in the config")}
	}
	authn, err := auth.New(serveTokens(cfg), auth.Options{Rate: cfg.Serve.Rate, Burst: cfg.Serve.Burst, Logger: logger.With("component", "auth")})
	if err != nil {
		return &usageError{fmt.Errorf("serve.tokens: %w", err)}
	}
	acsTLS, err := loadTLS(cfg.ACS.TLSCert, cfg.ACS.TLSKey, "acs.tls_cert/acs.tls_key")
	if err != nil {
		return err
	}
	apiTLS, err := loadTLS(cfg.Serve.TLSCert, cfg.Serve.TLSKey, "serve.tls_cert/serve.tls_key")
	if err != nil {
		return err
	}
	if err := ensureDir(cfg.Store); err != nil {
		return fmt.Errorf("store directory: %w", err)
	}
	st, err := store.Open(cfg.Store)
	if err != nil {
		return fmt.Errorf("open store %s: %w", cfg.Store, err)
	}
	defer st.Close()

	genie := usesGenieACS(f)
	var acsLn net.Listener
	if !genie {
		acsLn, err = net.Listen("tcp", cfg.ACS.Listen)
		if err != nil {
			return &codedError{fmt.Errorf("ACS cannot listen on %s (acs.listen): %w", cfg.ACS.Listen, err), exitUnreachable}
		}
		defer acsLn.Close()
	}
	apiLn, err := net.Listen("tcp", cfg.Serve.APIListen)
	if err != nil {
		return &codedError{fmt.Errorf("API cannot listen on %s (serve.api_listen): %w", cfg.Serve.APIListen, err), exitUnreachable}
	}
	defer apiLn.Close()

	// The process's metrics: Go and process collectors, the ACS's
	// sessions (its Observer), the store's outbox and orders, and the
	// API's own (NewAPI).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	acsMetrics, err := server.NewACSMetrics(reg)
	if err != nil {
		return err
	}
	if err := reg.Register(server.NewStoreCollector(st, 0, logger.With("component", "metrics"))); err != nil {
		return fmt.Errorf("register the store metrics: %w", err)
	}

	apiCfg := server.APIConfig{
		Store: st, Auth: authn, Metrics: reg,
		SpeedURL: cfg.Diag.SpeedURL, PingTarget: cfg.Diag.PingTarget, XT2: serveXT2(cfg, logger),
		StepTimeout: cfg.Workflow.StepTimeout, Logger: logger.With("component", "api"),
	}
	mctx, stopMetrics := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMetrics()
	var a *acs.Server
	var genieLoaded <-chan struct{} // closed when the GenieACS snapshot is read
	if genie {
		// The operator's GenieACS runs the CWMP sessions; the API reaches
		// the devices through its NBI.
		nc, err := nbiClient(f)
		if err != nil {
			return err
		}
		g := &server.GenieACSDevices{Client: nc, Logger: logger.With("component", "genieacs")}
		// Only GenieACS's answer is waited for: the snapshot for the
		// selections by serial is read in the background (Run), and
		// /readyz turns ready once it is.
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := nc.Count(cctx, "")
		cancel()
		if err != nil {
			return &codedError{fmt.Errorf("acs.kind genieacs: %w", err), exitUnreachable}
		}
		go g.Run(mctx)
		genieLoaded = g.Loaded()
		apiCfg.ACS = g
		logger.Info("devices through GenieACS", "nbi", nc.URL(), "devices", n)
	} else {
		acfg := acsConfig(cfg, logger)
		acfg.Registry = server.StoreRegistry{Store: st}
		acfg.Observer = acsMetrics
		if acfg.CPEAuth == nil {
			logger.Warn("CPE authentication is off: any device can inform this ACS (set acs.cpe_password)")
		}
		a = acs.New(acfg)
		if err := a.Start(ctx); err != nil {
			return fmt.Errorf("load the device registry: %w", err)
		}
		apiCfg.ACS = a
	}
	runner := &jobs.Runner{Store: st, Concurrency: cfg.Serve.Concurrency, Logger: logger.With("component", "jobs")}
	if _, err := runner.Recover(ctx); err != nil {
		return err
	}
	// A device action cut off by a crash stays in the audit log, marked so.
	if n, err := st.MarkAuditInterrupted(ctx); err != nil {
		return fmt.Errorf("audit log: %w", err)
	} else if n > 0 {
		logger.Warn("device actions were cut off by the last stop; their audit rows are marked interrupted", "actions", n)
	}
	apiCfg.Runner = runner
	api, err := server.NewAPI(apiCfg)
	if err != nil {
		return err
	}
	go api.Run(mctx)

	var acsSrv *http.Server
	if a != nil {
		acsSrv = &http.Server{Handler: a, ConnState: a.ConnState, ReadHeaderTimeout: 10 * time.Second, TLSConfig: acsTLS}
	}
	apiSrv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, TLSConfig: apiTLS}
	errc := make(chan error, 2)
	serve := func(s *http.Server, ln net.Listener) {
		var err error
		if s.TLSConfig != nil {
			err = s.ServeTLS(ln, "", "")
		} else {
			err = s.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}
	acsAddr := ""
	if acsSrv != nil {
		go serve(acsSrv, acsLn)
		acsAddr = acsLn.Addr().String()
		logger.Info("ACS listening", "url", schemeOf(acsTLS)+"://"+acsAddr+"/")
	}
	go serve(apiSrv, apiLn)
	if genieLoaded != nil {
		go func() {
			select {
			case <-genieLoaded:
				api.SetReady()
			case <-mctx.Done():
			}
		}()
	} else {
		api.SetReady()
	}
	logger.Info("remote-support API listening", "url", schemeOf(apiTLS)+"://"+apiLn.Addr().String()+"/api/v1/")
	if opts.ready != nil {
		opts.ready(acsAddr, apiLn.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "deadline", cfg.Serve.ShutdownTimeout)
	case err := <-errc:
		runErr = fmt.Errorf("server stopped: %w", err)
	}
	// Stop taking work, let the jobs finish (the ACS keeps serving their
	// sessions), then close the API and the ACS.
	api.SetShuttingDown()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Serve.ShutdownTimeout)
	defer cancel()
	if err := runner.Shutdown(sctx); err != nil {
		logger.Warn("jobs did not finish in time and were cancelled", "err", err)
	}
	api.Wait()
	hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer hcancel()
	if err := apiSrv.Shutdown(hctx); err != nil {
		logger.Warn("API connections closed before their requests ended", "err", err)
	}
	if acsSrv != nil {
		if err := acsSrv.Shutdown(hctx); err != nil {
			logger.Warn("ACS sessions closed before they ended", "err", err)
		}
		if err := a.Flush(hctx); err != nil {
			logger.Warn("device registry not fully saved", "err", err)
		}
	}
	logger.Info("serve stopped")
	return runErr
}

func schemeOf(c *tls.Config) string {
	if c != nil {
		return "https"
	}
	return "http"
}

// serveXT2 is the XT-2 of the config (xt2.address), diagnosed over SSH and
// SNMP by serve as device "xt2"; none without an address.
func serveXT2(cfg *config.Config, logger *slog.Logger) []server.XT2Target {
	open := xt2Opener(cfg, logger)
	if open == nil {
		return nil
	}
	return []server.XT2Target{{Name: "xt2", Address: cfg.XT2.Address, Open: open}}
}
