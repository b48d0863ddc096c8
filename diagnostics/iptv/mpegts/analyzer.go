package mpegts

import (
	"bytes"
	"errors"
	"maps"
	"slices"
)

// PIDStats counts what the Analyzer saw on one PID.
type PIDStats struct {
	// Packets is how many valid packets carried the PID, duplicates included.
	Packets uint64
	// CCErrors counts continuity counter errors: gaps (lost packets), a
	// packet seen more than twice, or a repeated counter with new contents.
	CCErrors uint64
	// Lost is how many packets the gaps imply were lost (the gap modulo 16,
	// so a burst of 16 or more losses is undercounted).
	Lost uint64
	// Duplicates counts packets sent twice in a row, which the standard allows once.
	Duplicates uint64
	// Discontinuities counts packets whose discontinuity_indicator was set.
	Discontinuities uint64
	// TransportErrors counts packets with transport_error_indicator set.
	TransportErrors uint64
	// PCRs counts packets carrying a PCR.
	PCRs uint64
}

// Summary is a snapshot of an Analyzer.
type Summary struct {
	// Packets is how many valid packets were fed.
	Packets uint64
	// Invalid is how many packets ParsePacket rejected.
	Invalid uint64
	// CCErrors, Lost and Duplicates add up the PIDStats fields of every PID.
	CCErrors, Lost, Duplicates uint64
	// TransportErrors adds up the PIDStats field of every PID.
	TransportErrors uint64
	// CRCErrors counts PAT/PMT sections whose CRC-32 did not match.
	CRCErrors uint64
	// SectionErrors counts PAT/PMT sections that were otherwise malformed
	// or cut short by a continuity error.
	SectionErrors uint64
	// PAT is the last valid PAT; nil when none was seen.
	PAT *PAT
	// PMTs holds the last valid PMT of each program named by the PAT, by
	// ascending program number; empty when none was seen.
	PMTs []PMT
	// PCRPID is the PID whose PCRs time the stream: the PCR_PID of the
	// PAT's first program once its PMT is known, else the first PID seen
	// carrying a PCR. PCRPIDKnown is false when neither happened.
	PCRPID      uint16
	PCRPIDKnown bool
	// PCRs counts PCRs seen on PCRPID.
	PCRs uint64
	// PCRBitrate is the transport stream rate in bit/s implied by the
	// PCRs: packets between PCRs (lost ones included) over PCR time. It is
	// 0 when fewer than two consecutive PCRs were seen.
	PCRBitrate float64
	// PIDs holds the statistics of every PID seen.
	PIDs map[uint16]PIDStats
}

// pidState is the per-PID continuity state.
type pidState struct {
	stats   PIDStats
	haveCC  bool
	lastCC  uint8
	dupSeen bool
	last    [maxPayload]byte // payload of the last packet that advanced the counter
	lastLen int
}

// sectionAsm gathers a PSI section that spans packets.
type sectionAsm struct {
	buf    []byte
	active bool
}

// maxPCRGap is the longest gap between two PCRs that still counts towards
// the PCR bitrate; the standard demands a PCR at least every 100 ms.
const maxPCRGap = 2 * PCRClockHz

// Analyzer follows a transport stream packet by packet: per-PID continuity
// counters, PAT and PMT, and the PCR. The zero value is not usable; call
// NewAnalyzer. An Analyzer is not safe for concurrent use.
type Analyzer struct {
	pids    map[uint16]*pidState
	psi     map[uint16]*sectionAsm
	pmtPIDs map[uint16]uint16 // PMT PID → program number
	pmts    map[uint16]PMT    // program number → PMT

	packets, invalid, lost     uint64
	ccErrors, duplicates, tei  uint64
	crcErrors, sectionErrors   uint64
	pat                        *PAT
	pcrPID                     uint16
	pcrPIDKnown, pcrPIDFromPMT bool
	pcrs                       uint64
	havePCR                    bool
	lastPCR                    PCR
	lastPCRPos                 uint64
	sumPCRTicks, sumPCRPackets uint64
}

// NewAnalyzer returns an Analyzer that has seen nothing.
func NewAnalyzer() *Analyzer {
	return &Analyzer{
		pids:    make(map[uint16]*pidState),
		psi:     map[uint16]*sectionAsm{PIDPAT: {}},
		pmtPIDs: make(map[uint16]uint16),
		pmts:    make(map[uint16]PMT),
	}
}

