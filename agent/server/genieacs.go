package server

// The remote-support API over the operator's GenieACS (acs.kind: genieacs):
// GenieACS runs the CWMP sessions; the API reaches the devices through its
// NBI, and keeps a periodically refreshed list of them for the device list,
// the search and the metrics.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/genieacs"
)

// DefaultGenieACSRefresh is how often GenieACSDevices reads the device list
// again.
const DefaultGenieACSRefresh = time.Minute

// DefaultGenieACSSnapshot is GenieACSDevices.MaxSnapshot's default.
const DefaultGenieACSSnapshot = 100_000

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
// connection request); the device list, its search and the device counts
// are GenieACS queries; and a snapshot of up to MaxSnapshot devices, read
// at Load and every Refresh, serves the selections by serial number.
// Subscribe gives no Informs: GenieACS receives them.
type GenieACSDevices struct {
	*genieacs.Client
	// Refresh, if zero, is DefaultGenieACSRefresh.
	Refresh time.Duration
	// MaxSnapshot bounds the devices kept in memory for the selections by
	// serial number (fleet serial_prefix, /probe by serial); 0 means
	// DefaultGenieACSSnapshot. The device list, its search and the counts
	// always ask GenieACS, and a GenieACS query selects a fleet of any size.
	MaxSnapshot int
	// Logger, if nil, discards.
	Logger *slog.Logger

	mu     sync.RWMutex
	byID   map[string]acs.Device
	loaded time.Time
	cc     countsCache

	once     sync.Once
	loadedCh chan struct{}
}

func (g *GenieACSDevices) log() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

// Load reads the devices' summaries from GenieACS, a page at a time, up
// to MaxSnapshot of them (the most recently seen first).
func (g *GenieACSDevices) Load(ctx context.Context) error {
	most := g.MaxSnapshot
	if most <= 0 {
		most = DefaultGenieACSSnapshot
	}
	byID := map[string]acs.Device{}
	for skip := 0; skip < most; skip += genieacsPage {
		ds, total, err := g.Client.Devices(ctx, genieacs.Query{Projection: genieacsProjection, Sort: `{"_lastInform":-1,"_id":1}`,
			Skip: skip, Limit: min(genieacsPage, most-skip)})
		if err != nil {
			return fmt.Errorf("read GenieACS's devices: %w", err)
		}
		for _, d := range ds {
			byID[d.ID] = d
		}
		if len(ds) == 0 || len(byID) >= total {
			break
		}
		if len(byID) >= most {
			g.log().Warn("GenieACS manages more devices than serve keeps in memory: selections by serial number see the most recent; select others with a GenieACS query",
				"devices", total, "kept", len(byID))
			break
		}
	}
	g.mu.Lock()
	g.byID, g.loaded = byID, time.Now()
	g.mu.Unlock()
	return nil
}

// Loaded returns a channel closed once Run has read the snapshot the
// first time (or failed to, and logged it).
func (g *GenieACSDevices) Loaded() <-chan struct{} {
	g.once.Do(func() { g.loadedCh = make(chan struct{}) })
	return g.loadedCh
}

