package ulink

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 and ICMP constants used by the simulated host.
const (
	ipv4HeaderLen   = 20
	icmpHeaderLen   = 8
	protoICMP       = 1
	icmpEchoReply   = 0
	icmpEchoRequest = 8
	replyTTL        = 64
)

// echoReply returns the IPv4 packet with which host answers pkt, and true,
// when pkt is an unfragmented IPv4 ICMP echo request to host whose IP header
// and ICMP checksums are valid. Anything else gives nil, false. The reply
// keeps the request's identifier, sequence number, data and TOS, swaps the
// addresses, drops any IP options and carries IP identification ipID.
func echoReply(pkt []byte, host netip.Addr, ipID uint16) ([]byte, bool) {
	if len(pkt) < ipv4HeaderLen || pkt[0]>>4 != 4 {
		return nil, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if ihl < ipv4HeaderLen || total < ihl+icmpHeaderLen || total > len(pkt) {
		return nil, false
	}
	pkt = pkt[:total] // a TUN read is one packet, but trust the header's length
	if checksum(pkt[:ihl]) != 0 || pkt[9] != protoICMP {
		return nil, false
	}
	if frag := binary.BigEndian.Uint16(pkt[6:8]); frag&0x3fff != 0 { // MF set or non-zero offset
		return nil, false
	}
	if dst := netip.AddrFrom4([4]byte(pkt[16:20])); dst != host {
		return nil, false
	}
	msg := pkt[ihl:]
	if msg[0] != icmpEchoRequest || msg[1] != 0 || checksum(msg) != 0 {
		return nil, false
	}

	reply := make([]byte, ipv4HeaderLen+len(msg))
	h := reply[:ipv4HeaderLen]
	h[0] = 4<<4 | ipv4HeaderLen/4
	h[1] = pkt[1] // TOS
	binary.BigEndian.PutUint16(h[2:4], uint16(len(reply)))
	binary.BigEndian.PutUint16(h[4:6], ipID)
	// h[6:8]: no flags, offset 0.
	h[8] = replyTTL
	h[9] = protoICMP
	copy(h[12:16], pkt[16:20]) // from the host...
	copy(h[16:20], pkt[12:16]) // ...back to the sender
	binary.BigEndian.PutUint16(h[10:12], checksum(h))

	m := reply[ipv4HeaderLen:]
	copy(m, msg)
	m[0], m[1] = icmpEchoReply, 0
	m[2], m[3] = 0, 0
	binary.BigEndian.PutUint16(m[2:4], checksum(m))
	return reply, true
}

// checksum is the Internet checksum (RFC 1071) of b: the ones' complement of
// the ones' complement sum of its 16-bit big-endian words, an odd last byte
// padded with zero. Over data that already holds a correct checksum it is 0.
func checksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
