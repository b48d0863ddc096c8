package e8sim_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/operator"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

const (
	ppp  = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection."
	user = "InternetGatewayDevice.X_CT-COM_UserInfo."
)

// start runs one simulated gateway against a real ACS and operator on
// loopback and returns the ACS and the gateway's ACS id.
func start(t *testing.T, access string) (*acs.Server, string, *e8sim.Gateway) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cr := secret.New("cr")
	a := acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return "u", cr }})
	as := httptest.NewServer(a)
	t.Cleanup(as.Close)
	op := operator.New(secret.New("optok"), nil)
	op.AddPPPoEAccount("ad1", secret.New("right"))
	op.AddLOID(secret.New("LOID1"), secret.New("lpw"))
	os := httptest.NewServer(op)
	t.Cleanup(os.Close)
	gw, err := e8sim.New(e8sim.Config{
		ACSURL: as.URL + "/", Vendor: "ZTE", Model: "F650", OUI: "00D0D0", ProductClass: "F650",
		Serial: "SN1", Firmware: "V1", Access: access, ConnReqUsername: "u", ConnReqPassword: cr,
		OperatorURL: os.URL, OperatorToken: secret.New("optok"),
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
	return a, d.ID, gw
}

func value(t *testing.T, a *acs.Server, id, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pv, err := a.GetParameterValues(ctx, id, name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return pv[0].Value
}

func waitValue(t *testing.T, a *acs.Server, id, name string, want ...string) string {
	t.Helper()
	var v string
	for range 100 {
		v = value(t, a, id, name)
		for _, w := range want {
			if v == w {
				return v
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s = %q, want one of %v", name, v, want)
	return ""
}

func set(t *testing.T, a *acs.Server, id string, kv ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ps []cwmp.ParameterValueStruct
	for i := 0; i+1 < len(kv); i += 2 {
		ps = append(ps, cwmp.ParameterValueStruct{Name: kv[i], Value: kv[i+1], Type: "xsd:string"})
	}
	if err := a.SetParameterValues(ctx, id, ps, "k"); err != nil {
		t.Fatalf("set: %v", err)
	}
}

func addWAN(t *testing.T, a *acs.Server, id, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := a.AddObject(ctx, id, ppp, "k")
	if err != nil {
		t.Fatal(err)
	}
	inst := ppp + string(rune('0'+n)) + "."
	set(t, a, id, inst+"Username", "ad1", inst+"Password", password, inst+"ConnectionType", "IP_Routed", inst+"Enable", "1")
	return inst
}

func TestPasswordsAreWriteOnly(t *testing.T) {
	a, id, _ := start(t, "lan")
	inst := addWAN(t, a, id, "right")
	if v := value(t, a, id, inst+"Password"); v != "" {
		t.Errorf("Password reads back %q, want empty (write-only)", v)
	}
	if v := waitValue(t, a, id, inst+"ConnectionStatus", "Connected"); v != "Connected" {
		t.Fatal(v)
	}
	if v := value(t, a, id, inst+"ExternalIPAddress"); v == "" {
		t.Error("connected without an address")
	}
}

func TestWrongPasswordGives691(t *testing.T) {
	a, id, _ := start(t, "lan")
	inst := addWAN(t, a, id, "wrong")
	waitValue(t, a, id, inst+"ConnectionStatus", "Disconnected")
	if v := value(t, a, id, inst+"LastConnectionError"); v != "ERROR_AUTHENTICATION_FAILURE" {
		t.Errorf("LastConnectionError = %q, want ERROR_AUTHENTICATION_FAILURE", v)
	}
}

func TestPONWaitsForLOID(t *testing.T) {
	a, id, _ := start(t, "gpon")
	inst := addWAN(t, a, id, "right")
	// Without a registered LOID the ONU has no link: the WAN keeps trying.
	time.Sleep(100 * time.Millisecond)
	if v := value(t, a, id, inst+"ConnectionStatus"); v != "Connecting" {
		t.Fatalf("ConnectionStatus before LOID = %q, want Connecting", v)
	}
	set(t, a, id, user+"UserName", "LOID1", user+"Password", "lpw")
	waitValue(t, a, id, user+"Status", "0")
	if v := value(t, a, id, user+"Result"); v != "1" {
		t.Errorf("Result = %q, want 1", v)
	}
	waitValue(t, a, id, inst+"ConnectionStatus", "Connected")
}

func TestUnknownLOID(t *testing.T) {
	a, id, _ := start(t, "epon")
	set(t, a, id, user+"UserName", "NOPE", user+"Password", "lpw")
	if v := waitValue(t, a, id, user+"Status", "1"); v != "1" {
		t.Fatal(v)
	}
}

func TestReadOnlyParameterFaults(t *testing.T) {
	a, id, _ := start(t, "lan")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.SetParameterValues(ctx, id, []cwmp.ParameterValueStruct{{Name: "InternetGatewayDevice.DeviceInfo.SerialNumber", Value: "X"}}, "k")
	var f *cwmp.Fault
	if !errors.As(err, &f) || f.Code != cwmp.FaultNonWritableParameter {
		t.Errorf("setting SerialNumber: %v, want fault 9008", err)
	}
}

func TestFailNextSet(t *testing.T) {
	a, id, gw := start(t, "lan")
	gw.FailNextSet(cwmp.FaultInternalError)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"
	err := a.SetParameterValues(ctx, id, []cwmp.ParameterValueStruct{{Name: name, Value: "X", Type: "xsd:string"}}, "k")
	var f *cwmp.Fault
	if !errors.As(err, &f) || f.Code != cwmp.FaultInternalError {
		t.Fatalf("set: %v, want fault 9002", err)
	}
	if v := value(t, a, id, name); v == "X" {
		t.Error("a refused set changed the tree")
	}
	set(t, a, id, name, "Y") // the fault is used up
	if v := value(t, a, id, name); v != "Y" {
		t.Errorf("SSID = %q", v)
	}
}
