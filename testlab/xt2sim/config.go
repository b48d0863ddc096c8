package xt2sim

import (
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// block is one section of a configuration: a header line ("" for the
// top-level lines) and the lines under it, in the order they were set.
type block struct {
	head  string
	lines []string
}

// config is a whole configuration (running, startup or candidate). Blocks
// keep a canonical order when rendered; see blockRank.
type config struct {
	blocks []*block
}

// wanPort, lanPorts and dialerName are the router's fixed interfaces.
const (
	wanPort    = "GigabitEthernet0/0/0"
	dialerName = "Dialer1"
)

// ethPorts lists the Ethernet ports: the WAN port first, then LAN 1–4.
var ethPorts = [...]string{wanPort, "GigabitEthernet0/0/1", "GigabitEthernet0/0/2", "GigabitEthernet0/0/3", "GigabitEthernet0/0/4"}

// factoryConfig is the configuration a new XT-2 ships with.
func factoryConfig(sysname string) *config {
	c := &config{}
	c.global().lines = []string{"sysname " + sysname}
	for _, p := range ethPorts {
		b := c.ensure("interface " + p)
		if p == ethPorts[1] {
			b.lines = []string{"ip address 192.168.1.1 255.255.255.0"}
		}
	}
	return c
}

func (c *config) clone() *config {
	out := &config{blocks: make([]*block, len(c.blocks))}
	for i, b := range c.blocks {
		out.blocks[i] = &block{head: b.head, lines: slices.Clone(b.lines)}
	}
	return out
}

func (c *config) find(head string) *block {
	for _, b := range c.blocks {
		if strings.EqualFold(b.head, head) {
			return b
		}
	}
	return nil
}

// global returns the block of top-level lines, creating it if needed.
func (c *config) global() *block { return c.ensure("") }

// ensure returns the block with head, creating it in canonical order.
func (c *config) ensure(head string) *block {
	if b := c.find(head); b != nil {
		return b
	}
	b := &block{head: head}
	c.blocks = append(c.blocks, b)
	slices.SortStableFunc(c.blocks, func(x, y *block) int {
		if d := blockRank(x.head) - blockRank(y.head); d != 0 {
			return d
		}
		return strings.Compare(x.head, y.head)
	})
	return b
}

func (c *config) remove(head string) bool {
	n := len(c.blocks)
	c.blocks = slices.DeleteFunc(c.blocks, func(b *block) bool { return strings.EqualFold(b.head, head) })
	return len(c.blocks) != n
}

func blockRank(head string) int {
	switch {
	case head == "":
		return 0
	case strings.HasPrefix(head, "acl "):
		return 1
	case strings.HasPrefix(head, "ip pool "):
		return 2
	case strings.HasPrefix(head, "interface GigabitEthernet"):
		return 3
	case strings.HasPrefix(head, "interface "):
		return 4
	}
	return 5
}

// value returns the rest of the first line of block head that starts with
// prefix (a whole-word prefix), and whether there is one.
func (c *config) value(head, prefix string) (string, bool) {
	b := c.find(head)
	if b == nil {
		return "", false
	}
	for _, l := range b.lines {
		if l == prefix {
			return "", true
		}
		if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
			return rest, true
		}
	}
	return "", false
}

// set puts line into block head, replacing the line with the same first
// key words (key 0 means the whole line is the key).
func (c *config) set(head, line string, key int) {
	b := c.ensure(head)
	k := lineKey(line, key)
	for i, l := range b.lines {
		if strings.EqualFold(lineKey(l, key), k) {
			b.lines[i] = line
			return
		}
	}
	b.lines = append(b.lines, line)
}

// unset removes the lines of block head that start with the words of
// prefix; it reports whether any did.
func (c *config) unset(head, prefix string) bool {
	b := c.find(head)
	if b == nil {
		return false
	}
	pw := strings.Fields(prefix)
	n := len(b.lines)
	b.lines = slices.DeleteFunc(b.lines, func(l string) bool {
		lw := strings.Fields(l)
		if len(lw) < len(pw) {
			return false
		}
		for i := range pw {
			if !strings.EqualFold(lw[i], pw[i]) {
				return false
			}
		}
		return true
	})
	return len(b.lines) != n
}

