package e8

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"fieldagent/drivers"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Diagnostics objects of the gateway (TR-143 and TR-098).
const (
	DownloadDiagnostics   = Root + "DownloadDiagnostics."
	UploadDiagnostics     = Root + "UploadDiagnostics."
	IPPingDiagnostics     = Root + "IPPingDiagnostics."
	TraceRouteDiagnostics = Root + "TraceRouteDiagnostics."
)

// maxUnsignedInt is the largest xsd:unsignedInt (TR-143 TestFileLength).
const maxUnsignedInt = 1<<32 - 1

// runDiagnostics starts a test the TR-069 way and returns its results: it
// writes ps and DiagnosticsState=Requested in one SetParameterValues,
// waits for the gateway's "8 DIAGNOSTICS COMPLETE" Inform, and reads obj.
// An Inform for another test (the state still reads Requested) is skipped.
// The values are keyed by name relative to obj. A final state other than
// done is a *drivers.DiagnosticsError, returned with the values.
func (d *Driver) runDiagnostics(ctx context.Context, test, target, obj string, ps []cwmp.ParameterValueStruct, done string) (map[string]string, error) {
	ps = append(ps, str(obj+"DiagnosticsState", "Requested"))
	after := d.now()
	if _, err := d.set(ctx, "fieldagent-diag-"+test, ps); err != nil {
		if unknownParameter(err) {
			return nil, fmt.Errorf("%s test: %w: the gateway has no %s (or lacks one of its parameters): %w", test, drivers.ErrUnsupported, obj, err)
		}
		return nil, fmt.Errorf("%s test: start: %w", test, err)
	}
	d.log().Info("diagnostics requested", "device", d.deviceID, "test", test)
	for {
		if _, err := d.acs.WaitInform(ctx, d.deviceID, acs.EventDiagnosticsComplete, after); err != nil {
			return nil, fmt.Errorf("%s test to %s: %w: the gateway did not report %q: %w", test, target, drivers.ErrTimeout, acs.EventDiagnosticsComplete, err)
		}
		after = d.now() // an Inform from here on is one the read below may not see
		m, err := d.get(ctx, obj)
		if err != nil {
			return nil, fmt.Errorf("%s test: read results: %w", test, err)
		}
		rel := make(map[string]string, len(m))
		for k, v := range m {
			rel[strings.TrimPrefix(k, obj)] = v
		}
		switch state := rel["DiagnosticsState"]; state {
		case done:
			d.log().Info("diagnostics complete", "device", d.deviceID, "test", test)
			return rel, nil
		case "Requested":
			continue // another test's Inform; ours is still running
		default:
			d.log().Info("diagnostics failed", "device", d.deviceID, "test", test, "state", state)
			return rel, &drivers.DiagnosticsError{Test: test, Target: target, State: state}
		}
	}
}

// unknownParameter reports whether err is a fault for a parameter the
// gateway does not have (9005).
func unknownParameter(err error) bool {
	var f *cwmp.Fault
	if !errors.As(err, &f) {
		return false
	}
	if f.Code == cwmp.FaultInvalidParameterName {
		return true
	}
	return slices.ContainsFunc(f.SetParameterValuesFaults, func(pf cwmp.SetParameterValuesFault) bool {
		return pf.FaultCode == cwmp.FaultInvalidParameterName
	})
}

// withDeadline bounds a test: d, or drivers.DefaultDiagnosticsTimeout.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = drivers.DefaultDiagnosticsTimeout
	}
	return context.WithTimeout(ctx, d)
}

// checkTransfer validates a transfer test's URL and options.
func checkTransfer(test, rawURL string, o drivers.TransferOptions) error {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil || u.Host == "":
		return fmt.Errorf("%s test: %q is not a URL: give an http:// URL of the speed server", test, rawURL)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s test: %w: the gateway tests over HTTP, not %s", test, drivers.ErrUnsupported, u.Scheme)
	case u.User != nil:
		return fmt.Errorf("%s test: the URL carries credentials; TR-143 tests use no HTTP authentication", test)
	case o.Connections < 0 || o.DSCP < 0 || o.DSCP > 63 || o.EthernetPriority < 0 || o.EthernetPriority > 7 || o.Deadline < 0:
		return fmt.Errorf("%s test: options out of range: connections %d (≥ 0), DSCP %d (0-63), Ethernet priority %d (0-7)", test, o.Connections, o.DSCP, o.EthernetPriority)
	}
	return nil
}

