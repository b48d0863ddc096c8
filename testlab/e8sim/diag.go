package e8sim

// The gateway's diagnostics: TR-143 DownloadDiagnostics and
// UploadDiagnostics over HTTP, and the TR-098 IPPingDiagnostics and
// TraceRouteDiagnostics. They behave as TR-069/TR-143 ask of a CPE:
//
//   - the ACS writes the test parameters and DiagnosticsState=Requested in
//     one SetParameterValues; DiagnosticsState accepts no other value from
//     the ACS (fault 9007);
//   - the test starts once that session has ended (cpe.Engine.Defer), runs
//     for real against the network, fills the result parameters, sets
//     DiagnosticsState to Completed (download, upload), Complete (ping,
//     trace route) or an Error_ value, and the gateway opens a session with
//     "8 DIAGNOSTICS COMPLETE";
//   - writing any other parameter of the object sets DiagnosticsState to
//     None and stops a running test (no inform follows); writing Requested
//     again restarts it; the result tables (PerConnectionResult, RouteHops)
//     are emptied whenever the ACS writes to the object.
//
// Downloads are real HTTP GETs and uploads real HTTP PUTs, each on its own
// TCP connection (NumberOfConnections of them in parallel); the byte counts
// are those of the test connections themselves (HTTP headers included, as
// TR-143 counts them): the simulator has no interface counters, so the
// Total* parameters equal the test connections' traffic. Ping and trace
// route use testlab/internal/netprobe: a TCP connection attempt stands in
// for an ICMP echo (no raw sockets needed), DataBlockSize, DSCP,
// EthernetPriority and Interface are accepted but have no effect.

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldagent/testlab/internal/netprobe"
	"fieldagent/tr069/cwmp"
)

// Diagnostics objects of the e8 model.
const (
	downloadDiag = root + "DownloadDiagnostics."
	uploadDiag   = root + "UploadDiagnostics."
	pingDiag     = root + "IPPingDiagnostics."
	traceDiag    = root + "TraceRouteDiagnostics."
)

// Diagnostics states (TR-143, TR-098).
const (
	stateNone               = "None"
	stateRequested          = "Requested"
	stateCompleted          = "Completed" // download, upload
	stateComplete           = "Complete"  // ping, trace route
	errCannotResolve        = "Error_CannotResolveHostName"
	errInitConnectionFailed = "Error_InitConnectionFailed"
	errNoRouteToHost        = "Error_NoRouteToHost"
	errNoResponse           = "Error_NoResponse"
	errTransferFailed       = "Error_TransferFailed"
	errIncorrectSize        = "Error_IncorrectSize"
	errNoTransferComplete   = "Error_NoTransferComplete"
	errTimeout              = "Error_Timeout"
	errMaxHopCountExceeded  = "Error_MaxHopCountExceeded"
)

const (
	diagTransferTimeout = 2 * time.Minute  // bounds one download or upload test
	diagResolveTimeout  = 10 * time.Second // bounds a host name lookup
	zeroTime            = "0001-01-01T00:00:00Z"
)

// diagTables are the result tables of the objects that have one.
var diagTables = map[string]string{
	downloadDiag: downloadDiag + "PerConnectionResult.",
	uploadDiag:   uploadDiag + "PerConnectionResult.",
	pingDiag:     "",
	traceDiag:    traceDiag + "RouteHops.",
}

// diagnostics tracks the gateway's diagnostics tests; the zero value is
// ready to use.
type diagnostics struct {
	mu   sync.Mutex
	gen  map[string]uint64             // by object: bumped by every ACS write to it
	stop map[string]context.CancelFunc // by object: stops the running test
}

// diagResult is what a test found: the result parameters (relative to the
// object), the rows of its result table and the final state.
type diagResult struct {
	state  string
	values [][2]string
	rows   [][][2]string
}

