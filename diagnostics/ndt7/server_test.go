package ndt7

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// trackedServer counts running handlers so a test can wait until none runs.
type trackedServer struct {
	h       http.Handler
	mu      sync.Mutex
	idle    *sync.Cond
	running int
}

func newTrackedServer(h http.Handler) *trackedServer {
	s := &trackedServer{h: h}
	s.idle = sync.NewCond(&s.mu)
	return s
}

func (s *trackedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.running++
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

// waitIdle fails t unless every handler has ended within d.
func (s *trackedServer) waitIdle(t *testing.T, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for s.running > 0 {
			s.idle.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("a server handler still runs %s later", d)
	}
}

// serve serves h on 127.0.0.1 until the test ends and returns its URL.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// dialTest opens a raw ndt7 WebSocket to base+path.
func dialTest(t *testing.T, base, path string, subprotocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return d.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+path, nil)
}

func TestServerRefusesBadRequests(t *testing.T) {
	base := serve(t, NewServer(ServerOptions{Duration: 200 * time.Millisecond}))
	t.Run("plain GET", func(t *testing.T) {
		resp, err := http.Get(base + DownloadPath)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "expected a WebSocket upgrade") {
			t.Errorf("%s %q, want 400 naming the upgrade", resp.Status, body)
		}
	})
	for _, tc := range []struct {
		name, path string
		protocols  []string
		status     int
		text       string
	}{
		{"no subprotocol", DownloadPath, nil, 400, "missing WebSocket subprotocol net.measurementlab.ndt.v7"},
		{"wrong subprotocol", UploadPath, []string{"chat"}, 400, "missing WebSocket subprotocol"},
		{"query string too long", DownloadPath + "?client_name=" + strings.Repeat("x", 4100), []string{SubProtocol}, 400, "exceeds 4096"},
		{"query string not parseable", UploadPath + "?a=%zz", []string{SubProtocol}, 400, "query string"},
		{"unknown test", "/ndt/v7/ping", []string{SubProtocol}, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, resp, err := dialTest(t, base, tc.path, tc.protocols...)
			if err == nil {
				conn.Close()
				t.Fatal("upgraded, want a refusal")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("resp %v, err %v; want status %d", resp, err, tc.status)
			}
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), tc.text) {
				t.Errorf("body %q does not contain %q", body, tc.text)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		resp, err := http.Post(base+UploadPath, "application/octet-stream", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s, want 405", resp.Status)
		}
	})
}

// TestServerDownload reads a whole download as a raw client and checks the
// wire: text measurements (ConnectionInfo once, first), binary sizes that
// follow the scaling rule, AppInfo that counts exactly the binary bytes sent
// before it, and a normal close after Duration.
func TestServerDownload(t *testing.T) {
	const duration = 700 * time.Millisecond
	base := serve(t, NewServer(ServerOptions{Duration: duration}))
	conn, _, err := dialTest(t, base, DownloadPath+"?client_name=test", SubProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Subprotocol() != SubProtocol {
		t.Fatalf("subprotocol %q", conn.Subprotocol())
	}

	var (
		total, texts, connInfos int
		prevSize                int
		last                    Message
	)
	buf := make([]byte, readBufferSize)
	for {
		mt, r, err := conn.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				t.Fatalf("test ended with %v, want a normal close", err)
			}
			break
		}
		switch mt {
		case websocket.TextMessage:
			b, _ := io.ReadAll(r)
			m, err := ParseMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if texts == 0 && m.ConnectionInfo == nil {
				t.Error("first measurement has no ConnectionInfo")
			}
			if m.ConnectionInfo != nil {
				connInfos++
				if m.ConnectionInfo.Client != conn.LocalAddr().String() {
					t.Errorf("ConnectionInfo.Client %q, want %q", m.ConnectionInfo.Client, conn.LocalAddr())
				}
			}
			if m.Origin != OriginServer || m.Test != TestDownload || m.AppInfo == nil {
				t.Fatalf("measurement %s", b)
			}
			if m.AppInfo.NumBytes != int64(total) {
				t.Errorf("AppInfo.NumBytes %d, but %d binary bytes arrived before it", m.AppInfo.NumBytes, total)
			}
			if last.AppInfo != nil && m.AppInfo.ElapsedTime < last.AppInfo.ElapsedTime {
				t.Errorf("ElapsedTime went back from %d to %d", last.AppInfo.ElapsedTime, m.AppInfo.ElapsedTime)
			}
			if runtime.GOOS == "linux" && (m.TCPInfo == nil || m.TCPInfo.MinRTT <= 0) {
				t.Errorf("no TCPInfo on linux: %s", b)
			}
			texts++
			last = m
		case websocket.BinaryMessage:
			n, err := io.CopyBuffer(io.Discard, r, buf)
			if err != nil {
				t.Fatal(err)
			}
			size := int(n)
			want := MinMessageSize
			if prevSize > 0 {
				want = nextMessageSize(prevSize, int64(total))
			}
			if size != want {
				t.Fatalf("binary message of %d bytes after %d, want %d (scaling rule)", size, total, want)
			}
			total += size
			prevSize = size
		}
	}
	if connInfos != 1 {
		t.Errorf("ConnectionInfo sent %d times, want once", connInfos)
	}
	if prevSize <= MinMessageSize {
		t.Errorf("messages never grew past %d bytes on loopback (%d bytes sent)", prevSize, total)
	}
	if got := last.AppInfo.ElapsedTime; got < duration.Microseconds() {
		t.Errorf("last measurement at %dµs, before the %s test ended", got, duration)
	}
	// At most one measurement per 250 ms, plus the first and the last.
	if maxTexts := int(duration/measurementInterval) + 2; texts > maxTexts {
		t.Errorf("%d measurements in %s, want at most %d", texts, duration, maxTexts)
	}
}