// transferParams are the writes of a transfer test besides the URL. The
// TR-143 Amendment 1 parameters are only written when asked for, so that
// gateways without them run single-connection tests.
func transferParams(obj string, o drivers.TransferOptions) []cwmp.ParameterValueStruct {
	ps := []cwmp.ParameterValueStruct{
		str(obj+"Interface", o.Interface),
		unsigned(obj+"DSCP", o.DSCP),
		unsigned(obj+"EthernetPriority", o.EthernetPriority),
	}
	if o.Connections > 1 || o.PerConnection {
		ps = append(ps, unsigned(obj+"NumberOfConnections", max(o.Connections, 1)), boolean(obj+"EnablePerConnectionResults", o.PerConnection))
	}
	return ps
}

// DownloadTest has the gateway download url (an HTTP URL of a speed
// server, e.g. its /file/N) with TR-143 DownloadDiagnostics and returns
// what it measured. An error state of the gateway is a
// *drivers.DiagnosticsError (errors.Is drivers.ErrDiagnostics); a gateway
// without the object gives drivers.ErrUnsupported. Run one download test
// at a time per gateway.
func (d *Driver) DownloadTest(ctx context.Context, rawURL string, opts drivers.TransferOptions) (drivers.TransferResult, error) {
	if err := checkTransfer(drivers.TestDownload, rawURL, opts); err != nil {
		return drivers.TransferResult{}, err
	}
	ctx, cancel := withDeadline(ctx, opts.Deadline)
	defer cancel()
	ps := append(transferParams(DownloadDiagnostics, opts), str(DownloadDiagnostics+"DownloadURL", rawURL))
	m, err := d.runDiagnostics(ctx, drivers.TestDownload, rawURL, DownloadDiagnostics, ps, "Completed")
	if err != nil {
		return drivers.TransferResult{Direction: drivers.TestDownload, URL: rawURL}, err
	}
	return transferResult(drivers.TestDownload, rawURL, opts, m, "TestBytesReceived", "TotalBytesReceived")
}

// UploadTest has the gateway upload size bytes to url (an HTTP URL that
// takes PUT, e.g. a speed server's /upload) with TR-143 UploadDiagnostics.
// With several connections, each uploads size bytes. Errors as for
// DownloadTest.
func (d *Driver) UploadTest(ctx context.Context, rawURL string, size int64, opts drivers.TransferOptions) (drivers.TransferResult, error) {
	if err := checkTransfer(drivers.TestUpload, rawURL, opts); err != nil {
		return drivers.TransferResult{}, err
	}
	if size <= 0 || size > maxUnsignedInt {
		return drivers.TransferResult{}, fmt.Errorf("upload test: size %d is outside 1..%d bytes", size, int64(maxUnsignedInt))
	}
	ctx, cancel := withDeadline(ctx, opts.Deadline)
	defer cancel()
	ps := append(transferParams(UploadDiagnostics, opts),
		str(UploadDiagnostics+"UploadURL", rawURL),
		cwmp.ParameterValueStruct{Name: UploadDiagnostics + "TestFileLength", Value: strconv.FormatInt(size, 10), Type: "xsd:unsignedInt"})
	m, err := d.runDiagnostics(ctx, drivers.TestUpload, rawURL, UploadDiagnostics, ps, "Completed")
	if err != nil {
		return drivers.TransferResult{Direction: drivers.TestUpload, URL: rawURL}, err
	}
	return transferResult(drivers.TestUpload, rawURL, opts, m, "TestBytesSent", "TotalBytesSent")
}

