package line

import (
	"context"
	"strconv"
	"strings"

	"fieldagent/drivers"
)

// The optional parts of a device that Read uses when the device has them.
type (
	// identifier is drivers.Identifier: the running firmware.
	identifier interface {
		Identify(ctx context.Context) (drivers.Identity, error)
	}
	// settingsReader is the reading half of drivers.Snapshotter: an e8
	// gateway's writable settings (LAN DHCP server, Wi-Fi auto channel).
	settingsReader interface {
		Snapshot(ctx context.Context, roots ...string) (drivers.Snapshot, error)
	}
	// loidReader reads an e8 gateway's LOID registration state
	// (X_CT-COM_UserInfo Status and Result) without registering.
	loidReader interface {
		LOIDStatus(ctx context.Context) (drivers.LOIDResult, error)
	}
)

// The TR-098 objects of an e8 gateway's settings that Read looks at.
const (
	tr098LANHostConfig = "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement."
	tr098WLAN          = "InternetGatewayDevice.LANDevice.1.WLANConfiguration."
)

// identity gives the firmware fact and remembers the device kind.
func (r *reader) identity(dev identifier) func(context.Context) error {
	return func(ctx context.Context) error {
		id, err := dev.Identify(ctx)
		if err != nil {
			return err
		}
		r.kind = id.Kind
		r.fact("firmware", id.Firmware)
		return nil
	}
}

// settings reads (Read calls it for e8 gateways only) an e8 gateway's LAN DHCP server switch (the
// lan_dhcp_server fact, on or off) and each SSID's automatic channel
// selection (wifi<N>_auto_channel, 1/0).
func (r *reader) settings(dev settingsReader) func(context.Context) error {
	return func(ctx context.Context) error {
		s, err := dev.Snapshot(ctx, tr098LANHostConfig, tr098WLAN)
		if err != nil {
			return err
		}
		if v, ok := s.Values[tr098LANHostConfig+"DHCPServerEnable"]; ok {
			r.fact("lan_dhcp_server", onOff(v))
		}
		for n := 1; ; n++ {
			v, ok := s.Values[tr098WLAN+strconv.Itoa(n)+".AutoChannelEnable"]
			if !ok {
				break
			}
			r.add("wifi"+strconv.Itoa(n)+"_auto_channel", flag(onOff(v) == "on"), "")
		}
		return nil
	}
}

// loid reads the LOID registration state into opts.LOID (which Read then
// reports as the loid_* facts).
func (r *reader) loid(dev loidReader) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := dev.LOIDStatus(ctx)
		if err != nil {
			return err
		}
		r.opts.LOID = &res
		return nil
	}
}

// onOff reads a TR-069 boolean (1/0, true/false).
func onOff(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true":
		return "on"
	}
	return "off"
}
