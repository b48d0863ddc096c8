package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/agent/store"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/testlab"
)

// runWithLab runs the command with args (its ACS on a free port) and, once
// that ACS listens, a lab site whose gateway informs to it. It returns the
// site and the command's error.
func runWithLab(t *testing.T, f *Factory, args ...string) (*testlab.Site, error) {
	t.Helper()
	addr := freeAddr(t)
	f.Env = append(f.Env, "FIELDAGENT_ACS_LISTEN="+addr, "FIELDAGENT_ACS_CONNECTION_REQUEST_USERNAME=lab",
		"FIELDAGENT_ACS_CONNECTION_REQUEST_PASSWORD=cr-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- execute(t, f, args...) }()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("%v ended before listening: %v", args, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	site, err := testlab.Start(ctx, testlab.Config{ACSURL: "http://" + addr + "/", ConnReqUsername: "lab", ConnReqPassword: secret.New("cr-secret")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	select {
	case err := <-done:
		return site, err
	case <-ctx.Done():
		t.Fatalf("%v did not finish", args)
	}
	return nil, nil
}

// A fresh lab gateway has light but no internet WAN: diag run reads the
// line through the e8 driver, passes the optical checks, fails on the WAN
// with its finding, and exits 1.
func TestDiagRunLabGateway(t *testing.T) {
	f, out, errOut, dir := newTestFactory(t)
	prof := filepath.Join(dir, "thresholds.yaml")
	if err := os.WriteFile(prof, []byte("ping:\n  max_loss_pct: 100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	speed := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	defer speed.Close()
	_, err := runWithLab(t, f, "diag", "run", "--serial", testlab.SampleGatewaySN, "--package", "300/30", "--profile", prof,
		"--gateway-bytes", "2000000", "--speed-url", speed.URL+"/", "--duration", "300ms", "--output", "json")
	if code := exitCode(err); code != exitCheckFailed {
		t.Fatalf("exit %d (%v), want 1 for a failed check\n%s", code, err, errOut)
	}
	var res struct {
		Results []struct {
			Probe    string `json:"probe"`
			Success  bool   `json:"success"`
			Readings []struct {
				Name  string  `json:"name"`
				Value float64 `json:"value"`
			} `json:"readings"`
		} `json:"results"`
		Facts  map[string]string `json:"facts"`
		Report struct {
			Access string `json:"access"`
			Status string `json:"status"`
			Checks []struct {
				Reading string `json:"reading"`
				Status  string `json:"status"`
			} `json:"checks"`
			Findings []struct {
				Code string `json:"code"`
				Fix  string `json:"fix"`
			} `json:"findings"`
		} `json:"report"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not one JSON document: %v\n%s", err, out)
	}
	if res.Report.Access != "gpon" || res.Facts["access"] != "gpon" {
		t.Errorf("access %q / fact %q, want gpon", res.Report.Access, res.Facts["access"])
	}
	var rx, gwMbps, laptopMbps float64
	probes := map[string]bool{}
	for _, r := range res.Results {
		probes[r.Probe] = r.Success
		for _, rd := range r.Readings {
			switch rd.Name {
			case "optical_rx_power_dbm":
				rx = rd.Value
			case "gateway_download_mbps":
				gwMbps = rd.Value
			case "download_mbps":
				laptopMbps = rd.Value
			}
		}
	}
	for _, p := range []string{"line", "gateway_download", "gateway_ping", "ping", "speed_download"} {
		if ok, ran := probes[p]; !ran || (!ok && p != "ping") {
			t.Errorf("probe %s ran=%v ok=%v (all: %v)", p, ran, ok, probes)
		}
	}
	if gwMbps <= 0 || laptopMbps <= 0 {
		t.Errorf("gateway %v Mbit/s, laptop %v Mbit/s: both should have measured", gwMbps, laptopMbps)
	}
	if rx > -8 || rx < -27 {
		t.Errorf("optical rx %v dBm, want the lab's in-range reading", rx)
	}
	checks := map[string]string{}
	for _, c := range res.Report.Checks {
		checks[c.Reading] = c.Status
	}
	if checks["optical_rx_power_dbm"] != "ok" {
		t.Errorf("optical check %q, want ok (checks %v)", checks["optical_rx_power_dbm"], checks)
	}
	var codes []string
	for _, fd := range res.Report.Findings {
		codes = append(codes, fd.Code)
	}
	if !strings.Contains(strings.Join(codes, ","), "WAN_DOWN") {
		t.Errorf("findings %v, want WAN_DOWN", codes)
	}
	if res.Report.Status != "fail" {
		t.Errorf("report status %q", res.Report.Status)
	}
}

// A bad threshold file is a usage error naming the key.
func TestDiagRunBadProfile(t *testing.T) {
	f, _, _, dir := newTestFactory(t)
	prof := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(prof, []byte("optical:\n  rx_min_dbmx: -30\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := execute(t, f, "diag", "run", "--no-gateway", "--profile", prof)
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "rx_min_dbmx") {
		t.Fatalf("exit %d, err %v: want a usage error naming the key", code, err)
	}
	err = execute(t, f, "diag", "run", "--no-gateway", "--package", "fast")
	if code := exitCode(err); code != exitUsage {
		t.Fatalf("--package fast: exit %d (%v), want 2", code, err)
	}
}

// diag line reads the gateway only: the line checks and findings, no
// traffic probes.
func TestDiagLine(t *testing.T) {
	f, out, _, _ := newTestFactory(t)
	_, err := runWithLab(t, f, "diag", "line", "--serial", testlab.SampleGatewaySN)
	if code := exitCode(err); code != exitCheckFailed {
		t.Fatalf("exit %d (%v), want 1 (the fresh gateway has no WAN)", code, err)
	}
	s := out.String()
	for _, want := range []string{"✔  optical Rx power", "WAN_DOWN", "overall: fail"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	for _, not := range []string{"gateway_download", "speed_download", "ping"} {
		if strings.Contains(s, not) {
			t.Errorf("diag line ran %s:\n%s", not, s)
		}
	}
}

// With nothing sending, diag iptv fails within the join timeout and says
// what to check on the gateway.
func TestDiagIPTVNoStream(t *testing.T) {
	f, _, _, _ := newTestFactory(t)
	err := execute(t, f, "diag", "iptv", "239.255.77.1:5140", "--join-timeout", "300ms", "--duration", "500ms")
	if exitCode(err) != exitCheckFailed {
		t.Fatalf("exit %d (%v), want 1", exitCode(err), err)
	}
}

// With --order, the profile comes from the stored order and the readings
// and findings are kept with it.
func TestDiagRunStoresWithOrder(t *testing.T) {
	f, _, errOut, dir := newTestFactory(t)
	st, err := store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	ord := testlab.SampleOrder(time.Now(), secret.New("p"), secret.New("LOID1"), secret.New("lp"))
	if err := st.PutOrder(context.Background(), ord, "fetched"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err = runWithLab(t, f, "diag", "run", "--order", testlab.SampleOrderID, "--serial", testlab.SampleGatewaySN)
	if exitCode(err) != exitCheckFailed {
		t.Fatalf("exit %d (%v)\n%s", exitCode(err), err, errOut)
	}
	st, err = store.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	fs, err := st.Findings(ctx, testlab.SampleOrderID)
	if err != nil || len(fs) == 0 || fs[0].Code != "WAN_DOWN" || fs[0].Step != "diag_run" {
		t.Errorf("stored findings %+v, %v", fs, err)
	}
	rs, err := st.Readings(ctx, testlab.SampleOrderID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rs {
		found = found || (r.Name == "optical_rx_power_dbm" && r.Step == "diag_run")
	}
	if !found {
		t.Errorf("no optical reading stored: %+v", rs)
	}

	g, _, _, _ := newTestFactory(t)
	if err := execute(t, g, "diag", "run", "--order", "WO-NOPE", "--no-gateway"); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "not in the local store") {
		t.Errorf("unknown order: exit %d, %v", exitCode(err), err)
	}
}
