package e8_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/diagnostics/speedtest"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/tr069/cwmp"
)

// The gateway runs every device-side test.
var _ drivers.GatewayTester = (*e8.Driver)(nil)

// speedServer is the lab speed server (GET /file/N, PUT /upload) on
// loopback; it counts the file bytes it served.
func speedServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	h := speedtest.NewServer(speedtest.ServerOptions{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/file/"), 10, 64); err == nil && r.Method == http.MethodGet {
			defer served.Add(n)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL, &served
}

// headers bounds the HTTP header bytes TR-143 counts with the file.
const headers = 4096

func TestDownloadTest(t *testing.T) {
	l := startLab(t, "gpon")
	speed, served := speedServer(t)
	const size = 4 << 20
	url := speed + "/file/" + strconv.Itoa(size)

	r, err := l.drv.DownloadTest(ctxT(t), url, drivers.TransferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if served.Load() != size {
		t.Errorf("the speed server served %d bytes, want one file of %d", served.Load(), size)
	}
	if r.Bytes < size || r.Bytes > size+headers || r.Direction != drivers.TestDownload || r.URL != url || r.Connections != 1 {
		t.Errorf("result = %+v, want the %d-byte file plus headers", r, size)
	}
	if r.Duration != r.EOM.Sub(r.BOM) || r.Duration <= 0 || r.ROM.After(r.BOM) || r.TCPOpenResponse.After(r.ROM) || r.TCPOpenRequest.After(r.TCPOpenResponse) {
		t.Errorf("times out of order: TCP %s→%s ROM %s BOM %s EOM %s", r.TCPOpenRequest, r.TCPOpenResponse, r.ROM, r.BOM, r.EOM)
	}
	// Loopback: far above a broadband line, far below a terabit.
	if r.Mbps < 1 || r.Mbps > 1e6 || math.Abs(r.Mbps-drivers.Rate(r.Bytes, r.Duration)) > 1e-9 {
		t.Errorf("rate %.1f Mbit/s for %d bytes in %s", r.Mbps, r.Bytes, r.Duration)
	}

	// Three connections with per-connection results.
	served.Store(0)
	r, err = l.drv.DownloadTest(ctxT(t), url, drivers.TransferOptions{Connections: 3, PerConnection: true})
	if err != nil {
		t.Fatal(err)
	}
	if served.Load() != 3*size || len(r.PerConnection) != 3 || r.Connections != 3 {
		t.Fatalf("served %d bytes, %d connection results", served.Load(), len(r.PerConnection))
	}
	var sum int64
	for _, c := range r.PerConnection {
		sum += c.Bytes
		if c.Bytes < size || c.BOM.Before(r.BOM) || c.EOM.After(r.EOM) {
			t.Errorf("connection %+v outside the test %s..%s", c, r.BOM, r.EOM)
		}
	}
	if sum != r.Bytes {
		t.Errorf("connections add up to %d bytes, the test says %d", sum, r.Bytes)
	}
	if r.FullLoadingPeriod > 0 && (r.FullLoadingBytes > r.Bytes || math.Abs(r.Mbps-drivers.Rate(r.FullLoadingBytes, r.FullLoadingPeriod)) > 1e-9) {
		t.Errorf("full loading %d bytes in %s, rate %.1f", r.FullLoadingBytes, r.FullLoadingPeriod, r.Mbps)
	}
	if r.Mbps < 1 || r.Mbps > 1e6 {
		t.Errorf("rate %.1f Mbit/s", r.Mbps)
	}
}

func TestUploadTest(t *testing.T) {
	l := startLab(t, "lan")
	speed, _ := speedServer(t)
	const size = 1 << 20
	r, err := l.drv.UploadTest(ctxT(t), speed+"/upload", size, drivers.TransferOptions{DSCP: 10})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes < size || r.Bytes > size+headers || r.Direction != drivers.TestUpload || r.Duration <= 0 || r.Mbps < 1 || r.Mbps > 1e6 {
		t.Errorf("result = %+v", r)
	}
	if v := l.gw.Tree().Value(e8.UploadDiagnostics + "DSCP"); v != "10" {
		t.Errorf("DSCP on the gateway = %s", v)
	}
}

func TestDiagnosticsErrors(t *testing.T) {
	l := startLab(t, "lan")
	speed, _ := speedServer(t)
	for _, tc := range []struct {
		name  string
		run   func(ctx context.Context) error
		state string
	}{
		{"download 404", func(ctx context.Context) error {
			_, err := l.drv.DownloadTest(ctx, speed+"/no/such/file", drivers.TransferOptions{})
			return err
		}, "Error_TransferFailed"},
		{"download unresolvable", func(ctx context.Context) error {
			_, err := l.drv.DownloadTest(ctx, "http://speed.no-such-host.invalid/file/100", drivers.TransferOptions{})
			return err
		}, "Error_CannotResolveHostName"},
		{"upload refused", func(ctx context.Context) error {
			_, err := l.drv.UploadTest(ctx, "http://127.0.0.1:1/upload", 100, drivers.TransferOptions{})
			return err
		}, "Error_InitConnectionFailed"},
		{"ping unresolvable", func(ctx context.Context) error {
			_, err := l.drv.Ping(ctx, "no-such-host.invalid", drivers.PingOptions{})
			return err
		}, "Error_CannotResolveHostName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(ctxT(t))
			var de *drivers.DiagnosticsError
			if !errors.As(err, &de) || !errors.Is(err, drivers.ErrDiagnostics) || de.State != tc.state {
				t.Fatalf("err = %v, want a DiagnosticsError with %s", err, tc.state)
			}
			if !strings.Contains(err.Error(), "check") {
				t.Errorf("error %q does not say what to check", err)
			}
		})
	}
}

// TestDiagnosticsRefused covers what fails before the gateway runs a test:
// bad input (nothing is sent), a gateway without the object, and a
// gateway that never reports.
func TestDiagnosticsRefused(t *testing.T) {
	l := startLab(t, "lan")
	ctx := ctxT(t)
	for _, url := range []string{"ftp://192.0.2.1/file", "not a url", "http://user:pw@192.0.2.1/file"} {
		if _, err := l.drv.DownloadTest(ctx, url, drivers.TransferOptions{}); err == nil || errors.Is(err, drivers.ErrDiagnostics) {
			t.Errorf("DownloadTest(%q) = %v, want an input error", url, err)
		}
	}
	if _, err := l.drv.UploadTest(ctx, "http://192.0.2.1/upload", 0, drivers.TransferOptions{}); err == nil {
		t.Error("an upload of 0 bytes was accepted")
	}
	if _, err := l.drv.Ping(ctx, "", drivers.PingOptions{}); err == nil {
		t.Error("a ping without a host was accepted")
	}
	if v := l.gw.Tree().Value(e8.DownloadDiagnostics + "DiagnosticsState"); v != "None" {
		t.Errorf("bad input reached the gateway: DiagnosticsState = %s", v)
	}

	// A gateway whose model lacks the parameters answers 9005.
	l.gw.FailSetWhere(func(n string) bool { return strings.HasPrefix(n, e8.DownloadDiagnostics) }, cwmp.FaultInvalidParameterName)
	if _, err := l.drv.DownloadTest(ctx, "http://192.0.2.1/file/1", drivers.TransferOptions{}); !errors.Is(err, drivers.ErrUnsupported) {
		t.Errorf("9005 on the request: %v, want ErrUnsupported", err)
	}

	// A test that does not end within the deadline.
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hung.Close)
	t.Cleanup(hung.CloseClientConnections)
	_, err := l.drv.DownloadTest(ctx, hung.URL+"/file/1", drivers.TransferOptions{Deadline: 500 * time.Millisecond})
	if !errors.Is(err, drivers.ErrTimeout) {
		t.Errorf("hung server: %v, want ErrTimeout", err)
	}
}

