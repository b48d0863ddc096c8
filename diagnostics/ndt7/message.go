package ndt7

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Values of Message.Origin and Message.Test.
const (
	OriginServer = "server"
	OriginClient = "client"
	TestDownload = "download"
	TestUpload   = "upload"
)

// Message is an ndt7 measurement message, the JSON carried by text frames
// (spec v0.9 "Measurement message"). Every field is optional; a nil pointer
// means the sender did not include that object.
type Message struct {
	// AppInfo is the application-level count: binary payload bytes only.
	AppInfo *AppInfo `json:"AppInfo,omitempty"`
	// BBRInfo is TCP_CC_INFO of a BBR connection (servers only).
	BBRInfo *BBRInfo `json:"BBRInfo,omitempty"`
	// ConnectionInfo is the four-tuple as the server sees it; servers send it
	// once, clients never.
	ConnectionInfo *ConnectionInfo `json:"ConnectionInfo,omitempty"`
	// Origin is OriginServer or OriginClient, or empty.
	Origin string `json:"Origin,omitempty"`
	// Test is TestDownload or TestUpload, or empty.
	Test string `json:"Test,omitempty"`
	// TCPInfo is the sender's TCP_INFO of the test connection.
	TCPInfo *TCPInfo `json:"TCPInfo,omitempty"`
}

// AppInfo is the application-level measurement of a Message.
type AppInfo struct {
	// ElapsedTime is the time since the test started, in microseconds.
	ElapsedTime int64 `json:"ElapsedTime"`
	// NumBytes is the binary payload sent or received since the test
	// started, without WebSocket, TLS or TCP/IP overhead.
	NumBytes int64 `json:"NumBytes"`
}

// ConnectionInfo is the test connection's endpoints as the server sees them.
type ConnectionInfo struct {
	// Client is the client's "address:port" ("[v6]:port" for IPv6).
	Client string `json:"Client"`
	// Server is the server's "address:port".
	Server string `json:"Server"`
	// UUID identifies the test on the server's platform; empty when it has none.
	UUID string `json:"UUID,omitempty"`
}

// BBRInfo is the TCP_CC_INFO of a connection that uses BBR, as M-Lab's
// server sends it.
type BBRInfo struct {
	// BW is BBR's max-filtered bandwidth estimate in bytes per second.
	BW int64 `json:"BW"`
	// MinRTT is BBR's min-filtered round-trip time in microseconds.
	MinRTT int64 `json:"MinRTT"`
	// PacingGain is BBR's pacing gain shifted left by 8 bits (256 is 1.0).
	PacingGain int64 `json:"PacingGain"`
	// CwndGain is BBR's congestion window gain shifted left by 8 bits.
	CwndGain int64 `json:"CwndGain"`
	// ElapsedTime is when the sample was taken, in microseconds since the test started.
	ElapsedTime int64 `json:"ElapsedTime"`
}

