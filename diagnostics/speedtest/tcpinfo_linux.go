//go:build linux

package speedtest

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpRetransmits reads tcpi_total_retrans of c through TCP_INFO. It reports
// false when c is not an open TCP connection.
func tcpRetransmits(c net.Conn) (uint32, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var serr error
	if err := raw.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || serr != nil {
		return 0, false
	}
	return info.Total_retrans, true
}
