package xt2

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/sshcli"
)

// errUnrestorable means the undo lines cannot bring back a value that the
// router does not show in clear (a replaced password).
var errUnrestorable = errors.New("the previous value cannot be read back from the router")

// restoreLines returns the configuration lines (system view) that turn
// the running configuration after into before: blocks that are new are
// removed with "undo HEAD" where the router allows it; added lines are
// undone in their view; removed or replaced lines are set again. A
// replaced password cannot be set again: the error says which.
func restoreLines(before, after config) ([]string, error) {
	var out []string
	var errs []error
	readd := func(head, l string) {
		if hasSecret(l) {
			errs = append(errs, fmt.Errorf("%w: %q in %q", errUnrestorable, secretPrefix(l), head))
			return
		}
		out = append(out, l)
	}
	diffBlock := func(head string, b, a []string) {
		var undo, set []string
		for _, l := range a {
			if !containsFold(b, l) {
				undo = append(undo, "undo "+undoKey(l))
			}
		}
		for _, l := range b {
			if !containsFold(a, l) {
				set = append(set, l)
			}
		}
		if len(undo) == 0 && len(set) == 0 {
			return
		}
		if head != "" {
			out = append(out, head)
		}
		out = append(out, undo...)
		for _, l := range set {
			readd(head, l)
		}
		if head != "" {
			out = append(out, "quit")
		}
	}
	for _, ab := range after.blocks {
		bb := before.find(ab.head)
		switch {
		case bb != nil:
			diffBlock(ab.head, bb.lines, ab.lines)
		case deletable(ab.head):
			out = append(out, "undo "+ab.head)
		default:
			diffBlock(ab.head, nil, ab.lines)
		}
	}
	for _, bb := range before.blocks {
		if after.find(bb.head) != nil {
			continue
		}
		if bb.head != "" {
			out = append(out, bb.head)
		}
		for _, l := range bb.lines {
			readd(bb.head, l)
		}
		if bb.head != "" {
			out = append(out, "quit")
		}
	}
	return out, errors.Join(errs...)
}

// deletable reports whether "undo HEAD" removes the whole block (the
// Ethernet ports cannot be deleted).
func deletable(head string) bool {
	h := strings.ToLower(head)
	return strings.HasPrefix(h, "interface dialer") || strings.HasPrefix(h, "ip pool ") || strings.HasPrefix(h, "acl number ")
}

func containsFold(ls []string, l string) bool {
	for _, x := range ls {
		if strings.EqualFold(x, l) {
			return true
		}
	}
	return false
}

// tx is one change on its own CLI session.
type tx struct {
	d      *Driver
	op     string
	ch     *sshcli.Channel
	before config
	// committed is set once `commit` was sent: from then on the router may
	// run the change.
	committed bool
}

// begin opens a session with secrets masked and snapshots the running
// configuration. Callers hold d.mu.
func (d *Driver) begin(ctx context.Context, op string, secrets ...secret.Secret) (*tx, error) {
	ch, err := d.openChannel(ctx, secrets...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	t := &tx{d: d, op: op, ch: ch}
	before, err := t.running(ctx)
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("%s: snapshot the running configuration: %w", op, err)
	}
	t.before = before
	d.log.Debug("xt2: snapshot taken", "op", op, "blocks", len(before.blocks))
	return t, nil
}

// running reads the running configuration on the transaction's session.
func (t *tx) running(ctx context.Context) (config, error) {
	r, err := t.ch.SendCommand(ctx, "display current-configuration")
	if err != nil {
		return config{}, err
	}
	return parseConfig(r.Output), nil
}

// apply sends lines into the candidate and commits them.
func (t *tx) apply(ctx context.Context, lines []string) error {
	if _, err := t.ch.SendConfig(ctx, lines); err != nil {
		return fmt.Errorf("send configuration: %w", err)
	}
	t.committed = true
	if _, err := t.ch.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// end closes the session.
func (t *tx) end() { _ = t.ch.Close() }

// fail rolls the change back after cause and returns the
// *drivers.RestoreError that reports both. It runs on a context detached
// from ctx's cancellation, bounded by RestoreTimeout, and on a new session
// (redialled if needed) when this one is lost.
func (t *tx) fail(ctx context.Context, cause error) error {
	d := t.d
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.RestoreTimeout)
	defer cancel()
	d.log.Info("xt2: change failed, restoring", "op", t.op, "committed", t.committed, "err", cause)
	rerr := t.restore(rctx)
	if rerr != nil {
		d.log.Warn("xt2: restore failed", "op", t.op, "err", rerr)
	} else {
		d.log.Info("xt2: restored", "op", t.op)
	}
	return &drivers.RestoreError{Op: t.op, Err: cause, RestoreErr: rerr}
}

// restore aborts the candidate, then undoes what the running configuration
// gained since the snapshot, and checks that it equals the snapshot.
func (t *tx) restore(ctx context.Context) error {
	ch := t.ch
	if _, err := ch.Abort(ctx); err != nil {
		// The session is gone or unsynced: the router discards the
		// candidate of a lost session; check on a new one.
		_ = ch.Close()
		nch, oerr := t.d.openChannel(ctx)
		if oerr != nil {
			return fmt.Errorf("reconnect to check the router: %w", oerr)
		}
		t.ch = nch
	}
	return t.rollback(ctx)
}

// rollback brings the running configuration back to the snapshot with
// undo lines and a commit, then verifies it.
func (t *tx) rollback(ctx context.Context) error {
	after, err := t.running(ctx)
	if err != nil {
		return fmt.Errorf("read the running configuration: %w", err)
	}
	if after.equal(t.before) {
		return nil
	}
	lines, uerr := restoreLines(t.before, after)
	if len(lines) > 0 {
		if _, err := t.ch.SendConfig(ctx, lines); err != nil {
			_, _ = t.ch.Abort(ctx)
			return fmt.Errorf("send undo lines: %w", err)
		}
		if _, err := t.ch.Commit(ctx); err != nil {
			return fmt.Errorf("commit undo lines: %w", err)
		}
	}
	if uerr != nil {
		return uerr
	}
	now, err := t.running(ctx)
	if err != nil {
		return fmt.Errorf("read back the running configuration: %w", err)
	}
	if !now.equal(t.before) {
		return fmt.Errorf("%w: the running configuration still differs from the snapshot after the undo lines", drivers.ErrVerify)
	}
	return nil
}

// undoFunc returns a drivers.Undo that puts back the snapshot of t on a new
// session.
func (d *Driver) undoFunc(op string, before config) drivers.Undo {
	return func(ctx context.Context) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		ch, err := d.openChannel(ctx)
		if err != nil {
			return fmt.Errorf("undo %s: %w", op, err)
		}
		t := &tx{d: d, op: "undo " + op, ch: ch, before: before}
		defer t.end()
		if err := t.rollback(ctx); err != nil {
			return fmt.Errorf("undo %s: %w: %w: check the router's configuration by hand", op, drivers.ErrRestoreFailed, err)
		}
		return nil
	}
}
