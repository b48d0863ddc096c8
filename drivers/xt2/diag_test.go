package xt2

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldagent/diagnostics/speedtest"
	"fieldagent/drivers"
)

// Outputs as the router prints them (docs/xt2-cli.md, Test commands),
// after the channel has stripped the echo and the prompt.
const (
	pingAllReplies = "  PING 127.0.0.1: 56  data bytes, press CTRL_C to break\n" +
		"    Reply from 127.0.0.1: bytes=56 Sequence=1 ttl=64 time=1 ms\n" +
		"    Reply from 127.0.0.1: bytes=56 Sequence=2 ttl=64 time=3 ms\n\n" +
		"  --- 127.0.0.1 ping statistics ---\n    2 packet(s) transmitted\n    2 packet(s) received\n    0.00% packet loss\n" +
		"    round-trip min/avg/max = 1/2/3 ms\n"
	pingSomeLost = "  PING gw.example: 100  data bytes, press CTRL_C to break\n" +
		"    Request time out\n" +
		"    Reply from 192.0.2.1: bytes=100 Sequence=2 ttl=64 time=12 ms\n" +
		"    Request time out\n\n" +
		"  --- gw.example ping statistics ---\n    3 packet(s) transmitted\n    1 packet(s) received\n    66.67% packet loss\n" +
		"    round-trip min/avg/max = 12/12/12 ms\n"
	pingNoReply = "  PING 192.0.2.9: 56  data bytes, press CTRL_C to break\n    Request time out\n\n" +
		"  --- 192.0.2.9 ping statistics ---\n    1 packet(s) transmitted\n    0 packet(s) received\n    100.00% packet loss\n"
	speedOK = "  Speed test: download http://192.0.2.20/file/10485760, 2 connection(s)\n  Connect time: 0.412 ms\n" +
		"  Bytes received: 10485760\n  Transfer time: 93.337 ms\n  Throughput: 898.74 Mbit/s\n  Result: success\n"
	speedFailed = "  Speed test: download http://192.0.2.20/nope, 1 connection(s)\n  Result: failed (server answered HTTP 404 Not Found)\n"
)

