// Package catalog is the driver registry fieldagent ships: from what a
// device reports (its Inform's DeviceId and data model root, or its SNMP
// sysObjectID and `display version`) to the driver that manages it.
//
// The TR-069 devices (e8 gateways, iTV set-top boxes) are reached through an
// ACS; an XT-2 needs SSH and SNMP credentials, so its constructor comes from
// the caller.
package catalog

import (
	"context"
	"log/slog"
	"time"

	"fieldagent/drivers"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/xt2"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// ACS is what the TR-069 drivers need of an ACS (*acs.Server has it).
type ACS interface {
	GetParameterValues(ctx context.Context, deviceID string, names ...string) ([]cwmp.ParameterValueStruct, error)
	SetParameterValues(ctx context.Context, deviceID string, params []cwmp.ParameterValueStruct, key string) error
	GetParameterNames(ctx context.Context, deviceID, path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, error)
	AddObject(ctx context.Context, deviceID, objectName, key string) (uint32, error)
	DeleteObject(ctx context.Context, deviceID, objectName, key string) error
	Reboot(ctx context.Context, deviceID, commandKey string) error
	FactoryReset(ctx context.Context, deviceID string) error
	Download(ctx context.Context, deviceID string, d cwmp.Download) (cwmp.DownloadResponse, error)
	WaitTransferComplete(ctx context.Context, deviceID, commandKey string) (cwmp.TransferComplete, error)
	WaitInform(ctx context.Context, deviceID, eventCode string, after time.Time) (acs.Device, error)
}

// Options configures New.
type Options struct {
	// ACS reaches the TR-069 devices; nil leaves e8 and iTV out.
	ACS ACS
	// Logger, if nil, discards.
	Logger *slog.Logger
	// PollInterval is passed to the TR-069 drivers; zero keeps their default.
	PollInterval time.Duration
	// XT2 gives the SSH/SNMP settings for an XT-2 business router that
	// matched (seen.Target is its host); nil leaves XT-2 out.
	XT2 func(ctx context.Context, seen drivers.Seen) (xt2.Config, error)
}

// New returns the registry of every driver Options allows.
func New(o Options) *drivers.Registry {
	r := &drivers.Registry{}
	if o.ACS != nil {
		r.Register(drivers.Entry{
			Name: "e8", Kind: drivers.KindE8,
			Match: drivers.Match{RootObject: "InternetGatewayDevice"},
			New: func(_ context.Context, seen drivers.Seen) (drivers.Identifier, error) {
				d := e8.New(o.ACS, seen.Target)
				d.Logger, d.PollInterval = o.Logger, o.PollInterval
				return d, nil
			},
		})
		r.Register(drivers.Entry{
			Name: "itv", Kind: drivers.KindITV,
			Match: drivers.Match{RootObject: "Device.STBService"},
			New: func(_ context.Context, seen drivers.Seen) (drivers.Identifier, error) {
				d := itv.New(o.ACS, seen.Target)
				d.Logger, d.PollInterval = o.Logger, o.PollInterval
				return d, nil
			},
		})
	}
	if o.XT2 != nil {
		// Either half of xt2.Match identifies the router: the SNMP agent's
		// sysObjectID, or the CLI's `display version` when SNMP is off.
		full := xt2.Entry(o.XT2)
		for _, m := range []drivers.Match{{SysObjectIDPrefix: full.Match.SysObjectIDPrefix}, {DisplayVersion: full.Match.DisplayVersion}} {
			e := full
			e.Match = m
			r.Register(e)
		}
	}
	return r
}

// OpenTR069 builds the driver for a device that informed the ACS.
func OpenTR069(ctx context.Context, r *drivers.Registry, d acs.Device) (drivers.Identifier, drivers.Kind, error) {
	seen := drivers.SeenFromInform(d)
	e, err := r.Lookup(seen)
	if err != nil {
		return nil, "", err
	}
	drv, err := r.Open(ctx, seen)
	if err != nil {
		return nil, "", err
	}
	return drv, e.Kind, nil
}
