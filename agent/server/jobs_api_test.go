package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/server"
	"fieldagent/agent/store"
	"fieldagent/diagnostics"
	"fieldagent/tr069/acs"
)

// blockingDiagnosis is a fake diagnosis: the devices in quick finish at
// once, the others run until their job is cancelled. It counts the runs of
// each job's devices at once (by the device's job, known from the device
// ID's prefix) and keeps the peak.
type blockingDiagnosis struct {
	quick   map[string]bool
	running atomic.Int32
	peak    atomic.Int32
	started chan string
}

func (b *blockingDiagnosis) run(ctx context.Context, d acs.Device) (diagrun.Outcome, error) {
	n := b.running.Add(1)
	defer b.running.Add(-1)
	for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
	}
	out := diagrun.Outcome{Results: []diagnostics.Result{{Probe: "fake", Target: d.ID, Success: true}}}
	if b.quick[d.DeviceId.SerialNumber] {
		return out, nil
	}
	b.started <- d.ID
	<-ctx.Done()
	return diagrun.Outcome{}, ctx.Err()
}

func fleetDevices(n int, now time.Time) []acs.Device {
	var out []acs.Device
	for i := range n {
		out = append(out, gatewayDevice(fmt.Sprintf("FJ%03d", i), "F650", "", now, 0))
	}
	return out
}

