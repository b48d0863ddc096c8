package cpe

import (
	"context"
	"slices"
	"strings"
	"testing"

	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/datamodel"
)

const (
	igd  = "InternetGatewayDevice."
	ms   = igd + "ManagementServer."
	wcd  = igd + "WANDevice.1.WANConnectionDevice."
	ppp1 = wcd + "1.WANPPPConnection."
)

func e8Tree(t testing.TB) *Tree {
	t.Helper()
	m, err := datamodel.Builtin(datamodel.E8Gateway)
	if err != nil {
		t.Fatal(err)
	}
	return NewTreeFromModel(m)
}

// TestE8ModelTree checks that the embedded e8 model builds a tree with
// every path the e8 driver and e8sim use, and that its tables behave.
func TestE8ModelTree(t *testing.T) {
	tree := e8Tree(t)
	for _, name := range []string{
		igd + "DeviceInfo.Manufacturer", igd + "DeviceInfo.ManufacturerOUI", igd + "DeviceInfo.ModelName",
		igd + "DeviceInfo.ProductClass", igd + "DeviceInfo.SerialNumber", igd + "DeviceInfo.SoftwareVersion",
		igd + "DeviceInfo.HardwareVersion", igd + "DeviceInfo.ProvisioningCode", igd + "DeviceInfo.UpTime",
		ms + "URL", ms + "PeriodicInformEnable", ms + "PeriodicInformInterval", ms + "ConnectionRequestUsername",
		ms + "ConnectionRequestPassword", ms + "ParameterKey", ms + "ConnectionRequestURL",
		igd + "WANDevice.1.WANCommonInterfaceConfig.WANAccessType",
		igd + "WANDevice.1.X_CT-COM_EponInterfaceConfig.RXPower", igd + "WANDevice.1.X_CT-COM_GponInterfaceConfig.TXPower",
		wcd + "1.WANPPPConnectionNumberOfEntries",
		igd + "LANDevice.1.LANEthernetInterfaceConfig.1.Status", igd + "LANDevice.1.LANEthernetInterfaceConfig.4.MaxBitRate",
		igd + "LANDevice.1.LANHostConfigManagement.DHCPServerEnable",
		igd + "LANDevice.1.LANHostConfigManagement.IPInterface.1.IPInterfaceIPAddress",
		igd + "LANDevice.1.WLANConfiguration.1.SSID", igd + "LANDevice.1.WLANConfiguration.4.PreSharedKey.1.KeyPassphrase",
		igd + "X_CT-COM_UserInfo.UserName", igd + "X_CT-COM_UserInfo.Password", igd + "X_CT-COM_UserInfo.Status", igd + "X_CT-COM_UserInfo.Result",
	} {
		if _, ok := tree.Get(name); !ok {
			t.Errorf("tree lacks %s", name)
		}
	}
	if v := tree.Value(igd + "X_CT-COM_UserInfo.Status"); v != "99" {
		t.Errorf("UserInfo.Status default = %q", v)
	}
	if p, _ := tree.Get(igd + "DeviceInfo.UpTime"); p.Type != "xsd:unsignedInt" || !p.DenyActiveNotify || p.Writable {
		t.Errorf("UpTime = %+v", p)
	}
	// The PPP table exists empty in connection device 1; AddObject fills it.
	if names, f := tree.getNames(ppp1, true); f != nil || len(names) != 0 {
		t.Fatalf("empty PPP table: %v, %v", names, f)
	}
	n, f := tree.addObject(ppp1)
	if f != nil || n != 1 {
		t.Fatalf("AddObject PPP = %d, %v", n, f)
	}
	if p, ok := tree.Get(ppp1 + "1.Stats.EthernetBytesSent"); !ok || p.Type != "xsd:unsignedInt" {
		t.Fatalf("nested Stats object not created: %+v", p)
	}
	if tree.Value(wcd+"1.WANPPPConnectionNumberOfEntries") != "1" {
		t.Fatal("WANPPPConnectionNumberOfEntries not updated")
	}
	// A new connection device gets its own (empty) PPP table.
	n, f = tree.addObject(wcd)
	if f != nil || n != 2 {
		t.Fatalf("AddObject WANConnectionDevice = %d, %v", n, f)
	}
	if n, f := tree.addObject(wcd + "2.WANPPPConnection."); f != nil || n != 1 {
		t.Fatalf("AddObject in new device = %d, %v", n, f)
	}
	// Instance numbers are not reused after a delete.
	if f := tree.deleteObject(ppp1 + "1."); f != nil {
		t.Fatal(f)
	}
	if n, f := tree.addObject(ppp1); f != nil || n != 2 {
		t.Fatalf("AddObject after delete = %d, %v (want 2)", n, f)
	}
	// Fixed tables refuse AddObject and DeleteObject.
	if _, f := tree.addObject(igd + "LANDevice.1.LANEthernetInterfaceConfig."); f == nil || f.Code != cwmp.FaultInvalidParameterName {
		t.Fatalf("AddObject on fixed table: %v", f)
	}
	if f := tree.deleteObject(igd + "LANDevice.1.LANEthernetInterfaceConfig.1."); f == nil {
		t.Fatal("deleted a fixed instance")
	}
	if _, f := tree.addObject(wcd + "9.WANPPPConnection."); f == nil || f.Code != cwmp.FaultInvalidParameterName {
		t.Fatalf("AddObject under a missing instance: %v", f)
	}
	names, _ := tree.getNames(igd+"LANDevice.1.", true)
	for _, n := range names {
		if n.Name == igd+"LANDevice.1.LANEthernetInterfaceConfig." && n.Writable {
			t.Error("fixed table reported writable")
		}
	}
	// Hidden parameters read back empty over CWMP.
	if _, f := tree.applySet([]cwmp.ParameterValueStruct{{Name: ms + "ConnectionRequestPassword", Value: "s3cret"}}); f != nil {
		t.Fatal(f)
	}
	got, _ := tree.getValues([]string{ms + "ConnectionRequestPassword"})
	if got[0].Value != "" || tree.Value(ms+"ConnectionRequestPassword") != "s3cret" {
		t.Fatalf("hidden value: wire %q, stored %q", got[0].Value, tree.Value(ms+"ConnectionRequestPassword"))
	}
}

