//go:build !linux

package diagnostics

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"time"
)

// traceSupported returns ErrTraceUnsupported: reading ICMP errors without
// raw sockets needs Linux's IP_RECVERR error queue.
func traceSupported() error {
	return fmt.Errorf("traceroute on %s: %w", runtime.GOOS, ErrTraceUnsupported)
}

// sendTraceProbe is not available off Linux: reading ICMP errors without
// raw sockets needs Linux's IP_RECVERR error queue.
func sendTraceProbe(context.Context, netip.Addr, int, int, time.Duration) (traceAnswer, error) {
	return traceAnswer{}, traceSupported()
}
