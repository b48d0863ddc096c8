package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/config"
	"fieldagent/agent/secret"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
)

// labUpFixture is a lab up running in a goroutine.
type labUpFixture struct {
	site   *testlab.Site
	res    *labUpResult
	env    []string
	cancel context.CancelFunc
	done   chan error
	out    *bytes.Buffer
}

// startLabUp runs `lab up args...` with XDG_RUNTIME_DIR in a temporary
// directory and waits until the lab is up.
func startLabUp(t *testing.T, args ...string) *labUpFixture {
	t.Helper()
	f, out, errOut, _ := newTestFactory(t)
	f.Env = append(f.Env, "XDG_RUNTIME_DIR="+t.TempDir())
	fx := &labUpFixture{env: f.Env, done: make(chan error, 1), out: out}
	up := make(chan struct{})
	root := newRootCmd(f)
	lab := findSub(root.Commands(), "lab")
	lab.RemoveCommand(findSub(lab.Commands(), "up"))
	lab.AddCommand(newLabUpCmd(f, func(ctx context.Context, o *labUpOptions) error {
		o.onUp = func(s *testlab.Site, r *labUpResult) {
			fx.site, fx.res = s, r
			close(up)
		}
		return runLabUp(ctx, o)
	}))
	root.SetArgs(append([]string{"lab", "up"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	fx.cancel = cancel
	go func() { fx.done <- root.ExecuteContext(ctx) }()
	select {
	case <-up:
	case err := <-fx.done:
		t.Fatalf("lab up ended before it was up: %v\n%s\n%s", err, out, errOut)
	case <-time.After(30 * time.Second):
		t.Fatal("lab up is not up after 30s")
	}
	t.Cleanup(func() { fx.stop(t) })
	return fx
}

// stop interrupts lab up and waits for it.
func (fx *labUpFixture) stop(t *testing.T) error {
	t.Helper()
	if fx.cancel == nil {
		return nil
	}
	fx.cancel()
	fx.cancel = nil
	select {
	case err := <-fx.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("lab up did not stop within 30s of its context's end")
	}
	return nil
}

// labCmd runs a lab command against the fixture's runtime directory.
func (fx *labUpFixture) labCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	g, out, _, _ := newTestFactory(t)
	g.Env = append(g.Env, fx.env...)
	err := execute(t, g, args...)
	return out.String(), err
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// lab up from a scenario file; lab fault list, inject and clear change the
// running site; the control API wants its token; the state file is 0600 and
// goes away with the lab.
func TestLabUpFaults(t *testing.T) {
	scen := filepath.Join(t.TempDir(), "everything.yaml")
	if err := os.WriteFile(scen, []byte("description: every device\ndevices: [e8, itv, xt2]\ngateway: installed\norder: WO-20261125-0002\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fx := startLabUp(t, scen, "--name", "t1", "--acs-url", "http://"+freeAddr(t)+"/")
	if fx.res.Scenario != "everything" || fx.res.Order != testlab.SampleITVOrderID || fx.site.XT2 == nil || fx.site.STB == nil || fx.site.Gateway == nil {
		t.Fatalf("lab up result %+v", fx.res)
	}
	for _, want := range []string{fx.res.ConfigPath, fx.site.XT2Access.SSHAddr, fx.site.XT2Access.SNMPAddr, fx.site.OrderSystemURL, "order run " + testlab.SampleITVOrderID} {
		if !strings.Contains(fx.out.String(), want) {
			t.Errorf("lab up output lacks %q:\n%s", want, fx.out)
		}
	}
	if strings.Contains(fx.out.String(), fx.site.Token.Reveal()) || strings.Contains(fx.out.String(), fx.site.XT2Access.Password.Reveal()) {
		t.Errorf("lab up printed a secret:\n%s", fx.out)
	}
	if m := mode(t, fx.res.StatePath); m != 0o600 {
		t.Errorf("state file mode %v, want 0600", m)
	}
	if m := mode(t, filepath.Dir(fx.res.StatePath)); m != 0o700 {
		t.Errorf("lab directory mode %v, want 0700", m)
	}

	out, err := fx.labCmd(t, "lab", "fault", "list", "--name", "t1", "--output", "json")
	if err != nil {
		t.Fatalf("lab fault list: %v", err)
	}
	var list labFaultList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list is not JSON: %v\n%s", err, out)
	}
	cat := testlab.Faults()
	if len(list.Faults) != len(cat) || len(list.Active) != 0 {
		t.Fatalf("list has %d faults (%d active), want the catalogue's %d, none active", len(list.Faults), len(list.Active), len(cat))
	}
	if len(cat) == 0 {
		t.Skip("the fault catalogue is still empty: inject and clear not tested")
	}
	id := cat[0].ID
	for _, fl := range list.Faults {
		if !fl.Applicable {
			t.Errorf("fault %s (%s) not applicable on a site with every device", fl.ID, fl.Device)
		}
	}

	out, err = fx.labCmd(t, "lab", "fault", "inject", id, "--name", "t1")
	if err != nil {
		t.Fatalf("inject %s: %v", id, err)
	}
	if got := fx.site.ActiveFaults(); !slices.Equal(got, []string{id}) {
		t.Fatalf("after inject, active faults %v, want [%s]", got, id)
	}
	if !strings.Contains(out, "injected "+id) || !strings.Contains(out, string(cat[0].Finding)) {
		t.Errorf("inject output: %s", out)
	}
	if out, err = fx.labCmd(t, "lab", "fault", "inject", id, "--name", "t1"); err != nil || !strings.Contains(out, "already active") {
		t.Errorf("inject again: %v, %s", err, out)
	}
	out, err = fx.labCmd(t, "lab", "fault", "list", "--name", "t1", "--lang", "zh")
	if err != nil {
		t.Fatal(err)
	}
	line := ""
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, id+" ") {
			line = l
		}
	}
	if !strings.Contains(line, "yes") || (cat[0].TitleZH != "" && !strings.Contains(line, cat[0].TitleZH)) || !strings.HasPrefix(out, "ID") {
		t.Errorf("list --lang zh row for %s: %q\n%s", id, line, out)
	}
	out, err = fx.labCmd(t, "lab", "fault", "clear", id, "--name", "t1", "--output", "json")
	if err != nil {
		t.Fatalf("clear %s: %v", id, err)
	}
	var ch labFaultChange
	if err := json.Unmarshal([]byte(out), &ch); err != nil || !ch.Changed || ch.Fault.ID != id || ch.Fault.Active || len(ch.Active) != 0 {
		t.Errorf("clear JSON %+v, %v", ch, err)
	}
	if got := fx.site.ActiveFaults(); len(got) != 0 {
		t.Fatalf("after clear, active faults %v", got)
	}

	_, err = fx.labCmd(t, "lab", "fault", "inject", "no_such_fault", "--name", "t1")
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), `"no_such_fault"`) {
		t.Errorf("inject of an unknown fault: %v (exit %d), want exit 2 naming it", err, code)
	}

	// The control API wants its token.
	st, _, err := readLabState(fx.env, "t1")
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"none": "", "wrong": "Bearer nope"} {
		req, _ := http.NewRequest(http.MethodPost, st.ControlURL+"/faults/"+id, nil)
		if tok != "" {
			req.Header.Set("Authorization", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %s: status %d, want 401", name, resp.StatusCode)
		}
	}
	if got := fx.site.ActiveFaults(); len(got) != 0 {
		t.Errorf("an unauthenticated request injected %v", got)
	}
	c := &labClient{BaseURL: st.ControlURL, Token: st.Token}
	if _, err := c.Inject(context.Background(), "no_such_fault"); !errors.Is(err, errLabUnknownFault) {
		t.Errorf("control API, unknown fault: %v, want 404", err)
	}

	statePath, dir := fx.res.StatePath, filepath.Dir(fx.res.StatePath)
	if err := fx.stop(t); err != nil {
		t.Fatalf("lab up ended with %v", err)
	}
	if _, err := os.Stat(statePath); !os.IsNotExist(err) {
		t.Errorf("state file still there after exit: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("lab directory still there after exit: %v", err)
	}
	_, err = fx.labCmd(t, "lab", "fault", "list", "--name", "t1")
	if code := exitCode(err); code != exitUnreachable || !strings.Contains(err.Error(), "start one with fieldagent lab up") {
		t.Errorf("list with no lab: %v (exit %d), want exit 3 saying how to start one", err, code)
	}
}

// A fault the lab's devices cannot carry is refused with 409 (exit 2).
func TestLabFaultNotApplicable(t *testing.T) {
	var xt2Fault string
	for _, fl := range testlab.Faults() {
		if fl.Device == "xt2" {
			xt2Fault = fl.ID
			break
		}
	}
	if xt2Fault == "" {
		t.Skip("no XT-2 fault in the catalogue yet")
	}
	fx := startLabUp(t, "--acs-url", "http://"+freeAddr(t)+"/")
	_, err := fx.labCmd(t, "lab", "fault", "inject", xt2Fault)
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "does not run") {
		t.Errorf("inject of an XT-2 fault on an e8 lab: %v (exit %d), want exit 2", err, code)
	}
	if got := fx.site.ActiveFaults(); len(got) != 0 {
		t.Errorf("active faults %v", got)
	}
}

