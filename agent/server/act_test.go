package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/jobs"
	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers/e8"
	"fieldagent/testlab"
	"fieldagent/testlab/labtest"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// The act tests' tokens: one per role, by name.
const (
	configureUser = "ops-li"
	diagnoseUser  = "diag-wang"
	readUser      = "read-zhao"
)

// actEnv is the API over an ACS that a testlab site's installed e8
// gateway informs, with tokens of every role.
type actEnv struct {
	url    string
	client *http.Client
	acs    *acs.Server
	site   *testlab.Site
	store  *store.Store
	logs   *syncBuffer
	// bodies holds every answer the test got, to search for secrets.
	bodies *syncBuffer
	tokens map[string]secret.Secret // by token name
	gwID   string
}

// startAct starts the ACS (its log and the API's captured in logs), the
// site, the store, a job runner and the API, and waits until the gateway
// has informed and its internet WAN is up.
func startAct(t *testing.T) *actEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	a := acs.New(acs.Config{
		Logger:                log.With("component", "acs"),
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return labtest.CRUser, secret.New(labtest.CRPassword) },
	})
	acsSrv := httptest.NewUnstartedServer(a)
	acsSrv.Config.ConnState = a.ConnState
	acsSrv.Start()
	t.Cleanup(acsSrv.Close)
	site, err := testlab.Start(ctx, testlab.Config{
		ACSURL: acsSrv.URL + "/", ConnReqUsername: labtest.CRUser, ConnReqPassword: secret.New(labtest.CRPassword),
		Gateway: testlab.GatewayInstalled,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)

	st, err := store.Open(filepath.Join(t.TempDir(), "fieldagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	runner := &jobs.Runner{Store: st, Concurrency: 4, Logger: log.With("component", "jobs")}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = runner.Shutdown(sctx)
	})
	tokens := map[string]secret.Secret{}
	var list []auth.Token
	for name, role := range map[string]auth.Role{configureUser: auth.RoleConfigure, diagnoseUser: auth.RoleDiagnose, readUser: auth.RoleRead} {
		plain, hash := auth.NewToken()
		tokens[name] = plain
		list = append(list, auth.Token{Name: name, Hash: hash, Role: role})
	}
	authn, err := auth.New(list, auth.Options{Rate: 10000, Burst: 10000, Logger: log.With("component", "auth")})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.NewAPI(server.APIConfig{
		ACS: a, Store: st, Runner: runner, Auth: authn, StepTimeout: 10 * time.Second, Logger: log,
		ActionTimeout: 30 * time.Second, RebootTimeout: 30 * time.Second, ActionPollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == testlab.SampleGatewaySN })
	if err != nil {
		t.Fatalf("the gateway did not inform: %v", err)
	}
	e := &actEnv{url: apiSrv.URL, client: apiSrv.Client(), acs: a, site: site, store: st, logs: logs,
		bodies: &syncBuffer{}, tokens: tokens, gwID: d.ID}
	e.waitWAN(t, "Connected")
	return e
}

// call sends a request with the named token (none for "") and returns the
// status and body.
func (e *actEnv) call(t *testing.T, token, method, path, body string) (int, []byte) {
	t.Helper()
	code, b := callAPI(t, e.client, e.url, e.tokens[token], method, path, body)
	_, _ = e.bodies.Write(append(b, '\n'))
	return code, b
}

// act runs an action as the configure user and decodes the answer.
func (e *actEnv) act(t *testing.T, action, body string) (int, server.ActionResult) {
	t.Helper()
	code, b := e.call(t, configureUser, "POST", "/api/v1/devices/"+e.gwID+"/actions/"+action, body)
	var res server.ActionResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("%s: %d %s: %v", action, code, b, err)
	}
	return code, res
}

// get reads parameters through the ACS, as any caller of the ACS sees them.
func (e *actEnv) get(t *testing.T, names ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pv, err := e.acs.GetParameterValues(ctx, e.gwID, names...)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range pv {
		m[p.Name] = p.Value
	}
	return m
}

// internetWAN returns the gateway's INTERNET WAN instance, read through the ACS.
func (e *actEnv) internetWAN(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conns, err := e8.New(e.acs, e.gwID).WANConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if strings.Contains(c.ServiceList, "INTERNET") {
			return c.Instance
		}
	}
	t.Fatal("the gateway has no INTERNET WAN")
	return ""
}

