package itv_test

import (
	"context"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
)

func provision(ctx context.Context, l *lab) error {
	if _, err := l.drv.Identify(ctx); err != nil {
		return err
	}
	if _, err := l.drv.ConfigureAccount(ctx, drivers.STBAccount{UserID: "itv0001", Password: secret.New("tvpw"), AuthURL: l.epg}); err != nil {
		return err
	}
	_, err := l.drv.WaitAuthenticated(ctx)
	return err
}

// TestProvisioningTime logs how long an iTV account setup takes end to end
// in the lab (informational; nothing is asserted on it).
func TestProvisioningTime(t *testing.T) {
	l := startLab(t)
	start := time.Now()
	if err := provision(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab provisioning time itv (Identify+ConfigureAccount+WaitAuthenticated): %v", time.Since(start))
}

// BenchmarkProvisionITV measures an iTV account setup on a fresh simulated
// box per iteration (lab start-up not timed).
func BenchmarkProvisionITV(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		l := startLab(b)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		b.StartTimer()
		err := provision(ctx, l)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}
