package workflow_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fieldagent/agent/config"
	"fieldagent/agent/ordersys"
	"fieldagent/agent/report"
	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/store"
	"fieldagent/agent/workflow"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
)

// The child process of TestCrashAndResume reads its setup from these.
const (
	envChild   = "FIELDAGENT_RESUME_CHILD"
	envStore   = "FIELDAGENT_RESUME_STORE"
	envOrders  = "FIELDAGENT_RESUME_ORDERS"
	envToken   = "FIELDAGENT_RESUME_TOKEN"
	envSpeed   = "FIELDAGENT_RESUME_SPEED"
	envCrashAt = "FIELDAGENT_RESUME_CRASH_AT" // "step:running" or "step:done"
	crPassword = "cr-pass-for-resume"
	eventLine  = "STEP "
)

// TestResumeChild is the agent side of TestCrashAndResume, run in a
// separate process: an ACS on the listener the parent hands over (fd 3),
// with its device registry in the store, and an order run that kills its
// own process with SIGKILL at the step boundary it is told.
func TestResumeChild(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("the child process of TestCrashAndResume")
	}
	ctx := context.Background()
	st, err := store.Open(os.Getenv(envStore))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ln, err := net.FileListener(os.NewFile(3, "acs"))
	if err != nil {
		t.Fatal(err)
	}
	a := acs.New(acs.Config{
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return "lab", secret.New(crPassword) },
		Registry:              server.StoreRegistry{Store: st},
	})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a, ConnState: a.ConnState, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	lim := config.Default().Workflow
	// A gateway whose session the kill cut retries after the TR-069
	// backoff (5–10 s, then 10–20 s if the retry hits the dying process
	// too): the Inform may take 30 s to come back.
	lim.InformTimeout, lim.LOIDTimeout, lim.WANTimeout, lim.StepTimeout = 75*time.Second, 20*time.Second, 20*time.Second, 20*time.Second
	crash := os.Getenv(envCrashAt)
	r := &workflow.Runner{
		Store:        st,
		Orders:       &ordersys.Client{BaseURL: os.Getenv(envOrders), Token: secret.New(os.Getenv(envToken)), HTTPClient: &http.Client{Timeout: 10 * time.Second}},
		ACS:          a,
		Limits:       lim,
		Diag:         config.Diag{SpeedURL: os.Getenv(envSpeed), SpeedDuration: 300 * time.Millisecond},
		Agent:        "fieldagent resume test",
		PollInterval: 50 * time.Millisecond,
		Accept:       &report.Acceptance{Name: "张伟", Accepted: true},
		Progress: func(ev workflow.StepEvent) {
			b, _ := json.Marshal(ev)
			fmt.Printf("%s%s\n", eventLine, b)
			if crash != "" && crash == ev.Step+":"+ev.State && !ev.Resumed {
				os.Stdout.Sync()
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		},
	}
	out, err := r.Run(ctx, testlab.SampleOrderID)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if out.State != workflow.OrderClosed {
		t.Fatalf("run ended %s", out.State)
	}
}

// child runs TestResumeChild and returns its step events and how it ended.
func child(t *testing.T, acsFile *os.File, env []string) ([]workflow.StepEvent, string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeChild$", "-test.v")
	cmd.Env = append(os.Environ(), append(env, envChild+"=1")...)
	cmd.ExtraFiles = []*os.File{acsFile}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var evs []workflow.StepEvent
	sc := bufio.NewScanner(bytes.NewReader(stdout.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), eventLine)
		if !ok {
			continue
		}
		var ev workflow.StepEvent
		if jerr := json.Unmarshal([]byte(line), &ev); jerr != nil {
			t.Fatalf("child event %q: %v", line, jerr)
		}
		evs = append(evs, ev)
	}
	return evs, stdout.String() + stderr.String(), err
}

// e8InstallSteps are the steps of an e8 new install.
var e8InstallSteps = []string{"fetch_order", "wait_inform", "identify", "configure_internet", "register_loid", "wait_wan", "ping", "speed_test", "acceptance", "report", "upload"}

