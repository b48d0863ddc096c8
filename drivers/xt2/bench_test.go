package xt2

import (
	"testing"
)

// BenchmarkProvisionXT2 measures the XT-2 rubric end to end in the lab:
// identify, line test, routed internet, BBMS binding and save, each over
// real SSH and SNMP sockets; the Undos return the router to factory state
// between iterations.
func BenchmarkProvisionXT2(b *testing.B) {
	l := startLab(b)
	d := l.open(b, true, nil)
	ctx := testCtx(b)
	for b.Loop() {
		undos, err := provision(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		for i := len(undos) - 1; i >= 0; i-- {
			if err := undos[i](ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}