func lineKey(line string, key int) string {
	w := strings.Fields(line)
	if key <= 0 || key > len(w) {
		return strings.Join(w, " ")
	}
	return strings.Join(w[:key], " ")
}

// render prints the configuration as display current-configuration does.
// Passwords are shown in cipher form, never in clear.
func (c *config) render() []string {
	out := []string{}
	var routes []string
	if g := c.find(""); g != nil {
		out = append(out, "#")
		for _, l := range g.lines {
			if strings.HasPrefix(l, "ip route-static") {
				routes = append(routes, l)
				continue
			}
			out = append(out, " "+cipherLine(l))
		}
	}
	for _, b := range c.blocks {
		if b.head == "" {
			continue
		}
		out = append(out, "#", b.head)
		for _, l := range b.lines {
			out = append(out, " "+cipherLine(l))
		}
	}
	if len(routes) > 0 {
		out = append(out, "#")
		out = append(out, routes...)
	}
	return append(out, "#", "return")
}

// cipherLine replaces the word after "cipher" with an opaque, stable
// cipher text, as the router stores passwords.
func cipherLine(l string) string {
	w := strings.Fields(l)
	for i := 0; i+1 < len(w); i++ {
		if w[i] == "cipher" {
			sum := sha256.Sum256([]byte("xt2sim:" + w[i+1]))
			w[i+1] = "%^%#" + base64.RawStdEncoding.EncodeToString(sum[:18]) + "%^%#"
		}
	}
	return strings.Join(w, " ")
}

// maskLine replaces the word after "cipher" with "******" for logs.
func maskLine(l string) string {
	w := strings.Fields(l)
	for i := 0; i+1 < len(w); i++ {
		if strings.EqualFold(w[i], "cipher") {
			w[i+1] = "******"
		}
	}
	return strings.Join(w, " ")
}

// edit is one pending change of a session's candidate configuration.
type edit struct {
	head   string // block the change is in; "" for system view lines
	line   string // the configuration line (or, for undo, its prefix)
	key    int    // key words for replacement (set only)
	undo   bool   // remove instead of set
	create bool   // create block head (line is empty)
	drop   bool   // remove block head entirely
}

// apply applies e to c; it reports false when an undo found nothing.
func (e edit) apply(c *config) bool {
	switch {
	case e.create:
		c.ensure(e.head)
	case e.drop:
		return c.remove(e.head)
	case e.undo:
		return c.unset(e.head, e.line)
	default:
		c.set(e.head, e.line, e.key)
	}
	return true
}

// render prints the edit as display configuration candidate shows it.
func (e edit) render() string {
	switch {
	case e.create:
		return e.head
	case e.drop:
		return "undo " + e.head
	case e.undo:
		return " undo " + cipherLine(e.line)
	}
	return " " + cipherLine(e.line)
}

// Grammar of the CLI. A pattern is a list of words: literals, or the
// placeholders below.
const (
	phWord   = "<word>"   // any word
	phText   = "<text>"   // the rest of the line (one word or more)
	phInt    = "<int>"    // a decimal number
	phIP     = "<ip>"     // an IPv4 address
	phIPs    = "<ips>"    // one IPv4 address or more
	phIfname = "<ifname>" // an interface name
)

// cmdKind says what a pattern does.
type cmdKind int

const (
	kindSet      cmdKind = iota // a configuration line in the current view
	kindEnter                   // enters a block view (creates it)
	kindDisplay                 // a display command
	kindSession                 // a session command (quit, commit, ...)
	kindGlobal                  // a top-level line set from system view
	kindAction                  // a test command (ping, speed-test; diag.go)
	kindUndoOnly                // never valid
)

