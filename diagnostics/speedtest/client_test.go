package speedtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
)

// shortOpts is a 1s test with a 200ms ramp-up sampled every 100ms.
func shortOpts() ClientOptions {
	return ClientOptions{Duration: time.Second, RampUp: 200 * time.Millisecond, SampleInterval: 100 * time.Millisecond}
}

func TestDownloadUpload(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	for _, tc := range []struct {
		dir string
		run func(context.Context, string, ClientOptions) (Measurement, error)
	}{
		{DirectionDownload, Download},
		{DirectionUpload, Upload},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			var progress []Progress
			opts := shortOpts()
			opts.Progress = func(p Progress) { progress = append(progress, p) }
			m, err := tc.run(t.Context(), srv.URL, opts)
			if err != nil {
				t.Fatalf("%s: %v", tc.dir, err)
			}
			t.Logf("%s: %+v", tc.dir, m)
			if m.Direction != tc.dir {
				t.Errorf("Direction %q, want %q", m.Direction, tc.dir)
			}
			if m.Mbps <= 0 || m.Bytes <= 0 || m.TotalBytes < m.Bytes || m.Duration <= 0 {
				t.Errorf("Mbps %v, Bytes %d, TotalBytes %d, Duration %v: want all > 0", m.Mbps, m.Bytes, m.TotalBytes, m.Duration)
			}
			if m.Streams < 2 || m.Streams > DefaultMaxStreams {
				t.Errorf("Streams %d, want 2..%d", m.Streams, DefaultMaxStreams)
			}
			if m.LatencySamples == 0 || m.LatencyUnderLoadMs <= 0 || m.IdleLatencyMs <= 0 {
				t.Errorf("latency under load %vms from %d samples, idle %vms: want > 0", m.LatencyUnderLoadMs, m.LatencySamples, m.IdleLatencyMs)
			}
			if runtime.GOOS == "linux" && m.Retransmits < 0 {
				t.Errorf("Retransmits %d: TCP_INFO not read on linux", m.Retransmits)
			}
			if len(progress) == 0 {
				t.Fatal("Progress never called")
			}
			if !progress[0].RampUp || progress[len(progress)-1].RampUp {
				t.Errorf("RampUp flags: first %v, last %v; want true, false", progress[0].RampUp, progress[len(progress)-1].RampUp)
			}
			for _, p := range progress {
				if p.Direction != tc.dir || p.Streams < 2 {
					t.Errorf("progress %+v", p)
				}
			}
		})
	}
}

func TestStillGrowing(t *testing.T) {
	tests := []struct {
		prev, cur float64
		want      bool
	}{
		{0, 100, false}, // first sample: nothing to compare
		{100, 111, true},
		{100, 110, false}, // exactly 10% is not "more than 10%"
		{100, 105, false},
		{100, 50, false},
	}
	for _, tc := range tests {
		if got := stillGrowing(tc.prev, tc.cur); got != tc.want {
			t.Errorf("stillGrowing(%v, %v) = %v, want %v", tc.prev, tc.cur, got, tc.want)
		}
	}
}

