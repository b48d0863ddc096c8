// Package mpegts parses and writes MPEG-2 transport streams (ISO/IEC 13818-1)
// as far as an IPTV check needs: 188-byte packets, adaptation fields with
// PCRs, continuity counters, PAT and PMT sections with their CRC-32, and a
// synthetic constant-bitrate stream for the lab.
//
// Everything here parses untrusted input: the parsers never panic and return
// an error (one of the sentinels below, wrapped) for any malformed input.
package mpegts

import (
	"errors"
	"fmt"
)

// Sentinel errors returned (wrapped) by the parsers.
var (
	// ErrPacketSize means a packet is not exactly PacketSize bytes long.
	ErrPacketSize = errors.New("mpeg-ts packet is not 188 bytes")
	// ErrSync means a packet does not start with the sync byte 0x47.
	ErrSync = errors.New("mpeg-ts sync byte 0x47 missing")
	// ErrAdaptationControl means adaptation_field_control is the reserved
	// value 00; decoders discard such packets.
	ErrAdaptationControl = errors.New("mpeg-ts packet has reserved adaptation_field_control 00")
	// ErrAdaptationField means the adaptation field's length or contents do
	// not fit the packet.
	ErrAdaptationField = errors.New("mpeg-ts adaptation field malformed")
	// ErrPayloadTooLong means Packet.Append was given more payload than fits.
	ErrPayloadTooLong = errors.New("mpeg-ts payload does not fit one packet")
	// ErrSection means a PSI section is truncated or its fields are inconsistent.
	ErrSection = errors.New("psi section malformed")
	// ErrCRC means a PSI section's CRC-32/MPEG-2 does not match its bytes.
	ErrCRC = errors.New("psi section crc32 mismatch")
	// ErrTableID means a section is not the table the parser was asked for.
	ErrTableID = errors.New("psi section has an unexpected table_id")
)

// Transport stream constants.
const (
	// PacketSize is the size of one transport stream packet in bytes.
	PacketSize = 188
	// SyncByte starts every packet.
	SyncByte = 0x47
	// PIDPAT carries the program association table.
	PIDPAT uint16 = 0x0000
	// PIDNull carries null (stuffing) packets, whose continuity counter is undefined.
	PIDNull uint16 = 0x1FFF
	// MaxPID is the largest 13-bit PID.
	MaxPID uint16 = 0x1FFF
	// headerSize is the fixed 4-byte packet header.
	headerSize = 4
	// maxPayload is what is left of a packet after its header.
	maxPayload = PacketSize - headerSize
)

// PCRClockHz is the frequency of the program clock reference: 27 MHz.
const PCRClockHz = 27_000_000

// PCRWrap is where a PCR wraps round: a 33-bit base of 90 kHz ticks times 300.
const PCRWrap PCR = (1 << 33) * 300

// PCR is a program clock reference in 27 MHz ticks (base×300 + extension),
// always below PCRWrap.
type PCR uint64

// NewPCR builds a PCR from its 33-bit 90 kHz base and 9-bit extension
// (0..299); out-of-range inputs are reduced modulo their field sizes.
func NewPCR(base uint64, ext uint16) PCR {
	return PCR((base&(1<<33-1))*300 + uint64(ext%300))
}

// Base is the 33-bit 90 kHz part of p.
func (p PCR) Base() uint64 { return uint64(p) / 300 }

// Ext is the 9-bit 27 MHz extension of p (0..299).
func (p PCR) Ext() uint16 { return uint16(uint64(p) % 300) }

// Sub returns p − q in 27 MHz ticks, taking the wrap round into account: the
// result lies in (−PCRWrap/2, PCRWrap/2].
func (p PCR) Sub(q PCR) int64 {
	d := (int64(p%PCRWrap) - int64(q%PCRWrap)) % int64(PCRWrap)
	if d > int64(PCRWrap)/2 {
		d -= int64(PCRWrap)
	} else if d <= -int64(PCRWrap)/2 {
		d += int64(PCRWrap)
	}
	return d
}