// diagOnSet reacts to the ACS writing diagnostics parameters (called from
// onSet, inside the session).
func (g *Gateway) diagOnSet(changed []cwmp.ParameterValueStruct) error {
	touched, requested := map[string]bool{}, map[string]bool{}
	var faults []cwmp.SetParameterValuesFault
	for _, pv := range changed {
		for obj := range diagTables {
			if !strings.HasPrefix(pv.Name, obj) {
				continue
			}
			touched[obj] = true
			if pv.Name != obj+"DiagnosticsState" {
				continue
			}
			if pv.Value != stateRequested {
				faults = append(faults, cwmp.SetParameterValuesFault{
					ParameterName: pv.Name, FaultCode: cwmp.FaultInvalidParameterValue,
					FaultString: "the only value the ACS may write is Requested",
				})
				continue
			}
			requested[obj] = true
		}
	}
	if len(faults) > 0 {
		return &cwmp.Fault{Code: cwmp.FaultInvalidParameterValue, String: cwmp.FaultMeaning(cwmp.FaultInvalidParameterValue), SetParameterValuesFaults: faults}
	}
	for obj := range touched {
		g.diag.mu.Lock()
		if g.diag.gen == nil {
			g.diag.gen, g.diag.stop = map[string]uint64{}, map[string]context.CancelFunc{}
		}
		g.diag.gen[obj]++
		gen := g.diag.gen[obj]
		if stop := g.diag.stop[obj]; stop != nil {
			stop()
			delete(g.diag.stop, obj)
			g.log.Info("e8sim: diagnostics test stopped by a new write", "object", obj)
		}
		if tbl := diagTables[obj]; tbl != "" {
			_ = g.tree.ClearTable(tbl)
		}
		if !requested[obj] {
			_ = g.tree.SetValue(obj+"DiagnosticsState", stateNone)
		}
		g.diag.mu.Unlock()
		if requested[obj] {
			g.engine.Defer(func(ctx context.Context) { g.startDiag(ctx, obj, gen) })
		}
	}
	return nil
}

// startDiag starts the test of obj that write generation gen requested,
// unless a later write superseded it. It runs after the session.
func (g *Gateway) startDiag(ctx context.Context, obj string, gen uint64) {
	g.mu.Lock()
	if g.runCtx != nil {
		ctx = g.runCtx
	}
	g.mu.Unlock()
	var run func(context.Context) diagResult
	switch obj {
	case downloadDiag:
		run = func(ctx context.Context) diagResult { return g.runTransfer(ctx, obj, false) }
	case uploadDiag:
		run = func(ctx context.Context) diagResult { return g.runTransfer(ctx, obj, true) }
	case pingDiag:
		run = g.runPing
	case traceDiag:
		run = g.runTrace
	default:
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	g.diag.mu.Lock()
	if g.diag.gen[obj] != gen {
		g.diag.mu.Unlock()
		cancel()
		return
	}
	g.diag.stop[obj] = cancel
	g.diag.mu.Unlock()
	g.log.Info("e8sim: diagnostics test started", "object", obj)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer cancel()
		res := run(tctx)
		g.diag.mu.Lock()
		if g.diag.gen[obj] != gen || ctx.Err() != nil {
			g.diag.mu.Unlock()
			return // stopped by a write, or the gateway is shutting down
		}
		delete(g.diag.stop, obj)
		g.applyDiag(obj, res)
		g.diag.mu.Unlock()
		g.log.Info("e8sim: diagnostics test finished", "object", obj, "state", res.state)
		if err := g.engine.DiagnosticsComplete(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("e8sim: diagnostics complete inform failed", "err", err)
		}
	}()
}

// applyDiag writes a test's results and, last, its state. Caller holds
// g.diag.mu.
func (g *Gateway) applyDiag(obj string, res diagResult) {
	for _, kv := range res.values {
		if err := g.tree.SetValue(obj+kv[0], kv[1]); err != nil {
			g.log.Warn("e8sim: diagnostics result", "err", err)
		}
	}
	if tbl := diagTables[obj]; tbl != "" {
		_ = g.tree.ClearTable(tbl)
		for _, row := range res.rows {
			n, err := g.tree.AddInstance(tbl)
			if err != nil {
				g.log.Warn("e8sim: diagnostics result row", "err", err)
				break
			}
			inst := tbl + strconv.FormatUint(uint64(n), 10) + "."
			for _, kv := range row {
				_ = g.tree.SetValue(inst+kv[0], kv[1])
			}
		}
	}
	_ = g.tree.SetValue(obj+"DiagnosticsState", res.state)
}

