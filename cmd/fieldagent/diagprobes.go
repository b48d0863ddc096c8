package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/iptv"
)

func newDiagDNSCmd(f *Factory) *cobra.Command {
	var opts diagnostics.DNSOptions
	cmd := &cobra.Command{
		Use:   "dns SERVER",
		Short: "Ask a DNS server for a name: time, answers, and whether it rewrites NXDOMAIN",
		Long: `diag dns sends one query (two attempts, TCP after a truncated answer) to
SERVER (host or host:port, port 53) and prints the lookup time and the
answers. It also asks for a random name that cannot exist: a resolver that
answers it with addresses instead of NXDOMAIN rewrites errors (often to an
advertising page) — worth knowing when a customer's typos land on ads.

Ask the gateway (its LAN address) and a public resolver in turn: if the
public one answers and the gateway does not, the gateway's DNS relay or its
WAN DNS servers are at fault.`,
		Example: `  fieldagent diag dns 192.168.1.1
  fieldagent diag dns 223.5.5.5 --name www.189.cn --type AAAA
  fieldagent diag dns 192.168.1.1:53 --tcp --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var got diagnostics.DNSResult
			opts.OnResult = func(r diagnostics.DNSResult) { got = r }
			tcp, _ := cmd.Flags().GetBool("tcp")
			if tcp {
				opts.Protocol = diagnostics.DNSProtocolTCP
			}
			return runDiagDetail(cmd.Context(), f, "dns", diagnostics.DNSProbe(opts), args[0], 15*time.Second, func() *diagDetail {
				if !got.Answered {
					return nil
				}
				return &diagDetail{key: "answers", json: got.Answers, text: func(w io.Writer) {
					for _, a := range got.Answers {
						fmt.Fprintf(w, "  %s\n", a)
					}
					if got.NXDomainRewritten {
						fmt.Fprintf(w, "  rewrites NXDOMAIN: %s answered %v\n", got.RewriteName, got.RewriteAnswers)
					}
				}}
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Name, "name", "", "name to resolve (default "+diagnostics.DefaultDNSName+")")
	fl.StringVar(&opts.Type, "type", "A", "record type: A or AAAA")
	fl.DurationVar(&opts.Timeout, "timeout", diagnostics.DefaultDNSTimeout, "wait per query")
	fl.Bool("tcp", false, "query over TCP")
	fl.BoolVar(&opts.SkipRewriteCheck, "no-rewrite-check", false, "skip the NXDOMAIN-rewrite query")
	return cmd
}

func newDiagHTTPCmd(f *Factory) *cobra.Command {
	var opts diagnostics.HTTPOptions
	cmd := &cobra.Command{
		Use:   "http URL",
		Short: "Fetch a URL and time its phases: DNS, connect, TLS, first byte, transfer",
		Long: `diag http GETs URL (following up to 10 redirects) and prints how long each
phase took. A slow DNS phase points at the resolver, a slow connect at the
path, a slow first byte at the server, a slow transfer at the bandwidth.
Certificates are verified; a captive portal or a wrong laptop clock shows as
a TLS error.`,
		Example: `  fieldagent diag http https://www.189.cn/
  fieldagent diag http http://192.168.1.1/ --method HEAD --no-redirects`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiag(cmd.Context(), f, "http", diagnostics.HTTPProbe(opts), args[0], 60*time.Second)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Method, "method", "GET", "GET or HEAD")
	fl.BoolVar(&opts.NoRedirects, "no-redirects", false, "report a redirect instead of following it")
	fl.Int64Var(&opts.MaxBytes, "max-bytes", diagnostics.DefaultHTTPMaxBytes, "most body bytes to read")
	fl.StringVar(&opts.Resolver, "resolver", "", "DNS server to resolve the host through (default: the system's)")
	return cmd
}

func newDiagTraceCmd(f *Factory) *cobra.Command {
	var opts diagnostics.TraceOptions
	cmd := &cobra.Command{
		Use:   "trace HOST",
		Short: "Trace the route to a host, hop by hop, with round-trip times",
		Long: `diag trace sends UDP probes with rising TTLs (no root needed: the kernel
reports the routers' ICMP answers on the socket) and prints each hop's
address and RTTs. Silent hops print as *. Where the trace stops is where to
look: hop 1 is the gateway, hop 2 the BRAS.`,
		Example: `  fieldagent diag trace 223.5.5.5
  fieldagent diag trace www.189.cn --max-hops 15 --queries 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var got diagnostics.TraceResult
			opts.OnResult = func(r diagnostics.TraceResult) { got = r }
			timeout := time.Duration(max(opts.MaxHops, 1))*max(opts.Timeout, time.Second) + 10*time.Second
			return runDiagDetail(cmd.Context(), f, "trace", diagnostics.TraceProbe(opts), args[0], timeout, func() *diagDetail {
				if len(got.Hops) == 0 {
					return nil
				}
				return &diagDetail{key: "hops", json: got.Hops, text: func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					for _, h := range got.Hops {
						addr := "*"
						if h.Addr.IsValid() {
							addr = h.Addr.String()
						}
						var rtts []string
						for _, r := range h.RTTs {
							rtts = append(rtts, fmt.Sprintf("%.3f ms", float64(r)/float64(time.Millisecond)))
						}
						fmt.Fprintf(tw, "  %d\t%s\t%s\n", h.TTL, addr, strings.Join(rtts, "  "))
					}
					_ = tw.Flush()
				}}
			})
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.MaxHops, "max-hops", diagnostics.DefaultTraceMaxHops, "largest TTL")
	fl.IntVar(&opts.Queries, "queries", diagnostics.DefaultTraceQueries, "probes per hop")
	fl.DurationVar(&opts.Timeout, "timeout", diagnostics.DefaultTraceTimeout, "wait per probe")
	return cmd
}

func newDiagIPTVCmd(f *Factory) *cobra.Command {
	var opts iptv.Options
	cmd := &cobra.Command{
		Use:   "iptv GROUP:PORT",
		Short: "Join an IPTV multicast channel and measure join time, loss (MLR) and delay factor (DF)",
		Long: `diag iptv joins the channel (IGMPv2; SOURCE@GROUP:PORT joins source-specific
with IGMPv3), times the first packet, receives for --duration and parses the
MPEG-TS: continuity-counter gaps per PID give the Media Loss Rate, arrival
against the stream's rate gives the Delay Factor (RFC 4445 MDI, DF:MLR), and
PAT, PMT and PCR must be present. Raw TS over UDP and RTP both work.

A healthy channel has MLR 0 and DF ≤ 50 ms. No packets at all points at the
IPTV VLAN, the LAN4 port binding, or IGMP snooping/proxy on the gateway.
Run it on the laptop cabled to the set-top box's port.`,
		Example: `  fieldagent diag iptv 239.253.1.1:5140
  fieldagent diag iptv 10.0.0.9@232.1.1.1:5000 --interface eth0 --duration 10s --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d := opts.Duration
			if d <= 0 {
				d = 5 * time.Second
			}
			return runDiag(cmd.Context(), f, "iptv", iptv.Probe(opts), args[0], d+opts.JoinTimeout+10*time.Second)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Interface, "interface", "", "interface to join on (default: the system's choice)")
	fl.DurationVar(&opts.Duration, "duration", 5*time.Second, "how long to receive")
	fl.DurationVar(&opts.JoinTimeout, "join-timeout", 3*time.Second, "how long to wait for the first packet")
	return cmd
}
