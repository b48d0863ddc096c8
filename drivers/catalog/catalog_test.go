package catalog_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/xt2"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/operator"
	"fieldagent/testlab/stbsim"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
)

// One ACS, three devices informing: an e8 gateway, an iTV box and a CPE of
// a model nobody registered. Each is told apart by what it informed.
func TestOpenTR069(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cr := secret.New("cr")
	a := acs.New(acs.Config{ConnectionRequestAuth: func(string) (string, secret.Secret) { return "u", cr }})
	as := httptest.NewServer(a)
	defer as.Close()
	op := httptest.NewServer(operator.New(secret.New("optok"), nil))
	defer op.Close()

	gw, err := e8sim.New(e8sim.Config{ACSURL: as.URL + "/", Vendor: "ZTE", Model: "F650", OUI: "00D0D0", ProductClass: "F650",
		Serial: "GW1", Firmware: "V1", Access: "gpon", ConnReqUsername: "u", ConnReqPassword: cr, OperatorURL: op.URL, OperatorToken: secret.New("optok")})
	if err != nil {
		t.Fatal(err)
	}
	box, err := stbsim.New(stbsim.Config{ACSURL: as.URL + "/", Vendor: "Huawei", Model: "EC6108V9", OUI: "00E0FC", ProductClass: "EC6108V9",
		Serial: "STB1", Firmware: "V100", STBID: "0010029900E06C0000001", ConnReqUsername: "u", ConnReqPassword: cr})
	if err != nil {
		t.Fatal(err)
	}
	tree := cpe.NewTree()
	tree.Set(cpe.Param{Name: "Device.DeviceInfo.ModelName", Value: "Mystery-1", Type: "xsd:string"})
	tree.Set(cpe.Param{Name: "Device.ManagementServer.ParameterKey", Type: "xsd:string"})
	odd, err := cpe.New(cpe.Config{ACSURL: as.URL + "/", DeviceId: cwmp.DeviceIdStruct{Manufacturer: "Acme", OUI: "ABCDEF", ProductClass: "M1", SerialNumber: "ODD1"},
		InformParams: []string{"Device.DeviceInfo.ModelName"}}, tree)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	go func() { _ = gw.Run(rctx); done <- struct{}{} }()
	go func() { _ = box.Run(rctx); done <- struct{}{} }()
	go func() { _ = odd.Run(rctx); done <- struct{}{} }()
	defer func() { rcancel(); <-done; <-done; <-done }()

	reg := catalog.New(catalog.Options{ACS: a, PollInterval: 5 * time.Millisecond})
	wait := func(serial string) acs.Device {
		d, err := a.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == serial })
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	drv, kind, err := catalog.OpenTR069(ctx, reg, wait("GW1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := drv.(*e8.Driver); !ok || kind != drivers.KindE8 {
		t.Fatalf("gateway opened as %T (%s)", drv, kind)
	}
	if id, err := drv.Identify(ctx); err != nil || id.Serial != "GW1" || id.Class != "e8-C" {
		t.Errorf("gateway identity %+v, %v", id, err)
	}

	drv, kind, err = catalog.OpenTR069(ctx, reg, wait("STB1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := drv.(*itv.Driver); !ok || kind != drivers.KindITV {
		t.Fatalf("set-top box opened as %T (%s)", drv, kind)
	}
	if id, err := drv.Identify(ctx); err != nil || id.STBID != "0010029900E06C0000001" {
		t.Errorf("box identity %+v, %v", id, err)
	}

	_, _, err = catalog.OpenTR069(ctx, reg, wait("ODD1"))
	if !errors.Is(err, drivers.ErrUnknownDevice) {
		t.Fatalf("unknown CPE: err = %v, want ErrUnknownDevice", err)
	}
	for _, want := range []string{`oui="ABCDEF"`, `product_class="M1"`, `model="Mystery-1"`, "e8", "itv"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("unknown-device error does not list %s: %v", want, err)
		}
	}
}

// An XT-2 is found by either half of its identity.
func TestXT2Entries(t *testing.T) {
	var asked []string
	reg := catalog.New(catalog.Options{XT2: func(_ context.Context, seen drivers.Seen) (xt2.Config, error) {
		asked = append(asked, seen.Target)
		return xt2.Config{}, errors.New("no credentials in this test")
	}})
	for _, seen := range []drivers.Seen{
		{Target: "a", SysObjectID: xt2.SysObjectIDPrefix + ".7"},
		{Target: "b", DisplayVersion: "XT-2 Business Router, Software Version V200R001\nuptime 3 days"},
	} {
		e, err := reg.Lookup(seen)
		if err != nil || e.Kind != drivers.KindXT2 {
			t.Errorf("%s: entry %+v, %v", seen, e, err)
		}
		if _, err := reg.Open(context.Background(), seen); err == nil || !strings.Contains(err.Error(), "no credentials") {
			t.Errorf("%s: open err = %v", seen, err)
		}
	}
	if strings.Join(asked, ",") != "a,b" {
		t.Errorf("constructor asked for %v", asked)
	}
	if _, err := reg.Lookup(drivers.Seen{SysObjectID: ".1.3.6.1.4.1.2011.2.23"}); !errors.Is(err, drivers.ErrUnknownDevice) {
		t.Errorf("a Huawei sysObjectID matched: %v", err)
	}
}
