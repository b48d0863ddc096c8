package mpegts

import (
	"bytes"
	"errors"
	"testing"
)

// step is one packet of a continuity scenario on PID 0x100.
type step struct {
	cc      uint8
	fill    byte // payload contents; equal fill and cc make a duplicate
	noData  bool // adaptation field only
	discont bool
}

func ccPacket(t testing.TB, s step) []byte {
	p := Packet{PID: 0x100, CC: s.cc, Adaptation: Adaptation{Discontinuity: s.discont}}
	if s.noData {
		p.HasAdaptation = true
	} else {
		p.Payload = bytes.Repeat([]byte{s.fill}, 170)
	}
	return mustAppend(t, p)
}

// seq makes payload packets with the given counters, each with new contents.
func seq(ccs ...uint8) []step {
	s := make([]step, len(ccs))
	for i, cc := range ccs {
		s[i] = step{cc: cc, fill: byte(i)}
	}
	return s
}

func TestContinuity(t *testing.T) {
	tests := []struct {
		name                   string
		steps                  []step
		ccErrors, lost, dups   uint64
		packets, discontinuity uint64
	}{
		{name: "in order with wrap", steps: seq(13, 14, 15, 0, 1, 2), packets: 6},
		{name: "one lost", steps: seq(1, 2, 4, 5), packets: 4, ccErrors: 1, lost: 1},
		{name: "three lost across the wrap", steps: seq(14, 15, 3), packets: 3, ccErrors: 1, lost: 3},
		{name: "two gaps", steps: seq(0, 2, 3, 7), packets: 4, ccErrors: 2, lost: 1 + 3},
		{name: "first packet sets the counter", steps: seq(9, 10), packets: 2},
		{
			name:    "duplicate allowed once",
			steps:   []step{{cc: 1, fill: 1}, {cc: 2, fill: 2}, {cc: 2, fill: 2}, {cc: 3, fill: 3}},
			packets: 4, dups: 1,
		},
		{
			name:    "third copy is an error but loses nothing",
			steps:   []step{{cc: 1, fill: 1}, {cc: 2, fill: 2}, {cc: 2, fill: 2}, {cc: 2, fill: 2}, {cc: 3, fill: 3}},
			packets: 5, dups: 2, ccErrors: 1,
		},
		{
			name:    "same counter with new contents is a gap of 15",
			steps:   []step{{cc: 1, fill: 1}, {cc: 2, fill: 2}, {cc: 2, fill: 9}, {cc: 3, fill: 3}},
			packets: 4, ccErrors: 1, lost: 15,
		},
		{
			name:    "no payload does not advance the counter",
			steps:   []step{{cc: 4, fill: 1}, {cc: 4, noData: true}, {cc: 5, fill: 2}, {cc: 5, noData: true}, {cc: 6, fill: 3}},
			packets: 5,
		},
		{
			name:    "discontinuity indicator allows a jump",
			steps:   []step{{cc: 4, fill: 1}, {cc: 11, fill: 2, discont: true}, {cc: 12, fill: 3}},
			packets: 3, discontinuity: 1,
		},
		{
			name:    "discontinuity in an adaptation-only packet",
			steps:   []step{{cc: 4, fill: 1}, {cc: 4, noData: true, discont: true}, {cc: 0, fill: 2}, {cc: 1, fill: 3}},
			packets: 4, discontinuity: 1,
		},
		{
			name:    "a jump without the indicator",
			steps:   []step{{cc: 4, fill: 1}, {cc: 11, fill: 2}, {cc: 12, fill: 3}},
			packets: 3, ccErrors: 1, lost: 6,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAnalyzer()
			for i, s := range tc.steps {
				if err := a.Feed(ccPacket(t, s)); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
			}
			sum := a.Summary()
			st := sum.PIDs[0x100]
			if st.Packets != tc.packets || st.CCErrors != tc.ccErrors || st.Lost != tc.lost || st.Duplicates != tc.dups || st.Discontinuities != tc.discontinuity {
				t.Errorf("pid stats %+v, want packets %d cc errors %d lost %d duplicates %d discontinuities %d",
					st, tc.packets, tc.ccErrors, tc.lost, tc.dups, tc.discontinuity)
			}
			if sum.CCErrors != tc.ccErrors || sum.Lost != tc.lost || a.Lost() != tc.lost || sum.Duplicates != tc.dups || a.Packets() != tc.packets {
				t.Errorf("summary %+v disagrees with the pid stats", sum)
			}
		})
	}
}

