package mpegts

import (
	"errors"
	"fmt"
	"time"
)

// ErrWriterConfig means a WriterConfig failed validation.
var ErrWriterConfig = errors.New("invalid mpeg-ts writer config")

// Defaults applied by NewWriter to zero WriterConfig fields.
const (
	// DefaultProgramNumber is the single program's number.
	DefaultProgramNumber uint16 = 1
	// DefaultPMTPID carries the PMT (ffmpeg's choice too).
	DefaultPMTPID uint16 = 0x1000
	// DefaultVideoPID carries the video and the PCR.
	DefaultVideoPID uint16 = 0x0100
	// DefaultStreamType is H.264 video, what iTV channels mostly carry.
	DefaultStreamType uint8 = 0x1B
	// DefaultPSIInterval is how often PAT and PMT repeat.
	DefaultPSIInterval = 100 * time.Millisecond
	// DefaultPCRInterval is how often a PCR is sent (the standard's limit is 100 ms).
	DefaultPCRInterval = 40 * time.Millisecond
)

// MinWriterBitrate is the lowest bitrate a Writer accepts: enough for the
// PSI and PCR packets at their longest intervals with room for video.
const MinWriterBitrate = 100_000

// WriterConfig configures a synthetic transport stream. Only Bitrate is required.
type WriterConfig struct {
	// Bitrate is the constant transport stream rate in bit/s (≥ MinWriterBitrate).
	Bitrate int
	// TransportStreamID goes into the PAT (0 is allowed).
	TransportStreamID uint16
	// ProgramNumber is the single program's number; 0 means DefaultProgramNumber.
	ProgramNumber uint16
	// PMTPID carries the PMT; 0 means DefaultPMTPID.
	PMTPID uint16
	// VideoPID carries the video elementary stream and the PCR; 0 means DefaultVideoPID.
	VideoPID uint16
	// StreamType is the video stream_type in the PMT; 0 means DefaultStreamType.
	StreamType uint8
	// PSIInterval is how often PAT and PMT repeat; 0 means DefaultPSIInterval.
	PSIInterval time.Duration
	// PCRInterval is how often the video PID carries a PCR; 0 means
	// DefaultPCRInterval. At most 100 ms (the standard's limit).
	PCRInterval time.Duration
	// InitialPCR is the PCR of the stream's first byte.
	InitialPCR PCR
}

func (c WriterConfig) withDefaults() WriterConfig {
	if c.ProgramNumber == 0 {
		c.ProgramNumber = DefaultProgramNumber
	}
	if c.PMTPID == 0 {
		c.PMTPID = DefaultPMTPID
	}
	if c.VideoPID == 0 {
		c.VideoPID = DefaultVideoPID
	}
	if c.StreamType == 0 {
		c.StreamType = DefaultStreamType
	}
	if c.PSIInterval == 0 {
		c.PSIInterval = DefaultPSIInterval
	}
	if c.PCRInterval == 0 {
		c.PCRInterval = DefaultPCRInterval
	}
	return c
}

func (c WriterConfig) validate() error {
	switch {
	case c.Bitrate < MinWriterBitrate:
		return fmt.Errorf("bitrate %d bit/s below %d: %w", c.Bitrate, MinWriterBitrate, ErrWriterConfig)
	case c.PMTPID < 0x0010 || c.PMTPID >= PIDNull:
		return fmt.Errorf("pmt pid 0x%04x outside 0x0010..0x1ffe: %w", c.PMTPID, ErrWriterConfig)
	case c.VideoPID < 0x0010 || c.VideoPID >= PIDNull:
		return fmt.Errorf("video pid 0x%04x outside 0x0010..0x1ffe: %w", c.VideoPID, ErrWriterConfig)
	case c.VideoPID == c.PMTPID:
		return fmt.Errorf("video pid and pmt pid are both 0x%04x: %w", c.VideoPID, ErrWriterConfig)
	case c.PSIInterval < 0 || c.PSIInterval > 10*time.Second:
		return fmt.Errorf("psi interval %s outside 0..10s: %w", c.PSIInterval, ErrWriterConfig)
	case c.PCRInterval < 0 || c.PCRInterval > 100*time.Millisecond:
		return fmt.Errorf("pcr interval %s outside 0..100ms: %w", c.PCRInterval, ErrWriterConfig)
	case c.InitialPCR >= PCRWrap:
		return fmt.Errorf("initial pcr %d not below %d: %w", c.InitialPCR, PCRWrap, ErrWriterConfig)
	}
	return nil
}

// Writer produces a synthetic constant-bitrate single-program transport
// stream: PAT and PMT every PSIInterval, and a video PID whose packets carry
// PES packets of filler bytes, one PES starting with every PCR. Packet i of
// the stream is due at i×188×8/Bitrate seconds, and the PCRs follow that
// schedule exactly, so a receiver can recover the bitrate from them. A
// Writer is not safe for concurrent use.
type Writer struct {
	cfg                 WriterConfig
	pat, pmt            []byte // 184-byte payloads: pointer_field, section, stuffing
	ccPAT, ccPMT, ccVid uint8

	// The position of the next packet in 27 MHz ticks from the start, kept
	// exactly as ticks + rem/Bitrate.
	ticks, rem       uint64
	stepQ, stepR     uint64 // ticks per packet: stepQ + stepR/Bitrate
	nextPSI, nextPCR uint64 // ticks
	psiStep, pcrStep uint64
	pending          int // PSI packets still to send: 2 PAT+PMT, 1 PMT
	fill             byte
	n                uint64
	scratch          [maxPayload]byte // the video payload being built
}

