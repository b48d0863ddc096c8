package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/config"
	"fieldagent/testlab"
	"fieldagent/testlab/netsite"
)

// lab up --netns asks for namespaces named after the lab; the default ACS
// URL becomes the laptop's.
func TestLabUpNetnsFlag(t *testing.T) {
	f, _, _, _ := newTestFactory(t)
	var got *labUpOptions
	root := newRootCmd(f)
	lab := findSub(root.Commands(), "lab")
	lab.RemoveCommand(findSub(lab.Commands(), "up"))
	lab.AddCommand(newLabUpCmd(f, func(_ context.Context, o *labUpOptions) error { got = o; return nil }))
	root.SetArgs([]string{"lab", "up", "repair", "--netns", "--name", "rep"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !got.Netns || got.Name != "rep" || got.Scenario != "repair" {
		t.Fatalf("options %+v", got)
	}
	if n := labNetOptions(got); n == nil || n.Instance != "rep" {
		t.Errorf("Net %+v, want instance rep", n)
	}
	if n := labNetOptions(&labUpOptions{Name: "rep"}); n != nil {
		t.Errorf("Net %+v without --netns, want nil (loopback)", n)
	}
}

// lab up --netns without the tools fails, saying how to run on loopback.
func TestLabUpNetnsUnavailable(t *testing.T) {
	f, _, _, _ := newTestFactory(t)
	f.Env = append(f.Env, "XDG_RUNTIME_DIR="+t.TempDir())
	t.Setenv("PATH", t.TempDir())
	err := execute(t, f, "lab", "up", "--netns", "--name", "nons")
	if !errors.Is(err, netsite.ErrUnavailable) || !strings.Contains(err.Error(), "without --netns") {
		t.Fatalf("lab up --netns without ip, tc and nft: %v, want netsite.ErrUnavailable and the way out", err)
	}
}

// lab up --netns runs the site in namespaces; the fieldagent binary, run
// in the laptop's with `ip netns exec` as lab up says, runs the order end
// to end with the config lab up wrote — its ACS on the laptop, the gateway
// informing across the LAN, the speed test through the gateway — and the
// namespaces go away with the lab.
func TestLabUpNetnsOrderRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds fieldagent and runs a whole order")
	}
	if err := netsite.Available(); err != nil {
		t.Skipf("lab up --netns: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "fieldagent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Skipf("cannot build fieldagent: %v\n%s", err, out)
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := "t" + hex.EncodeToString(b[:])
	laptop := netsite.NamePrefix + name + "-laptop"

	fx := startLabUp(t, "default", "--netns", "--name", name, "--output", "json")
	var doc map[string]any
	if err := json.Unmarshal(fx.out.Bytes(), &doc); err != nil {
		t.Fatalf("lab up --output json: %v\n%s", err, fx.out)
	}
	if doc["netns"] != laptop || doc["acs_url"] != "http://192.168.1.2:7547/" {
		t.Errorf("JSON netns %v, acs_url %v; want %s, the laptop's ACS", doc["netns"], doc["acs_url"], laptop)
	}
	wantRun := "ip netns exec " + laptop + " fieldagent --config " + fx.res.ConfigPath + " order run " + testlab.SampleOrderID
	if fx.res.Run != wantRun {
		t.Errorf("run line %q, want %q", fx.res.Run, wantRun)
	}
	cfg, err := config.Load(fx.res.ConfigPath, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Diag.SpeedURL != "http://203.0.113.10:80" || cfg.ACS.Listen != "192.168.1.2:7547" || !strings.HasPrefix(cfg.OrderSystem.URL, "http://127.0.0.1:") {
		t.Errorf("config speed %s, ACS listen %s, order system %s; want the addresses in the laptop namespace", cfg.Diag.SpeedURL, cfg.ACS.Listen, cfg.OrderSystem.URL)
	}
	if fx.site.NetWANUp() {
		t.Error("a factory-fresh gateway's namespace forwards before the order ran")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", laptop, bin, "--config", fx.res.ConfigPath,
		"order", "run", testlab.SampleOrderID, "--accepted-by", "张伟", "--output", "json")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("order run in %s: %v\n%s\n%s", laptop, err, out.String(), errOut.String())
	}
	var run struct {
		State    string `json:"state"`
		Readings []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
		} `json:"readings"`
	}
	if err := json.Unmarshal(out.Bytes(), &run); err != nil || run.State != "closed" {
		t.Fatalf("order run: state %q (%v)\n%s", run.State, err, out.String())
	}
	if got := fx.site.Orders.State(testlab.SampleOrderID); got != "closed" {
		t.Errorf("the order system has the order %s, want closed", got)
	}
	if !fx.site.NetWANUp() {
		t.Error("after the install the gateway's namespace does not forward")
	}
	for _, r := range run.Readings {
		if r.Name == "download_mbps" {
			t.Logf("the agent's speed test through the gateway: %.1f Mbit/s (package %d)", r.Value, fx.site.Order.Services[0].BandwidthMbps)
			if max := 1.25 * float64(fx.site.Order.Services[0].BandwidthMbps); r.Value > max {
				t.Errorf("download %.1f Mbit/s through a %d Mbit/s package: not shaped", r.Value, fx.site.Order.Services[0].BandwidthMbps)
			}
		}
	}

	if err := fx.stop(t); err != nil {
		t.Errorf("lab up: %v", err)
	}
	for _, r := range []string{"laptop", "gw", "op"} {
		if _, err := os.Stat(filepath.Join("/run/netns", netsite.NamePrefix+name+"-"+r)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left after lab up stopped (%v)", netsite.NamePrefix+name+"-"+r, err)
		}
	}
}