func TestNullPacketsHaveNoContinuity(t *testing.T) {
	a := NewAnalyzer()
	for _, cc := range []uint8{0, 0, 0, 7, 3} {
		if err := a.Feed(mustAppend(t, Packet{PID: PIDNull, CC: cc, Payload: make([]byte, 184)})); err != nil {
			t.Fatal(err)
		}
	}
	if s := a.Summary(); s.CCErrors != 0 || s.PIDs[PIDNull].Packets != 5 {
		t.Errorf("null packets: %+v", s.PIDs[PIDNull])
	}
}

func TestInvalidPacketsAreCounted(t *testing.T) {
	a := NewAnalyzer()
	bad := mustAppend(t, Packet{PID: 0x100, Payload: make([]byte, 184)})
	bad[0] = 0x00
	if err := a.Feed(bad); !errors.Is(err, ErrSync) {
		t.Errorf("Feed(bad sync) = %v, want ErrSync", err)
	}
	if err := a.Feed(bad[:100]); !errors.Is(err, ErrPacketSize) {
		t.Errorf("Feed(short) = %v, want ErrPacketSize", err)
	}
	if s := a.Summary(); s.Invalid != 2 || s.Packets != 0 {
		t.Errorf("invalid %d packets %d, want 2 and 0", s.Invalid, s.Packets)
	}
}

// psiPackets splits sections (each written after the previous, as in a
// table with several sections) into packets on pid, starting at cc.
func psiPackets(t testing.TB, pid uint16, cc uint8, data []byte) [][]byte {
	var out [][]byte
	first := true
	for first || len(data) > 0 {
		var payload []byte
		if first {
			payload = append(payload, 0) // pointer_field
		}
		n := min(maxPayload-len(payload), len(data))
		payload = append(payload, data[:n]...)
		data = data[n:]
		for len(payload) < maxPayload {
			payload = append(payload, 0xFF)
		}
		out = append(out, mustAppend(t, Packet{PUSI: first, PID: pid, CC: cc, Payload: payload}))
		cc = (cc + 1) & 0x0F
		first = false
	}
	return out
}

