//go:build !linux

package speedtest

import "net"

// tcpCounters is what the client reads of a stream connection's TCP_INFO.
type tcpCounters struct {
	received int64
	acked    int64
	retrans  uint32
}

// readTCPCounters is only implemented on linux; elsewhere it reports false.
func readTCPCounters(net.Conn) (tcpCounters, bool) { return tcpCounters{}, false }