// Feed parses one 188-byte packet and updates the statistics. It returns
// ParsePacket's error for an invalid packet, which is counted in
// Summary.Invalid and otherwise ignored.
func (a *Analyzer) Feed(b []byte) error {
	p, err := ParsePacket(b)
	if err != nil {
		a.invalid++
		return err
	}
	a.packets++
	s := a.pids[p.PID]
	if s == nil {
		s = &pidState{}
		a.pids[p.PID] = s
	}
	s.stats.Packets++
	if p.TransportError {
		s.stats.TransportErrors++
		a.tei++
	}
	if p.Adaptation.Discontinuity {
		s.stats.Discontinuities++
	}
	lost, ccErr, dup := s.continuity(p)
	if ccErr {
		s.stats.CCErrors++
		a.ccErrors++
		s.stats.Lost += uint64(lost)
		a.lost += uint64(lost)
	}
	if dup {
		s.stats.Duplicates++
		a.duplicates++
	}
	if p.Adaptation.HasPCR {
		s.stats.PCRs++
		a.onPCR(p)
	}
	if asm, ok := a.psi[p.PID]; ok && p.HasPayload && !dup {
		if ccErr || p.Adaptation.Discontinuity {
			asm.active = false // the section in progress lost bytes
			if ccErr && len(asm.buf) > 0 {
				a.sectionErrors++
			}
			asm.buf = asm.buf[:0]
		}
		a.onPSI(p, asm)
	}
	return nil
}

// Lost returns how many packets the continuity counters say were lost so far.
func (a *Analyzer) Lost() uint64 { return a.lost }

// Packets returns how many valid packets were fed so far.
func (a *Analyzer) Packets() uint64 { return a.packets }

// continuity checks p's counter against the PID's state (ISO/IEC 13818-1
// 2.4.3.3) and advances it. Null packets and packets without payload do not
// take part; a discontinuity_indicator restarts the count.
func (s *pidState) continuity(p Packet) (lost int, ccErr, dup bool) {
	if p.PID == PIDNull {
		return 0, false, false
	}
	if !p.HasPayload {
		if p.Adaptation.Discontinuity {
			s.haveCC = false // the next payload packet may start anywhere
		}
		return 0, false, false
	}
	defer func() {
		if !dup {
			s.lastLen = copy(s.last[:], p.Payload)
		}
	}()
	if !s.haveCC || p.Adaptation.Discontinuity {
		s.haveCC, s.lastCC, s.dupSeen = true, p.CC, false
		return 0, false, false
	}
	expected := (s.lastCC + 1) & 0x0F
	switch {
	case p.CC == expected:
		s.lastCC, s.dupSeen = p.CC, false
		return 0, false, false
	case p.CC == s.lastCC && bytes.Equal(p.Payload, s.last[:s.lastLen]):
		if s.dupSeen {
			return 0, true, true // a third copy: counted, nothing lost
		}
		s.dupSeen = true
		return 0, false, true
	}
	lost = int((p.CC - expected) & 0x0F)
	s.lastCC, s.dupSeen = p.CC, false
	return lost, true, false
}

// onPCR records a PCR sample on the PCR PID.
func (a *Analyzer) onPCR(p Packet) {
	if !a.pcrPIDKnown {
		a.pcrPID, a.pcrPIDKnown = p.PID, true
	}
	if p.PID != a.pcrPID {
		return
	}
	a.pcrs++
	pos := a.packets + a.invalid + a.lost - 1 // index of p in the sent stream
	pcr := p.Adaptation.PCR
	if a.havePCR && !p.Adaptation.Discontinuity {
		d := pcr.Sub(a.lastPCR)
		if d > 0 && d <= maxPCRGap && pos > a.lastPCRPos {
			a.sumPCRTicks += uint64(d)
			a.sumPCRPackets += pos - a.lastPCRPos
		}
	}
	a.havePCR, a.lastPCR, a.lastPCRPos = true, pcr, pos
}

// setPCRPID switches PCR timing to pid, dropping samples from another PID.
func (a *Analyzer) setPCRPID(pid uint16) {
	if a.pcrPIDKnown && a.pcrPID == pid {
		a.pcrPIDFromPMT = true
		return
	}
	a.pcrPID, a.pcrPIDKnown, a.pcrPIDFromPMT = pid, true, true
	a.pcrs, a.havePCR, a.sumPCRTicks, a.sumPCRPackets = 0, false, 0, 0
}

// onPSI gathers PSI sections from p's payload (ISO/IEC 13818-1 2.4.4.2).
func (a *Analyzer) onPSI(p Packet, asm *sectionAsm) {
	d := p.Payload
	if p.PUSI {
		if len(d) == 0 {
			a.sectionErrors++
			return
		}
		ptr := int(d[0])
		d = d[1:]
		if ptr > len(d) {
			a.sectionErrors++
			asm.active, asm.buf = false, asm.buf[:0]
			return
		}
		if asm.active {
			asm.buf = append(asm.buf, d[:ptr]...)
			a.flushSections(p.PID, asm, true)
		}
		asm.buf = append(asm.buf[:0], d[ptr:]...)
		asm.active = true
	} else {
		if !asm.active {
			return
		}
		asm.buf = append(asm.buf, d...)
	}
	a.flushSections(p.PID, asm, false)
}

