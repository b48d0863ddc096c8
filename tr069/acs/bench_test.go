package acs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
)

const (
	benchGetN = 20
	benchSetN = 5
)

func benchTree(serial string) *cpe.Tree {
	t := cpe.NewTree()
	t.Set(cpe.Param{Name: "InternetGatewayDevice.DeviceInfo.Manufacturer", Value: "Bench", Type: "xsd:string"})
	t.Set(cpe.Param{Name: "InternetGatewayDevice.DeviceInfo.SerialNumber", Value: serial, Type: "xsd:string"})
	t.Set(cpe.Param{Name: "InternetGatewayDevice.DeviceInfo.SoftwareVersion", Value: "V1.0", Type: "xsd:string"})
	t.Set(cpe.Param{Name: "InternetGatewayDevice.DeviceInfo.HardwareVersion", Value: "HW1", Type: "xsd:string"})
	t.Set(cpe.Param{Name: "InternetGatewayDevice.ManagementServer.ParameterKey", Value: "", Type: "xsd:string"})
	t.Set(cpe.Param{Name: "InternetGatewayDevice.ManagementServer.ConnectionRequestURL", Value: "http://192.0.2.1:7547/", Type: "xsd:string"})
	for i := 0; i < benchGetN; i++ {
		t.Set(cpe.Param{Name: fmt.Sprintf("InternetGatewayDevice.X_Bench.Stat%02d", i), Value: fmt.Sprint(i * 1000), Type: "xsd:unsignedInt"})
	}
	for i := 0; i < benchSetN; i++ {
		t.Set(cpe.Param{Name: fmt.Sprintf("InternetGatewayDevice.X_Bench.Conf%d", i), Value: "old", Type: "xsd:string", Writable: true})
	}
	return t
}

// BenchmarkSessions runs N concurrent simulated CPEs against one ACS on
// loopback, each running full CWMP sessions back to back: Inform /
// InformResponse, empty POST, GetParameterValues of 20 parameters,
// SetParameterValues of 5, 204. One iteration is one session per CPE.
//
// The load generator is N tr069/cpe engines (cpe.Engine.Inform with the
// engines' own parameter trees, codec and cookie handling) sharing one
// keep-alive HTTP transport, without connection-request listeners: before
// each Inform the two RPCs are queued with Server.Enqueue, so the ACS has
// them for the session without waking the CPE. SessionHold is negative so
// that the ACS ends the session as soon as the queue is empty (the default
// 200ms hold would measure the hold, not the ACS). The generator runs on
// the same machine and CPUs as the ACS.
//
// Metrics: sessions/s, p50-ms and p99-ms session time (Inform sent to 204
// received, seen from the CPE), and heapB/device: ACS heap growth per
// known device, from runtime.MemStats before and after N devices first
// inform (connections closed, after GC).
func BenchmarkSessions(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchSessions(b, n) })
	}
}

func benchSessions(b *testing.B, n int) {
	s := acs.New(acs.Config{SessionHold: -1})
	srv := httptest.NewServer(s)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConns: 2 * n, MaxIdleConnsPerHost: 2 * n, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	engines := make([]*cpe.Engine, n)
	ids := make([]string, n)
	for i := range engines {
		serial := fmt.Sprintf("B%06d", i)
		e, err := cpe.New(cpe.Config{
			ACSURL:     srv.URL + "/cwmp",
			DeviceId:   cwmp.DeviceIdStruct{Manufacturer: "Bench", OUI: "00BE4C", ProductClass: "HG", SerialNumber: serial},
			HTTPClient: client,
			InformParams: []string{
				"InternetGatewayDevice.DeviceInfo.Manufacturer", "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
				"InternetGatewayDevice.DeviceInfo.HardwareVersion", "InternetGatewayDevice.ManagementServer.ParameterKey",
			},
		}, benchTree(serial))
		if err != nil {
			b.Fatal(err)
		}
		engines[i], ids[i] = e, "00BE4C-HG-"+serial
	}
	getNames := make([]string, benchGetN)
	for i := range getNames {
		getNames[i] = fmt.Sprintf("InternetGatewayDevice.X_Bench.Stat%02d", i)
	}

	// Register the devices (first Inform), measuring the ACS heap.
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC() // twice: the second empties sync.Pool victim caches
	runtime.ReadMemStats(&m0)
	parallel(n, func(i int) {
		if err := engines[i].Inform(ctx, cwmp.EventStruct{EventCode: acs.EventBootstrap}); err != nil {
			b.Error(err)
		}
	})
	tr.CloseIdleConnections()
	srv.CloseClientConnections()
	time.Sleep(100 * time.Millisecond) // let the server's connection goroutines exit
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if b.Failed() {
		return
	}
	heapPerDevice := (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / float64(n)

	lat := make([][]time.Duration, n)
	b.ResetTimer()
	start := time.Now()
	parallel(n, func(i int) {
		id := ids[i]
		for it := 0; it < b.N; it++ {
			set := make([]cwmp.ParameterValueStruct, benchSetN)
			for k := range set {
				set[k] = cwmp.ParameterValueStruct{Name: fmt.Sprintf("InternetGatewayDevice.X_Bench.Conf%d", k), Value: fmt.Sprintf("v%d-%d", it, k)}
			}
			get, err := s.Enqueue(ctx, id, &cwmp.GetParameterValues{ParameterNames: getNames})
			if err != nil {
				b.Error(err)
				return
			}
			spv, err := s.Enqueue(ctx, id, &cwmp.SetParameterValues{ParameterList: set, ParameterKey: "bench"})
			if err != nil {
				b.Error(err)
				return
			}
			t0 := time.Now()
			if err := engines[i].Inform(ctx, cwmp.EventStruct{EventCode: acs.EventPeriodic}); err != nil {
				b.Error(err)
				return
			}
			lat[i] = append(lat[i], time.Since(t0))
			if r := <-get; r.Err != nil || len(r.Response.(*cwmp.GetParameterValuesResponse).ParameterList) != benchGetN {
				b.Errorf("GetParameterValues: %v", r.Err)
				return
			}
			if r := <-spv; r.Err != nil {
				b.Errorf("SetParameterValues: %v", r.Err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()

	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "sessions/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(heapPerDevice, "heapB/device")
	b.ReportMetric(0, "ns/op")
}

// parallel runs f(0..n-1) concurrently and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f(i) }()
	}
	wg.Wait()
}
