package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestStartInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no target", Options{}, "Target is required"},
		{"target without port", Options{Target: "127.0.0.1"}, `Target "127.0.0.1"`},
		{"negative rate", Options{Target: "127.0.0.1:1", UpMbps: -1}, "rates 0/-1 Mbit/s must not be negative"},
		{"negative delay", Options{Target: "127.0.0.1:1", Delay: -time.Millisecond}, "Delay -1ms must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Start(t.Context(), tc.opts)
			if err == nil {
				_ = r.Close()
			}
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want ErrOptions with %q", err, tc.want)
			}
		})
	}
}

// TestBucket: reservations queue at the rate, an idle bucket lets its
// depth through at once and no more, and a nil bucket never waits.
func TestBucket(t *testing.T) {
	b := newBucket(8) // 1e6 bytes/s: 1 µs a byte
	t0 := time.Unix(1000, 0)
	us := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Microsecond) }
	for i, tc := range []struct {
		now, want time.Time
		n         int
	}{
		// Idle: the first 10 ms (10,000 bytes) are due in the past or now.
		{t0, us(-10_000 + 4_000), 4_000},
		{t0, us(-6_000 + 6_000), 6_000},
		// The depth is used up: the next bytes queue behind.
		{t0, us(1_000), 1_000},
		{t0, us(3_000), 2_000},
		// A reader late by 2 ms loses nothing: its bytes follow on.
		{us(5_000), us(4_000), 1_000},
		// After 1 s idle only the depth is back, not a second's worth.
		{us(1_005_000), us(1_005_000 - 10_000 + 20_000), 20_000},
	} {
		if got := b.reserve(tc.now, tc.n); !got.Equal(tc.want) {
			t.Errorf("reservation %d of %d bytes at %s: due %s, want %s", i, tc.n, tc.now.Sub(t0), got.Sub(t0), tc.want.Sub(t0))
		}
	}
	var unshaped *bucket
	if got := unshaped.reserve(t0, 1<<30); !got.Equal(t0) {
		t.Errorf("an unshaped direction makes 1 GiB wait until %s", got.Sub(t0))
	}
	if got := unshaped.chunkSize(); got != 64<<10 {
		t.Errorf("unshaped chunk %d, want 64 KiB", got)
	}
	for _, tc := range []struct {
		mbps float64
		want int
	}{{1, 4 << 10}, {50, 6250}, {300, 37500}, {10000, 64 << 10}} {
		if got := newBucket(tc.mbps).chunkSize(); got != tc.want {
			t.Errorf("chunk at %g Mbit/s: %d bytes, want %d", tc.mbps, got, tc.want)
		}
	}
}

// counter counts bytes moved, for throughput figures.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// startTarget serves ln with handle per connection until the test ends.
func startTarget(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}

// startRelay starts a relay to target and closes it when the test ends.
func startRelay(t *testing.T, opts Options) *Relay {
	t.Helper()
	r, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// Throughput bounds: the receiving end measures the rate within ±10% over
// measureFor after warmUp. A machine too busy to carry the rate makes a
// slow figure inconclusive (skip); a fast one always fails.
const (
	warmUp        = 300 * time.Millisecond
	measureFor    = 2 * time.Second
	rateAttempts  = 3
	busyCPU       = 0.6
	rateTolerance = 0.10
)

// TestThroughput: bulk transfers through the relay, one stream or several
// sharing the line, arrive at the direction's rate.
func TestThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("transfers for seconds")
	}
	for _, tc := range []struct {
		name    string
		down    bool
		streams int
		mbps    float64
	}{
		{"down 4 streams", true, 4, 50},
		{"down 1 stream", true, 1, 50},
		{"up 4 streams", false, 4, 50},
		{"up 1 stream", false, 1, 50},
		{"down 4 streams slow line", true, 4, 20},
		{"down 4 streams fast line", true, 4, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var figures []string
			busy := true
			for range rateAttempts {
				before := readCPU(t)
				mbps := transfer(t, tc.down, tc.streams, tc.mbps)
				load := readCPU(t).busySince(before)
				t.Logf("%.2f Mbit/s through a %.0f Mbit/s relay (CPU %.0f%% busy)", mbps, tc.mbps, 100*load)
				figures = append(figures, fmt.Sprintf("%.2f (CPU %.0f%%)", mbps, 100*load))
				switch {
				case mbps > (1+rateTolerance)*tc.mbps:
					t.Fatalf("%.2f Mbit/s, more than %.0f Mbit/s +10%%: not shaped to the line (per connection?)", mbps, tc.mbps)
				case mbps >= (1-rateTolerance)*tc.mbps:
					return
				}
				busy = busy && load > busyCPU
			}
			if busy {
				t.Skipf("inconclusive, the machine was too busy to carry the rate: %s Mbit/s in %d attempts, want %.0f ±10%%",
					strings.Join(figures, ", "), rateAttempts, tc.mbps)
			}
			t.Errorf("%s Mbit/s in %d attempts, want %.0f ±10%%", strings.Join(figures, ", "), rateAttempts, tc.mbps)
		})
	}
}

