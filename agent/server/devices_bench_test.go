package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// benchDevices are n gateways as the ACS's registry holds them, each with
// the parameters a gateway's Inform carries.
func benchDevices(n int, now time.Time) []acs.Device {
	out := make([]acs.Device, n)
	for i := range out {
		id := cwmp.DeviceIdStruct{Manufacturer: "ZTE", OUI: "00D0D0", ProductClass: "F650", SerialNumber: fmt.Sprintf("ZTEG%08d", i)}
		out[i] = acs.Device{
			ID: acs.DeviceID(id), DeviceId: id, ConnectionRequestURL: fmt.Sprintf("http://10.%d.%d.%d:7547/", i>>16, (i>>8)&255, i&255),
			FirstInform: now.Add(-24 * time.Hour), LastInform: now.Add(-time.Duration(i%600) * time.Second),
			LastEvents: []string{"2 PERIODIC"}, RemoteAddr: fmt.Sprintf("10.%d.%d.%d:51000", i>>16, (i>>8)&255, i&255),
			Events: []acs.InformRecord{{At: now, Events: []cwmp.EventStruct{{EventCode: "2 PERIODIC"}}}},
			Params: map[string]string{
				"InternetGatewayDevice.DeviceSummary":                                                          "InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1, WiFiLAN:1, Time:1, IPPing:1)",
				"InternetGatewayDevice.DeviceInfo.HardwareVersion":                                             "V1.0",
				"InternetGatewayDevice.DeviceInfo.SoftwareVersion":                                             "V2.1.0T6",
				"InternetGatewayDevice.DeviceInfo.ProvisioningCode":                                            "",
				"InternetGatewayDevice.ManagementServer.ConnectionRequestURL":                                  fmt.Sprintf("http://10.%d.%d.%d:7547/", i>>16, (i>>8)&255, i&255),
				"InternetGatewayDevice.ManagementServer.ParameterKey":                                          "fieldagent-1",
				"InternetGatewayDevice.ManagementServer.PeriodicInformInterval":                                "300",
				"InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.WANAccessType":                     "GPON",
				"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ExternalIPAddress": fmt.Sprintf("100.64.%d.%d", (i>>8)&255, i&255),
			},
		}
	}
	return out
}

// BenchmarkDeviceList10k lists and searches 10,000 devices of an ACS
// registry through the API's HTTP handler; it reports the time of one list
// (all devices in one page) or search, and the registry's heap bytes per
// device.
func BenchmarkDeviceList10k(b *testing.B) {
	const n = 10000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := acs.New(acs.Config{Registry: genRegistry{n: n, now: time.Now()}})
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perDevice := float64(after.HeapAlloc-before.HeapAlloc) / n

	e := newAPIEnv(b, envOptions{acs: a})
	token := "Bearer " + e.tokens["reader"].Reveal()
	for _, bc := range []struct {
		name, query, metric string
		want                int
	}{
		{"list", "limit=10000", "ms/list", n},
		{"serial", "serial=ZTEG00004242", "ms/search", 1},
		{"q", "q=zteg0000424", "ms/search", 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", "/api/v1/devices?"+bc.query, nil)
				req.Header.Set("Authorization", token)
				rec := httptest.NewRecorder()
				e.api.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), bc.metric)
			b.ReportMetric(perDevice, "heap-B/device")
		})
	}
	runtime.KeepAlive(a)
}

// genRegistry makes its devices when the ACS loads them and keeps none,
// so that the heap the ACS holds afterwards is all the registry's.
type genRegistry struct {
	n   int
	now time.Time
}

func (genRegistry) SaveDevice(context.Context, acs.Device) error { return nil }

func (g genRegistry) LoadDevices(context.Context) ([]acs.Device, error) {
	return benchDevices(g.n, g.now), nil
}
