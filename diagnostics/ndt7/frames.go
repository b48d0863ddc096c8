package ndt7

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"sync/atomic"
)

// maxClientFrameHeader is the longest header of a client frame: 2 bytes,
// an 8-byte length and the 4-byte masking key (RFC 6455 section 5.2).
const maxClientFrameHeader = 14

// clientFrames writes an uploader's binary messages as client frames
// straight to the connection. gorilla's writer copies every byte of a
// client message into its buffer and XORs it with the frame's mask, a third
// of the uploader's CPU on a fast link; here the payload is random bytes
// that are sent as they are: masked or not, they are random, and the server
// unmasks them into other random bytes. Every frame still gets a fresh,
// unpredictable masking key, as RFC 6455 section 5.3 requires: the key
// costs 4 random bytes, the mask itself nothing, since masking random bytes
// with any key gives random bytes.
//
// Each frame is a single Write, so it is never interleaved with another
// writer's frame; still, the caller must be the connection's only data
// writer and must not start a frame after sending a close frame.
type clientFrames struct {
	conn net.Conn // gorilla's NetConn: the TCP or TLS connection
	buf  []byte   // maxClientFrameHeader bytes of room, then the payload
}

// newClientFrames returns a writer of frames of up to payload bytes.
func newClientFrames(conn net.Conn, payload int) *clientFrames {
	f := &clientFrames{conn: conn, buf: make([]byte, maxClientFrameHeader+payload)}
	_, _ = rand.Read(f.buf[maxClientFrameHeader:]) // crypto/rand.Read never fails (Go 1.24+).
	return f
}

// frame returns one frame: a header for opcode, fin and n payload bytes,
// written into the room before the payload, followed by the payload.
func (f *clientFrames) frame(opcode byte, fin bool, n int) []byte {
	var h [maxClientFrameHeader]byte
	h[0] = opcode
	if fin {
		h[0] |= 0x80
	}
	hl := 2
	switch {
	case n <= 125:
		h[1] = 0x80 | byte(n)
	case n < 1<<16:
		h[1] = 0x80 | 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		hl = 4
	default:
		h[1] = 0x80 | 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
		hl = 10
	}
	_, _ = rand.Read(h[hl : hl+4]) // a fresh masking key for every frame
	hl += 4
	start := maxClientFrameHeader - hl
	copy(f.buf[start:], h[:hl])
	return f.buf[start : maxClientFrameHeader+n]
}

// writeMessage sends one binary message of size bytes as frames of up to
// the payload size, adding each frame's payload to count once written.
// Between frames it calls between (answering pings), and it ends the
// message early, with a shorter final frame, once stop reports true.
func (f *clientFrames) writeMessage(size int, stop func() bool, count *atomic.Int64, between func() error) error {
	const opBinary, opContinuation = 0x2, 0x0
	payload := len(f.buf) - maxClientFrameHeader
	for off := 0; off < size; {
		n := min(size-off, payload)
		fin := off+n == size || stop()
		op := byte(opContinuation)
		if off == 0 {
			op = opBinary
		}
		if _, err := f.conn.Write(f.frame(op, fin, n)); err != nil {
			return err
		}
		count.Add(int64(n))
		off += n
		if fin {
			return nil
		}
		if err := between(); err != nil {
			return err
		}
	}
	return nil
}
