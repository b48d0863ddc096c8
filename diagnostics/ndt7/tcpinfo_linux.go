//go:build linux

package ndt7

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// readTCPInfo reads TCP_INFO of c (unwrapping TLS), and TCP_CC_INFO when c
// uses BBR. ok is false when c is not an open TCP connection.
func readTCPInfo(c net.Conn) (ti TCPInfo, bbr *BBRInfo, ok bool) {
	sc, isSC := rawConn(c).(syscall.Conn)
	if !isSC {
		return ti, nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return ti, nil, false
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if ierr != nil {
			return
		}
		if cc, err := unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION); err != nil || cc != "bbr" {
			return
		}
		if b, err := unix.GetsockoptTCPCCBBRInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_CC_INFO); err == nil {
			bbr = &BBRInfo{
				BW:         int64(b.Bw_hi)<<32 | int64(b.Bw_lo),
				MinRTT:     int64(b.Min_rtt),
				PacingGain: int64(b.Pacing_gain),
				CwndGain:   int64(b.Cwnd_gain),
			}
		}
	}); err != nil || ierr != nil {
		return ti, nil, false
	}
	retrans := int64(info.Total_retrans)
	ti = TCPInfo{
		BusyTime:      int64(info.Busy_time),
		BytesAcked:    int64(info.Bytes_acked),
		BytesReceived: int64(info.Bytes_received),
		BytesSent:     int64(info.Bytes_sent),
		BytesRetrans:  int64(info.Bytes_retrans),
		MinRTT:        int64(info.Min_rtt),
		RTT:           int64(info.Rtt),
		RTTVar:        int64(info.Rttvar),
		RWndLimited:   int64(info.Rwnd_limited),
		SndBufLimited: int64(info.Sndbuf_limited),
		TotalRetrans:  &retrans,
	}
	return ti, bbr, true
}

// setNotSentLowat limits the bytes c's socket holds unsent to about n, so
// that what the sender has written is soon on the wire: a close frame is
// not stuck behind megabytes of buffer, and a test's tail stays short.
func setNotSentLowat(c net.Conn, n int) {
	sc, ok := rawConn(c).(syscall.Conn)
	if !ok {
		return
	}
	if raw, err := sc.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
		})
	}
}