func TestSTBModelTree(t *testing.T) {
	m, err := datamodel.Builtin(datamodel.STBTR135)
	if err != nil {
		t.Fatal(err)
	}
	tree := NewTreeFromModel(m)
	for _, name := range []string{"Device.STBService.1.Enable", "Device.STBService.1.Components.FrontEnd.1.IP.IGMP.Enable", "Device.X_CTC_IPTV.ServiceInfo.UserID"} {
		if _, ok := tree.Get(name); !ok {
			t.Errorf("tree lacks %s", name)
		}
	}
	e, err := New(Config{ACSURL: "http://127.0.0.1:1/"}, tree)
	if err != nil {
		t.Fatal(err)
	}
	if e.crParam() != "Device.ManagementServer.ConnectionRequestURL" || tree.Value("Device.ManagementServer.URL") != "http://127.0.0.1:1/" {
		t.Fatalf("root %q, URL %q", e.crParam(), tree.Value("Device.ManagementServer.URL"))
	}
	if NewTreeFromModel(nil) == nil {
		t.Fatal("nil model")
	}
}

func TestSetFaults(t *testing.T) {
	tests := []struct {
		name   string
		list   []cwmp.ParameterValueStruct
		code   int
		params map[string]int // per-parameter fault codes
	}{
		{"empty list", nil, cwmp.FaultInvalidArguments, nil},
		{"partial path", []cwmp.ParameterValueStruct{{Name: ms}}, cwmp.FaultInvalidArguments, nil},
		{"duplicate", []cwmp.ParameterValueStruct{{Name: ms + "URL", Value: "a"}, {Name: ms + "URL", Value: "b"}}, cwmp.FaultInvalidArguments, nil},
		{"unknown", []cwmp.ParameterValueStruct{{Name: ms + "Nope", Value: "1"}}, cwmp.FaultInvalidParameterName, map[string]int{ms + "Nope": 9005}},
		{"wrong type", []cwmp.ParameterValueStruct{{Name: ms + "PeriodicInformInterval", Value: "true", Type: "xsd:boolean"}}, cwmp.FaultInvalidParameterType, map[string]int{ms + "PeriodicInformInterval": 9006}},
		{"not a number", []cwmp.ParameterValueStruct{{Name: ms + "PeriodicInformInterval", Value: "soon", Type: "xsd:unsignedInt"}}, cwmp.FaultInvalidParameterValue, map[string]int{ms + "PeriodicInformInterval": 9007}},
		{"below min", []cwmp.ParameterValueStruct{{Name: ms + "PeriodicInformInterval", Value: "0"}}, cwmp.FaultInvalidParameterValue, map[string]int{ms + "PeriodicInformInterval": 9007}},
		{"not in enum", []cwmp.ParameterValueStruct{{Name: igd + "LANDevice.1.WLANConfiguration.1.BeaconType", Value: "WEP"}}, cwmp.FaultInvalidParameterValue, nil},
		{"bad boolean", []cwmp.ParameterValueStruct{{Name: ms + "PeriodicInformEnable", Value: "yes", Type: "xsd:boolean"}}, cwmp.FaultInvalidParameterValue, nil},
		{"too long", []cwmp.ParameterValueStruct{{Name: igd + "LANDevice.1.WLANConfiguration.1.SSID", Value: strings.Repeat("x", 33)}}, cwmp.FaultInvalidParameterValue, nil},
		{"read-only", []cwmp.ParameterValueStruct{{Name: igd + "DeviceInfo.UpTime", Value: "1", Type: "xsd:unsignedInt"}}, cwmp.FaultNonWritableParameter, map[string]int{igd + "DeviceInfo.UpTime": 9008}},
		{"mixed, atomic", []cwmp.ParameterValueStruct{
			{Name: ms + "PeriodicInformInterval", Value: "60", Type: "xsd:unsignedInt"},
			{Name: igd + "DeviceInfo.UpTime", Value: "1"},
			{Name: ms + "Nope", Value: "1"},
		}, cwmp.FaultInvalidArguments, map[string]int{igd + "DeviceInfo.UpTime": 9008, ms + "Nope": 9005}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := e8Tree(t)
			before := tree.Snapshot()
			_, f := tree.applySet(tc.list)
			if f == nil || f.Code != tc.code {
				t.Fatalf("fault = %v, want %d", f, tc.code)
			}
			if tc.params != nil {
				got := map[string]int{}
				for _, p := range f.SetParameterValuesFaults {
					got[p.ParameterName] = p.FaultCode
				}
				if len(got) != len(tc.params) {
					t.Fatalf("parameter faults = %v, want %v", got, tc.params)
				}
				for n, c := range tc.params {
					if got[n] != c {
						t.Fatalf("parameter faults = %v, want %v", got, tc.params)
					}
				}
			}
			if after := tree.Snapshot(); !slices.EqualFunc(before, after, func(a, b Param) bool { return a.Name == b.Name && a.Value == b.Value }) {
				t.Fatal("a failed SetParameterValues changed the tree")
			}
		})
	}
	// Values without xsi:type (decoded as xsd:string) are accepted.
	tree := e8Tree(t)
	if _, f := tree.applySet([]cwmp.ParameterValueStruct{{Name: ms + "PeriodicInformInterval", Value: "60", Type: "xsd:string"}, {Name: ms + "PeriodicInformEnable", Value: "true", Type: "xsd:boolean"}}); f != nil {
		t.Fatal(f)
	}
}

