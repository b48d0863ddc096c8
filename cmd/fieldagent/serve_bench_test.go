//go:build unix

package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/jobs"
	"fieldagent/agent/remote"
	"fieldagent/agent/secret"
	"fieldagent/agent/server/auth"
	"fieldagent/testlab/fleet"
)

// BenchmarkServeFleet1000 is issue 8's load test: 1,000 simulated gateways
// inform one serve process (a separate process, as in production)
// periodically — every 10 s (100 Informs a second) and, as a stress, every
// 3 s (330 a second) — while a fleet diagnosis of all of them runs with
// concurrency 100. The simulated gateways run in the benchmark's process,
// on the same machine.
// It reports
//
//   - fleet-s: from submitting the job to its job_finished event;
//   - results and failed: results stored by the job, and how many of them
//     failed (each device must have one);
//   - acs-sessions and acs-p99-ms: the ACS's CWMP sessions during the run
//     and their 99th percentile duration (from serve's
//     fieldagent_acs_session_duration_seconds histogram, interpolated; a
//     diagnosis's session lasts as long as its RPCs);
//   - periodic-informs: "2 PERIODIC" Informs the ACS took during the run;
//   - lost-sessions: CWMP sessions the gateways saw fail (each would be
//     retried later), counted on the gateways' side;
//   - peak-rss-MB: serve's peak resident set (VmHWM) at the end.
//
// Run it once: go test -run '^$' -bench BenchmarkServeFleet1000 -benchtime 1x ./cmd/fieldagent/
func BenchmarkServeFleet1000(b *testing.B) {
	const n, concurrency = 1000, 100
	if testing.Short() {
		b.Skip("1,000 gateways and a serve process")
	}
	if err := fleet.RaiseFileLimit(4*n + 512); err != nil {
		b.Skip(err)
	}
	for _, periodic := range []time.Duration{10 * time.Second, 3 * time.Second} {
		b.Run("periodic="+periodic.String(), func(b *testing.B) {
			for b.Loop() {
				benchServeFleet(b, n, concurrency, periodic)
			}
		})
	}
}

