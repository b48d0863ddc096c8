package netsite

import (
	"context"
	"fmt"
	"net"
)

// Run calls fn on an OS thread inside the namespace of role, and returns
// fn's error. fn runs on a goroutine of its own (so it must not call
// t.FailNow); goroutines it starts run outside the namespace. Sockets fn
// creates stay in the namespace whichever goroutine uses them later. Run
// fails with ErrClosed after Close, or when the thread cannot join or
// leave the namespace.
func (n *Net) Run(role Role, fn func() error) error {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return fmt.Errorf("run in %s: %w", n.Netns(role), ErrClosed)
	}
	return inNetns(n.Netns(role), fn)
}

// Listen is net.Listen inside the namespace of role, e.g.
// Listen(Operator, "tcp", netip.AddrPortFrom(InternetAddr, 80).String()).
func (n *Net) Listen(role Role, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.Run(role, func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket is net.ListenPacket inside the namespace of role.
func (n *Net) ListenPacket(role Role, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Run(role, func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// DialContext dials addr from inside the namespace of role; it fits
// http.Transport.DialContext. addr's host must be an IP address: a name
// would be resolved partly outside the namespace.
func (n *Net) DialContext(ctx context.Context, role Role, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Run(role, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