// waitWAN waits until the internet WAN's ConnectionStatus reads status.
func (e *actEnv) waitWAN(t *testing.T, status string) {
	t.Helper()
	inst := e.internetWAN(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := e.get(t, inst+"ConnectionStatus")[inst+"ConnectionStatus"]
		if got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the internet WAN is %s after 20s, want %s", got, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// audit returns the device's audit entries, newest first, from the store.
func (e *actEnv) audit(t *testing.T) []store.AuditEntry {
	t.Helper()
	es, err := e.store.AuditLog(context.Background(), store.AuditQuery{DeviceID: e.gwID})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// state decodes an ActionResult's before or after values.
func state(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("state %s: %v", raw, err)
	}
	return m
}

// checkEntry checks that the audit entry of res was written by the
// configure user and finished with res's outcome and values.
func (e *actEnv) checkEntry(t *testing.T, res server.ActionResult, action, outcome string) store.AuditEntry {
	t.Helper()
	got, err := e.store.Audit(context.Background(), res.AuditID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Actor != configureUser || got.Role != string(auth.RoleConfigure) || got.DeviceID != e.gwID || got.Action != action ||
		got.Outcome != outcome || got.FinishedAt.IsZero() || !bytes.Equal(got.Before, res.Before) || !bytes.Equal(got.After, res.After) {
		t.Errorf("audit entry %+v\ndoes not match the answer %+v (want %s by %s, %s)", got, res, action, configureUser, outcome)
	}
	return got
}

func TestActions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a testlab site")
	}
	e := startAct(t)
	creds := e.site.Credentials
	actions := "/api/v1/devices/" + e.gwID + "/actions/"

	t.Run("refused", func(t *testing.T) {
		wan := e.internetWAN(t)
		keyBefore := e.get(t, e8.Root+"ManagementServer.ParameterKey", wan+"Enable")
		tests := []struct {
			name, token, method, path, body string
			status                          int
			want                            string
		}{
			{"no token", "", "POST", actions + "redial_pppoe", "", 401, "missing bearer token"},
			{"read role", readUser, "POST", actions + "reboot", "", 403, `needs role \"configure\"`},
			{"diagnose role", diagnoseUser, "POST", actions + "redial_pppoe", "", 403, `needs role \"configure\"`},
			{"diagnose role, vlan", diagnoseUser, "POST", actions + "set_wan_vlan", `{"vlan": 41}`, 403, `has role \"diagnose\"`},
			{"diagnose role, loid", diagnoseUser, "POST", actions + "reregister_loid", `{"loid": "` + creds.LOID.Reveal() + `"}`, 403, `needs role \"configure\"`},
			{"diagnose role, audit", diagnoseUser, "GET", "/api/v1/audit", "", 403, `needs role \"configure\"`},
			{"unknown device", configureUser, "POST", "/api/v1/devices/NOPE/actions/reboot", "", 404, `no device \"NOPE\"`},
			{"unknown action", configureUser, "POST", actions + "factory_reset", "", 400, "the actions are redial_pppoe, reboot, set_wan_vlan, reregister_loid"},
			{"vlan missing", configureUser, "POST", actions + "set_wan_vlan", `{}`, 400, "needs the VLAN"},
			{"vlan out of range", configureUser, "POST", actions + "set_wan_vlan", `{"vlan": 4095}`, 400, "out of range 0-4094"},
			{"vlan negative", configureUser, "POST", actions + "set_wan_vlan", `{"vlan": -1}`, 400, "out of range 0-4094"},
			{"vlan wrong wan", configureUser, "POST", actions + "set_wan_vlan", `{"vlan": 41, "wan": "voice"}`, 400, "not internet or iptv"},
			{"vlan not a number", configureUser, "POST", actions + "set_wan_vlan", `{"vlan": "41"}`, 400, "must be an integer"},
			{"unknown field", configureUser, "POST", actions + "redial_pppoe", `{"force": true}`, 400, "unknown field"},
			{"loid with a space", configureUser, "POST", actions + "reregister_loid", `{"loid": "LOID 123"}`, 400, "without spaces"},
			{"audit bad since", configureUser, "GET", "/api/v1/audit?since=yesterday", "", 400, "neither an RFC 3339 time"},
			{"audit bad limit", configureUser, "GET", "/api/v1/audit?limit=0", "", 400, "from 1 to 1000"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, body := e.call(t, tc.token, tc.method, tc.path, tc.body)
				if code != tc.status || !strings.Contains(string(body), tc.want) {
					t.Errorf("%s %s: %d %s; want %d with %q", tc.method, tc.path, code, body, tc.status, tc.want)
				}
			})
		}
		if es := e.audit(t); len(es) != 0 {
			t.Errorf("refused calls left audit entries: %+v", es)
		}
		if after := e.get(t, e8.Root+"ManagementServer.ParameterKey", wan+"Enable"); fmt.Sprint(after) != fmt.Sprint(keyBefore) {
			t.Errorf("refused calls changed the gateway: %v, was %v", after, keyBefore)
		}
	})

	t.Run("proposals", func(t *testing.T) {
		var p server.ActionProposals
		code, body := e.call(t, readUser, "GET", "/api/v1/devices/"+e.gwID+"/actions", "")
		if err := json.Unmarshal(body, &p); code != 200 || err != nil {
			t.Fatalf("actions: %d %s %v", code, body, err)
		}
		if p.Diagnosis != nil || len(p.Proposed) != 0 || !strings.Contains(p.Hint, "diagnose") ||
			!slices.Equal(p.Available, server.ActionNames()) {
			t.Errorf("before any diagnosis: %+v", p)
		}

		// Findings of every kind, stored as diagnoses would be: the newest
		// decides.
		tests := []struct {
			codes []verdict.Code
			want  []string
		}{
			{[]verdict.Code{verdict.CodePPPoEAuthFailed, verdict.CodeWANDown}, []string{"redial_pppoe"}},
			{[]verdict.Code{verdict.CodePPPoENoServer}, []string{"set_wan_vlan", "redial_pppoe"}},
			{[]verdict.Code{verdict.CodeLOIDNotRegistered, verdict.CodeOpticalRxLow}, []string{"reregister_loid"}},
			{[]verdict.Code{verdict.CodeONUNotAuthorised}, []string{"reregister_loid"}},
			{[]verdict.Code{verdict.CodeOpticalNoLight, verdict.CodeFirmwareOutdated, verdict.CodeDNSFailing}, []string{}},
		}
		for i, tc := range tests {
			t.Run(fmt.Sprint(tc.codes), func(t *testing.T) {
				var out diagrun.Outcome
				for _, c := range tc.codes {
					out.Report.Findings = append(out.Report.Findings, verdict.Finding{Code: c, Severity: verdict.StatusFail, Fix: "fix " + string(c)})
				}
				b, _ := json.Marshal(out)
				job := fmt.Sprintf("stored-%d", i)
				ctx := context.Background()
				if err := e.store.CreateJob(ctx, store.Job{ID: job, Kind: server.JobKindDiagnose, Devices: []string{e.gwID}}); err != nil {
					t.Fatal(err)
				}
				if err := e.store.AddJobResult(ctx, store.JobResult{JobID: job, DeviceID: e.gwID, State: store.ResultDone, Result: b}); err != nil {
					t.Fatal(err)
				}
				_, body := e.call(t, readUser, "GET", "/api/v1/devices/"+e.gwID+"/actions", "")
				var p server.ActionProposals
				if err := json.Unmarshal(body, &p); err != nil {
					t.Fatal(err)
				}
				if p.Diagnosis == nil || p.Diagnosis.JobID != job || !slices.Equal(p.Proposed, tc.want) || len(p.Findings) != len(tc.codes) {
					t.Errorf("proposals %s; want %v from job %s", body, tc.want, job)
				}
				for _, f := range p.Findings {
					if len(f.Actions) == 0 && f.Fix != "fix "+string(f.Code) {
						t.Errorf("finding %s without an action does not say the fix: %+v", f.Code, f)
					}
				}
			})
		}
	})

	t.Run("redial", func(t *testing.T) {
		// The BRAS forgets the account: the WAN is refused (691).
		if err := e.site.InjectFault("pppoe_account_not_opened"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = e.site.ClearFault("pppoe_account_not_opened") }()

		// A real diagnosis through the API proposes the redial.
		code, body := e.call(t, diagnoseUser, "POST", "/api/v1/devices/"+e.gwID+"/diagnose", "")
		var acc struct {
			JobID string `json:"job_id"`
		}
		if err := json.Unmarshal(body, &acc); code != 202 || err != nil {
			t.Fatalf("diagnose: %d %s", code, body)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, body := e.call(t, readUser, "GET", "/api/v1/jobs/"+acc.JobID, "")
			var j struct{ State string }
			_ = json.Unmarshal(body, &j)
			if j.State == store.JobDone || j.State == store.JobFailed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("diagnosis still %s after 60s", j.State)
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, body = e.call(t, readUser, "GET", "/api/v1/devices/"+e.gwID+"/actions", "")
		var p server.ActionProposals
		if err := json.Unmarshal(body, &p); err != nil || p.Diagnosis == nil || p.Diagnosis.JobID != acc.JobID || !slices.Contains(p.Proposed, "redial_pppoe") {
			t.Fatalf("after the diagnosis: %s (%v); want redial_pppoe proposed from job %s", body, err, acc.JobID)
		}

		// While the account is not open, a redial does not fix it.
		code, res := e.act(t, "redial_pppoe", "")
		if code != 422 || res.Outcome != "failed" || res.Kind != "not_fixed" || !strings.Contains(res.Error, "691") {
			t.Fatalf("redial with the account closed: %d %+v", code, res)
		}
		e.checkEntry(t, res, "redial_pppoe", store.AuditFailed)

		// The back office opens it; the gateway does not redial by itself.
		e.site.Operator.AddPPPoEAccount(testlab.SamplePPPoEUser, creds.PPPoEPassword)
		e.waitWAN(t, "Disconnected")
		code, res = e.act(t, "redial_pppoe", "{}")
		if code != 200 || res.Outcome != "ok" {
			t.Fatalf("redial: %d %+v", code, res)
		}
		before, after := state(t, res.Before), state(t, res.After)
		if before["connection_status"] != "Disconnected" || before["last_connection_error"] != "ERROR_AUTHENTICATION_FAILURE" ||
			after["connection_status"] != "Connected" || after["external_ip"] == "" || after["username"] != "(set)" {
			t.Errorf("before %v, after %v", before, after)
		}
		e.waitWAN(t, "Connected")
		e.checkEntry(t, res, "redial_pppoe", store.AuditOK)
	})

	t.Run("set_wan_vlan", func(t *testing.T) {
		// The WAN is moved to VLAN 46; the BRAS answers on the old one only.
		if err := e.site.InjectFault("wan_vlan_wrong"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = e.site.ClearFault("wan_vlan_wrong") }()
		right, _ := e.site.Operator.InternetVLAN()
		e.waitWAN(t, "Disconnected")

		// Another wrong VLAN is pushed, but nothing answers on it.
		code, res := e.act(t, "set_wan_vlan", fmt.Sprintf(`{"vlan": %d}`, right+1000))
		if code != 422 || res.Kind != "not_fixed" || !strings.Contains(res.Error, "no PADO") {
			t.Errorf("set_wan_vlan to a VLAN the BRAS does not serve: %d %+v", code, res)
		}
		e.checkEntry(t, res, "set_wan_vlan", store.AuditFailed)

		// The operator's VLAN (the sample gateway's is untagged), then a
		// tagged one that the operator moves the service to.
		for _, vlan := range []int{right, 41} {
			e.site.Operator.ServeInternetVLAN(vlan)
			code, res := e.act(t, "set_wan_vlan", fmt.Sprintf(`{"vlan": %d}`, vlan))
			if code != 200 || res.Outcome != "ok" {
				t.Fatalf("set_wan_vlan %d: %d %+v", vlan, code, res)
			}
			before, after := state(t, res.Before), state(t, res.After)
			param, _ := after["vlan_parameter"].(string)
			if before["vlan"] == float64(vlan) || after["vlan"] != float64(vlan) || after["connection_status"] != "Connected" || param == "" {
				t.Errorf("before %v, after %v; want the VLAN changed to %d", before, after, vlan)
			}
			// Read back through the ACS: the tag and, on this PON uplink,
			// whether the link tags at all (Mode 0 is untagged).
			mode := strings.TrimSuffix(param, "VLANIDMark") + "Mode"
			wantMode := "2"
			if vlan == 0 {
				wantMode = "0"
			}
			if got := e.get(t, param, mode); got[param] != fmt.Sprint(vlan) || got[mode] != wantMode {
				t.Errorf("through the ACS %v, want %s=%d and %s=%s", got, param, vlan, mode, wantMode)
			}
			entry := e.checkEntry(t, res, "set_wan_vlan", store.AuditOK)
			if string(entry.Params) != fmt.Sprintf(`{"vlan":%d,"wan":"internet"}`, vlan) {
				t.Errorf("audit params %s", entry.Params)
			}
			if b, a := state(t, entry.Before), state(t, entry.After); b["vlan"] != before["vlan"] || a["vlan"] != float64(vlan) {
				t.Errorf("audit before %s, after %s: want the old VLAN, then %d", entry.Before, entry.After, vlan)
			}
		}

		// The IPTV WAN is not installed on this gateway.
		code, res = e.act(t, "set_wan_vlan", `{"vlan": 45, "wan": "iptv"}`)
		if code != 422 || res.Kind != "unsupported" || res.Before != nil {
			t.Errorf("set_wan_vlan iptv without an IPTV WAN: %d %+v", code, res)
		}
	})

	t.Run("reregister_loid", func(t *testing.T) {
		if err := e.site.InjectFault("loid_wrong"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = e.site.ClearFault("loid_wrong") }()
		if st := e.get(t, e8.UserInfo+"Status")[e8.UserInfo+"Status"]; st == e8.LOIDStatusRegistered {
			t.Fatal("the wrong LOID reads registered")
		}
		code, res := e.act(t, "reregister_loid", fmt.Sprintf(`{"loid": %q, "password": %q}`, creds.LOID.Reveal(), creds.LOIDPassword.Reveal()))
		if code != 200 || res.Outcome != "ok" {
			t.Fatalf("reregister_loid: %d %+v", code, res)
		}
		before, after := state(t, res.Before), state(t, res.After)
		if before["registered"] != false || before["loid_status"] != e8.LOIDStatusNoSuchLOID || before["loid"] != "(set)" ||
			after["registered"] != true || after["loid_status"] != e8.LOIDStatusRegistered || after["loid"] != "(set)" {
			t.Errorf("before %v, after %v", before, after)
		}
		if st := e.get(t, e8.UserInfo+"Status")[e8.UserInfo+"Status"]; st != e8.LOIDStatusRegistered {
			t.Errorf("UserInfo.Status reads %s through the ACS, want registered", st)
		}
		entry := e.checkEntry(t, res, "reregister_loid", store.AuditOK)
		if string(entry.Params) != `{"loid":"(set)","password":"(set)"}` {
			t.Errorf("audit params %s", entry.Params)
		}
		e.waitWAN(t, "Connected")

		// Without a body the gateway's own LOID registers again.
		code, res = e.act(t, "reregister_loid", "")
		if code != 200 || res.Outcome != "ok" || !strings.Contains(string(res.Params), "the gateway's") {
			t.Errorf("reregister_loid with the gateway's LOID: %d %+v", code, res)
		}
	})

	t.Run("reboot", func(t *testing.T) {
		code, res := e.act(t, "reboot", "")
		if code != 200 || res.Outcome != "ok" {
			t.Fatalf("reboot: %d %+v", code, res)
		}
		after := state(t, res.After)
		if evs, _ := after["last_events"].([]any); !slices.Contains(evs, any("1 BOOT")) {
			t.Errorf("after the reboot: %v; want the 1 BOOT Inform", after)
		}
		e.checkEntry(t, res, "reboot", store.AuditOK)
	})

	t.Run("disconnect mid-action", func(t *testing.T) {
		e.waitWAN(t, "Connected")
		wan := e.internetWAN(t)
		// The gateway applies the first write (Enable 0) and drops the
		// session before it answers.
		e.site.Gateway.CutSessionWhere(func(m cwmp.Message) bool {
			_, ok := m.(*cwmp.SetParameterValues)
			return ok
		}, true)
		type answer struct {
			code int
			body []byte
			err  error
		}
		done := make(chan answer, 1)
		go func() { // no t.Fatal off the test's goroutine
			req, _ := http.NewRequest("POST", e.url+actions+"redial_pppoe", nil)
			req.Header.Set("Authorization", "Bearer "+e.tokens[configureUser].Reveal())
			resp, err := e.client.Do(req)
			if err != nil {
				done <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			done <- answer{resp.StatusCode, b, err}
		}()
		// While the ACS waits for the lost session (ConnLostGrace), a
		// second action on the device is refused.
		deadline := time.Now().Add(10 * time.Second)
		for len(e.audit(t)) == 0 || e.audit(t)[0].Outcome != store.AuditStarted {
			if time.Now().After(deadline) {
				t.Fatal("the redial did not start")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if code, body := e.call(t, configureUser, "POST", actions+"reboot", ""); code != 409 || !strings.Contains(string(body), "redial_pppoe is running") {
			t.Errorf("a second action during the redial: %d %s", code, body)
		}
		a := <-done
		var res server.ActionResult
		if err := json.Unmarshal(a.body, &res); a.err != nil || err != nil {
			t.Fatalf("redial with the session cut: %v %v %s", a.err, err, a.body)
		}
		_, _ = e.bodies.Write(a.body)
		code := a.code
		if code != 502 || res.Outcome != "failed" || res.Kind != "device_unreachable" || !strings.Contains(res.Error, "session ended") {
			t.Fatalf("redial with the session cut: %d %+v", code, res)
		}
		e.checkEntry(t, res, "redial_pppoe", store.AuditFailed)
		if res.After == nil || state(t, res.After)["enable"] != true {
			t.Errorf("after the cut: %s; want the WAN enabled again (rolled back)", res.After)
		}
		if got := e.get(t, wan+"Enable")[wan+"Enable"]; got != "1" && got != "true" {
			t.Errorf("Enable reads %s after the cut, want the WAN enabled again", got)
		}
		e.waitWAN(t, "Connected")
	})

	t.Run("audit", func(t *testing.T) {
		all := e.audit(t)
		if len(all) < 10 {
			t.Fatalf("%d audit entries, want one per action", len(all))
		}
		code, body := e.call(t, configureUser, "GET", "/api/v1/audit?device="+e.gwID+"&since=1h&limit=3", "")
		var l struct {
			Entries []server.AuditView `json:"entries"`
			Count   int                `json:"count"`
		}
		if err := json.Unmarshal(body, &l); code != 200 || err != nil || l.Count != 3 || len(l.Entries) != 3 {
			t.Fatalf("audit: %d %s", code, body)
		}
		if l.Entries[0].ID != all[0].ID || l.Entries[0].Actor != configureUser || l.Entries[0].Outcome != "failed" || l.Entries[0].FinishedAt == nil {
			t.Errorf("newest entry %+v", l.Entries[0])
		}
		_, body = e.call(t, configureUser, "GET", "/api/v1/audit?device=NOPE", "")
		if err := json.Unmarshal(body, &l); err != nil || l.Count != 0 {
			t.Errorf("audit of an unknown device: %s", body)
		}
		_, body = e.call(t, configureUser, "GET", "/api/v1/audit?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "")
		if err := json.Unmarshal(body, &l); err != nil || l.Count != 0 {
			t.Errorf("audit since the future: %s", body)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		e.site.Close()
		code, res := e.act(t, "reboot", "")
		// The ACS either cannot reach it (connection request refused) or
		// loses the session it still had open.
		if code != 502 || res.Outcome != "failed" || res.Kind != "device_unreachable" || res.Before != nil || res.After != nil ||
			!strings.Contains(res.Error, "nothing was changed") {
			t.Fatalf("reboot of a gone gateway: %d %+v", code, res)
		}
		e.checkEntry(t, res, "reboot", store.AuditFailed)
	})

	t.Run("no secrets", func(t *testing.T) {
		var dump bytes.Buffer
		if err := e.store.Dump(context.Background(), &dump); err != nil {
			t.Fatal(err)
		}
		var auditRows []string
		for _, line := range strings.Split(dump.String(), "\n") {
			if strings.HasPrefix(line, "audit_log:") {
				auditRows = append(auditRows, line)
			}
		}
		if len(auditRows) < 11 {
			t.Fatalf("%d audit rows in the dump", len(auditRows))
		}
		secrets := map[string]string{
			"PPPoE password": creds.PPPoEPassword.Reveal(), "LOID": creds.LOID.Reveal(), "LOID password": creds.LOIDPassword.Reveal(),
		}
		for name, tok := range e.tokens {
			secrets["token "+name] = tok.Reveal()
		}
		places := map[string]string{"the store": dump.String(), "the answers": e.bodies.String(), "the log": e.logs.String()}
		for what, s := range secrets {
			if s == "" {
				t.Fatalf("%s is empty", what)
			}
			for where, text := range places {
				if strings.Contains(text, s) {
					t.Errorf("%s appears in %s: %s", what, where, grepLines(text, s))
				}
			}
		}
		// The PPPoE account is not a secret elsewhere, but the audit
		// entries only say it is set.
		if rows := strings.Join(auditRows, "\n"); strings.Contains(rows, testlab.SamplePPPoEUser) {
			t.Errorf("the PPPoE username appears in the audit rows: %s", grepLines(rows, testlab.SamplePPPoEUser))
		}
		if !strings.Contains(e.logs.String(), `"msg":"action done"`) || !strings.Contains(e.logs.String(), `"caller":"`+configureUser+`"`) {
			t.Error("the log has no action lines naming the caller")
		}
	})
}