// TestCrashAndResume kills the agent with SIGKILL at every step boundary
// of an e8 new install in turn — as a step begins (recorded running) and as
// it ends (recorded done) — then runs the order again in a new process. The
// second run must finish the order with one completion upload, not repeat
// a device change or a measurement that was done, and report every
// reading once.
func TestCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes per step boundary")
	}
	type point struct{ step, state string }
	var points []point
	for _, s := range e8InstallSteps {
		points = append(points, point{s, workflow.StateDone})
		switch s {
		case "configure_internet", "register_loid", "ping", "speed_test", "report", "upload":
			points = append(points, point{s, workflow.StateRunning})
		}
	}
	for _, p := range points {
		t.Run(p.step+"_"+p.state, func(t *testing.T) {
			crashAndResume(t, p.step, p.state)
		})
	}
}

func crashAndResume(t *testing.T, step, state string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acsFile, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer acsFile.Close()
	site, err := testlab.Start(ctx, testlab.Config{
		ACSURL: "http://" + ln.Addr().String() + "/", ConnReqUsername: "lab", ConnReqPassword: secret.New(crPassword),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	dbPath := filepath.Join(t.TempDir(), "fa.db")
	env := []string{envStore + "=" + dbPath, envOrders + "=" + site.OrderSystemURL, envToken + "=" + site.Token.Reveal(), envSpeed + "=" + site.SpeedURL}

	first, out, err := child(t, acsFile, append(env, envCrashAt+"="+step+":"+state))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first run was not killed at %s %s (err %v); it printed:\n%s", step, state, err, out)
	}
	if last := first[len(first)-1]; last.Step != step || last.State != state {
		t.Fatalf("first run's last event = %+v, want %s %s", last, step, state)
	}

	second, out, err := child(t, acsFile, env)
	if err != nil {
		t.Fatalf("second run: %v; it printed:\n%s", err, out)
	}
	// What the first run finished is not done again; what it left
	// running is.
	finished := map[string]bool{}
	for _, ev := range first {
		if ev.State == workflow.StateDone {
			finished[ev.Step] = true
		}
	}
	for _, ev := range second {
		if ev.State == workflow.StateRunning && finished[ev.Step] && ev.Step != workflow.StepFetchOrder {
			t.Errorf("the second run ran %s again, which the first had finished", ev.Step)
		}
		if ev.Resumed && !finished[ev.Step] {
			t.Errorf("the second run took %s as done, which the first had not finished", ev.Step)
		}
	}
	if state == workflow.StateDone && step != workflow.StepFetchOrder {
		resumed := false
		for _, ev := range second {
			resumed = resumed || (ev.Step == step && ev.Resumed)
		}
		if !resumed {
			t.Errorf("the second run did not resume %s", step)
		}
	}

	// One completion, the order closed.
	if created, replayed := site.Orders.CompletionCounts(testlab.SampleOrderID); created != 1 {
		t.Errorf("completions created %d (replayed %d), want 1", created, replayed)
	}
	if got := site.Orders.State(testlab.SampleOrderID); got != "closed" {
		t.Errorf("order system state %q, want closed", got)
	}
	body, _ := site.Orders.Completion(testlab.SampleOrderID)
	var c report.Completion
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("completion: %v", err)
	}
	// Every reading once: one speed result, one set of ping figures.
	seen := map[string]int{}
	for _, r := range c.Readings {
		seen[r.Step+"/"+r.Name]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("reading %s is in the report %d times", k, n)
		}
	}
	if seen["speed_test/download_mbps"] != 1 {
		t.Errorf("the report has no download_mbps: %v", seen)
	}
	if !c.WAN.Up() || c.Device.Serial != testlab.SampleGatewaySN || c.LOID == nil || !c.LOID.Registered {
		t.Errorf("report device %+v WAN %+v LOID %+v: want the gateway, its WAN up and the LOID registered", c.Device, c.WAN, c.LOID)
	}
	// The steps in the report are the visit's, each once.
	var names []string
	for _, s := range c.Steps {
		names = append(names, s.Name)
	}
	// (The report lists the steps before it.)
	if want := strings.Join(e8InstallSteps[:len(e8InstallSteps)-2], ","); strings.Join(names, ",") != want {
		t.Errorf("report steps %v, want %s", names, want)
	}
	// One internet WAN on the gateway, configured once.
	if n := site.Gateway.Tree().Value("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnectionNumberOfEntries"); n != "1" {
		t.Errorf("WANPPPConnectionNumberOfEntries = %q, want 1", n)
	}
	// The order system heard "started" once, however often the run began.
	started := 0
	for _, ev := range site.Orders.Events(testlab.SampleOrderID) {
		if ev.Kind == string(ordersys.EventStarted) {
			started++
		}
	}
	if started != 1 {
		t.Errorf("order system received %d started events, want 1", started)
	}
}