// Adaptation is the part of an adaptation field this package understands;
// the rest (splicing, private data, extension) is skipped.
type Adaptation struct {
	// Discontinuity is the discontinuity_indicator: the continuity counter
	// (and, on the PCR PID, the time base) may jump at this packet.
	Discontinuity bool
	// RandomAccess is the random_access_indicator.
	RandomAccess bool
	// ESPriority is the elementary_stream_priority_indicator.
	ESPriority bool
	// HasPCR says PCR is present.
	HasPCR bool
	// PCR is the program clock reference; valid only when HasPCR.
	PCR PCR
	// HasOPCR says OPCR is present.
	HasOPCR bool
	// OPCR is the original program clock reference; valid only when HasOPCR.
	OPCR PCR
}

// Packet is one parsed transport stream packet. Payload aliases the buffer
// given to ParsePacket.
type Packet struct {
	// TransportError is the transport_error_indicator.
	TransportError bool
	// PUSI is the payload_unit_start_indicator: a PES packet or a PSI
	// section starts in this packet.
	PUSI bool
	// Priority is the transport_priority bit.
	Priority bool
	// PID is the 13-bit packet identifier.
	PID uint16
	// Scrambling is the 2-bit transport_scrambling_control.
	Scrambling uint8
	// HasAdaptation says an adaptation field is present.
	HasAdaptation bool
	// HasPayload says a payload is present; only such packets advance the
	// continuity counter.
	HasPayload bool
	// CC is the 4-bit continuity_counter.
	CC uint8
	// Adaptation holds the adaptation field; zero when !HasAdaptation.
	Adaptation Adaptation
	// Payload is the bytes after the header and adaptation field; nil when
	// !HasPayload.
	Payload []byte
}

// ParsePacket parses one 188-byte packet. It fails with ErrPacketSize,
// ErrSync, ErrAdaptationControl or ErrAdaptationField.
func ParsePacket(b []byte) (Packet, error) {
	if len(b) != PacketSize {
		return Packet{}, fmt.Errorf("%d bytes: %w", len(b), ErrPacketSize)
	}
	if b[0] != SyncByte {
		return Packet{}, fmt.Errorf("first byte 0x%02x: %w", b[0], ErrSync)
	}
	p := Packet{
		TransportError: b[1]&0x80 != 0,
		PUSI:           b[1]&0x40 != 0,
		Priority:       b[1]&0x20 != 0,
		PID:            uint16(b[1]&0x1F)<<8 | uint16(b[2]),
		Scrambling:     b[3] >> 6,
		HasAdaptation:  b[3]&0x20 != 0,
		HasPayload:     b[3]&0x10 != 0,
		CC:             b[3] & 0x0F,
	}
	if !p.HasAdaptation && !p.HasPayload {
		return p, fmt.Errorf("pid 0x%04x: %w", p.PID, ErrAdaptationControl)
	}
	off := headerSize
	if p.HasAdaptation {
		n := int(b[off])
		off++
		limit := maxPayload - 1 // 183: the whole rest of the packet
		if p.HasPayload {
			limit-- // 182: at least one payload byte
		}
		if n > limit {
			return p, fmt.Errorf("pid 0x%04x: adaptation_field_length %d > %d: %w", p.PID, n, limit, ErrAdaptationField)
		}
		a, err := parseAdaptation(b[off : off+n])
		if err != nil {
			return p, fmt.Errorf("pid 0x%04x: %w", p.PID, err)
		}
		p.Adaptation = a
		off += n
	}
	if p.HasPayload {
		p.Payload = b[off:PacketSize:PacketSize]
	}
	return p, nil
}

// parseAdaptation parses the adaptation field body (after its length byte).
func parseAdaptation(b []byte) (Adaptation, error) {
	var a Adaptation
	if len(b) == 0 {
		return a, nil // a single stuffing byte
	}
	flags := b[0]
	a.Discontinuity = flags&0x80 != 0
	a.RandomAccess = flags&0x40 != 0
	a.ESPriority = flags&0x20 != 0
	a.HasPCR = flags&0x10 != 0
	a.HasOPCR = flags&0x08 != 0
	rest := b[1:]
	if a.HasPCR {
		if len(rest) < 6 {
			return a, fmt.Errorf("pcr needs 6 bytes, %d left: %w", len(rest), ErrAdaptationField)
		}
		a.PCR = decodePCR(rest[:6])
		rest = rest[6:]
	}
	if a.HasOPCR {
		if len(rest) < 6 {
			return a, fmt.Errorf("opcr needs 6 bytes, %d left: %w", len(rest), ErrAdaptationField)
		}
		a.OPCR = decodePCR(rest[:6])
	}
	return a, nil
}