// NewWriter validates cfg (after defaults) and returns a Writer at the
// start of its stream. It fails with ErrWriterConfig.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	num := uint64(PacketSize * 8 * PCRClockHz)
	w := &Writer{
		cfg:     cfg,
		stepQ:   num / uint64(cfg.Bitrate),
		stepR:   num % uint64(cfg.Bitrate),
		psiStep: uint64(cfg.PSIInterval.Seconds() * PCRClockHz),
		pcrStep: uint64(cfg.PCRInterval.Seconds() * PCRClockHz),
	}
	pat := PAT{TransportStreamID: cfg.TransportStreamID, Programs: []Program{{Number: cfg.ProgramNumber, PID: cfg.PMTPID}}}
	pmt := PMT{ProgramNumber: cfg.ProgramNumber, PCRPID: cfg.VideoPID, Streams: []ElementaryStream{{Type: cfg.StreamType, PID: cfg.VideoPID}}}
	w.pat = psiPayload(pat.AppendSection(nil))
	w.pmt = psiPayload(pmt.AppendSection(nil))
	return w, nil
}

// psiPayload wraps one short section as a packet payload: pointer_field 0,
// the section, 0xFF stuffing.
func psiPayload(section []byte) []byte {
	b := make([]byte, maxPayload)
	b[0] = 0
	n := copy(b[1:], section)
	for i := 1 + n; i < len(b); i++ {
		b[i] = 0xFF
	}
	return b
}

// Bitrate is the stream's configured rate in bit/s.
func (w *Writer) Bitrate() int { return w.cfg.Bitrate }

// Config returns the configuration in use, defaults applied.
func (w *Writer) Config() WriterConfig { return w.cfg }

// PacketDuration is the time one packet takes at the stream's bitrate.
func (w *Writer) PacketDuration() time.Duration {
	return time.Duration(float64(PacketSize*8) / float64(w.cfg.Bitrate) * float64(time.Second))
}

// Written is how many packets Next has produced.
func (w *Writer) Written() uint64 { return w.n }

// Due is when the next packet is due, relative to the stream's start.
func (w *Writer) Due() time.Duration {
	return time.Duration(float64(w.ticks) / PCRClockHz * float64(time.Second))
}

// Next appends the next 188-byte packet to dst.
func (w *Writer) Next(dst []byte) []byte {
	if w.pending == 0 && w.ticks >= w.nextPSI {
		w.pending = 2
		w.nextPSI += w.psiStep
	}
	var p Packet
	switch {
	case w.pending == 2:
		p = Packet{PUSI: true, PID: PIDPAT, CC: w.ccPAT, Payload: w.pat}
		w.ccPAT = (w.ccPAT + 1) & 0x0F
		w.pending--
	case w.pending == 1:
		p = Packet{PUSI: true, PID: w.cfg.PMTPID, CC: w.ccPMT, Payload: w.pmt}
		w.ccPMT = (w.ccPMT + 1) & 0x0F
		w.pending--
	case w.ticks >= w.nextPCR:
		pcr := PCR((uint64(w.cfg.InitialPCR) + w.ticks) % uint64(PCRWrap))
		p = Packet{
			PUSI: true, PID: w.cfg.VideoPID, CC: w.ccVid,
			Adaptation: Adaptation{RandomAccess: true, HasPCR: true, PCR: pcr},
			Payload:    w.pesStart(pcr, maxPayload-8), // 8: adaptation length, flags, PCR
		}
		w.ccVid = (w.ccVid + 1) & 0x0F
		w.nextPCR += w.pcrStep
	default:
		p = Packet{PID: w.cfg.VideoPID, CC: w.ccVid, Payload: w.filler(maxPayload)}
		w.ccVid = (w.ccVid + 1) & 0x0F
	}
	dst, err := p.Append(dst)
	if err != nil {
		panic("mpegts: writer built an invalid packet: " + err.Error()) // a bug here, not bad input
	}
	w.n++
	w.ticks += w.stepQ
	w.rem += w.stepR
	if w.rem >= uint64(w.cfg.Bitrate) {
		w.rem -= uint64(w.cfg.Bitrate)
		w.ticks++
	}
	return dst
}

// pesStart builds a PES header for the video PID (stream_id 0xE0, unbounded
// length, PTS 0.5 s after the PCR) followed by filler, n bytes in all.
func (w *Writer) pesStart(pcr PCR, n int) []byte {
	pts := (pcr.Base() + 45000) & (1<<33 - 1)
	hdr := [...]byte{
		0x00, 0x00, 0x01, 0xE0, 0x00, 0x00, // start code, stream_id, PES_packet_length 0
		0x80, 0x80, 0x05, // '10' marker, PTS only, header length 5
		0x21 | byte(pts>>29)&0x0E,
		byte(pts >> 22),
		0x01 | byte(pts>>14)&0xFE,
		byte(pts >> 7),
		0x01 | byte(pts<<1)&0xFE,
	}
	b := w.scratch[:n]
	copy(b, hdr[:])
	w.fillPattern(b[len(hdr):])
	return b
}

// filler returns n bytes of a running pattern, so consecutive packets
// differ. The bytes live in w.scratch until the next call.
func (w *Writer) filler(n int) []byte {
	b := w.scratch[:n]
	w.fillPattern(b)
	return b
}

func (w *Writer) fillPattern(b []byte) {
	for i := range b {
		b[i] = w.fill
		w.fill++
	}
}
