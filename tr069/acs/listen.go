package acs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ListenAndServe loads the registry (Start), listens on addr and serves
// the CWMP endpoint at every path: over HTTPS with tlsCfg (which holds the
// certificate), over HTTP when tlsCfg is nil. When ctx ends it shuts down
// gracefully (up to 5s for sessions in flight) and returns nil.
func (s *Server) ListenAndServe(ctx context.Context, addr string, tlsCfg *tls.Config) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("acs: listening on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln, tlsCfg)
}

// Serve is ListenAndServe on a listener the caller opened (e.g. on port 0
// in a test); it closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	if err := s.Start(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg.Clone())
	}
	srv := &http.Server{
		Handler:           s,
		ConnState:         s.ConnState,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.cfg.SessionTimeout,
		IdleTimeout:       s.cfg.SessionTimeout,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("ACS listening", "addr", ln.Addr().String(), "tls", tlsCfg != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("acs: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("acs: shutting down: %w", err)
	}
	_ = srv.Close()
	return nil
}
