package workflow_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/report"
	"fieldagent/agent/workflow"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/snmp"
	"fieldagent/drivers/sshcli"
	"fieldagent/drivers/xt2"
	"fieldagent/testlab"
)

// runToClose runs one order to 报竣 and returns the outcome and what the
// order system received.
func runToClose(t *testing.T, r *workflow.Runner, site *testlab.Site, id string) (*workflow.Outcome, report.Completion) {
	t.Helper()
	var events []string
	r.Progress = func(ev workflow.StepEvent) {
		if ev.State != workflow.StateRunning {
			events = append(events, ev.Step+":"+ev.State)
		}
	}
	out, err := r.Run(context.Background(), id)
	if err != nil {
		t.Fatalf("Run %s: %v\nsteps: %v", id, err, events)
	}
	if out.State != workflow.OrderClosed || site.Orders.State(id) != "closed" {
		t.Fatalf("order %s: outcome %q, order system %q; want closed", id, out.State, site.Orders.State(id))
	}
	body, ok := site.Orders.Completion(id)
	if !ok {
		t.Fatalf("order %s: no completion", id)
	}
	var c report.Completion
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.OrderID != id || c.Acceptance == nil || !c.Acceptance.Accepted {
		t.Errorf("completion order %q acceptance %+v", c.OrderID, c.Acceptance)
	}
	want, err := workflow.PlanSteps(site.SampleOrders[id])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range out.Steps {
		got = append(got, s.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("steps %v, want the plan %v", got, want)
	}
	return out, c
}

func reading(c report.Completion, step, name string) (float64, bool) {
	for _, r := range c.Readings {
		if r.Step == step && r.Name == name {
			return r.Value, true
		}
	}
	return 0, false
}

// TestE8WithITVNewInstall: an e8 and an iTV on one order. The gateway gets
// the internet WAN and a bridged IPTV WAN on the IPTV VLAN; the set-top
// box gets the IPTV account and logs in to the EPG.
func TestE8WithITVNewInstall(t *testing.T) {
	r, site, _ := labRunWith(t, testlab.Config{STB: true}, nil)
	r.IPTV.AuthURL = site.EPGURL
	out, c := runToClose(t, r, site, testlab.SampleITVOrderID)
	if len(c.OtherDevices) != 1 || c.OtherDevices[0].Serial != testlab.SampleSTBSN || c.OtherDevices[0].Kind != drivers.KindITV {
		t.Errorf("other devices %+v, want the set-top box", c.OtherDevices)
	}
	if !out.WAN.Up() {
		t.Errorf("internet WAN %+v", out.WAN)
	}
	// The gateway's IPTV WAN: bridged, service OTHER, on VLAN 85.
	params := map[string]string{}
	for _, p := range site.Gateway.Tree().Snapshot() {
		params[p.Name] = p.Value
	}
	var iptv string
	for name, v := range params {
		if strings.HasSuffix(name, ".X_CT-COM_ServiceList") && v == "OTHER" {
			iptv = strings.TrimSuffix(name, "X_CT-COM_ServiceList")
		}
	}
	if iptv == "" || !strings.Contains(params[iptv+"ConnectionType"], "Bridged") {
		t.Fatalf("no bridged OTHER WAN on the gateway (found %q)", iptv)
	}
	wcd := iptv[:strings.Index(iptv, ".WANIPConnection.")+1]
	vlan := false
	for name, v := range params {
		vlan = vlan || (strings.HasPrefix(name, wcd) && strings.Contains(strings.ToUpper(name), "VLAN") && v == "85")
	}
	if !vlan {
		t.Errorf("the IPTV WAN's connection device %s carries no VLAN 85", wcd)
	}
	if got := site.STB.Tree().Value("Device.X_CTC_IPTV.ServiceInfo.UserStatus"); got != "1" {
		t.Errorf("set-top box UserStatus = %q, want 1 (authenticated)", got)
	}
}

// TestXT2NewInstall: an XT-2 business router over SSH and SNMP: line test,
// PPPoE, the BBMS binding, the configuration saved, the tests, 报竣 within
// the XT-2's 15 minutes.
func TestXT2NewInstall(t *testing.T) {
	r, site, _ := labRunWith(t, testlab.Config{XT2: true, NoGateway: true}, nil)
	acc := site.XT2Access
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(acc.KnownHostsLine()), 0o600); err != nil {
		t.Fatal(err)
	}
	opens := 0
	r.OpenXT2 = func(ctx context.Context) (*xt2.Driver, error) {
		opens++
		return xt2.Open(ctx, xt2.Config{
			SSH:  sshcli.Config{Addr: acc.SSHAddr, User: acc.Username, Password: acc.Password, KnownHostsFile: kh},
			SNMP: snmp.Target{Addr: acc.SNMPAddr, Version: snmp.V2c, Community: acc.SNMPCommunity, Timeout: time.Second, Retries: 2},
		})
	}
	r.XT2Address = acc.SSHAddr
	out, c := runToClose(t, r, site, testlab.SampleXT2OrderID)
	if opens != 1 {
		t.Errorf("the XT-2 was opened %d times, want once", opens)
	}
	if c.Device.Kind != drivers.KindXT2 || c.Device.Serial != testlab.SampleXT2SN {
		t.Errorf("completion device %+v, want the XT-2", c.Device)
	}
	if bras := site.Operator.Sessions()[testlab.SampleXT2PPPoEUser]; !c.WAN.Up() || c.WAN.ExternalIP != bras || bras == "" {
		t.Errorf("WAN %+v, want up with the BRAS address %q", c.WAN, bras)
	}
	if cust, ok := site.BBMS.Binding(testlab.SampleXT2SN); !ok || cust != testlab.SampleBBMSCustomer {
		t.Errorf("BBMS binding %q (%v), want %s", cust, ok, testlab.SampleBBMSCustomer)
	}
	if !strings.Contains(site.XT2.Startup(), testlab.SampleXT2PPPoEUser) {
		t.Error("the PPPoE configuration was not saved to the startup configuration")
	}
	if v, ok := reading(c, workflow.StepLineTest, "wan_link_up"); !ok || v != 1 {
		t.Errorf("line test wan_link_up = %v (%v)", v, ok)
	}
	if out.TimeLimit != 15*time.Minute || c.TimeLimit != 15*time.Minute {
		t.Errorf("time limit %v / %v, want the XT-2's 15 min", out.TimeLimit, c.TimeLimit)
	}
	// The visit recorded the router, so the customer's account finds it.
	if id, err := r.Store.OrderDevice(context.Background(), testlab.SampleXT2OrderID, workflow.RoleXT2); err != nil || id != acc.SSHAddr {
		t.Errorf("the order's XT-2 %q (%v), want %s", id, err, acc.SSHAddr)
	}
}

