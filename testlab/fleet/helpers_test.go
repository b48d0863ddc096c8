package fleet_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/fleet"
	"fieldagent/tr069/acs"
)

// Connection-request credentials of the test fleets and their ACS.
const (
	crUser = "lab"
	crPass = "cr-pass-for-test"
)

// startACS starts an embedded ACS on loopback, as testlab/labtest does,
// with room in its event buffer for n devices' informs, and stops it when
// the test ends.
func startACS(tb testing.TB, n int) (*acs.Server, string) {
	tb.Helper()
	a := acs.New(acs.Config{
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return crUser, secret.New(crPass) },
		EventBuffer:           2*n + 64,
	})
	srv := httptest.NewUnstartedServer(a)
	srv.Config.ConnState = a.ConnState
	srv.Start()
	tb.Cleanup(srv.Close)
	return a, srv.URL + "/"
}

// waitAll waits until the ACS knows every gateway of f.
func waitAll(ctx context.Context, a *acs.Server, f *fleet.Fleet) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	informs := a.Subscribe(ctx)
	remaining := make(map[string]bool, f.Len())
	for i := range f.Len() {
		remaining[f.DeviceID(i)] = true
	}
	// Informs before Subscribe, or dropped by a full buffer, are found by
	// asking the ACS.
	recheck := func() {
		for id := range remaining {
			if _, ok := a.Device(id); ok {
				delete(remaining, id)
			}
		}
	}
	recheck()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(remaining) > 0 {
		select {
		case ev := <-informs:
			delete(remaining, ev.DeviceID)
		case <-tick.C:
			recheck()
		case <-ctx.Done():
			return fmt.Errorf("%d of %d gateways never informed: %w", len(remaining), f.Len(), ctx.Err())
		}
	}
	return nil
}

// settleGoroutines waits (up to 10 s) for the goroutine count to fall to
// at most limit and returns the last count.
func settleGoroutines(limit int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); n > limit && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(50 * time.Millisecond)
	}
	return n
}
