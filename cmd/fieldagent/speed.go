package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"fieldagent/diagnostics/speedtest"
)

func newSpeedCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "speed",
		Short:   "Speed test server for laptops and gateways' TR-143 tests",
		Example: `  fieldagent speed serve --listen :8080`,
	}
	cmd.AddCommand(newSpeedServeCmd(f, nil))
	return cmd
}

type speedServeOptions struct {
	f      *Factory
	Listen string
	Opts   speedtest.ServerOptions
	ready  func(addr string) // tests: called once listening
}

func newSpeedServeCmd(f *Factory, runF func(context.Context, *speedServeOptions) error) *cobra.Command {
	opts := &speedServeOptions{f: f}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve fieldagent's speed test protocol, M-Lab's ndt7, a large file and an upload sink",
		Long: `speed serve answers, on one port:

  GET  /download?duration=10s      fieldagent's download stream ('diag speed')
  POST /upload                     fieldagent's upload sink ('diag speed --upload')
  GET  /ndt/v7/download, /upload   M-Lab's ndt7 (WebSocket, net.measurementlab.ndt.v7)
  GET  /file/N                     an N-byte file: a gateway's TR-143 DownloadURL
  PUT  /upload                     a sink: a gateway's TR-143 UploadURL
  GET  /healthz                    "ok", for latency probes

Transfers beyond --max-concurrent answer 503 with Retry-After; durations,
upload bodies and file sizes are capped. It runs until interrupted.`,
		Example: `  fieldagent speed serve
  fieldagent speed serve --listen 0.0.0.0:8080 --max-concurrent 64 --max-duration 15s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSpeedServe(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Listen, "listen", "127.0.0.1:8080", "address to listen on (0.0.0.0:8080 for the LAN)")
	fl.IntVar(&opts.Opts.MaxConcurrent, "max-concurrent", speedtest.DefaultMaxConcurrent, "simultaneous transfers before 503")
	fl.DurationVar(&opts.Opts.MaxDuration, "max-duration", speedtest.DefaultMaxDuration, "longest single transfer")
	fl.Int64Var(&opts.Opts.MaxUploadBytes, "max-upload-bytes", speedtest.DefaultMaxUploadBytes, "largest upload body")
	fl.Int64Var(&opts.Opts.MaxFileBytes, "max-file-bytes", speedtest.DefaultMaxFileBytes, "largest /file/N")
	return cmd
}

func runSpeedServe(ctx context.Context, opts *speedServeOptions) error {
	if opts.Opts.MaxConcurrent <= 0 || opts.Opts.MaxDuration <= 0 || opts.Opts.MaxUploadBytes <= 0 || opts.Opts.MaxFileBytes <= 0 {
		return &usageError{errors.New("--max-concurrent, --max-duration, --max-upload-bytes and --max-file-bytes must be positive")}
	}
	logger := opts.f.Logger()
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return &usageError{fmt.Errorf("speed server cannot listen on %s (--listen): %w", opts.Listen, err)}
	}
	so := opts.Opts
	so.Logger = logger.With("component", "speed")
	srv := &http.Server{Handler: speedtest.NewServer(so), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/"
	if opts.f.jsonOutput() {
		_ = opts.f.writeJSON(map[string]string{"url": url})
	} else {
		fmt.Fprintf(opts.f.IO.ErrOut, "speed server on %s (Ctrl-C stops)\n", url)
	}
	if opts.ready != nil {
		opts.ready(ln.Addr().String())
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		runErr = fmt.Errorf("speed server stopped: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), so.MaxDuration+5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return runErr
}