// TestE8Move: the customer's gateway, already installed, at a new address:
// the WAN is written again (the same one), the LOID registered again, the
// tests run.
func TestE8Move(t *testing.T) {
	r, site, _ := labRunWith(t, testlab.Config{Gateway: testlab.GatewayInstalled}, nil)
	_, c := runToClose(t, r, site, testlab.SampleMoveOrderID)
	if c.OrderType != string(order.TypeMove) || c.Customer == nil || c.Customer.Address != site.SampleOrders[testlab.SampleMoveOrderID].Customer.Address {
		t.Errorf("completion type %q customer %+v", c.OrderType, c.Customer)
	}
	if c.LOID == nil || !c.LOID.Registered || !c.WAN.Up() {
		t.Errorf("LOID %+v WAN %+v, want registered and up", c.LOID, c.WAN)
	}
	if n := site.Gateway.Tree().Value("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnectionNumberOfEntries"); n != "1" {
		t.Errorf("%s PPP WANs after the move, want the one", n)
	}
}

// TestE8Repair: the customer's gateway dials with a wrong password. The
// diagnosis finds the 691, the fix writes the order's account, the re-test
// passes, and the report says fault → fix → re-test.
func TestE8Repair(t *testing.T) {
	r, site, st := labRunWith(t, testlab.Config{Gateway: testlab.GatewayFaultPPPoE}, nil)
	r.Limits.VisitLimitRepair = 30 * time.Minute
	out, c := runToClose(t, r, site, testlab.SampleRepairOrderID)
	if c.TimeLimit != 30*time.Minute {
		t.Errorf("time limit %v, want the repair's 30 min", c.TimeLimit)
	}
	if len(c.Fixes) != 1 || c.Fixes[0].Code != string(verdict.CodePPPoEAuthFailed) || c.Fixes[0].Retest != report.StatusOK ||
		!strings.Contains(c.Fixes[0].Action, testlab.SamplePPPoEUser) || c.Fixes[0].Finding == nil {
		t.Errorf("fixes %+v, want PPPOE_AUTH_FAILED fixed by writing the account, re-test ok", c.Fixes)
	}
	if c.Verdict == nil || c.Verdict.Status == report.StatusFail || len(c.Verdict.Findings) != 0 {
		t.Errorf("re-test verdict %+v, want no fault left", c.Verdict)
	}
	if !out.WAN.Up() || site.Operator.Sessions()[testlab.SamplePPPoEUser] == "" {
		t.Errorf("WAN %+v, want up with a BRAS session", out.WAN)
	}
	// The fault found is kept with the order.
	fs, err := st.Findings(context.Background(), testlab.SampleRepairOrderID)
	if err != nil || len(fs) == 0 || fs[0].Code != string(verdict.CodePPPoEAuthFailed) || fs[0].Step != workflow.StepDiagnose {
		t.Errorf("stored findings %+v, %v", fs, err)
	}
	if _, ok := reading(c, workflow.StepSpeed, "download_mbps"); !ok {
		t.Error("no speed reading after the fix")
	}
}

