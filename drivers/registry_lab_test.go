package drivers_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/operator"
	"fieldagent/testlab/stbsim"
	"fieldagent/tr069/acs"
)

// TestRegistryPicksDriverFromInform starts an e8 gateway and an iTV box on
// one ACS and lets the registry pick each one's driver from its Inform.
func TestRegistryPicksDriverFromInform(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := acs.New(acs.Config{})
	as := httptest.NewServer(a)
	defer as.Close()
	op := httptest.NewServer(operator.New(secret.New("t"), nil))
	defer op.Close()
	gw, err := e8sim.New(e8sim.Config{ACSURL: as.URL + "/", Vendor: "ZTE", Model: "F650", OUI: "00D0D0", ProductClass: "F650", Serial: "GW1", Access: "gpon", OperatorURL: op.URL})
	if err != nil {
		t.Fatal(err)
	}
	box, err := stbsim.New(stbsim.Config{ACSURL: as.URL + "/", Vendor: "Huawei", Model: "EC6108V9", OUI: "00E0FC", ProductClass: "EC6108V9", Serial: "STB1"})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = gw.Run(rctx); done <- struct{}{} }()
	go func() { _ = box.Run(rctx); done <- struct{}{} }()
	defer func() { rcancel(); <-done; <-done }()

	var reg drivers.Registry
	reg.Register(drivers.Entry{Name: "e8", Kind: drivers.KindE8, Match: drivers.Match{RootObject: "InternetGatewayDevice"},
		New: func(_ context.Context, s drivers.Seen) (drivers.Identifier, error) { return e8.New(a, s.Target), nil }})
	reg.Register(drivers.Entry{Name: "itv", Kind: drivers.KindITV, Match: drivers.Match{RootObject: "Device.STBService"},
		New: func(_ context.Context, s drivers.Seen) (drivers.Identifier, error) { return itv.New(a, s.Target), nil }})

	for serial, kind := range map[string]drivers.Kind{"GW1": drivers.KindE8, "STB1": drivers.KindITV} {
		dev, err := a.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == serial })
		if err != nil {
			t.Fatal(err)
		}
		drv, err := reg.Open(ctx, drivers.SeenFromInform(dev))
		if err != nil {
			t.Fatal(err)
		}
		id, err := drv.Identify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if id.Kind != kind || id.Serial != serial {
			t.Errorf("%s: identity %+v", serial, id)
		}
	}
	_, err = reg.Open(ctx, drivers.Seen{Target: "x", OUI: "ABCDEF", ProductClass: "Router", RootObject: "Device"})
	if !errors.Is(err, drivers.ErrUnknownDevice) || !strings.Contains(err.Error(), "ABCDEF") {
		t.Errorf("unknown device: %v", err)
	}
}
