package netnstest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/diagnostics/ndt7"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/diagnostics/speedtest/internal/iperf3"
	"fieldagent/diagnostics/speedtest/result"
)

// Protocols Measure can run.
const (
	ProtocolHTTP = "http" // speedtest.Download / Upload, default streams
	ProtocolNDT7 = "ndt7" // ndt7.Download / Upload
)

// Environment of a helper process.
const (
	envMode     = "FIELDAGENT_NETNSTEST_HELPER" // "serve" or "measure"
	envAddr     = "FIELDAGENT_NETNSTEST_ADDR"
	envProtocol = "FIELDAGENT_NETNSTEST_PROTOCOL"
	envDir      = "FIELDAGENT_NETNSTEST_DIRECTION"
	envURL      = "FIELDAGENT_NETNSTEST_URL"
	envDuration = "FIELDAGENT_NETNSTEST_DURATION"
)

const (
	helperStartTimeout = 10 * time.Second
	// measureSlack is added to a measurement's duration for its deadline.
	measureSlack = 20 * time.Second
)

// RunHelper turns this process into a helper when a parent started it as
// one (StartServer, Measure), and exits; otherwise it returns at once. Call
// it first in the TestMain of every package that uses this one.
func RunHelper() {
	mode := os.Getenv(envMode)
	if mode == "" {
		return
	}
	var err error
	switch mode {
	case "serve":
		err = helperServe(os.Getenv(envAddr))
	case "measure":
		err = helperMeasure()
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netnstest helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperServe serves speedtest.Server (which includes ndt7) on addr, says
// "listening ADDR" on stdout and runs until stdin closes (the parent ended
// the helper or died).
func helperServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           speedtest.NewServer(speedtest.ServerOptions{MaxUploadBytes: 1 << 30}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return srv.Close()
}

// helperOutput is what a measure helper prints on stdout.
type helperOutput struct {
	Measurement result.Measurement `json:"measurement"`
	Err         string             `json:"error,omitempty"`
	PeakRSSKiB  int64              `json:"peak_rss_kib"`
}

func helperMeasure() error {
	d, err := time.ParseDuration(os.Getenv(envDuration))
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+measureSlack)
	defer cancel()
	url, dir := os.Getenv(envURL), os.Getenv(envDir)
	var m result.Measurement
	switch os.Getenv(envProtocol) {
	case ProtocolHTTP:
		run := speedtest.Download
		if dir == result.DirectionUpload {
			run = speedtest.Upload
		}
		m, err = run(ctx, url, speedtest.ClientOptions{Duration: d})
	case ProtocolNDT7:
		run := ndt7.Download
		if dir == result.DirectionUpload {
			run = ndt7.Upload
		}
		m, err = run(ctx, url, ndt7.ClientOptions{Duration: d})
	default:
		return fmt.Errorf("unknown protocol %q", os.Getenv(envProtocol))
	}
	out := helperOutput{Measurement: m, PeakRSSKiB: peakRSSKiB()}
	if err != nil {
		out.Err = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// peakRSSKiB returns VmHWM from /proc/self/status (the process's peak
// resident set), or -1 when unavailable.
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// helperCommand returns a command that re-executes this binary in ns as a
// helper of mode with env.
func helperCommand(ctx context.Context, ns Namespace, mode string, env ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the test binary: %w", err)
	}
	cmd := ns.Command(ctx, exe)
	cmd.Env = append(append(os.Environ(), envMode+"="+mode), env...)
	return cmd, nil
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartServer runs a speed server (speedtest.Server with its ndt7 paths) in
// ns, listening on addr (e.g. "198.51.100.1:8080", or "127.0.0.1:0" for any
// port), and returns its base URL. The server stops at tb.Cleanup. It fails
// tb when the server does not start.
func StartServer(tb testing.TB, ns Namespace, addr string) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := helperCommand(ctx, ns, "serve", envAddr+"="+addr)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start speed server helper: %v", err)
	}
	tb.Cleanup(func() {
		stdin.Close() // the helper shuts down when stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel() // kills it
			<-done
		}
		cancel()
	})

	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		bound, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			tb.Fatalf("speed server helper in %q did not start: %q %s", ns, l, stderr.String())
		}
		return "http://" + bound
	case <-time.After(helperStartTimeout):
		tb.Fatalf("speed server helper in %q silent for %s: %s", ns, helperStartTimeout, stderr.String())
	}
	return ""
}

// Result is one measurement made by a helper process.
type Result struct {
	// Measurement is what the client returned.
	Measurement result.Measurement
	// PeakRSSKiB is the helper's peak resident set (VmHWM) in KiB: the
	// client's whole memory cost, Go runtime included. -1 when unknown.
	PeakRSSKiB int64
}

// Measure runs one client measurement of protocol (ProtocolHTTP or
// ProtocolNDT7) in direction dir (result.DirectionDownload or
// DirectionUpload) against baseURL from a helper process in ns, for d. The
// HTTP client runs with its default streams. ctx bounds the helper too.
func Measure(ctx context.Context, ns Namespace, protocol, dir, baseURL string, d time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d+measureSlack)
	defer cancel()
	cmd, err := helperCommand(ctx, ns, "measure",
		envProtocol+"="+protocol, envDir+"="+dir, envURL+"="+baseURL, envDuration+"="+d.String())
	if err != nil {
		return Result{}, err
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("%s %s helper: %w: %s", protocol, dir, err, strings.TrimSpace(stderr.String()))
	}
	var out helperOutput
	if err := json.Unmarshal(raw, &out); err != nil {
		return Result{}, fmt.Errorf("%s %s helper output %q: %w", protocol, dir, raw, err)
	}
	res := Result{Measurement: out.Measurement, PeakRSSKiB: out.PeakRSSKiB}
	if out.Err != "" {
		return res, fmt.Errorf("%s %s: %s", protocol, dir, out.Err)
	}
	return res, nil
}

// iperf3Port is where Iperf3's server listens inside the link's server namespace.
const iperf3Port = "5201"

// Iperf3 runs one iperf3 test of d (whole seconds) across l, as the
// reference for Measure: `iperf3 -s -1` in l.Server and `iperf3 -c -J` in
// l.Client, with -R for a download (the server sends). It returns the
// receiver's figure (end.sum_received) in Mbit/s.
func Iperf3(ctx context.Context, l *Link, dir string, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d+measureSlack)
	defer cancel()
	port, _ := strconv.Atoi(iperf3Port)
	return iperf3.Run(ctx, iperf3.Test{
		Server: l.Server.Command, Client: l.Client.Command,
		Addr: ServerAddr.String(), Port: port, Duration: d, Reverse: dir == result.DirectionDownload,
	})
}