// Run reads the snapshot, then again every Refresh until ctx ends; a
// failed read keeps the last one and is logged. Call it once.
func (g *GenieACSDevices) Run(ctx context.Context) {
	every := g.Refresh
	if every <= 0 {
		every = DefaultGenieACSRefresh
	}
	lctx, cancel := context.WithTimeout(ctx, max(every, 5*time.Minute))
	if err := g.Load(lctx); err != nil {
		g.log().Warn("GenieACS device snapshot not read; selections by serial number see none until the next try", "err", err)
	}
	cancel()
	g.Loaded()
	close(g.loadedCh)
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

// genieacsCountsTTL is how long device counts read from GenieACS are
// reused (a scrape asks for known and online separately).
const genieacsCountsTTL = 10 * time.Second

// countsCache holds the last counts read from GenieACS.
type countsCache struct {
	mu            sync.Mutex
	at            time.Time
	known, online int
}

// counts returns how many devices GenieACS manages and how many informed
// since onlineSince, with two HEAD requests, reused for genieacsCountsTTL.
// A failed read keeps the last counts.
func (g *GenieACSDevices) counts(onlineSince time.Time) (known, online int) {
	g.cc.mu.Lock()
	defer g.cc.mu.Unlock()
	if time.Since(g.cc.at) < genieacsCountsTTL {
		return g.cc.known, g.cc.online
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k, err := g.Client.Count(ctx, "")
	if err == nil {
		var o int
		o, err = g.Client.Count(ctx, genieacs.Equal("_lastInform", map[string]string{"$gte": genieacsTime(onlineSince)}))
		if err == nil {
			g.cc.known, g.cc.online, g.cc.at = k, o, time.Now()
		}
	}
	if err != nil {
		g.log().Warn("GenieACS device counts not read; keeping the last", "err", err)
	}
	return g.cc.known, g.cc.online
}

// genieacsTime is t as GenieACS writes dates.
func genieacsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// errNotSearchable is a device-list filter GenieACS cannot answer.
var errNotSearchable = errors.New("not searchable over GenieACS")

// search answers a device-list query from GenieACS itself, so that the
// list scales with GenieACS rather than with this process's memory: the
// filters become a GenieACS query, the page its skip and limit, the total
// its count. onlineSince is when a device must have informed to be online.
func (g *GenieACSDevices) search(ctx context.Context, q *deviceQuery, onlineSince time.Time) ([]acs.Device, int, error) {
	var and []map[string]any
	eq := func(field string, v any) { and = append(and, map[string]any{field: v}) }
	if q.kind != "" {
		return nil, 0, fmt.Errorf("kind: %w (GenieACS does not know fieldagent's driver kinds)", errNotSearchable)
	}
	if q.serial != "" {
		eq("_deviceId._SerialNumber", q.serial)
	}
	if q.model != "" {
		and = append(and, map[string]any{"$or": []map[string]any{
			{"_deviceId._ProductClass": q.model}, {"InternetGatewayDevice.DeviceInfo.ModelName": q.model}, {"Device.DeviceInfo.ModelName": q.model},
		}})
	}
	if q.text != "" {
		re := map[string]string{"$regex": regexp.QuoteMeta(q.text), "$options": "i"}
		and = append(and, map[string]any{"$or": []map[string]any{
			{"_id": re}, {"_deviceId._SerialNumber": re}, {"_deviceId._ProductClass": re}, {"_deviceId._Manufacturer": re},
		}})
	}
	if q.loid != "" {
		eq("InternetGatewayDevice.X_CT-COM_UserInfo.UserName", q.loid)
	}
	if q.accountIDs != nil {
		ids := make([]string, 0, len(q.accountIDs))
		for id := range q.accountIDs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		eq("_id", map[string]any{"$in": ids})
	}
	if !q.seenSince.IsZero() {
		eq("_lastInform", map[string]string{"$gte": genieacsTime(q.seenSince)})
	}
	if !q.seenBefore.IsZero() {
		eq("_lastInform", map[string]string{"$lt": genieacsTime(q.seenBefore)})
	}
	if q.online != nil {
		op := "$lt"
		if *q.online {
			op = "$gte"
		}
		eq("_lastInform", map[string]string{op: genieacsTime(onlineSince)})
	}
	filter := ""
	switch len(and) {
	case 0:
	case 1:
		b, _ := json.Marshal(and[0])
		filter = string(b)
	default:
		b, _ := json.Marshal(map[string]any{"$and": and})
		filter = string(b)
	}
	return g.Client.Devices(ctx, genieacs.Query{Filter: filter, Projection: genieacsProjection, Sort: `{"_id":1}`, Skip: q.offset, Limit: q.limit})
}