func TestAttributes(t *testing.T) {
	tree := e8Tree(t)
	e, err := New(Config{ACSURL: "http://127.0.0.1:1/"}, tree)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spa := func(list ...cwmp.SetParameterAttributesStruct) cwmp.Message {
		return e.handle(ctx, &cwmp.SetParameterAttributes{ParameterList: list})
	}
	if r := spa(cwmp.SetParameterAttributesStruct{Name: igd + "LANDevice.1.WLANConfiguration.1.", NotificationChange: true, Notification: 1, AccessListChange: true, AccessList: []string{"Subscriber"}}); r.MethodName() != "SetParameterAttributesResponse" {
		t.Fatalf("partial path SPA = %v", r)
	}
	r := e.handle(ctx, &cwmp.GetParameterAttributes{ParameterNames: []string{igd + "LANDevice.1.WLANConfiguration.1."}})
	gpa, ok := r.(*cwmp.GetParameterAttributesResponse)
	if !ok || len(gpa.ParameterList) < 10 {
		t.Fatalf("GPA = %#v", r)
	}
	for _, a := range gpa.ParameterList {
		if a.Notification != 1 || !slices.Equal(a.AccessList, []string{"Subscriber"}) {
			t.Fatalf("attribute %+v", a)
		}
	}
	tests := []struct {
		name string
		in   cwmp.SetParameterAttributesStruct
		code int
	}{
		{"unknown", cwmp.SetParameterAttributesStruct{Name: igd + "Nope", NotificationChange: true, Notification: 1}, cwmp.FaultInvalidParameterName},
		{"unknown object", cwmp.SetParameterAttributesStruct{Name: igd + "Nope.", NotificationChange: true, Notification: 1}, cwmp.FaultInvalidParameterName},
		{"active on counter", cwmp.SetParameterAttributesStruct{Name: igd + "DeviceInfo.UpTime", NotificationChange: true, Notification: 2}, cwmp.FaultNotificationRejected},
		{"active on subtree with counter", cwmp.SetParameterAttributesStruct{Name: igd + "DeviceInfo.", NotificationChange: true, Notification: 2}, cwmp.FaultNotificationRejected},
		{"lightweight", cwmp.SetParameterAttributesStruct{Name: ms + "URL", NotificationChange: true, Notification: 3}, cwmp.FaultNotificationRejected},
		{"out of range", cwmp.SetParameterAttributesStruct{Name: ms + "URL", NotificationChange: true, Notification: 9}, cwmp.FaultInvalidArguments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := spa(tc.in).(*cwmp.Fault)
			if !ok || f.Code != tc.code {
				t.Fatalf("fault = %v, want %d", f, tc.code)
			}
		})
	}
	// Atomic: one bad entry leaves the good one unapplied.
	if _, ok := spa(cwmp.SetParameterAttributesStruct{Name: ms + "URL", NotificationChange: true, Notification: 2},
		cwmp.SetParameterAttributesStruct{Name: igd + "DeviceInfo.UpTime", NotificationChange: true, Notification: 2}).(*cwmp.Fault); !ok {
		t.Fatal("no fault")
	}
	if p, _ := tree.Get(ms + "URL"); p.Notify != 0 {
		t.Fatalf("URL notification %d after a failed SPA", p.Notify)
	}
	if f, ok := e.handle(ctx, &cwmp.GetParameterAttributes{ParameterNames: []string{igd + "Nope"}}).(*cwmp.Fault); !ok || f.Code != cwmp.FaultInvalidParameterName {
		t.Fatalf("GPA unknown = %v", f)
	}
	if err := tree.SetNotification(igd+"DeviceInfo.UpTime", 2); err == nil {
		t.Fatal("SetNotification accepted active on UpTime")
	}
	if err := tree.SetNotification(igd+"DeviceInfo.UpTime", 1); err != nil {
		t.Fatal(err)
	}
}