// TestJobsCancelAndList: a running fleet job is cancelled by its creator
// (not by another diagnose caller): its finished devices keep their
// results, the rest are recorded cancelled; the per-job limit holds
// throughout; a configure caller may cancel anyone's job; the job list
// filters by state and kind, newest first.
func TestJobsCancelAndList(t *testing.T) {
	now := time.Now()
	devs := fleetDevices(10, now)
	b := &blockingDiagnosis{quick: map[string]bool{"FJ000": true, "FJ001": true, "FJ002": true}, started: make(chan string, 20)}
	e := newAPIEnv(t, envOptions{devices: devs, diagnose: b.run, concurrency: 8})

	code, body := e.do(t, "alice", "POST", "/api/v1/fleet/diagnose", `{"serial_prefix":"FJ","concurrency":2}`)
	fleetJob := submitted(t, code, body)
	for range 2 {
		select {
		case <-b.started:
		case <-time.After(time.Minute):
			t.Fatal("no device of the fleet job blocked")
		}
	}
	time.Sleep(50 * time.Millisecond) // a third would start now if the limit did not hold
	if p := b.peak.Load(); p > 2 {
		t.Fatalf("peak %d devices at once, the job's limit is 2", p)
	}

	if code, body := e.do(t, "bob", "DELETE", "/api/v1/jobs/"+fleetJob, ""); code != 403 || !strings.Contains(string(body), "alice") {
		t.Errorf("bob cancels alice's job: %d %s", code, body)
	}
	if code, _ := e.do(t, "reader", "DELETE", "/api/v1/jobs/"+fleetJob, ""); code != 403 {
		t.Errorf("a read token cancels: %d", code)
	}
	if code, body := e.do(t, "alice", "DELETE", "/api/v1/jobs/"+fleetJob, ""); code != 202 || !strings.Contains(string(body), "cancelling") {
		t.Fatalf("alice cancels her job: %d %s", code, body)
	}
	j := e.waitJob(t, fleetJob)
	if j.State != store.JobCancelled || j.DoneCount != 10 || j.CreatedBy != "alice" {
		t.Errorf("cancelled job %+v", j)
	}
	rs, err := e.store.JobResults(context.Background(), fleetJob)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range rs {
		states[r.DeviceID] = r.State
	}
	for i, d := range devs {
		want := store.ResultCancelled
		if i < 3 {
			want = store.ResultDone
		}
		if states[d.ID] != want {
			t.Errorf("device %s: %q, want %q", d.ID, states[d.ID], want)
		}
	}
	if p := b.peak.Load(); p > 2 {
		t.Errorf("peak %d devices at once, the job's limit is 2", p)
	}
	if code, body := e.do(t, "alice", "POST", "/api/v1/jobs/"+fleetJob+"/cancel", ""); code != 409 || !strings.Contains(string(body), "cancelled") {
		t.Errorf("cancel an ended job: %d %s", code, body)
	}
	if code, _ := e.do(t, "alice", "DELETE", "/api/v1/jobs/job-nope", ""); code != 404 {
		t.Errorf("cancel an unknown job: %d", code)
	}

	// A one-device job of bob's, cancelled by the configure caller.
	code, body = e.do(t, "bob", "POST", "/api/v1/devices/"+devs[5].ID+"/diagnose", "")
	oneJob := submitted(t, code, body)
	<-b.started
	if code, body := e.do(t, "boss", "POST", "/api/v1/jobs/"+oneJob+"/cancel", ""); code != 202 {
		t.Fatalf("boss cancels bob's job: %d %s", code, body)
	}
	if j := e.waitJob(t, oneJob); j.State != store.JobCancelled {
		t.Errorf("bob's job %+v", j)
	}
	// And one that finishes.
	code, body = e.do(t, "bob", "POST", "/api/v1/devices/"+devs[0].ID+"/diagnose", "")
	doneJob := submitted(t, code, body)
	e.waitJob(t, doneJob)

	ids := func(path string) []string {
		var l server.JobList
		e.get(t, path, &l)
		var out []string
		for _, j := range l.Jobs {
			out = append(out, j.ID)
			if l.Count != len(l.Jobs) {
				t.Errorf("%s: count %d of %d jobs", path, l.Count, len(l.Jobs))
			}
		}
		return out
	}
	for path, want := range map[string][]string{
		"/api/v1/jobs":                            {doneJob, oneJob, fleetJob},
		"/api/v1/jobs?limit=1":                    {doneJob},
		"/api/v1/jobs?state=cancelled":            {oneJob, fleetJob},
		"/api/v1/jobs?kind=fleet_diagnose":        {fleetJob},
		"/api/v1/jobs?kind=diagnose&state=done":   {doneJob},
		"/api/v1/jobs?kind=diagnose&state=failed": nil,
	} {
		if got := ids(path); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	var l server.JobList
	e.get(t, "/api/v1/jobs?kind=fleet_diagnose", &l)
	if s := l.Jobs[0]; s.Total != 10 || s.Done != 10 || s.CreatedBy != "alice" || s.FinishedAt == nil || s.Error == "" {
		t.Errorf("fleet job summary %+v", s)
	}
	for _, q := range []string{"state=lost", "limit=0", "limit=x"} {
		if code, _ := e.do(t, "reader", "GET", "/api/v1/jobs?"+q, ""); code != 400 {
			t.Errorf("jobs?%s: %d, want 400", q, code)
		}
	}
}

// TestFleetLimitShared: a job at its limit leaves the server's other
// slots to other jobs (the limit is not a semaphore inside the run that
// holds a shared slot while it waits).
func TestFleetLimitShared(t *testing.T) {
	now := time.Now()
	devs := fleetDevices(8, now)
	var mu sync.Mutex
	running := map[string]int{}
	peak := map[string]int{}
	release := make(chan struct{})
	e := newAPIEnv(t, envOptions{devices: devs, concurrency: 4, diagnose: func(ctx context.Context, d acs.Device) (diagrun.Outcome, error) {
		group := "a"
		if d.DeviceId.SerialNumber >= "FJ006" {
			group = "b"
		}
		mu.Lock()
		running[group]++
		peak[group] = max(peak[group], running[group])
		mu.Unlock()
		defer func() {
			mu.Lock()
			running[group]--
			mu.Unlock()
		}()
		select {
		case <-release:
		case <-ctx.Done():
		}
		return diagrun.Outcome{}, nil
	}})
	var names []string
	for _, d := range devs[:6] {
		names = append(names, d.DeviceId.SerialNumber)
	}
	body, _ := json.Marshal(map[string]any{"devices": names, "concurrency": 2})
	code, resp := e.do(t, "alice", "POST", "/api/v1/fleet/diagnose", string(body))
	a := submitted(t, code, resp)
	code, resp = e.do(t, "bob", "POST", "/api/v1/fleet/diagnose", `{"devices":["FJ006","FJ007"]}`)
	bJob := submitted(t, code, resp)
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		ra, rb := running["a"], running["b"]
		mu.Unlock()
		if ra == 2 && rb == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("running a=%d b=%d; want 2 and 2 (the limited job must not hold the shared slots)", ra, rb)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for _, id := range []string{a, bJob} {
		if j := e.waitJob(t, id); j.State != store.JobDone {
			t.Errorf("job %+v", j)
		}
	}
	if peak["a"] != 2 {
		t.Errorf("the limited job's peak %d, want 2", peak["a"])
	}
}
