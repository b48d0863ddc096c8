//go:build linux

package speedtest

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpCounters is what the client reads of a stream connection's TCP_INFO.
type tcpCounters struct {
	received int64  // tcpi_bytes_received: payload bytes received in order
	acked    int64  // tcpi_bytes_acked: payload bytes the peer acknowledged
	retrans  uint32 // tcpi_total_retrans: segments retransmitted
}

// readTCPCounters reads TCP_INFO of c. It reports false when c is not an
// open TCP connection.
func readTCPCounters(c net.Conn) (tcpCounters, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return tcpCounters{}, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return tcpCounters{}, false
	}
	var info *unix.TCPInfo
	var serr error
	if err := raw.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || serr != nil {
		return tcpCounters{}, false
	}
	return tcpCounters{
		received: int64(info.Bytes_received),
		acked:    max(int64(info.Bytes_acked)-1, 0), // the SYN counts as one byte
		retrans:  info.Total_retrans,
	}, true
}
