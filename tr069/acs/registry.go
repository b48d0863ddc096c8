package acs

import (
	"context"
	"fmt"
)

// Registry persists the device registry. It is declared here, with the
// two methods the Server calls; the agent stores devices in its SQLite
// store through an adapter.
//
// Device marshals to JSON, but ConnectionRequestPassword marshals as
// "******" so that no JSON output shows it: a Registry that must keep it
// stores ConnectionRequestPassword.Reveal() on its own (or leaves it to
// Config.ConnectionRequestAuth).
type Registry interface {
	// SaveDevice creates or replaces the record of d.ID.
	SaveDevice(ctx context.Context, d Device) error
	// LoadDevices returns every saved device.
	LoadDevices(ctx context.Context) ([]Device, error)
}

// Start loads the devices saved in Config.Registry, so that Do and the
// Wait methods know them before they inform again. A device that has
// informed since is kept as it is. Start with a nil Registry does nothing;
// it may be called again after an error. ListenAndServe and Serve call it.
func (s *Server) Start(ctx context.Context) error {
	if s.cfg.Registry == nil {
		return nil
	}
	devs, err := s.cfg.Registry.LoadDevices(ctx)
	if err != nil {
		return fmt.Errorf("%w: loading devices: %w", ErrRegistry, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range devs {
		if d.ID == "" {
			continue
		}
		if cur, ok := s.devices[d.ID]; ok && !cur.dev.LastInform.Before(d.LastInform) {
			continue
		}
		if cur, ok := s.devices[d.ID]; ok {
			cur.dev = copyDevice(d)
			continue
		}
		s.devices[d.ID] = &device{dev: copyDevice(d), wake: make(chan struct{}, 1)}
		n++
	}
	s.broadcast()
	s.log.Info("device registry loaded", "devices", n)
	return nil
}

// markDirty schedules deviceID to be saved to the Registry by the
// background saver, which coalesces repeated changes of a device so that
// a slow store never holds up a CWMP session. Caller holds s.mu.
func (s *Server) markDirty(deviceID string) {
	if s.cfg.Registry == nil {
		return
	}
	s.dirty[deviceID] = struct{}{}
	if s.saving == nil {
		s.saving = make(chan struct{})
		go s.saveLoop()
	}
}

func (s *Server) saveLoop() {
	for {
		s.mu.Lock()
		if len(s.dirty) == 0 {
			close(s.saving)
			s.saving = nil
			s.mu.Unlock()
			return
		}
		batch := make([]Device, 0, len(s.dirty))
		for id := range s.dirty {
			if d, ok := s.devices[id]; ok {
				batch = append(batch, copyDevice(d.dev))
			}
			delete(s.dirty, id)
		}
		s.mu.Unlock()
		for _, d := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RegistryTimeout)
			err := s.cfg.Registry.SaveDevice(ctx, d)
			cancel()
			if err != nil {
				s.log.Warn("saving device to the registry failed", "device", d.ID, "err", err)
			}
		}
	}
}

// Flush waits until every device change so far has been handed to the
// Registry (saved or failed and logged). It returns ctx's error if ctx
// ends first.
func (s *Server) Flush(ctx context.Context) error {
	s.mu.Lock()
	ch := s.saving
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("acs: flushing the device registry: %w", ctx.Err())
	}
}
