package e8sim_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/diagnostics/speedtest"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

const (
	dl    = "InternetGatewayDevice.DownloadDiagnostics."
	ul    = "InternetGatewayDevice.UploadDiagnostics."
	ping  = "InternetGatewayDevice.IPPingDiagnostics."
	trace = "InternetGatewayDevice.TraceRouteDiagnostics."
	hosts = "InternetGatewayDevice.LANDevice.1.Hosts."
)

// request sets kv (DiagnosticsState=Requested among them) and waits for
// the "8 DIAGNOSTICS COMPLETE" inform.
func request(t *testing.T, a *acs.Server, id string, kv ...string) {
	t.Helper()
	before := time.Now()
	set(t, a, id, kv...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.WaitInform(ctx, id, acs.EventDiagnosticsComplete, before); err != nil {
		t.Fatal(err)
	}
}

func values(t *testing.T, a *acs.Server, id, obj string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pv, err := a.GetParameterValues(ctx, id, obj)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range pv {
		m[strings.TrimPrefix(p.Name, obj)] = p.Value
	}
	return m
}

func parseTime(t *testing.T, name, v string) time.Time {
	t.Helper()
	if len(v) != len("2006-01-02T15:04:05.000000Z") {
		t.Errorf("%s = %q, want microseconds in UTC", name, v)
	}
	tm, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, v, err)
	}
	return tm
}

func num(t *testing.T, m map[string]string, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(m[name], 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, m[name], err)
	}
	return n
}

func speedServer(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	t.Cleanup(s.Close)
	return s.URL
}

func TestDownloadDiagnostics(t *testing.T) {
	a, id, _ := start(t, "lan")
	speed := speedServer(t)
	const size = 1 << 20
	request(t, a, id, dl+"DownloadURL", speed+"/file/"+strconv.Itoa(size), dl+"NumberOfConnections", "2",
		dl+"EnablePerConnectionResults", "1", dl+"DiagnosticsState", "Requested")
	m := values(t, a, id, dl)
	if m["DiagnosticsState"] != "Completed" {
		t.Fatalf("DiagnosticsState = %s", m["DiagnosticsState"])
	}
	// Two GETs of the file, HTTP headers included (TR-143 counts them).
	if got := num(t, m, "TestBytesReceived"); got < 2*size || got > 2*size+4096 {
		t.Errorf("TestBytesReceived = %d, want 2×%d plus headers", got, size)
	}
	req, resp := parseTime(t, "TCPOpenRequestTime", m["TCPOpenRequestTime"]), parseTime(t, "TCPOpenResponseTime", m["TCPOpenResponseTime"])
	rom, bom, eom := parseTime(t, "ROMTime", m["ROMTime"]), parseTime(t, "BOMTime", m["BOMTime"]), parseTime(t, "EOMTime", m["EOMTime"])
	if resp.Before(req) || bom.Before(rom) || !eom.After(bom) {
		t.Errorf("times out of order: TCP %s→%s ROM %s BOM %s EOM %s", req, resp, rom, bom, eom)
	}
	if full, period := num(t, m, "TestBytesReceivedUnderFullLoading"), num(t, m, "PeriodOfFullLoading"); full > num(t, m, "TestBytesReceived") || (period == 0) != (full == 0) {
		t.Errorf("full loading: %d bytes in %d µs", full, period)
	}
	if m["PerConnectionResultNumberOfEntries"] != "2" || num(t, m, "PerConnectionResult.1.TestBytesReceived")+num(t, m, "PerConnectionResult.2.TestBytesReceived") != num(t, m, "TestBytesReceived") {
		t.Errorf("per-connection results do not add up: %v", m)
	}

	// Writing a test parameter alone resets the state and the table.
	set(t, a, id, dl+"NumberOfConnections", "1")
	if m := values(t, a, id, dl); m["DiagnosticsState"] != "None" || m["PerConnectionResultNumberOfEntries"] != "0" {
		t.Errorf("after a write: state %s, %s rows", m["DiagnosticsState"], m["PerConnectionResultNumberOfEntries"])
	}
}

