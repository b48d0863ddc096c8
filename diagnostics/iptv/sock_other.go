//go:build !linux

package iptv

import (
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"time"
)

// listenHost is the address the receiving socket binds to: the group where
// the system allows it, which keeps other groups on the same port out.
func listenHost(group netip.Addr) string {
	if runtime.GOOS == "windows" {
		return "0.0.0.0"
	}
	return group.String()
}

// controlSocket leaves the socket as it is: the Linux options have no
// portable equivalent.
func controlSocket(_, _ string, _ syscall.RawConn) error { return nil }

// growReadBuffer asks for a receive buffer of size bytes (the system may cap it).
func growReadBuffer(conn *net.UDPConn, size int) error { return conn.SetReadBuffer(size) }

// oobSize is 0: no kernel timestamps here.
func oobSize() int { return 0 }

// readDatagram reads one datagram into b and returns its length, sender and
// arrival time, taken when the read returns.
func readDatagram(conn *net.UDPConn, b, _ []byte) (int, netip.AddrPort, time.Time, error) {
	n, from, err := conn.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, netip.AddrPort{}, time.Time{}, err
	}
	return n, from, time.Now(), nil
}
