package iptv

import (
	"errors"
	"fmt"
)

// errRTP means a datagram looked like RTP (version 2) but its header does
// not fit; it is counted as a bad datagram.
var errRTP = errors.New("malformed rtp header")

// rtpHeader holds the RTP fields the check uses (RFC 3550 section 5.1).
type rtpHeader struct {
	seq         uint16
	timestamp   uint32
	ssrc        uint32
	payloadType uint8
}

// rtpPayloadMP2T is the static payload type of MPEG-2 transport streams (RFC 3551).
const rtpPayloadMP2T = 33

// isRTP reports whether b starts like an RTP packet: version bits 2. A raw
// MPEG-TS datagram starts with 0x47, whose top bits are 01, so the two
// cannot be confused.
func isRTP(b []byte) bool { return len(b) > 0 && b[0]>>6 == 2 }

// parseRTP splits an RTP packet into header and payload, skipping CSRCs,
// the header extension and padding.
func parseRTP(b []byte) (rtpHeader, []byte, error) {
	if len(b) < 12 {
		return rtpHeader{}, nil, fmt.Errorf("%d bytes: %w", len(b), errRTP)
	}
	if !isRTP(b) {
		return rtpHeader{}, nil, fmt.Errorf("version %d: %w", b[0]>>6, errRTP)
	}
	h := rtpHeader{
		payloadType: b[1] & 0x7F,
		seq:         uint16(b[2])<<8 | uint16(b[3]),
		timestamp:   uint32(b[4])<<24 | uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7]),
		ssrc:        uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11]),
	}
	off := 12 + 4*int(b[0]&0x0F)
	if b[0]&0x10 != 0 { // extension: 16-bit profile, 16-bit length in words
		if len(b) < off+4 {
			return h, nil, fmt.Errorf("extension header cut short: %w", errRTP)
		}
		off += 4 + 4*(int(b[off+2])<<8|int(b[off+3]))
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding: the last byte counts the padding bytes
		end -= int(b[len(b)-1])
	}
	if off > end || b[0]&0x20 != 0 && b[len(b)-1] == 0 {
		return h, nil, fmt.Errorf("header of %d bytes and %d bytes of padding in %d: %w", off, len(b)-end, len(b), errRTP)
	}
	return h, b[off:end], nil
}

// RTP sequence tracking limits from RFC 3550 appendix A.1.
const (
	rtpMaxDropout  = 3000
	rtpMaxMisorder = 100
)

// rtpCounter counts lost and late RTP packets from sequence numbers, the
// RFC 3550 appendix A.1 way: lost = expected − received. A new SSRC or a
// jump beyond the dropout limits starts a new run; losses of earlier runs
// are kept.
type rtpCounter struct {
	started      bool
	ssrc         uint32
	base, extMax uint64 // extended sequence numbers of this run
	received     uint64 // packets of this run
	lostBefore   uint64 // lost in earlier runs
	late         uint64 // packets older than the newest seen (reordered or duplicated)
	restarts     uint64
}

func (c *rtpCounter) add(seq uint16, ssrc uint32) {
	if !c.started || ssrc != c.ssrc {
		c.restart(seq, ssrc)
		return
	}
	d := seq - uint16(c.extMax) // forward distance from the newest, modulo 2^16
	switch {
	case d == 0:
		c.late++ // a duplicate of the newest
	case d < rtpMaxDropout:
		c.extMax += uint64(d)
		c.received++
	case d > 1<<16-rtpMaxMisorder:
		c.late++
		c.received++
	default:
		c.restart(seq, ssrc)
	}
}

func (c *rtpCounter) restart(seq uint16, ssrc uint32) {
	if c.started {
		c.lostBefore += c.runLost()
		c.restarts++
	}
	c.started, c.ssrc = true, ssrc
	c.base, c.extMax, c.received = uint64(seq)+1<<16, uint64(seq)+1<<16, 1 // room below for late packets
}

// runLost is expected − received of the current run, at least 0.
func (c *rtpCounter) runLost() uint64 {
	expected := c.extMax - c.base + 1
	if c.received >= expected {
		return 0
	}
	return expected - c.received
}

// lost is how many RTP packets never arrived.
func (c *rtpCounter) lost() uint64 {
	if !c.started {
		return 0
	}
	return c.lostBefore + c.runLost()
}
