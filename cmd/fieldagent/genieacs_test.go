package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/server/auth"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/fleet"
	"fieldagent/testlab/nbisim"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/genieacs"
)

// genieLab is the operator's side simulated: gateways informing an ACS
// behind a GenieACS NBI (testlab/nbisim), over real CWMP and HTTP.
type genieLab struct {
	nbi    string
	acs    *acs.Server
	fleet  *fleet.Fleet
	client *genieacs.Client
	// stopOff stops the extra gateway "OFFLINE01".
	stopOff func()
	offID   string
}

func startGenieLab(t *testing.T, n int) *genieLab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := acs.New(acs.Config{
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return "lab", secret.New("cr-genie") },
		ConnLostGrace:         50 * time.Millisecond,
	})
	as := httptest.NewUnstartedServer(a)
	as.Config.ConnState = a.ConnState
	as.Start()
	t.Cleanup(as.Close)
	fl, err := fleet.Start(ctx, fleet.Options{N: n, ACSURL: as.URL + "/", ConnReqUsername: "lab", ConnReqPassword: secret.New("cr-genie")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fl.Close() })
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	for i := range n {
		if _, err := a.WaitDevice(wctx, func(d acs.Device) bool { return d.ID == fl.DeviceID(i) }); err != nil {
			t.Fatal(err)
		}
	}
	// One more gateway, with the fleet's serial prefix, that goes offline.
	gw, err := e8sim.New(e8sim.Config{Vendor: fleet.Vendor, OUI: fleet.OUI, ProductClass: fleet.ProductClass, Model: "ZXHN F650",
		Serial: fl.Serial(0)[:3] + "OFFLINE01", Firmware: "V1", Access: "gpon", ACSURL: as.URL + "/", PeriodicInform: -1,
		ConnReqUsername: "lab", ConnReqPassword: secret.New("cr-genie")})
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(gctx) }()
	d, err := a.WaitDevice(wctx, func(d acs.Device) bool { return strings.HasSuffix(d.DeviceId.SerialNumber, "OFFLINE01") })
	if err != nil {
		t.Fatal(err)
	}
	nbi := nbisim.New(a, nbisim.Options{})
	ns := httptest.NewServer(nbi)
	t.Cleanup(ns.Close)
	t.Cleanup(func() { _ = nbi.Close() })
	c, err := genieacs.New(ns.URL, genieacs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lab := &genieLab{nbi: ns.URL, acs: a, fleet: fl, client: c, offID: d.ID}
	lab.stopOff = func() {
		gcancel()
		<-done
		ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer icancel()
		_ = a.WaitIdle(ictx, d.ID)
	}
	t.Cleanup(lab.stopOff)
	return lab
}

// run runs the CLI with acs.kind genieacs pointing at the lab's NBI.
func (l *genieLab) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	f, out, errOut, _ := newTestFactory(t)
	f.Env = append(f.Env, "FIELDAGENT_ACS_KIND=genieacs", "FIELDAGENT_ACS_NBI_URL="+l.nbi, "FIELDAGENT_ACS_NBI_TIMEOUT=3s",
		"FIELDAGENT_WORKFLOW_STEP_TIMEOUT=10s")
	err := execute(t, f, args...)
	return out.String(), errOut.String(), err
}