// decodePCR decodes the 48-bit PCR field: 33 bits base, 6 reserved, 9 bits extension.
func decodePCR(b []byte) PCR {
	base := uint64(b[0])<<25 | uint64(b[1])<<17 | uint64(b[2])<<9 | uint64(b[3])<<1 | uint64(b[4])>>7
	ext := uint16(b[4]&0x01)<<8 | uint16(b[5])
	return NewPCR(base, ext)
}

// encodePCR writes p into the 6-byte PCR field.
func encodePCR(b []byte, p PCR) {
	base, ext := p.Base(), p.Ext()
	b[0] = byte(base >> 25)
	b[1] = byte(base >> 17)
	b[2] = byte(base >> 9)
	b[3] = byte(base >> 1)
	b[4] = byte(base&1)<<7 | 0x7E | byte(ext>>8)&1
	b[5] = byte(ext)
}

// Append encodes p as one 188-byte packet and appends it to dst. The header
// comes from p's fields (HasAdaptation is implied by Adaptation flags and by
// a payload shorter than 184 bytes, HasPayload by a non-empty Payload); a
// short payload is padded with adaptation-field stuffing bytes. It fails with
// ErrPayloadTooLong when the payload does not fit beside the adaptation
// field, and with ErrAdaptationControl for a packet with neither.
func (p Packet) Append(dst []byte) ([]byte, error) {
	if p.PID > MaxPID {
		return dst, fmt.Errorf("pid 0x%04x exceeds 13 bits: %w", p.PID, ErrAdaptationField)
	}
	a := p.Adaptation
	var af []byte // adaptation field body (flags and optional fields), without length
	if a.Discontinuity || a.RandomAccess || a.ESPriority || a.HasPCR || a.HasOPCR {
		var flags byte
		if a.Discontinuity {
			flags |= 0x80
		}
		if a.RandomAccess {
			flags |= 0x40
		}
		if a.ESPriority {
			flags |= 0x20
		}
		if a.HasPCR {
			flags |= 0x10
		}
		if a.HasOPCR {
			flags |= 0x08
		}
		af = append(af, flags)
		if a.HasPCR {
			var f [6]byte
			encodePCR(f[:], a.PCR)
			af = append(af, f[:]...)
		}
		if a.HasOPCR {
			var f [6]byte
			encodePCR(f[:], a.OPCR)
			af = append(af, f[:]...)
		}
	}
	hasPayload := len(p.Payload) > 0
	hasAF := p.HasAdaptation || af != nil || len(p.Payload) < maxPayload
	if !hasAF && !hasPayload {
		return dst, fmt.Errorf("pid 0x%04x: %w", p.PID, ErrAdaptationControl)
	}
	room := maxPayload
	if hasAF {
		room -= 1 + len(af)
	}
	if len(p.Payload) > room {
		return dst, fmt.Errorf("pid 0x%04x: %d payload bytes, room for %d: %w", p.PID, len(p.Payload), room, ErrPayloadTooLong)
	}
	var hdr [4]byte
	hdr[0] = SyncByte
	hdr[1] = byte(p.PID>>8) & 0x1F
	if p.TransportError {
		hdr[1] |= 0x80
	}
	if p.PUSI {
		hdr[1] |= 0x40
	}
	if p.Priority {
		hdr[1] |= 0x20
	}
	hdr[2] = byte(p.PID)
	hdr[3] = (p.Scrambling&3)<<6 | p.CC&0x0F
	if hasAF {
		hdr[3] |= 0x20
	}
	if hasPayload {
		hdr[3] |= 0x10
	}
	dst = append(dst, hdr[:]...)
	if hasAF {
		afLen := maxPayload - 1 - len(p.Payload) // the field fills what the payload leaves
		dst = append(dst, byte(afLen))
		if afLen > 0 && af == nil {
			af = []byte{0} // flags byte with nothing set, then stuffing
		}
		dst = append(dst, af...)
		for i := len(af); i < afLen; i++ {
			dst = append(dst, 0xFF)
		}
	}
	return append(dst, p.Payload...), nil
}
