package ndt7

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"fieldagent/diagnostics/speedtest/result"
)

// shortOpts is a client that excludes 100 ms of ramp-up and samples every 50 ms.
func shortOpts() ClientOptions {
	return ClientOptions{RampUp: 100 * time.Millisecond, SampleInterval: 50 * time.Millisecond}
}

func TestDownloadUpload(t *testing.T) {
	base := serve(t, NewServer(ServerOptions{Duration: time.Second}))
	for _, tc := range []struct {
		dir string
		run func(context.Context, string, ClientOptions) (result.Measurement, error)
	}{
		{result.DirectionDownload, Download},
		{result.DirectionUpload, Upload},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			var progress []result.Progress
			opts := shortOpts()
			opts.Progress = func(p result.Progress) { progress = append(progress, p) }
			m, err := tc.run(t.Context(), base, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", m)
			if m.Direction != tc.dir || m.Streams != 1 {
				t.Errorf("Direction %q, Streams %d; want %q, 1", m.Direction, m.Streams, tc.dir)
			}
			if m.Mbps <= 0 || m.Bytes <= 0 || m.TotalBytes < m.Bytes || m.Duration <= 0 || m.Duration > time.Second {
				t.Errorf("Mbps %v, Bytes %d, TotalBytes %d, Duration %v", m.Mbps, m.Bytes, m.TotalBytes, m.Duration)
			}
			if got := result.Mbps(m.Bytes, m.Duration); math.Abs(got-m.Mbps) > 1e-9*got {
				t.Errorf("Mbps %v is not Bytes over Duration (%v)", m.Mbps, got)
			}
			if runtime.GOOS == "linux" {
				if m.LatencySamples == 0 || m.LatencyUnderLoadMs <= 0 || m.IdleLatencyMs <= 0 || m.Retransmits < 0 {
					t.Errorf("latency %vms of %d samples, idle %vms, retransmits %d: TCP_INFO not used on linux",
						m.LatencyUnderLoadMs, m.LatencySamples, m.IdleLatencyMs, m.Retransmits)
				}
			}
			if len(progress) < 2 {
				t.Fatalf("Progress called %d times", len(progress))
			}
			if !progress[0].RampUp || progress[len(progress)-1].RampUp {
				t.Errorf("RampUp flags: first %v, last %v; want true, false", progress[0].RampUp, progress[len(progress)-1].RampUp)
			}
			for i, p := range progress {
				if p.Direction != tc.dir || p.Streams != 1 || (i > 0 && (p.Bytes < progress[i-1].Bytes || p.Elapsed <= progress[i-1].Elapsed)) {
					t.Errorf("progress %d: %+v", i, p)
				}
			}
		})
	}
}

// TestClientEndsTest runs shorter than the server's 10 s: the client closes
// normally at its Duration and the server's handler ends with it.
func TestClientEndsTest(t *testing.T) {
	ts := newTrackedServer(NewServer(ServerOptions{}))
	base := serve(t, ts)
	for _, run := range []func(context.Context, string, ClientOptions) (result.Measurement, error){Download, Upload} {
		opts := shortOpts()
		opts.Duration = 500 * time.Millisecond
		m, err := run(t.Context(), base, opts)
		if err != nil {
			t.Fatal(err)
		}
		if m.Mbps <= 0 || m.Duration > opts.Duration {
			t.Errorf("%s: Mbps %v over %v; want a figure within the %v test", m.Direction, m.Mbps, m.Duration, opts.Duration)
		}
		ts.waitIdle(t, 5*time.Second)
	}
}

// fakeServer upgrades like an ndt7 server and hands the connection to run.
func fakeServer(t *testing.T, run func(c *websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{SubProtocol}}
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		run(c)
	}))
}

// sendMeasurements sends m(elapsed) every 50 ms for d, reading (and
// discarding) the client's messages, then closes normally.
func sendMeasurements(c *websocket.Conn, d time.Duration, m func(elapsed time.Duration) Message) {
	go func() {
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	for time.Since(start) < d {
		time.Sleep(50 * time.Millisecond)
		b, _ := json.Marshal(m(time.Since(start)))
		if c.WriteMessage(websocket.TextMessage, b) != nil {
			return
		}
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	time.Sleep(100 * time.Millisecond)
}

// TestUploadFigureSource checks where the upload figure comes from: the
// server's TCPInfo.BytesReceived, else its AppInfo.NumBytes, else the
// client's own count. The fake server claims round rates that the client's
// loopback transfer cannot produce.
func TestUploadFigureSource(t *testing.T) {
	const tenMbit = 10e6 / 8 / 1e6 // bytes per microsecond at 10 Mbit/s
	for _, tc := range []struct {
		name string
		msg  func(elapsed time.Duration) Message
		want float64 // Mbit/s; 0: anything but the claimed rates
	}{
		{"AppInfo", func(e time.Duration) Message {
			return Message{AppInfo: &AppInfo{ElapsedTime: e.Microseconds(), NumBytes: int64(float64(e.Microseconds()) * tenMbit)}}
		}, 10},
		{"TCPInfo preferred", func(e time.Duration) Message {
			us := e.Microseconds()
			return Message{
				AppInfo: &AppInfo{ElapsedTime: us, NumBytes: int64(float64(us) * tenMbit)},
				TCPInfo: &TCPInfo{ElapsedTime: us, BytesReceived: int64(float64(us) * 2 * tenMbit)},
			}
		}, 20},
		{"no measurements: own count", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := fakeServer(t, func(c *websocket.Conn) {
				if tc.msg == nil {
					sendMeasurements(c, 600*time.Millisecond, func(time.Duration) Message { return Message{Origin: OriginServer} })
					return
				}
				sendMeasurements(c, 600*time.Millisecond, tc.msg)
			})
			m, err := Upload(t.Context(), base, shortOpts())
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want > 0 && math.Abs(m.Mbps-tc.want) > 0.01:
				t.Errorf("Mbps %v, want the server's %v", m.Mbps, tc.want)
			case tc.want == 0 && (m.Mbps <= 0 || math.Abs(m.Mbps-10) < 0.5 || math.Abs(m.Mbps-20) < 0.5):
				t.Errorf("Mbps %v, want the client's own loopback figure", m.Mbps)
			}
		})
	}
}

