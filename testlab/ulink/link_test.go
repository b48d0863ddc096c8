package ulink

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeDev is an in-memory TUN device: the test plays the kernel, sending
// packets into the link on fromKernel and receiving what the link writes on
// toKernel. It blocks durably (channels only), so synctest can advance its
// fake clock and can tell when the link's goroutines are stuck.
type fakeDev struct {
	fromKernel chan []byte
	toKernel   chan []byte
	closed     chan struct{}
	once       sync.Once
	readErr    error // when set, Read fails with it at once
	writeErr   error // when set, Write fails with it
}

func newFakeDev() *fakeDev {
	return &fakeDev{
		fromKernel: make(chan []byte),
		toKernel:   make(chan []byte, 10000),
		closed:     make(chan struct{}),
	}
}

func (d *fakeDev) Read(p []byte) (int, error) {
	if d.readErr != nil {
		return 0, d.readErr
	}
	select {
	case b := <-d.fromKernel:
		return copy(p, b), nil
	case <-d.closed:
		return 0, os.ErrClosed
	}
}

func (d *fakeDev) Write(p []byte) (int, error) {
	select {
	case <-d.closed:
		return 0, os.ErrClosed
	default:
	}
	if d.writeErr != nil {
		return 0, d.writeErr
	}
	d.toKernel <- bytes.Clone(p)
	return len(p), nil
}

func (d *fakeDev) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

func (d *fakeDev) isClosed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// hostConfig is a host-mode config for fake devices.
func hostConfig() Config {
	return Config{
		Name:      "ul0",
		LocalCIDR: netip.PrefixFrom(testSender, 24),
		RemoteIP:  testHost,
		Seed:      1,
	}
}

// relayConfig is a relay-mode config for fake devices.
func relayConfig() Config {
	return Config{
		Name:      "ula",
		LocalCIDR: netip.MustParsePrefix("10.78.0.1/30"),
		Peer:      &Endpoint{Name: "ulb", LocalCIDR: netip.MustParsePrefix("10.78.0.2/30")},
		Seed:      1,
	}
}

// startFake starts a link with cfg over fake devices.
func startFake(t *testing.T, ctx context.Context, cfg Config, devs ...*fakeDev) *Link {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	ds := make([]device, len(devs))
	for i, d := range devs {
		ds[i] = d
	}
	return start(ctx, cfg, ds)
}

// closeLink closes l and fails the test on an error.
func closeLink(t *testing.T, l *Link) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// seqOf returns the ICMP sequence number of an IPv4 echo packet.
func seqOf(t *testing.T, p []byte) int {
	t.Helper()
	ihl := int(p[0]&0x0f) * 4
	return int(binary.BigEndian.Uint16(p[ihl+6 : ihl+8]))
}

func TestHostModeDelaysEachDirection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := hostConfig()
		cfg.Delay = 10 * time.Millisecond
		dev := newFakeDev()
		l := startFake(t, t.Context(), cfg, dev)
		defer closeLink(t, l)

		req := echoRequest(t, testHost, 0x77, 3, []byte("payload"))
		start := time.Now()
		dev.fromKernel <- req
		reply := <-dev.toKernel
		if rtt := time.Since(start); rtt != 2*cfg.Delay {
			t.Errorf("reply after %v, want 2 x %v", rtt, cfg.Delay)
		}
		checkReply(t, req, reply)
		synctest.Wait() // Write has counted the reply
		if got, want := l.Stats(), (Stats{In: 1, Out: 1}); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
	})
}

func TestHostModeIgnoresOtherPackets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := newFakeDev()
		l := startFake(t, t.Context(), hostConfig(), dev)
		defer closeLink(t, l)

		dev.fromKernel <- echoRequest(t, netip.MustParseAddr("10.77.0.9"), 1, 1, nil)
		dev.fromKernel <- ipv4Packet(testSender, testHost, 17, nil, []byte{0, 53, 0, 53, 0, 8, 0, 0})
		dev.fromKernel <- []byte{0x60, 0, 0, 0} // an IPv6 fragment of a packet
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(dev.toKernel); n != 0 {
			t.Errorf("%d packets written, want none", n)
		}
		if got, want := l.Stats(), (Stats{In: 3, Ignored: 3}); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
	})
}

func TestJitterStaysInBoundsAndKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := hostConfig()
		cfg.Delay = 10 * time.Millisecond
		cfg.Jitter = 3 * time.Millisecond
		dev := newFakeDev()
		l := startFake(t, t.Context(), cfg, dev)
		defer closeLink(t, l)

		const n = 200
		reqs := make([][]byte, n)
		for seq := range n {
			reqs[seq] = echoRequest(t, testHost, 1, seq, nil)
		}
		sent := make([]time.Time, n)
		go func() {
			for seq, req := range reqs {
				sent[seq] = time.Now()
				dev.fromKernel <- req
				time.Sleep(5 * time.Millisecond)
			}
		}()
		// Read every reply (so the sender finishes) and report the first problem.
		rtts := map[time.Duration]bool{}
		var problem string
		for want := range n {
			reply := <-dev.toKernel
			seq := seqOf(t, reply)
			rtt := time.Since(sent[seq])
			switch {
			case problem != "":
			case seq != want:
				problem = fmt.Sprintf("reply %d arrived in place %d: jitter reordered packets", seq, want)
			case rtt < 2*(cfg.Delay-cfg.Jitter) || rtt > 2*(cfg.Delay+cfg.Jitter):
				problem = fmt.Sprintf("seq %d: RTT %v outside 2 x (%v ± %v)", seq, rtt, cfg.Delay, cfg.Jitter)
			}
			rtts[rtt] = true
		}
		if problem != "" {
			t.Error(problem)
		}
		if len(rtts) < n/4 {
			t.Errorf("only %d distinct RTTs in %d replies: no jitter", len(rtts), n)
		}
	})
}

// answeredSeqs sends n echo requests, 1ms apart, through a host-mode link
// with loss and seed, and returns the sequence numbers answered and the
// link's stats.
func answeredSeqs(t *testing.T, n int, loss float64, seed uint64) (seqs []int, st Stats) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		cfg := hostConfig()
		cfg.Delay = 5 * time.Millisecond
		cfg.Loss = loss
		cfg.Seed = seed
		dev := newFakeDev()
		l := startFake(t, t.Context(), cfg, dev)
		for seq := range n {
			dev.fromKernel <- echoRequest(t, testHost, 1, seq, nil)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		closeLink(t, l)
		close(dev.toKernel)
		for p := range dev.toKernel {
			seqs = append(seqs, seqOf(t, p))
		}
		st = l.Stats()
	})
	return seqs, st
}

func TestLoss(t *testing.T) {
	const n = 2000
	t.Run("none", func(t *testing.T) {
		seqs, st := answeredSeqs(t, n, 0, 1)
		if len(seqs) != n || st.Dropped != 0 || st.Out != n {
			t.Errorf("%d of %d answered, stats %+v; want all", len(seqs), n, st)
		}
	})
	t.Run("all", func(t *testing.T) {
		seqs, st := answeredSeqs(t, n, 1, 1)
		if len(seqs) != 0 || st.Dropped != n || st.Out != 0 {
			t.Errorf("%d of %d answered, stats %+v; want none, every request dropped", len(seqs), n, st)
		}
	})
	t.Run("20% each way", func(t *testing.T) {
		seqs, st := answeredSeqs(t, n, 0.2, 1)
		// Both directions lose 20%: 64% of round trips survive, 1280 of
		// 2000 (standard deviation 21.5).
		if len(seqs) < 1180 || len(seqs) > 1380 {
			t.Errorf("%d of %d answered, want about 1280", len(seqs), n)
		}
		if st.In != n || st.Out != uint64(len(seqs)) || st.Dropped != n-st.Out || st.Overflow+st.Ignored+st.Errors != 0 {
			t.Errorf("stats %+v: want In %d = Out + Dropped, nothing else", st, n)
		}
		if !slices.IsSorted(seqs) {
			t.Error("replies out of order")
		}

		again, _ := answeredSeqs(t, n, 0.2, 1)
		if !slices.Equal(seqs, again) {
			t.Error("the same seed lost different packets")
		}
		other, _ := answeredSeqs(t, n, 0.2, 2)
		if slices.Equal(seqs, other) {
			t.Error("seeds 1 and 2 lost the same packets")
		}
	})
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := relayConfig()
		cfg.Delay = 5 * time.Millisecond
		cfg.Rate = 1_000_000 // 1250-byte packets take 10ms each
		a, b := newFakeDev(), newFakeDev()
		l := startFake(t, t.Context(), cfg, a, b)
		defer closeLink(t, l)

		start := time.Now()
		for i := range 5 {
			a.fromKernel <- bytes.Repeat([]byte{byte(i)}, 1250)
		}
		back := "the other direction is not queued behind" // 40 bytes: 320µs at 1 Mbit/s
		b.fromKernel <- []byte(back)
		if p, want := <-a.toKernel, cfg.Delay+320*time.Microsecond; string(p) != back || time.Since(start) != want {
			t.Errorf("b->a: %q after %v, want after %v", p, time.Since(start), want)
		}
		for i := range 5 {
			p := <-b.toKernel
			want := cfg.Delay + time.Duration(i+1)*10*time.Millisecond
			if p[0] != byte(i) || len(p) != 1250 || time.Since(start) != want {
				t.Errorf("packet %d (%d bytes) after %v, want packet %d after %v", p[0], len(p), time.Since(start), i, want)
			}
		}
		synctest.Wait()
		if got, want := l.Stats(), (Stats{In: 6, Out: 6}); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
	})
}

func TestQueueOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := relayConfig()
		cfg.Rate = 1_000_000
		cfg.QueueLen = 3
		a, b := newFakeDev(), newFakeDev()
		l := startFake(t, t.Context(), cfg, a, b)
		defer closeLink(t, l)

		for i := range 10 {
			a.fromKernel <- bytes.Repeat([]byte{byte(i)}, 1250)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(b.toKernel); n != 3 {
			t.Errorf("%d packets relayed, want the 3 that fit the queue", n)
		}
		if got, want := l.Stats(), (Stats{In: 10, Out: 3, Overflow: 7}); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
	})
}

func TestRelayBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := relayConfig()
		cfg.Delay = 7 * time.Millisecond
		a, b := newFakeDev(), newFakeDev()
		l := startFake(t, t.Context(), cfg, a, b)
		defer closeLink(t, l)

		start := time.Now()
		a.fromKernel <- []byte("a to b")
		if p := <-b.toKernel; string(p) != "a to b" || time.Since(start) != cfg.Delay {
			t.Errorf("b got %q after %v, want %q after %v", p, time.Since(start), "a to b", cfg.Delay)
		}
		start = time.Now()
		b.fromKernel <- []byte("b to a")
		if p := <-a.toKernel; string(p) != "b to a" || time.Since(start) != cfg.Delay {
			t.Errorf("a got %q after %v, want %q after %v", p, time.Since(start), "b to a", cfg.Delay)
		}
	})
}

func TestStopDiscardsPacketsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(cancel context.CancelFunc, l *Link) error
	}{
		{"Close", func(_ context.CancelFunc, l *Link) error { return l.Close() }},
		{"context", func(cancel context.CancelFunc, l *Link) error {
			cancel()
			synctest.Wait() // the link stops by itself...
			return l.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := hostConfig()
				cfg.Delay = time.Second
				dev := newFakeDev()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				l := startFake(t, ctx, cfg, dev)
				dev.fromKernel <- echoRequest(t, testHost, 1, 1, nil)
				time.Sleep(10 * time.Millisecond)
				if err := tc.stop(cancel, l); err != nil {
					t.Errorf("stop: %v", err)
				}
				if !dev.isClosed() {
					t.Error("device still open")
				}
				if err := l.Close(); err != nil {
					t.Errorf("second Close: %v", err)
				}
				time.Sleep(5 * time.Second)
				if n := len(dev.toKernel); n != 0 || l.Stats().Out != 0 {
					t.Errorf("%d packets written after the link stopped", n)
				}
				// synctest.Test fails if any of the link's goroutines is left.
			})
		})
	}
}

func TestReadErrorStopsLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errBroken := errors.New("device gone")
		a, b := newFakeDev(), newFakeDev()
		a.readErr = errBroken
		l := startFake(t, t.Context(), relayConfig(), a, b)
		synctest.Wait()
		if !a.isClosed() || !b.isClosed() {
			t.Error("devices still open after a read failed")
		}
		if err := l.Close(); !errors.Is(err, errBroken) || !strings.Contains(err.Error(), "read TUN device") {
			t.Errorf("Close: %v, want the read error", err)
		}
	})
}

func TestWriteErrorsCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := newFakeDev()
		dev.writeErr = errors.New("invalid argument")
		l := startFake(t, t.Context(), hostConfig(), dev)
		defer closeLink(t, l)
		dev.fromKernel <- echoRequest(t, testHost, 1, 1, nil)
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := l.Stats(), (Stats{In: 1, Errors: 1}); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" for valid
	}{
		{"host mode", func(*Config) {}, ""},
		{"relay mode", func(c *Config) {
			*c = relayConfig()
		}, ""},
		{"remote outside the prefix", func(c *Config) { c.RemoteIP = netip.MustParseAddr("192.0.2.7") }, ""},
		{"no name", func(c *Config) { c.Name = "" }, `device name "" is not 1 to 15 bytes without '/', ':' or spaces: invalid ulink config`},
		{"long name", func(c *Config) { c.Name = "abcdefghijklmnop" }, `device name "abcdefghijklmnop" is not 1 to 15 bytes without '/', ':' or spaces: invalid ulink config`},
		{"slash in name", func(c *Config) { c.Name = "a/b" }, `device name "a/b" is not 1 to 15 bytes without '/', ':' or spaces: invalid ulink config`},
		{"path as namespace", func(c *Config) { c.Netns = "/proc/1/ns/net" }, "namespace \"/proc/1/ns/net\" is not a name as `ip netns add` takes it: invalid ulink config"},
		{"no prefix", func(c *Config) { c.LocalCIDR = netip.Prefix{} }, "device ul0 has no LocalCIDR: invalid ulink config"},
		{"negative delay", func(c *Config) { c.Delay = -time.Millisecond }, "delay -1ms and jitter 0s must not be negative: invalid ulink config"},
		{"negative jitter", func(c *Config) { c.Jitter = -time.Millisecond }, "delay 0s and jitter -1ms must not be negative: invalid ulink config"},
		{"loss above 1", func(c *Config) { c.Loss = 1.5 }, "loss 1.5 is not between 0 and 1: invalid ulink config"},
		{"negative loss", func(c *Config) { c.Loss = -0.1 }, "loss -0.1 is not between 0 and 1: invalid ulink config"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate -1 bit/s is negative: invalid ulink config"},
		{"negative queue", func(c *Config) { c.QueueLen = -1 }, "queue length -1 is negative: invalid ulink config"},
		{"no remote", func(c *Config) { c.RemoteIP = netip.Addr{} }, "RemoteIP invalid IP is not an IPv4 address (host mode answers IPv4 echo requests): invalid ulink config"},
		{"IPv6 remote", func(c *Config) { c.RemoteIP = netip.MustParseAddr("2001:db8::1") }, "RemoteIP 2001:db8::1 is not an IPv4 address (host mode answers IPv4 echo requests): invalid ulink config"},
		{"remote is local", func(c *Config) { c.RemoteIP = c.LocalCIDR.Addr() }, "RemoteIP 10.77.0.1 is the device's own address: invalid ulink config"},
		{"remote on a relay", func(c *Config) {
			*c = relayConfig()
			c.RemoteIP = testHost
		}, "RemoteIP 10.77.0.2 is set on a relay link (Peer set): the hosts are the kernels at both ends: invalid ulink config"},
		{"relay to itself", func(c *Config) {
			*c = relayConfig()
			c.Peer.Name = c.Name
		}, `both ends are device ula in namespace "": invalid ulink config`},
		{"bad peer name", func(c *Config) {
			*c = relayConfig()
			c.Peer.Name = "x y"
		}, `device name "x y" is not 1 to 15 bytes without '/', ':' or spaces: invalid ulink config`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hostConfig()
			tc.mutate(&cfg)
			got, err := cfg.withDefaults()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				if got.QueueLen != DefaultQueueLen {
					t.Errorf("QueueLen %d, want the default %d", got.QueueLen, DefaultQueueLen)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v\nwant   %s (ErrInvalidConfig)", err, tc.wantErr)
			}
		})
	}
}
