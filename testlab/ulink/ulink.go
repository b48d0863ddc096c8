// Package ulink is a userspace network link for tests: a Linux TUN device
// whose packets are delayed, jittered, dropped and optionally rate limited
// by this process, for kernels without the netem qdisc.
//
// In host mode (the default) a simulated host sits behind the TUN device at
// Config.RemoteIP and answers IPv4 ICMP echo requests; every request and
// reply crosses the link in its own direction, so a ping sees a round trip
// of about twice Config.Delay. In relay mode (Config.Peer set) the link
// joins two TUN devices, typically in two network namespaces, and carries
// every packet between them, so real kernel endpoints talk across it.
//
// The TUN devices may be created in a named network namespace (Config.Netns)
// from a process outside it: the device is opened on a dedicated OS thread
// that joins the namespace and is discarded afterwards, and the open file
// keeps working from any thread. Processes that must run inside the
// namespace (ping, helper test binaries) are started with Netns.Command.
//
// Creating devices and namespaces needs root (CAP_NET_ADMIN and
// CAP_SYS_ADMIN), /dev/net/tun and the ip command (iproute2); Available
// says why they cannot be used, for a t.Skip message.
package ulink

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sentinel errors, returned wrapped.
var (
	// ErrInvalidConfig means a Config field is out of range; the message names it.
	ErrInvalidConfig = errors.New("invalid ulink config")
	// ErrUnsupported means TUN devices cannot be used here: not linux, not
	// root, or /dev/net/tun or the ip command is missing. The message says which.
	ErrUnsupported = errors.New("ulink unsupported here")
	// ErrNotPermitted means the kernel refused to create a network namespace
	// or TUN device (root without CAP_SYS_ADMIN or CAP_NET_ADMIN, e.g. in an
	// unprivileged container).
	ErrNotPermitted = errors.New("ulink not permitted")
)

// DefaultQueueLen is how many packets may wait in each direction when
// Config.QueueLen is 0 (netem's default limit).
const DefaultQueueLen = 1000

// maxPacket is the largest packet read from a TUN device.
const maxPacket = 65535

// Config describes a link. Zero Delay, Jitter, Loss and Rate make a link
// that forwards at once, drops nothing and is not rate limited. The
// shaping applies to each direction separately: a ping through a link
// with Loss 0.1 loses about 19% of round trips.
type Config struct {
	// Netns is the name of the network namespace (as made by `ip netns add`
	// or NewNetns) in which to create the TUN device; "" is this process's.
	Netns Netns
	// Name is the TUN device name, 1 to 15 bytes, unique in its namespace.
	Name string
	// LocalCIDR is the address and prefix given to the TUN device, e.g.
	// 10.201.0.1/24: the address the kernel side of the link has.
	LocalCIDR netip.Prefix
	// RemoteIP is the IPv4 address of the simulated host that answers ICMP
	// echo requests in host mode. When it is outside LocalCIDR a /32 route
	// to it through the device is added. It must be unset in relay mode.
	RemoteIP netip.Addr
	// Peer, when non-nil, switches to relay mode: the link carries packets
	// between this TUN device and the one Peer describes.
	Peer *Endpoint

	// Delay is the one-way delay each packet gets in each direction. Go's
	// timers wake up to about a millisecond late, so a packet arrives a
	// fraction of a millisecond after Delay, never before.
	Delay time.Duration
	// Jitter, when positive, adds a uniformly random extra delay in
	// [-Jitter, +Jitter] to each packet (the total never below zero).
	// Packets still leave in the order they came: jitter never reorders.
	Jitter time.Duration
	// Loss is the probability, 0 to 1, that a packet is dropped, drawn for
	// each packet in each direction.
	Loss float64
	// Rate, when positive, limits each direction to Rate bit/s: a packet
	// leaves after the ones ahead of it are serialized, plus its delay.
	Rate int64
	// QueueLen is the most packets that may wait in one direction; more are
	// dropped and counted in Stats.Overflow. 0 means DefaultQueueLen.
	QueueLen int
	// Seed seeds the random loss and jitter. Links with the same Config see
	// the same losses and jitter for the same sequence of packets.
	Seed uint64
}

