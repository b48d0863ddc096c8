package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/server/auth"
	"fieldagent/testlab/fleet"
)

// remoteLab is a `fieldagent serve` run in-process, with simulated
// gateways informing its ACS, and the tokens of its callers.
type remoteLab struct {
	api    string
	fleet  *fleet.Fleet
	tokens map[auth.Role]string
	logs   func() string
}

// startRemoteLab starts serve with a read and a diagnose token and n
// simulated gateways, and waits until the API lists every gateway.
func startRemoteLab(t *testing.T, n int) *remoteLab {
	t.Helper()
	f, _, errOut, dir := newTestFactory(t)
	lab := &remoteLab{tokens: map[auth.Role]string{}}
	var lines []string
	for _, role := range []auth.Role{auth.RoleRead, auth.RoleDiagnose} {
		plain, hash := auth.NewToken()
		lab.tokens[role] = plain.Reveal()
		lines = append(lines, "    - {name: "+string(role)+"-engineer, hash: \""+hash+"\", role: "+string(role)+"}")
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, []byte("serve:\n  tokens:\n"+strings.Join(lines, "\n")+"\n")...)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	f.Env = append(f.Env, "FIELDAGENT_ACS_LISTEN=127.0.0.1:0", "FIELDAGENT_SERVE_API_LISTEN=127.0.0.1:0",
		"FIELDAGENT_ACS_CONNECTION_REQUEST_PASSWORD=cr-pass-remote", "FIELDAGENT_WORKFLOW_STEP_TIMEOUT=10s", "FIELDAGENT_LOG_FORMAT=json")

	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ acs, api string }
	ready := make(chan addrs, 1)
	root := newRootCmd(f)
	root.RemoveCommand(findSub(root.Commands(), "serve"))
	root.AddCommand(newServeCmd(f, func(ctx context.Context, o *serveOptions) error {
		o.ready = func(acsAddr, api string) { ready <- addrs{acsAddr, api} }
		return runServe(ctx, o)
	}))
	root.SetArgs([]string{"serve"})
	served := make(chan error, 1)
	go func() { served <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	var a addrs
	select {
	case a = <-ready:
	case err := <-served:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	lab.api = "http://" + a.api
	lab.logs = func() string { return bufString(errOut) }
	fl, err := fleet.Start(ctx, fleet.Options{N: n, ACSURL: "http://" + a.acs + "/", ConnReqUsername: "fieldagent",
		ConnReqPassword: secret.New("cr-pass-remote")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fl.Close() })
	lab.fleet = fl
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l struct{ Count int }
		out, err := lab.run(t, auth.RoleRead, "device", "list", "-o", "json")
		if err == nil && json.Unmarshal([]byte(out), &l) == nil && l.Count == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve lists %d of %d gateways after 30 s (%v)", l.Count, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return lab
}

// run runs the CLI against the lab's serve with role's token, as a remote
// engineer would (--server, the token in the environment), and returns
// stdout.
func (l *remoteLab) run(t *testing.T, role auth.Role, args ...string) (string, error) {
	t.Helper()
	f, out, _, _ := newTestFactory(t)
	f.Env = append(f.Env, "FIELDAGENT_REMOTE_TOKEN="+l.tokens[role])
	err := execute(t, f, append([]string{"--server", l.api}, args...)...)
	return out.String(), err
}

// TestRemoteCommands runs the technician's commands against a remote
// serve: device list and show, a diagnosis of one gateway (by serial),
// a fleet diagnosis and its job, and the refusals a remote engineer meets.
func TestRemoteCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts serve and simulated gateways")
	}
	lab := startRemoteLab(t, 4)

	out, err := lab.run(t, auth.RoleRead, "device", "list")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if !strings.Contains(out, lab.fleet.DeviceID(i)) {
			t.Errorf("device list lacks %s:\n%s", lab.fleet.DeviceID(i), out)
		}
	}
	out, err = lab.run(t, auth.RoleRead, "device", "list", "--serial", lab.fleet.Serial(2), "-o", "json")
	var list struct {
		Devices []server.DeviceSummary
		Count   int
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || list.Count != 1 || list.Devices[0].ID != lab.fleet.DeviceID(2) {
		t.Errorf("device list --serial: %v %s", err, out)
	}
	out, err = lab.run(t, auth.RoleRead, "device", "show", lab.fleet.DeviceID(1))
	if err != nil || !strings.Contains(out, lab.fleet.Serial(1)) {
		t.Errorf("device show: %v\n%s", err, out)
	}

	// diag run --serial through serve: the gateway's line readings come back.
	out, err = lab.run(t, auth.RoleDiagnose, "diag", "run", "--serial", lab.fleet.Serial(0), "-o", "json")
	if exitCode(err) > exitCheckFailed {
		t.Fatalf("remote diag run: %v\n%s", err, out)
	}
	var outcome diagrun.Outcome
	if err := json.Unmarshal([]byte(out), &outcome); err != nil {
		t.Fatalf("remote diag run output: %v\n%s", err, out)
	}
	t.Logf("remote diag run: %d results, verdict %s", len(outcome.Results), outcome.Report.Status)
	if len(outcome.Results) == 0 || outcome.Report.Status == "" {
		t.Errorf("remote diag run: no readings or verdict: %+v", outcome)
	}

	// The device's state, Informs and findings through serve.
	out, err = lab.run(t, auth.RoleRead, "device", "status", lab.fleet.DeviceID(0), "-o", "json")
	var st server.DeviceStatus
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Identity == nil || st.Identity.Serial != lab.fleet.Serial(0) {
		t.Errorf("device status: %v\n%s", err, out)
	}
	out, err = lab.run(t, auth.RoleRead, "device", "events", lab.fleet.DeviceID(0))
	if err != nil || !strings.Contains(out, "BOOTSTRAP") && !strings.Contains(out, "CONNECTION REQUEST") {
		t.Errorf("device events: %v\n%s", err, out)
	}
	out, err = lab.run(t, auth.RoleRead, "device", "findings", lab.fleet.DeviceID(0), "-o", "json")
	var fd server.DeviceFindings
	if err != nil || json.Unmarshal([]byte(out), &fd) != nil || len(fd.Diagnoses) != 1 || fd.Diagnoses[0].Status != string(outcome.Report.Status) {
		t.Errorf("device findings after one diagnosis: %v\n%s", err, out)
	}
	if _, err := lab.run(t, auth.RoleRead, "device", "audit"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "403") {
		t.Errorf("the audit log with a read token: %v", err)
	}

	// A fleet diagnosis streams, and its job holds every device.
	out, err = lab.run(t, auth.RoleDiagnose, "fleet", "diagnose", "--serial-prefix", lab.fleet.Serial(0)[:3], "--concurrency", "2", "-o", "json")
	if exitCode(err) > exitCheckFailed {
		t.Fatalf("fleet diagnose: %v\n%s", err, out)
	}
	var job server.JobView
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatalf("fleet diagnose output: %v\n%s", err, out)
	}
	if job.State != "done" || job.Total != 4 || len(job.Results) != 4 {
		t.Errorf("fleet job %s: state %s, %d/%d results", job.ID, job.State, len(job.Results), job.Total)
	}
	out, err = lab.run(t, auth.RoleRead, "job", "show", job.ID)
	if exitCode(err) > exitCheckFailed || !strings.Contains(out, lab.fleet.DeviceID(3)) {
		t.Errorf("job show: %v\n%s", err, out)
	}

	// Refusals: a read token cannot diagnose; a wrong token is refused; an
	// unknown device is a usage error; local-only operations say so.
	if _, err := lab.run(t, auth.RoleRead, "diag", "run", "--device", lab.fleet.DeviceID(0)); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "403") {
		t.Errorf("diagnose with a read token: %v", err)
	}
	if _, err := lab.run(t, auth.RoleDiagnose, "diag", "run", "--device", "NO-SUCH-DEVICE"); exitCode(err) != exitUsage {
		t.Errorf("unknown device: %v", err)
	}
	if _, err := lab.run(t, auth.RoleRead, "device", "reboot", lab.fleet.DeviceID(0)); exitCode(err) != exitUsage {
		t.Errorf("device reboot through --server: %v", err)
	}
	f, _, _, _ := newTestFactory(t)
	f.Env = append(f.Env, "FIELDAGENT_REMOTE_TOKEN=fa_not-a-token")
	if err := execute(t, f, "--server", lab.api, "device", "list"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
	f, _, _, _ = newTestFactory(t)
	f.Env = append(f.Env, "FIELDAGENT_REMOTE_TOKEN="+lab.tokens[auth.RoleRead])
	if err := execute(t, f, "--server", "http://127.0.0.1:1", "device", "list"); exitCode(err) != exitUnreachable {
		t.Errorf("unreachable server: %v (exit %d)", err, exitCode(err))
	}
	for role, tok := range lab.tokens {
		if strings.Contains(lab.logs(), tok) {
			t.Errorf("the %s token is in serve's log", role)
		}
	}
}
