package genieacs_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/tr069/genieacs"
)

// BenchmarkFleetDiagnoseNBI runs a diagnosis-like read sequence (three
// getParameterValues tasks, each with its document read-back) over 1,000
// devices of the synthetic fakeNBI, whose tasks take 20 ms (the device's
// session), at concurrency 50 and 200. It reports the time for the whole
// fleet (s/fleet), the peak concurrent NBI requests, and the peak live heap
// of the process (client and fake server together) while it ran.
func BenchmarkFleetDiagnoseNBI(b *testing.B) {
	const devices = 1000
	for _, conc := range []int{50, 200} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			f := newFakeNBI(b)
			f.latency = 20 * time.Millisecond
			ids := make([]string, devices)
			for i := range ids {
				ids[i] = f.addDevice(fmt.Sprintf("%06d", i))
			}
			srv := f.start()
			c, err := genieacs.New(srv.URL, genieacs.Options{TaskTimeout: 5 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			steps := [][]string{
				{"InternetGatewayDevice.DeviceInfo.SoftwareVersion", "InternetGatewayDevice.DeviceInfo.UpTime", "InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.WANAccessType"},
				{"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ConnectionStatus", "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress"},
				{"InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries", "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"},
			}
			peak := watchHeap()
			runtime.GC()
			b.ResetTimer()
			start := time.Now()
			var failed atomic.Int64
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				work := make(chan string)
				var wg sync.WaitGroup
				for range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for id := range work {
							for _, names := range steps {
								if _, err := c.GetParameterValues(ctx, id, names...); err != nil {
									failed.Add(1)
									break
								}
							}
						}
					}()
				}
				for _, id := range ids {
					work <- id
				}
				close(work)
				wg.Wait()
				cancel()
			}
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d devices failed", n)
			}
			b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/fleet")
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(f.peak.Load()), "peak-inflight")
		})
	}
}

// watchHeap samples the live heap every 5ms until the returned function is
// called, which returns the peak.
func watchHeap() func() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak.Load()
	}
}