// TestDownloadCountsOwnBytes: the download figure is the client's own
// count, whatever the server claims.
func TestDownloadCountsOwnBytes(t *testing.T) {
	const msgs, size = 20, 64 << 10
	base := fakeServer(t, func(c *websocket.Conn) {
		payload := make([]byte, size)
		for i := range msgs {
			lie, _ := json.Marshal(Message{AppInfo: &AppInfo{ElapsedTime: int64(i+1) * 1000, NumBytes: 1 << 40}})
			if c.WriteMessage(websocket.TextMessage, lie) != nil || c.WriteMessage(websocket.BinaryMessage, payload) != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_, _, _ = c.ReadMessage() // the client's close
	})
	m, err := Download(t.Context(), base, shortOpts())
	if err != nil {
		t.Fatal(err)
	}
	// On linux the kernel's count also holds frame headers and the 101
	// response: a few hundred bytes.
	if sent := int64(msgs * size); m.TotalBytes < sent || m.TotalBytes > sent+2048 {
		t.Errorf("TotalBytes %d, want the %d binary bytes sent", m.TotalBytes, sent)
	}
}

func TestClientErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	good := serve(t, NewServer(ServerOptions{Duration: 300 * time.Millisecond}))
	closeFrame := func(code int) func(*websocket.Conn) {
		return func(c *websocket.Conn) {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "boom"), time.Now().Add(time.Second))
			_, _, _ = c.ReadMessage()
		}
	}
	send := func(mt int, b []byte) func(*websocket.Conn) {
		return func(c *websocket.Conn) {
			_ = c.WriteMessage(mt, b)
			_, _, _ = c.ReadMessage()
		}
	}

	tests := []struct {
		name   string
		url    string
		upload bool
		opts   ClientOptions
		want   error
		text   string
	}{
		{name: "negative duration", url: good, opts: ClientOptions{Duration: -1}, want: ErrInvalidOptions},
		{name: "duration above the ndt7 maximum", url: good, opts: ClientOptions{Duration: 14 * time.Second}, want: ErrInvalidOptions, text: "maximum"},
		{name: "ramp-up not below duration", url: good, opts: ClientOptions{Duration: time.Second, RampUp: time.Second}, want: ErrInvalidOptions},
		{name: "negative sample interval", url: good, opts: ClientOptions{SampleInterval: -1}, want: ErrInvalidOptions},
		{name: "wrong scheme", url: "ftp://127.0.0.1/", want: ErrInvalidOptions},
		{name: "not a URL", url: "127.0.0.1:80", want: ErrInvalidOptions},
		{name: "no host", url: "http://", want: ErrInvalidOptions},
		{name: "nothing listening", url: closed, want: ErrUnreachable},
		{name: "busy", url: serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			http.Error(w, "full", http.StatusServiceUnavailable)
		})), want: ErrBusy, text: `Retry-After "7"`},
		{name: "no ndt7 at that URL", url: serve(t, http.NewServeMux()), want: ErrServer, text: "404"},
		{name: "not a WebSocket server", url: serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("hello"))
		})), want: ErrServer},
		{name: "no subprotocol", url: serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
			if err == nil {
				c.Close()
			}
		})), want: ErrSubprotocol},
		{name: "binary message during upload", upload: true, url: fakeServer(t, send(websocket.BinaryMessage, make([]byte, 2048))), want: ErrProtocol},
		{name: "malformed measurement", url: fakeServer(t, send(websocket.TextMessage, []byte(`{"AppInfo":`))), want: ErrProtocol},
		{name: "negative measurement", url: fakeServer(t, send(websocket.TextMessage, []byte(`{"AppInfo":{"NumBytes":-5}}`))), want: ErrProtocol},
		{name: "message above MaxMessageSize", url: fakeServer(t, send(websocket.BinaryMessage, make([]byte, MaxMessageSize+1))), want: ErrProtocol, text: "larger than"},
		{name: "close with an error code", url: fakeServer(t, closeFrame(websocket.CloseInternalServerErr)), want: ErrServer, text: "1011"},
		{name: "dropped before the ramp-up ended", url: fakeServer(t, func(c *websocket.Conn) { c.NetConn().Close() }), want: ErrStream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := Download
			if tc.upload {
				run = Upload
			}
			_, err := run(t.Context(), tc.url, tc.opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

// TestAbruptEndAfterRampUp: the spec asks clients to tolerate a connection
// that ends without a close frame; after the ramp-up the figure stands.
func TestAbruptEndAfterRampUp(t *testing.T) {
	base := fakeServer(t, func(c *websocket.Conn) {
		payload := make([]byte, 32<<10)
		for start := time.Now(); time.Since(start) < 400*time.Millisecond; {
			if c.WriteMessage(websocket.BinaryMessage, payload) != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		c.NetConn().Close()
	})
	m, err := Download(t.Context(), base, shortOpts())
	if err != nil || m.Mbps <= 0 {
		t.Fatalf("%+v, %v; want the figure measured until the drop", m, err)
	}
}

// TestCancel cancels a test mid-transfer: the client returns
// context.Canceled with a partial count, and the server's handler ends
// (the client reset its connection).
func TestCancel(t *testing.T) {
	for _, run := range []func(context.Context, string, ClientOptions) (result.Measurement, error){Download, Upload} {
		ts := newTrackedServer(NewServer(ServerOptions{}))
		base := serve(t, ts)
		ctx, cancel := context.WithCancel(t.Context())
		opts := shortOpts()
		var once sync.Once
		opts.Progress = func(p result.Progress) {
			if p.Elapsed > 200*time.Millisecond {
				once.Do(cancel)
			}
		}
		m, err := run(ctx, base, opts)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: err %v, want context.Canceled", m.Direction, err)
		}
		if m.TotalBytes <= 0 {
			t.Errorf("%s: TotalBytes %d: no partial count", m.Direction, m.TotalBytes)
		}
		ts.waitIdle(t, 5*time.Second)
	}
}

func TestDeadline(t *testing.T) {
	base := serve(t, NewServer(ServerOptions{}))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := Upload(ctx, base, ClientOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want context.DeadlineExceeded", err)
	}
}

func TestTestURL(t *testing.T) {
	tests := []struct{ base, path, want string }{
		{"http://192.0.2.1:8080", DownloadPath, "ws://192.0.2.1:8080/ndt/v7/download"},
		{"https://speed.example/base/", UploadPath, "wss://speed.example/base/ndt/v7/upload"},
		{"ws://[2001:db8::1]:80/x?q=1#f", DownloadPath, "ws://[2001:db8::1]:80/x/ndt/v7/download"},
		{"wss://speed.example", UploadPath, "wss://speed.example/ndt/v7/upload"},
	}
	for _, tc := range tests {
		u, err := testURL(tc.base, tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.base, err)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != tc.want {
			t.Errorf("%s: %s, want %s", tc.base, got, tc.want)
		}
		if q := u.Query(); q.Get("client_name") != "fieldagent" || len(u.RawQuery) > maxQueryLength {
			t.Errorf("%s: metadata %q", tc.base, u.RawQuery)
		}
	}
}

func TestServerWindow(t *testing.T) {
	ms := time.Millisecond
	s := func(appAt, tcpAt time.Duration, appBytes, tcpBytes int64) serverSample {
		return serverSample{app: point{appAt, appBytes}, tcp: point{tcpAt, tcpBytes}}
	}
	absent := time.Duration(-1)
	tests := []struct {
		name    string
		samples []serverSample
		bytes   int64
		d       time.Duration
		ok      bool
	}{
		{"TCPInfo after the ramp-up", []serverSample{
			s(100*ms, 100*ms, 10, 12), s(300*ms, 300*ms, 30, 36), s(1300*ms, 1300*ms, 130, 156)}, 120, time.Second, true},
		{"AppInfo without TCPInfo", []serverSample{
			s(100*ms, absent, 10, 0), s(300*ms, absent, 30, 0), s(1300*ms, absent, 130, 0)}, 100, time.Second, true},
		{"window too short: whole test", []serverSample{
			s(absent, 100*ms, 0, 10), s(absent, 250*ms, 0, 25), s(absent, 300*ms, 0, 30)}, 30, 300 * ms, true},
		{"no samples", nil, 0, 0, false},
		{"only time zero", []serverSample{s(0, absent, 0, 0)}, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, d, ok := serverWindow(tc.samples, 200*ms, 200*ms)
			if b != tc.bytes || d != tc.d || ok != tc.ok {
				t.Errorf("got %d bytes over %v (%v), want %d over %v (%v)", b, d, ok, tc.bytes, tc.d, tc.ok)
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
		{[]time.Duration{4, 1, 3, 2}, 3},
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
