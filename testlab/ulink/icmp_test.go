package ulink

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

var (
	testHost   = netip.MustParseAddr("10.77.0.2")
	testSender = netip.MustParseAddr("10.77.0.1")
)

func TestChecksumKnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want uint16
	}{
		// RFC 1071 section 3's example: the sum is 0xddf2.
		{"rfc1071", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, ^uint16(0xddf2)},
		// A well-known IPv4 header (192.168.0.1 -> 192.168.0.199, UDP),
		// checksum field zeroed: its checksum is 0xb861.
		{"ipv4 header", []byte{
			0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
			0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
		}, 0xb861},
		// The same header with its checksum in place sums to zero.
		{"ipv4 header verified", []byte{
			0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
			0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
		}, 0},
		{"odd length pads with zero", []byte{0x01}, 0xfeff},
		{"carries fold", []byte{0xff, 0xff, 0x00, 0x01}, 0xfffe},
		{"empty", nil, 0xffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checksum(tc.data); got != tc.want {
				t.Errorf("checksum(% x) = %#04x, want %#04x", tc.data, got, tc.want)
			}
		})
	}
}

// ipv4Packet builds an IPv4 packet by hand (x/net/ipv4's Header.Marshal
// uses host byte order for raw sockets on some systems): ihl 20 plus the
// options, the given protocol and payload, a correct header checksum.
func ipv4Packet(src, dst netip.Addr, proto byte, options, payload []byte) []byte {
	h := make([]byte, 20+len(options))
	h[0] = 4<<4 | byte(len(h)/4)
	h[1] = 0x10
	binary.BigEndian.PutUint16(h[2:4], uint16(len(h)+len(payload)))
	binary.BigEndian.PutUint16(h[4:6], 0x1234)
	h[8] = 63
	h[9] = proto
	copy(h[12:16], src.AsSlice())
	copy(h[16:20], dst.AsSlice())
	copy(h[20:], options)
	binary.BigEndian.PutUint16(h[10:12], checksum(h))
	return append(h, payload...)
}

// icmpMessage marshals an ICMP message with x/net/icmp, which computes the checksum.
func icmpMessage(t testing.TB, typ ipv4.ICMPType, code, id, seq int, data []byte) []byte {
	t.Helper()
	b, err := (&icmp.Message{Type: typ, Code: code, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// echoRequest is a valid echo request from testSender to dst.
func echoRequest(t testing.TB, dst netip.Addr, id, seq int, data []byte) []byte {
	return ipv4Packet(testSender, dst, protoICMP, nil, icmpMessage(t, ipv4.ICMPTypeEcho, 0, id, seq, data))
}

// echoCase is one packet given to echoReply and whether it is answered.
type echoCase struct {
	name     string
	pkt      []byte
	answered bool
	data     []byte // the echo data the reply must carry
}

func echoCases(t testing.TB) []echoCase {
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	odd := []byte("odd")
	valid := echoRequest(t, testHost, 0xbeef, 7, data)
	mutate := func(f func(p []byte)) []byte {
		p := bytes.Clone(valid)
		f(p)
		return p
	}
	refixIP := func(p []byte) {
		p[10], p[11] = 0, 0
		binary.BigEndian.PutUint16(p[10:12], checksum(p[:20]))
	}
	return []echoCase{
		{"echo request", valid, true, data},
		{"odd data length", echoRequest(t, testHost, 1, 65535, odd), true, odd},
		{"no data", echoRequest(t, testHost, 0, 0, nil), true, nil},
		{"IP options are dropped", ipv4Packet(testSender, testHost, protoICMP, []byte{1, 1, 1, 0},
			icmpMessage(t, ipv4.ICMPTypeEcho, 0, 9, 9, data)), true, data},
		{"bytes past the total length are ignored", append(bytes.Clone(valid), 0xde, 0xad), true, data},
		{"DF set", mutate(func(p []byte) { p[6] |= 0x40; refixIP(p) }), true, data},

		{"another destination", echoRequest(t, netip.MustParseAddr("10.77.0.3"), 1, 1, data), false, nil},
		{"echo reply", ipv4Packet(testSender, testHost, protoICMP, nil, icmpMessage(t, ipv4.ICMPTypeEchoReply, 0, 1, 1, data)), false, nil},
		{"echo request with a code", ipv4Packet(testSender, testHost, protoICMP, nil, icmpMessage(t, ipv4.ICMPTypeEcho, 1, 1, 1, data)), false, nil},
		{"UDP", ipv4Packet(testSender, testHost, 17, nil, []byte{0, 53, 0, 53, 0, 8, 0, 0}), false, nil},
		{"bad IP checksum", mutate(func(p []byte) { p[10] ^= 0xff }), false, nil},
		{"bad ICMP checksum", mutate(func(p []byte) { p[len(p)-1] ^= 0x01 }), false, nil},
		{"more fragments", mutate(func(p []byte) { p[6] |= 0x20; refixIP(p) }), false, nil},
		{"fragment offset", mutate(func(p []byte) { p[7] = 1; refixIP(p) }), false, nil},
		{"total length past the end", mutate(func(p []byte) { p[3]++; refixIP(p) }), false, nil},
		{"total length shorter than ICMP header", mutate(func(p []byte) { p[2], p[3] = 0, 27; refixIP(p) }), false, nil},
		{"IHL below 5", mutate(func(p []byte) { p[0] = 0x44; refixIP(p) }), false, nil},
		{"truncated header", valid[:19], false, nil},
		{"IPv6", mutate(func(p []byte) { p[0] = 0x60 }), false, nil},
		{"empty", nil, false, nil},
	}
}

func TestEchoReply(t *testing.T) {
	for _, tc := range echoCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.pkt)
			reply, ok := echoReply(tc.pkt, testHost, 0x4242)
			if !bytes.Equal(in, tc.pkt) {
				t.Fatal("echoReply modified its input")
			}
			if ok != tc.answered {
				t.Fatalf("answered %v, want %v", ok, tc.answered)
			}
			if !ok {
				if reply != nil {
					t.Errorf("reply % x for an unanswered packet", reply)
				}
				return
			}
			checkReply(t, tc.pkt, reply)
			if got := binary.BigEndian.Uint16(reply[4:6]); got != 0x4242 {
				t.Errorf("IP identification %#x, want 0x4242", got)
			}
			msg, err := icmp.ParseMessage(protoICMP, reply[20:])
			if err != nil {
				t.Fatal(err)
			}
			echo, ok := msg.Body.(*icmp.Echo)
			if msg.Type != ipv4.ICMPTypeEchoReply || msg.Code != 0 || !ok {
				t.Fatalf("reply is %v code %d %T, want an echo reply", msg.Type, msg.Code, msg.Body)
			}
			reqMsg, err := icmp.ParseMessage(protoICMP, tc.pkt[int(tc.pkt[0]&0x0f)*4:])
			if err != nil {
				t.Fatal(err)
			}
			req := reqMsg.Body.(*icmp.Echo)
			if echo.ID != req.ID || echo.Seq != req.Seq || !bytes.Equal(echo.Data, tc.data) {
				t.Errorf("reply id %d seq %d data %q, want id %d seq %d data %q", echo.ID, echo.Seq, echo.Data, req.ID, req.Seq, tc.data)
			}
			// x/net/icmp computes the checksum the reply must carry.
			want := icmpMessage(t, ipv4.ICMPTypeEchoReply, 0, echo.ID, echo.Seq, echo.Data)
			if !bytes.Equal(reply[20:], want) {
				t.Errorf("ICMP part\n % x\nwant\n % x", reply[20:], want)
			}
		})
	}
}

