package mpegts

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCRC32(t *testing.T) {
	// The catalogue check value of CRC-32/MPEG-2.
	if got := CRC32([]byte("123456789")); got != 0x0376E6E7 {
		t.Errorf("CRC32(123456789) = 0x%08x, want 0x0376e6e7", got)
	}
	if got := CRC32(nil); got != 0xFFFFFFFF {
		t.Errorf("CRC32(nil) = 0x%08x, want the initial value", got)
	}
}

// ffmpegPAT is the PAT section that ffmpeg's muxer writes by default
// (transport_stream_id 1, program 1 on PMT PID 0x1000).
const ffmpegPAT = "00b00d0001c100000001f0002ab104b2"

func TestPATAppendMatchesKnownSection(t *testing.T) {
	pat := PAT{TransportStreamID: 1, Programs: []Program{{Number: 1, PID: 0x1000}}}
	if got := hex.EncodeToString(pat.AppendSection(nil)); got != ffmpegPAT {
		t.Errorf("AppendSection = %s, want %s", got, ffmpegPAT)
	}
}

// psiCases are the section parser table cases; they also seed FuzzParsePSI.
func psiCases(t testing.TB) []struct {
	name string
	in   []byte
	pat  *PAT
	pmt  *PMT
	err  error
} {
	pmt := PMT{ProgramNumber: 7, Version: 3, PCRPID: 0x101, Descriptors: []byte{0x09, 0x04, 0x0B, 0x00, 0xE0, 0x20},
		Streams: []ElementaryStream{
			{Type: 0x1B, PID: 0x101, Descriptors: []byte{}},
			{Type: 0x0F, PID: 0x102, Descriptors: []byte{0x0A, 0x04, 'c', 'h', 'i', 0}},
		}}
	pmtBytes := pmt.AppendSection(nil)
	badCRC := bytes.Clone(pmtBytes)
	badCRC[len(badCRC)-1] ^= 1
	flipped := bytes.Clone(pmtBytes)
	flipped[10] ^= 0x40
	pat := PAT{TransportStreamID: 0x42, Version: 31, Programs: []Program{{Number: 0, PID: 0x10}, {Number: 1, PID: 0x1000}, {Number: 2, PID: 0x1001}}}
	oddLoop := appendSection(nil, TableIDPAT, 1, 0, []byte{0, 1, 0xF0})
	overrun := appendSection(nil, TableIDPMT, 1, 0, []byte{0xE1, 0x00, 0xF0, 0x10, 1, 2})
	esOverrun := appendSection(nil, TableIDPMT, 1, 0, []byte{0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x09, 1})
	esTrailing := appendSection(nil, TableIDPMT, 1, 0, []byte{0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1})
	shortPMT := appendSection(nil, TableIDPMT, 1, 0, []byte{0xE1})
	return []struct {
		name string
		in   []byte
		pat  *PAT
		pmt  *PMT
		err  error
	}{
		{name: "ffmpeg pat", in: unhex(t, ffmpegPAT), pat: &PAT{TransportStreamID: 1, Programs: []Program{{Number: 1, PID: 0x1000}}}},
		{name: "pat with nit and stuffing after", in: append(pat.AppendSection(nil), 0xFF, 0xFF), pat: &pat},
		{name: "pmt", in: pmtBytes, pmt: &pmt},
		{name: "pmt crc flipped", in: badCRC, err: ErrCRC},
		{name: "pmt body bit flipped", in: flipped, err: ErrCRC},
		{name: "truncated", in: pmtBytes[:len(pmtBytes)-1], err: ErrSection},
		{name: "two bytes", in: []byte{0, 0xB0}, err: ErrSection},
		{name: "section_length too large", in: append([]byte{0x02, 0xB3, 0xFF}, make([]byte, 1023)...), err: ErrSection},
		{name: "short form", in: []byte{0x02, 0x30, 0x04, 1, 2, 3, 4}, err: ErrSection},
		{name: "long form too short", in: []byte{0x02, 0xB0, 0x04, 1, 2, 3, 4}, err: ErrSection},
		{name: "pat loop not multiple of 4", in: oddLoop, err: ErrSection},
		{name: "program_info overruns", in: overrun, err: ErrSection},
		{name: "es_info overruns", in: esOverrun, err: ErrSection},
		{name: "stream loop trailing bytes", in: esTrailing, err: ErrSection},
		{name: "pmt body too short", in: shortPMT, err: ErrSection},
	}
}

func TestParsePSI(t *testing.T) {
	for _, tc := range psiCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch {
			case tc.pat != nil:
				var got PAT
				got, err = ParsePAT(tc.in)
				if err == nil && !reflect.DeepEqual(got, *tc.pat) {
					t.Errorf("ParsePAT = %+v, want %+v", got, *tc.pat)
				}
			case tc.pmt != nil:
				var got PMT
				got, err = ParsePMT(tc.in)
				if err == nil && !reflect.DeepEqual(got, *tc.pmt) {
					t.Errorf("ParsePMT = %+v, want %+v", got, *tc.pmt)
				}
			case len(tc.in) > 0 && tc.in[0] == TableIDPAT:
				_, err = ParsePAT(tc.in)
			default:
				_, err = ParsePMT(tc.in)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestParseWrongTable(t *testing.T) {
	pat := PAT{Programs: []Program{{Number: 1, PID: 0x100}}}.AppendSection(nil)
	if _, err := ParsePMT(pat); !errors.Is(err, ErrTableID) {
		t.Errorf("ParsePMT(pat) err = %v, want ErrTableID", err)
	}
	pmt := PMT{ProgramNumber: 1, PCRPID: 0x100}.AppendSection(nil)
	if _, err := ParsePAT(pmt); !errors.Is(err, ErrTableID) {
		t.Errorf("ParsePAT(pmt) err = %v, want ErrTableID", err)
	}
}

func TestParseSectionHeader(t *testing.T) {
	b := appendSection(nil, 0x42, 0xBEEF, 9, []byte{1, 2, 3})
	b[5] &^= 1 // current_next 0: recompute the CRC
	b = append(b[:len(b)-4], 0, 0, 0, 0)
	c := CRC32(b[:len(b)-4])
	b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	s, err := ParseSection(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Section{TableID: 0x42, TableIDExtension: 0xBEEF, Version: 9, CurrentNext: false, Data: []byte{1, 2, 3}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v, want %+v", s, want)
	}
}
