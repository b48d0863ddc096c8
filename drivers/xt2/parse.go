package xt2

import (
	"slices"
	"strconv"
	"strings"
)

// version is what `display version` reports.
type version struct {
	Model, Software, Serial, Board string
}

// parseVersion reads `display version`. Missing lines leave fields empty.
func parseVersion(out string) version {
	var v version
	for _, l := range lines(out) {
		switch {
		case strings.Contains(l, ", Software Version "):
			m, sw, _ := strings.Cut(l, ", Software Version ")
			v.Software = firstWord(sw)
			v.Model = strings.TrimSpace(strings.TrimSuffix(m, " Business Router"))
		case strings.HasPrefix(l, "Serial Number:"):
			v.Serial = firstWord(strings.TrimPrefix(l, "Serial Number:"))
		case strings.HasPrefix(l, "BOARD TYPE:"):
			v.Board = strings.TrimSpace(strings.TrimPrefix(l, "BOARD TYPE:"))
		}
	}
	return v
}

// ifDetail is what `display interface NAME` reports.
type ifDetail struct {
	State     string // "UP", "DOWN", "Administratively DOWN"
	Protocol  string
	SpeedMbps int
	Duplex    string
}

// parseInterface reads `display interface NAME`.
func parseInterface(out string) ifDetail {
	var d ifDetail
	for _, l := range lines(out) {
		switch {
		case strings.HasPrefix(l, "Line protocol current state :"):
			d.Protocol = strings.TrimSpace(strings.TrimPrefix(l, "Line protocol current state :"))
		case strings.Contains(l, " current state :"):
			_, s, _ := strings.Cut(l, " current state :")
			d.State = strings.TrimSpace(s)
		case strings.HasPrefix(l, "Speed :"):
			s, _, _ := strings.Cut(strings.TrimPrefix(l, "Speed :"), ",")
			d.SpeedMbps, _ = strconv.Atoi(strings.TrimSpace(s))
		case strings.HasPrefix(l, "Duplex:"):
			s, _, _ := strings.Cut(strings.TrimPrefix(l, "Duplex:"), ",")
			d.Duplex = strings.TrimSpace(s)
		}
	}
	return d
}

// pppoeSummary is what `display pppoe-client session summary` reports.
type pppoeSummary struct {
	// State is the first session's State column; "IDLE" when no session
	// is listed.
	State string
	// LastError is the code or text after "Last error:"; "" for none.
	LastError string
}

// parsePPPoE reads `display pppoe-client session summary`.
func parsePPPoE(out string) pppoeSummary {
	s := pppoeSummary{State: "IDLE"}
	inTable, seen := false, false
	for _, l := range lines(out) {
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "Last error:"):
			e := strings.TrimSpace(strings.TrimPrefix(l, "Last error:"))
			if !strings.EqualFold(e, "none") {
				s.LastError = e
			}
		case len(f) > 0 && f[0] == "ID" && f[len(f)-1] == "State":
			inTable = true
		case inTable && !seen && len(f) >= 2:
			s.State, seen = f[len(f)-1], true
		}
	}
	return s
}

// lastErrorCode returns the leading code of a Last error text ("691
// authentication failure" → "691").
func lastErrorCode(e string) string { return firstWord(e) }

// bbmsBinding is what `display bbms binding` reports.
type bbmsBinding struct {
	Bound     bool
	Customer  string
	Serial    string
	LastError string
}

// parseBBMS reads `display bbms binding`.
func parseBBMS(out string) bbmsBinding {
	var b bbmsBinding
	for _, l := range lines(out) {
		switch {
		case strings.HasPrefix(l, "BBMS binding:"):
			rest := strings.TrimSpace(strings.TrimPrefix(l, "BBMS binding:"))
			parts := strings.Split(rest, ",")
			b.Bound = strings.TrimSpace(parts[0]) == "bound"
			for _, p := range parts[1:] {
				k, v, _ := strings.Cut(strings.TrimSpace(p), " ")
				switch k {
				case "customer":
					b.Customer = strings.TrimSpace(v)
				case "serial":
					b.Serial = strings.TrimSpace(v)
				}
			}
		case strings.HasPrefix(l, "Last error:"):
			b.LastError = strings.TrimSpace(strings.TrimPrefix(l, "Last error:"))
		}
	}
	return b
}

// ipBrief maps interface names to their address in `display ip interface
// brief` ("" for unassigned).
func parseIPBrief(out string) map[string]string {
	m := map[string]string{}
	inTable := false
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "Interface" {
			inTable = true
			continue
		}
		if !inTable || len(f) < 2 {
			continue
		}
		addr := f[1]
		if addr == "unassigned" {
			addr = ""
		}
		m[f[0]] = addr
	}
	return m
}

