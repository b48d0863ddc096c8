package iptv

import (
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listenHost is the address the receiving socket binds to. Binding to the
// group (not 0.0.0.0) keeps other groups on the same port out.
func listenHost(group netip.Addr) string { return group.String() }

// controlSocket prepares the receiving socket before bind: SO_REUSEADDR so
// the check can run beside another receiver of the channel, IP_MULTICAST_ALL
// off so only the groups this socket joined are delivered (by default Linux
// hands it any group some other socket joined), and SO_TIMESTAMPNS so every
// datagram carries its kernel arrival time.
func controlSocket(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		for _, o := range []struct{ level, name int }{
			{unix.SOL_SOCKET, unix.SO_REUSEADDR},
			{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS},
		} {
			if serr = unix.SetsockoptInt(int(fd), o.level, o.name, 1); serr != nil {
				return
			}
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
	})
	if err != nil {
		return err
	}
	return serr
}

// growReadBuffer asks for a receive buffer of size bytes: with
// SO_RCVBUFFORCE when the process may (root or CAP_NET_ADMIN; it is not
// capped by net.core.rmem_max), else with SO_RCVBUF, which the kernel caps.
func growReadBuffer(conn *net.UDPConn, size int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) == nil {
			return
		}
		serr = conn.SetReadBuffer(size)
	})
	if err != nil {
		return err
	}
	return serr
}

// oobSize is room for one SCM_TIMESTAMPNS control message.
func oobSize() int { return unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))) }

// readDatagram reads one datagram into b and returns its length, sender and
// kernel arrival time (time.Now when the kernel gave none).
func readDatagram(conn *net.UDPConn, b, oob []byte) (int, netip.AddrPort, time.Time, error) {
	n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(b, oob)
	if err != nil {
		return 0, netip.AddrPort{}, time.Time{}, err
	}
	at := time.Now()
	if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
				at = time.Unix(int64(ts.Sec), int64(ts.Nsec)) // int32 fields on 32-bit Linux
			}
		}
	}
	return n, from, at, nil
}