// TCPInfo is the subset of Linux TCP_INFO that the ndt7 spec names, plus
// TotalRetrans, which M-Lab's server also sends. Times are microseconds and
// byte counts include WebSocket, TLS and TCP/IP overhead. A field the sender
// did not include is zero.
type TCPInfo struct {
	// BusyTime is tcpi_busy_time: time spent with data queued to send.
	BusyTime int64 `json:"BusyTime,omitempty"`
	// BytesAcked is tcpi_bytes_acked: bytes the peer acknowledged.
	BytesAcked int64 `json:"BytesAcked,omitempty"`
	// BytesReceived is tcpi_bytes_received: bytes this side acknowledged.
	BytesReceived int64 `json:"BytesReceived,omitempty"`
	// BytesSent is tcpi_bytes_sent: bytes sent, retransmissions included.
	BytesSent int64 `json:"BytesSent,omitempty"`
	// BytesRetrans is tcpi_bytes_retrans: bytes retransmitted.
	BytesRetrans int64 `json:"BytesRetrans,omitempty"`
	// ElapsedTime is when TCP_INFO was read, in microseconds since the test started.
	ElapsedTime int64 `json:"ElapsedTime,omitempty"`
	// MinRTT is tcpi_min_rtt: the lowest RTT seen on the connection.
	MinRTT int64 `json:"MinRTT,omitempty"`
	// RTT is tcpi_rtt: the smoothed RTT.
	RTT int64 `json:"RTT,omitempty"`
	// RTTVar is tcpi_rttvar: the RTT's variation.
	RTTVar int64 `json:"RTTVar,omitempty"`
	// RWndLimited is tcpi_rwnd_limited: time stalled on the receive window.
	RWndLimited int64 `json:"RWndLimited,omitempty"`
	// SndBufLimited is tcpi_sndbuf_limited: time stalled on the send buffer.
	SndBufLimited int64 `json:"SndBufLimited,omitempty"`
	// TotalRetrans is tcpi_total_retrans, the segments retransmitted. It is
	// not in the ndt7 spec; nil means the sender did not include it.
	TotalRetrans *int64 `json:"TotalRetrans,omitempty"`
}

// maxTextMessageSize caps a text (measurement) message. Real ones are a few
// hundred bytes; M-Lab's full TCP_INFO is about 2 KiB.
const maxTextMessageSize = 64 << 10

// ParseMessage decodes one measurement message. It fails, wrapping
// ErrProtocol, when b is not a JSON object, is larger than 64 KiB, or holds a
// negative byte count, time or RTT, or a wrongly typed known field.
// Unknown fields are ignored, as the spec asks.
func ParseMessage(b []byte) (Message, error) {
	var m Message
	if len(b) > maxTextMessageSize {
		return m, fmt.Errorf("%w: measurement message of %d bytes exceeds %d", ErrProtocol, len(b), maxTextMessageSize)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return m, fmt.Errorf("%w: measurement message is not a JSON object", ErrProtocol)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("%w: measurement message: %w", ErrProtocol, err)
	}
	if err := m.validate(); err != nil {
		return Message{}, fmt.Errorf("%w: measurement message: %w", ErrProtocol, err)
	}
	return m, nil
}

// validate rejects values that no sender can have measured.
func (m Message) validate() error {
	type field struct {
		name string
		v    int64
	}
	var fs []field
	if a := m.AppInfo; a != nil {
		fs = append(fs, field{"AppInfo.ElapsedTime", a.ElapsedTime}, field{"AppInfo.NumBytes", a.NumBytes})
	}
	if b := m.BBRInfo; b != nil {
		fs = append(fs, field{"BBRInfo.BW", b.BW}, field{"BBRInfo.MinRTT", b.MinRTT}, field{"BBRInfo.ElapsedTime", b.ElapsedTime})
	}
	if t := m.TCPInfo; t != nil {
		fs = append(fs,
			field{"TCPInfo.BusyTime", t.BusyTime}, field{"TCPInfo.BytesAcked", t.BytesAcked},
			field{"TCPInfo.BytesReceived", t.BytesReceived}, field{"TCPInfo.BytesSent", t.BytesSent},
			field{"TCPInfo.BytesRetrans", t.BytesRetrans}, field{"TCPInfo.ElapsedTime", t.ElapsedTime},
			field{"TCPInfo.MinRTT", t.MinRTT}, field{"TCPInfo.RTT", t.RTT}, field{"TCPInfo.RTTVar", t.RTTVar},
			field{"TCPInfo.RWndLimited", t.RWndLimited}, field{"TCPInfo.SndBufLimited", t.SndBufLimited})
		if t.TotalRetrans != nil {
			fs = append(fs, field{"TCPInfo.TotalRetrans", *t.TotalRetrans})
		}
	}
	for _, f := range fs {
		if f.v < 0 {
			return fmt.Errorf("%s is negative (%d)", f.name, f.v)
		}
	}
	return nil
}
