package iptv

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"fieldagent/diagnostics"
)

// Target is a multicast channel: a group and UDP port, and for
// source-specific multicast (IGMPv3) the source address.
type Target struct {
	// Group is the IPv4 multicast group, e.g. 239.253.1.1.
	Group netip.Addr
	// Source is the sender for an SSM join; the zero Addr means any source
	// (an IGMPv2-style any-source join).
	Source netip.Addr
	// Port is the UDP port, e.g. 5140.
	Port uint16
}

// SSM reports whether t names a source (a source-specific join).
func (t Target) SSM() bool { return t.Source.IsValid() }

// String renders t the way ParseTarget reads it.
func (t Target) String() string {
	s := netip.AddrPortFrom(t.Group, t.Port).String()
	if t.SSM() {
		return t.Source.String() + "@" + s
	}
	return s
}

// ParseTarget reads "group:port" (e.g. "239.253.1.1:5140") or
// "source@group:port" for an SSM join. A leading "udp://", "rtp://" or
// "igmp://" as found in set-top box channel lists is accepted, and so is
// VLC's "@group:port". The group must be an IPv4 multicast address outside
// the local control block 224.0.0.0/24, the source a unicast IPv4 address,
// the port 1..65535. Errors wrap diagnostics.ErrInvalidTarget.
func ParseTarget(s string) (Target, error) {
	in := s
	for _, scheme := range []string{"udp://", "rtp://", "igmp://"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
			break
		}
	}
	var t Target
	src, grp, hasSrc := strings.Cut(s, "@")
	if !hasSrc {
		grp, src = src, ""
	}
	if src != "" {
		a, err := netip.ParseAddr(src)
		if err != nil || !a.Is4() || a.IsMulticast() || a.IsUnspecified() {
			return Target{}, fmt.Errorf("iptv target %q: source %q is not a unicast IPv4 address: %w", in, src, diagnostics.ErrInvalidTarget)
		}
		t.Source = a
	}
	host, portStr, err := splitHostPort(grp)
	if err != nil {
		return Target{}, fmt.Errorf("iptv target %q: want group:port such as 239.253.1.1:5140: %w", in, diagnostics.ErrInvalidTarget)
	}
	g, err := netip.ParseAddr(host)
	if err != nil || !g.Is4() || !g.IsMulticast() {
		return Target{}, fmt.Errorf("iptv target %q: group %q is not an IPv4 multicast address (224.0.0.0/4): %w", in, host, diagnostics.ErrInvalidTarget)
	}
	if g.IsLinkLocalMulticast() {
		return Target{}, fmt.Errorf("iptv target %q: group %s is in the local control block 224.0.0.0/24, not a channel: %w", in, g, diagnostics.ErrInvalidTarget)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return Target{}, fmt.Errorf("iptv target %q: port %q is not 1..65535: %w", in, portStr, diagnostics.ErrInvalidTarget)
	}
	t.Group, t.Port = g, uint16(port)
	return t, nil
}

// splitHostPort splits "a.b.c.d:port" without net's bracket rules (IPv4 only).
func splitHostPort(s string) (host, port string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "", "", fmt.Errorf("no port in %q", s)
	}
	return s[:i], s[i+1:], nil
}
