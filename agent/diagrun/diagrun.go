// Package diagrun is `diag run`: it runs a profile's probes against one site
// — the gateway's own status and tests through its driver, and the laptop's
// view of the network — and judges the readings with diagnostics/verdict.
//
// The same Run serves the technician's CLI and, later, the remote-support
// daemon: probes are independent, each has its own deadline, a probe that
// cannot run is recorded as failed with its reason, and nothing stops the
// others.
package diagrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/line"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/xt2"
)

// Site is what to diagnose. Every field is optional: a probe whose target
// is missing is left out (not failed).
type Site struct {
	// Gateway is the customer's gateway (nil: laptop-side checks only).
	Gateway drivers.StatusReader
	// GatewayTests run the gateway-side probes (TR-143 download/upload,
	// ping), each returning readings such as gateway_download_mbps. Keyed
	// by probe name; GatewayTargets gives each one's target (a URL, a host).
	GatewayTests   map[string]diagnostics.Probe
	GatewayTargets map[string]string
	// Access and the package rates choose the profile's thresholds.
	Access                         string
	PackageDownMbps, PackageUpMbps float64
	// LOID is the LOID registration outcome, if known.
	LOID *drivers.LOIDResult
	// LANInterface is the laptop's interface towards the gateway; its DHCP
	// lease is checked.
	LANInterface string
	// PingTarget is pinged from the laptop (the gateway's LAN address, or a
	// host beyond it).
	PingTarget string
	// Resolvers are DNS servers to ask from the laptop (e.g. the gateway's
	// LAN address and a public resolver); each is a separate "dns" probe.
	Resolvers []string
	// HTTPURL is fetched from the laptop.
	HTTPURL string
	// SpeedURL is a fieldagent speed server for the laptop's speed test.
	SpeedURL string
	// IPTV is the IPTV multicast check (group from the order), if any.
	IPTV diagnostics.Probe
	// IPTVTarget is IPTV's target ("group:port").
	IPTVTarget string
	// Facts are added to the facts the probes find (e.g. igmp_snooping,
	// stb_auth_status, laptop_link).
	Facts map[string]string
	// STB, if set, is the customer's set-top box: its EPG login and, when
	// logged in, its stream counters over StreamWindow (default 1s) are
	// read. STBPort is the gateway's LAN port it is cabled to (default 4),
	// checked against the gateway's IPTV binding.
	STB          *itv.Driver
	STBPort      int
	StreamWindow time.Duration
	// XT2, if set, is the customer's XT-2: its dialer, NAT and BBMS
	// binding are read (it has no line getters: Gateway stays nil).
	XT2 *xt2.Driver
}

// Options tunes Run.
type Options struct {
	// Profile is the thresholds; the zero Profile means
	// verdict.ProfileFor(site.Access, site.Package…).
	Profile *verdict.Profile
	// Ping, DNS, HTTP and Speed are the laptop probes' options.
	Ping  diagnostics.PingOptions
	DNS   diagnostics.DNSOptions
	HTTP  diagnostics.HTTPOptions
	Speed speedtest.ClientOptions
	// Upload also runs the laptop's upload test.
	Upload bool
	// Timeout is one probe's deadline (speed tests get 3× their duration
	// on top); 0 means 30s.
	Timeout time.Duration
	// Registerer receives every probe's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Logger, if nil, discards.
	Logger *slog.Logger
	// Progress, if set, is told when a probe starts (res nil) and ends.
	Progress func(probe, target string, res *diagnostics.Result)
	// Probes, if not empty, runs only the probes it names (see Selects);
	// empty runs every probe the site allows.
	Probes []string
}

// ErrNoProbe means Options.Probes selects none of the probes the site
// allows; the error lists those it does.
var ErrNoProbe = errors.New("none of the selected probes applies to this site")

