// Package netsite builds a customer site out of Linux network namespaces:
// the technician's laptop, the customer's gateway and the operator network,
// joined by veth pairs.
//
//	laptop (LaptopAddr) ── LAN ── (GatewayLANAddr) gateway (GatewayWANAddr) ── WAN ── (OperatorAddr, InternetAddr) operator
//
// The gateway forwards and masquerades LAN traffic to the WAN with an
// nftables table of its own, only while its simulated WAN (the PPPoE
// session) is up: SetWANUp. The WAN is shaped to the package rate with tc
// tbf, in each direction on the sending side. netem is not built into
// every kernel, so delay, jitter and loss come from the lab's userspace
// link (testlab/ulink), which then replaces the WAN veth pair with two TUN
// devices.
//
// In-process servers and clients open their sockets inside a namespace with
// Run, Listen, ListenPacket or DialContext; a socket stays in the namespace
// it was made in whichever goroutine uses it.
//
// Every namespace, link and table is named after Options.Instance and goes
// away with Close; Clean removes those of labs that crashed before Close.
// A site needs root and the ip, tc and nft commands; without them Up fails
// with ErrUnavailable, and the lab runs the site on loopback instead.
package netsite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldagent/testlab/ulink"
)

// Sentinel errors, returned wrapped.
var (
	// ErrUnavailable means network namespaces cannot be used here: not
	// linux, not root, or a command is missing. The message says which;
	// the lab then runs the site on loopback.
	ErrUnavailable = errors.New("network namespaces unavailable")
	// ErrInvalidOptions means an Options field is out of range; the message names it.
	ErrInvalidOptions = errors.New("invalid netsite options")
	// ErrClosed means the site was closed.
	ErrClosed = errors.New("netsite closed")
)

// Role is one of the site's three network namespaces. Its string is the
// last part of the namespace name.
type Role string

// The roles of a site.
const (
	Laptop   Role = "laptop" // the technician's laptop, on the customer's LAN
	Gateway  Role = "gw"     // the customer's gateway (router/modem)
	Operator Role = "op"     // the operator network and "the internet"
)

var roles = []Role{Laptop, Gateway, Operator}

// Addresses inside a site. They exist only in the site's own namespaces,
// which have no link to the host's, so they cannot clash with the host's
// addresses or routes.
var (
	// LANPrefix is the customer's LAN; the laptop's default route is the gateway.
	LANPrefix      = netip.MustParsePrefix("192.168.1.0/24")
	GatewayLANAddr = netip.MustParseAddr("192.168.1.1")
	LaptopAddr     = netip.MustParseAddr("192.168.1.2")
	// WANPrefix is the access line (shared address space, RFC 6598); the
	// gateway holds the "PPPoE" address and its default route is the operator.
	WANPrefix      = netip.MustParsePrefix("100.64.0.0/24")
	OperatorAddr   = netip.MustParseAddr("100.64.0.1")
	GatewayWANAddr = netip.MustParseAddr("100.64.0.2")
	// InternetAddr (TEST-NET-3, RFC 5737) sits on the operator namespace's
	// loopback: a server "on the internet" listens there.
	InternetAddr = netip.MustParseAddr("203.0.113.10")
)

// NamePrefix starts the name of every namespace a site creates:
// NamePrefix + Instance + "-" + Role.
const NamePrefix = "fa-"

// MaxInstanceLen is the longest Options.Instance: the link names
// "fa-<instance>-lan" and "fa-<instance>-wan" must fit Linux's 15 bytes.
const MaxInstanceLen = 15 - len(NamePrefix+"-lan")

// instanceRE is what an instance may be; lowercase letters and digits keep
// every derived name (namespace, link, nft table) valid and parseable.
var instanceRE = regexp.MustCompile(`^[a-z0-9]{1,` + strconv.Itoa(MaxInstanceLen) + `}$`)

// leftoverRE matches the namespace names of any site.
var leftoverRE = regexp.MustCompile(`^` + NamePrefix + `[a-z0-9]{1,` + strconv.Itoa(MaxInstanceLen) + `}-(laptop|gw|op)$`)

// tbfLatency bounds the time a packet may wait in a WAN tbf queue: a
// modest access line buffer, with room for the userspace link's goroutines
// to be scheduled late without the line running idle.
const tbfLatency = "50ms"

// netnsDir is where `ip netns add` binds named namespaces.
const netnsDir = "/run/netns"

