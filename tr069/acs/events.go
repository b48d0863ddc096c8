package acs

import (
	"context"
	"fmt"

	"time"

	"fieldagent/tr069/cwmp"
)

// Inform event codes (TR-069 Table 7) and China Telecom's vendor events.
const (
	EventBootstrap           = "0 BOOTSTRAP"                     // EventBootstrap: first contact, or after a factory reset.
	EventBoot                = "1 BOOT"                          // EventBoot: the CPE (re)started.
	EventPeriodic            = "2 PERIODIC"                      // EventPeriodic: periodic inform.
	EventScheduled           = "3 SCHEDULED"                     // EventScheduled: requested by ScheduleInform.
	EventValueChange         = "4 VALUE CHANGE"                  // EventValueChange: a parameter with notification changed.
	EventKicked              = "5 KICKED"                        // EventKicked: web-portal kick.
	EventConnectionRequest   = "6 CONNECTION REQUEST"            // EventConnectionRequest: answering a connection request.
	EventTransferComplete    = "7 TRANSFER COMPLETE"             // EventTransferComplete: a TransferComplete follows.
	EventDiagnosticsComplete = "8 DIAGNOSTICS COMPLETE"          // EventDiagnosticsComplete: a TR-143/diagnostics test finished.
	EventRequestDownload     = "9 REQUEST DOWNLOAD"              // EventRequestDownload: the CPE will call RequestDownload.
	EventAutonomousTransfer  = "10 AUTONOMOUS TRANSFER COMPLETE" // EventAutonomousTransfer: an AutonomousTransferComplete follows.
	EventMReboot             = "M Reboot"                        // EventMReboot: a Reboot RPC caused this boot (CommandKey set).
	EventMScheduleInform     = "M ScheduleInform"                // EventMScheduleInform: the ScheduleInform RPC's inform.
	EventMDownload           = "M Download"                      // EventMDownload: a Download RPC completed (CommandKey set).
	EventMUpload             = "M Upload"                        // EventMUpload: an Upload RPC completed.
	EventCTBind              = "X CT-COM BIND"                   // EventCTBind: China Telecom: gateway bound to a LOID/account.
	EventCTSTBBind           = "X CT-COM STBBIND"                // EventCTSTBBind: China Telecom: set-top box bound.
	EventCTAccountChange     = "X CT-COM ACCOUNTCHANGE"          // EventCTAccountChange: China Telecom: account changed.
	EventCTAlarm             = "X CT-COM ALARM"                  // EventCTAlarm: China Telecom: device alarm raised.
)

// InformEvent is one Inform, as delivered by Subscribe.
type InformEvent struct {
	DeviceID string
	Events   []cwmp.EventStruct
	At       time.Time
	// Params is the Inform's ParameterList; subscribers share the map and
	// must not modify it.
	Params map[string]string
}

// Subscribe returns a channel that receives every Inform from now until
// ctx ends, when it is closed. Its buffer is Config.EventBuffer: when a
// subscriber falls behind, events are dropped (never blocking a CWMP
// session) and counted in DroppedEvents.
func (s *Server) Subscribe(ctx context.Context) <-chan InformEvent {
	sub := &subscriber{ch: make(chan InformEvent, s.cfg.EventBuffer)}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, sub)
		close(sub.ch)
	})
	return sub.ch
}

// DroppedEvents returns how many Inform events were dropped because a
// subscriber's buffer was full.
func (s *Server) DroppedEvents() uint64 { return s.dropped.Load() }

// publish sends an Inform to every subscriber. Caller holds s.mu.
func (s *Server) publish(id string, events []cwmp.EventStruct, at time.Time, params map[string]string) {
	if len(s.subs) == 0 {
		return
	}
	p := make(map[string]string, len(params))
	for k, v := range params {
		p[k] = v
	}
	ev := InformEvent{DeviceID: id, Events: append([]cwmp.EventStruct(nil), events...), At: at, Params: p}
	for sub := range s.subs {
		select {
		case sub.ch <- ev:
		default:
			s.dropped.Add(1)
		}
	}
}

// WaitTransferComplete returns the TransferComplete that deviceID sent for
// commandKey (one of the last 16 received counts), or waits for it, e.g.
// after Download. An AutonomousTransferComplete (a transfer the CPE
// started itself) counts with the empty commandKey. If the transfer failed it returns the TransferComplete
// with an error that matches ErrTransferFailed and wraps the *cwmp.Fault.
// It returns ErrUnknownDevice for a device that never informed, and ctx's
// error when ctx ends first.
func (s *Server) WaitTransferComplete(ctx context.Context, deviceID, commandKey string) (cwmp.TransferComplete, error) {
	for {
		s.mu.Lock()
		d, ok := s.devices[deviceID]
		if !ok {
			s.mu.Unlock()
			return cwmp.TransferComplete{}, fmt.Errorf("%w: %s", ErrUnknownDevice, deviceID)
		}
		for i := len(d.transfers) - 1; i >= 0; i-- {
			tc := d.transfers[i]
			if tc.CommandKey != commandKey {
				continue
			}
			s.mu.Unlock()
			if tc.FaultStruct.FaultCode != 0 {
				f := cwmp.NewFault(tc.FaultStruct.FaultCode, tc.FaultStruct.FaultString)
				return tc, fmt.Errorf("%w: device %s, command key %q: %w", ErrTransferFailed, deviceID, commandKey, f)
			}
			return tc, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return cwmp.TransferComplete{}, fmt.Errorf("acs: waiting for TransferComplete %q from %s: %w", commandKey, deviceID, ctx.Err())
		}
	}
}