func TestParameterKeyAndTransfers(t *testing.T) {
	tree := e8Tree(t)
	e, err := New(Config{ACSURL: "http://127.0.0.1:1/"}, tree)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := func() string { return tree.Value(ms + "ParameterKey") }
	steps := []struct {
		name string
		req  cwmp.Message
		ok   bool
		key  string
	}{
		{"spv ok", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: ms + "PeriodicInformInterval", Value: "60"}}, ParameterKey: "k1"}, true, "k1"},
		{"spv fails", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: igd + "DeviceInfo.UpTime", Value: "60"}}, ParameterKey: "k2"}, false, "k1"},
		{"add ok", &cwmp.AddObject{ObjectName: ppp1, ParameterKey: "k3"}, true, "k3"},
		{"add fails", &cwmp.AddObject{ObjectName: igd + "DeviceInfo.", ParameterKey: "k4"}, false, "k3"},
		{"delete fails", &cwmp.DeleteObject{ObjectName: ppp1 + "7.", ParameterKey: "k5"}, false, "k3"},
		{"delete ok", &cwmp.DeleteObject{ObjectName: ppp1 + "1.", ParameterKey: "k6"}, true, "k6"},
		{"bad ACS URL", &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{{Name: ms + "URL", Value: "ftp://x/"}}, ParameterKey: "k7"}, false, "k6"},
		{"get does not touch it", &cwmp.GetParameterValues{ParameterNames: []string{ms}}, true, "k6"},
	}
	for _, s := range steps {
		_, isFault := e.handle(ctx, s.req).(*cwmp.Fault)
		if isFault == s.ok || key() != s.key {
			t.Fatalf("%s: fault %v, ParameterKey %q (want ok=%v, %q)", s.name, isFault, key(), s.ok, s.key)
		}
	}
	// Queued transfers are listed until the session ends, and can be cancelled.
	e.handle(ctx, &cwmp.Download{CommandKey: "d1", FileType: "1 Firmware Upgrade Image", URL: "http://127.0.0.1:1/fw", FileSize: 10})
	e.handle(ctx, &cwmp.Upload{CommandKey: "u1", FileType: "1 Vendor Configuration File", URL: "http://127.0.0.1:1/up"})
	all, ok := e.handle(ctx, &cwmp.GetAllQueuedTransfers{}).(*cwmp.GetAllQueuedTransfersResponse)
	if !ok || len(all.TransferList) != 2 || !all.TransferList[0].IsDownload || all.TransferList[0].FileSize != 10 || all.TransferList[1].IsDownload {
		t.Fatalf("GetAllQueuedTransfers = %+v", all)
	}
	if r := e.handle(ctx, &cwmp.CancelTransfer{CommandKey: "u1"}); r.MethodName() != "CancelTransferResponse" {
		t.Fatalf("cancel = %v", r)
	}
	if f, ok := e.handle(ctx, &cwmp.CancelTransfer{CommandKey: "u1"}).(*cwmp.Fault); !ok || f.Code != cwmp.FaultCancelTransferNotPermitted {
		t.Fatalf("cancel twice = %v", f)
	}
	q, ok := e.handle(ctx, &cwmp.GetQueuedTransfers{}).(*cwmp.GetQueuedTransfersResponse)
	if !ok || len(q.TransferList) != 1 || q.TransferList[0].CommandKey != "d1" || q.TransferList[0].State != 1 {
		t.Fatalf("GetQueuedTransfers = %+v", q)
	}
	if f, ok := e.handle(ctx, &cwmp.ScheduleInform{}).(*cwmp.Fault); !ok || f.Code != cwmp.FaultInvalidArguments {
		t.Fatalf("ScheduleInform 0 = %v", f)
	}
	rpc, _ := e.handle(ctx, &cwmp.GetRPCMethods{}).(*cwmp.GetRPCMethodsResponse)
	if !slices.Contains(rpc.MethodList, "GetParameterAttributes") || !slices.Contains(rpc.MethodList, "ScheduleInform") {
		t.Fatalf("methods = %v", rpc.MethodList)
	}
}