func benchServeFleet(b *testing.B, n, concurrency int, periodic time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	site := newServeSite(b, "  concurrency: "+strconv.Itoa(concurrency)+"\n")
	p := site.start(b)
	var lost fleet.SessionFailures
	fl, err := fleet.Start(ctx, fleet.Options{N: n, ACSURL: p.acs + "/", ConnReqUsername: "fieldagent",
		ConnReqPassword: secret.New("cr-pass-proc"), PeriodicInform: periodic, Logger: slog.New(&lost)})
	if err != nil {
		b.Fatal(err)
	}
	defer fl.Close()
	waitKnown(b, site, p, fl.Serial(0)[:3], n)
	time.Sleep(min(periodic, 5*time.Second)) // the periodic Informs are under way

	c, err := remote.New(remote.Options{Server: p.api, Token: secret.New(site.tokens[auth.RoleDiagnose])})
	if err != nil {
		b.Fatal(err)
	}
	hist0 := scrapeHistogram(b, p, site, "fieldagent_acs_session_duration_seconds")
	periodic0 := scrapeCounter(b, p, site, `fieldagent_acs_informs_total{event="2 PERIODIC"}`)
	lost0 := lost.Count()
	start := time.Now()
	acc, err := c.FleetDiagnose(ctx, remote.FleetRequest{SerialPrefix: fl.Serial(0)[:3], Concurrency: concurrency})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Follow(ctx, acc.JobID, func(jobs.Event) error { return nil }); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	hist1 := scrapeHistogram(b, p, site, "fieldagent_acs_session_duration_seconds")
	periodic1 := scrapeCounter(b, p, site, `fieldagent_acs_informs_total{event="2 PERIODIC"}`)
	job, err := c.Job(ctx, acc.JobID)
	if err != nil {
		b.Fatal(err)
	}
	rss, err := p.peakRSS()
	if err != nil {
		b.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range job.Results {
		seen[r.DeviceID] = true
	}
	if len(seen) != n || job.Total != n {
		b.Errorf("job %s: %d devices with a result of %d", job.ID, len(seen), n)
	}
	sessions, p99 := hist1.sub(hist0).quantile(0.99)
	b.ReportMetric(took.Seconds(), "fleet-s")
	b.ReportMetric(float64(len(job.Results)), "results")
	b.ReportMetric(float64(job.Failed), "failed")
	b.ReportMetric(sessions, "acs-sessions")
	b.ReportMetric(p99*1000, "acs-p99-ms")
	b.ReportMetric(periodic1-periodic0, "periodic-informs")
	b.ReportMetric(float64(lost.Count()-lost0), "lost-sessions")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")
}

func waitKnown(b *testing.B, site *serveSite, p *serveProc, prefix string, n int) {
	b.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		// count is the page, total every match (without paging, the same).
		var l struct{ Count, Total int }
		p.get(b, site.tokens[auth.RoleRead], "/api/v1/devices?q="+prefix+"&limit=1", &l)
		if known := max(l.Count, l.Total); known >= n {
			return
		} else if time.Now().After(deadline) {
			b.Fatalf("serve knows %d of %d gateways after 3 min", known, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrapeCounter reads one sample (name with its labels) from serve's
// /metrics; 0 if it is not there yet.
func scrapeCounter(b *testing.B, p *serveProc, site *serveSite, sample string) float64 {
	b.Helper()
	for line := range strings.Lines(scrapeMetrics(b, p, site)) {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatalf("metrics line %q", line)
			}
			return f
		}
	}
	return 0
}

func scrapeMetrics(b *testing.B, p *serveProc, site *serveSite) string {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+site.tokens[auth.RoleRead])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return string(text)
}

// histogram is a Prometheus histogram's cumulative buckets, summed over
// its label sets.
type histogram struct {
	le    []float64
	count map[float64]float64
}

// scrapeHistogram reads the histogram name from serve's /metrics.
func scrapeHistogram(b *testing.B, p *serveProc, site *serveSite, name string) histogram {
	b.Helper()
	h := histogram{count: map[float64]float64{}}
	for line := range strings.Lines(scrapeMetrics(b, p, site)) {
		rest, ok := strings.CutPrefix(line, name+"_bucket{")
		if !ok {
			continue
		}
		i := strings.Index(rest, `le="`)
		j := strings.Index(rest[i+4:], `"`)
		le, err1 := strconv.ParseFloat(rest[i+4:i+4+j], 64)
		v, err2 := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndex(rest, " ")+1:]), 64)
		if i < 0 || j < 0 || err1 != nil || err2 != nil {
			b.Fatalf("metrics line %q", line)
		}
		if _, ok := h.count[le]; !ok {
			h.le = append(h.le, le)
		}
		h.count[le] += v
	}
	if len(h.le) == 0 {
		b.Fatalf("serve's /metrics has no %s", name)
	}
	slices.Sort(h.le)
	return h
}

func (h histogram) sub(o histogram) histogram {
	d := histogram{le: h.le, count: map[float64]float64{}}
	for _, le := range h.le {
		d.count[le] = h.count[le] - o.count[le]
	}
	return d
}

// quantile returns the observations and the q-quantile, interpolated
// linearly within its bucket as Prometheus's histogram_quantile does.
func (h histogram) quantile(q float64) (total, v float64) {
	total = h.count[math.Inf(1)]
	if total == 0 {
		return 0, 0
	}
	rank := q * total
	prevLE, prevCount := 0.0, 0.0
	for _, le := range h.le {
		c := h.count[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return total, prevLE
			}
			return total, prevLE + (le-prevLE)*(rank-prevCount)/(c-prevCount)
		}
		prevLE, prevCount = le, c
	}
	return total, prevLE
}
