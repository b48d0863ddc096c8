package ulink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// commandTimeout bounds each ip command.
const commandTimeout = 10 * time.Second

// NetnsPrefix starts the name of every namespace NewNetns creates.
const NetnsPrefix = "fa-"

// Netns is the name of a network namespace made by `ip netns add`; "" is
// the namespace of this process.
type Netns string

// NewNetns creates a network namespace named NetnsPrefix and 8 random hex
// digits, with its loopback up. The caller deletes it with Delete. It fails
// with ErrNotPermitted (wrapped) when the kernel refuses.
func NewNetns(ctx context.Context) (Netns, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("name a network namespace: %w", err)
	}
	ns := Netns(NetnsPrefix + hex.EncodeToString(b[:]))
	if err := runIP(ctx, "netns", "add", string(ns)); err != nil {
		return "", err
	}
	if err := runIP(ctx, "-n", string(ns), "link", "set", "lo", "up"); err != nil {
		if derr := ns.Delete(ctx); derr != nil {
			err = fmt.Errorf("%w (and %w)", err, derr)
		}
		return "", err
	}
	return ns, nil
}

// Delete deletes the namespace; devices still in it go with it.
func (ns Netns) Delete(ctx context.Context) error {
	if ns == "" {
		return fmt.Errorf("delete network namespace: no name: %w", ErrInvalidConfig)
	}
	return runIP(ctx, "netns", "delete", string(ns))
}

// Command returns a command running name with args inside ns, through
// `ip netns exec` (which execs name in place, so killing the command kills
// name). ctx ending kills it; its pipes are abandoned 5s after that.
func (ns Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if ns == "" {
		cmd = exec.CommandContext(ctx, name, args...)
	} else {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", string(ns), name}, args...)...)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// configure gives device e its address, brings it up and, when remote is
// valid and outside e.LocalCIDR, routes remote through it.
func configure(ctx context.Context, e Endpoint, remote netip.Addr) error {
	cmds := [][]string{
		{"addr", "add", e.LocalCIDR.String(), "dev", e.Name},
		{"link", "set", e.Name, "up"},
	}
	if remote.IsValid() && !e.LocalCIDR.Contains(remote) {
		cmds = append(cmds, []string{"route", "add", netip.PrefixFrom(remote, remote.BitLen()).String(), "dev", e.Name})
	}
	for _, args := range cmds {
		if e.Netns != "" {
			args = append([]string{"-n", string(e.Netns)}, args...)
		}
		if err := runIP(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// runIP runs the ip command with args, bounded by commandTimeout. A refusal
// by the kernel wraps ErrNotPermitted.
func runIP(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if strings.Contains(msg, "not permitted") {
			err = fmt.Errorf("%w: %w", ErrNotPermitted, err)
		}
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return nil
}
