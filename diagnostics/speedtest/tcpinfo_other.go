//go:build !linux

package speedtest

import "net"

// tcpRetransmits is only implemented on linux; elsewhere it reports false.
func tcpRetransmits(net.Conn) (uint32, bool) { return 0, false }