func TestStreamsCappedAtMaxStreams(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	opts := shortOpts()
	opts.Streams, opts.MaxStreams = 3, 3
	var most int
	opts.Progress = func(p Progress) { most = max(most, p.Streams) }
	m, err := Download(t.Context(), srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	if m.Streams != 3 || most != 3 {
		t.Errorf("Streams %d (most seen %d), want 3 (Streams = MaxStreams)", m.Streams, most)
	}
}

// pacer caps the rate of writes through it: after each write it
// sleeps until the bytes written so far, at rate bytes/s, are due. A shared
// pacer (one mutex, one counter) models a saturated link; one per response
// models a per-stream limit (a far server with a small TCP window).
type pacer struct {
	mu    sync.Mutex
	start time.Time
	sent  int64
	rate  float64 // bytes per second
}

func (p *pacer) wait(n int) {
	p.mu.Lock()
	if p.start.IsZero() {
		p.start = time.Now()
	}
	p.sent += int64(n)
	due := p.start.Add(time.Duration(float64(p.sent) / p.rate * float64(time.Second)))
	p.mu.Unlock()
	time.Sleep(time.Until(due))
}

type pacedWriter struct {
	http.ResponseWriter
	p *pacer
}

func (w pacedWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.p.wait(n)
	return n, err
}

// pacedServer paces /download bodies; shared selects one pacer for all.
func pacedServer(t *testing.T, rate float64, shared bool) *httptest.Server {
	h := NewServer(ServerOptions{ChunkSize: 16 << 10})
	all := &pacer{rate: rate}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/download" {
			h.ServeHTTP(w, r)
			return
		}
		p := all
		if !shared {
			p = &pacer{rate: rate}
		}
		h.ServeHTTP(pacedWriter{w, p}, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestStreamGrowth checks the ramp-up rule: with a per-stream limit every
// added stream raises the rate by more than 10%, so streams grow to
// MaxStreams; on a saturated link the rate stays flat and growth stops after
// the first added stream.
func TestStreamGrowth(t *testing.T) {
	const rate = 4 << 20 // 4 MiB/s, ~33 Mbit/s
	opts := ClientOptions{Duration: 1500 * time.Millisecond, RampUp: time.Second, SampleInterval: 100 * time.Millisecond, MaxStreams: 5}

	m, err := Download(t.Context(), pacedServer(t, rate, false).URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("per-stream limit: %d streams, %.1f Mbit/s (paced at %.1f per stream)", m.Streams, m.Mbps, rate*8/1e6)
	if m.Streams != 5 {
		t.Errorf("per-stream limit: %d streams, want MaxStreams 5 (%.1f Mbit/s)", m.Streams, m.Mbps)
	}

	m, err = Download(t.Context(), pacedServer(t, rate, true).URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("saturated link: %d streams, %.1f Mbit/s (paced at %.1f in all)", m.Streams, m.Mbps, rate*8/1e6)
	if m.Streams >= 5 {
		t.Errorf("saturated link: %d streams, want growth to stop below MaxStreams 5", m.Streams)
	}
}

func TestBusyServer(t *testing.T) {
	t.Run("one stream refused, test continues", func(t *testing.T) {
		srv := newTestServer(t, ServerOptions{MaxConcurrent: 1})
		opts := shortOpts()
		opts.Streams, opts.MaxStreams = 2, 2
		m, err := Download(t.Context(), srv.URL, opts)
		if err != nil {
			t.Fatal(err)
		}
		if m.Streams != 1 || m.Mbps <= 0 {
			t.Errorf("Streams %d, Mbps %v; want 1 stream and a rate", m.Streams, m.Mbps)
		}
	})
	t.Run("every stream refused", func(t *testing.T) {
		srv := newTestServer(t, ServerOptions{MaxConcurrent: 1})
		hold, err := http.Get(srv.URL + "/download?duration=10s")
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Body.Close()
		_, err = Upload(t.Context(), srv.URL, shortOpts())
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("err %v, want ErrBusy", err)
		}
	})
}

func TestUploadTooLarge(t *testing.T) {
	srv := newTestServer(t, ServerOptions{MaxUploadBytes: 64 << 10})
	_, err := Upload(t.Context(), srv.URL, shortOpts())
	if !errors.Is(err, ErrUploadTooLarge) {
		t.Fatalf("err %v, want ErrUploadTooLarge", err)
	}
}

func TestClientErrors(t *testing.T) {
	// A port that was just free on 127.0.0.1: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	srv := newTestServer(t, ServerOptions{})

	tests := []struct {
		name string
		url  string
		opts ClientOptions
		want error
	}{
		{"ramp-up not below duration", srv.URL, ClientOptions{Duration: time.Second, RampUp: time.Second}, ErrInvalidOptions},
		{"negative streams", srv.URL, ClientOptions{Streams: -1}, ErrInvalidOptions},
		{"negative duration", srv.URL, ClientOptions{Duration: -time.Second}, ErrInvalidOptions},
		{"not a URL", "127.0.0.1:1", ClientOptions{}, ErrInvalidOptions},
		{"wrong scheme", "ftp://127.0.0.1/", ClientOptions{}, ErrInvalidOptions},
		{"nothing listening", closed, ClientOptions{}, ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Download(t.Context(), tc.url, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// trackedServer counts running handlers so a test can wait until none runs.
// (A sync.WaitGroup does not fit: a request already in flight when the
// client gives up may still start a handler while the test waits.)
type trackedServer struct {
	h       http.Handler
	mu      sync.Mutex
	idle    *sync.Cond
	running int
	started int
}

func newTrackedServer(h http.Handler) *trackedServer {
	s := &trackedServer{h: h}
	s.idle = sync.NewCond(&s.mu)
	return s
}

func (s *trackedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.running++
	s.started++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.running--; s.running == 0 {
			s.idle.Broadcast()
		}
		s.mu.Unlock()
	}()
	s.h.ServeHTTP(w, r)
}

// waitIdle blocks until no handler runs and returns how many ever started.
func (s *trackedServer) waitIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.running > 0 {
		s.idle.Wait()
	}
	return s.started
}

// TestCancelStopsPromptly cancels a one-minute test mid-transfer: the client
// must return context.Canceled, and every server handler must end, which
// only happens once the client has closed its stream connections. Client
// goroutines are joined inside Download before it returns.
func TestCancelStopsPromptly(t *testing.T) {
	for _, tc := range []struct {
		dir string
		run func(context.Context, string, ClientOptions) (Measurement, error)
	}{
		{DirectionDownload, Download},
		{DirectionUpload, Upload},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			ts := newTrackedServer(NewServer(ServerOptions{MaxDuration: time.Hour}))
			srv := httptest.NewServer(ts)
			defer srv.Close()

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			opts := ClientOptions{Duration: time.Minute, SampleInterval: 50 * time.Millisecond}
			calls := 0
			opts.Progress = func(Progress) {
				if calls++; calls == 3 {
					cancel()
				}
			}
			var done sync.WaitGroup
			var err error
			var m Measurement
			done.Go(func() { m, err = tc.run(ctx, srv.URL, opts) })
			done.Wait()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
			if m.TotalBytes <= 0 {
				t.Errorf("TotalBytes %d: no partial figure", m.TotalBytes)
			}
			// Hangs (test timeout) if a stream connection outlives Download:
			// the server's stream handlers end only when the client closes them.
			if started := ts.waitIdle(); started < 2 {
				t.Errorf("only %d requests reached the server", started)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5}, 5},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 3, 2}, 3}, // (2+3)/2 = 2.5 rounds to 3
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