// tr143Time formats t as TR-143 wants: UTC with microseconds.
func tr143Time(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

func (g *Gateway) uintParam(name string, def int64) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(g.tree.Value(name)), 10, 64)
	if err != nil || n <= 0 {
		return def
	}
	return n
}

func (g *Gateway) boolParam(name string) bool {
	v := g.tree.Value(name)
	return v == "1" || strings.EqualFold(v, "true")
}

// resolve looks host up with a bounded wait.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, diagResolveTimeout)
	defer cancel()
	return netprobe.Resolve(ctx, nil, host)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func micros(d time.Duration) string { return itoa(int64(d / time.Microsecond)) }

// transferState is the TR-143 state of a failed transfer.
func transferState(f netprobe.Failure, upload bool) string {
	switch f {
	case netprobe.FailResolve:
		return errCannotResolve
	case netprobe.FailNoRoute:
		return errNoRouteToHost
	case netprobe.FailURL, netprobe.FailConnect: // only HTTP transports are offered
		return errInitConnectionFailed
	case netprobe.FailNoResponse:
		return errNoResponse
	case netprobe.FailTimeout:
		return errTimeout
	case netprobe.FailSize:
		return errIncorrectSize
	}
	if upload {
		return errNoTransferComplete
	}
	return errTransferFailed
}

// runTransfer is the TR-143 HTTP download or upload test of obj.
func (g *Gateway) runTransfer(ctx context.Context, obj string, upload bool) diagResult {
	spec := netprobe.TransferSpec{Upload: upload, Timeout: diagTransferTimeout}
	maxConns := "DownloadDiagnosticMaxConnections"
	if upload {
		spec.URL = g.tree.Value(obj + "UploadURL")
		spec.Size, _ = strconv.ParseInt(strings.TrimSpace(g.tree.Value(obj+"TestFileLength")), 10, 64)
		maxConns = "UploadDiagnosticsMaxConnections"
	} else {
		spec.URL = g.tree.Value(obj + "DownloadURL")
	}
	spec.Connections = int(min(g.uintParam(obj+"NumberOfConnections", 1), g.uintParam(obj+maxConns, 8)))
	r := netprobe.Transfer(ctx, spec)
	if r.Failure != netprobe.OK {
		return diagResult{state: transferState(r.Failure, upload)}
	}
	// The test direction's counters, and the other direction's.
	test, other := "Received", "Sent"
	testBytes := func(c netprobe.ConnStats) int64 { return c.Read }
	otherBytes := func(c netprobe.ConnStats) int64 { return c.Written }
	if upload {
		test, other = "Sent", "Received"
		testBytes, otherBytes = otherBytes, testBytes
	}
	s := r.Summary
	sum := netprobe.ConnStats{Read: s.Read, Written: s.Written}
	res := diagResult{state: stateCompleted, values: [][2]string{
		{"ROMTime", tr143Time(s.ROM)}, {"BOMTime", tr143Time(s.BOM)}, {"EOMTime", tr143Time(s.EOM)},
		{"TestBytes" + test, itoa(testBytes(sum))}, {"TotalBytes" + test, itoa(testBytes(sum))}, {"TotalBytes" + other, itoa(otherBytes(sum))},
		{"TestBytes" + test + "UnderFullLoading", itoa(s.FullBytes)}, {"TotalBytes" + test + "UnderFullLoading", itoa(s.FullBytes)},
		{"TotalBytes" + other + "UnderFullLoading", "0"}, {"PeriodOfFullLoading", micros(s.FullPeriod)},
		{"TCPOpenRequestTime", tr143Time(s.TCPOpenRequest)}, {"TCPOpenResponseTime", tr143Time(s.TCPOpenResponse)},
	}}
	if g.boolParam(obj + "EnablePerConnectionResults") {
		for _, c := range r.Conns {
			res.rows = append(res.rows, [][2]string{
				{"ROMTime", tr143Time(c.ROM)}, {"BOMTime", tr143Time(c.BOM)}, {"EOMTime", tr143Time(c.EOM)},
				{"TestBytes" + test, itoa(testBytes(c))}, {"TotalBytes" + test, itoa(testBytes(c))}, {"TotalBytes" + other, itoa(otherBytes(c))},
				{"TCPOpenRequestTime", tr143Time(c.TCPOpenRequest)}, {"TCPOpenResponseTime", tr143Time(c.TCPOpenResponse)},
			})
		}
	}
	return res
}

