package speedtest_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"fieldagent/diagnostics/speedtest/netnstest"
	"fieldagent/diagnostics/speedtest/result"
)

// TestMain lets netnstest re-execute this test binary as a speed server or
// client helper process.
func TestMain(m *testing.M) {
	netnstest.RunHelper()
	os.Exit(m.Run())
}

// BenchmarkClientPeakMemory runs each client in a process of its own
// against a speed server process on loopback and reports the client
// process's peak resident set (VmHWM, Go runtime included) in MiB, the
// largest over the iterations, and its Mbit/s:
// BenchmarkClientPeakMemory/{http,ndt7}/{down,up}.
func BenchmarkClientPeakMemory(b *testing.B) {
	url := netnstest.StartServer(b, "", "127.0.0.1:0")
	for _, proto := range []string{netnstest.ProtocolHTTP, netnstest.ProtocolNDT7} {
		for _, d := range []struct{ name, dir string }{{"down", result.DirectionDownload}, {"up", result.DirectionUpload}} {
			b.Run(fmt.Sprintf("%s/%s", proto, d.name), func(b *testing.B) {
				var peak int64
				var sum float64
				var runs int
				for b.Loop() {
					r, err := netnstest.Measure(b.Context(), "", proto, d.dir, url, 2*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					if r.PeakRSSKiB < 0 {
						b.Skip("VmHWM not available (/proc/self/status)")
					}
					peak = max(peak, r.PeakRSSKiB)
					sum += r.Measurement.Mbps
					runs++
				}
				b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
				b.ReportMetric(sum/float64(runs), "Mbit/s")
			})
		}
	}
}
