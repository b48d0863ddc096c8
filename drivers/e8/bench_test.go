package e8_test

import (
	"context"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
)

// provision is the e8 part of an install: routed internet on the order's
// VLAN, LOID registration with ITMS, and the WAN up.
func provision(ctx context.Context, l *lab) error {
	if _, err := l.drv.ConfigurePPPoE(ctx, drivers.PPPoEConfig{Username: "ad1", Password: secret.New("right"), VLAN: 41}); err != nil {
		return err
	}
	if _, _, err := l.drv.RegisterLOID(ctx, "LOID1", "lpw"); err != nil {
		return err
	}
	_, err := l.drv.WaitWANUp(ctx)
	return err
}

// TestProvisioningTime logs how long a GPON e8 takes to provision in the
// lab over real CWMP on loopback (informational; nothing is asserted on it).
func TestProvisioningTime(t *testing.T) {
	l := startLab(t, "gpon")
	start := time.Now()
	if err := provision(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab provisioning time e8 gpon (ConfigurePPPoE+RegisterLOID+WaitWANUp): %v", time.Since(start))
}

// BenchmarkProvisionE8 measures ConfigurePPPoE+RegisterLOID+WaitWANUp on a
// fresh simulated GPON gateway per iteration (lab start-up not timed).
func BenchmarkProvisionE8(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		l := startLab(b, "gpon")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		b.StartTimer()
		err := provision(ctx, l)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}
