package server

// The remote-support API over the operator's GenieACS (acs.kind: genieacs):
// GenieACS runs the CWMP sessions; the API reaches the devices through its
// NBI, and keeps a periodically refreshed list of them for the device list,
// the search and the metrics.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/genieacs"
)

// DefaultGenieACSRefresh is how often GenieACSDevices reads the device list
// again.
const DefaultGenieACSRefresh = time.Minute

// genieacsPage is how many device documents one NBI read returns.
const genieacsPage = 1000

// genieacsProjection is what the list keeps of a device: its identity, its
// times, and the parameters the API's list and search read (model, periodic
// interval, LOID), in both data-model roots.
var genieacsProjection = []string{
	"_id", "_deviceId", "_lastInform", "_registered", "_lastBoot",
	"InternetGatewayDevice.DeviceInfo.ModelName", "Device.DeviceInfo.ModelName",
	"InternetGatewayDevice.ManagementServer.PeriodicInformInterval", "Device.ManagementServer.PeriodicInformInterval",
	"InternetGatewayDevice.ManagementServer.ConnectionRequestURL", "Device.ManagementServer.ConnectionRequestURL",
	"InternetGatewayDevice.X_CT-COM_UserInfo.UserName",
}

// GenieACSDevices is the API's ACS when the operator's GenieACS manages
// the devices: the TR-069 methods are the NBI client's (tasks with a
// connection request), and the device list is a snapshot of GenieACS's,
// read at Load and then every Refresh. Subscribe gives no Informs: GenieACS
// receives them.
type GenieACSDevices struct {
	*genieacs.Client
	// Refresh, if zero, is DefaultGenieACSRefresh.
	Refresh time.Duration
	// Logger, if nil, discards.
	Logger *slog.Logger

	mu     sync.RWMutex
	byID   map[string]acs.Device
	loaded time.Time
}

func (g *GenieACSDevices) log() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

// Load reads every device's summary from GenieACS, a page at a time.
func (g *GenieACSDevices) Load(ctx context.Context) error {
	byID := map[string]acs.Device{}
	for skip := 0; ; skip += genieacsPage {
		ds, total, err := g.Client.Devices(ctx, genieacs.Query{Projection: genieacsProjection, Sort: `{"_id":1}`, Skip: skip, Limit: genieacsPage})
		if err != nil {
			return fmt.Errorf("read GenieACS's devices: %w", err)
		}
		for _, d := range ds {
			byID[d.ID] = d
		}
		if len(ds) < genieacsPage || len(byID) >= total {
			break
		}
	}
	g.mu.Lock()
	g.byID, g.loaded = byID, time.Now()
	g.mu.Unlock()
	return nil
}

// Run reloads the list every Refresh until ctx ends; a failed read keeps
// the last list and is logged.
func (g *GenieACSDevices) Run(ctx context.Context) {
	every := g.Refresh
	if every <= 0 {
		every = DefaultGenieACSRefresh
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			lctx, cancel := context.WithTimeout(ctx, every)
			if err := g.Load(lctx); err != nil {
				g.log().Warn("GenieACS device list not refreshed; keeping the last one", "err", err)
			}
			cancel()
		}
	}
}

// Devices returns the last list read, sorted by ID.
func (g *GenieACSDevices) Devices() []acs.Device {
	g.mu.RLock()
	out := make([]acs.Device, 0, len(g.byID))
	for _, d := range g.byID {
		out = append(out, d)
	}
	g.mu.RUnlock()
	slices.SortFunc(out, func(a, b acs.Device) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Device returns a device of the last list, or reads it from GenieACS (a
// device registered since), adding it to the list.
func (g *GenieACSDevices) Device(id string) (acs.Device, bool) {
	g.mu.RLock()
	d, ok := g.byID[id]
	g.mu.RUnlock()
	if ok {
		return d, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, _, err := g.Client.Devices(ctx, genieacs.Query{Filter: genieacs.Equal("_id", id), Projection: genieacsProjection, Limit: 1})
	if err != nil || len(ds) == 0 {
		if err != nil {
			g.log().Warn("GenieACS device not read", "device", id, "err", err)
		}
		return acs.Device{}, false
	}
	g.mu.Lock()
	if g.byID == nil {
		g.byID = map[string]acs.Device{}
	}
	g.byID[id] = ds[0]
	g.mu.Unlock()
	return ds[0], true
}

// Subscribe returns a channel closed when ctx ends: GenieACS, not this
// process, receives the devices' Informs.
func (g *GenieACSDevices) Subscribe(ctx context.Context) <-chan acs.InformEvent {
	ch := make(chan acs.InformEvent)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}

// Select returns the IDs of every device a GenieACS query (MongoDB-style
// JSON) selects, read from GenieACS now.
func (g *GenieACSDevices) Select(ctx context.Context, query string) ([]string, error) {
	var ids []string
	for skip := 0; ; skip += genieacsPage {
		ds, total, err := g.Client.Devices(ctx, genieacs.Query{Filter: query, Projection: []string{"_id", "_deviceId"}, Sort: `{"_id":1}`, Skip: skip, Limit: genieacsPage})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		if len(ds) < genieacsPage || len(ids) >= total {
			return ids, nil
		}
	}
}

// querySelector is an ACS that can select devices by a query of its own
// (GenieACSDevices).
type querySelector interface {
	Select(ctx context.Context, query string) ([]string, error)
}
