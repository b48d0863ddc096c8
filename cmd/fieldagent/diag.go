package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/ndt7"
	"fieldagent/diagnostics/speedtest"
)

func newDiagCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diag",
		Short: "Diagnostics: a whole site (diag run) or one probe from this laptop",
		Long: `diag run diagnoses a site end to end: the gateway's line through its driver
and the laptop's view, judged against the access profile, with findings.
Each probe also stands alone: line, ping, dns, http, trace, speed, iptv.

Every probe prints its readings, or --output json prints one document; the
exit status is 1 when the probe (or a check) failed.`,
		Example: `  fieldagent diag run --package 300/30 --speed-url http://speed.example:8080/
  fieldagent diag ping 192.0.2.1 --count 10
  fieldagent diag dns 192.168.1.1 --name www.189.cn
  fieldagent diag http https://www.189.cn/
  fieldagent diag trace 223.5.5.5
  fieldagent diag speed http://speed.example:8080/ --duration 10s
  fieldagent diag iptv 239.253.1.1:5140`,
	}
	cmd.AddCommand(newDiagRunCmd(f, nil), newDiagLineCmd(f), newDiagPingCmd(f, nil), newDiagDNSCmd(f), newDiagHTTPCmd(f), newDiagTraceCmd(f), newDiagSpeedCmd(f, nil), newDiagIPTVCmd(f))
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
	f        *Factory
	URL      string
	Upload   bool
	Protocol string
	Opts     speedtest.ClientOptions
}

func newDiagSpeedCmd(f *Factory, runF func(context.Context, *diagSpeedOptions) error) *cobra.Command {
	opts := &diagSpeedOptions{f: f}
	cmd := &cobra.Command{
		Use:   "speed SERVER-URL",
		Short: "Measure download (or upload) throughput: fieldagent's protocol or M-Lab's ndt7",
		Long: `diag speed, with the fieldagent protocol (the default), opens several TCP
streams to a fieldagent speed server, adds streams while throughput still
grows, discards the ramp-up and reports Mbit/s over the rest of the test,
with latency under load and TCP retransmissions.

--protocol ndt7 speaks M-Lab's ndt7 (one WebSocket stream, at most 13 s) to
any ndt7 server, 'fieldagent speed serve' included.`,
		Example: `  fieldagent diag speed http://127.0.0.1:8080/
  fieldagent diag speed http://speed.example:8080/ --upload --duration 10s --output json
  fieldagent diag speed https://ndt.example/ --protocol ndt7`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.URL = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if opts.f.IO.ErrIsTerminal {
				opts.Opts.Progress = speedProgress(opts.f.IO.ErrOut)
				defer fmt.Fprintln(opts.f.IO.ErrOut)
			}
			p := diagnostics.SpeedDownloadProbe(opts.Opts)
			name := "speed_download"
			if opts.Upload {
				p = diagnostics.SpeedUploadProbe(opts.Opts)
				name = "speed_upload"
			}
			switch opts.Protocol {
			case "fieldagent":
			case "ndt7":
				no := ndt7.ClientOptions{Duration: opts.Opts.Duration, Progress: opts.Opts.Progress}
				p, name = diagnostics.NDT7DownloadProbe(no), "ndt7_download"
				if opts.Upload {
					p, name = diagnostics.NDT7UploadProbe(no), "ndt7_upload"
				}
			default:
				return &usageError{fmt.Errorf("--protocol %q: want fieldagent or ndt7", opts.Protocol)}
			}
			return runDiag(cmd.Context(), opts.f, name, p, opts.URL, 3*opts.Opts.Duration+10*time.Second)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Opts.Duration, "duration", 10*time.Second, "test length")
	fl.IntVar(&opts.Opts.Streams, "streams", 2, "TCP streams to start with")
	fl.IntVar(&opts.Opts.MaxStreams, "max-streams", 8, "most TCP streams to grow to")
	fl.BoolVar(&opts.Upload, "upload", false, "measure upload instead of download")
	fl.StringVar(&opts.Protocol, "protocol", "fieldagent", "fieldagent (several streams) or ndt7 (M-Lab, one stream, ≤ 13s)")
	return cmd
}

// speedProgress prints a speed test's live figure on one terminal line.
func speedProgress(w io.Writer) func(speedtest.Progress) {
	return func(p speedtest.Progress) {
		phase := ""
		if p.RampUp {
			phase = " (ramp-up)"
		}
		fmt.Fprintf(w, "\r  %-8s %9.1f Mbit/s  %d streams  %4.1fs%s   ", p.Direction, p.Mbps, p.Streams, p.Elapsed.Seconds(), phase)
	}
}

func runDiag(ctx context.Context, f *Factory, name string, p diagnostics.Probe, target string, timeout time.Duration) error {
	return runDiagDetail(ctx, f, name, p, target, timeout, nil)
}

// diagDetail is what a probe saw beyond its readings (DNS answers, hops):
// key and value for --output json, and lines for the table.
type diagDetail struct {
	key  string
	json any
	text func(w io.Writer)
}

// runDiagDetail runs one probe and prints its result; detail, if set, is
// called after the probe ran.
func runDiagDetail(ctx context.Context, f *Factory, name string, p diagnostics.Probe, target string, timeout time.Duration, detail func() *diagDetail) error {
	res := diagnostics.Run(ctx, name, p, target, timeout, prometheus.NewRegistry(), f.Logger())
	var d *diagDetail
	if detail != nil {
		d = detail()
	}
	if f.jsonOutput() {
		var v any = res
		if d != nil && d.json != nil {
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			m := map[string]any{}
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			m[d.key] = d.json
			v = m
		}
		if err := f.writeJSON(v); err != nil {
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
		if d != nil && d.text != nil {
			d.text(f.IO.Out)
		}
	}
	if !res.Success {
		err := errors.New(res.Err)
		return &silentError{err: err, code: exitCheckFailed}
	}
	return nil
}
