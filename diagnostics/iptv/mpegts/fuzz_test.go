package mpegts

import (
	"reflect"
	"testing"
)

// FuzzParsePacket parses the input as one packet and, split into 188-byte
// chunks, as a stream. A packet that parses must survive Append and parse
// back to the same fields.
func FuzzParsePacket(f *testing.F) {
	for _, tc := range packetCases {
		f.Add(tc.in)
	}
	w, err := NewWriter(WriterConfig{Bitrate: 1_000_000})
	if err != nil {
		f.Fatal(err)
	}
	var stream []byte
	for range 8 {
		stream = w.Next(stream)
	}
	f.Add(stream)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePacket(data)
		if err == nil {
			b, err := p.Append(nil)
			if err != nil {
				t.Fatalf("Append of a parsed packet: %v", err)
			}
			q, err := ParsePacket(b)
			if err != nil {
				t.Fatalf("re-parse: %v", err)
			}
			if len(p.Payload) == 0 {
				p.Payload = nil
			}
			if len(q.Payload) == 0 {
				q.Payload = nil
			}
			if !reflect.DeepEqual(p, q) {
				t.Fatalf("round trip changed the packet:\n%+v\n%+v", p, q)
			}
		}
		a := NewAnalyzer()
		chunks := 0
		for len(data) >= PacketSize {
			_ = a.Feed(data[:PacketSize])
			data = data[PacketSize:]
			chunks++
		}
		s := a.Summary()
		if s.Packets+s.Invalid != uint64(chunks) {
			t.Fatalf("%d packets + %d invalid != %d fed", s.Packets, s.Invalid, chunks)
		}
		var perPID uint64
		for _, st := range s.PIDs {
			perPID += st.Packets
		}
		if perPID != s.Packets {
			t.Fatalf("per-PID packets %d != %d", perPID, s.Packets)
		}
	})
}

// FuzzParsePSI parses the input as a PAT and as a PMT section. A table that
// parses must re-encode and parse back equal.
func FuzzParsePSI(f *testing.F) {
	for _, tc := range psiCases(f) {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := ParseSection(data); err == nil {
			if n, _ := SectionLen(data); len(s.Data) != n-12 {
				t.Fatalf("section data %d bytes for a %d-byte section", len(s.Data), n)
			}
		}
		if pat, err := ParsePAT(data); err == nil {
			again, err := ParsePAT(pat.AppendSection(nil))
			if err != nil || !reflect.DeepEqual(pat, again) {
				t.Fatalf("PAT round trip: %v\n%+v\n%+v", err, pat, again)
			}
		}
		if pmt, err := ParsePMT(data); err == nil {
			again, err := ParsePMT(pmt.AppendSection(nil))
			if err != nil || !reflect.DeepEqual(pmt, again) {
				t.Fatalf("PMT round trip: %v\n%+v\n%+v", err, pmt, again)
			}
		}
	})
}