// ProbeNames are the names Options.Probes accepts, beside any
// "gateway_"-prefixed name of a Site.GatewayTests probe: the probes Run
// runs, the families "speed" (speed_download, speed_upload and the
// gateway's download and upload tests) and "gateway" (every gateway
// test), and the aliases "wan", "optical" and "dsl" of "line" (the line
// probe reads the WAN, optical and DSL status together).
func ProbeNames() []string {
	return []string{"line", "wan", "optical", "dsl", "lan", "gateway", "ping", "dns", "http", "speed",
		"speed_download", "speed_upload", "iptv", "iptv_config", "xt2", "stb"}
}

// ValidProbe reports whether Options.Probes accepts name (ProbeNames, or a
// gateway test's "gateway_…" name).
func ValidProbe(name string) bool {
	return slices.Contains(ProbeNames(), name) || (strings.HasPrefix(name, "gateway_") && len(name) > len("gateway_"))
}

// patterns is what a selected name stands for: a probe matches a pattern
// when its name is the pattern or starts with the pattern and "_".
func patterns(name string) []string {
	switch name {
	case "wan", "optical", "dsl":
		return []string{"line"}
	case "speed":
		return []string{"speed", "gateway_download", "gateway_upload"}
	case "ping":
		return []string{"ping", "gateway_ping"}
	}
	return []string{name}
}

// Selects reports whether a selection (Options.Probes) runs the probe
// called probe: an empty selection runs everything; a name selects the
// probe of that name and its family (probe names that continue with "_":
// "iptv" selects iptv_config, "gateway" every gateway test), "ping" also
// the gateway's ping, "speed" also the gateway's transfer tests, and
// "wan", "optical" and "dsl" the line probe.
func Selects(selection []string, probe string) bool {
	if len(selection) == 0 {
		return true
	}
	for _, s := range selection {
		for _, p := range patterns(s) {
			if probe == p || strings.HasPrefix(probe, p+"_") {
				return true
			}
		}
	}
	return false
}

// Outcome is what Run measured and concluded.
type Outcome struct {
	Results []diagnostics.Result `json:"results"`
	Facts   map[string]string    `json:"facts"`
	Report  verdict.Report       `json:"report"`
}

// step is one probe to run.
type step struct {
	name, target string
	probe        diagnostics.Probe
	timeout      time.Duration
}

