package e8

import (
	"math"
	"strings"
	"testing"
	"time"

	"fieldagent/drivers"
)

// base is a completed single-connection download: 1,250,000 bytes in
// 100 ms (100 Mbit/s).
func base() map[string]string {
	return map[string]string{
		"DiagnosticsState": "Completed", "TestBytesReceived": "1250000", "TotalBytesReceived": "1300000",
		"TCPOpenRequestTime": "2026-03-01T10:00:00.000100Z", "TCPOpenResponseTime": "2026-03-01T10:00:00.000200Z",
		"ROMTime": "2026-03-01T10:00:00.000300Z", "BOMTime": "2026-03-01T10:00:00.001000Z", "EOMTime": "2026-03-01T10:00:00.101000Z",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<delete>" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestTransferResult(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conns int
		m     map[string]string
		mbps  float64
		err   string
	}{
		{"single connection", 1, base(), 100, ""},
		{"full loading ignored for one connection", 1, with(base(), "TestBytesReceivedUnderFullLoading", "10", "PeriodOfFullLoading", "10"), 100, ""},
		{"full loading with several connections", 2, with(base(), "TestBytesReceivedUnderFullLoading", "1000000", "PeriodOfFullLoading", "50000"), 160, ""},
		{"no overlap: whole test", 2, with(base(), "TestBytesReceivedUnderFullLoading", "0", "PeriodOfFullLoading", "0"), 100, ""},
		{"older gateway without totals", 1, with(base(), "TotalBytesReceived", "<delete>"), 100, ""},
		{"times without a zone are UTC", 1, with(base(), "BOMTime", "2026-03-01T10:00:00.001000", "EOMTime", "2026-03-01T10:00:00.101000"), 100, ""},
		{"missing counter", 1, with(base(), "TestBytesReceived", "<delete>"), 0, "TestBytesReceived"},
		{"garbage time", 1, with(base(), "EOMTime", "soon"), 0, "EOMTime"},
		{"negative counter", 1, with(base(), "TestBytesReceived", "-5"), 0, "TestBytesReceived"},
		{"EOM before BOM", 1, with(base(), "EOMTime", "2026-03-01T09:00:00Z"), 0, "not after BOMTime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := transferResult(drivers.TestDownload, "http://x/file/1", drivers.TransferOptions{Connections: tc.conns}, tc.m, "TestBytesReceived", "TotalBytesReceived")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(r.Mbps-tc.mbps) > 1e-6 || r.Duration != 100*time.Millisecond {
				t.Errorf("rate %.6f Mbit/s over %s, want %.0f over 100ms", r.Mbps, r.Duration, tc.mbps)
			}
		})
	}
}

func TestPingTimes(t *testing.T) {
	var p resultParser
	if d := p.rtt(map[string]string{"AverageResponseTime": "3"}, "Average"); d != 3*time.Millisecond {
		t.Errorf("ms only: %s", d)
	}
	if d := p.rtt(map[string]string{"AverageResponseTime": "3", "AverageResponseTimeDetailed": "2500"}, "Average"); d != 2500*time.Microsecond {
		t.Errorf("detailed: %s", d)
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	if p.rtt(map[string]string{"AverageResponseTime": "x"}, "Average"); p.err == nil {
		t.Error("a garbage time parsed")
	}
}

func TestInstanceNumbers(t *testing.T) {
	m := map[string]string{"RouteHops.10.HopHost": "", "RouteHops.2.HopHost": "", "RouteHops.2.HopRTTimes": "", "RouteHopsNumberOfEntries": "2", "RouteHops.x.HopHost": ""}
	if got := instanceNumbers(m, "RouteHops."); len(got) != 2 || got[0] != 2 || got[1] != 10 {
		t.Errorf("instanceNumbers = %v", got)
	}
}

// FuzzTransferResult feeds the result reader what a broken or hostile
// gateway might report: it must not panic, and a result it accepts has a
// finite, non-negative rate over a positive duration.
func FuzzTransferResult(f *testing.F) {
	b := base()
	f.Add(b["TestBytesReceived"], b["BOMTime"], b["EOMTime"], "", "", 1)
	f.Add("1000000", b["BOMTime"], b["EOMTime"], "1000000", "50000", 2)
	f.Add("18446744073709551615", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9223372036854775807", "1", 8)
	f.Add("1", "2026-03-01T10:00:00.001000", "2026-03-01T10:00:00.001001", "", "", 1)
	f.Fuzz(func(t *testing.T, bytes, bom, eom, full, period string, conns int) {
		m := with(base(), "TestBytesReceived", bytes, "BOMTime", bom, "EOMTime", eom)
		if full != "" {
			m["TestBytesReceivedUnderFullLoading"] = full
		}
		if period != "" {
			m["PeriodOfFullLoading"] = period
		}
		r, err := transferResult(drivers.TestDownload, "u", drivers.TransferOptions{Connections: conns % 9}, m, "TestBytesReceived", "TotalBytesReceived")
		if err != nil {
			return
		}
		if r.Duration <= 0 || r.Mbps < 0 || math.IsNaN(r.Mbps) || math.IsInf(r.Mbps, 0) {
			t.Fatalf("accepted %+v", r)
		}
	})
}
