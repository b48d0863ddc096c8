package xt2sim

import (
	"context"
	"strings"
)

// ConfigLine returns the first line of block head ("" for the top-level
// lines, "interface Dialer1" for the dialer) of the running configuration
// that starts with prefix's words, as the router holds it — passwords in
// clear: the lab reads what display current-configuration ciphers — and
// whether there is one.
func (r *Router) ConfigLine(head, prefix string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.running.find(head)
	if b == nil {
		return "", false
	}
	pw := strings.Fields(prefix)
	for _, l := range b.lines {
		lw := strings.Fields(l)
		if len(lw) >= len(pw) && strings.EqualFold(strings.Join(lw[:len(pw)], " "), strings.Join(pw, " ")) {
			return l, true
		}
	}
	return "", false
}

// ChangeConfig changes the running configuration as a console session
// that commits would, then dials, hangs up and binds as the new
// configuration requires (like a commit, it returns once that is done). It
// sets line in block head, replacing the line with the same first key
// words (key 0: the whole line is the key), or with remove takes away the
// lines of block head that start with line's words. The startup
// configuration is left as it was.
func (r *Router) ChangeConfig(ctx context.Context, head, line string, key int, remove bool) {
	r.commit(ctx, []edit{{head: head, line: line, key: key, undo: remove}})
}
