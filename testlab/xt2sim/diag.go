package xt2sim

// The router's test commands (docs/xt2-cli.md, "Test commands"): `ping`
// and `speed-test download`, in every view. They run for real from the
// simulator's host through testlab/internal/netprobe: ping times TCP
// connection attempts instead of ICMP echoes (no raw sockets needed; an
// RST counts as a reply), and the speed test GETs the URL over HTTP.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fieldagent/testlab/internal/netprobe"
)

// Test command defaults and limits, as on VRP.
const (
	pingDefaultCount   = 5
	pingDefaultSize    = 56
	pingDefaultTimeout = 2000 // ms
	speedMaxConns      = 8
	speedDefaultSecs   = 20
	speedMaxSecs       = 300
)

// actionPatterns are the test commands; they take their options
// themselves.
var actionPatterns = []pattern{
	p(kindAction, 0, "ping", "ping "+phText),
	p(kindAction, 0, "speed-test", "speed-test download "+phText),
}

// option is one "-x N" or "keyword N" option of a test command.
type option struct {
	min, max int
	val      *int
}

// parseOptions reads options and one operand (the host or URL), in any
// order, from toks; a bad token is returned as a matchErr at its position.
func parseOptions(toks []token, opts map[string]option, lineLen int) (string, *matchErr) {
	operand := ""
	for i := 0; i < len(toks); i++ {
		o, ok := opts[strings.ToLower(toks[i].s)]
		switch {
		case ok && i+1 >= len(toks):
			return "", &matchErr{msg: errIncomplete, pos: lineLen}
		case ok:
			n, err := strconv.Atoi(toks[i+1].s)
			if err != nil || n < o.min || n > o.max {
				return "", &matchErr{msg: errWrongParam, pos: toks[i+1].off}
			}
			*o.val = n
			i++
		case strings.HasPrefix(toks[i].s, "-"):
			return "", &matchErr{msg: errWrongParam, pos: toks[i].off}
		case operand != "":
			return "", &matchErr{msg: errTooMany, pos: toks[i].off}
		default:
			operand = toks[i].s
		}
	}
	if operand == "" {
		return "", &matchErr{msg: errIncomplete, pos: lineLen}
	}
	return operand, nil
}

// action runs a test command.
func (s *session) action(name, line string, status *uint32) bool {
	toks := tokenize(line)
	var args []token
	switch name {
	case "ping":
		args = toks[1:]
	case "speed-test":
		args = toks[2:]
	}
	var out []string
	var merr *matchErr
	switch name {
	case "ping":
		out, merr = s.ping(args, len(line))
	case "speed-test":
		out, merr = s.speedTest(args, len(line))
	}
	if merr != nil {
		*status = 1
		s.showErr(merr)
		return true
	}
	return s.page(out)
}

// ping is `ping [-c COUNT] [-s SIZE] [-t TIMEOUT] HOST`.
func (s *session) ping(args []token, lineLen int) ([]string, *matchErr) {
	count, size, timeout := pingDefaultCount, pingDefaultSize, pingDefaultTimeout
	host, merr := parseOptions(args, map[string]option{
		"-c": {1, 1000, &count}, "-s": {20, 9600, &size}, "-t": {1, 65535, &timeout},
	}, lineLen)
	if merr != nil {
		return nil, merr
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	addr, err := netprobe.Resolve(ctx, nil, host)
	cancel()
	if err != nil {
		return nil, &matchErr{msg: "Error: The host name cannot be resolved.", pos: -1}
	}
	out := []string{fmt.Sprintf("  PING %s: %d  data bytes, press CTRL_C to break", host, size)}
	r := netprobe.Ping(s.ctx, addr, netprobe.Options{Count: count, Timeout: time.Duration(timeout) * time.Millisecond})
	for i, pr := range r.Probes {
		if pr.OK {
			out = append(out, fmt.Sprintf("    Reply from %s: bytes=%d Sequence=%d ttl=64 time=%d ms", addr, size, i+1, netprobe.Millis(pr.RTT)))
		} else {
			out = append(out, "    Request time out")
		}
	}
	loss := 100.0
	if r.Sent > 0 {
		loss = float64(r.Sent-r.Received) * 100 / float64(r.Sent)
	}
	out = append(out, "",
		fmt.Sprintf("  --- %s ping statistics ---", host),
		fmt.Sprintf("    %d packet(s) transmitted", r.Sent),
		fmt.Sprintf("    %d packet(s) received", r.Received),
		fmt.Sprintf("    %.2f%% packet loss", loss))
	if r.Received > 0 {
		out = append(out, fmt.Sprintf("    round-trip min/avg/max = %d/%d/%d ms", netprobe.Millis(r.Min), netprobe.Millis(r.Avg), netprobe.Millis(r.Max)))
	}
	return out, nil
}

// speedTest is `speed-test download URL [connections N] [timeout SECONDS]`.
func (s *session) speedTest(args []token, lineLen int) ([]string, *matchErr) {
	conns, secs := 1, speedDefaultSecs
	rawURL, merr := parseOptions(args, map[string]option{
		"connections": {1, speedMaxConns, &conns}, "timeout": {1, speedMaxSecs, &secs},
	}, lineLen)
	if merr != nil {
		return nil, merr
	}
	if !strings.HasPrefix(strings.ToLower(rawURL), "http://") && !strings.HasPrefix(strings.ToLower(rawURL), "https://") {
		return nil, &matchErr{msg: "Error: Only http:// and https:// URLs are supported.", pos: -1}
	}
	r := netprobe.Transfer(s.ctx, netprobe.TransferSpec{URL: rawURL, Connections: conns, Timeout: time.Duration(secs) * time.Second})
	switch r.Failure {
	case netprobe.FailResolve:
		return nil, &matchErr{msg: "Error: The host name cannot be resolved.", pos: -1}
	case netprobe.FailURL:
		return nil, &matchErr{msg: "Error: Wrong URL.", pos: -1}
	}
	out := []string{fmt.Sprintf("  Speed test: download %s, %d connection(s)", rawURL, conns)}
	if r.Failure != netprobe.OK {
		return append(out, "  Result: failed ("+failureText(r, secs)+")"), nil
	}
	sum := r.Summary
	d := sum.EOM.Sub(sum.BOM)
	mbps := 0.0
	if d > 0 {
		mbps = float64(sum.Body) * 8 / d.Seconds() / 1e6
	}
	return append(out,
		fmt.Sprintf("  Connect time: %.3f ms", float64(sum.TCPOpenResponse.Sub(sum.TCPOpenRequest))/float64(time.Millisecond)),
		fmt.Sprintf("  Bytes received: %d", sum.Body),
		fmt.Sprintf("  Transfer time: %.3f ms", float64(d)/float64(time.Millisecond)),
		fmt.Sprintf("  Throughput: %.2f Mbit/s", mbps),
		"  Result: success",
	), nil
}

// failureText words a failed speed test for the Result line.
func failureText(r netprobe.TransferResult, secs int) string {
	switch r.Failure {
	case netprobe.FailNoRoute:
		return "no route to the server"
	case netprobe.FailConnect:
		return "cannot connect to the server"
	case netprobe.FailNoResponse:
		return "no response from the server"
	case netprobe.FailStatus:
		return fmt.Sprintf("server answered HTTP %d %s", r.Status, http.StatusText(r.Status))
	case netprobe.FailBroken:
		return "transfer broke off"
	case netprobe.FailSize:
		return "wrong size"
	case netprobe.FailTimeout:
		return fmt.Sprintf("timed out after %d s", secs)
	}
	return "internal error"
}
