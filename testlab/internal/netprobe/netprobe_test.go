package netprobe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		host string
		want string
		err  error
	}{
		{"127.0.0.1", "127.0.0.1", nil},
		{"::ffff:10.0.0.1", "10.0.0.1", nil},
		{"[::1]", "::1", nil},
		{"localhost", "127.0.0.1", nil},
		{"no-such-host.invalid", "", ErrNotFound},
		{"INVALID.", "", ErrNotFound},
		{"  ", "", ErrNotFound},
	} {
		t.Run(tc.host, func(t *testing.T) {
			a, err := Resolve(ctxT(t), nil, tc.host)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Resolve(%q) = %v, %v, want error %v", tc.host, a, err, tc.err)
			}
			if tc.err == nil && a.String() != tc.want {
				t.Errorf("Resolve(%q) = %s, want %s", tc.host, a, tc.want)
			}
		})
	}
}

// TestPing probes a listening and a closed loopback port (both answer: a
// SYN/ACK and an RST) and a dialer that times out (lost).
func TestPing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().(*net.TCPAddr).Port
	closedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := closedLn.Addr().(*net.TCPAddr).Port
	_ = closedLn.Close()
	t.Cleanup(func() { _ = ln.Close() })
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name     string
		opts     Options
		received int
	}{
		{"listening port", Options{Count: 3, Port: open}, 3},
		{"closed port answers RST", Options{Count: 2, Port: closed, Interval: time.Millisecond}, 2},
		{"no answer", Options{Count: 2, Timeout: 20 * time.Millisecond, Dialer: func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Ping(ctxT(t), lo, tc.opts)
			if r.Sent != tc.opts.Count || r.Received != tc.received || len(r.Probes) != r.Sent {
				t.Fatalf("sent %d received %d probes %d, want %d/%d", r.Sent, r.Received, len(r.Probes), tc.opts.Count, tc.received)
			}
			if tc.received > 0 && (r.Min <= 0 || r.Min > r.Avg || r.Avg > r.Max) {
				t.Errorf("min/avg/max = %s/%s/%s", r.Min, r.Avg, r.Max)
			}
			if tc.received == 0 && (r.Min != 0 || r.Avg != 0 || r.Max != 0) {
				t.Errorf("times without answers: %+v", r)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := Ping(ctx, lo, Options{Count: 3}); r.Sent != 0 {
		t.Errorf("a cancelled ping sent %d probes", r.Sent)
	}
}

func TestTrace(t *testing.T) {
	unreachable := func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Err: errors.New("no route to host")}
	}
	refused := func(ctx context.Context, n, a string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, n, "127.0.0.1:1") // nothing listens on port 1
	}
	far := netip.MustParseAddr("198.51.100.7")
	peer := netip.MustParseAddr("100.64.0.1")

	r := Trace(ctxT(t), "localhost", netip.MustParseAddr("127.0.0.1"), []netip.Addr{peer}, 30, Options{Count: 3})
	if !r.Reached || len(r.Hops) != 1 || r.Hops[0].Host != "localhost" || len(r.Hops[0].RTTs) != 3 {
		t.Fatalf("loopback trace = %+v, want one answered hop", r)
	}
	if OnLink(far) {
		t.Skip("198.51.100.0/24 is on a local interface here")
	}
	r = Trace(ctxT(t), "", far, []netip.Addr{peer}, 30, Options{Count: 2, Dialer: refused})
	if !r.Reached || len(r.Hops) != 2 || r.Hops[0].Addr != peer || len(r.Hops[0].RTTs) != 0 || r.Hops[1].Host != far.String() || len(r.Hops[1].RTTs) != 2 {
		t.Fatalf("routed trace = %+v", r)
	}
	r = Trace(ctxT(t), "far", far, []netip.Addr{peer}, 30, Options{Dialer: unreachable})
	if r.Reached || len(r.Hops) != 2 || len(r.Hops[1].RTTs) != 0 {
		t.Fatalf("unanswered trace = %+v", r)
	}
	r = Trace(ctxT(t), "far", far, []netip.Addr{peer}, 1, Options{Dialer: refused})
	if r.Reached || len(r.Hops) != 1 {
		t.Fatalf("trace past MaxHopCount = %+v", r)
	}
}

func TestMillis(t *testing.T) {
	if got := MillisList([]time.Duration{0, 50 * time.Microsecond, time.Millisecond, 1500 * time.Microsecond}); got != "0,1,1,2" {
		t.Errorf("MillisList = %q", got)
	}
}