// pattern is one command of a view.
type pattern struct {
	words []string
	kind  cmdKind
	key   int    // replacement key for kindSet (0 = whole line)
	name  string // action name for display and session commands
}

func p(kind cmdKind, key int, name, spec string) pattern {
	return pattern{words: strings.Fields(spec), kind: kind, key: key, name: name}
}

// viewKind is where the user is in the CLI.
type viewKind int

const (
	viewUser viewKind = iota
	viewSystem
	viewEth    // interface GigabitEthernet…
	viewDialer // interface Dialer…
	viewPool   // ip pool NAME
	viewACL    // acl number N
)

var (
	displayPatterns = []pattern{
		p(kindDisplay, 0, "version", "display version"),
		p(kindDisplay, 0, "interface-brief", "display interface brief"),
		p(kindDisplay, 0, "interface", "display interface "+phIfname),
		p(kindDisplay, 0, "interface-all", "display interface"),
		p(kindDisplay, 0, "pppoe", "display pppoe-client session summary"),
		p(kindDisplay, 0, "ip-brief", "display ip interface brief"),
		p(kindDisplay, 0, "bbms", "display bbms binding"),
		p(kindDisplay, 0, "current", "display current-configuration"),
		p(kindDisplay, 0, "saved", "display saved-configuration"),
		p(kindDisplay, 0, "candidate", "display configuration candidate"),
	}
	anyViewPatterns = []pattern{
		p(kindSession, 0, "quit", "quit"),
		p(kindSession, 0, "return", "return"),
		p(kindSession, 0, "save", "save"),
		p(kindSession, 0, "commit", "commit"),
		p(kindSession, 0, "abort", "abort"),
	}
	userPatterns = []pattern{
		p(kindSession, 0, "system-view", "system-view"),
		p(kindSession, 0, "screen-length", "screen-length 0 temporary"),
	}
	configAnyPatterns = []pattern{
		p(kindDisplay, 0, "this", "display this"),
	}
	systemPatterns = []pattern{
		p(kindGlobal, 1, "", "sysname "+phWord),
		p(kindGlobal, 0, "", "ip route-static "+phIP+" "+phIP+" "+phWord),
		p(kindGlobal, 3, "", "bbms bind customer "+phWord),
		p(kindEnter, 0, "interface", "interface "+phIfname),
		p(kindEnter, 0, "pool", "ip pool "+phWord),
		p(kindEnter, 0, "acl", "acl number "+phInt),
	}
	ifCommon = []pattern{
		p(kindSet, 1, "", "description "+phText),
		p(kindSet, 1, "", "shutdown"),
		p(kindSet, 2, "", "ip address "+phIP+" "+phIP),
		p(kindSet, 2, "", "nat outbound "+phInt),
		p(kindSet, 1, "", "mtu "+phInt),
	}
	ethPatterns = append([]pattern{
		p(kindSet, 1, "", "pppoe-client dial-bundle-number "+phInt),
		p(kindSet, 2, "", "ip address dhcp-alloc"),
	}, ifCommon...)
	dialerPatterns = append([]pattern{
		p(kindSet, 2, "", "dialer user "+phWord),
		p(kindSet, 2, "", "dialer bundle "+phInt),
		p(kindSet, 1, "", "dialer-group "+phInt),
		p(kindSet, 3, "", "dialer timer idle "+phInt),
		p(kindSet, 1, "", "link-protocol ppp"),
		p(kindSet, 3, "", "ppp chap user "+phWord),
		p(kindSet, 3, "", "ppp chap password cipher "+phWord),
		p(kindSet, 2, "", "ppp pap local-user "+phWord+" password cipher "+phWord),
		p(kindSet, 2, "", "ip address ppp-negotiate"),
	}, ifCommon...)
	poolPatterns = []pattern{
		p(kindSet, 1, "", "gateway-list "+phIP),
		p(kindSet, 1, "", "network "+phIP+" mask "+phIP),
		p(kindSet, 1, "", "dns-list "+phIPs),
		p(kindSet, 2, "", "lease day "+phInt),
		p(kindSet, 0, "", "excluded-ip-address "+phIP+" "+phIP),
	}
	aclPatterns = []pattern{
		p(kindSet, 2, "", "rule "+phInt+" permit source "+phIP+" "+phIP),
		p(kindSet, 2, "", "rule "+phInt+" deny source "+phIP+" "+phIP),
		p(kindSet, 2, "", "rule "+phInt+" permit"),
		p(kindSet, 2, "", "rule "+phInt+" deny"),
	}
)