// commandTimeout bounds each ip, tc or nft command.
const commandTimeout = 10 * time.Second

// Options describe a site. The zero value of every field but Instance means
// "not shaped".
type Options struct {
	// Instance names the site: 1 to MaxInstanceLen lowercase letters and
	// digits, unique among the sites on the host. It is part of every name.
	Instance string
	// PackageDownMbps and PackageUpMbps are the package's rates in Mbit/s:
	// tbf on the operator's side of the WAN (towards the gateway) and on
	// the gateway's side (towards the operator). 0 leaves a direction unshaped.
	PackageDownMbps float64
	PackageUpMbps   float64
	// Delay, Jitter and Loss, when any is set, put the userspace link
	// (testlab/ulink) on the WAN instead of a veth pair: each direction gets
	// Delay ± Jitter and drops packets with probability Loss (0 to 1).
	// The tbf shaping still applies, on the TUN devices. Needs /dev/net/tun.
	Delay  time.Duration
	Jitter time.Duration
	Loss   float64
}

// validate checks every field.
func (o Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidOptions)
	}
	switch {
	case !instanceRE.MatchString(o.Instance):
		return bad("instance %q is not 1 to %d lowercase letters and digits (it names links, which Linux limits to 15 bytes)", o.Instance, MaxInstanceLen)
	case !(o.PackageDownMbps >= 0) || !(o.PackageUpMbps >= 0): // also catches NaN
		return bad("package rates %v/%v Mbit/s must not be negative", o.PackageDownMbps, o.PackageUpMbps)
	case o.Delay < 0 || o.Jitter < 0:
		return bad("delay %s and jitter %s must not be negative", o.Delay, o.Jitter)
	case !(o.Loss >= 0 && o.Loss <= 1):
		return bad("loss %v is not between 0 and 1", o.Loss)
	}
	return nil
}

// userspaceLink reports whether o needs the userspace link on the WAN.
func (o Options) userspaceLink() bool {
	return o.Delay > 0 || o.Jitter > 0 || o.Loss > 0
}

// Net is a running site. Its methods are safe for concurrent use.
type Net struct {
	opts Options
	link *ulink.Link // the WAN when Options asks for delay or loss; nil otherwise

	mu     sync.Mutex
	closed bool
}

