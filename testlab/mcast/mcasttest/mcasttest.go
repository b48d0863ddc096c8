// Package mcasttest runs multicast tests where multicast works without
// touching the host's network: each scenario runs in a network namespace of
// its own.
//
// Plain lo on Linux has no MULTICAST flag, and a test must not send to the
// machine's real interfaces. As root, Run therefore creates a namespace per
// call (named "fa-" and a random suffix, deleted by t.Cleanup) with lo up,
// MULTICAST on and 224.0.0.0/4 routed to it, and re-executes the test binary
// inside it with `ip netns exec`; TestMain (via Scenarios.Main) sees the
// environment variable, runs the one scenario and prints its result as JSON
// on stdout, which Run decodes for the test's assertions.
//
// Re-executing is chosen over setns(2) on a locked OS thread because a
// namespace switch applies to one thread only: sockets made on another
// thread (the Go runtime moves goroutines freely, the race detector and the
// scheduler start threads of their own) would silently land in the host's
// namespace. A whole process in the namespace cannot get that wrong, and
// the scenario's sender and receiver share it.
//
// Without root no namespace can be made: Run then runs the scenario in the
// test process on the host's lo when lo has the MULTICAST flag, and skips
// with the reason otherwise.
package mcasttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// helperEnv names the scenario a re-executed test binary is to run.
const helperEnv = "FIELDAGENT_MCASTTEST_SCENARIO"

// Timeouts for the namespace plumbing and for one scenario.
const (
	ipTimeout       = 10 * time.Second
	scenarioTimeout = 2 * time.Minute
)

// Env tells a scenario where it runs.
type Env struct {
	// Interface is the multicast-capable interface to send and join on: "lo".
	Interface string
	// Namespace is true inside a namespace made for the scenario, where
	// 224.0.0.0/4 is routed to lo (so the system's choice of interface
	// works too); false on the host's loopback.
	Namespace bool
}

// Scenario is a test body that needs multicast. in is the JSON the test
// passed to Run; the result is JSON-encoded back to the test. An error
// means the scenario could not run (the test fails with it); outcomes the
// test asserts on belong in the result.
type Scenario func(ctx context.Context, env Env, in json.RawMessage) (any, error)

// Scenarios maps names to scenarios; the same map must be given to Main
// and used for Run.
type Scenarios map[string]Scenario

// envelope is what a helper prints.
type envelope struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Main is the package's TestMain body: in a re-executed helper it runs the
// named scenario and exits; otherwise it runs the tests.
func (sc Scenarios) Main(m *testing.M) {
	name := os.Getenv(helperEnv)
	if name == "" {
		os.Exit(m.Run())
	}
	os.Exit(sc.helper(name, os.Stdin, os.Stdout))
}

// helper runs one scenario and writes its envelope to w.
func (sc Scenarios) helper(name string, r io.Reader, w io.Writer) int {
	in, err := io.ReadAll(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcasttest helper: read input:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	env := sc.run(ctx, name, Env{Interface: "lo", Namespace: true}, in)
	if err := json.NewEncoder(w).Encode(env); err != nil {
		fmt.Fprintln(os.Stderr, "mcasttest helper: write result:", err)
		return 2
	}
	return 0
}

func (sc Scenarios) run(ctx context.Context, name string, env Env, in []byte) envelope {
	f, ok := sc[name]
	if !ok {
		return envelope{Error: fmt.Sprintf("no scenario %q", name)}
	}
	res, err := f(ctx, env, in)
	if err != nil {
		return envelope{Error: err.Error()}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return envelope{Error: fmt.Sprintf("encode result: %v", err)}
	}
	return envelope{Result: b}
}

// Run runs the scenario called name with input in (JSON-encoded) in a
// network namespace of its own and decodes its result into out (a
// pointer). It fails the test when the scenario fails, and skips it when
// multicast cannot be had (see the package comment).
func (sc Scenarios) Run(t *testing.T, name string, in, out any) {
	t.Helper()
	inJSON, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("encode scenario input: %v", err)
	}
	var env envelope
	if os.Geteuid() != 0 {
		if err := LoopbackMulticast(); err != nil {
			t.Skipf("multicast unavailable: %v; run the tests as root so each can make a network namespace", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), scenarioTimeout)
		defer cancel()
		env = sc.run(ctx, name, Env{Interface: "lo"}, inJSON)
	} else {
		env = sc.runInNamespace(t, name, inJSON)
	}
	if env.Error != "" {
		t.Fatalf("scenario %s: %s", name, env.Error)
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		t.Fatalf("scenario %s: decode result %s: %v", name, env.Result, err)
	}
}

func (sc Scenarios) runInNamespace(t *testing.T, name string, in []byte) envelope {
	t.Helper()
	ns := NewNamespace(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), scenarioTimeout+ipTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+name)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil || strings.Contains(stderr.String(), "DATA RACE") {
		t.Fatalf("scenario %s in namespace %s: %v\nstderr:\n%s", name, ns, err, stderr.String())
	}
	var env envelope
	if err := json.Unmarshal(stdout.Bytes(), &env); err != nil {
		t.Fatalf("scenario %s: helper output %q: %v\nstderr:\n%s", name, stdout.String(), err, stderr.String())
	}
	return env
}

// NewNamespace creates a network namespace named "fa-" and a random suffix
// with lo up, MULTICAST on and 224.0.0.0/4 routed to lo, deletes it in
// t.Cleanup and returns its name. It needs root and iproute2's ip: it skips
// the test without ip and fails it when a command fails.
func NewNamespace(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("ip (iproute2) not found, needed for network namespaces: %v; install iproute2 (make test-deps)", err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	ns := "fa-" + hex.EncodeToString(suffix[:])
	ip(t, "netns", "add", ns)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	ip(t, "-n", ns, "link", "set", "lo", "up")
	ip(t, "-n", ns, "link", "set", "lo", "multicast", "on")
	ip(t, "-n", ns, "route", "add", "224.0.0.0/4", "dev", "lo")
	return ns
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// LoopbackMulticast reports why the host's lo cannot carry multicast, or
// nil when it can (its MULTICAST flag is set).
func LoopbackMulticast() error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("no lo interface: %w", err)
	}
	if lo.Flags&net.FlagMulticast == 0 {
		return fmt.Errorf("lo has no MULTICAST flag")
	}
	return nil
}
