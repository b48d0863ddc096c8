package server

import (
	"context"
	"encoding/json"
	"fmt"

	"fieldagent/agent/store"
	"fieldagent/tr069/acs"
)

// StoreRegistry keeps the ACS's device registry in the agent's SQLite store,
// so that `acs serve` knows its devices after a restart. It implements the
// registry interface tr069/acs declares.
type StoreRegistry struct {
	Store *store.Store
}

// SaveDevice records the device as JSON, keyed by its ACS id.
func (r StoreRegistry) SaveDevice(ctx context.Context, d acs.Device) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("registry: encode %s: %w", d.ID, err)
	}
	return r.Store.PutACSDevice(ctx, store.ACSDevice{
		ID: d.ID, Serial: d.DeviceId.SerialNumber, OUI: d.DeviceId.OUI, ProductClass: d.DeviceId.ProductClass,
		LastInform: d.LastInform, JSON: b,
	})
}

// LoadDevices returns every recorded device.
func (r StoreRegistry) LoadDevices(ctx context.Context) ([]acs.Device, error) {
	rows, err := r.Store.ACSDevices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]acs.Device, 0, len(rows))
	for _, row := range rows {
		var d acs.Device
		if err := json.Unmarshal(row.JSON, &d); err != nil {
			return nil, fmt.Errorf("registry: decode %s: %w", row.ID, err)
		}
		out = append(out, d)
	}
	return out, nil
}