// TestE8Removal: the service is taken out: the gateway is reset to its
// factory state and the removal is reported.
func TestE8Removal(t *testing.T) {
	r, site, _ := labRunWith(t, testlab.Config{Gateway: testlab.GatewayInstalled}, nil)
	before := site.Gateway.Tree().Value("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnectionNumberOfEntries")
	if before != "1" {
		t.Fatalf("the installed gateway has %q PPP WANs", before)
	}
	_, c := runToClose(t, r, site, testlab.SampleRemovalOrderID)
	tree := site.Gateway.Tree()
	if n := tree.Value("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnectionNumberOfEntries"); n == "1" {
		t.Errorf("the PPP WAN is still on the gateway after the removal")
	}
	if c.OrderType != string(order.TypeRemoval) {
		t.Errorf("completion type %q", c.OrderType)
	}
}

// TestPlans: the steps each order type and device kind goes through.
func TestPlans(t *testing.T) {
	now := time.Now()
	creds := testlab.SampleCredentials{}
	tests := []struct {
		o    *order.Order
		want string
	}{
		{testlab.SampleOrder(now, creds.PPPoEPassword, creds.LOID, creds.LOIDPassword),
			"fetch_order wait_inform identify configure_internet register_loid wait_wan ping speed_test acceptance report upload"},
		{testlab.SampleITVOrder(now, creds),
			"fetch_order wait_inform identify configure_internet register_loid configure_iptv wait_stb configure_stb wait_stb_auth wait_wan ping speed_test acceptance report upload"},
		{testlab.SampleXT2Order(now, creds),
			"fetch_order connect_xt2 identify line_test configure_internet bind_bbms wait_wan save_config ping speed_test acceptance report upload"},
		{testlab.SampleMoveOrder(now, creds),
			"fetch_order wait_inform identify configure_internet register_loid wait_wan ping speed_test acceptance report upload"},
		{testlab.SampleRepairOrder(now, creds),
			"fetch_order wait_inform identify diagnose fix wait_wan ping speed_test retest acceptance report upload"},
		{testlab.SampleRemovalOrder(now, creds),
			"fetch_order wait_inform identify factory_reset acceptance report upload"},
	}
	for _, tc := range tests {
		got, err := workflow.PlanSteps(tc.o)
		if err != nil {
			t.Errorf("%s: %v", tc.o.ID, err)
			continue
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s (%s %v):\n got  %s\n want %s", tc.o.ID, tc.o.Type, tc.o.Services, strings.Join(got, " "), tc.want)
		}
	}
	xt2Removal := testlab.SampleXT2Order(now, creds)
	xt2Removal.Type = order.TypeRemoval
	if _, err := workflow.PlanSteps(xt2Removal); err == nil || !strings.Contains(err.Error(), "not automated") {
		t.Errorf("XT-2 removal: %v, want not supported", err)
	}
}
