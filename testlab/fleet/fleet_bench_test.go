package fleet_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/fleet"
	"fieldagent/tr069/acs"
)

// BenchmarkFleet1000 runs 1,000 gateways against one in-process ACS and
// reports what a gateway costs and how the ACS copes:
//
//   - bytes/device: heap in use (after GC) with the fleet informed, less
//     the heap before it, per gateway — the gateway and the ACS's record
//     of it; gw-bytes/device leaves out what the ACS still holds once the
//     fleet is closed; sys-bytes/device is the process's Sys growth;
//   - goroutines/device once the BOOTSTRAP sessions are over;
//   - informs/s: N over the time from Start (building the gateways
//     included) until the ACS knows all N, every gateway starting at once
//     (Stagger < 0) — the worst BOOTSTRAP storm;
//   - failed-sessions: CWMP sessions that failed and were retried (5 s
//     later), in the wave and after;
//   - start-ms: how long Start took to build the N gateways;
//   - cr-p50-ms, cr-p99-ms: a GetParameterValues of the serial number by
//     connection request (connection request, the gateway's session, the
//     RPC) on 100 random gateways, one after another.
//
// Run it once: go test -run '^$' -bench BenchmarkFleet1000 -benchtime 1x ./testlab/fleet/
// It needs about 3 file descriptors per gateway and raises the soft
// RLIMIT_NOFILE to the hard limit if it has to (Go does so too at start).
func BenchmarkFleet1000(b *testing.B) {
	const n, probes = 1000, 100
	if testing.Short() {
		b.Skip("1,000 gateways")
	}
	if err := fleet.RaiseFileLimit(4*n + 512); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		benchFleet(b, n, probes)
	}
}

func benchFleet(b *testing.B, n, probes int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a := acs.New(acs.Config{
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return crUser, secret.New(crPass) },
		EventBuffer:           2*n + 64,
	})
	srv := httptest.NewUnstartedServer(a)
	srv.Config.ConnState = a.ConnState
	srv.Start()
	defer srv.Close()

	var failures fleet.SessionFailures
	heap0, sys0 := memory()
	g0 := runtime.NumGoroutine()

	start := time.Now()
	f, err := fleet.Start(ctx, fleet.Options{
		N: n, ACSURL: srv.URL + "/", Stagger: -1, Logger: slog.New(&failures),
		ConnReqUsername: crUser, ConnReqPassword: secret.New(crPass),
	})
	if err != nil {
		b.Fatal(err)
	}
	startup := time.Since(start)
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	if err := waitAll(ctx, a, f); err != nil {
		b.Fatal(err)
	}
	wave := time.Since(start)

	g1 := steadyGoroutines()
	heap1, sys1 := memory()

	rng := rand.New(rand.NewPCG(7, 1000))
	rtt := make([]time.Duration, 0, probes)
	for range probes {
		i := rng.IntN(n)
		t := time.Now()
		pv, err := a.GetParameterValues(ctx, f.DeviceID(i), serialParam)
		if err != nil {
			b.Fatalf("gateway %d: %v", i, err)
		}
		rtt = append(rtt, time.Since(t))
		if len(pv) != 1 || pv[0].Value != f.Serial(i) {
			b.Fatalf("gateway %d answered %+v, want %s", i, pv, f.Serial(i))
		}
	}
	slices.Sort(rtt)

	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	f = nil              // the gateways are garbage now
	heap2, _ := memory() // what the ACS keeps of n devices

	per := func(v uint64, base uint64) float64 { return float64(int64(v)-int64(base)) / float64(n) }
	b.ReportMetric(per(heap1, heap0), "bytes/device")
	b.ReportMetric(per(heap1, heap2), "gw-bytes/device")
	b.ReportMetric(per(sys1, sys0), "sys-bytes/device")
	b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/device")
	b.ReportMetric(float64(n)/wave.Seconds(), "informs/s")
	b.ReportMetric(ms(startup), "start-ms")
	b.ReportMetric(float64(failures.Count()), "failed-sessions")
	b.ReportMetric(ms(rtt[len(rtt)*50/100-1]), "cr-p50-ms")
	b.ReportMetric(ms(rtt[len(rtt)*99/100-1]), "cr-p99-ms")
}

// memory returns HeapInuse and Sys after a GC.
func memory() (heap, sys uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.Sys
}

// steadyGoroutines waits for the goroutine count to stop changing (the
// BOOTSTRAP sessions and their connections ending) and returns it.
func steadyGoroutines() int {
	last, same := runtime.NumGoroutine(), 0
	for same < 5 {
		time.Sleep(200 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == last {
			same++
		} else {
			last, same = n, 0
		}
	}
	return last
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