func TestParsePing(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want pingReport
		bad  bool
	}{
		{"all replies", pingAllReplies, pingReport{Host: "127.0.0.1", Size: 56, Sent: 2, Received: 2, Min: time.Millisecond, Avg: 2 * time.Millisecond, Max: 3 * time.Millisecond}, false},
		{"some lost", pingSomeLost, pingReport{Host: "gw.example", Size: 100, Sent: 3, Received: 1, Min: 12 * time.Millisecond, Avg: 12 * time.Millisecond, Max: 12 * time.Millisecond}, false},
		{"no reply", pingNoReply, pingReport{Host: "192.0.2.9", Size: 56, Sent: 1}, false},
		{"no statistics", "  PING 127.0.0.1: 56  data bytes\n", pingReport{}, true},
		{"more received than sent", strings.Replace(pingAllReplies, "2 packet(s) received", "3 packet(s) received", 1), pingReport{}, true},
		{"statistics contradict the replies", strings.Replace(pingSomeLost, "1 packet(s) received", "2 packet(s) received", 1), pingReport{}, true},
		{"round trip without replies", pingNoReply + "    round-trip min/avg/max = 1/1/1 ms\n", pingReport{}, true},
		{"min above max", strings.Replace(pingAllReplies, "1/2/3 ms", "3/2/1 ms", 1), pingReport{}, true},
		{"garbled reply", strings.Replace(pingAllReplies, "time=3 ms", "time=fast", 1), pingReport{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePing(tc.out)
			if tc.bad {
				if !errors.Is(err, errNotUnderstood) {
					t.Fatalf("parsePing = %+v, %v; want errNotUnderstood", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Replies = nil
			if got.Host != tc.want.Host || got.Size != tc.want.Size || got.Sent != tc.want.Sent || got.Received != tc.want.Received ||
				got.Min != tc.want.Min || got.Avg != tc.want.Avg || got.Max != tc.want.Max {
				t.Errorf("parsePing = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseSpeedTest(t *testing.T) {
	r, err := parseSpeedTest(speedOK)
	if err != nil {
		t.Fatal(err)
	}
	if r.URL != "http://192.0.2.20/file/10485760" || r.Connections != 2 || r.Bytes != 10485760 || r.TransferTime != 93337*time.Microsecond ||
		r.ConnectTime != 412*time.Microsecond || r.Mbps != 898.74 || !r.Success {
		t.Errorf("parseSpeedTest = %+v", r)
	}
	r, err = parseSpeedTest(speedFailed)
	if err != nil || r.Success || r.Failure != "server answered HTTP 404 Not Found" || speedFailureState(r.Failure) != "Error_TransferFailed" {
		t.Errorf("failed test = %+v, %v", r, err)
	}
	for name, out := range map[string]string{
		"no result":               strings.Replace(speedOK, "  Result: success\n", "", 1),
		"success without figures": "  Speed test: download http://x/, 1 connection(s)\n  Result: success\n",
		"garbled bytes":           strings.Replace(speedOK, "10485760\n", "ten megs\n", 1),
		"negative time":           strings.Replace(speedOK, "93.337 ms", "-1 ms", 1),
		"odd verdict":             strings.Replace(speedOK, "Result: success", "Result: maybe", 1),
		"no header":               "  Result: success\n",
	} {
		if _, err := parseSpeedTest(out); !errors.Is(err, errNotUnderstood) {
			t.Errorf("%s: err = %v, want errNotUnderstood", name, err)
		}
	}
	for reason, state := range map[string]string{
		"cannot connect to the server": "Error_InitConnectionFailed", "no route to the server": "Error_NoRouteToHost",
		"no response from the server": "Error_NoResponse", "transfer broke off": "Error_TransferFailed",
		"wrong size": "Error_IncorrectSize", "timed out after 20 s": "Error_Timeout", "cosmic rays": "Error_Other",
	} {
		if got := speedFailureState(reason); got != state {
			t.Errorf("speedFailureState(%q) = %s, want %s", reason, got, state)
		}
	}
}

// FuzzParseDiag feeds the test-command parsers arbitrary router output:
// they must not panic, and what they accept must be self-consistent.
func FuzzParseDiag(f *testing.F) {
	for _, s := range []string{pingAllReplies, pingSomeLost, pingNoReply, speedOK, speedFailed} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := parsePing(s); err == nil {
			if p.Received > p.Sent || p.Received != len(p.Replies) || p.Min > p.Avg || p.Avg > p.Max || (p.Received == 0 && p.Max != 0) {
				t.Fatalf("accepted inconsistent ping %+v", p)
			}
		}
		if r, err := parseSpeedTest(s); err == nil {
			if r.Bytes < 0 || r.TransferTime < 0 || r.Mbps < 0 || (r.Success && r.Failure != "") || r.Connections < 1 {
				t.Fatalf("accepted inconsistent speed test %+v", r)
			}
		}
	})
}

// TestDiagnosticsLab runs the test commands on the simulated router over
// SSH, against a speed server on loopback.
func TestDiagnosticsLab(t *testing.T) {
	l := startLab(t)
	var tr syncBuffer
	d := l.open(t, false, &tr)
	ctx := testCtx(t)
	speed := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	t.Cleanup(speed.Close)

	p, err := d.Ping(ctx, "127.0.0.1", drivers.PingOptions{Count: 3, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != 3 || p.Received != 3 || p.Loss() != 0 || p.Min <= 0 || p.Min > p.Avg || p.Avg > p.Max {
		t.Errorf("ping = %+v", p)
	}

	const size = 2 << 20
	r, err := d.DownloadTest(ctx, speed.URL+"/file/"+strconv.Itoa(size), drivers.TransferOptions{Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes != 2*size || r.Connections != 2 || r.Duration <= 0 || r.Mbps < 1 || r.Mbps > 1e6 || r.Direction != drivers.TestDownload {
		t.Errorf("download = %+v", r)
	}
	if !strings.Contains(tr.String(), "speed-test download "+speed.URL) {
		t.Errorf("transcript lacks the command:\n%s", tr.String())
	}

	for _, tc := range []struct {
		name  string
		run   func() error
		state string
	}{
		{"ping unresolvable", func() error { _, err := d.Ping(ctx, "no-such-host.invalid", drivers.PingOptions{Count: 1}); return err }, "Error_CannotResolveHostName"},
		{"download 404", func() error {
			_, err := d.DownloadTest(ctx, speed.URL+"/no/such/file", drivers.TransferOptions{})
			return err
		}, "Error_TransferFailed"},
		{"download refused", func() error {
			_, err := d.DownloadTest(ctx, "http://127.0.0.1:1/file/1", drivers.TransferOptions{})
			return err
		}, "Error_InitConnectionFailed"},
		{"download unresolvable", func() error {
			_, err := d.DownloadTest(ctx, "http://speed.no-such-host.invalid/file/1", drivers.TransferOptions{})
			return err
		}, "Error_CannotResolveHostName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			var de *drivers.DiagnosticsError
			if !errors.As(err, &de) || de.State != tc.state || !errors.Is(err, drivers.ErrDiagnostics) {
				t.Fatalf("err = %v, want a DiagnosticsError with %s", err, tc.state)
			}
		})
	}

	// The session is still usable after the failed commands.
	if _, err := d.Ping(ctx, "localhost", drivers.PingOptions{Count: 1}); err != nil {
		t.Fatalf("ping after errors: %v", err)
	}

	// Refused before anything is sent.
	before := tr.String()
	for name, run := range map[string]func() error{
		"host with a space":   func() error { _, err := d.Ping(ctx, "127.0.0.1 -c 9", drivers.PingOptions{}); return err },
		"host like an option": func() error { _, err := d.Ping(ctx, "-c", drivers.PingOptions{}); return err },
		"ping too long": func() error {
			_, err := d.Ping(ctx, "127.0.0.1", drivers.PingOptions{Count: 100, Timeout: time.Second})
			return err
		},
		"ftp URL": func() error {
			_, err := d.DownloadTest(ctx, "ftp://127.0.0.1/f", drivers.TransferOptions{})
			return err
		},
		"URL with a newline": func() error {
			_, err := d.DownloadTest(ctx, "http://127.0.0.1/f\nsystem-view", drivers.TransferOptions{})
			return err
		},
		"DSCP": func() error {
			_, err := d.DownloadTest(ctx, speed.URL+"/file/1", drivers.TransferOptions{DSCP: 46})
			return err
		},
	} {
		if err := run(); err == nil || errors.Is(err, drivers.ErrDiagnostics) {
			t.Errorf("%s: err = %v, want an input error", name, err)
		}
	}
	if after := tr.String(); after != before {
		t.Errorf("refused requests reached the router:\n%s", strings.TrimPrefix(after, before))
	}
}

// TestDownloadTestHTTPServerSees checks the router's GETs really reach the
// server: one request per connection.
func TestDownloadTestHTTPServerSees(t *testing.T) {
	l := startLab(t)
	d := l.open(t, false, nil)
	hits := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.Method + " " + r.URL.Path
		_, _ = w.Write(make([]byte, 1000))
	}))
	t.Cleanup(srv.Close)
	r, err := d.DownloadTest(testCtx(t), srv.URL+"/f", drivers.TransferOptions{Connections: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes != 3000 || len(hits) != 3 {
		t.Fatalf("bytes %d, %d requests", r.Bytes, len(hits))
	}
	if h := <-hits; h != "GET /f" {
		t.Errorf("request %q", h)
	}
}
