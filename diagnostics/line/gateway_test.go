package line

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"fieldagent/drivers"
)

// gatewayDevice is a fakeDevice that also identifies itself, shows its
// settings and, with loid set, its LOID registration.
type gatewayDevice struct {
	fakeDevice
	id       drivers.Identity
	idErr    error
	settings map[string]string
	roots    *[]string // the roots Snapshot was asked for
}

func (g gatewayDevice) Identify(context.Context) (drivers.Identity, error) { return g.id, g.idErr }

func (g gatewayDevice) Snapshot(_ context.Context, roots ...string) (drivers.Snapshot, error) {
	if g.roots != nil {
		*g.roots = append(*g.roots, roots...)
	}
	return drivers.Snapshot{Roots: roots, Values: g.settings}, nil
}

type loidGateway struct {
	gatewayDevice
	loid drivers.LOIDResult
}

func (g loidGateway) LOIDStatus(context.Context) (drivers.LOIDResult, error) { return g.loid, nil }

func TestReadGatewayExtras(t *testing.T) {
	e8Settings := map[string]string{
		tr098LANHostConfig + "DHCPServerEnable": "0",
		tr098WLAN + "1.AutoChannelEnable":       "0",
		tr098WLAN + "2.AutoChannelEnable":       "true",
	}
	var asked []string
	e8gw := gatewayDevice{id: drivers.Identity{Kind: drivers.KindE8, Firmware: "V2.0.3T2"}, settings: e8Settings, roots: &asked}
	for _, tc := range []struct {
		name     string
		dev      drivers.StatusReader
		opts     Options
		facts    map[string]string
		readings map[string]float64
		err      bool
	}{
		{name: "e8 gateway", dev: e8gw,
			facts:    map[string]string{"access": "lan", "firmware": "V2.0.3T2", "lan_dhcp_server": "off"},
			readings: map[string]float64{"wifi1_auto_channel": 0, "wifi2_auto_channel": 1}},
		{name: "another kind: no e8 settings read", dev: gatewayDevice{id: drivers.Identity{Kind: drivers.KindXT2, Firmware: "R1"}, settings: e8Settings},
			facts: map[string]string{"access": "lan", "firmware": "R1"}, readings: map[string]float64{}},
		{name: "identify fails", dev: gatewayDevice{idErr: errors.New("timeout"), settings: e8Settings},
			facts: map[string]string{"access": "lan"}, readings: map[string]float64{}, err: true},
		{name: "loid read from the gateway", dev: loidGateway{gatewayDevice: gatewayDevice{id: drivers.Identity{Kind: drivers.KindE8}},
			loid: drivers.LOIDResult{Outcome: drivers.LOIDFailure, Status: "1", Result: "2", Detail: "ITMS does not know this LOID"}},
			facts:    map[string]string{"access": "lan", "loid_outcome": "failure", "loid_status": "1", "loid_result": "2", "loid_detail": "ITMS does not know this LOID"},
			readings: map[string]float64{}},
		{name: "the caller's loid outcome wins", dev: loidGateway{gatewayDevice: gatewayDevice{id: drivers.Identity{Kind: drivers.KindE8}},
			loid: drivers.LOIDResult{Outcome: drivers.LOIDFailure, Status: "1"}},
			opts:  Options{LOID: &drivers.LOIDResult{Outcome: drivers.LOIDSuccess, Status: "0", Result: "1"}},
			facts: map[string]string{"access": "lan", "loid_outcome": "success", "loid_status": "0", "loid_result": "1"}, readings: map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs, err := Read(context.Background(), tc.dev, tc.opts)
			if (err != nil) != tc.err {
				t.Fatalf("Read error = %v, want error %v", err, tc.err)
			}
			if !maps.Equal(obs.Facts, tc.facts) {
				t.Errorf("facts\n got %v\nwant %v", obs.Facts, tc.facts)
			}
			if got := readingMap(obs.Readings); !maps.Equal(got, tc.readings) {
				t.Errorf("readings\n got %v\nwant %v", got, tc.readings)
			}
		})
	}
	if !slices.Equal(asked, []string{tr098LANHostConfig, tr098WLAN}) {
		t.Errorf("settings read under %v", asked)
	}
}
