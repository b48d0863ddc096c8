package nbisim_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"fieldagent/testlab/nbisim"
)

// diagnosis is what a fleet diagnosis reads of each gateway: identity,
// uplink and optical readings, in three getParameterValues tasks (each a
// task POST with a connection request and a read of the device document).
var diagnosis = [][]string{
	{"InternetGatewayDevice.DeviceInfo.Manufacturer", "InternetGatewayDevice.DeviceInfo.SerialNumber", "InternetGatewayDevice.DeviceInfo.SoftwareVersion", "InternetGatewayDevice.DeviceInfo.UpTime"},
	{"InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.WANAccessType", "InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.PhysicalLinkStatus"},
	{"InternetGatewayDevice.WANDevice.1.X_CT-COM_GponInterfaceConfig.RXPower", "InternetGatewayDevice.WANDevice.1.X_CT-COM_GponInterfaceConfig.TXPower", "InternetGatewayDevice.WANDevice.1.X_CT-COM_GponInterfaceConfig.Status"},
}

// BenchmarkNBISimFleetDiagnose runs a diagnosis-like sequence of
// getParameterValues tasks over 200 fleet gateways behind nbisim, 50
// devices at a time, through the GenieACS client; one op is the whole
// fleet. It reports devices/s and tasks/s.
func BenchmarkNBISimFleetDiagnose(b *testing.B) {
	const devices, concurrency = 200, 50
	for _, latency := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%s", latency), func(b *testing.B) {
			s := startSim(b, devices, nbisim.Options{TaskLatency: latency})
			ids := make([]string, devices)
			for i := range ids {
				ids[i] = s.fleet.DeviceID(i)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			startTasks := s.nbi.TasksRun()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				work := make(chan string)
				errs := make(chan error, devices)
				var wg sync.WaitGroup
				for range concurrency {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for id := range work {
							for _, names := range diagnosis {
								if _, err := s.client.GetParameterValues(ctx, id, names...); err != nil {
									errs <- fmt.Errorf("%s: %w", id, err)
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
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(devices*b.N)/el.Seconds(), "devices/s")
			b.ReportMetric(float64(s.nbi.TasksRun()-startTasks)/el.Seconds(), "tasks/s")
		})
	}
}