// runPing is the TR-098 IPPing test, with TCP connection attempts for
// echo requests (see the netprobe package).
func (g *Gateway) runPing(ctx context.Context) diagResult {
	host := g.tree.Value(pingDiag + "Host")
	addr, err := resolve(ctx, host)
	if err != nil {
		return diagResult{state: errCannotResolve}
	}
	r := netprobe.Ping(ctx, addr, netprobe.Options{
		Count:   int(g.uintParam(pingDiag+"NumberOfRepetitions", 1)),
		Timeout: time.Duration(g.uintParam(pingDiag+"Timeout", 1000)) * time.Millisecond,
	})
	us := func(d time.Duration) string { return micros(d) }
	ms := func(d time.Duration) string { return strconv.FormatUint(netprobe.Millis(d), 10) }
	return diagResult{state: stateComplete, values: [][2]string{
		{"SuccessCount", strconv.Itoa(r.Received)}, {"FailureCount", strconv.Itoa(r.Sent - r.Received)},
		{"AverageResponseTime", ms(r.Avg)}, {"MinimumResponseTime", ms(r.Min)}, {"MaximumResponseTime", ms(r.Max)},
		{"AverageResponseTimeDetailed", us(r.Avg)}, {"MinimumResponseTimeDetailed", us(r.Min)}, {"MaximumResponseTimeDetailed", us(r.Max)},
	}}
}

// runTrace is the TR-098 TraceRoute test: the route the simulator knows
// (netprobe.Trace), through the PPP peer of a connected WAN.
func (g *Gateway) runTrace(ctx context.Context) diagResult {
	host := g.tree.Value(traceDiag + "Host")
	addr, err := resolve(ctx, host)
	if err != nil {
		return diagResult{state: errCannotResolve}
	}
	var via []netip.Addr
	g.mu.Lock()
	wans := make([]string, 0, len(g.wans))
	for inst := range g.wans {
		wans = append(wans, inst)
	}
	g.mu.Unlock()
	for _, inst := range wans {
		if g.tree.Value(inst+"ConnectionStatus") != "Connected" {
			continue
		}
		if a, err := netip.ParseAddr(g.tree.Value(inst + "DefaultGateway")); err == nil {
			via = append(via, a)
			break
		}
	}
	r := netprobe.Trace(ctx, host, addr, via, int(g.uintParam(traceDiag+"MaxHopCount", 30)), netprobe.Options{
		Count:   int(g.uintParam(traceDiag+"NumberOfTries", 3)),
		Timeout: time.Duration(g.uintParam(traceDiag+"Timeout", 5000)) * time.Millisecond,
	})
	res := diagResult{state: stateComplete}
	if !r.Reached {
		res.state = errMaxHopCountExceeded
	}
	var last time.Duration
	for _, h := range r.Hops {
		res.rows = append(res.rows, [][2]string{
			{"HopHost", h.Host}, {"HopHostAddress", h.Addr.String()}, {"HopErrorCode", "0"},
			{"HopRTTimes", netprobe.MillisList(h.RTTs)},
		})
		if len(h.RTTs) > 0 {
			var sum time.Duration
			for _, d := range h.RTTs {
				sum += d
			}
			last = sum / time.Duration(len(h.RTTs))
		}
	}
	res.values = [][2]string{{"ResponseTime", strconv.FormatUint(netprobe.Millis(last), 10)}}
	return res
}