// patternsFor returns the commands of a view, undo excluded.
func patternsFor(v viewKind) []pattern {
	var out []pattern
	out = append(out, displayPatterns...)
	out = append(out, anyViewPatterns...)
	out = append(out, actionPatterns...)
	switch v {
	case viewUser:
		return append(out, userPatterns...)
	case viewSystem:
		out = append(out, systemPatterns...)
	case viewEth:
		out = append(out, ethPatterns...)
	case viewDialer:
		out = append(out, dialerPatterns...)
	case viewPool:
		out = append(out, poolPatterns...)
	case viewACL:
		out = append(out, aclPatterns...)
	}
	return append(out, configAnyPatterns...)
}

// configPatterns returns the configuration commands of a view (what undo
// may remove).
func configPatterns(v viewKind) []pattern {
	switch v {
	case viewSystem:
		return systemPatterns
	case viewEth:
		return ethPatterns
	case viewDialer:
		return dialerPatterns
	case viewPool:
		return poolPatterns
	case viewACL:
		return aclPatterns
	}
	return nil
}

// token is one word of an input line and where it starts.
type token struct {
	s   string
	off int
}

func tokenize(line string) []token {
	var out []token
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		out = append(out, token{s: line[i:j], off: i})
		i = j
	}
	return out
}

// matchErr says why a line did not match and where.
type matchErr struct {
	msg string // the Error: line
	pos int    // character offset for the ^ marker; -1 for none
}

const (
	errUnrecognized = "Error: Unrecognized command found at '^' position."
	errWrongParam   = "Error: Wrong parameter found at '^' position."
	errIncomplete   = "Error: Incomplete command found at '^' position."
	errTooMany      = "Error: Too many parameters found at '^' position."
)

// errAmbiguous is the error for an abbreviation that fits several commands.
const errAmbiguous = "Error: Ambiguous command found at '^' position."

// match finds the pattern that toks match and returns the line in full
// words (keywords may be abbreviated to any unique prefix, as on VRP:
// "dis cur"). With prefix set, a pattern matches when toks match its first
// words (undo of a line by its key).
func match(pats []pattern, toks []token, lineLen int, prefix bool) (pattern, []string, *matchErr) {
	bestN, bestErr := -1, (*matchErr)(nil)
	type hit struct {
		pt    pattern
		words []string
		exact int
	}
	var hits []hit
	var partial [][]string
	for _, pt := range pats {
		m := matchOne(pt.words, toks, prefix)
		if m.ok {
			hits = append(hits, hit{pt, m.words, m.exact})
			continue
		}
		partial = append(partial, m.words)
		if m.n > bestN || (m.n == bestN && bestErr != nil && bestErr.msg == errUnrecognized && m.kind != errUnrecognized) {
			bestN = m.n
			pos := lineLen
			if m.n < len(toks) {
				pos = toks[m.n].off
			}
			bestErr = &matchErr{msg: m.kind, pos: pos}
		}
	}
	if len(hits) > 0 {
		best := hits[0]
		for _, h := range hits[1:] {
			if h.exact > best.exact {
				best = h
			}
		}
		for _, h := range hits {
			if h.exact == best.exact && !slices.Equal(h.words, best.words) {
				pos := 0
				for i := range toks {
					if i >= len(h.words) || i >= len(best.words) || h.words[i] != best.words[i] {
						pos = toks[i].off
						break
					}
				}
				return pattern{}, nil, &matchErr{msg: errAmbiguous, pos: pos}
			}
		}
		return best.pt, best.words, nil
	}
	if i, ok := ambiguousAt(partial, toks); ok {
		return pattern{}, nil, &matchErr{msg: errAmbiguous, pos: toks[i].off}
	}
	if bestErr == nil {
		return pattern{}, nil, &matchErr{msg: errUnrecognized, pos: 0}
	}
	return pattern{}, nil, bestErr
}

