package mpegts

import "fmt"

// Table IDs of the PSI sections this package parses.
const (
	// TableIDPAT is the program_association_section's table_id.
	TableIDPAT = 0x00
	// TableIDPMT is the TS_program_map_section's table_id.
	TableIDPMT = 0x02
)

// maxSectionLength is the largest section_length of PAT and PMT sections;
// longer ones are malformed.
const maxSectionLength = 1021

// crcTable is the byte-wise lookup table of CRC-32/MPEG-2 (polynomial
// 0x04C11DB7, not reflected). It is built once and never written again.
var crcTable = makeCRCTable()

func makeCRCTable() [256]uint32 {
	var t [256]uint32
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}

// CRC32 returns the CRC-32/MPEG-2 of b: polynomial 0x04C11DB7, initial value
// 0xFFFFFFFF, no reflection, no final XOR. Over a whole section including
// its CRC_32 field the result is 0.
func CRC32(b []byte) uint32 {
	c := uint32(0xFFFFFFFF)
	for _, v := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^v]
	}
	return c
}

// Section is one long-form PSI section (section_syntax_indicator 1).
type Section struct {
	// TableID identifies the table (TableIDPAT, TableIDPMT, ...).
	TableID uint8
	// TableIDExtension is transport_stream_id in a PAT, program_number in a PMT.
	TableIDExtension uint16
	// Version is the 5-bit version_number.
	Version uint8
	// CurrentNext is current_next_indicator: false means "not yet valid".
	CurrentNext bool
	// SectionNumber and LastSectionNumber place the section within its table.
	SectionNumber, LastSectionNumber uint8
	// Data is the section body between the header and the CRC_32; it
	// aliases the buffer given to ParseSection.
	Data []byte
}

// ParseSection parses one long-form PSI section that starts at b[0] and
// checks its CRC-32/MPEG-2. Bytes after the section (stuffing) are ignored;
// SectionLen tells how long it was. It fails with ErrSection (truncated,
// short form, or section_length out of range) or ErrCRC.
func ParseSection(b []byte) (Section, error) {
	n, err := SectionLen(b)
	if err != nil {
		return Section{}, err
	}
	b = b[:n]
	if b[1]&0x80 == 0 {
		return Section{}, fmt.Errorf("table_id 0x%02x is a short-form section: %w", b[0], ErrSection)
	}
	if n < 12 { // 8 header bytes after table_id..section_length, 4 CRC
		return Section{}, fmt.Errorf("section_length %d too short for a long-form section: %w", n-3, ErrSection)
	}
	if c := CRC32(b); c != 0 {
		return Section{}, fmt.Errorf("table_id 0x%02x: stored 0x%08x: %w", b[0], uint32(b[n-4])<<24|uint32(b[n-3])<<16|uint32(b[n-2])<<8|uint32(b[n-1]), ErrCRC)
	}
	return Section{
		TableID:           b[0],
		TableIDExtension:  uint16(b[3])<<8 | uint16(b[4]),
		Version:           (b[5] >> 1) & 0x1F,
		CurrentNext:       b[5]&0x01 != 0,
		SectionNumber:     b[6],
		LastSectionNumber: b[7],
		Data:              b[8 : n-4 : n-4],
	}, nil
}

// SectionLen returns the total length (3 + section_length) of the section
// starting at b[0], failing with ErrSection when b is shorter than that or
// section_length exceeds 1021.
func SectionLen(b []byte) (int, error) {
	if len(b) < 3 {
		return 0, fmt.Errorf("%d bytes, need 3 for a section header: %w", len(b), ErrSection)
	}
	l := int(b[1]&0x0F)<<8 | int(b[2])
	if l > maxSectionLength {
		return 0, fmt.Errorf("section_length %d > %d: %w", l, maxSectionLength, ErrSection)
	}
	if len(b) < 3+l {
		return 0, fmt.Errorf("section_length %d, %d bytes present: %w", l, len(b)-3, ErrSection)
	}
	return 3 + l, nil
}

// Program is one entry of a PAT.
type Program struct {
	// Number is the program_number; 0 means PID is the network (NIT) PID.
	Number uint16
	// PID is the program_map_PID (or network_PID for program 0).
	PID uint16
}

// PAT is a program association table (one section).
type PAT struct {
	// TransportStreamID is the transport_stream_id.
	TransportStreamID uint16
	// Version is the 5-bit version_number.
	Version uint8
	// Programs lists the programs in section order, program 0 (NIT) included.
	Programs []Program
}

// PMTPIDs returns the PMT PID of every program other than 0, by program number.
func (p PAT) PMTPIDs() map[uint16]uint16 {
	m := make(map[uint16]uint16, len(p.Programs))
	for _, pr := range p.Programs {
		if pr.Number != 0 {
			m[pr.Number] = pr.PID
		}
	}
	return m
}

// ParsePAT parses a program_association_section. It fails like ParseSection,
// with ErrTableID for another table and ErrSection for a program loop that
// is not a multiple of 4 bytes.
func ParsePAT(b []byte) (PAT, error) {
	s, err := ParseSection(b)
	if err != nil {
		return PAT{}, fmt.Errorf("pat: %w", err)
	}
	if s.TableID != TableIDPAT {
		return PAT{}, fmt.Errorf("pat: table_id 0x%02x: %w", s.TableID, ErrTableID)
	}
	if len(s.Data)%4 != 0 {
		return PAT{}, fmt.Errorf("pat: program loop of %d bytes is not a multiple of 4: %w", len(s.Data), ErrSection)
	}
	pat := PAT{TransportStreamID: s.TableIDExtension, Version: s.Version, Programs: make([]Program, 0, len(s.Data)/4)}
	for d := s.Data; len(d) >= 4; d = d[4:] {
		pat.Programs = append(pat.Programs, Program{
			Number: uint16(d[0])<<8 | uint16(d[1]),
			PID:    uint16(d[2]&0x1F)<<8 | uint16(d[3]),
		})
	}
	return pat, nil
}

