package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/agent/server"
	"fieldagent/agent/store"
	"fieldagent/testlab"
	"fieldagent/testlab/e8sim"
	"fieldagent/tr069/acs"
)

// setup runs an ACS with a simulated e8 site and the device API in front of
// it, all on loopback.
func setup(t *testing.T) (*server.Client, *acs.Server, string, *testlab.Site) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cr := secret.New("cr-test")
	a := acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return "lab", cr }})
	acsSrv := httptest.NewServer(a)
	t.Cleanup(acsSrv.Close)
	site, err := testlab.Start(ctx, testlab.Config{ACSURL: acsSrv.URL + "/", ConnReqUsername: "lab", ConnReqPassword: cr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(acs.Device) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	api := server.NewDevices(a, secret.New("api-token"))
	api.Timeout = 5 * time.Second
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	return &server.Client{BaseURL: apiSrv.URL, Token: secret.New("api-token")}, a, d.ID, site
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestDeviceAPI(t *testing.T) {
	c, a, id, _ := setup(t)

	ds, err := c.Devices(ctx(t))
	if err != nil || len(ds) != 1 || ds[0].ID != id || ds[0].Serial != testlab.SampleGatewaySN {
		t.Fatalf("Devices = %+v, %v", ds, err)
	}
	d, err := c.Device(ctx(t), id)
	if err != nil || d.Params["InternetGatewayDevice.DeviceInfo.SoftwareVersion"] != testlab.SampleFirmware {
		t.Errorf("Device = %+v, %v; want the Inform's parameters", d, err)
	}

	ps, err := c.Get(ctx(t), id, "InternetGatewayDevice.DeviceInfo.")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range ps {
		got[p.Name] = p.Value
	}
	if got["InternetGatewayDevice.DeviceInfo.SerialNumber"] != testlab.SampleGatewaySN || len(ps) < 5 {
		t.Errorf("Get DeviceInfo. = %v", got)
	}

	names, err := c.Names(ctx(t), id, "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.", false)
	if err != nil || len(names) == 0 {
		t.Errorf("Names = %v, %v", names, err)
	}

	// add → set → get → delete round trip on a multi-instance object.
	obj := "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection."
	n, err := c.Add(ctx(t), id, obj, "k1")
	if err != nil || n == 0 {
		t.Fatalf("Add = %d, %v", n, err)
	}
	inst := obj + strconv.FormatUint(uint64(n), 10) + "."
	if err := c.Set(ctx(t), id, []server.Parameter{{Name: inst + "ConnectionType", Value: "IP_Routed"}, {Name: inst + "NATEnabled", Value: "1", Type: "boolean"}}, "k2"); err != nil {
		t.Fatalf("Set: %v", err)
	}
	ps, err = c.Get(ctx(t), id, inst+"ConnectionType")
	if err != nil || len(ps) != 1 || ps[0].Value != "IP_Routed" {
		t.Errorf("after Set: %+v, %v", ps, err)
	}
	if err := c.Delete(ctx(t), id, inst, "k3"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Get(ctx(t), id, inst+"ConnectionType"); !errors.Is(err, server.ErrFault) {
		t.Errorf("Get of a deleted instance: %v, want a CWMP fault", err)
	}

	// A read-only parameter comes back as the device's fault 9008.
	err = c.Set(ctx(t), id, []server.Parameter{{Name: "InternetGatewayDevice.DeviceInfo.SerialNumber", Value: "X"}}, "")
	var ae *server.APIError
	if !errors.As(err, &ae) || ae.FaultCode != 9008 || !errors.Is(err, server.ErrFault) {
		t.Errorf("Set read-only = %v, want fault 9008", err)
	}

	// Reboot: the device comes back with a BOOT Inform.
	since := time.Now()
	if err := c.Reboot(ctx(t), id, "fa-reboot"); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if _, err := a.WaitInform(ctx(t), id, "1 BOOT", since); err != nil {
		t.Errorf("no BOOT Inform after reboot: %v", err)
	}
}

func TestDeviceAPIErrors(t *testing.T) {
	c, _, id, site := setup(t)
	bad := &server.Client{BaseURL: c.BaseURL, Token: secret.New("wrong")}
	if _, err := bad.Devices(ctx(t)); !errors.Is(err, server.ErrUnauthorized) {
		t.Errorf("wrong token: %v, want ErrUnauthorized", err)
	}
	if _, err := c.Get(ctx(t), "00D0D0-F650-NOPE", "InternetGatewayDevice."); !errors.Is(err, server.ErrUnknownDevice) {
		t.Errorf("unknown device: %v, want ErrUnknownDevice", err)
	}
	if err := c.Set(ctx(t), id, nil, ""); !errors.Is(err, server.ErrBadRequest) {
		t.Errorf("empty set: %v, want ErrBadRequest", err)
	}
	if _, err := c.Add(ctx(t), id, "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection", ""); err == nil || !strings.Contains(err.Error(), "ending in '.'") {
		t.Errorf("add without trailing dot: %v", err)
	}
	// The gateway goes away: its connection request fails.
	site.Close()
	if _, err := c.Get(ctx(t), id, "InternetGatewayDevice.DeviceInfo.SerialNumber"); !errors.Is(err, server.ErrDeviceUnreachable) {
		t.Errorf("gateway gone: %v, want ErrDeviceUnreachable", err)
	}
	unreachable := &server.Client{BaseURL: "http://127.0.0.1:1", Token: secret.New("x")}
	if _, err := unreachable.Devices(ctx(t)); !errors.Is(err, server.ErrUnreachable) {
		t.Errorf("API down: %v, want ErrUnreachable", err)
	}
}

func TestStoreRegistryKeepsDevicesAcrossRestarts(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "reg.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := server.StoreRegistry{Store: st}
	_, a, id, _ := setup(t)
	d, ok := a.Device(id)
	if !ok {
		t.Fatal("device unknown")
	}
	d.ConnectionRequestPassword = secret.New("cr-secret-never-stored")
	if err := reg.SaveDevice(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	// A new ACS on the same store knows the device before it informs again.
	b := acs.New(acs.Config{Registry: reg})
	if err := b.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got, ok := b.Device(id)
	if !ok || got.DeviceId.SerialNumber != testlab.SampleGatewaySN || got.ConnectionRequestURL != d.ConnectionRequestURL || !got.LastInform.Equal(d.LastInform) {
		t.Errorf("reloaded device = %+v (known %v), want %+v", got, ok, d)
	}
	var dump strings.Builder
	if err := st.Dump(ctx(t), &dump); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump.String(), "cr-secret-never-stored") {
		t.Error("the connection-request password reached the store")
	}
}

func TestDownloadFirmwareFromFilesDir(t *testing.T) {
	bg, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	model := "ZXHN F650"
	if err := os.WriteFile(filepath.Join(dir, "F650-V3.bin"), e8sim.MakeFirmware(model, "V3.0.0", 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "HG-V9.bin"), e8sim.MakeFirmware("HG8245", "V9", 512), 0o600); err != nil {
		t.Fatal(err)
	}
	cr := secret.New("cr-test")
	a := acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return "lab", cr }})
	fs := acs.NewFileServer(dir, nil)
	mux := http.NewServeMux()
	mux.Handle("/", a)
	mux.Handle("/files/", http.StripPrefix("/files/", fs))
	acsSrv := httptest.NewServer(mux)
	t.Cleanup(acsSrv.Close)
	site, err := testlab.Start(bg, testlab.Config{ACSURL: acsSrv.URL + "/", ConnReqUsername: "lab", ConnReqPassword: cr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	d, err := a.WaitDevice(ctx(t), func(acs.Device) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	api := server.NewDevices(a, secret.New("tok"))
	api.Files, api.FilesDir, api.FilesURL = fs, dir, acsSrv.URL+"/files/"
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	c := &server.Client{BaseURL: apiSrv.URL, Token: secret.New("tok")}

	st, _, err := c.Download(ctx(t), d.ID, server.DownloadRequest{File: "F650-V3.bin", FileType: "1 Firmware Upgrade Image", Wait: true})
	if err != nil || st != 0 {
		t.Fatalf("Download = %d, %v", st, err)
	}
	if v := site.Gateway.Tree().Value("InternetGatewayDevice.DeviceInfo.SoftwareVersion"); v != "V3.0.0" {
		t.Errorf("SoftwareVersion after the upgrade = %q, want V3.0.0", v)
	}
	// An image for another model: the gateway refuses it (9018) and says so.
	_, _, err = c.Download(ctx(t), d.ID, server.DownloadRequest{File: "HG-V9.bin", FileType: "1 Firmware Upgrade Image", Wait: true})
	var ae *server.APIError
	if !errors.As(err, &ae) || ae.FaultCode != 9018 {
		t.Errorf("wrong-model image: %v, want transfer fault 9018", err)
	}
	if _, _, err := c.Download(ctx(t), d.ID, server.DownloadRequest{File: "../etc/passwd", FileType: "1 Firmware Upgrade Image"}); !errors.Is(err, server.ErrBadRequest) {
		t.Errorf("path outside files_dir: %v, want ErrBadRequest", err)
	}
	if _, _, err := c.Download(ctx(t), d.ID, server.DownloadRequest{File: "missing.bin", FileType: "1 Firmware Upgrade Image"}); !errors.Is(err, server.ErrBadRequest) {
		t.Errorf("missing file: %v, want ErrBadRequest", err)
	}
	// The file is for that device only: no credentials, no file.
	resp, err := http.Get(acsSrv.URL + "/files/F650-V3.bin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound {
		t.Errorf("anonymous GET of a served file: %d, want 401 or 404", resp.StatusCode)
	}
}
