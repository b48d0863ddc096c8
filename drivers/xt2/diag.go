package xt2

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"fieldagent/drivers"
	"fieldagent/drivers/sshcli"
)

// Limits of the router's test commands (docs/xt2-cli.md, Test commands).
const (
	maxPingCount   = 1000
	maxPingTimeout = 65535 * time.Millisecond
	maxSpeedConns  = 8
	maxSpeedSecs   = 300
	// cliMargin is kept free of a command's CLI timeout for the prompt to
	// come back after the router's own time limit.
	cliMargin = 5 * time.Second
)

// The router runs pings and download tests itself.
var (
	_ drivers.Pinger         = (*Driver)(nil)
	_ drivers.DownloadTester = (*Driver)(nil)
)

// cliTimeout is the bound of one CLI command.
func (d *Driver) cliTimeout() time.Duration {
	if d.cfg.CommandTimeout > 0 {
		return d.cfg.CommandTimeout
	}
	return sshcli.DefaultCommandTimeout
}

// testCommand runs a test command on the read channel. An "Error:" line
// that says the host does not resolve becomes a *drivers.DiagnosticsError.
func (d *Driver) testCommand(ctx context.Context, test, target, cmd string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out, err := d.command(ctx, cmd)
	if errors.Is(err, sshcli.ErrCommandFailed) && strings.Contains(out, "host name cannot be resolved") {
		return out, &drivers.DiagnosticsError{Test: test, Target: target, State: "Error_CannotResolveHostName"}
	}
	return out, err
}

// cliWord reports whether s can go on a CLI line as one word: printable,
// no spaces.
func cliWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r > '~' {
			return false
		}
	}
	return true
}

// Ping sends `ping` from the router's CLI. Zero options leave the router's
// defaults (5 requests of 56 bytes, 2 s timeout). Lost requests are counted
// in the result, not an error; a host name the router cannot resolve is a
// *drivers.DiagnosticsError. The router has no DSCP or interface choice
// for ping (drivers.ErrUnsupported), and the whole ping must fit in the
// CLI command timeout.
func (d *Driver) Ping(ctx context.Context, host string, opts drivers.PingOptions) (drivers.PingResult, error) {
	host = strings.TrimSpace(host)
	switch {
	case !cliWord(host) || strings.HasPrefix(host, "-"):
		return drivers.PingResult{}, fmt.Errorf("ping: %q is not a host name or address", host)
	case opts.DSCP != 0 || opts.Interface != "":
		return drivers.PingResult{}, fmt.Errorf("ping: %w: the XT-2's ping has no DSCP or source interface option", drivers.ErrUnsupported)
	case opts.Count < 0 || opts.Count > maxPingCount || opts.Timeout < 0 || opts.Timeout > maxPingTimeout ||
		(opts.Size != 0 && (opts.Size < 20 || opts.Size > 9600)) || opts.Deadline < 0:
		return drivers.PingResult{}, fmt.Errorf("ping: options out of range: count %d (0-%d), timeout %s (up to %s), size %d (20-9600)", opts.Count, maxPingCount, opts.Timeout, maxPingTimeout, opts.Size)
	}
	count, timeout := opts.Count, opts.Timeout
	cmd := "ping"
	if count > 0 {
		cmd += fmt.Sprintf(" -c %d", count)
	} else {
		count = 5
	}
	if timeout > 0 {
		ms := max(1, timeout.Milliseconds())
		cmd += fmt.Sprintf(" -t %d", ms)
		timeout = time.Duration(ms) * time.Millisecond
	} else {
		timeout = 2 * time.Second
	}
	if opts.Size > 0 {
		cmd += fmt.Sprintf(" -s %d", opts.Size)
	}
	if worst := time.Duration(count) * timeout; worst > d.cliTimeout()-cliMargin {
		return drivers.PingResult{}, fmt.Errorf("ping: %d requests × %s may outlast the CLI command timeout %s: send fewer or shorten the timeout", count, timeout, d.cliTimeout())
	}
	cmd += " " + host
	ctx, cancel := withDeadline(ctx, opts.Deadline)
	defer cancel()
	res := drivers.PingResult{Host: host}
	out, err := d.testCommand(ctx, drivers.TestPing, host, cmd)
	if err != nil {
		return res, fmt.Errorf("ping %s: %w", host, err)
	}
	r, err := parsePing(out)
	if err != nil {
		return res, fmt.Errorf("xt2 %s: ping %s: %w", d.cfg.SSH.Addr, host, err)
	}
	res.Sent, res.Received, res.Min, res.Avg, res.Max = r.Sent, r.Received, r.Min, r.Avg, r.Max
	return res, nil
}

// DownloadTest runs `speed-test download` on the router: an HTTP GET of
// rawURL (a speed server's /file/N) over opts.Connections connections.
// The router reports totals only (no TR-143 times, no per-connection
// results): Bytes are the file bytes, Duration runs from the first byte to
// the last. A failed test is a *drivers.DiagnosticsError with the TR-143
// state that matches the router's reason. The router's time limit is kept
// below the CLI command timeout and opts.Deadline.
func (d *Driver) DownloadTest(ctx context.Context, rawURL string, opts drivers.TransferOptions) (drivers.TransferResult, error) {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil || u.Host == "" || !cliWord(rawURL):
		return drivers.TransferResult{}, fmt.Errorf("download test: %q is not a URL: give an http:// URL of the speed server", rawURL)
	case u.Scheme != "http" && u.Scheme != "https":
		return drivers.TransferResult{}, fmt.Errorf("download test: %w: the XT-2 tests over HTTP, not %s", drivers.ErrUnsupported, u.Scheme)
	case opts.DSCP != 0 || opts.EthernetPriority != 0 || opts.Interface != "":
		return drivers.TransferResult{}, fmt.Errorf("download test: %w: the XT-2's speed test has no DSCP, priority or interface option", drivers.ErrUnsupported)
	case opts.Connections < 0 || opts.Connections > maxSpeedConns || opts.Deadline < 0:
		return drivers.TransferResult{}, fmt.Errorf("download test: %d connections (0-%d)", opts.Connections, maxSpeedConns)
	}
	conns := max(opts.Connections, 1)
	limit := d.cliTimeout() - cliMargin
	if opts.Deadline > 0 {
		limit = min(limit, opts.Deadline-cliMargin)
	}
	secs := min(max(int(limit/time.Second), 1), maxSpeedSecs)
	ctx, cancel := withDeadline(ctx, opts.Deadline)
	defer cancel()
	res := drivers.TransferResult{Direction: drivers.TestDownload, URL: rawURL, Connections: conns}
	out, err := d.testCommand(ctx, drivers.TestDownload, rawURL, fmt.Sprintf("speed-test download %s connections %d timeout %d", rawURL, conns, secs))
	if err != nil {
		return res, fmt.Errorf("download test: %w", err)
	}
	r, err := parseSpeedTest(out)
	if err != nil {
		return res, fmt.Errorf("xt2 %s: download test: %w", d.cfg.SSH.Addr, err)
	}
	if !r.Success {
		return res, &drivers.DiagnosticsError{Test: drivers.TestDownload, Target: rawURL, State: speedFailureState(r.Failure)}
	}
	res.Bytes, res.Duration, res.Mbps = r.Bytes, r.TransferTime, r.Mbps
	if res.Duration > 0 {
		res.Mbps = drivers.Rate(res.Bytes, res.Duration)
	}
	return res, nil
}

// withDeadline bounds a test: d, or drivers.DefaultDiagnosticsTimeout.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = drivers.DefaultDiagnosticsTimeout
	}
	return context.WithTimeout(ctx, d)
}