// TestServerUpload sends binary messages as a raw client: the server's
// measurements count them and it closes normally after Duration.
func TestServerUpload(t *testing.T) {
	const duration = 600 * time.Millisecond
	base := serve(t, NewServer(ServerOptions{Duration: duration}))
	conn, _, err := dialTest(t, base, UploadPath, SubProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	payload := make([]byte, 64<<10)
	var sent int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for conn.WriteMessage(websocket.BinaryMessage, payload) == nil {
			sent += int64(len(payload))
		}
	})
	var last *AppInfo
	var readErr error
	for {
		mt, b, err := conn.ReadMessage()
		if err != nil {
			readErr = err
			break
		}
		if mt != websocket.TextMessage {
			t.Fatalf("server sent message type %d during the upload", mt)
		}
		m, err := ParseMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if m.Test != TestUpload || m.AppInfo == nil {
			t.Fatalf("measurement %s", b)
		}
		if last != nil && m.AppInfo.NumBytes < last.NumBytes {
			t.Errorf("NumBytes went back from %d to %d", last.NumBytes, m.AppInfo.NumBytes)
		}
		last = m.AppInfo
	}
	conn.Close()
	wg.Wait()
	if !websocket.IsCloseError(readErr, websocket.CloseNormalClosure) {
		t.Errorf("ended with %v, want a normal close", readErr)
	}
	// The message being written when the server closed may have gone out in
	// part: it is in the server's count but not in sent.
	if last == nil || last.NumBytes <= 0 || last.NumBytes > sent+int64(len(payload)) {
		t.Fatalf("last AppInfo %+v with %d bytes sent", last, sent)
	}
	if last.ElapsedTime < duration.Microseconds() {
		t.Errorf("last measurement at %dµs, before the %s test ended", last.ElapsedTime, duration)
	}
}

func TestServerProtocolViolations(t *testing.T) {
	base := serve(t, NewServer(ServerOptions{Duration: 5 * time.Second}))
	for _, tc := range []struct {
		name, path string
		send       func(*websocket.Conn) error
		wantCode   int
	}{
		{"binary during download", DownloadPath, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.BinaryMessage, make([]byte, 1024))
		}, websocket.CloseUnsupportedData},
		{"text above 64 KiB", UploadPath, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, make([]byte, maxTextMessageSize+1))
		}, websocket.CloseMessageTooBig},
		{"binary above MaxMessageSize", UploadPath, func(c *websocket.Conn) error {
			w, err := c.NextWriter(websocket.BinaryMessage)
			if err != nil {
				return err
			}
			chunk := make([]byte, 1<<20)
			for range MaxMessageSize / len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			if _, err := w.Write(chunk[:1]); err != nil {
				return err
			}
			return w.Close()
		}, websocket.CloseMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, _, err := dialTest(t, base, tc.path, SubProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go func() { _ = tc.send(conn) }() // may fail once the server closes
			for {
				_, r, err := conn.NextReader()
				if err != nil {
					var ce *websocket.CloseError
					if !errors.As(err, &ce) || ce.Code != tc.wantCode {
						t.Fatalf("ended with %v, want close code %d", err, tc.wantCode)
					}
					return
				}
				_, _ = io.Copy(io.Discard, r)
			}
		})
	}
}

func TestServerBusy(t *testing.T) {
	base := serve(t, NewServer(ServerOptions{Duration: 3 * time.Second, MaxConcurrent: 1}))
	hold, _, err := dialTest(t, base, UploadPath, SubProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()

	conn, resp, err := dialTest(t, base, DownloadPath, SubProtocol)
	if err == nil {
		conn.Close()
		t.Fatal("second test upgraded while the only slot was taken")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("resp %+v, err %v; want 503 with Retry-After 3", resp, err)
	}
	_, err = Download(t.Context(), base, ClientOptions{})
	if !errors.Is(err, ErrBusy) {
		t.Errorf("Download: %v, want ErrBusy", err)
	}
}

// TestServerDropsStalledClient opens a download that it never reads: the
// server must give up at its deadline (Duration plus the close wait)
// instead of blocking on a full socket forever.
func TestServerDropsStalledClient(t *testing.T) {
	ts := newTrackedServer(NewServer(ServerOptions{Duration: 300 * time.Millisecond}))
	base := serve(t, ts)
	conn, _, err := dialTest(t, base, DownloadPath, SubProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The deadline is 300ms + 2s; allow for a slow machine.
	ts.waitIdle(t, 10*time.Second)
}

func TestServerMountedUnderPrefix(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/speed/", http.StripPrefix("/speed", NewServer(ServerOptions{Duration: 300 * time.Millisecond})))
	base := serve(t, mux)
	m, err := Download(t.Context(), base+"/speed/", ClientOptions{RampUp: 100 * time.Millisecond})
	if err != nil || m.Mbps <= 0 {
		t.Fatalf("download through /speed/: %+v, %v", m, err)
	}
}