// flushSections handles every complete section at the start of asm.buf.
// With final set, an incomplete remainder is an error (a new section
// started before it ended).
func (a *Analyzer) flushSections(pid uint16, asm *sectionAsm, final bool) {
	for asm.active {
		if len(asm.buf) == 0 || asm.buf[0] == 0xFF { // stuffing up to the packet's end
			asm.active, asm.buf = false, asm.buf[:0]
			return
		}
		n, err := SectionLen(asm.buf)
		if err != nil {
			// Either more bytes are to come, or section_length is out of
			// range, or (final) the section was cut short by a new one.
			tooLong := len(asm.buf) >= 3 && int(asm.buf[1]&0x0F)<<8|int(asm.buf[2]) > maxSectionLength
			if tooLong || final {
				a.sectionErrors++
				asm.active, asm.buf = false, asm.buf[:0]
			}
			return
		}
		a.onSection(pid, asm.buf[:n])
		asm.buf = append(asm.buf[:0], asm.buf[n:]...)
	}
}

// onSection parses one complete section found on a PAT or PMT PID.
func (a *Analyzer) onSection(pid uint16, b []byte) {
	s, err := ParseSection(b)
	switch {
	case errors.Is(err, ErrCRC):
		a.crcErrors++
		return
	case err != nil:
		a.sectionErrors++
		return
	case !s.CurrentNext:
		return
	}
	b = bytes.Clone(b) // the tables outlive the assembly buffer
	if pid == PIDPAT {
		if s.TableID != TableIDPAT {
			return
		}
		pat, err := ParsePAT(b)
		if err != nil {
			a.sectionErrors++
			return
		}
		a.onPAT(pat)
		return
	}
	prog, ok := a.pmtPIDs[pid]
	if !ok || s.TableID != TableIDPMT || s.TableIDExtension != prog {
		return // other tables may share a PMT PID
	}
	pmt, err := ParsePMT(b)
	if err != nil {
		a.sectionErrors++
		return
	}
	a.pmts[prog] = pmt
	if prog == a.firstProgram() {
		a.setPCRPID(pmt.PCRPID)
	}
}

// onPAT installs a new PAT and follows its PMT PIDs.
func (a *Analyzer) onPAT(pat PAT) {
	a.pat = &pat
	want := pat.PMTPIDs()
	for pid, prog := range a.pmtPIDs {
		if want[prog] != pid {
			delete(a.pmtPIDs, pid)
			delete(a.psi, pid)
			delete(a.pmts, prog)
		}
	}
	for prog, pid := range want {
		if pid == PIDPAT {
			continue // a PMT cannot share the PAT's PID
		}
		if _, ok := a.pmtPIDs[pid]; !ok {
			a.pmtPIDs[pid] = prog
			a.psi[pid] = &sectionAsm{}
		}
	}
}

// firstProgram is the first non-zero program number of the PAT, or 0.
func (a *Analyzer) firstProgram() uint16 {
	if a.pat == nil {
		return 0
	}
	for _, pr := range a.pat.Programs {
		if pr.Number != 0 {
			return pr.Number
		}
	}
	return 0
}

// Summary returns a snapshot of everything seen so far; it shares no memory
// with the Analyzer.
func (a *Analyzer) Summary() Summary {
	s := Summary{
		Packets:         a.packets,
		Invalid:         a.invalid,
		CCErrors:        a.ccErrors,
		Lost:            a.lost,
		Duplicates:      a.duplicates,
		TransportErrors: a.tei,
		CRCErrors:       a.crcErrors,
		SectionErrors:   a.sectionErrors,
		PCRPID:          a.pcrPID,
		PCRPIDKnown:     a.pcrPIDKnown,
		PCRs:            a.pcrs,
		PIDs:            make(map[uint16]PIDStats, len(a.pids)),
	}
	if a.pat != nil {
		pat := clonePAT(*a.pat)
		s.PAT = &pat
	}
	for _, prog := range slices.Sorted(maps.Keys(a.pmts)) {
		s.PMTs = append(s.PMTs, clonePMT(a.pmts[prog]))
	}
	if a.sumPCRTicks > 0 {
		s.PCRBitrate = float64(a.sumPCRPackets) * PacketSize * 8 * PCRClockHz / float64(a.sumPCRTicks)
	}
	for pid, st := range a.pids {
		s.PIDs[pid] = st.stats
	}
	return s
}

func clonePAT(p PAT) PAT {
	p.Programs = slices.Clone(p.Programs)
	return p
}

func clonePMT(p PMT) PMT {
	p.Descriptors = bytes.Clone(p.Descriptors)
	p.Streams = slices.Clone(p.Streams)
	for i := range p.Streams {
		p.Streams[i].Descriptors = bytes.Clone(p.Streams[i].Descriptors)
	}
	return p
}
