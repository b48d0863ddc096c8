package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"fieldagent/agent/secret"
	"fieldagent/agent/store"
	"fieldagent/agent/workflow"
	"fieldagent/testlab"
)

func findSub(cs []*cobra.Command, name string) *cobra.Command {
	for _, c := range cs {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// newTestFactory returns a factory with captured streams and an empty
// config file, so the user's own config never leaks into a test.
func newTestFactory(t *testing.T) (*Factory, *bytes.Buffer, *bytes.Buffer, string) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("store: "+filepath.Join(dir, "store.db")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	// Logs come from many goroutines (jobs, servers) while a command
	// prints: the buffers are written under a lock, as a terminal's
	// writes are whole (read a running command's with bufString).
	mu := &sync.Mutex{}
	bufLocks.Store(&out, mu)
	bufLocks.Store(&errOut, mu)
	f := &Factory{
		IO:    &IOStreams{In: strings.NewReader(""), Out: lockedWriter{mu, &out}, ErrOut: lockedWriter{mu, &errOut}},
		Env:   []string{"FIELDAGENT_CONFIG=" + cfgPath},
		Now:   time.Now,
		Build: BuildInfo{Version: "v0.0.0-test", Commit: "abc123", Date: "2026-11-25T00:00:00Z"},
	}
	return f, &out, &errOut, dir
}

// lockedWriter writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// bufLocks maps a test factory's buffers to the lock their writers take.
var bufLocks sync.Map

// bufString reads a test factory's buffer while its command may still be
// writing to it.
func bufString(b *bytes.Buffer) string {
	if mu, ok := bufLocks.Load(b); ok {
		mu.(*sync.Mutex).Lock()
		defer mu.(*sync.Mutex).Unlock()
	}
	return b.String()
}

func execute(t *testing.T, f *Factory, args ...string) error {
	t.Helper()
	root := newRootCmd(f)
	root.SetArgs(args)
	return root.ExecuteContext(context.Background())
}

// TestDemoLeaksNoSecret runs the whole demo with a known PPPoE password and
// asserts that it appears nowhere: not in the logs (debug, JSON), not in the
// JSON output, not in any row of the store.
func TestDemoLeaksNoSecret(t *testing.T) {
	const password = "Kn0wn-PPPoE-Passw0rd"
	f, out, errOut, dir := newTestFactory(t)
	storePath := filepath.Join(dir, "demo.db")
	err := execute(t, f, "lab", "demo", "--output", "json", "--log-level", "debug", "--log-format", "json",
		"--store", storePath, "--pppoe-password", password, "--speed-duration", "500ms")
	if err != nil {
		t.Fatalf("demo failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}

	var doc struct {
		OrderID string `json:"order_id"`
		State   string `json:"state"`
		Device  struct {
			Serial string `json:"serial"`
		} `json:"device"`
		Receipt *struct {
			State string `json:"state"`
		} `json:"receipt"`
		Readings []struct {
			Name string `json:"name"`
		} `json:"readings"`
	}
	dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Errorf("stdout holds more than one JSON document:\n%s", out)
	}
	if doc.State != "closed" || doc.Receipt == nil || doc.Receipt.State != "closed" || doc.Device.Serial == "" || len(doc.Readings) == 0 {
		t.Errorf("demo result = %+v, want a closed order with device and readings", doc)
	}
	if errOut.Len() == 0 {
		t.Error("no logs at debug level: the leak check would prove nothing")
	}

	st, err := store.Open(storePath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var dump bytes.Buffer
	if err := st.Dump(context.Background(), &dump); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump.String(), doc.OrderID) {
		t.Fatalf("store dump does not even hold the order %q: the leak check would prove nothing", doc.OrderID)
	}
	for name, text := range map[string]string{"logs": errOut.String(), "json output": out.String(), "store dump": dump.String()} {
		if strings.Contains(text, password) {
			t.Errorf("the PPPoE password appears in the %s", name)
		}
	}
	// The PPPoE user name is the customer's account: the logs show only a
	// hint of it.
	if strings.Contains(errOut.String(), testlab.SamplePPPoEUser) {
		for line := range strings.Lines(errOut.String()) {
			if strings.Contains(line, testlab.SamplePPPoEUser) {
				t.Errorf("the PPPoE user name appears in the logs: %s", line)
			}
		}
	}
	fi, err := os.Stat(storePath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("store mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestDemoWrongPassword(t *testing.T) {
	f, out, errOut, _ := newTestFactory(t)
	err := execute(t, f, "lab", "demo", "--wrong-password", "--speed-duration", "200ms")
	if err == nil {
		t.Fatalf("demo with a wrong password succeeded:\n%s", out)
	}
	if code := exitCode(err); code != exitCheckFailed {
		t.Errorf("exit code = %d, want %d", code, exitCheckFailed)
	}
	for _, want := range []string{"stopped at step wait_wan", "691", "No completion was uploaded", "rollback"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s\n%s", want, out, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	f, out, _, _ := newTestFactory(t)
	if err := execute(t, f, "version", "--output", "json"); err != nil {
		t.Fatal(err)
	}
	var v versionInfo
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != "v0.0.0-test" || v.Commit != "abc123" || v.GoVersion == "" || !strings.Contains(v.Platform, "/") {
		t.Errorf("version = %+v", v)
	}
}

func TestOptionsParsed(t *testing.T) {
	f, _, _, _ := newTestFactory(t)
	var got *orderRunOptions
	root := newRootCmd(f)
	for _, c := range root.Commands() {
		if c.Name() == "order" {
			c.RemoveCommand(findSub(c.Commands(), "run"))
			c.AddCommand(newOrderRunCmd(f, func(_ context.Context, o *orderRunOptions) error { got = o; return nil }))
		}
	}
	root.SetArgs([]string{"order", "run", "WO-1", "--serial", "SN9"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.OrderID != "WO-1" || got.Serial != "SN9" {
		t.Errorf("options = %+v", got)
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		cfg  string
		want int
	}{
		{"unknown flag", []string{"version", "--bogus"}, "", exitUsage},
		{"missing argument", []string{"order", "run"}, "", exitUsage},
		{"bad output flag", []string{"version", "--output", "xml"}, "", exitUsage},
		{"unknown config key", []string{"version"}, "ordr_system: {}\n", exitUsage},
		{"order system not set", []string{"order", "run", "WO-1"}, "acs: {listen: '127.0.0.1:0'}\n", exitUsage},
		{"order system unreachable", []string{"order", "run", "WO-1"}, "acs: {listen: '127.0.0.1:0'}\norder_system: {url: 'http://127.0.0.1:1/', timeout: 2s, token: t0k}\n", exitUnreachable},
		{"no token", []string{"order", "run", "WO-1"}, "acs: {listen: '127.0.0.1:0'}\norder_system: {url: 'http://127.0.0.1:1/'}\n", exitUsage},
		{"unknown order offline", []string{"order", "show", "WO-404"}, "", exitUsage},
		{"ok", []string{"order", "list"}, "", exitOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, out, _, dir := newTestFactory(t)
			if tc.cfg != "" {
				cfgPath := filepath.Join(dir, "config.yaml")
				if err := os.WriteFile(cfgPath, []byte("store: "+filepath.Join(dir, "s.db")+"\n"+tc.cfg), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := execute(t, f, tc.args...)
			if got := exitCode(err); got != tc.want {
				t.Errorf("exit code = %d (err %v), want %d\n%s", got, err, tc.want, out)
			}
		})
	}
}

func TestEveryCommandHasAnExample(t *testing.T) {
	f, _, _, _ := newTestFactory(t)
	root := newRootCmd(f)
	stack := []*cobra.Command{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c.Hidden || c.Name() == "help" {
			continue
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no example in --help", c.CommandPath())
		}
		stack = append(stack, c.Commands()...)
	}
}

func TestStepPrinterProgressOnlyOnTerminal(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		var out, prog bytes.Buffer
		p := stepPrinter(&out, &prog, terminal)
		p(workflow.StepEvent{Step: "wait_wan", State: workflow.StateRunning})
		p(workflow.StepEvent{Step: "wait_wan", State: workflow.StateDone, Detail: "WAN connected"})
		if !strings.Contains(out.String(), "✓ wait_wan") || strings.Contains(out.String(), "…") {
			t.Errorf("terminal=%v: results = %q, want only the finished step", terminal, out.String())
		}
		if got := strings.Contains(prog.String(), "… wait_wan"); got != terminal {
			t.Errorf("terminal=%v: progress = %q", terminal, prog.String())
		}
	}
}

// After the lab demo, order report prints the customer's page and the JSON
// from the store alone, and writes a 0600 file.
func TestOrderReportOffline(t *testing.T) {
	f, _, errOut, dir := newTestFactory(t)
	storePath := filepath.Join(dir, "store.db") // the test config's store
	if err := execute(t, f, "lab", "demo", "--store", storePath, "--speed-duration", "300ms"); err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut)
	}
	g, out, _, _ := newTestFactory(t)
	g.Env = f.Env
	if err := execute(t, g, "order", "report", testlab.SampleOrderID, "--lang", "zh"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", "竣工报告", testlab.SampleGatewaySN} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	file := filepath.Join(dir, "r.json")
	if err := execute(t, g, "order", "report", testlab.SampleOrderID, "--format", "json", "--file", file); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("report file %v, %v: want mode 0600", fi, err)
	}
	if err := execute(t, g, "order", "report", "WO-NOPE"); exitCode(err) != exitUsage {
		t.Errorf("unknown order: exit %d (%v)", exitCode(err), err)
	}
}

// order arrive fetches the order, records the arrival locally and tells the
// order system; the next order run counts the visit from it.
func TestOrderArrive(t *testing.T) {
	site, f, out, dir := orderSystemFactory(t)
	if err := execute(t, f, "order", "arrive", testlab.SampleOrderID, "--note", "gate code 1234"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Arrived at "+site.Order.Customer.Name) || !strings.Contains(out.String(), "told the order system") {
		t.Errorf("output: %s", out)
	}
	evs := site.Orders.Events(testlab.SampleOrderID)
	if len(evs) != 1 || evs[0].Kind != "arrived" {
		t.Errorf("order system events %+v, want one arrival", evs)
	}
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	local, err := st.Events(context.Background(), testlab.SampleOrderID)
	if err != nil || len(local) != 1 || local[0].Kind != workflow.EventArrived || local[0].Detail != "gate code 1234" {
		t.Errorf("stored events %+v, %v", local, err)
	}
	if o, _, err := st.GetOrder(context.Background(), testlab.SampleOrderID); err != nil || o.Customer.Name != site.Order.Customer.Name {
		t.Errorf("order not stored: %v", err)
	}
	st.Close()

	// The order system is down: the arrival waits in the outbox and
	// 'upload' delivers it later, once.
	site.Orders.FailNext(3, http.StatusServiceUnavailable)
	g, out2, _, _ := newTestFactory(t)
	g.Env = f.Env
	if err := execute(t, g, "order", "arrive", testlab.SampleOrderID); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out2.String(), "queued") {
		t.Errorf("output does not say the arrival is queued: %s", out2)
	}
	if n := len(site.Orders.Events(testlab.SampleOrderID)); n != 1 {
		t.Fatalf("the order system has %d events while down, want the first only", n)
	}
	site.Orders.FailNext(0, 0)
	h, _, _, _ := newTestFactory(t)
	h.Env = f.Env
	h.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } // past the retry backoff
	if err := execute(t, h, "upload"); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if n := len(site.Orders.Events(testlab.SampleOrderID)); n != 2 {
		t.Errorf("after upload the order system has %d events, want 2", n)
	}
}

// order accept records the customer's answer locally and tells the order
// system; it refuses an order the laptop has never seen and a missing name.
func TestOrderAccept(t *testing.T) {
	site, f, out, dir := orderSystemFactory(t)
	err := execute(t, f, "order", "accept", testlab.SampleOrderID, "--name", "张伟")
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "not in the local store") {
		t.Errorf("accept of an unknown order: %v (exit %d), want a usage error that says so", err, code)
	}
	if err := execute(t, f, "order", "arrive", testlab.SampleOrderID); err != nil {
		t.Fatal(err)
	}
	err = execute(t, f, "order", "accept", testlab.SampleOrderID)
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "--name") {
		t.Errorf("accept without --name: %v (exit %d)", err, code)
	}
	out.Reset()
	if err := execute(t, f, "order", "accept", testlab.SampleOrderID, "--name", "张伟", "--comment", "满意"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "accepted by 张伟") || !strings.Contains(out.String(), "told the order system") {
		t.Errorf("output: %s", out)
	}
	var kinds []string
	for _, ev := range site.Orders.Events(testlab.SampleOrderID) {
		kinds = append(kinds, ev.Kind)
	}
	if strings.Join(kinds, ",") != "arrived,customer_accepted" {
		t.Errorf("order system events %v", kinds)
	}
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.Events(context.Background(), testlab.SampleOrderID)
	if err != nil || len(evs) != 2 || evs[1].Kind != workflow.EventAccepted || !strings.Contains(evs[1].Detail, `"accepted":true`) || !strings.Contains(evs[1].Detail, "满意") {
		t.Errorf("stored events %+v, %v", evs, err)
	}
}

// order event records the visit standard's other human steps and refuses
// an event it does not know.
func TestOrderEvent(t *testing.T) {
	site, f, out, _ := orderSystemFactory(t)
	err := execute(t, f, "order", "event", testlab.SampleOrderID, "arrived")
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "not one of accepted, appointment_confirmed, cleaned_up") {
		t.Errorf("unknown event: %v (exit %d)", err, code)
	}
	for _, kind := range []string{"appointment_confirmed", "cleaned_up"} {
		if err := execute(t, f, "order", "event", testlab.SampleOrderID, kind, "--detail", "note "+kind); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out.String(), "called 10–15 minutes ahead") || !strings.Contains(out.String(), "told the order system") {
		t.Errorf("output: %s", out)
	}
	var got []string
	for _, ev := range site.Orders.Events(testlab.SampleOrderID) {
		got = append(got, ev.Kind+"/"+ev.Detail)
	}
	if strings.Join(got, ",") != "appointment_confirmed/note appointment_confirmed,cleaned_up/note cleaned_up" {
		t.Errorf("order system events %v", got)
	}
}

// orderSystemFactory starts a lab site (its devices informing nowhere) and
// returns a factory whose config reaches its order system.
func orderSystemFactory(t *testing.T) (*testlab.Site, *Factory, *bytes.Buffer, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	site, err := testlab.Start(ctx, testlab.Config{ACSURL: "http://127.0.0.1:1/", ConnReqUsername: "lab", ConnReqPassword: secret.New("cr")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	f, out, _, dir := newTestFactory(t)
	f.Env = append(f.Env, "FIELDAGENT_ORDER_SYSTEM_URL="+site.OrderSystemURL, "FIELDAGENT_ORDER_SYSTEM_TOKEN="+site.Token.Reveal())
	return site, f, out, dir
}