func TestPingAndTraceRoute(t *testing.T) {
	l := startLab(t, "lan")
	ctx := ctxT(t)
	p, err := l.drv.Ping(ctx, "127.0.0.1", drivers.PingOptions{Count: 3, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if p.Host != "127.0.0.1" || p.Sent != 3 || p.Received != 3 || p.Loss() != 0 || p.Min <= 0 || p.Min > p.Avg || p.Avg > p.Max {
		t.Errorf("ping = %+v", p)
	}
	tr, err := l.drv.TraceRoute(ctx, "localhost", drivers.TraceOptions{Tries: 2, MaxHops: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Hops) != 1 || tr.Hops[0].Host != "localhost" || tr.Hops[0].Address != "127.0.0.1" || len(tr.Hops[0].RTTs) != 2 || tr.ResponseTime <= 0 {
		t.Errorf("trace = %+v", tr)
	}
}

// TestConcurrentDiagnostics runs a ping and a download at once: each
// waits for its own result, whichever "8 DIAGNOSTICS COMPLETE" comes first.
func TestConcurrentDiagnostics(t *testing.T) {
	l := startLab(t, "lan")
	speed, _ := speedServer(t)
	ctx := ctxT(t)
	errs := make(chan error, 2)
	go func() {
		_, err := l.drv.DownloadTest(ctx, speed+"/file/2000000", drivers.TransferOptions{})
		errs <- err
	}()
	go func() {
		p, err := l.drv.Ping(ctx, "127.0.0.1", drivers.PingOptions{Count: 2})
		if err == nil && p.Received != 2 {
			err = errors.New("ping lost replies on loopback")
		}
		errs <- err
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