// The config lab up writes is 0600, parses with agent/config, reaches the
// order system, and runs the scenario's order end to end: the gateway,
// backing off since the ACS was not there, informs once order run's ACS
// starts (the lab's connection request).
func TestLabUpConfigRunsOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole order")
	}
	fx := startLabUp(t, "default", "--acs-url", "http://"+freeAddr(t)+"/", "--output", "json")
	var doc map[string]any
	if err := json.Unmarshal(fx.out.Bytes(), &doc); err != nil {
		t.Fatalf("lab up --output json is not one JSON document: %v\n%s", err, fx.out)
	}
	if doc["config_path"] != fx.res.ConfigPath || doc["order_system_url"] != fx.site.OrderSystemURL || doc["order"] != testlab.SampleOrderID {
		t.Errorf("JSON document %v", doc)
	}
	if strings.Contains(fx.out.String(), fx.site.Token.Reveal()) {
		t.Error("the JSON document holds the order system's token")
	}
	if m := mode(t, fx.res.ConfigPath); m != 0o600 {
		t.Errorf("config file mode %v, want 0600", m)
	}
	cfg, err := config.Load(fx.res.ConfigPath, true, nil)
	if err != nil {
		t.Fatalf("the lab's config does not load: %v", err)
	}
	if cfg.OrderSystem.URL != fx.site.OrderSystemURL || !cfg.OrderSystem.Token.Equal(fx.site.Token) || cfg.Diag.SpeedURL != fx.site.SpeedURL {
		t.Errorf("config order system %s, speed %s; want %s, %s", cfg.OrderSystem.URL, cfg.Diag.SpeedURL, fx.site.OrderSystemURL, fx.site.SpeedURL)
	}
	// Let the gateway fail to inform and back off first.
	time.Sleep(2 * time.Second)

	g, out, errOut, _ := newTestFactory(t)
	err = execute(t, g, "--config", fx.res.ConfigPath, "order", "run", testlab.SampleOrderID, "--accepted-by", "张伟", "--output", "json")
	if err != nil {
		t.Fatalf("order run with the lab's config: %v\n%s\n%s", err, out, errOut)
	}
	var run struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(out.Bytes(), &run); err != nil || run.State != "closed" {
		t.Errorf("order run: state %q (%v)\n%s", run.State, err, out)
	}
	if got := fx.site.Orders.State(testlab.SampleOrderID); got != "closed" {
		t.Errorf("order system has the order %s, want closed", got)
	}
}

