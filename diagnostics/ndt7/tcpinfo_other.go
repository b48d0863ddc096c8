//go:build !linux

package ndt7

import "net"

// readTCPInfo is only implemented on linux; elsewhere it reports false.
func readTCPInfo(net.Conn) (TCPInfo, *BBRInfo, bool) { return TCPInfo{}, nil, false }

// setNotSentLowat is only implemented on linux.
func setNotSentLowat(net.Conn, int) {}
