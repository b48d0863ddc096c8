package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"fieldagent/agent/server"
	"fieldagent/agent/store"
	"fieldagent/tr069/acs"
)

func newACSCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acs",
		Short: "The embedded TR-069 ACS: run it on its own for the device commands",
		Example: `  fieldagent acs serve
  FIELDAGENT_ACS_API_TOKEN=file:/etc/fieldagent/api-token fieldagent acs serve`,
	}
	cmd.AddCommand(newACSServeCmd(f, nil))
	return cmd
}

type acsServeOptions struct {
	f *Factory
	// ready, if set, receives the listeners' addresses (tests).
	ready func(acsAddr, apiAddr string)
}

func newACSServeCmd(f *Factory, runF func(context.Context, *acsServeOptions) error) *cobra.Command {
	opts := &acsServeOptions{f: f}
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the ACS (acs.listen) and its device API (acs.api_listen) until interrupted",
		Long: `acs serve runs the TR-069 ACS that gateways and set-top boxes inform to, on
acs.listen (HTTPS when acs.tls_cert and acs.tls_key are set), and the device API
that the 'device' commands use, on acs.api_listen. Callers of the API present
acs.api_token as a bearer token. Ctrl-C stops both gracefully.`,
		Example: `  # On the technician's laptop: gateways inform to :7547, the API listens on 127.0.0.1:7548
  fieldagent acs serve
  # then, in another terminal
  fieldagent device list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runACSServe(cmd.Context(), opts)
		},
	}
}

func runACSServe(ctx context.Context, opts *acsServeOptions) error {
	f := opts.f
	cfg := f.Config()
	logger := f.Logger()
	if cfg.ACS.APIToken.IsZero() {
		return &usageError{errors.New("acs.api_token is not set: the device API authenticates its callers (set it in the config, or FIELDAGENT_ACS_API_TOKEN=env:NAME / file:/path)")}
	}
	var tlsCfg *tls.Config
	if cfg.ACS.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ACS.TLSCert, cfg.ACS.TLSKey)
		if err != nil {
			return &usageError{fmt.Errorf("acs.tls_cert/acs.tls_key: %w", err)}
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	acsLn, err := net.Listen("tcp", cfg.ACS.Listen)
	if err != nil {
		return fmt.Errorf("ACS cannot listen on %s (acs.listen): %w", cfg.ACS.Listen, err)
	}
	apiLn, err := net.Listen("tcp", cfg.ACS.APIListen)
	if err != nil {
		acsLn.Close()
		return fmt.Errorf("device API cannot listen on %s (acs.api_listen): %w", cfg.ACS.APIListen, err)
	}
	if err := ensureDir(cfg.Store); err != nil {
		return fmt.Errorf("store directory: %w", err)
	}
	st, err := store.Open(cfg.Store)
	if err != nil {
		acsLn.Close()
		apiLn.Close()
		return fmt.Errorf("open store %s: %w", cfg.Store, err)
	}
	defer st.Close()
	acfg := acsConfig(cfg, logger)
	acfg.Registry = server.StoreRegistry{Store: st}
	if acfg.CPEAuth == nil {
		logger.Warn("CPE authentication is off: any device can inform this ACS (set acs.cpe_password)")
	}
	a := acs.New(acfg)
	if err := a.Start(ctx); err != nil {
		acsLn.Close()
		apiLn.Close()
		return fmt.Errorf("load the device registry: %w", err)
	}

	var handler http.Handler = a
	api := server.NewDevices(a, cfg.ACS.APIToken)
	if cfg.ACS.FilesDir != "" {
		fs := acs.NewFileServer(cfg.ACS.FilesDir, logger.With("component", "files"))
		mux := http.NewServeMux()
		mux.Handle("/", a)
		mux.Handle("/files/", http.StripPrefix("/files/", fs))
		handler = mux
		api.Files, api.FilesDir, api.FilesURL = fs, cfg.ACS.FilesDir, cfg.ACS.FilesURL
	}
	api.Logger = logger.With("component", "api")
	api.Timeout = cfg.Workflow.StepTimeout * 2

	acsSrv := &http.Server{Handler: handler, ConnState: a.ConnState, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg}
	apiSrv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() {
		if tlsCfg != nil {
			errc <- acsSrv.ServeTLS(acsLn, "", "")
		} else {
			errc <- acsSrv.Serve(acsLn)
		}
	}()
	go func() { errc <- apiSrv.Serve(apiLn) }()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	logger.Info("ACS listening", "url", scheme+"://"+acsLn.Addr().String()+"/")
	logger.Info("device API listening", "url", "http://"+apiLn.Addr().String())
	if opts.ready != nil {
		opts.ready(acsLn.Addr().String(), apiLn.Addr().String())
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("server stopped: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = apiSrv.Shutdown(sctx)
	_ = acsSrv.Shutdown(sctx)
	if err := a.Flush(sctx); err != nil {
		logger.Warn("device registry not fully saved", "err", err)
	}
	logger.Info("ACS stopped")
	return runErr
}
