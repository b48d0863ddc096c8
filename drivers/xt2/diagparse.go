package xt2

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// errNotUnderstood means a test command's output is not what
// docs/xt2-cli.md describes.
var errNotUnderstood = errors.New("output not understood")

// pingReport is what `ping` prints (docs/xt2-cli.md, Test commands).
type pingReport struct {
	Host           string
	Size           int
	Sent, Received int
	// Replies are the round trips of the replies, in order.
	Replies []time.Duration
	// Min, Avg and Max are the round-trip line's; zero without replies.
	Min, Avg, Max time.Duration
}

// parsePing reads `ping` output. It fails with errNotUnderstood when the
// statistics are missing or contradict themselves or the reply lines.
func parsePing(out string) (pingReport, error) {
	var r pingReport
	sent, received, timeouts := -1, -1, 0
	haveRTT := false
	for _, l := range lines(out) {
		switch {
		case strings.HasPrefix(l, "PING "):
			rest := strings.TrimPrefix(l, "PING ")
			host, after, ok := strings.Cut(rest, ": ")
			if !ok {
				return r, fmt.Errorf("%w: ping header %q", errNotUnderstood, l)
			}
			r.Host = host
			r.Size, _ = strconv.Atoi(firstWord(after))
		case strings.HasPrefix(l, "Reply from "):
			_, t, ok := strings.Cut(l, " time=")
			ms, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(t), " ms"), 10, 32)
			if !ok || err != nil {
				return r, fmt.Errorf("%w: reply line %q", errNotUnderstood, l)
			}
			r.Replies = append(r.Replies, time.Duration(ms)*time.Millisecond)
		case l == "Request time out":
			timeouts++
		case strings.HasSuffix(l, " packet(s) transmitted"):
			n, err := strconv.Atoi(strings.TrimSuffix(l, " packet(s) transmitted"))
			if err != nil || n < 0 {
				return r, fmt.Errorf("%w: %q", errNotUnderstood, l)
			}
			sent = n
		case strings.HasSuffix(l, " packet(s) received"):
			n, err := strconv.Atoi(strings.TrimSuffix(l, " packet(s) received"))
			if err != nil || n < 0 {
				return r, fmt.Errorf("%w: %q", errNotUnderstood, l)
			}
			received = n
		case strings.HasPrefix(l, "round-trip min/avg/max = "):
			v := strings.Split(strings.TrimSuffix(strings.TrimPrefix(l, "round-trip min/avg/max = "), " ms"), "/")
			if len(v) != 3 {
				return r, fmt.Errorf("%w: %q", errNotUnderstood, l)
			}
			var ms [3]uint64
			for i, s := range v {
				n, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					return r, fmt.Errorf("%w: %q", errNotUnderstood, l)
				}
				ms[i] = n
			}
			r.Min, r.Avg, r.Max = time.Duration(ms[0])*time.Millisecond, time.Duration(ms[1])*time.Millisecond, time.Duration(ms[2])*time.Millisecond
			haveRTT = true
		}
	}
	switch {
	case sent < 0 || received < 0:
		return r, fmt.Errorf("%w: no ping statistics", errNotUnderstood)
	case received > sent || received != len(r.Replies) || sent != received+timeouts:
		return r, fmt.Errorf("%w: %d sent, %d received, but %d replies and %d timeouts listed", errNotUnderstood, sent, received, len(r.Replies), timeouts)
	case haveRTT != (received > 0) || r.Min > r.Avg || r.Avg > r.Max:
		return r, fmt.Errorf("%w: round-trip times %s/%s/%s for %d replies", errNotUnderstood, r.Min, r.Avg, r.Max, received)
	}
	r.Sent, r.Received = sent, received
	return r, nil
}

// speedReport is what `speed-test download` prints.
type speedReport struct {
	URL         string
	Connections int
	ConnectTime time.Duration
	// Bytes are the file bytes of all connections, received in
	// TransferTime (first byte to last).
	Bytes        int64
	TransferTime time.Duration
	Mbps         float64
	// Success is the Result line's verdict; Failure its reason.
	Success bool
	Failure string
}

// parseSpeedTest reads `speed-test download` output. It fails with
// errNotUnderstood when the Result line is missing, or a successful test
// lacks or garbles its figures.
func parseSpeedTest(out string) (speedReport, error) {
	var r speedReport
	result := false
	have := map[string]bool{}
	ms := func(v string) (time.Duration, bool) {
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, " ms"), 64)
		if err != nil || f < 0 || f > float64(time.Hour/time.Millisecond) {
			return 0, false
		}
		return time.Duration(f * float64(time.Millisecond)), true
	}
	for _, l := range lines(out) {
		key, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		var good bool
		if have[key] {
			return r, fmt.Errorf("%w: %q twice", errNotUnderstood, key)
		}
		switch key {
		case "Speed test":
			rest, found := strings.CutPrefix(v, "download ")
			u, conns, found2 := strings.Cut(rest, ", ")
			n, err := strconv.Atoi(strings.TrimSuffix(conns, " connection(s)"))
			if !found || !found2 || err != nil || n < 1 {
				return r, fmt.Errorf("%w: %q", errNotUnderstood, l)
			}
			r.URL, r.Connections, good = u, n, true
		case "Connect time":
			r.ConnectTime, good = ms(v)
		case "Bytes received":
			n, err := strconv.ParseInt(v, 10, 64)
			r.Bytes, good = n, err == nil && n >= 0
		case "Transfer time":
			r.TransferTime, good = ms(v)
		case "Throughput":
			f, err := strconv.ParseFloat(strings.TrimSuffix(v, " Mbit/s"), 64)
			r.Mbps, good = f, err == nil && f >= 0 && f < 1e9
		case "Result":
			result, good = true, true
			switch {
			case v == "success":
				r.Success = true
			case strings.HasPrefix(v, "failed (") && strings.HasSuffix(v, ")"):
				r.Failure = strings.TrimSuffix(strings.TrimPrefix(v, "failed ("), ")")
			default:
				good = false
			}
		default:
			continue
		}
		if !good {
			return r, fmt.Errorf("%w: %q", errNotUnderstood, l)
		}
		have[key] = true
	}
	if !result || !have["Speed test"] {
		return r, fmt.Errorf("%w: no Result line", errNotUnderstood)
	}
	if r.Success && (!have["Bytes received"] || !have["Transfer time"] || !have["Throughput"]) {
		return r, fmt.Errorf("%w: a successful speed test without its figures", errNotUnderstood)
	}
	return r, nil
}

// speedFailureState maps a speed test's failure reason to the TR-143
// state drivers.DiagnosticsError reports.
func speedFailureState(reason string) string {
	switch {
	case strings.HasPrefix(reason, "cannot connect"):
		return "Error_InitConnectionFailed"
	case strings.HasPrefix(reason, "no route"):
		return "Error_NoRouteToHost"
	case strings.HasPrefix(reason, "no response"):
		return "Error_NoResponse"
	case strings.HasPrefix(reason, "server answered HTTP"), strings.HasPrefix(reason, "transfer broke off"):
		return "Error_TransferFailed"
	case strings.HasPrefix(reason, "wrong size"):
		return "Error_IncorrectSize"
	case strings.HasPrefix(reason, "timed out"):
		return "Error_Timeout"
	}
	return "Error_Other"
}