// TestCommandsOverGenieACS runs the device, diag and fleet commands over
// the GenieACS NBI: the same commands as over the embedded ACS, with an
// offline device that a fleet run survives without leaving tasks behind.
func TestCommandsOverGenieACS(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated gateways behind a simulated GenieACS")
	}
	lab := startGenieLab(t, 4)
	ctx := t.Context()

	out, _, err := lab.run(t, "device", "list", "-o", "json")
	var l struct{ Devices []server.DeviceView }
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Devices) != 5 {
		t.Fatalf("device list over GenieACS: %v (%d devices)\n%s", err, len(l.Devices), out)
	}
	id0 := lab.fleet.DeviceID(0)
	out, _, err = lab.run(t, "device", "get", id0, "InternetGatewayDevice.DeviceInfo.SerialNumber")
	if err != nil || !strings.Contains(out, lab.fleet.Serial(0)) {
		t.Errorf("device get over GenieACS: %v\n%s", err, out)
	}
	_, _, err = lab.run(t, "device", "set", id0, "InternetGatewayDevice.DeviceInfo.UpTime:unsignedInt=5")
	if exitCode(err) != exitCheckFailed || !strings.Contains(err.Error(), "9008") {
		t.Errorf("setting a read-only parameter: %v (exit %d), want CWMP fault 9008 and exit 1", err, exitCode(err))
	}

	// device list searches GenieACS: by serial, by a query, paged.
	out, _, err = lab.run(t, "device", "list", "--serial", lab.fleet.Serial(2), "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Devices) != 1 || l.Devices[0].ID != lab.fleet.DeviceID(2) {
		t.Errorf("device list --serial over GenieACS: %v\n%s", err, out)
	}
	out, _, err = lab.run(t, "device", "list", "--query", `{"_deviceId._SerialNumber":{"$regex":"OFFLINE"}}`, "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Devices) != 1 || l.Devices[0].ID != lab.offID {
		t.Errorf("device list --query over GenieACS: %v\n%s", err, out)
	}
	out, _, err = lab.run(t, "device", "list", "--limit", "2", "--offset", "1", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Devices) != 2 {
		t.Errorf("device list --limit 2 --offset 1 over GenieACS: %v\n%s", err, out)
	}
	if _, _, err := lab.run(t, "device", "list", "--account", "x"); exitCode(err) != exitUsage {
		t.Errorf("--account over GenieACS: %v, want a usage error", err)
	}

	// diag run by serial: the gateway's readings through the NBI, and the
	// device tagged as diagnosed.
	out, _, err = lab.run(t, "diag", "run", "--serial", lab.fleet.Serial(1), "-o", "json")
	var outcome diagrun.Outcome
	if exitCode(err) > exitCheckFailed || json.Unmarshal([]byte(out), &outcome) != nil || len(outcome.Results) == 0 {
		t.Fatalf("diag run over GenieACS: %v\n%s", err, out)
	}
	doc, err := lab.client.Document(ctx, lab.fleet.DeviceID(1), "_tags")
	if err != nil || !doc.HasTag(genieacs.TagDiagnosed) {
		t.Errorf("device tags after the diagnosis: %v %v", doc, err)
	}

	// A fleet by GenieACS query, one device offline: it fails alone, the
	// rest are diagnosed, and no task is left queued on GenieACS.
	lab.stopOff()
	// Another device is blocked by an earlier task's CWMP fault (someone
	// set a read-only parameter through GenieACS and left the fault).
	blocked := lab.fleet.DeviceID(3)
	resp, err := http.Post(lab.nbi+"/devices/"+url.PathEscape(blocked)+"/tasks?connection_request&timeout=3000", "application/json",
		strings.NewReader(`{"name":"setParameterValues","parameterValues":[["InternetGatewayDevice.DeviceInfo.UpTime",1,"xsd:unsignedInt"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the faulting task: %s", resp.Status)
	}
	query := `{"_deviceId._SerialNumber":{"$regex":"^` + lab.fleet.Serial(0)[:3] + `"}}`
	out, errOut, err := lab.run(t, "fleet", "diagnose", "--query", query, "--concurrency", "3", "-o", "json")
	if exitCode(err) != exitCheckFailed {
		t.Errorf("fleet with an offline device: exit %d (%v), want 1", exitCode(err), err)
	}
	var job server.JobView
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatalf("fleet output: %v\n%s\n%s", err, out, errOut)
	}
	if job.Total != 5 || len(job.Results) != 5 || job.State != "done" {
		t.Fatalf("fleet job: state %s, %d results of %d", job.State, len(job.Results), job.Total)
	}
	for _, r := range job.Results {
		offline := r.DeviceID == lab.offID
		if (offline || r.DeviceID == blocked) != (r.State == "failed") {
			t.Errorf("%s: %s %s", r.DeviceID, r.State, r.Error)
		}
		if offline && !strings.Contains(strings.ToLower(r.Error), "offline") {
			t.Errorf("the offline device's error %q does not say offline", r.Error)
		}
	}
	if !strings.Contains(errOut, "[5/5]") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}
	// Only the faulted task that was there before is left: the fleet's
	// own tasks for the offline and the blocked device are gone.
	if tasks, total, err := lab.client.Tasks(ctx, genieacs.Query{}); err != nil || total != 1 || tasks[0].Name != genieacs.TaskSetParameterValues {
		t.Errorf("tasks left on GenieACS after the fleet: %d %+v (%v), want the earlier faulted one", total, tasks, err)
	}
	faults, _, _ := lab.client.Faults(ctx, genieacs.Query{})
	for _, fl := range faults {
		if err := lab.client.DeleteFault(ctx, fl.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Asked to, the offline device's task stays queued for its next Inform.
	_, _, err = lab.run(t, "fleet", "diagnose", lab.offID, "--keep-tasks")
	if exitCode(err) != exitCheckFailed {
		t.Errorf("fleet --keep-tasks of the offline device: %v", err)
	}
	if tasks, total, err := lab.client.Tasks(ctx, genieacs.Query{}); err != nil || total != 1 || tasks[0].Device != lab.offID {
		t.Errorf("tasks after --keep-tasks: %d (%v), want the offline device's one", total, err)
	}
	if _, _, err := lab.run(t, "fleet", "diagnose", "--query", "{not json"); exitCode(err) != exitUsage {
		t.Errorf("bad query: %v", err)
	}
}

// TestServeOverGenieACS runs serve with acs.kind genieacs: the API lists
// GenieACS's devices and diagnoses a fleet selected by a GenieACS query.
func TestServeOverGenieACS(t *testing.T) {
	if testing.Short() {
		t.Skip("serve, simulated gateways and a simulated GenieACS")
	}
	lab := startGenieLab(t, 3)
	f, _, _, dir := newTestFactory(t)
	plain, hash := auth.NewToken()
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, []byte("serve:\n  tokens:\n    - {name: eng, hash: \""+hash+"\", role: diagnose}\n")...)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	f.Env = append(f.Env, "FIELDAGENT_ACS_KIND=genieacs", "FIELDAGENT_ACS_NBI_URL="+lab.nbi, "FIELDAGENT_SERVE_API_LISTEN=127.0.0.1:0",
		"FIELDAGENT_WORKFLOW_STEP_TIMEOUT=10s")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	root := newRootCmd(f)
	root.RemoveCommand(findSub(root.Commands(), "serve"))
	root.AddCommand(newServeCmd(f, func(ctx context.Context, o *serveOptions) error {
		o.ready = func(acsAddr, api string) {
			if acsAddr != "" {
				t.Errorf("serve over GenieACS listens for CWMP on %s", acsAddr)
			}
			ready <- api
		}
		return runServe(ctx, o)
	}))
	root.SetArgs([]string{"serve"})
	served := make(chan error, 1)
	go func() { served <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-served })
	var api string
	select {
	case api = <-ready:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	// Ready once the snapshot for the selections by serial is read.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve over GenieACS not ready after 10 s: %v", err)
		}
	}
	remoteRun := func(args ...string) (string, error) {
		g, out, _, _ := newTestFactory(t)
		g.Env = append(g.Env, "FIELDAGENT_REMOTE_TOKEN="+plain.Reveal())
		err := execute(t, g, append([]string{"--server", "http://" + api}, args...)...)
		return out.String(), err
	}
	out, err := remoteRun("device", "list", "-o", "json")
	var l struct{ Count int }
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || l.Count != 4 {
		t.Fatalf("device list through serve over GenieACS: %v\n%s", err, out)
	}
	// The list and its search are GenieACS queries, paged by GenieACS.
	var page struct {
		Devices []server.DeviceSummary
		Count   int
		Total   int
	}
	out, err = remoteRun("device", "list", "--serial", lab.fleet.Serial(1), "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || page.Total != 1 || page.Devices[0].ID != lab.fleet.DeviceID(1) {
		t.Errorf("search by serial through serve over GenieACS: %v\n%s", err, out)
	}
	out, err = remoteRun("device", "list", "--limit", "2", "--offset", "1", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || page.Total != 4 || page.Count != 2 {
		t.Errorf("paging through serve over GenieACS: %v\n%s", err, out)
	}
	out, err = remoteRun("device", "list", "--q", strings.ToLower(lab.fleet.Serial(2)), "--online", "true", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || page.Total != 1 || !page.Devices[0].Online {
		t.Errorf("text and online search through serve over GenieACS: %v\n%s", err, out)
	}
	if _, err := remoteRun("device", "list", "--kind", "e8"); exitCode(err) != exitUsage {
		t.Errorf("kind over GenieACS: %v, want a usage error (400)", err)
	}

	lab.stopOff()
	out, err = remoteRun("fleet", "diagnose", "--query", `{"_deviceId._ProductClass":"`+fleet.ProductClass+`"}`, "-o", "json")
	var job server.JobView
	if exitCode(err) > exitCheckFailed || json.Unmarshal([]byte(out), &job) != nil {
		t.Fatalf("fleet by query through serve: %v\n%s", err, out)
	}
	if job.Total != 4 || len(job.Results) != 4 || job.Failed != 1 {
		t.Errorf("fleet job: %d results of %d, %d failed; want 4, 4, 1 (the offline one)", len(job.Results), job.Total, job.Failed)
	}
	if _, total, _ := lab.client.Tasks(context.Background(), genieacs.Query{}); total != 0 {
		t.Errorf("%d tasks left queued on GenieACS", total)
	}
}