// ambiguousAt finds the first token that abbreviates two different
// keywords after the same words (e.g. "d" for display and dialer).
func ambiguousAt(partial [][]string, toks []token) (int, bool) {
	for i, t := range toks {
		seen := map[string]map[string]bool{}
		for _, w := range partial {
			if len(w) <= i {
				continue
			}
			k := strings.Join(w[:i], " ")
			if seen[k] == nil {
				seen[k] = map[string]bool{}
			}
			seen[k][w[i]] = true
		}
		for _, set := range seen {
			if len(set) > 1 && !set[t.s] {
				return i, true
			}
		}
	}
	return 0, false
}

// matchResult says how toks fit one pattern: ok, the line in full words and
// how many keywords were typed in full; or, when not ok, how many tokens
// matched and the error.
type matchResult struct {
	ok    bool
	words []string
	exact int
	n     int
	kind  string
}

func matchOne(words []string, toks []token, prefix bool) matchResult {
	var out []string
	exact := 0
	wi := 0
	for ti := 0; ti < len(toks); {
		if wi >= len(words) {
			return matchResult{n: ti, kind: errTooMany, words: out}
		}
		w, t := words[wi], toks[ti].s
		switch w {
		case phWord:
		case phText:
			for _, r := range toks[ti:] {
				out = append(out, r.s)
			}
			return matchResult{ok: true, words: out, exact: exact, n: len(toks)}
		case phInt:
			if _, err := strconv.ParseUint(t, 10, 32); err != nil {
				return matchResult{n: ti, kind: errWrongParam}
			}
		case phIP:
			if !isIPv4(t) {
				return matchResult{n: ti, kind: errWrongParam}
			}
		case phIPs:
			for ; ti < len(toks); ti++ {
				if !isIPv4(toks[ti].s) {
					return matchResult{n: ti, kind: errWrongParam}
				}
				out = append(out, toks[ti].s)
			}
			if wi != len(words)-1 {
				return matchResult{n: ti, kind: errIncomplete}
			}
			return matchResult{ok: true, words: out, exact: exact, n: ti}
		case phIfname:
			if canonIfname(t) == "" {
				return matchResult{n: ti, kind: errWrongParam}
			}
		default:
			if len(t) > len(w) || !strings.EqualFold(w[:len(t)], t) {
				return matchResult{n: ti, kind: errUnrecognized}
			}
			if len(t) == len(w) {
				exact++
			}
			t = w
		}
		out = append(out, t)
		wi++
		ti++
	}
	if wi < len(words) && !prefix {
		return matchResult{n: len(toks), kind: errIncomplete, words: out}
	}
	return matchResult{ok: len(toks) > 0, words: out, exact: exact, n: len(toks)}
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

var ifnameRE = regexp.MustCompile(`^(?i)(GigabitEthernet|GE|Dialer)(\d+(?:/\d+/\d+)?)$`)

// canonIfname returns the full name of an interface name as typed ("GE0/0/1",
// "gigabitethernet0/0/1", "dialer1"), or "" when it is not an interface name.
func canonIfname(s string) string {
	m := ifnameRE.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	switch strings.ToLower(m[1]) {
	case "dialer":
		if strings.Contains(m[2], "/") {
			return ""
		}
		return "Dialer" + m[2]
	default:
		if !strings.Contains(m[2], "/") {
			return ""
		}
		return "GigabitEthernet" + m[2]
	}
}

// interfaceExists reports whether the router has the interface name.
func interfaceExists(name string) bool {
	return name == dialerName || slices.Contains(ethPorts[:], name)
}
