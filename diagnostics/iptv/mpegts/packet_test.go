package mpegts

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// mustAppend encodes p or fails the test.
func mustAppend(t testing.TB, p Packet) []byte {
	t.Helper()
	b, err := p.Append(nil)
	if err != nil {
		t.Fatalf("Append(%+v): %v", p, err)
	}
	if len(b) != PacketSize {
		t.Fatalf("Append made %d bytes", len(b))
	}
	return b
}

// rawPacket builds a packet byte by byte, independent of Append.
func rawPacket(hdr [4]byte, rest ...byte) []byte {
	b := append(hdr[:], rest...)
	for len(b) < PacketSize {
		b = append(b, 0xFF)
	}
	return b
}

// packetCases are the ParsePacket table cases; they also seed FuzzParsePacket.
var packetCases = []struct {
	name    string
	in      []byte
	want    Packet // Payload compared by length only
	payload int
	err     error
}{
	{
		name:    "payload only",
		in:      rawPacket([4]byte{0x47, 0x41, 0x00, 0x1A}),
		want:    Packet{PUSI: true, PID: 0x100, HasPayload: true, CC: 10},
		payload: 184,
	},
	{
		name: "pcr and payload",
		// AF length 7, flags PCR|RAI, PCR base 0x1_0000_0001 ext 0x123.
		in: rawPacket([4]byte{0x47, 0x01, 0x00, 0x35}, 0x07, 0x50, 0x80, 0x00, 0x00, 0x00, 0xFF, 0x23),
		want: Packet{PID: 0x100, HasAdaptation: true, HasPayload: true, CC: 5,
			Adaptation: Adaptation{RandomAccess: true, HasPCR: true, PCR: NewPCR(0x1_0000_0001, 0x123)}},
		payload: 176,
	},
	{
		name: "adaptation only with discontinuity",
		in:   rawPacket([4]byte{0x47, 0x1F, 0xFE, 0x2F}, 183, 0x80),
		want: Packet{PID: 0x1FFE, HasAdaptation: true, CC: 15,
			Adaptation: Adaptation{Discontinuity: true}},
	},
	{
		name:    "tei priority scrambled",
		in:      rawPacket([4]byte{0x47, 0xA0, 0x11, 0xD0}),
		want:    Packet{TransportError: true, Priority: true, PID: 0x11, Scrambling: 3, HasPayload: true},
		payload: 184,
	},
	{
		name:    "zero length adaptation field",
		in:      rawPacket([4]byte{0x47, 0x00, 0x20, 0x31}, 0x00),
		want:    Packet{PID: 0x20, HasAdaptation: true, HasPayload: true, CC: 1},
		payload: 183,
	},
	{name: "short", in: make([]byte, 187), err: ErrPacketSize},
	{name: "long", in: append(rawPacket([4]byte{0x47, 0, 0, 0x10}), 0), err: ErrPacketSize},
	{name: "bad sync", in: rawPacket([4]byte{0x46, 0, 0, 0x10}), err: ErrSync},
	{name: "reserved afc", in: rawPacket([4]byte{0x47, 0, 0, 0x00}), err: ErrAdaptationControl},
	{name: "af too long with payload", in: rawPacket([4]byte{0x47, 0, 0, 0x30}, 183), err: ErrAdaptationField},
	{name: "af too long alone", in: rawPacket([4]byte{0x47, 0, 0, 0x20}, 184), err: ErrAdaptationField},
	{name: "pcr cut short", in: rawPacket([4]byte{0x47, 0, 0, 0x30}, 3, 0x10, 0, 0), err: ErrAdaptationField},
	{name: "opcr cut short", in: rawPacket([4]byte{0x47, 0, 0, 0x30}, 9, 0x18, 0, 0, 0, 0, 0, 0, 0, 0), err: ErrAdaptationField},
}

