package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab"
)

// TestACSServeAndDeviceCommands runs `acs serve` with a simulated gateway
// informing it, then drives the gateway with the device commands.
func TestACSServeAndDeviceCommands(t *testing.T) {
	const token = "api-token-for-test"
	f, _, errOut, _ := newTestFactory(t)
	f.Env = append(f.Env,
		"FIELDAGENT_ACS_LISTEN=127.0.0.1:0", "FIELDAGENT_ACS_API_LISTEN=127.0.0.1:0",
		"FIELDAGENT_ACS_API_TOKEN="+token, "FIELDAGENT_ACS_CONNECTION_REQUEST_USERNAME=lab",
		"FIELDAGENT_ACS_CONNECTION_REQUEST_PASSWORD=cr-secret")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type addrs struct{ acs, api string }
	ready := make(chan addrs, 1)
	root := newRootCmd(f)
	acsCmd := findSub(root.Commands(), "acs")
	acsCmd.RemoveCommand(findSub(acsCmd.Commands(), "serve"))
	acsCmd.AddCommand(newACSServeCmd(f, func(ctx context.Context, o *acsServeOptions) error {
		o.ready = func(a, b string) { ready <- addrs{a, b} }
		return runACSServe(ctx, o)
	}))
	root.SetArgs([]string{"acs", "serve"})
	served := make(chan error, 1)
	go func() { served <- root.ExecuteContext(ctx) }()
	var ad addrs
	select {
	case ad = <-ready:
	case err := <-served:
		t.Fatalf("acs serve stopped: %v\n%s", err, errOut)
	}

	site, err := testlab.Start(ctx, testlab.Config{ACSURL: "http://" + ad.acs + "/", ConnReqUsername: "lab", ConnReqPassword: secret.New("cr-secret")})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()

	run := func(args ...string) (string, int) {
		t.Helper()
		g, out, _, _ := newTestFactory(t)
		g.Env = append(g.Env, "FIELDAGENT_ACS_API_URL=http://"+ad.api, "FIELDAGENT_ACS_API_TOKEN="+token)
		err := execute(t, g, args...)
		return out.String(), exitCode(err)
	}
	var id string
	for range 100 { // the gateway informs shortly after start
		out, code := run("device", "list", "--output", "json")
		var l struct {
			Devices []struct {
				ID string `json:"id"`
			} `json:"devices"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &l) == nil && len(l.Devices) == 1 {
			id = l.Devices[0].ID
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if id == "" {
		t.Fatal("the gateway never showed in device list")
	}
	out, code := run("device", "get", id, "InternetGatewayDevice.DeviceInfo.SerialNumber")
	if code != 0 || !strings.Contains(out, testlab.SampleGatewaySN) {
		t.Errorf("device get: %d %q", code, out)
	}
	pi := "InternetGatewayDevice.ManagementServer.PeriodicInformInterval"
	if out, code := run("device", "set", id, pi+":unsignedInt=600"); code != 0 {
		t.Errorf("device set: %d %q", code, out)
	}
	if v := site.Gateway.Tree().Value(pi); v != "600" {
		t.Errorf("gateway's %s = %q after set, want 600", pi, v)
	}
	if _, code := run("device", "set", id, pi+":float=1"); code != exitUsage {
		t.Errorf("set with a bad type: exit %d, want %d", code, exitUsage)
	}
	if out, code := run("device", "set", id, "InternetGatewayDevice.DeviceInfo.SerialNumber=X"); code != exitCheckFailed {
		t.Errorf("set read-only: exit %d (%q), want %d", code, out, exitCheckFailed)
	}
	if _, code := run("device", "get", "NO-SUCH-DEVICE", "InternetGatewayDevice."); code != exitUsage {
		t.Errorf("unknown device: exit %d, want %d", code, exitUsage)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("acs serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("acs serve did not stop after cancel")
	}
	// With the server gone, the device commands say so with exit 3.
	if _, code := run("device", "list"); code != exitUnreachable {
		t.Errorf("API down: exit %d, want %d", code, exitUnreachable)
	}
}

func TestACSServeNeedsToken(t *testing.T) {
	f, _, _, _ := newTestFactory(t)
	f.Env = append(f.Env, "FIELDAGENT_ACS_LISTEN=127.0.0.1:0", "FIELDAGENT_ACS_API_LISTEN=127.0.0.1:0")
	if code := exitCode(execute(t, f, "acs", "serve")); code != exitUsage {
		t.Errorf("acs serve without a token: exit %d, want %d", code, exitUsage)
	}
}