// Endpoint is the far TUN device of a relay link.
type Endpoint struct {
	// Netns is the device's network namespace; "" is this process's.
	Netns Netns
	// Name is the device name, 1 to 15 bytes.
	Name string
	// LocalCIDR is the device's address and prefix, e.g. 10.201.0.2/24.
	LocalCIDR netip.Prefix
}

// Stats are a link's packet counters since Start.
type Stats struct {
	// In counts packets read from the TUN device(s).
	In uint64
	// Out counts packets written to the TUN device(s): echo replies in host
	// mode, relayed packets in relay mode.
	Out uint64
	// Dropped counts packets lost to Config.Loss, in either direction.
	Dropped uint64
	// Overflow counts packets dropped because QueueLen packets were waiting.
	Overflow uint64
	// Ignored counts packets the simulated host does not answer (host mode):
	// anything but a valid IPv4 ICMP echo request to RemoteIP, such as the
	// IPv6 router solicitations a new device sends. They are not shaped and
	// draw no random numbers.
	Ignored uint64
	// Errors counts packets the kernel refused to take.
	Errors uint64
}

// counters are Stats, updated concurrently.
type counters struct {
	in, out, dropped, overflow, ignored, errors atomic.Uint64
}

// device is a TUN device as the link uses it; *os.File for a real one.
// Close must make a blocked Read return.
type device interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// Link is a running link. Its methods are safe for concurrent use.
type Link struct {
	ctx    context.Context // ends when the link stops
	cancel context.CancelFunc
	wg     sync.WaitGroup
	c      counters
	ipID   atomic.Uint32

	errOnce sync.Once
	err     error // first failure; set before cancel
}

// Start creates the TUN device(s) that cfg describes, brings them up with
// their addresses and starts carrying packets. The link stops when ctx ends
// or Close is called; call Close in both cases, to wait for it to stop.
// Start fails with ErrInvalidConfig, ErrUnsupported or ErrNotPermitted
// (wrapped), or with the ip command's complaint.
func Start(ctx context.Context, cfg Config) (*Link, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	ends := []Endpoint{{Netns: cfg.Netns, Name: cfg.Name, LocalCIDR: cfg.LocalCIDR}}
	if cfg.Peer != nil {
		ends = append(ends, *cfg.Peer)
	}
	var devs []device
	for _, e := range ends {
		dev, err := openTUN(e.Netns, e.Name)
		if err == nil {
			devs = append(devs, dev)
			err = configure(ctx, e, cfg.RemoteIP)
		}
		if err != nil {
			for _, d := range devs {
				d.Close()
			}
			return nil, err
		}
	}
	return start(ctx, cfg, devs), nil
}

// withDefaults fills in QueueLen and checks every field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	bad := func(format string, args ...any) (Config, error) {
		return cfg, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
	}
	ends := []Endpoint{{Netns: cfg.Netns, Name: cfg.Name, LocalCIDR: cfg.LocalCIDR}}
	if cfg.Peer != nil {
		ends = append(ends, *cfg.Peer)
	}
	for _, e := range ends {
		switch {
		case e.Name == "" || len(e.Name) > 15 || strings.ContainsAny(e.Name, "/: \t\n") || e.Name == "." || e.Name == "..":
			return bad("device name %q is not 1 to 15 bytes without '/', ':' or spaces", e.Name)
		case strings.ContainsAny(string(e.Netns), "/ \t\n") || e.Netns == "." || e.Netns == "..":
			return bad("namespace %q is not a name as `ip netns add` takes it", e.Netns)
		case !e.LocalCIDR.IsValid():
			return bad("device %s has no LocalCIDR", e.Name)
		}
	}
	switch {
	case cfg.Delay < 0 || cfg.Jitter < 0:
		return bad("delay %s and jitter %s must not be negative", cfg.Delay, cfg.Jitter)
	case !(cfg.Loss >= 0 && cfg.Loss <= 1): // also catches NaN
		return bad("loss %v is not between 0 and 1", cfg.Loss)
	case cfg.Rate < 0:
		return bad("rate %d bit/s is negative", cfg.Rate)
	case cfg.QueueLen < 0:
		return bad("queue length %d is negative", cfg.QueueLen)
	}
	if cfg.Peer != nil {
		if cfg.RemoteIP.IsValid() {
			return bad("RemoteIP %s is set on a relay link (Peer set): the hosts are the kernels at both ends", cfg.RemoteIP)
		}
		if cfg.Peer.Netns == cfg.Netns && cfg.Peer.Name == cfg.Name {
			return bad("both ends are device %s in namespace %q", cfg.Name, cfg.Netns)
		}
		return cfg, nil
	}
	switch {
	case !cfg.RemoteIP.Is4():
		return bad("RemoteIP %v is not an IPv4 address (host mode answers IPv4 echo requests)", cfg.RemoteIP)
	case cfg.RemoteIP == cfg.LocalCIDR.Addr():
		return bad("RemoteIP %s is the device's own address", cfg.RemoteIP)
	}
	return cfg, nil
}

