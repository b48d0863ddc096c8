//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/testlab/fleet"
)

// startFleet starts n simulated gateways informing p's ACS and waits until
// serve lists them all.
func startFleet(tb testing.TB, ctx context.Context, site *serveSite, p *serveProc, n int, periodic time.Duration) *fleet.Fleet {
	tb.Helper()
	fl, err := fleet.Start(ctx, fleet.Options{N: n, ACSURL: p.acs + "/", ConnReqUsername: "fieldagent",
		ConnReqPassword: secret.New("cr-pass-proc"), PeriodicInform: periodic})
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var l struct{ Count int }
		p.get(tb, site.tokens[auth.RoleRead], "/api/v1/devices?q="+fl.Serial(0)[:3], &l)
		if l.Count >= n {
			return fl
		}
		if time.Now().After(deadline) {
			_ = fl.Close()
			tb.Fatalf("serve lists %d of %d gateways after 2 min", l.Count, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// submitFleet starts a fleet diagnosis of every device whose serial starts
// with prefix and returns its job ID.
func submitFleet(tb testing.TB, site *serveSite, p *serveProc, prefix string, concurrency int) string {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"serial_prefix": prefix, "concurrency": concurrency})
	req, _ := http.NewRequest(http.MethodPost, p.api+"/api/v1/fleet/diagnose", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+site.tokens[auth.RoleDiagnose])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var acc struct {
		JobID string `json:"job_id"`
	}
	if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&acc) != nil || acc.JobID == "" {
		tb.Fatalf("fleet diagnose: %s", resp.Status)
	}
	return acc.JobID
}

// TestServeKilledDuringFleetRun SIGKILLs a serve process in the middle of a
// fleet diagnosis and starts it again on the same store: every result
// stored before the kill is there, the job is marked interrupted (not
// left running, not lost), and its counts agree with its results.
func TestServeKilledDuringFleetRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs serve processes and 150 simulated gateways")
	}
	const n = 150
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	site := newServeSite(t, "")
	p := site.start(t)
	fl := startFleet(t, ctx, site, p, n, 0)
	defer fl.Close()
	jobID := submitFleet(t, site, p, fl.Serial(0)[:3], 1)

	// Kill once a few results are stored, well before the end.
	var before server.JobView
	deadline := time.Now().Add(2 * time.Minute)
	for before.Done < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %d results after 2 min", jobID, before.Done)
		}
		time.Sleep(10 * time.Millisecond)
		p.get(t, site.tokens[auth.RoleRead], "/api/v1/jobs/"+jobID, &before)
	}
	p.kill()
	if before.Done >= n {
		t.Skipf("the job finished (%d/%d) before the kill: the machine is too fast for this test", before.Done, n)
	}

	p2 := site.start(t)
	var after server.JobView
	if code := p2.get(t, site.tokens[auth.RoleRead], "/api/v1/jobs/"+jobID, &after); code != http.StatusOK {
		t.Fatalf("job %s after restart: %d\n%s", jobID, code, p2.log())
	}
	if after.State != store.JobInterrupted {
		t.Errorf("job state after restart %q, want %q", after.State, store.JobInterrupted)
	}
	if after.Total != n || len(after.Results) < before.Done || len(after.Results) >= n {
		t.Errorf("after restart: %d results of %d (had %d before the kill)", len(after.Results), after.Total, before.Done)
	}
	if after.Done != len(after.Results) {
		t.Errorf("job counts %d done but holds %d results", after.Done, len(after.Results))
	}
	stored := map[string]bool{}
	for _, r := range after.Results {
		if stored[r.DeviceID] {
			t.Errorf("device %s has two results", r.DeviceID)
		}
		stored[r.DeviceID] = true
		if len(r.Result) == 0 && r.Error == "" {
			t.Errorf("device %s: a result with neither outcome nor error", r.DeviceID)
		}
	}
	for _, r := range before.Results {
		if !stored[r.DeviceID] {
			t.Errorf("device %s's result, stored before the kill, is gone", r.DeviceID)
		}
	}
	t.Logf("killed at %d/%d results; after restart %d results, job %s", before.Done, n, len(after.Results), after.State)
}
