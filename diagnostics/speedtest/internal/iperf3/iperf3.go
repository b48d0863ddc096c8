// Package iperf3 runs iperf3, the reference the speed tests are measured
// against: one server for one test (-1) and a client with JSON output.
// Benchmarks on loopback and the shaped-link tests in namespaces share it;
// Command says where each process runs.
package iperf3

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Command builds one process; exec.CommandContext runs it here, a
// namespace's Command runs it there.
type Command func(ctx context.Context, name string, args ...string) *exec.Cmd

// Test is one iperf3 measurement.
type Test struct {
	// Server and Client start the two processes (nil: exec.CommandContext).
	Server, Client Command
	// Addr and Port are where the server listens.
	Addr string
	Port int
	// Duration is the client's -t (whole seconds, at least 1).
	Duration time.Duration
	// Reverse has the server send (-R): the client measures a download.
	Reverse bool
}

// Run runs t and returns the receiver's throughput in Mbit/s
// (end.sum_received.bits_per_second). ctx bounds both processes.
func Run(ctx context.Context, t Test) (float64, error) {
	bin, err := exec.LookPath("iperf3")
	if err != nil {
		return 0, errors.New("iperf3 not installed: `make test-deps` (apt-get install iperf3)")
	}
	if t.Server == nil {
		t.Server = exec.CommandContext
	}
	if t.Client == nil {
		t.Client = exec.CommandContext
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	port := strconv.Itoa(t.Port)
	server := t.Server(ctx, bin, "-s", "-1", "-B", t.Addr, "-p", port, "--forceflush")
	out, err := server.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := server.Start(); err != nil {
		return 0, fmt.Errorf("start iperf3 server: %w", err)
	}
	defer func() {
		cancel()
		_ = server.Wait()
	}()
	// Wait for "Server listening" rather than probing the port, which would
	// use up the one test that -1 allows.
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening") {
			ready = true
			break
		}
	}
	if !ready {
		return 0, fmt.Errorf("iperf3 server on %s:%s never said it was listening: %v", t.Addr, port, sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // never let the server block on a full pipe

	secs := max(int(t.Duration.Round(time.Second).Seconds()), 1)
	args := []string{"-c", t.Addr, "-p", port, "-t", strconv.Itoa(secs), "-J"}
	if t.Reverse {
		args = append(args, "-R")
	}
	raw, err := t.Client(ctx, bin, args...).Output()
	mbps, perr := Parse(raw)
	switch {
	case perr == nil:
		return mbps, nil
	case err != nil:
		return 0, fmt.Errorf("iperf3 client: %w (%w)", err, perr)
	}
	return 0, perr
}

// Parse returns end.sum_received.bits_per_second of iperf3 -J output in
// Mbit/s.
func Parse(raw []byte) (float64, error) {
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return 0, fmt.Errorf("iperf3 JSON: %w", err)
	}
	if res.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", res.Error)
	}
	if res.End.SumReceived.BitsPerSecond <= 0 {
		return 0, errors.New("iperf3 JSON has no end.sum_received.bits_per_second")
	}
	return res.End.SumReceived.BitsPerSecond / 1e6, nil
}