// Run runs every probe the site allows, in a fixed order (line first, so a
// dead line explains the rest), and evaluates the readings. It returns an
// error only when ctx ended, or when Options.Probes selects none of the
// site's probes (ErrNoProbe); probe failures are in the Outcome.
func Run(ctx context.Context, site Site, o Options) (Outcome, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	facts := map[string]string{}
	var steps []step
	if site.Gateway != nil {
		lo := line.Options{Access: site.Access, LOID: site.LOID, Logger: logger,
			OnFacts: func(f map[string]string) { maps.Copy(facts, f) }}
		steps = append(steps, step{"line", "gateway", line.Probe(site.Gateway, lo), timeout})
	}
	if site.LANInterface != "" && Selects(o.Probes, "lan") {
		lease := line.LocalLease(site.LANInterface)
		maps.Copy(facts, lease.Facts)
		steps = append(steps, step{"lan", site.LANInterface, func(context.Context, string, prometheus.Registerer, *slog.Logger) ([]diagnostics.Reading, error) {
			return lease.Readings, nil
		}, timeout})
	}
	for _, name := range slices.Sorted(maps.Keys(site.GatewayTests)) {
		steps = append(steps, step{name, site.GatewayTargets[name], site.GatewayTests[name], 3 * timeout})
	}
	if site.PingTarget != "" {
		steps = append(steps, step{"ping", site.PingTarget, diagnostics.PingProbe(o.Ping), timeout})
	}
	for _, r := range site.Resolvers {
		steps = append(steps, step{"dns", r, diagnostics.DNSProbe(o.DNS), timeout})
	}
	if site.HTTPURL != "" {
		steps = append(steps, step{"http", site.HTTPURL, diagnostics.HTTPProbe(o.HTTP), timeout})
	}
	if site.SpeedURL != "" {
		d := o.Speed.Duration
		if d <= 0 {
			d = speedtest.DefaultDuration
		}
		steps = append(steps, step{"speed_download", site.SpeedURL, diagnostics.SpeedDownloadProbe(o.Speed), 3*d + timeout})
		if o.Upload {
			steps = append(steps, step{"speed_upload", site.SpeedURL, diagnostics.SpeedUploadProbe(o.Speed), 3*d + timeout})
		}
	}
	if site.IPTV != nil && site.IPTVTarget != "" {
		steps = append(steps, step{"iptv", site.IPTVTarget, site.IPTV, timeout})
	}

	// The services' evidence: the gateway's IPTV configuration, the
	// set-top box, the XT-2.
	if gw, ok := site.Gateway.(*e8.Driver); ok {
		port := site.STBPort
		if port <= 0 {
			port = 4
		}
		steps = append(steps, step{"iptv_config", "gateway", factsProbe(func(ctx context.Context) error {
			return GatewayIPTVFacts(ctx, gw, port, facts)
		}), timeout})
	}
	if site.XT2 != nil {
		steps = append(steps, step{"xt2", "router", factsProbe(func(ctx context.Context) error {
			return XT2Facts(ctx, site.XT2, facts)
		}), timeout})
	}
	if site.STB != nil {
		window := site.StreamWindow
		if window <= 0 {
			window = time.Second
		}
		steps = append(steps, step{"stb", "set-top box", func(ctx context.Context, _ string, _ prometheus.Registerer, _ *slog.Logger) ([]diagnostics.Reading, error) {
			res, err := STBEvidence(ctx, site.STB, window, facts)
			if err != nil || res == nil {
				return nil, err
			}
			if res.Err != "" {
				return res.Readings, errors.New(res.Err)
			}
			return res.Readings, nil
		}, window + timeout})
	}

	if len(o.Probes) > 0 {
		all := steps
		steps = slices.DeleteFunc(slices.Clone(steps), func(s step) bool { return !Selects(o.Probes, s.name) })
		if len(steps) == 0 {
			names := make([]string, 0, len(all))
			for _, s := range all {
				names = append(names, s.name)
			}
			return Outcome{Facts: facts}, fmt.Errorf("%w: selected %s; the site has %s", ErrNoProbe,
				strings.Join(o.Probes, ", "), strings.Join(slices.Compact(names), ", "))
		}
	}

	var out Outcome
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("diag run stopped before %s: %w", s.name, err)
		}
		if o.Progress != nil {
			o.Progress(s.name, s.target, nil)
		}
		reg := prometheus.Registerer(prometheus.NewRegistry())
		if o.Registerer != nil {
			reg = prometheus.WrapRegistererWith(prometheus.Labels{"probe": s.name, "target": s.target}, o.Registerer)
		}
		res := diagnostics.Run(ctx, s.name, s.probe, s.target, s.timeout, reg, logger)
		out.Results = append(out.Results, res)
		if o.Progress != nil {
			o.Progress(s.name, s.target, &res)
		}
	}
	maps.Copy(facts, site.Facts)
	p := verdict.ProfileFor(site.Access, site.PackageDownMbps, site.PackageUpMbps)
	if o.Profile != nil {
		p = *o.Profile
	}
	out.Facts = facts
	out.Report = verdict.Evaluate(p, out.Results, facts)
	return out, ctx.Err()
}

// HostOf returns the host of a URL or host[:port] string ("" if none), for
// choosing a ping target from the speed server's URL.
func HostOf(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Hostname()
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

// factsProbe turns a reader of facts into a probe without readings.
func factsProbe(read func(context.Context) error) diagnostics.Probe {
	return func(ctx context.Context, _ string, _ prometheus.Registerer, _ *slog.Logger) ([]diagnostics.Reading, error) {
		return nil, read(ctx)
	}
}
