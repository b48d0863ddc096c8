package iptv

import (
	"bytes"
	"errors"
	"testing"
)

func rtpPacket(first byte, seq uint16, extra []byte, payload []byte) []byte {
	b := []byte{first, 0x80 | rtpPayloadMP2T, byte(seq >> 8), byte(seq), 0, 1, 0x5F, 0x90, 0xCA, 0xFE, 0xBA, 0xBE}
	b = append(b, extra...)
	return append(b, payload...)
}

func TestParseRTP(t *testing.T) {
	ts := bytes.Repeat([]byte{0x47, 1, 2, 3}, 47) // one 188-byte "packet"
	tests := []struct {
		name    string
		in      []byte
		payload []byte
		err     bool
	}{
		{name: "plain", in: rtpPacket(0x80, 7, nil, ts), payload: ts},
		{name: "two csrcs", in: rtpPacket(0x82, 7, make([]byte, 8), ts), payload: ts},
		{name: "extension of one word", in: rtpPacket(0x90, 7, []byte{0xBE, 0xDE, 0, 1, 9, 9, 9, 9}, ts), payload: ts},
		{name: "padding", in: append(rtpPacket(0xA0, 7, nil, ts), 0, 0, 3), payload: ts},
		{name: "short", in: []byte{0x80, 33, 0, 1}, err: true},
		{name: "version 1", in: rtpPacket(0x40, 7, nil, ts), err: true},
		{name: "csrcs past the end", in: rtpPacket(0x8F, 7, nil, ts[:20]), err: true},
		{name: "extension cut short", in: rtpPacket(0x90, 7, []byte{0xBE, 0xDE}, nil), err: true},
		{name: "extension length past the end", in: rtpPacket(0x90, 7, []byte{0xBE, 0xDE, 0x10, 0}, ts), err: true},
		{name: "zero padding count", in: append(rtpPacket(0xA0, 7, nil, ts), 0), err: true},
		{name: "padding past the header", in: append(rtpPacket(0xA0, 7, nil, nil), 200), err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := parseRTP(tc.in)
			if tc.err {
				if !errors.Is(err, errRTP) {
					t.Fatalf("err = %v, want errRTP", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, tc.payload) {
				t.Errorf("payload %d bytes, want %d", len(p), len(tc.payload))
			}
			if h.seq != 7 || h.ssrc != 0xCAFEBABE || h.timestamp != 0x00015F90 || h.payloadType != rtpPayloadMP2T {
				t.Errorf("header %+v", h)
			}
		})
	}
	if isRTP([]byte{0x47, 0x40, 0, 0x10}) {
		t.Error("a raw TS datagram (sync byte 0x47) was taken for RTP")
	}
}

func TestRTPCounter(t *testing.T) {
	type pkt struct {
		seq  uint16
		ssrc uint32
	}
	seqs := func(ssrc uint32, s ...uint16) []pkt {
		out := make([]pkt, len(s))
		for i, v := range s {
			out[i] = pkt{v, ssrc}
		}
		return out
	}
	tests := []struct {
		name       string
		pkts       []pkt
		lost, late uint64
	}{
		{name: "in order", pkts: seqs(1, 10, 11, 12, 13)},
		{name: "one gap", pkts: seqs(1, 10, 11, 13, 14), lost: 1},
		{name: "gap across the wrap", pkts: seqs(1, 65534, 65535, 2, 3), lost: 2},
		{name: "reordered pair loses nothing", pkts: seqs(1, 10, 12, 11, 13), late: 1},
		{name: "late packet older than the first", pkts: seqs(1, 10, 11, 9, 12), late: 1},
		{name: "duplicate", pkts: seqs(1, 10, 11, 11, 12), late: 1},
		{name: "new ssrc restarts", pkts: append(seqs(1, 10, 12), seqs(2, 500, 501)...), lost: 1},
		{name: "huge jump restarts", pkts: seqs(1, 10, 11, 30000, 30001), lost: 0},
		{name: "gap then huge jump keeps the loss", pkts: seqs(1, 10, 15, 40000, 40002), lost: 4 + 1},
		{name: "nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c rtpCounter
			for _, p := range tc.pkts {
				c.add(p.seq, p.ssrc)
			}
			if c.lost() != tc.lost || c.late != tc.late {
				t.Errorf("lost %d late %d, want %d and %d", c.lost(), c.late, tc.lost, tc.late)
			}
		})
	}
}