// transfer runs streams bulk transfers through a relay shaped to mbps in
// one direction (the other unshaped), and returns the rate the receiving
// end saw over measureFor.
func transfer(t *testing.T, down bool, streams int, mbps float64) float64 {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got counter
	payload := bytes.Repeat([]byte("fieldagent"), 6554)
	send := func(c net.Conn) {
		for ctx.Err() == nil {
			if _, err := c.Write(payload); err != nil {
				return
			}
		}
	}
	receive := func(c net.Conn) { _, _ = io.Copy(&got, c) }
	target := startTarget(t, func(c net.Conn) {
		if down {
			send(c)
		} else {
			receive(c)
		}
	})
	opts := Options{Target: target, DownMbps: mbps}
	if !down {
		opts = Options{Target: target, UpMbps: mbps}
	}
	r := startRelay(t, opts)
	var wg sync.WaitGroup
	defer wg.Wait()
	for range streams {
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { _ = c.Close() })
			defer stop()
			if down {
				receive(c)
			} else {
				send(c)
			}
		}()
	}
	time.Sleep(warmUp)
	n0, t0 := got.n.Load(), time.Now()
	time.Sleep(measureFor)
	n1, t1 := got.n.Load(), time.Now()
	cancel()
	return float64(n1-n0) * 8 / t1.Sub(t0).Seconds() / 1e6
}

// echo copies what c sends back to it.
func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// roundTrip sends msg on c and reads it back within wait.
func roundTrip(c net.Conn, msg string, wait time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echoed %q, want %q", buf, msg)
	}
	return nil
}

// TestSetUp: down, the relay cuts open connections and refuses new ones
// at once; up again, new connections get through.
func TestSetUp(t *testing.T) {
	r := startRelay(t, Options{Target: startTarget(t, echo), DownMbps: 20, UpMbps: 2})
	if !r.Up() {
		t.Fatal("a new relay is down")
	}
	open, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := roundTrip(open, "hello", 5*time.Second); err != nil {
		t.Fatalf("through the relay while up: %v", err)
	}

	r.SetUp(false)
	if r.Up() {
		t.Fatal("Up after SetUp(false)")
	}
	if err := roundTrip(open, "still there?", 5*time.Second); err == nil || isTimeout(err) {
		t.Errorf("an open connection after SetUp(false): %v, want it cut (reset or EOF), not carried or hanging", err)
	}
	before := r.Accepted()
	c, err := net.Dial("tcp", r.Addr())
	if err == nil {
		err = roundTrip(c, "new", 5*time.Second)
		c.Close()
	}
	if err == nil || isTimeout(err) {
		t.Errorf("a new connection while down: %v, want it refused at once", err)
	}
	if r.Accepted() == before {
		t.Errorf("the relay did not see the connection it refused")
	}

	r.SetUp(true)
	c, err = net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, "back", 5*time.Second); err != nil {
		t.Errorf("a new connection after SetUp(true): %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHalfClose: a client that closes its sending side still gets the
// whole answer, and the target sees the end of the request.
func TestHalfClose(t *testing.T) {
	target := startTarget(t, func(c net.Conn) {
		b, _ := io.ReadAll(c) // until the client's half-close
		_, _ = c.Write(append([]byte("got "), b...))
	})
	for _, delay := range []time.Duration{0, 5 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			r := startRelay(t, Options{Target: target, DownMbps: 10, UpMbps: 1, Delay: delay})
			c, err := net.Dial("tcp", r.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, "request"); err != nil {
				t.Fatal(err)
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(c)
			if err != nil || string(b) != "got request" {
				t.Errorf("answer %q, %v; want %q and EOF", b, err, "got request")
			}
		})
	}
}

// TestDelay: a round trip through the relay takes at least twice the
// one-way delay, and data arrives whole and in order.
func TestDelay(t *testing.T) {
	const delay = 25 * time.Millisecond
	r := startRelay(t, Options{Target: startTarget(t, echo), Delay: delay, DownMbps: 100, UpMbps: 100})
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, "warm", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		start := time.Now()
		if err := roundTrip(c, "ping "+strconv.Itoa(i), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt < 2*delay {
			t.Errorf("round trip %d took %s, less than twice the one-way delay %s", i, rtt, delay)
		}
	}
	// A bulk echo (more than one chunk, several in flight) comes back intact.
	msg := strings.Repeat("0123456789abcdef", 20_000)
	if err := roundTrip(c, msg, 10*time.Second); err != nil {
		t.Errorf("320 kB through the delayed relay: %v", err)
	}
}

// TestCloseCutsConnections: Close ends open connections and returns.
func TestCloseCutsConnections(t *testing.T) {
	r, err := Start(t.Context(), Options{Target: startTarget(t, echo), Delay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, "hi", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := roundTrip(c, "gone?", 5*time.Second); err == nil || isTimeout(err) {
		t.Errorf("a connection after Close: %v, want it cut", err)
	}
	if _, err := net.DialTimeout("tcp", r.Addr(), time.Second); err == nil {
		t.Errorf("the relay still accepts after Close")
	}
}

// cpuTimes are the aggregate CPU counters of /proc/stat, in ticks.
type cpuTimes struct{ idle, total uint64 }

// readCPU reads the aggregate CPU line of /proc/stat; zero where there is
// none (every slow figure then counts as a failure, not a busy machine).
func readCPU(t *testing.T) cpuTimes {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		t.Fatalf("/proc/stat starts with %q", line)
	}
	var c cpuTimes
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("/proc/stat: %v", err)
		}
		c.total += v
		if i == 3 || i == 4 { // idle, iowait
			c.idle += v
		}
	}
	return c
}

// busySince returns the share of CPU time in use between before and c.
func (c cpuTimes) busySince(before cpuTimes) float64 {
	total := c.total - before.total
	if total == 0 {
		return 0
	}
	return 1 - float64(c.idle-before.idle)/float64(total)
}