// transferResult reads a completed TR-143 object; testBytes and totalBytes
// name the direction's counters.
func transferResult(dir, rawURL string, o drivers.TransferOptions, m map[string]string, testBytes, totalBytes string) (drivers.TransferResult, error) {
	var p resultParser
	r := drivers.TransferResult{
		Direction: dir, URL: rawURL, Connections: max(o.Connections, 1),
		Bytes: p.int(m, testBytes), TotalBytes: p.optInt(m, totalBytes),
		TCPOpenRequest: p.time(m, "TCPOpenRequestTime"), TCPOpenResponse: p.time(m, "TCPOpenResponseTime"),
		ROM: p.time(m, "ROMTime"), BOM: p.time(m, "BOMTime"), EOM: p.time(m, "EOMTime"),
		FullLoadingBytes:  p.optInt(m, testBytes+"UnderFullLoading"),
		FullLoadingPeriod: time.Duration(p.optInt(m, "PeriodOfFullLoading")) * time.Microsecond,
	}
	for _, n := range instanceNumbers(m, "PerConnectionResult.") {
		pre := "PerConnectionResult." + strconv.Itoa(n) + "."
		r.PerConnection = append(r.PerConnection, drivers.TransferConnection{
			Bytes: p.int(m, pre+testBytes), TotalBytes: p.optInt(m, pre+totalBytes),
			TCPOpenRequest: p.time(m, pre+"TCPOpenRequestTime"), TCPOpenResponse: p.time(m, pre+"TCPOpenResponseTime"),
			ROM: p.time(m, pre+"ROMTime"), BOM: p.time(m, pre+"BOMTime"), EOM: p.time(m, pre+"EOMTime"),
		})
	}
	if p.err != nil {
		return r, fmt.Errorf("%s test: the gateway's results do not parse: %w", dir, p.err)
	}
	r.Duration = r.EOM.Sub(r.BOM)
	if r.Duration <= 0 {
		return r, fmt.Errorf("%s test: the gateway reports EOMTime %s not after BOMTime %s: the results are unusable, run the test again",
			dir, r.EOM.Format(time.RFC3339Nano), r.BOM.Format(time.RFC3339Nano))
	}
	r.Mbps = drivers.Rate(r.Bytes, r.Duration)
	if r.Connections > 1 && r.FullLoadingBytes > 0 && r.FullLoadingPeriod > 0 {
		r.Mbps = drivers.Rate(r.FullLoadingBytes, r.FullLoadingPeriod)
	}
	return r, nil
}

// Ping has the gateway ping host with TR-098 IPPingDiagnostics. Replies
// that do not come back are counted in the result, not an error; a host
// name the gateway cannot resolve is a *drivers.DiagnosticsError.
func (d *Driver) Ping(ctx context.Context, host string, opts drivers.PingOptions) (drivers.PingResult, error) {
	host = strings.TrimSpace(host)
	if host == "" || opts.Count < 0 || opts.Timeout < 0 || opts.Size < 0 || opts.Size > 65535 || opts.DSCP < 0 || opts.DSCP > 63 || opts.Deadline < 0 {
		return drivers.PingResult{}, fmt.Errorf("ping: need a host, and options in range: count %d (≥ 0), size %d (0-65535), DSCP %d (0-63)", opts.Count, opts.Size, opts.DSCP)
	}
	ctx, cancel := withDeadline(ctx, opts.Deadline)
	defer cancel()
	obj := IPPingDiagnostics
	ps := []cwmp.ParameterValueStruct{str(obj+"Host", host), str(obj+"Interface", opts.Interface)}
	if opts.Count > 0 {
		ps = append(ps, unsigned(obj+"NumberOfRepetitions", opts.Count))
	}
	if opts.Timeout > 0 {
		ps = append(ps, unsigned(obj+"Timeout", int(max(1, opts.Timeout.Milliseconds()))))
	}
	if opts.Size > 0 {
		ps = append(ps, unsigned(obj+"DataBlockSize", opts.Size))
	}
	if opts.DSCP > 0 {
		ps = append(ps, unsigned(obj+"DSCP", opts.DSCP))
	}
	res := drivers.PingResult{Host: host}
	m, err := d.runDiagnostics(ctx, drivers.TestPing, host, obj, ps, "Complete")
	if err != nil {
		return res, err
	}
	var p resultParser
	ok, failed := p.int(m, "SuccessCount"), p.int(m, "FailureCount")
	res.Sent, res.Received = int(ok+failed), int(ok)
	res.Min, res.Avg, res.Max = p.rtt(m, "Minimum"), p.rtt(m, "Average"), p.rtt(m, "Maximum")
	if p.err != nil {
		return res, fmt.Errorf("ping: the gateway's results do not parse: %w", p.err)
	}
	return res, nil
}

