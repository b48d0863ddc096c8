package genieacs

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Sentinel errors returned (wrapped) by Client methods. Check them with
// errors.Is.
var (
	// ErrUnreachable means the NBI itself could not be reached (connection
	// refused, DNS, TLS, a broken response): check the NBI URL and that
	// genieacs-nbi runs.
	ErrUnreachable = errors.New("genieacs: NBI unreachable")
	// ErrDeviceOffline means GenieACS stored the task but the device did
	// not run it: the connection request failed ("Device is offline") or
	// the session did not end within the timeout ("Task queued but not
	// processed"). The error is a *TaskError; it also matches
	// acs.ErrConnectionRequest, the embedded ACS's "could not reach the
	// device".
	ErrDeviceOffline = errors.New("genieacs: the device did not run the task (offline or not answering in time)")
	// ErrTaskFaulted means the task ended in a GenieACS fault; the error is
	// a *TaskError and, for a CWMP fault of the device, also wraps the
	// *cwmp.Fault the embedded ACS would have returned.
	ErrTaskFaulted = errors.New("genieacs: task faulted")
	// ErrNotFound means the NBI answered 404 (no such device, task, fault
	// or file). A missing device also matches acs.ErrUnknownDevice.
	ErrNotFound = errors.New("genieacs: not found")
	// ErrBadRequest means the NBI answered 400 (e.g. a query that is not
	// JSON); the error carries GenieACS's message.
	ErrBadRequest = errors.New("genieacs: bad request")
	// ErrUnauthorized means the NBI answered 401 or 403: check the NBI
	// credentials.
	ErrUnauthorized = errors.New("genieacs: NBI credentials rejected")
	// ErrServer means the NBI answered with another non-2xx status.
	ErrServer = errors.New("genieacs: NBI error")
	// ErrBadResponse means the NBI answered 2xx with a body this client
	// cannot read.
	ErrBadResponse = errors.New("genieacs: unreadable NBI response")
	// ErrNoInstance means an addObject task succeeded but the device
	// document does not show exactly one new instance.
	ErrNoInstance = errors.New("genieacs: the new object instance cannot be told from the device document")
	// ErrUnknownTransfer means WaitTransferComplete was asked for a command
	// key that no Download through this Client started.
	ErrUnknownTransfer = errors.New("genieacs: no download with this command key was started through this client")
	// ErrNoDiagnostics means WaitInform was asked for
	// "8 DIAGNOSTICS COMPLETE" while no DiagnosticsState of the device
	// reads Requested.
	ErrNoDiagnostics = errors.New("genieacs: no diagnostics test is pending on the device")
	// ErrPollLimit means a wait polled the device MaxPolls times without
	// seeing the state it waited for.
	ErrPollLimit = errors.New("genieacs: gave up polling the device")
)

// HTTPError is a non-2xx answer of the NBI. It matches ErrNotFound,
// ErrBadRequest, ErrUnauthorized or ErrServer by status, and
// acs.ErrUnknownDevice for GenieACS's 404 "No such device".
type HTTPError struct {
	Method string
	// Path is the request path without the query.
	Path   string
	Status int
	// Reason is the status line's reason phrase.
	Reason string
	// Message is GenieACS's plain-text body, trimmed and cut to 512 bytes.
	Message string
}

// Error names the request, the status and GenieACS's message.
func (e *HTTPError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Reason
	}
	hint := ""
	switch {
	case e.unknownDevice():
		hint = ": the device has never informed GenieACS (check the device id: OUI-ProductClass-SerialNumber)"
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		hint = ": check the NBI credentials"
	case e.Status == http.StatusBadRequest:
		hint = ": GenieACS rejected the request"
	}
	return fmt.Sprintf("genieacs: %s %s: HTTP %d %s: %s%s", e.Method, e.Path, e.Status, e.Reason, msg, hint)
}

func (e *HTTPError) unknownDevice() bool {
	return e.Status == http.StatusNotFound && strings.EqualFold(strings.TrimSpace(e.Message), "No such device")
}

// Unwrap returns the sentinels the status maps to.
func (e *HTTPError) Unwrap() []error {
	switch {
	case e.unknownDevice():
		return []error{ErrNotFound, acs.ErrUnknownDevice}
	case e.Status == http.StatusNotFound:
		return []error{ErrNotFound}
	case e.Status == http.StatusBadRequest:
		return []error{ErrBadRequest}
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return []error{ErrUnauthorized}
	}
	return []error{ErrServer}
}