// Available returns nil when Up can build a site here: linux, root, and the
// ip, tc and nft commands on PATH. Otherwise its error wraps ErrUnavailable
// and says what is missing.
func Available() error {
	var missing []string
	if err := platformAvailable(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("root (running as uid %d)", os.Geteuid()))
	}
	for _, tool := range []struct{ cmd, pkg string }{{"ip", "iproute2"}, {"tc", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(tool.cmd); err != nil {
			missing = append(missing, fmt.Sprintf("the %s command (%s)", tool.cmd, tool.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: a namespaced site needs %s; as root, `make test-deps` installs the tools", ErrUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

// Up builds the site that opts describe, with the WAN down. ctx bounds the
// setup only; the site lasts until Close. On failure Up removes what it
// made. Errors wrap ErrInvalidOptions, or ErrUnavailable when this process
// may not build namespaces (fall back to loopback), or carry the failing
// command's complaint, e.g. when a site of the same instance exists
// already (run `fieldagent lab clean`).
func Up(ctx context.Context, opts Options) (*Net, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.userspaceLink() {
		if err := ulink.Available(); err != nil {
			return nil, fmt.Errorf("%w: delay, jitter or loss need the userspace link: %w", ErrUnavailable, err)
		}
	}
	n := &Net{opts: opts}
	var made []string
	err := n.build(ctx, &made)
	if err != nil {
		if n.link != nil {
			n.link.Close()
		}
		for _, ns := range made {
			if derr := ipNetnsDelete(context.WithoutCancel(ctx), ns); derr != nil {
				err = fmt.Errorf("%w (and cleanup: %w)", err, derr)
			}
		}
		return nil, fmt.Errorf("netsite %s: %w", opts.Instance, err)
	}
	return n, nil
}

// build makes the namespaces (appending each to made as it exists), links,
// addresses, routes, qdiscs and the nft table.
func (n *Net) build(ctx context.Context, made *[]string) error {
	laptop, gw, op := n.Netns(Laptop), n.Netns(Gateway), n.Netns(Operator)
	lan, wan := n.linkName("lan"), n.linkName("wan")
	for _, ns := range []string{laptop, gw, op} {
		if err := run(ctx, "", "ip", "netns", "add", ns); err != nil {
			return err
		}
		*made = append(*made, ns)
	}
	// The veth ends are created straight in their namespaces, so nothing of
	// the site ever appears in the host's namespace; each end is named after
	// the segment it is on, the same in both namespaces.
	steps := [][]string{
		{"ip", "link", "add", lan, "netns", laptop, "type", "veth", "peer", "name", lan, "netns", gw},
		{"ip", "-n", laptop, "addr", "add", prefixed(LaptopAddr, LANPrefix), "dev", lan},
		{"ip", "-n", gw, "addr", "add", prefixed(GatewayLANAddr, LANPrefix), "dev", lan},
		{"ip", "-n", op, "addr", "add", InternetAddr.String() + "/32", "dev", "lo"},
	}
	if !n.opts.userspaceLink() {
		steps = append(steps,
			[]string{"ip", "link", "add", wan, "netns", gw, "type", "veth", "peer", "name", wan, "netns", op},
			[]string{"ip", "-n", gw, "addr", "add", prefixed(GatewayWANAddr, WANPrefix), "dev", wan},
			[]string{"ip", "-n", op, "addr", "add", prefixed(OperatorAddr, WANPrefix), "dev", wan},
		)
	}
	for _, ns := range []string{laptop, gw, op} {
		steps = append(steps, []string{"ip", "-n", ns, "link", "set", "lo", "up"})
	}
	steps = append(steps,
		[]string{"ip", "-n", laptop, "link", "set", lan, "up"},
		[]string{"ip", "-n", gw, "link", "set", lan, "up"},
	)
	if !n.opts.userspaceLink() {
		steps = append(steps,
			[]string{"ip", "-n", gw, "link", "set", wan, "up"},
			[]string{"ip", "-n", op, "link", "set", wan, "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, "", s[0], s[1:]...); err != nil {
			return err
		}
	}
	if n.opts.userspaceLink() {
		// The link outlives ctx: it stops at Close.
		l, err := ulink.Start(context.WithoutCancel(ctx), ulink.Config{
			Netns:     ulink.Netns(gw),
			Name:      wan,
			LocalCIDR: netip.PrefixFrom(GatewayWANAddr, WANPrefix.Bits()),
			Peer: &ulink.Endpoint{
				Netns:     ulink.Netns(op),
				Name:      wan,
				LocalCIDR: netip.PrefixFrom(OperatorAddr, WANPrefix.Bits()),
			},
			Delay:  n.opts.Delay,
			Jitter: n.opts.Jitter,
			Loss:   n.opts.Loss,
		})
		if errors.Is(err, ulink.ErrNotPermitted) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if err != nil {
			return fmt.Errorf("start the userspace WAN link: %w", err)
		}
		n.link = l
	}
	steps = [][]string{
		{"ip", "-n", laptop, "route", "add", "default", "via", GatewayLANAddr.String()},
		{"ip", "-n", gw, "route", "add", "default", "via", OperatorAddr.String()},
	}
	// A 64 KiB burst lets one GSO segment through whole (as netnstest does).
	for _, sh := range []struct {
		ns   string
		mbps float64
	}{{op, n.opts.PackageDownMbps}, {gw, n.opts.PackageUpMbps}} {
		if sh.mbps > 0 {
			rate := strconv.FormatInt(int64(sh.mbps*1e3+0.5), 10) + "kbit"
			steps = append(steps, []string{"tc", "-n", sh.ns, "qdisc", "add", "dev", wan, "root", "tbf",
				"rate", rate, "burst", "64kb", "latency", tbfLatency})
		}
	}
	for _, s := range steps {
		if err := run(ctx, "", s[0], s[1:]...); err != nil {
			return err
		}
	}
	if err := n.Run(Gateway, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0)
	}); err != nil {
		return fmt.Errorf("enable forwarding in %s: %w", gw, err)
	}
	return n.nft(ctx, n.ruleset(false))
}

// Netns returns the name of the namespace of role, for `ip netns exec`.
func (n *Net) Netns(role Role) string {
	return NamePrefix + n.opts.Instance + "-" + string(role)
}

// Options returns the options the site was built with.
func (n *Net) Options() Options { return n.opts }

// linkName returns the name of the link on segment seg ("lan" or "wan").
func (n *Net) linkName(seg string) string {
	return NamePrefix + n.opts.Instance + "-" + seg
}

// TableName returns the name of the site's nft table (family inet) in the
// gateway namespace.
func (n *Net) TableName() string {
	return "fa_" + n.opts.Instance
}

// ruleset returns the nft script that (re)defines the gateway's table with
// the WAN up or down. Down, the forward chain drops everything, established
// connections too, and nothing is masqueraded.
func (n *Net) ruleset(up bool) string {
	var b strings.Builder
	table := "inet " + n.TableName()
	fmt.Fprintf(&b, "table %s {}\ndelete table %s\n", table, table) // create-then-delete: atomic replace
	fmt.Fprintf(&b, "table %s {\n", table)
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n")
	if up {
		lan, wan := n.linkName("lan"), n.linkName("wan")
		fmt.Fprintf(&b, "\t\tiifname %q oifname %q accept\n", lan, wan)
		fmt.Fprintf(&b, "\t\tiifname %q oifname %q ct state established,related accept\n", wan, lan)
	}
	b.WriteString("\t}\n")
	b.WriteString("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	if up {
		fmt.Fprintf(&b, "\t\toifname %q masquerade\n", n.linkName("wan"))
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// nft runs script with nft -f in the gateway namespace.
func (n *Net) nft(ctx context.Context, script string) error {
	return run(ctx, script, "ip", "netns", "exec", n.Netns(Gateway), "nft", "-f", "-")
}

// SetWANUp brings the simulated WAN up (the gateway forwards and
// masquerades LAN traffic to the WAN) or down (it forwards nothing, and
// connections through it stall). A site starts with the WAN down. It fails
// with ErrClosed after Close, or with nft's complaint.
func (n *Net) SetWANUp(up bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("set WAN of %s: %w", n.opts.Instance, ErrClosed)
	}
	if err := n.nft(context.Background(), n.ruleset(up)); err != nil {
		return fmt.Errorf("set WAN of %s up=%t: %w", n.opts.Instance, up, err)
	}
	return nil
}

// Close removes everything the site made: the userspace link, the nft
// table, the veth pairs and the namespaces. Links and table are deleted
// explicitly, since a namespace outlives its name while a socket made in
// it is open; such sockets are left with only a loopback. Close goes on
// after a failure and returns every failure joined; a second Close returns nil.
func (n *Net) Close(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	if n.link != nil {
		if err := n.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("userspace WAN link: %w", err))
		}
	}
	gw := n.Netns(Gateway)
	errs = append(errs, run(ctx, "", "ip", "netns", "exec", gw, "nft", "delete", "table", "inet", n.TableName()))
	errs = append(errs, run(ctx, "", "ip", "-n", gw, "link", "delete", n.linkName("lan")))
	if n.link == nil {
		errs = append(errs, run(ctx, "", "ip", "-n", gw, "link", "delete", n.linkName("wan")))
	}
	for _, r := range roles {
		errs = append(errs, ipNetnsDelete(ctx, n.Netns(r)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close netsite %s: %w", n.opts.Instance, err)
	}
	return nil
}

// Clean deletes the namespaces of sites whose names start with prefix
// (NamePrefix for all of them, NamePrefix+instance+"-" for one site), with
// their links, qdiscs and tables: what a lab that crashed before Close left
// behind, for `fieldagent lab clean`. It touches only names of the form
// Up makes ("fa-<instance>-laptop|gw|op"), not other tests' namespaces.
// Sites still running lose their namespaces too. It returns the names it
// deleted, and every failure joined.
func Clean(ctx context.Context, prefix string) (removed []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var errs []error
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], prefix) || !leftoverRE.MatchString(fields[0]) {
			continue
		}
		if err := ipNetnsDelete(ctx, fields[0]); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, fields[0])
	}
	return removed, errors.Join(errs...)
}

// ipNetnsDelete deletes namespace ns.
func ipNetnsDelete(ctx context.Context, ns string) error {
	return run(ctx, "", "ip", "netns", "delete", ns)
}

// prefixed returns addr with the length of p, e.g. "192.168.1.2/24".
func prefixed(addr netip.Addr, p netip.Prefix) string {
	return netip.PrefixFrom(addr, p.Bits()).String()
}

// run runs name with args, bounded by commandTimeout, and returns its output
// in the error; a refusal by the kernel wraps ErrUnavailable. stdin, when
// not "", is its standard input.
func run(ctx context.Context, stdin string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "not permitted") { // root without CAP_SYS_ADMIN/CAP_NET_ADMIN, e.g. in a container
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return nil
}
