package ndt7

import "net"

// notSentLowat is the TCP_NOTSENT_LOWAT of a sending socket: at most about
// this much written data waits unsent in the kernel.
const notSentLowat = 128 << 10

// rawConn unwraps TLS (and any wrapper with a NetConn method) down to the
// connection that owns the socket.
func rawConn(c net.Conn) net.Conn {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		inner := w.NetConn()
		if inner == nil || inner == c {
			return c
		}
		c = inner
	}
}

// abort closes c at once with a TCP reset (SO_LINGER 0), dropping whatever
// it still has to send, so that an abandoned test does not keep the link
// busy after it returned.
func abort(c net.Conn) {
	if tc, ok := rawConn(c).(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