// start runs a link with config cfg (defaults applied) over devs: one
// device in host mode, two in relay mode. The link owns devs.
func start(ctx context.Context, cfg Config, devs []device) *Link {
	ctx, cancel := context.WithCancel(ctx)
	l := &Link{ctx: ctx, cancel: cancel}
	var shapers []*shaper
	if len(devs) == 1 {
		toKernel := newShaper(cfg, 1, &l.c, func(p []byte) { l.write(devs[0], p) })
		toHost := newShaper(cfg, 0, &l.c, toKernel.offer) // the reply is answered on arrival
		shapers = append(shapers, toHost, toKernel)
		l.wg.Go(func() {
			l.read(ctx, devs[0], func(p []byte) {
				reply, ok := echoReply(p, cfg.RemoteIP, uint16(l.ipID.Add(1)))
				if !ok {
					l.c.ignored.Add(1)
					return
				}
				// The request crosses toHost as its same-sized reply.
				toHost.offer(reply)
			})
		})
	} else {
		for i, dev := range devs {
			other := devs[1-i]
			sh := newShaper(cfg, uint64(i), &l.c, func(p []byte) { l.write(other, p) })
			shapers = append(shapers, sh)
			l.wg.Go(func() { l.read(ctx, dev, sh.offer) })
		}
	}
	for _, sh := range shapers {
		l.wg.Go(func() { sh.run(ctx) })
	}
	l.wg.Go(func() {
		<-ctx.Done()
		for _, d := range devs {
			if err := d.Close(); err != nil {
				l.fail(fmt.Errorf("close TUN device: %w", err))
			}
		}
	})
	return l
}

// read passes each packet read from dev to handle until ctx ends or a read fails.
func (l *Link) read(ctx context.Context, dev device, handle func([]byte)) {
	buf := make([]byte, maxPacket)
	for {
		n, err := dev.Read(buf)
		if err != nil {
			if ctx.Err() == nil {
				l.fail(fmt.Errorf("read TUN device: %w", err))
			}
			return
		}
		if n == 0 {
			continue
		}
		l.c.in.Add(1)
		handle(append([]byte(nil), buf[:n]...))
	}
}

// write writes p to dev, counting it in Out or, refused while the link
// runs, in Errors.
func (l *Link) write(dev device, p []byte) {
	if _, err := dev.Write(p); err != nil {
		if l.ctx.Err() == nil {
			l.c.errors.Add(1)
		}
		return
	}
	l.c.out.Add(1)
}

// fail records err as the link's failure, if it is the first, and stops the link.
func (l *Link) fail(err error) {
	l.errOnce.Do(func() { l.err = err })
	l.cancel()
}

// Stats returns the link's counters.
func (l *Link) Stats() Stats {
	return Stats{
		In:       l.c.in.Load(),
		Out:      l.c.out.Load(),
		Dropped:  l.c.dropped.Load(),
		Overflow: l.c.overflow.Load(),
		Ignored:  l.c.ignored.Load(),
		Errors:   l.c.errors.Load(),
	}
}

// Close stops the link, discards the packets in flight, closes the TUN
// devices (which removes them and their addresses and routes) and waits
// for all of the link's goroutines to end. It returns the first error that
// stopped the link early, if any; nil when only Close or ctx stopped it.
// Close may be called more than once.
func (l *Link) Close() error {
	l.cancel()
	l.wg.Wait() // only the link's goroutines call fail
	return l.err
}