// AppendSection encodes p as one program_association_section (current,
// section 0 of 0) with its CRC and appends it to dst.
func (p PAT) AppendSection(dst []byte) []byte {
	body := make([]byte, 0, 4*len(p.Programs))
	for _, pr := range p.Programs {
		body = append(body, byte(pr.Number>>8), byte(pr.Number), 0xE0|byte(pr.PID>>8)&0x1F, byte(pr.PID))
	}
	return appendSection(dst, TableIDPAT, p.TransportStreamID, p.Version, body)
}

// ElementaryStream is one entry of a PMT's stream loop.
type ElementaryStream struct {
	// Type is the stream_type (0x02 MPEG-2 video, 0x1B H.264, 0x24 HEVC,
	// 0x03/0x04 MPEG audio, 0x0F AAC, ...).
	Type uint8
	// PID is the elementary_PID.
	PID uint16
	// Descriptors is the raw ES_info descriptor loop; it aliases the parsed buffer.
	Descriptors []byte
}

// PMT is a program map table (one section).
type PMT struct {
	// ProgramNumber is the program_number.
	ProgramNumber uint16
	// Version is the 5-bit version_number.
	Version uint8
	// PCRPID is the PID carrying the program's PCR; PIDNull means none.
	PCRPID uint16
	// Descriptors is the raw program_info descriptor loop.
	Descriptors []byte
	// Streams lists the elementary streams in section order.
	Streams []ElementaryStream
}

// ParsePMT parses a TS_program_map_section. It fails like ParseSection, with
// ErrTableID for another table and ErrSection for descriptor or stream loops
// that overrun the section.
func ParsePMT(b []byte) (PMT, error) {
	s, err := ParseSection(b)
	if err != nil {
		return PMT{}, fmt.Errorf("pmt: %w", err)
	}
	if s.TableID != TableIDPMT {
		return PMT{}, fmt.Errorf("pmt: table_id 0x%02x: %w", s.TableID, ErrTableID)
	}
	d := s.Data
	if len(d) < 4 {
		return PMT{}, fmt.Errorf("pmt: %d body bytes, need 4: %w", len(d), ErrSection)
	}
	pmt := PMT{
		ProgramNumber: s.TableIDExtension,
		Version:       s.Version,
		PCRPID:        uint16(d[0]&0x1F)<<8 | uint16(d[1]),
	}
	infoLen := int(d[2]&0x0F)<<8 | int(d[3])
	d = d[4:]
	if infoLen > len(d) {
		return PMT{}, fmt.Errorf("pmt: program_info_length %d overruns %d bytes: %w", infoLen, len(d), ErrSection)
	}
	pmt.Descriptors = d[:infoLen:infoLen]
	d = d[infoLen:]
	for len(d) > 0 {
		if len(d) < 5 {
			return PMT{}, fmt.Errorf("pmt: %d trailing bytes in the stream loop: %w", len(d), ErrSection)
		}
		es := ElementaryStream{Type: d[0], PID: uint16(d[1]&0x1F)<<8 | uint16(d[2])}
		l := int(d[3]&0x0F)<<8 | int(d[4])
		d = d[5:]
		if l > len(d) {
			return PMT{}, fmt.Errorf("pmt: ES_info_length %d of pid 0x%04x overruns %d bytes: %w", l, es.PID, len(d), ErrSection)
		}
		es.Descriptors = d[:l:l]
		d = d[l:]
		pmt.Streams = append(pmt.Streams, es)
	}
	return pmt, nil
}

// AppendSection encodes p as one TS_program_map_section (current, section 0
// of 0) with its CRC and appends it to dst.
func (p PMT) AppendSection(dst []byte) []byte {
	body := []byte{0xE0 | byte(p.PCRPID>>8)&0x1F, byte(p.PCRPID), 0xF0 | byte(len(p.Descriptors)>>8)&0x0F, byte(len(p.Descriptors))}
	body = append(body, p.Descriptors...)
	for _, es := range p.Streams {
		body = append(body, es.Type, 0xE0|byte(es.PID>>8)&0x1F, byte(es.PID), 0xF0|byte(len(es.Descriptors)>>8)&0x0F, byte(len(es.Descriptors)))
		body = append(body, es.Descriptors...)
	}
	return appendSection(dst, TableIDPMT, p.ProgramNumber, p.Version, body)
}

// appendSection writes a long-form section header, body and CRC_32.
func appendSection(dst []byte, tableID uint8, ext uint16, version uint8, body []byte) []byte {
	start := len(dst)
	l := 5 + len(body) + 4 // header after section_length, body, CRC
	dst = append(dst,
		tableID,
		0xB0|byte(l>>8)&0x0F, byte(l), // syntax 1, '0', reserved 11
		byte(ext>>8), byte(ext),
		0xC0|(version&0x1F)<<1|0x01, // reserved 11, version, current_next 1
		0, 0,                        // section 0 of 0
	)
	dst = append(dst, body...)
	c := CRC32(dst[start:])
	return append(dst, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
}
