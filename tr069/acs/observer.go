package acs

import (
	"errors"
	"time"
)

// errSessionDone is the reason of a session that ended normally: the CPE
// had nothing more to send and the ACS nothing more to ask. Observers see
// it as a nil error.
var errSessionDone = errors.New("session ended")

// SessionObserver is told what the ACS's CWMP sessions do, for metrics
// (agent/server implements it with Prometheus; the acs package imports no
// metrics library). Set it as Config.Observer; nil observes nothing.
//
// The Server calls it synchronously, SessionStarted, SessionEnded and Fault
// with its lock held: an implementation must return quickly and must not
// call back into the Server.
type SessionObserver interface {
	// SessionStarted is called when an Inform from deviceID opens a session.
	SessionStarted(deviceID string)
	// SessionEnded is called once per session, took after its Inform. err
	// is nil when the session ended normally (the CPE's empty POST was
	// answered with 204 and nothing was queued); otherwise it says why the
	// session ended early: the idle timeout, the CPE's connection lost with
	// a request outstanding, a new Inform from the CPE, or the CPE's HTTP
	// request cancelled.
	SessionEnded(deviceID string, took time.Duration, err error)
	// Fault is called when the CPE answers a request of the ACS (method,
	// e.g. "SetParameterValues") with a CWMP fault, and when a
	// TransferComplete or AutonomousTransferComplete reports a failed
	// transfer (method is then that message's name). code is the fault code
	// (e.g. 9007).
	Fault(deviceID, method string, code int)
	// ConnectionRequest is called when a connection request to deviceID
	// ends, took after it started. err is nil when the CPE accepted it;
	// otherwise it is a *ConnectionRequestError (whose Reason says what
	// failed), or the context's error when the caller gave up first.
	ConnectionRequest(deviceID string, took time.Duration, err error)
}

// nopObserver is the SessionObserver of a Config without one.
type nopObserver struct{}

func (nopObserver) SessionStarted(string)                          {}
func (nopObserver) SessionEnded(string, time.Duration, error)      {}
func (nopObserver) Fault(string, string, int)                      {}
func (nopObserver) ConnectionRequest(string, time.Duration, error) {}
