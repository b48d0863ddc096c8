package snmp

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// IF-MIB subtrees walked by the benchmarks.
const (
	oidInterfaces = ".1.3.6.1.2.1.2"  // ifNumber, ifTable
	oidIfMIB      = ".1.3.6.1.2.1.31" // ifXTable and friends
)

// BenchmarkBulkWalkIFMIB walks IF-MIB with Client.Walk (GETBULK,
// max-repetitions 25) against a private snmpd. The "interfaces" case walks
// the same subtree as BenchmarkSnmpbulkwalk; compare varbinds/s.
func BenchmarkBulkWalkIFMIB(b *testing.B) {
	addr := startSNMPD(b)
	for _, bc := range []struct {
		name  string
		roots []string
	}{
		{"interfaces", []string{oidInterfaces}},
		{"interfaces+ifMIB", []string{oidInterfaces, oidIfMIB}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
			defer cancel()
			c, err := Dial(ctx, v2cTarget(addr), nil)
			if err != nil {
				b.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			varbinds := 0
			b.ResetTimer()
			for b.Loop() {
				for _, root := range bc.roots {
					vs, err := c.Walk(ctx, root)
					if err != nil {
						b.Fatalf("Walk %s: %v", root, err)
					}
					varbinds += len(vs)
				}
			}
			reportWalk(b, varbinds)
		})
	}
}

// BenchmarkSnmpbulkwalk runs net-snmp's snmpbulkwalk over the interfaces
// subtree against a private snmpd, one process per walk, for comparison
// with BenchmarkBulkWalkIFMIB/interfaces in the same run.
func BenchmarkSnmpbulkwalk(b *testing.B) {
	bin, err := exec.LookPath("snmpbulkwalk")
	if err != nil {
		b.Skip("snmpbulkwalk not installed (Debian package snmp): run `make test-deps`")
	}
	addr := startSNMPD(b)
	env := append(os.Environ(), "MIBS=", "MIBDIRS="+filepath.Join(b.TempDir(), "no-mibs"))
	varbinds := 0
	for b.Loop() {
		cmd := exec.CommandContext(b.Context(), bin, "-v2c", "-c", testCommunity, "-Cr25", "-On", "-Oq", addr, oidInterfaces)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("snmpbulkwalk: %v\n%s", err, out)
		}
		varbinds += bytes.Count(out, []byte("\n"))
	}
	reportWalk(b, varbinds)
}

func reportWalk(b *testing.B, varbinds int) {
	b.Helper()
	if b.N == 0 || varbinds == 0 {
		return
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(varbinds)/float64(b.N), "varbinds/walk")
	b.ReportMetric(float64(varbinds)/sec, "varbinds/s")
	b.ReportMetric(float64(b.N)/sec, "walks/s")
}
