package ndt7

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestClientFramesParse sends messages through clientFrames to a gorilla
// server, which checks masking and framing: every header length (7-bit,
// 16-bit, 64-bit), messages split over several frames, and a message ended
// early by stop.
func TestClientFramesParse(t *testing.T) {
	const payload = 70_000 // frames above 65535 bytes need the 64-bit length
	tests := []struct {
		size      int
		stopAfter int // frames before stop reports true; 0: never
		want      int
	}{
		{1, 0, 1},
		{125, 0, 125},
		{126, 0, 126},
		{65535, 0, 65535},
		{65536, 0, 65536},
		{payload, 0, payload},
		{3*payload + 5, 0, 3*payload + 5},
		{5 * payload, 2, 2 * payload}, // stopped after the second frame
	}
	got := make(chan int, len(tests))
	srvErr := make(chan error, 1)
	up := websocket.Upgrader{Subprotocols: []string{SubProtocol}}
	base := serve(t, httpHandler(func(c *websocket.Conn) {
		for {
			_, r, err := c.NextReader()
			if err != nil {
				srvErr <- err
				return
			}
			n, err := io.Copy(io.Discard, r)
			if err != nil {
				srvErr <- err
				return
			}
			got <- int(n)
		}
	}, &up))
	conn, _, err := dialTest(t, base, UploadPath, SubProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	f := newClientFrames(conn.NetConn(), payload)
	var count atomic.Int64
	var sent int64
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.size), func(t *testing.T) {
			written := 0 // frames written so far: between runs after each non-final one
			stop := func() bool { return tc.stopAfter > 0 && written+1 >= tc.stopAfter }
			between := func() error { written++; return nil }
			if err := f.writeMessage(tc.size, stop, &count, between); err != nil {
				t.Fatal(err)
			}
			sent += int64(tc.want)
			select {
			case n := <-got:
				if n != tc.want {
					t.Errorf("server received a %d-byte message, want %d", n, tc.want)
				}
			case err := <-srvErr:
				t.Fatalf("server: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("server received nothing")
			}
			if count.Load() != sent {
				t.Errorf("count %d, want %d", count.Load(), sent)
			}
		})
	}
}

// httpHandler upgrades with up and runs f on the connection.
func httpHandler(f func(*websocket.Conn), up *websocket.Upgrader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		f(c)
	}
}

// TestUploadAnswersPings: a server that pings during an upload gets every
// pong from the client's writer, and its close frame is answered.
func TestUploadAnswersPings(t *testing.T) {
	var mu sync.Mutex
	var pongs []string
	closeReply := make(chan error, 1)
	base := fakeServer(t, func(c *websocket.Conn) {
		c.SetPongHandler(func(s string) error {
			mu.Lock()
			pongs = append(pongs, s)
			mu.Unlock()
			return nil
		})
		done := make(chan error, 1)
		go func() {
			for {
				_, r, err := c.NextReader()
				if err != nil {
					done <- err
					return
				}
				_, _ = io.Copy(io.Discard, r)
			}
		}()
		for i := range 5 {
			time.Sleep(100 * time.Millisecond)
			if err := c.WriteControl(websocket.PingMessage, []byte(fmt.Sprint("p", i)), time.Now().Add(time.Second)); err != nil {
				closeReply <- err
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"), time.Now().Add(time.Second))
		closeReply <- <-done // the reader ends with the client's close frame
	})
	m, err := Upload(t.Context(), base, shortOpts())
	if err != nil || m.Mbps <= 0 {
		t.Fatalf("%+v, %v", m, err)
	}
	if err := <-closeReply; !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("server's reader ended with %v, want the client's normal close", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pongs) != 5 {
		t.Fatalf("pongs %q, want p0..p4", pongs)
	}
	for i, p := range pongs {
		if p != fmt.Sprint("p", i) {
			t.Errorf("pong %d is %q", i, p)
		}
	}
}

// Every client frame carries its own masking key (RFC 6455 section 5.3).
func TestClientFramesFreshMaskKeys(t *testing.T) {
	f := newClientFrames(nil, 1<<10)
	seen := map[[4]byte]bool{}
	for range 64 {
		fr := f.frame(0x2, true, 1<<10) // 16-bit length: the key is at bytes 4..7
		var k [4]byte
		copy(k[:], fr[4:8])
		if fr[1]&0x80 == 0 {
			t.Fatal("client frame not marked masked")
		}
		seen[k] = true
	}
	if len(seen) < 60 {
		t.Errorf("64 frames used only %d distinct masking keys", len(seen))
	}
}