// TraceRoute has the gateway trace the route to host with TR-098
// TraceRouteDiagnostics. A route that does not reach host within the hop
// limit is returned with a *drivers.DiagnosticsError (state
// Error_MaxHopCountExceeded) and the hops found.
func (d *Driver) TraceRoute(ctx context.Context, host string, opts drivers.TraceOptions) (drivers.TraceResult, error) {
	host = strings.TrimSpace(host)
	if host == "" || opts.MaxHops < 0 || opts.MaxHops > 64 || opts.Tries < 0 || opts.Tries > 3 || opts.Timeout < 0 || opts.Size < 0 || opts.Size > 65535 || opts.DSCP < 0 || opts.DSCP > 63 || opts.Deadline < 0 {
		return drivers.TraceResult{}, fmt.Errorf("trace route: need a host, and options in range: max hops %d (0-64), tries %d (0-3), size %d (0-65535), DSCP %d (0-63)", opts.MaxHops, opts.Tries, opts.Size, opts.DSCP)
	}
	ctx, cancel := withDeadline(ctx, opts.Deadline)
	defer cancel()
	obj := TraceRouteDiagnostics
	ps := []cwmp.ParameterValueStruct{str(obj+"Host", host), str(obj+"Interface", opts.Interface)}
	for _, o := range []struct {
		name string
		v    int
	}{{"MaxHopCount", opts.MaxHops}, {"NumberOfTries", opts.Tries}, {"Timeout", int(opts.Timeout.Milliseconds())}, {"DataBlockSize", opts.Size}, {"DSCP", opts.DSCP}} {
		if o.v > 0 {
			ps = append(ps, unsigned(obj+o.name, o.v))
		}
	}
	res := drivers.TraceResult{Host: host}
	m, err := d.runDiagnostics(ctx, drivers.TestTraceRoute, host, obj, ps, "Complete")
	var de *drivers.DiagnosticsError
	if err != nil && (!errors.As(err, &de) || m == nil) {
		return res, err
	}
	var p resultParser
	for _, n := range instanceNumbers(m, "RouteHops.") {
		pre := "RouteHops." + strconv.Itoa(n) + "."
		hop := drivers.TraceHop{Host: m[pre+"HopHost"], Address: m[pre+"HopHostAddress"], ErrorCode: int(p.optInt(m, pre+"HopErrorCode"))}
		for _, f := range strings.Split(m[pre+"HopRTTimes"], ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			ms, perr := strconv.ParseUint(f, 10, 32)
			if perr != nil {
				p.fail(pre+"HopRTTimes", m[pre+"HopRTTimes"])
				break
			}
			hop.RTTs = append(hop.RTTs, time.Duration(ms)*time.Millisecond)
		}
		if hop.Host == "" {
			hop.Host = hop.Address
		}
		res.Hops = append(res.Hops, hop)
	}
	res.ResponseTime = time.Duration(p.optInt(m, "ResponseTime")) * time.Millisecond
	if err == nil && p.err != nil {
		err = fmt.Errorf("trace route: the gateway's results do not parse: %w", p.err)
	}
	return res, err
}

// instanceNumbers returns the instance numbers of table (relative, e.g.
// "RouteHops.") found in m, in order.
func instanceNumbers(m map[string]string, table string) []int {
	seen := map[int]bool{}
	var out []int
	for k := range m {
		rest, ok := strings.CutPrefix(k, table)
		if !ok {
			continue
		}
		s, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(s); err == nil && n > 0 && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// resultParser reads result parameters, keeping the first error.
type resultParser struct{ err error }

func (p *resultParser) fail(name, v string) {
	if p.err == nil {
		p.err = fmt.Errorf("%s = %q", name, v)
	}
}

// int reads a required counter.
func (p *resultParser) int(m map[string]string, name string) int64 {
	v, ok := m[name]
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if !ok || err != nil || n < 0 {
		p.fail(name, v)
		return 0
	}
	return n
}

// optInt reads a counter that older gateways lack (0 then).
func (p *resultParser) optInt(m map[string]string, name string) int64 {
	if _, ok := m[name]; !ok {
		return 0
	}
	return p.int(m, name)
}

// time reads a TR-143 dateTime ("2008-04-09T15:01:05.123456Z"; without a
// zone, as TR-143's examples have it, it is UTC).
func (p *resultParser) time(m map[string]string, name string) time.Time {
	v := strings.TrimSpace(m[name])
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", v, time.UTC)
	}
	if err != nil {
		p.fail(name, m[name])
		return time.Time{}
	}
	return t
}

// rtt reads a ping response time: the microsecond <kind>ResponseTimeDetailed
// when the gateway has it, else the millisecond <kind>ResponseTime.
func (p *resultParser) rtt(m map[string]string, kind string) time.Duration {
	if _, ok := m[kind+"ResponseTimeDetailed"]; ok {
		return time.Duration(p.int(m, kind+"ResponseTimeDetailed")) * time.Microsecond
	}
	return time.Duration(p.int(m, kind+"ResponseTime")) * time.Millisecond
}