func TestParsePacket(t *testing.T) {
	for _, tc := range packetCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePacket(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if len(got.Payload) != tc.payload {
				t.Errorf("payload %d bytes, want %d", len(got.Payload), tc.payload)
			}
			got.Payload = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestPCRFieldRoundTrip(t *testing.T) {
	for _, p := range []PCR{0, 1, 299, 300, NewPCR(1<<33-1, 299), NewPCR(0x12345678, 7)} {
		var f [6]byte
		encodePCR(f[:], p)
		if got := decodePCR(f[:]); got != p {
			t.Errorf("decode(encode(%d)) = %d", p, got)
		}
		if f[4]&0x7E != 0x7E {
			t.Errorf("pcr %d: reserved bits 0x%02x not all ones", p, f[4])
		}
	}
}

func TestPCRSub(t *testing.T) {
	tests := []struct {
		name string
		p, q PCR
		want int64
	}{
		{"forward", 1000, 400, 600},
		{"backward", 400, 1000, -600},
		{"across the wrap", 100, PCRWrap - 200, 300},
		{"backward across the wrap", PCRWrap - 200, 100, -300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Sub(tc.q); got != tc.want {
				t.Errorf("%d.Sub(%d) = %d, want %d", tc.p, tc.q, got, tc.want)
			}
		})
	}
	if b, e := NewPCR(1<<33+5, 301).Base(), NewPCR(1<<33+5, 301).Ext(); b != 5 || e != 1 {
		t.Errorf("NewPCR reduces out-of-range fields: base %d ext %d, want 5 1", b, e)
	}
}

func TestAppendRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte{0xAB}, 100)
	tests := []struct {
		name string
		p    Packet
	}{
		{"full payload", Packet{PID: 0x100, CC: 3, HasPayload: true, Payload: bytes.Repeat([]byte{1}, 184)}},
		{"short payload is stuffed", Packet{PUSI: true, PID: 0x200, CC: 15, HasAdaptation: true, HasPayload: true, Payload: payload}},
		{"183 bytes: zero-length field", Packet{PID: 0x20, HasAdaptation: true, HasPayload: true, Payload: bytes.Repeat([]byte{2}, 183)}},
		{"pcr", Packet{PID: 0x100, CC: 1, HasAdaptation: true, HasPayload: true,
			Adaptation: Adaptation{HasPCR: true, PCR: 123456789, RandomAccess: true}, Payload: payload}},
		{"pcr and opcr", Packet{PID: 0x100, HasAdaptation: true, HasPayload: true,
			Adaptation: Adaptation{HasPCR: true, PCR: 5, HasOPCR: true, OPCR: 6, Discontinuity: true, ESPriority: true}, Payload: payload}},
		{"adaptation only", Packet{PID: 0x100, CC: 7, HasAdaptation: true, Adaptation: Adaptation{Discontinuity: true}}},
		{"flags", Packet{TransportError: true, Priority: true, Scrambling: 2, PID: 0x1FFF, HasPayload: true, Payload: bytes.Repeat([]byte{3}, 184)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustAppend(t, tc.p)
			got, err := ParsePacket(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Payload, tc.p.Payload) {
				t.Errorf("payload %x, want %x", got.Payload, tc.p.Payload)
			}
			got.Payload, tc.p.Payload = nil, nil
			if !reflect.DeepEqual(got, tc.p) {
				t.Errorf("got  %+v\nwant %+v", got, tc.p)
			}
		})
	}
}

func TestAppendErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		err  error
	}{
		{"payload too long", Packet{PID: 1, Payload: make([]byte, 185)}, ErrPayloadTooLong},
		{"payload too long beside pcr", Packet{PID: 1, Adaptation: Adaptation{HasPCR: true}, Payload: make([]byte, 177)}, ErrPayloadTooLong},
		{"pid too large", Packet{PID: 0x2000, Payload: make([]byte, 184)}, ErrAdaptationField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.p.Append([]byte{9})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !bytes.Equal(b, []byte{9}) {
				t.Errorf("dst changed on error: %x", b)
			}
		})
	}
}
