package speedtest

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"fieldagent/diagnostics/ndt7"
	"fieldagent/diagnostics/speedtest/internal/iperf3"
)

// benchDuration is one benchmark transfer: long enough to leave slow start
// behind, like the iperf3 run below (-t 2).
const benchDuration = 2 * time.Second

// BenchmarkDownloadLoopback measures Download against a Server on
// 127.0.0.1 and reports the post-ramp-up rate in Mbit/s (mean over b.N runs).
func BenchmarkDownloadLoopback(b *testing.B) {
	benchLoopback(b, Download, ClientOptions{Duration: benchDuration})
}

// BenchmarkDownloadLoopbackOneStream pins Download to one stream, the same
// as the iperf3 benchmark's single stream.
func BenchmarkDownloadLoopbackOneStream(b *testing.B) {
	benchLoopback(b, Download, ClientOptions{Duration: benchDuration, Streams: 1, MaxStreams: 1})
}

// BenchmarkUploadLoopback is BenchmarkDownloadLoopback for Upload.
func BenchmarkUploadLoopback(b *testing.B) {
	benchLoopback(b, Upload, ClientOptions{Duration: benchDuration})
}

// BenchmarkUploadLoopbackOneStream pins Upload to one stream, like iperf3.
func BenchmarkUploadLoopbackOneStream(b *testing.B) {
	benchLoopback(b, Upload, ClientOptions{Duration: benchDuration, Streams: 1, MaxStreams: 1})
}

// BenchmarkNDT7DownloadLoopback measures ndt7.Download (one WebSocket
// stream) against the same Server's /ndt/v7/download, the client ending the
// test after benchDuration with the same ramp-up as the HTTP benchmarks.
func BenchmarkNDT7DownloadLoopback(b *testing.B) {
	benchLoopback(b, ndt7Run(ndt7.Download), ClientOptions{})
}

// BenchmarkNDT7UploadLoopback is BenchmarkNDT7DownloadLoopback for ndt7.Upload.
func BenchmarkNDT7UploadLoopback(b *testing.B) {
	benchLoopback(b, ndt7Run(ndt7.Upload), ClientOptions{})
}

// ndt7Run adapts an ndt7 client to benchLoopback: it runs benchDuration
// with the HTTP client's default ramp-up (a fifth).
func ndt7Run(run func(context.Context, string, ndt7.ClientOptions) (Measurement, error)) func(context.Context, string, ClientOptions) (Measurement, error) {
	return func(ctx context.Context, url string, _ ClientOptions) (Measurement, error) {
		return run(ctx, url, ndt7.ClientOptions{Duration: benchDuration})
	}
}

func benchLoopback(b *testing.B, run func(context.Context, string, ClientOptions) (Measurement, error), opts ClientOptions) {
	srv := newTestServer(b, ServerOptions{MaxUploadBytes: 1 << 30})
	var sum float64
	var streams, runs int
	for b.Loop() {
		m, err := run(b.Context(), srv.URL, opts)
		if err != nil {
			b.Fatal(err)
		}
		sum += m.Mbps
		streams += m.Streams
		runs++
	}
	b.ReportMetric(sum/float64(runs), "Mbit/s")
	b.ReportMetric(float64(streams)/float64(runs), "streams")
}

// BenchmarkIperf3Loopback runs iperf3 over 127.0.0.1 for comparison with
// the upload benchmarks: iperf3 -s -1 -p PORT -B 127.0.0.1 and
// iperf3 -c 127.0.0.1 -p PORT -t 2 -J (one stream, the client sends),
// reporting the receiver's Mbit/s.
func BenchmarkIperf3Loopback(b *testing.B) {
	benchIperf3(b, false)
}

// BenchmarkIperf3LoopbackReverse is BenchmarkIperf3Loopback with -R (the
// server sends), for comparison with the download benchmarks.
func BenchmarkIperf3LoopbackReverse(b *testing.B) {
	benchIperf3(b, true)
}

func benchIperf3(b *testing.B, reverse bool) {
	if _, err := exec.LookPath("iperf3"); err != nil {
		b.Skip("iperf3 not installed: run `make test-deps` (apt-get install iperf3) to compare with it")
	}
	var sum float64
	var runs int
	for b.Loop() {
		mbps, err := runIperf3(b, reverse)
		if err != nil {
			b.Fatal(err)
		}
		sum += mbps
		runs++
	}
	b.ReportMetric(sum/float64(runs), "Mbit/s")
	b.ReportMetric(1, "streams")
}

// freeLoopbackPort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runIperf3 runs one 2 s iperf3 test on loopback (with -R if reverse) and
// returns the receiver's Mbit/s.
func runIperf3(b *testing.B, reverse bool) (float64, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	return iperf3.Run(ctx, iperf3.Test{Addr: "127.0.0.1", Port: port, Duration: 2 * time.Second, Reverse: reverse})
}