func feedAll(t testing.TB, a *Analyzer, pkts [][]byte) {
	t.Helper()
	for i, p := range pkts {
		if err := a.Feed(p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
}

func TestAnalyzerTables(t *testing.T) {
	pat := PAT{TransportStreamID: 9, Programs: []Program{{Number: 0, PID: 0x10}, {Number: 5, PID: 0x1000}, {Number: 6, PID: 0x1001}}}
	// A PMT with a long descriptor loop spans three packets.
	pmt5 := PMT{ProgramNumber: 5, PCRPID: 0x150, Descriptors: bytes.Repeat([]byte{0x05, 0x04, 'H', 'D', 'M', 'V'}, 60),
		Streams: []ElementaryStream{{Type: 0x1B, PID: 0x150, Descriptors: []byte{}}, {Type: 0x03, PID: 0x151, Descriptors: []byte{}}}}
	pmt6 := PMT{ProgramNumber: 6, PCRPID: 0x160, Streams: []ElementaryStream{{Type: 0x02, PID: 0x160, Descriptors: []byte{}}}}

	a := NewAnalyzer()
	feedAll(t, a, psiPackets(t, PIDPAT, 0, pat.AppendSection(nil)))
	long := psiPackets(t, 0x1000, 0, pmt5.AppendSection(nil))
	if len(long) < 3 {
		t.Fatalf("pmt spans %d packets, want ≥ 3", len(long))
	}
	feedAll(t, a, long)
	feedAll(t, a, psiPackets(t, 0x1001, 0, pmt6.AppendSection(nil)))

	s := a.Summary()
	if s.PAT == nil || len(s.PAT.Programs) != 3 || s.PAT.TransportStreamID != 9 {
		t.Fatalf("PAT = %+v", s.PAT)
	}
	if len(s.PMTs) != 2 || s.PMTs[0].ProgramNumber != 5 || s.PMTs[1].ProgramNumber != 6 {
		t.Fatalf("PMTs = %+v", s.PMTs)
	}
	if !bytes.Equal(s.PMTs[0].Descriptors, pmt5.Descriptors) || len(s.PMTs[0].Streams) != 2 {
		t.Errorf("multi-packet PMT parsed as %+v", s.PMTs[0])
	}
	if !s.PCRPIDKnown || s.PCRPID != 0x150 {
		t.Errorf("PCR PID %#x known %v, want the first program's 0x150", s.PCRPID, s.PCRPIDKnown)
	}
	if s.CRCErrors != 0 || s.SectionErrors != 0 {
		t.Errorf("crc errors %d section errors %d, want none", s.CRCErrors, s.SectionErrors)
	}
}

func TestAnalyzerSectionsInOnePacket(t *testing.T) {
	// Packet 1 starts a PAT section; packet 2 ends it and starts the next
	// version in the same payload, the pointer_field skipping the tail.
	pat1 := PAT{TransportStreamID: 1, Programs: []Program{{Number: 1, PID: 0x1000}}}.AppendSection(nil)
	pat2 := PAT{TransportStreamID: 2, Version: 1, Programs: []Program{{Number: 2, PID: 0x1002}}}.AppendSection(nil)
	p1 := append([]byte{0}, pat1[:10]...) // padded by adaptation-field stuffing, not 0xFF
	rest := pat1[10:]
	p2 := append([]byte{byte(len(rest))}, rest...)
	p2 = append(p2, pat2...)
	p2 = append(p2, bytes.Repeat([]byte{0xFF}, maxPayload-len(p2))...)

	a := NewAnalyzer()
	feedAll(t, a, [][]byte{
		mustAppend(t, Packet{PUSI: true, PID: PIDPAT, Payload: p1}),
		mustAppend(t, Packet{PUSI: true, PID: PIDPAT, CC: 1, Payload: p2}),
	})
	s := a.Summary()
	if s.PAT == nil || s.PAT.TransportStreamID != 2 {
		t.Fatalf("PAT = %+v, want the second section", s.PAT)
	}
	if s.SectionErrors != 0 || s.CRCErrors != 0 {
		t.Errorf("section errors %d crc errors %d, want none", s.SectionErrors, s.CRCErrors)
	}

	// The same with the first section's tail lost: packet 2's new section
	// still parses and the cut one is counted.
	b := NewAnalyzer()
	p2short := append([]byte{2}, rest[:2]...)
	p2short = append(p2short, pat2...)
	feedAll(t, b, [][]byte{
		mustAppend(t, Packet{PUSI: true, PID: PIDPAT, Payload: p1}),
		mustAppend(t, Packet{PUSI: true, PID: PIDPAT, CC: 1, Payload: p2short}),
	})
	if s := b.Summary(); s.PAT == nil || s.PAT.TransportStreamID != 2 || s.SectionErrors != 1 {
		t.Errorf("PAT %+v section errors %d, want the second section and 1", s.PAT, s.SectionErrors)
	}
}

func TestAnalyzerBadSections(t *testing.T) {
	pat := PAT{Programs: []Program{{Number: 1, PID: 0x1000}}}.AppendSection(nil)
	corrupt := bytes.Clone(pat)
	corrupt[9] ^= 0xFF

	t.Run("crc error", func(t *testing.T) {
		a := NewAnalyzer()
		feedAll(t, a, psiPackets(t, PIDPAT, 0, corrupt))
		if s := a.Summary(); s.PAT != nil || s.CRCErrors != 1 {
			t.Errorf("PAT %+v crc errors %d, want none and 1", s.PAT, s.CRCErrors)
		}
	})
	t.Run("lost packet inside a section", func(t *testing.T) {
		long := PMT{ProgramNumber: 1, PCRPID: 0x100, Descriptors: make([]byte, 400)}.AppendSection(nil)
		a := NewAnalyzer()
		feedAll(t, a, psiPackets(t, PIDPAT, 0, pat))
		pkts := psiPackets(t, 0x1000, 0, long)
		feedAll(t, a, [][]byte{pkts[0], pkts[2]}) // pkts[1] lost
		s := a.Summary()
		if len(s.PMTs) != 0 || s.SectionErrors != 1 || s.CCErrors != 1 {
			t.Errorf("PMTs %d section errors %d cc errors %d, want 0, 1, 1", len(s.PMTs), s.SectionErrors, s.CCErrors)
		}
	})
	t.Run("pointer past the payload", func(t *testing.T) {
		a := NewAnalyzer()
		feedAll(t, a, [][]byte{mustAppend(t, Packet{PUSI: true, PID: PIDPAT, Payload: append([]byte{200}, make([]byte, 183)...)})})
		if s := a.Summary(); s.SectionErrors != 1 {
			t.Errorf("section errors %d, want 1", s.SectionErrors)
		}
	})
	t.Run("not current", func(t *testing.T) {
		next := appendSection(nil, TableIDPAT, 1, 0, []byte{0, 1, 0xF0, 0})
		next[5] &^= 1
		next = next[:len(next)-4]
		c := CRC32(next)
		next = append(next, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
		a := NewAnalyzer()
		feedAll(t, a, psiPackets(t, PIDPAT, 0, next))
		if s := a.Summary(); s.PAT != nil || s.CRCErrors+s.SectionErrors != 0 {
			t.Errorf("a next-version PAT was used or counted as bad: %+v", s)
		}
	})
}

func TestAnalyzerFollowsPATChanges(t *testing.T) {
	a := NewAnalyzer()
	feedAll(t, a, psiPackets(t, PIDPAT, 0, PAT{Programs: []Program{{Number: 1, PID: 0x1000}}}.AppendSection(nil)))
	feedAll(t, a, psiPackets(t, 0x1000, 0, PMT{ProgramNumber: 1, PCRPID: 0x100}.AppendSection(nil)))
	feedAll(t, a, psiPackets(t, PIDPAT, 1, PAT{Version: 1, Programs: []Program{{Number: 2, PID: 0x1001}}}.AppendSection(nil)))
	s := a.Summary()
	if len(s.PMTs) != 0 {
		t.Errorf("PMT of a program the new PAT dropped is still reported: %+v", s.PMTs)
	}
	feedAll(t, a, psiPackets(t, 0x1000, 1, PMT{ProgramNumber: 1, PCRPID: 0x100}.AppendSection(nil)))
	if s := a.Summary(); len(s.PMTs) != 0 {
		t.Errorf("a PMT on a PID the PAT no longer names was parsed: %+v", s.PMTs)
	}
}

func TestAnalyzerSummaryIsACopy(t *testing.T) {
	w, err := NewWriter(WriterConfig{Bitrate: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAnalyzer()
	for range 100 {
		if err := a.Feed(w.Next(nil)); err != nil {
			t.Fatal(err)
		}
	}
	s := a.Summary()
	s.PAT.Programs[0].PID = 0x1234
	s.PMTs[0].Streams[0].PID = 0x1234
	s2 := a.Summary()
	if s2.PAT.Programs[0].PID == 0x1234 || s2.PMTs[0].Streams[0].PID == 0x1234 {
		t.Error("changing a Summary changed the Analyzer")
	}
}
