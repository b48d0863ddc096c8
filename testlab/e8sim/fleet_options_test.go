package e8sim_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/e8sim"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/datamodel"
)

const mgmt = "InternetGatewayDevice.ManagementServer."

// startBare runs one gateway without an operator network, with the
// periodic inform setting given, and returns the ACS and the device id.
func startBare(t *testing.T, periodic time.Duration) (*acs.Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cr := secret.New("cr")
	a := acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return "u", cr }})
	as := httptest.NewServer(a)
	t.Cleanup(as.Close)
	gw, err := e8sim.New(e8sim.Config{
		ACSURL: as.URL + "/", Vendor: "ZTE", Model: "F650", OUI: "00D0D0", ProductClass: "F650",
		Serial: "SN1", Firmware: "V1", Access: "lan", ConnReqUsername: "u", ConnReqPassword: cr,
		PeriodicInform: periodic, RetryBase: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	d, err := a.WaitDevice(wctx, func(acs.Device) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	return a, d.ID
}

func TestWithoutOperatorDialTimesOut(t *testing.T) {
	a, id := startBare(t, 0)
	inst := addWAN(t, a, id, "right")
	waitValue(t, a, id, inst+"ConnectionStatus", "Disconnected")
	if v := value(t, a, id, inst+"LastConnectionError"); v != "ERROR_ISP_TIME_OUT" {
		t.Errorf("LastConnectionError = %q, want ERROR_ISP_TIME_OUT (no operator network)", v)
	}
}

func TestPeriodicInformOption(t *testing.T) {
	tests := []struct {
		name             string
		periodic         time.Duration
		enable, interval string
	}{
		{name: "model default", periodic: 0, enable: "1", interval: "3600"},
		{name: "disabled", periodic: -1, enable: "0", interval: "3600"},
		{name: "sub-second rounds up to 1s in the tree", periodic: 100 * time.Millisecond, enable: "1", interval: "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, id := startBare(t, tc.periodic)
			if v := value(t, a, id, mgmt+"PeriodicInformEnable"); v != tc.enable {
				t.Errorf("PeriodicInformEnable = %q, want %q", v, tc.enable)
			}
			if v := value(t, a, id, mgmt+"PeriodicInformInterval"); v != tc.interval {
				t.Errorf("PeriodicInformInterval = %q, want %q", v, tc.interval)
			}
			if tc.periodic <= 0 {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := a.WaitInform(ctx, id, acs.EventPeriodic, time.Now()); err != nil {
				t.Fatalf("no periodic inform at %v: %v", tc.periodic, err)
			}
		})
	}
}

func TestSharedDataModel(t *testing.T) {
	m, err := datamodel.Builtin(datamodel.E8Gateway)
	if err != nil {
		t.Fatal(err)
	}
	var gws []*e8sim.Gateway
	for _, sn := range []string{"SN1", "SN2"} {
		gw, err := e8sim.New(e8sim.Config{ACSURL: "http://127.0.0.1:9/", Serial: sn, Access: "gpon", DataModel: m})
		if err != nil {
			t.Fatal(err)
		}
		gws = append(gws, gw)
	}
	if err := gws[0].Tree().SetValue("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", "changed"); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"SN1", "SN2"} {
		if got := gws[i].Tree().Value("InternetGatewayDevice.DeviceInfo.SerialNumber"); got != want {
			t.Errorf("gateway %d: SerialNumber %q, want %q", i, got, want)
		}
	}
	if got := gws[1].Tree().Value("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"); got == "changed" {
		t.Error("a change to one gateway's tree shows in the other's")
	}
}
