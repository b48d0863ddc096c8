package e8

import (
	"context"
	"time"

	"fieldagent/drivers"
	"fieldagent/drivers/cwmptx"
	"fieldagent/tr069/cwmp"
)

// tx returns the transaction runner for this gateway.
func (d *Driver) tx() *cwmptx.Device {
	return &cwmptx.Device{ACS: d.acs, DeviceID: d.deviceID, Logger: d.Logger, RestoreTimeout: d.RestoreTimeout}
}

// Snapshot reads the writable parameters and the object instances under
// roots (object paths ending in "."). Write-only values (passwords, keys)
// read back empty on every gateway and cannot be restored.
func (d *Driver) Snapshot(ctx context.Context, roots ...string) (drivers.Snapshot, error) {
	return d.tx().Snapshot(ctx, roots...)
}

// Restore puts the objects of s back as they were (see cwmptx.Device.Restore).
func (d *Driver) Restore(ctx context.Context, s drivers.Snapshot) error {
	return d.tx().Restore(ctx, s)
}

func (d *Driver) transact(ctx context.Context, op string, roots []string, steps ...cwmptx.Step) (drivers.Undo, error) {
	return d.tx().Transact(ctx, op, roots, steps...)
}

func (d *Driver) set(ctx context.Context, key string, ps []cwmp.ParameterValueStruct, hidden ...string) ([]cwmp.ParameterValueStruct, error) {
	return d.tx().Set(ctx, key, ps, hidden...)
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func str(name, v string) cwmp.ParameterValueStruct { return cwmptx.Str(name, v) }

func boolean(name string, v bool) cwmp.ParameterValueStruct { return cwmptx.Bool(name, v) }

func unsigned(name string, v int) cwmp.ParameterValueStruct { return cwmptx.Uint(name, v) }

func sameValue(a, b string) bool { return cwmptx.SameValue(a, b) }