// An XT-2 lab's config carries the router's address, credentials and host
// key, so that XT-2 orders need nothing else.
func TestLabUpXT2Config(t *testing.T) {
	fx := startLabUp(t, "xt2", "--name", "x2")
	cfg, err := config.Load(fx.res.ConfigPath, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := fx.site.XT2Access
	if cfg.XT2.Address != a.SSHAddr || cfg.XT2.Username != a.Username || !cfg.XT2.Password.Equal(a.Password) ||
		cfg.XT2.SNMPAddress != a.SNMPAddr || !cfg.XT2.SNMPCommunity.Equal(a.SNMPCommunity) {
		t.Errorf("config xt2 %+v", cfg.XT2)
	}
	kh, err := os.ReadFile(cfg.XT2.KnownHosts)
	if err != nil || string(kh) != a.KnownHostsLine() {
		t.Errorf("known_hosts %q, %v", kh, err)
	}
	if fx.site.Gateway != nil || fx.res.Gateway != nil {
		t.Error("the xt2 scenario runs an e8 gateway")
	}
}

// A second lab of the same name is refused while the first runs; lab
// clean leaves a running lab alone and removes a dead one's files.
func TestLabCleanAndNames(t *testing.T) {
	fx := startLabUp(t, "--acs-url", "http://"+freeAddr(t)+"/")
	g, _, _, _ := newTestFactory(t)
	g.Env = append(g.Env, fx.env...)
	root := newRootCmd(g)
	root.SetArgs([]string{"lab", "up", "--acs-url", "http://" + freeAddr(t) + "/"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx) // returns at once, or runs until the timeout
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second lab of the same name: %v (exit %d)", err, code)
	}
	if _, err := fx.labCmd(t, "lab", "up", "--name", "Bad/Name"); exitCode(err) != exitUsage {
		t.Errorf("bad --name: %v", err)
	}
	if _, err := fx.labCmd(t, "lab", "up", "nope"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "default") {
		t.Errorf("unknown scenario: %v", err)
	}

	// A dead lab: a state file whose control API is gone.
	rt, err := labRuntimeDir(fx.env, false)
	if err != nil {
		t.Fatal(err)
	}
	dead := labDir(rt, "dead")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := writeLabState(dead, labState{Name: "dead", PID: 1, ControlURL: "http://" + freeAddr(t), Token: secret.New("x")}); err != nil {
		t.Fatal(err)
	}
	_, err = fx.labCmd(t, "lab", "fault", "list", "--name", "dead")
	if code := exitCode(err); code != exitUnreachable || !strings.Contains(err.Error(), "lab clean") {
		t.Errorf("list on a dead lab: %v (exit %d)", err, code)
	}
	out, err := fx.labCmd(t, "lab", "clean", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res labCleanResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !slices.Equal(res.Removed, []string{"dead"}) || !slices.Equal(res.Running, []string{"lab"}) {
		t.Errorf("lab clean: %+v, want dead removed and lab running", res)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead lab's directory is still there: %v", err)
	}
	if _, err := os.Stat(fx.res.StatePath); err != nil {
		t.Errorf("lab clean removed the running lab's state: %v", err)
	}
}

// The lab's connection request answers the simulators' Digest challenge.
func TestDigestGet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	site, err := testlab.Start(ctx, testlab.Config{ACSURL: "http://" + freeAddr(t) + "/", ConnReqUsername: "lab", ConnReqPassword: secret.New("cr-pass")})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	var u string
	for deadline := time.Now().Add(10 * time.Second); u == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		u = site.Gateway.Engine().ConnectionRequestURL()
	}
	if err := digestGet(ctx, u, "lab", secret.New("cr-pass")); err != nil {
		t.Errorf("connection request with the right password: %v", err)
	}
	if err := digestGet(ctx, u, "lab", secret.New("wrong")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("connection request with a wrong password: %v, want 401", err)
	}
}

func TestParseLabACSURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:7547/": "127.0.0.1:7547",
		"http://localhost/acs":   "localhost:80",
		"https://[::1]/":         "[::1]:443",
	} {
		if _, got, err := parseLabACSURL(in); err != nil || got != want {
			t.Errorf("parseLabACSURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1:7547", "ftp://x/", "http://"} {
		if _, _, err := parseLabACSURL(bad); exitCode(err) != exitUsage {
			t.Errorf("parseLabACSURL(%q): %v, want a usage error", bad, err)
		}
	}
}

// A scenario fault the starting site cannot take stops lab up with exit 2
// and leaves nothing behind.
func TestLabUpFaultTheSiteCannotTake(t *testing.T) {
	if len(testlab.Faults()) == 0 {
		t.Skip("the fault catalogue is empty")
	}
	// A factory-fresh gateway has no PPPoE WAN to break.
	scen := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(scen, []byte("devices: [e8]\ngateway: factory\nfaults: [pppoe_wrong_password]\norder: WO-20261125-0001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _, _, _ := newTestFactory(t)
	rt := t.TempDir()
	f.Env = append(f.Env, "XDG_RUNTIME_DIR="+rt)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	root := newRootCmd(f)
	root.SetArgs([]string{"lab", "up", scen, "--acs-url", "http://" + freeAddr(t) + "/"})
	err := root.ExecuteContext(ctx)
	if strings.Contains(fmt.Sprint(err), "not in the fault catalogue") {
		t.Skip("pppoe_wrong_password is not in the catalogue")
	}
	if code := exitCode(err); code != exitUsage || !strings.Contains(fmt.Sprint(err), "pppoe_wrong_password") {
		t.Errorf("lab up: %v (exit %d), want exit 2 naming the fault", err, code)
	}
	if ents, _ := os.ReadDir(filepath.Join(rt, "fieldagent", "labs")); len(ents) != 0 {
		t.Errorf("lab up left %v behind", ents)
	}
}

// lab up --devices N runs N more gateways that inform the same ACS and
// answer connection requests; it refuses --devices with --netns.
func TestLabUpDevices(t *testing.T) {
	a := acs.New(acs.Config{})
	srv := httptest.NewServer(a)
	defer srv.Close()
	fx := startLabUp(t, "--acs-url", srv.URL+"/", "--devices", "20")
	if fx.res.Fleet == nil || fx.res.Fleet.Devices != 20 || fx.res.Fleet.First != "FLT00" || fx.res.Fleet.Last != "FLT19" {
		t.Fatalf("fleet %+v", fx.res.Fleet)
	}
	if !strings.Contains(fx.out.String(), "20 e8 gateways, serials FLT00 … FLT19") {
		t.Errorf("output does not show the fleet:\n%s", fx.out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < 21 {
		if _, err := a.WaitDevice(ctx, func(d acs.Device) bool {
			if !seen[d.DeviceId.SerialNumber] {
				seen[d.DeviceId.SerialNumber] = true
				return true
			}
			return false
		}); err != nil {
			t.Fatalf("the ACS knows %d devices, want the gateway and 20 more: %v", len(seen), err)
		}
	}
	if !seen["FLT07"] || !seen[testlab.SampleGatewaySN] {
		t.Errorf("devices seen %v", seen)
	}

	f, out, _, _ := newTestFactory(t)
	err := execute(t, f, "lab", "up", "--devices", "5", "--netns")
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "leave out --netns") {
		t.Errorf("--devices with --netns: %v (exit %d)\n%s", err, code, out)
	}
}
