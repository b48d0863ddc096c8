// Package netnstest builds a rate-limited link between two Linux network
// namespaces for speed test accuracy tests, and runs fieldagent's speed
// server and clients, and iperf3, on either end.
//
// A Link is two namespaces joined by a veth pair, each end shaped with a
// tbf qdisc to the same rate, so that download and upload both cross a
// bottleneck like a real access line. It needs root and the ip and tc
// commands (iproute2); Check says why it cannot run.
//
// A goroutine cannot safely switch network namespace, so the speed server
// and clients run as helper processes: the test binary re-executes itself
// under `ip netns exec` with an environment variable that RunHelper, called
// first in TestMain, turns into a server or a single measurement.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Addresses of the two ends, from TEST-NET-2 (RFC 5737): they exist only
// inside the link's private namespaces.
var (
	ServerAddr = netip.MustParseAddr("198.51.100.1")
	ClientAddr = netip.MustParseAddr("198.51.100.2")
)

// namePrefix starts every namespace this package creates; the creating
// process's pid follows, so that leftovers of dead runs can be told apart
// from namespaces of runs still going.
const namePrefix = "fa-"

// leftoverName matches names made by newName: fa-<pid>-<hex>-<s|c>.
var leftoverName = regexp.MustCompile(`^fa-([0-9]+)-[0-9a-f]{6}-[sc]$`)

// commandTimeout bounds each ip or tc command.
const commandTimeout = 10 * time.Second

// Check returns nil when this process can build a Link: it runs as root on
// linux with ip and tc on PATH. Otherwise its error says what is missing,
// for a t.Skip message.
func Check() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("root (running as uid %d)", os.Geteuid()))
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" (iproute2)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("shaped-link tests need %s; as root, `make test-deps` installs the tools", strings.Join(missing, ", "))
	}
	return nil
}

// Namespace is a network namespace name; "" is the namespace of this process.
type Namespace string

// Command returns cmd to run name with args inside ns (through
// `ip netns exec`), killed when ctx ends and, on linux, when this process dies.
func (ns Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if ns == "" {
		cmd = exec.CommandContext(ctx, name, args...)
	} else {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", string(ns), name}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	return cmd
}

// Link is two namespaces joined by a veth pair shaped to RateMbit each way.
type Link struct {
	// Server holds ServerAddr, Client holds ClientAddr.
	Server, Client Namespace
	// RateMbit is the tbf rate of both veth ends in Mbit/s.
	RateMbit int
}

// NewLink creates a Link shaped to rateMbit, and deletes it (namespaces,
// and with them the veth pair, qdiscs and any process left inside) at
// tb.Cleanup. It first deletes namespaces that earlier runs of this package
// left behind (their creating process is gone). It fails tb when a command
// fails; call Check first to skip where it cannot work.
func NewLink(tb testing.TB, rateMbit int) *Link {
	tb.Helper()
	removeLeftovers(tb)
	base, err := newName()
	if err != nil {
		tb.Fatal(err)
	}
	l := &Link{Server: Namespace(base + "-s"), Client: Namespace(base + "-c"), RateMbit: rateMbit}
	for _, ns := range []Namespace{l.Server, l.Client} {
		if err := run("ip", "netns", "add", string(ns)); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if err := run("ip", "netns", "delete", string(ns)); err != nil {
				tb.Errorf("cleanup: %v", err)
			}
		})
	}
	// A 64 KiB burst lets one GSO segment through whole; 25 ms of latency
	// bounds the queue (312 KB at 100 Mbit/s), like a modest access line buffer.
	rate := strconv.Itoa(rateMbit) + "mbit"
	steps := [][]string{
		{"ip", "link", "add", "veth0", "netns", string(l.Server), "type", "veth", "peer", "name", "veth0", "netns", string(l.Client)},
		{"ip", "-n", string(l.Server), "addr", "add", ServerAddr.String() + "/24", "dev", "veth0"},
		{"ip", "-n", string(l.Client), "addr", "add", ClientAddr.String() + "/24", "dev", "veth0"},
	}
	for _, ns := range []Namespace{l.Server, l.Client} {
		steps = append(steps,
			[]string{"ip", "-n", string(ns), "link", "set", "lo", "up"},
			[]string{"ip", "-n", string(ns), "link", "set", "veth0", "up"},
			[]string{"tc", "-n", string(ns), "qdisc", "add", "dev", "veth0", "root", "tbf",
				"rate", rate, "burst", "64kb", "latency", "25ms"},
		)
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			tb.Fatal(err)
		}
	}
	return l
}

// newName returns "fa-<pid>-<6 hex digits>".
func newName() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(b[:])), nil
}

// removeLeftovers deletes namespaces named by newName whose creating process
// no longer exists (a run killed before its cleanup).
func removeLeftovers(tb testing.TB) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return // nothing listed: nothing to remove
	}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		m := leftoverName.FindStringSubmatch(fields[0])
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || processAlive(pid) {
			continue
		}
		if err := run("ip", "netns", "delete", fields[0]); err != nil {
			tb.Logf("leftover namespace %s: %v", fields[0], err)
		} else {
			tb.Logf("deleted leftover namespace %s (pid %d is gone)", fields[0], pid)
		}
	}
}

// processAlive reports whether pid exists (EPERM means it does, as another user's).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// run runs one ip or tc command and returns its output in the error.
func run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