func TestDiagnosticsErrors(t *testing.T) {
	a, id, _ := start(t, "lan")
	speed := speedServer(t)
	for _, tc := range []struct {
		name, obj string
		kv        []string
		state     string
	}{
		{"download 404", dl, []string{dl + "DownloadURL", speed + "/nope"}, "Error_TransferFailed"},
		{"download unresolvable", dl, []string{dl + "DownloadURL", "http://no-such-host.invalid/file/10"}, "Error_CannotResolveHostName"},
		{"download refused", dl, []string{dl + "DownloadURL", "http://127.0.0.1:1/file/10"}, "Error_InitConnectionFailed"},
		{"download ftp", dl, []string{dl + "DownloadURL", "ftp://127.0.0.1/file"}, "Error_InitConnectionFailed"},
		{"upload 405", ul, []string{ul + "UploadURL", speed + "/file/10", ul + "TestFileLength", "100"}, "Error_NoTransferComplete"},
		{"ping unresolvable", ping, []string{ping + "Host", "no-such-host.invalid"}, "Error_CannotResolveHostName"},
		{"trace unresolvable", trace, []string{trace + "Host", "no-such-host.invalid"}, "Error_CannotResolveHostName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			request(t, a, id, append(tc.kv, tc.obj+"DiagnosticsState", "Requested")...)
			if got := value(t, a, id, tc.obj+"DiagnosticsState"); got != tc.state {
				t.Errorf("DiagnosticsState = %s, want %s", got, tc.state)
			}
		})
	}
	// The ACS may only write Requested.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.SetParameterValues(ctx, id, []cwmp.ParameterValueStruct{{Name: dl + "DiagnosticsState", Value: "Completed", Type: "xsd:string"}}, "k")
	var f *cwmp.Fault
	if !errors.As(err, &f) || f.Code != cwmp.FaultInvalidParameterValue {
		t.Errorf("writing Completed: %v, want fault 9007", err)
	}
}

func TestUploadDiagnostics(t *testing.T) {
	a, id, _ := start(t, "lan")
	const size = 300 << 10
	request(t, a, id, ul+"UploadURL", speedServer(t)+"/upload", ul+"TestFileLength", strconv.Itoa(size), ul+"DiagnosticsState", "Requested")
	m := values(t, a, id, ul)
	if m["DiagnosticsState"] != "Completed" {
		t.Fatalf("DiagnosticsState = %s", m["DiagnosticsState"])
	}
	if got := num(t, m, "TestBytesSent"); got < size || got > size+4096 {
		t.Errorf("TestBytesSent = %d, want %d plus headers", got, size)
	}
	if bom, eom := parseTime(t, "BOMTime", m["BOMTime"]), parseTime(t, "EOMTime", m["EOMTime"]); !eom.After(bom) {
		t.Errorf("BOM %s EOM %s", bom, eom)
	}
}

func TestPingAndTraceRoute(t *testing.T) {
	a, id, _ := start(t, "lan")
	request(t, a, id, ping+"Host", "127.0.0.1", ping+"NumberOfRepetitions", "3", ping+"Timeout", "2000", ping+"DiagnosticsState", "Requested")
	m := values(t, a, id, ping)
	if m["DiagnosticsState"] != "Complete" || m["SuccessCount"] != "3" || m["FailureCount"] != "0" {
		t.Fatalf("ping = %v", m)
	}
	if num(t, m, "MinimumResponseTime") < 1 || num(t, m, "MinimumResponseTime") > num(t, m, "MaximumResponseTime") || num(t, m, "AverageResponseTimeDetailed") < 1 {
		t.Errorf("response times = %v", m)
	}
	request(t, a, id, trace+"Host", "localhost", trace+"NumberOfTries", "2", trace+"DiagnosticsState", "Requested")
	m = values(t, a, id, trace)
	if m["DiagnosticsState"] != "Complete" || m["RouteHopsNumberOfEntries"] != "1" || m["RouteHops.1.HopHost"] != "localhost" ||
		m["RouteHops.1.HopHostAddress"] != "127.0.0.1" || len(strings.Split(m["RouteHops.1.HopRTTimes"], ",")) != 2 {
		t.Errorf("trace route = %v", m)
	}
}

// TestDiagnosticsStopped writes a test parameter while a download runs: the
// test stops (the server sees its request cancelled), the state goes back
// to None and no "8 DIAGNOSTICS COMPLETE" follows.
func TestDiagnosticsStopped(t *testing.T) {
	a, id, _ := start(t, "lan")
	started, stopped := make(chan struct{}), make(chan struct{})
	var hits atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			close(started)
		}
		w.Header().Set("Content-Length", "1000000")
		_, _ = w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		if hits.Load() == 1 {
			close(stopped)
		}
	}))
	t.Cleanup(slow.Close)
	before := time.Now()
	set(t, a, id, dl+"DownloadURL", slow.URL+"/big", dl+"DiagnosticsState", "Requested")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the download never started")
	}
	set(t, a, id, dl+"DSCP", "46")
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("the download went on after the write")
	}
	if v := value(t, a, id, dl+"DiagnosticsState"); v != "None" {
		t.Errorf("DiagnosticsState = %s, want None", v)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := a.WaitInform(short, id, acs.EventDiagnosticsComplete, before); err == nil {
		t.Error("a stopped test informed DIAGNOSTICS COMPLETE")
	}
}
