// Package ndt7 implements M-Lab's ndt7 throughput protocol (spec v0.9:
// github.com/m-lab/ndt-server, spec/ndt7-protocol.md), server and client, on
// github.com/gorilla/websocket.
//
// A test is one WebSocket connection with the subprotocol
// net.measurementlab.ndt.v7:
//
//	GET /ndt/v7/download   the server sends binary messages of random bytes
//	GET /ndt/v7/upload     the client sends them
//
// The sender starts with 8 KiB messages and doubles their size while it is
// below 1/16 of the bytes sent so far, up to 16 MiB. Either side may send
// text messages holding a JSON Message (AppInfo, TCPInfo, ...); this server
// sends one every 250 ms, in both tests, and ends each test after
// ServerOptions.Duration (10 s) with a normal WebSocket close.
//
// The client (Download, Upload) returns the same result.Measurement as the
// fieldagent HTTP protocol in package speedtest (speedtest.Measurement is an
// alias of it), measured after a ramp-up like the HTTP protocol: for a
// download from the bytes it received; for an upload from the server's
// measurements (TCPInfo.BytesReceived, else AppInfo.NumBytes) when the
// server sends them, else from what its own TCP had acknowledged. On linux
// the client's own counts come from TCP_INFO, so neither a reader that the
// scheduler holds up nor a full send buffer skews them.
//
// A test ends after its duration with a WebSocket close handshake; a test
// abandoned on error or cancellation is reset (SO_LINGER 0), and senders cap
// unsent data with TCP_NOTSENT_LOWAT, so that no test keeps a slow link busy
// after it returned.
package ndt7

import (
	"errors"
	"time"
)

// Protocol constants from the ndt7 spec.
const (
	// SubProtocol is the WebSocket subprotocol both sides must agree on.
	SubProtocol = "net.measurementlab.ndt.v7"
	// DownloadPath and UploadPath select the test.
	DownloadPath = "/ndt/v7/download"
	UploadPath   = "/ndt/v7/upload"
	// MinMessageSize is the size of the first binary message a sender sends.
	MinMessageSize = 1 << 13
	// MaxMessageSize is the largest binary message allowed; a receiver
	// refuses larger ones (close code 1009).
	MaxMessageSize = 1 << 24
	// DefaultDuration is how long a test runs when nobody says otherwise.
	DefaultDuration = 10 * time.Second
	// MaxDuration bounds a test: after it a peer may drop the connection.
	MaxDuration = 13 * time.Second
)

const (
	// measurementInterval spaces text messages (the spec allows ten per second).
	measurementInterval = 250 * time.Millisecond
	// closeTimeout is how long a side waits for the peer's close frame.
	closeTimeout = 2 * time.Second
	// handshakeTimeout bounds the WebSocket upgrade.
	handshakeTimeout = 10 * time.Second
	// chunkSize is the largest write of a binary message: larger messages
	// are sent as several frames from one shared random buffer.
	chunkSize = 1 << 20
	// readBufferSize is the buffer binary messages are read (and discarded) into.
	readBufferSize = 1 << 20
	// wsBufferSize is gorilla's I/O buffer size; reads of readBufferSize
	// bypass it, and a client's frames are at most this large.
	wsBufferSize = 64 << 10
)

// Sentinel errors returned (wrapped) by Download and Upload.
var (
	// ErrInvalidOptions means ClientOptions or the base URL failed validation.
	ErrInvalidOptions = errors.New("invalid ndt7 options")
	// ErrUnreachable means no TCP (or TLS) connection to the server could be
	// made: check the URL, routing and firewall.
	ErrUnreachable = errors.New("ndt7 server unreachable")
	// ErrBusy means the server answered 503: it runs as many tests as it
	// allows. Retry after the Retry-After delay.
	ErrBusy = errors.New("ndt7 server busy")
	// ErrSubprotocol means the server upgraded to WebSocket without agreeing
	// to net.measurementlab.ndt.v7: it is not an ndt7 server.
	ErrSubprotocol = errors.New("server did not select the ndt7 WebSocket subprotocol")
	// ErrServer means the server answered the upgrade with an unexpected HTTP
	// status (404: no ndt7 at that URL), or closed the test with an error code.
	ErrServer = errors.New("unexpected ndt7 server response")
	// ErrProtocol means the peer broke the ndt7 protocol: a binary message in
	// the wrong direction or above MaxMessageSize, or a malformed measurement.
	ErrProtocol = errors.New("ndt7 protocol violation")
	// ErrStream means the connection failed before the ramp-up was over.
	ErrStream = errors.New("ndt7 connection failed mid-test")
	// ErrNoData means no byte moved during the measurement window.
	ErrNoData = errors.New("no data transferred in the measurement window")
)

// nextMessageSize applies the spec's message scaling: a sender that has sent
// total bytes with messages of size doubles the size while it is below
// total/16, up to MaxMessageSize.
func nextMessageSize(size int, total int64) int {
	if size >= MaxMessageSize || int64(size) >= total/16 {
		return size
	}
	return size * 2
}