// Outcome is what GenieACS did with a task, from the status and reason
// phrase of its answer.
type Outcome string

// Task outcomes.
const (
	// OutcomeDone: 200, the device ran the task in a session that ended.
	OutcomeDone Outcome = "done"
	// OutcomeQueued: 202 "Accepted", stored without a connection request.
	OutcomeQueued Outcome = "queued"
	// OutcomeOffline: 202 "Device is offline", the connection request failed.
	OutcomeOffline Outcome = "offline"
	// OutcomeNotProcessed: 202 "Task queued but not processed", the session
	// did not end within the timeout.
	OutcomeNotProcessed Outcome = "not processed"
	// OutcomeFaulted: 202 "Task faulted", the task ended in a fault.
	OutcomeFaulted Outcome = "faulted"
)

// TaskError is a task that GenieACS accepted but that did not run to the
// end. It matches ErrDeviceOffline and acs.ErrConnectionRequest for
// OutcomeOffline and OutcomeNotProcessed, ErrTaskFaulted (and errors.As a
// *cwmp.Fault for a CWMP fault) for OutcomeFaulted, and the cleanup's
// error when deleting the task or fault failed.
type TaskError struct {
	DeviceID string
	// Task is the stored task as GenieACS answered it (with its ID).
	Task    Task
	Outcome Outcome
	// Reason is the reason phrase GenieACS answered with.
	Reason string
	// Fault is the GenieACS fault of a faulted task; nil if it could not be
	// read.
	Fault *Fault
	// CWMP is the device's CWMP fault (Fault.Code "cwmp.NNNN"); nil for
	// GenieACS's own faults (timeouts, scripts).
	CWMP *cwmp.Fault
	// Kept is true when the task was left queued on GenieACS (it runs at
	// the device's next session); false when it was deleted.
	Kept bool
	// CleanupErr is why deleting the task or the fault failed, if it did.
	CleanupErr error
}

// Error says what happened to the task and what became of it.
func (e *TaskError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "genieacs: %s task on device %s", e.Task.Name, e.DeviceID)
	if e.Task.ID != "" {
		fmt.Fprintf(&b, " (task %s)", e.Task.ID)
	}
	switch e.Outcome {
	case OutcomeOffline:
		b.WriteString(": device is offline: GenieACS's connection request failed; check the device is powered and its ConnectionRequestURL is reachable from GenieACS")
	case OutcomeNotProcessed:
		b.WriteString(": the device did not run it in time (GenieACS: Task queued but not processed)")
	case OutcomeFaulted:
		switch {
		case e.CWMP != nil:
			fmt.Fprintf(&b, ": %v", e.CWMP)
		case e.Fault != nil:
			fmt.Fprintf(&b, ": fault %s: %s", e.Fault.Code, e.Fault.Message)
		default:
			b.WriteString(": faulted, and the fault could not be read")
		}
	default:
		fmt.Fprintf(&b, ": %s (%s)", e.Outcome, e.Reason)
	}
	switch {
	case e.CleanupErr != nil && e.Outcome == OutcomeFaulted:
		fmt.Fprintf(&b, "; deleting the fault failed, the device's tasks stay blocked until it is deleted: %v", e.CleanupErr)
	case e.CleanupErr != nil:
		fmt.Fprintf(&b, "; deleting the queued task failed, it runs at the device's next session: %v", e.CleanupErr)
	case e.Outcome == OutcomeFaulted:
		b.WriteString("; the fault and its task were deleted")
	case e.Kept:
		b.WriteString("; the task stays queued for the device's next session")
	default:
		b.WriteString("; the queued task was deleted")
	}
	return b.String()
}

// Unwrap returns the sentinels of the outcome, the CWMP fault and the
// cleanup error.
func (e *TaskError) Unwrap() []error {
	var errs []error
	switch e.Outcome {
	case OutcomeOffline, OutcomeNotProcessed:
		errs = append(errs, ErrDeviceOffline, acs.ErrConnectionRequest)
	case OutcomeFaulted:
		errs = append(errs, ErrTaskFaulted)
		if e.CWMP != nil {
			errs = append(errs, e.CWMP)
		}
	}
	if e.CleanupErr != nil {
		errs = append(errs, e.CleanupErr)
	}
	return errs
}