// checkReply checks what must hold for every reply to request: a 20-byte
// IPv4 header with a valid checksum, ICMP, TTL 64, the request's TOS, the
// addresses swapped, the request's ICMP message with type 0 and a valid
// checksum.
func checkReply(t *testing.T, request, reply []byte) {
	t.Helper()
	ihl := int(request[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(request[2:4]))
	if len(reply) != 20+total-ihl {
		t.Fatalf("reply is %d bytes, want %d", len(reply), 20+total-ihl)
	}
	if reply[0] != 0x45 || int(binary.BigEndian.Uint16(reply[2:4])) != len(reply) || reply[8] != 64 || reply[9] != protoICMP || reply[1] != request[1] {
		t.Errorf("reply header % x: want version 4, IHL 5, total length %d, TTL 64, ICMP, TOS %#x", reply[:20], len(reply), request[1])
	}
	if frag := binary.BigEndian.Uint16(reply[6:8]); frag != 0 {
		t.Errorf("reply flags/fragment %#x, want 0", frag)
	}
	if !bytes.Equal(reply[12:16], request[16:20]) || !bytes.Equal(reply[16:20], request[12:16]) {
		t.Errorf("reply %v -> %v, want %v -> %v", reply[12:16], reply[16:20], request[16:20], request[12:16])
	}
	if c := checksum(reply[:20]); c != 0 {
		t.Errorf("IP header checksum does not verify (sum %#x)", c)
	}
	if c := checksum(reply[20:]); c != 0 {
		t.Errorf("ICMP checksum does not verify (sum %#x)", c)
	}
	if reply[20] != icmpEchoReply || reply[21] != 0 {
		t.Errorf("ICMP type %d code %d, want echo reply (0, 0)", reply[20], reply[21])
	}
	want, got := request[ihl+4:total], reply[24:]
	if !bytes.Equal(got, want) {
		t.Errorf("reply id, seq and data % x, want % x", got, want)
	}
}

func FuzzEchoReply(f *testing.F) {
	for _, tc := range echoCases(f) {
		f.Add(tc.pkt)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		reply, ok := echoReply(pkt, testHost, 1)
		if !ok {
			return
		}
		checkReply(t, pkt, reply)
		if !bytes.Equal(pkt[16:20], testHost.AsSlice()) {
			t.Errorf("answered a packet to %v", pkt[16:20])
		}
	})
}
