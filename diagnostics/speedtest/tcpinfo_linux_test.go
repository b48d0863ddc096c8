//go:build linux

package speedtest

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// recordedPair dials a loopback connection through a connRecorder and
// returns the recorded (client) end and the accepted (server) end.
func recordedPair(t *testing.T) (*connRecorder, net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := &connRecorder{}
	c, err := rec.dial(&net.Dialer{Timeout: 5 * time.Second})(t.Context(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return rec, c, s
}

// eventually polls f until it returns true or 5 s pass.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for !f() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within 5s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestKernelByteCounts: the recorder counts what TCP received, read by the
// application or not, and what TCP had acknowledged, whatever sits in the
// send buffer; a closed connection keeps its last count.
func TestKernelByteCounts(t *testing.T) {
	const n = 40_000 // fits the initial receive window unread
	rec, c, s := recordedPair(t)
	if got, ok := rec.transferred(DirectionDownload); !ok || got != 0 {
		t.Fatalf("before any data: %d, %v", got, ok)
	}
	if _, err := s.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	// Nothing is read on c: the kernel's count must still reach n.
	eventually(t, "download count", func() bool { got, _ := rec.transferred(DirectionDownload); return got == n })

	go func() { _, _ = c.Write(make([]byte, n)) }()
	if _, err := io.ReadFull(s, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "upload count", func() bool { got, _ := rec.transferred(DirectionUpload); return got == n })

	c.Close()
	if got, ok := rec.transferred(DirectionDownload); !ok || got != n {
		t.Errorf("after close: %d, %v; want the last reading %d", got, ok, n)
	}
	if rt := rec.retransmits(); rt < 0 {
		t.Errorf("retransmits %d after TCP_INFO was read", rt)
	}
}

// TestAbortResets: abort resets the connections, so the peer sees
// ECONNRESET instead of the rest of an upload.
func TestAbortResets(t *testing.T) {
	rec, c, s := recordedPair(t)
	if _, err := c.Write(make([]byte, 1<<20)); err != nil { // more than the peer reads
		t.Fatal(err)
	}
	rec.abort()
	_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, s)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer read ended with %v, want ECONNRESET", err)
	}
}
