package diagnostics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// traceSupported returns nil: Linux has the IP_RECVERR error queue.
func traceSupported() error { return nil }

// traceProbePayload is the UDP payload of every probe.
var traceProbePayload = []byte("fieldagent traceroute probe")

// sendTraceProbe sends one UDP datagram to dst:port with the given TTL on
// its own connected socket and waits up to timeout (and ctx) for what comes
// back. Like tracepath it needs no privileges: with IP_RECVERR set, the
// ICMP time-exceeded or unreachable that the probe provokes is queued on
// the socket's error queue (MSG_ERRQUEUE) as a sock_extended_err with the
// sender as SO_EE_OFFENDER. A plain UDP reply from dst counts as reaching
// it. No answer is not an error: the zero traceAnswer is returned. The
// error is for local failures only (no route, socket errors).
func sendTraceProbe(ctx context.Context, dst netip.Addr, port, ttl int, timeout time.Duration) (traceAnswer, error) {
	v6 := dst.Is6()
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if v6 {
				serr = errors.Join(
					unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_RECVERR, 1),
					unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, ttl))
				return
			}
			serr = errors.Join(
				unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVERR, 1),
				unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TTL, ttl))
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("set TTL %d and IP_RECVERR: %w", ttl, serr)
		}
		return nil
	}}
	c, err := d.DialContext(ctx, network, netip.AddrPortFrom(dst, uint16(port)).String())
	if err != nil {
		if ctxDone(ctx) {
			return traceAnswer{}, nil
		}
		return traceAnswer{}, err
	}
	conn := c.(*net.UDPConn)
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return traceAnswer{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	rc, err := conn.SyscallConn()
	if err != nil {
		return traceAnswer{}, err
	}

	sent := time.Now()
	if _, err := conn.Write(traceProbePayload); err != nil {
		return traceAnswer{}, fmt.Errorf("send probe to %s port %d: %w", dst, port, err)
	}
	var (
		ans     traceAnswer
		readErr error
		buf     = make([]byte, 1500)
		oob     = make([]byte, 512)
	)
	err = rc.Read(func(fd uintptr) bool {
		ans, readErr = readTraceAnswer(int(fd), dst, buf, oob)
		if readErr == unix.EAGAIN {
			return false
		}
		ans.rtt = time.Since(sent)
		return true
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return traceAnswer{}, nil // silent
	case err != nil:
		return traceAnswer{}, err
	case readErr != nil:
		return traceAnswer{}, readErr
	}
	return ans, nil
}

// readTraceAnswer reads what is waiting on fd without blocking: first the
// error queue, then a plain UDP reply. A pending socket error seen by the
// plain read means an error-queue entry raced in, so the queue is read
// once more. It returns unix.EAGAIN when nothing is there yet.
func readTraceAnswer(fd int, dst netip.Addr, buf, oob []byte) (traceAnswer, error) {
	for range 2 {
		_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err == nil {
			return parseErrQueue(oob[:oobn])
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return traceAnswer{}, fmt.Errorf("read error queue: %w", err)
		}
		_, _, _, _, err = unix.Recvmsg(fd, buf, nil, unix.MSG_DONTWAIT)
		switch err {
		case nil:
			return traceAnswer{from: dst, kind: traceReached}, nil
		case unix.EAGAIN, unix.EINTR:
			return traceAnswer{}, unix.EAGAIN
		}
		// A socket error (ECONNREFUSED, EHOSTUNREACH, ...): its details
		// are on the error queue.
	}
	return traceAnswer{}, unix.EAGAIN
}

// parseErrQueue turns an error-queue message's control data into an
// answer. Local errors (no ICMP behind them) are returned as errors.
func parseErrQueue(oob []byte) (traceAnswer, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return traceAnswer{}, fmt.Errorf("parse error queue control data: %w", err)
	}
	for _, m := range msgs {
		if !(m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR) &&
			!(m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
			continue
		}
		e, err := parseExtendedErr(m.Data)
		if err != nil {
			return traceAnswer{}, err
		}
		kind, note := e.classify()
		if e.origin == soEEOriginLocal || !e.offender.IsValid() {
			return traceAnswer{}, fmt.Errorf("probe failed locally: %s", note)
		}
		return traceAnswer{from: e.offender, kind: kind, note: note}, nil
	}
	return traceAnswer{}, errors.New("error queue message without IP_RECVERR data")
}
