package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/speedtest"
)

func newDiagCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diag",
		Short: "Diagnostics: ping and speed tests from this laptop",
		Example: `  fieldagent diag ping 192.0.2.1 --count 10
  fieldagent diag speed http://speed.example:8080/ --duration 10s`,
	}
	cmd.AddCommand(newDiagRunCmd(f, nil), newDiagPingCmd(f, nil), newDiagSpeedCmd(f, nil))
	return cmd
}

type diagPingOptions struct {
	f      *Factory
	Target string
	Opts   diagnostics.PingOptions
}

func newDiagPingCmd(f *Factory, runF func(context.Context, *diagPingOptions) error) *cobra.Command {
	opts := &diagPingOptions{f: f}
	cmd := &cobra.Command{
		Use:   "ping TARGET",
		Short: "Ping a host: loss, RTT min/avg/max/stddev and jitter",
		Long: `diag ping sends ICMP echo requests. It uses raw ICMP when it may (root or
CAP_NET_RAW) and unprivileged ICMP datagram sockets otherwise; when neither is
allowed, the error names the sysctl or capability that enables it.`,
		Example: `  fieldagent diag ping 127.0.0.1
  fieldagent diag ping gateway.example --count 20 --interval 200ms --size 1472 --df`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Target = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDiag(cmd.Context(), opts.f, "ping", diagnostics.PingProbe(opts.Opts), opts.Target, time.Duration(opts.Opts.Count+2)*(opts.Opts.Interval+time.Second))
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Opts.Count, "count", "c", 5, "echo requests to send")
	fl.DurationVarP(&opts.Opts.Interval, "interval", "i", 200*time.Millisecond, "time between requests")
	fl.IntVarP(&opts.Opts.Size, "size", "s", 56, "payload bytes")
	fl.BoolVar(&opts.Opts.DontFragment, "df", false, "set don't-fragment (path MTU checks)")
	fl.StringVar(&opts.Opts.Mode, "mode", "auto", "auto, privileged or unprivileged")
	return cmd
}

type diagSpeedOptions struct {
	f      *Factory
	URL    string
	Upload bool
	Opts   speedtest.ClientOptions
}

func newDiagSpeedCmd(f *Factory, runF func(context.Context, *diagSpeedOptions) error) *cobra.Command {
	opts := &diagSpeedOptions{f: f}
	cmd := &cobra.Command{
		Use:   "speed SERVER-URL",
		Short: "Measure download (or upload) throughput against a fieldagent speed server",
		Long: `diag speed opens several TCP streams to a fieldagent speed server, adds
streams while throughput still grows, discards the ramp-up and reports Mbit/s
over the rest of the test, with latency under load.`,
		Example: `  fieldagent diag speed http://127.0.0.1:8080/
  fieldagent diag speed http://speed.example:8080/ --upload --duration 10s --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.URL = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			p := diagnostics.SpeedDownloadProbe(opts.Opts)
			name := "speed_download"
			if opts.Upload {
				p = diagnostics.SpeedUploadProbe(opts.Opts)
				name = "speed_upload"
			}
			return runDiag(cmd.Context(), opts.f, name, p, opts.URL, 3*opts.Opts.Duration+10*time.Second)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Opts.Duration, "duration", 10*time.Second, "test length")
	fl.IntVar(&opts.Opts.Streams, "streams", 2, "TCP streams to start with")
	fl.IntVar(&opts.Opts.MaxStreams, "max-streams", 8, "most TCP streams to grow to")
	fl.BoolVar(&opts.Upload, "upload", false, "measure upload instead of download")
	return cmd
}

func runDiag(ctx context.Context, f *Factory, name string, p diagnostics.Probe, target string, timeout time.Duration) error {
	res := diagnostics.Run(ctx, name, p, target, timeout, prometheus.NewRegistry(), f.Logger())
	if f.jsonOutput() {
		if err := f.writeJSON(res); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
		verdict := "PASS"
		if !res.Success {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%.2fs\n", name, target, verdict, res.Duration.Seconds())
		for _, r := range res.Readings {
			fmt.Fprintf(tw, "  %s\t%.3f\t%s\n", r.Name, r.Value, r.Unit)
		}
		if res.Detail != "" {
			fmt.Fprintf(tw, "  %s\n", res.Detail)
		}
		if res.Err != "" {
			fmt.Fprintf(tw, "  error: %s\n", res.Err)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !res.Success {
		err := errors.New(res.Err)
		return &silentError{err: err, code: exitCheckFailed}
	}
	return nil
}
