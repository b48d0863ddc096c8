package server_test

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/server"
	"fieldagent/agent/store"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers/xt2"
	"fieldagent/testlab"
	"fieldagent/testlab/labtest"
	"fieldagent/tr069/acs"
)

// outcomeOf reads a one-device job's stored result.
func outcomeOf(t *testing.T, e *apiEnv, jobID string) (store.JobResult, diagrun.Outcome) {
	t.Helper()
	rs, err := e.store.JobResults(context.Background(), jobID)
	if err != nil || len(rs) != 1 {
		t.Fatalf("results of %s: %d, %v", jobID, len(rs), err)
	}
	var out diagrun.Outcome
	if len(rs[0].Result) > 0 {
		if err := json.Unmarshal(rs[0].Result, &out); err != nil {
			t.Fatal(err)
		}
	}
	return rs[0], out
}

func probesRun(out diagrun.Outcome) []string {
	var names []string
	for _, r := range out.Results {
		names = append(names, r.Probe)
	}
	return names
}

// TestDeviceLab runs the device routes against a testlab site through the
// ACS: an installed GPON gateway and an XT-2.
func TestDeviceLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a testlab site")
	}
	const rx = -21.3
	lab := labtest.Start(t, testlab.Config{Gateway: testlab.GatewayInstalled, RxPowerDBm: rx, XT2: true})
	xcfg := lab.XT2Config(t)
	e := newAPIEnv(t, envOptions{acs: lab.ACS, speedURL: lab.Site.SpeedURL, xt2: []server.XT2Target{{
		Name: "xt2-lab", Address: xcfg.SSH.Addr, Access: "lan",
		Open: func(ctx context.Context) (*xt2.Driver, error) { return xt2.Open(ctx, xcfg) },
	}}})
	ctx := labtest.Ctx(t, 3*time.Minute)
	gw, err := lab.ACS.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == testlab.SampleGatewaySN })
	if err != nil {
		t.Fatal(err)
	}
	gwPath := "/api/v1/devices/" + gw.ID

	t.Run("status", func(t *testing.T) {
		var st server.DeviceStatus
		e.get(t, gwPath+"/status", &st)
		if st.Identity == nil || st.Identity.Serial != testlab.SampleGatewaySN || st.Identity.Access != "gpon" {
			t.Errorf("identity %+v", st.Identity)
		}
		if st.Optical == nil || math.Abs(st.Optical.RxPowerDBm-rx) > 0.05 {
			t.Errorf("optical %+v, want Rx %.1f dBm", st.Optical, rx)
		}
		if len(st.WAN) == 0 || len(st.LANPorts) == 0 || len(st.WiFi) == 0 {
			t.Errorf("getters: wan %v, lan %v, wifi %v", st.WAN, st.LANPorts, st.WiFi)
		}
		if !slices.Contains(st.Unsupported, "dsl") || len(st.Errors) != 0 {
			t.Errorf("unsupported %v, errors %v; want dsl unsupported on GPON, no errors", st.Unsupported, st.Errors)
		}
		_, body := e.do(t, "reader", "GET", gwPath+"/status", "")
		for _, secret := range []string{lab.Site.Credentials.PPPoEPassword.Reveal(), labtest.CRPassword} {
			if strings.Contains(string(body), secret) {
				t.Errorf("the status shows a credential")
			}
		}
		if code, _ := e.do(t, "reader", "GET", "/api/v1/devices/nope/status", ""); code != 404 {
			t.Errorf("status of an unknown device: %d", code)
		}

		var xs server.DeviceStatus
		e.get(t, "/api/v1/devices/xt2-lab/status", &xs)
		if xs.Identity == nil || xs.Identity.Kind != "xt2" || xs.XT2 == nil || len(xs.WAN) != 1 {
			t.Errorf("XT-2 status %+v", xs)
		}
	})

	t.Run("events", func(t *testing.T) {
		// A status read wakes the gateway with a connection request when
		// it is not in a session: its Inform (6 CONNECTION REQUEST) reaches
		// the API's log.
		deadline := time.Now().Add(30 * time.Second)
		for {
			e.get(t, gwPath+"/status", &server.DeviceStatus{})
			var ev server.DeviceEvents
			e.get(t, gwPath+"/events", &ev)
			if ev.Source == "api" && len(ev.Informs) > 0 && slices.Contains(ev.Informs[0].Events, "6 CONNECTION REQUEST") {
				if ev.Informs[0].At.IsZero() {
					t.Errorf("inform without a time: %+v", ev.Informs[0])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("events %+v: want the connection request's Inform first", ev)
			}
			time.Sleep(300 * time.Millisecond) // past the ACS's session hold
		}
	})

	t.Run("single probe", func(t *testing.T) {
		code, body := e.do(t, "alice", "POST", gwPath+"/diagnose", `{"probes":["line"]}`)
		id := submitted(t, code, body)
		if j := e.waitJob(t, id); j.State != store.JobDone {
			t.Fatalf("job %+v", j)
		}
		res, out := outcomeOf(t, e, id)
		if got := probesRun(out); !slices.Equal(got, []string{"line"}) || res.State != store.ResultDone {
			t.Errorf("probes run %v (%s), want only line", got, res.State)
		}

		// The gateway's own ping of the speed server (TR-069 IPPing).
		code, body = e.do(t, "alice", "POST", gwPath+"/diagnose", `{"probes":["ping"]}`)
		id = submitted(t, code, body)
		e.waitJob(t, id)
		if res, out := outcomeOf(t, e, id); !slices.Equal(probesRun(out), []string{"gateway_ping"}) || res.State != store.ResultDone {
			t.Errorf("ping ran %v (%s %q), want only gateway_ping", probesRun(out), res.State, res.Error)
		}

		code, body = e.do(t, "alice", "POST", gwPath+"/diagnose", `{"probes":["xt2"]}`)
		id = submitted(t, code, body)
		e.waitJob(t, id)
		if res, _ := outcomeOf(t, e, id); res.State != store.ResultFailed || !strings.Contains(res.Error, "the site has line, gateway_download, gateway_ping, iptv_config") {
			t.Errorf("a probe the gateway lacks: %s %q", res.State, res.Error)
		}
		if code, body := e.do(t, "alice", "POST", gwPath+"/diagnose", `{"probes":["nope"]}`); code != 400 || !strings.Contains(string(body), "nope") {
			t.Errorf("unknown probe: %d %s", code, body)
		}
	})

	t.Run("findings", func(t *testing.T) {
		if err := lab.Site.InjectFault("pppoe_wrong_password"); err != nil {
			t.Fatal(err)
		}
		code, body := e.do(t, "alice", "POST", gwPath+"/diagnose", "")
		id := submitted(t, code, body)
		e.waitJob(t, id)
		var f server.DeviceFindings
		e.get(t, gwPath+"/findings?limit=2", &f)
		if len(f.Diagnoses) != 2 || f.Diagnoses[0].JobID != id {
			t.Fatalf("findings %+v: want the 2 newest diagnoses, this one first", f)
		}
		var auth *server.FindingView
		for i, fd := range f.Diagnoses[0].Findings {
			if fd.Code == string(verdict.CodePPPoEAuthFailed) {
				auth = &f.Diagnoses[0].Findings[i]
			}
		}
		if auth == nil || auth.Severity != string(verdict.StatusFail) || auth.Cause == "" || auth.Fix == "" {
			t.Errorf("findings %+v: want %s with cause and fix", f.Diagnoses[0], verdict.CodePPPoEAuthFailed)
		}
		if f.Diagnoses[0].Status != string(verdict.StatusFail) {
			t.Errorf("status %q", f.Diagnoses[0].Status)
		}
		if code, _ := e.do(t, "reader", "GET", gwPath+"/findings?limit=0", ""); code != 400 {
			t.Errorf("limit=0: %d", code)
		}
		if strings.Contains(e.logs.String(), lab.Site.Credentials.PPPoEPassword.Reveal()) {
			t.Errorf("the PPPoE password appears in the log")
		}
	})

	t.Run("xt2", func(t *testing.T) {
		var l server.DeviceList
		e.get(t, "/api/v1/devices?kind=xt2", &l)
		if l.Total != 1 || l.Devices[0].ID != "xt2-lab" {
			t.Errorf("XT-2 list %+v", l)
		}
		code, body := e.do(t, "alice", "POST", "/api/v1/devices/xt2-lab/diagnose", "")
		id := submitted(t, code, body)
		if j := e.waitJob(t, id); j.State != store.JobDone || j.FailedCount != 0 {
			t.Fatalf("XT-2 job %+v", j)
		}
		_, out := outcomeOf(t, e, id)
		// The XT-2's own download and ping tests run too (serve has a speed server).
		if got := probesRun(out); !slices.Equal(got, []string{"gateway_download", "gateway_ping", "xt2"}) || !out.Results[2].Success {
			t.Errorf("XT-2 probes %v (%+v)", got, out.Results)
		}
		if out.Facts[verdict.FactWANStatus] == "" || out.Facts[verdict.FactBBMSBound] == "" {
			t.Errorf("XT-2 facts %v", out.Facts)
		}
		code, body = e.do(t, "alice", "POST", "/api/v1/fleet/diagnose", `{"devices":["xt2-lab"],"probes":["xt2"]}`)
		fleet := submitted(t, code, body)
		if j := e.waitJob(t, fleet); j.State != store.JobDone || j.FailedCount != 0 || !strings.Contains(string(j.Params), `"probes":["xt2"]`) {
			t.Fatalf("XT-2 fleet job %+v (params %s)", j, j.Params)
		}
		var f server.DeviceFindings
		e.get(t, "/api/v1/devices/xt2-lab/findings", &f)
		if len(f.Diagnoses) != 2 || f.Diagnoses[0].JobID != fleet || f.Diagnoses[1].JobID != id {
			t.Errorf("XT-2 findings %+v", f)
		}
	})
}