// CLIInterface is one row of `display interface brief`.
type CLIInterface struct {
	Name     string `json:"name"`
	PHY      string `json:"phy"`
	Protocol string `json:"protocol"`
	InErrors int    `json:"in_errors"`
	Address  string `json:"address,omitempty"`
}

// parseIfBrief reads `display interface brief`.
func parseIfBrief(out string) []CLIInterface {
	var rows []CLIInterface
	inTable := false
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "Interface" {
			inTable = true
			continue
		}
		if !inTable || len(f) < 3 {
			continue
		}
		r := CLIInterface{Name: f[0], PHY: f[1], Protocol: f[2]}
		if len(f) >= 6 {
			r.InErrors, _ = strconv.Atoi(f[5])
		}
		rows = append(rows, r)
	}
	return rows
}

// config is a running configuration as blocks: a head line ("" for the
// top-level lines, static routes included) and its lines, in order.
type config struct {
	blocks []block
}

type block struct {
	head  string
	lines []string
}

// parseConfig reads `display current-configuration`: "#" separates
// sections, indented lines belong to the last head, unindented lines are
// heads except static routes and "return".
func parseConfig(out string) config {
	var c config
	cur := -1
	global := func() int {
		for i, b := range c.blocks {
			if b.head == "" {
				return i
			}
		}
		c.blocks = append([]block{{}}, c.blocks...)
		if cur >= 0 {
			cur++
		}
		return 0
	}
	for _, raw := range strings.Split(strings.ReplaceAll(out, "\r", ""), "\n") {
		l := strings.TrimRight(raw, " \t")
		t := strings.TrimSpace(l)
		switch {
		case t == "" || t == "return":
		case t == "#":
			cur = -1
		case strings.HasPrefix(l, " "):
			if cur < 0 {
				cur = global()
			}
			c.blocks[cur].lines = append(c.blocks[cur].lines, normalize(t))
		case strings.HasPrefix(t, "ip route-static "):
			g := global()
			c.blocks[g].lines = append(c.blocks[g].lines, normalize(t))
			cur = -1
		default:
			// A head seen again (a router never prints one twice) adds to
			// its block.
			cur = -1
			for i, b := range c.blocks {
				if strings.EqualFold(b.head, normalize(t)) {
					cur = i
				}
			}
			if cur < 0 {
				c.blocks = append(c.blocks, block{head: normalize(t)})
				cur = len(c.blocks) - 1
			}
		}
	}
	return c
}

// normalize collapses runs of blanks.
func normalize(l string) string { return strings.Join(strings.Fields(l), " ") }

// find returns the block with head, or nil.
func (c config) find(head string) *block {
	for i := range c.blocks {
		if strings.EqualFold(c.blocks[i].head, head) {
			return &c.blocks[i]
		}
	}
	return nil
}

// has reports whether block head has line; a line with a password is
// compared up to the word "cipher", as the router shows its cipher text.
func (c config) has(head, line string) bool {
	b := c.find(head)
	if b == nil {
		return false
	}
	want := secretPrefix(line)
	return slices.ContainsFunc(b.lines, func(l string) bool {
		return strings.EqualFold(secretPrefix(l), want)
	})
}

// equal reports whether a and b have the same blocks and lines, ignoring
// block order.
func (c config) equal(o config) bool {
	if len(c.blocks) != len(o.blocks) {
		return false
	}
	for _, b := range c.blocks {
		ob := o.find(b.head)
		if ob == nil || !slices.Equal(b.lines, ob.lines) {
			return false
		}
	}
	return true
}

// secretPrefix cuts a line after the word "cipher", whose argument is a
// password ("ppp chap password cipher X" → "ppp chap password cipher").
func secretPrefix(l string) string {
	w := strings.Fields(l)
	for i, x := range w {
		if strings.EqualFold(x, "cipher") {
			return strings.Join(w[:i+1], " ")
		}
	}
	return strings.Join(w, " ")
}

// hasSecret reports whether l carries a password.
func hasSecret(l string) bool { return secretPrefix(l) != normalize(l) }

// undoKey is what follows "undo" to remove line l: the line without its
// password ("ppp chap password cipher X" → "ppp chap password").
func undoKey(l string) string {
	w := strings.Fields(l)
	for i, x := range w {
		if strings.EqualFold(x, "cipher") {
			w = w[:i]
			break
		}
	}
	return strings.Join(w, " ")
}

func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(strings.ReplaceAll(out, "\r", ""), "\n") {
		if t := strings.TrimSpace(l); t != "" {
			ls = append(ls, t)
		}
	}
	return ls
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
