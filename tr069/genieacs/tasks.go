package genieacs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fieldagent/tr069/cwmp"
)

// Task names GenieACS accepts.
const (
	TaskGetParameterValues = "getParameterValues"
	TaskSetParameterValues = "setParameterValues"
	TaskRefreshObject      = "refreshObject"
	TaskAddObject          = "addObject"
	TaskDeleteObject       = "deleteObject"
	TaskReboot             = "reboot"
	TaskFactoryReset       = "factoryReset"
	TaskDownload           = "download"
)

// Task is a GenieACS task: what to send in POST /devices/<id>/tasks, and
// what GenieACS answers and lists (with ID, Device and Timestamp).
type Task struct {
	// ID is _id, GenieACS's id of a stored task.
	ID   string
	Name string
	// Device is the device id of a stored task.
	Device string
	// Timestamp is when GenieACS stored the task.
	Timestamp time.Time
	// ParameterNames are the names of a getParameterValues task.
	ParameterNames []string
	// ParameterValues are the values of a setParameterValues task.
	ParameterValues []cwmp.ParameterValueStruct
	// ObjectName is the object of refreshObject, addObject and deleteObject
	// (no trailing dot).
	ObjectName string
	// FileType, FileName and TargetFileName are a download task's.
	FileType, FileName, TargetFileName string
}

type taskJSON struct {
	ID              string            `json:"_id,omitempty"`
	Name            string            `json:"name"`
	Device          string            `json:"device,omitempty"`
	Timestamp       string            `json:"timestamp,omitempty"`
	ParameterNames  []string          `json:"parameterNames,omitempty"`
	ParameterValues []json.RawMessage `json:"parameterValues,omitempty"`
	ObjectName      string            `json:"objectName,omitempty"`
	FileType        string            `json:"fileType,omitempty"`
	FileName        string            `json:"fileName,omitempty"`
	TargetFileName  string            `json:"targetFileName,omitempty"`
}

// MarshalJSON writes the task as GenieACS takes it: parameterValues as
// [name, value, xsdType] triples with numbers and booleans typed.
func (t Task) MarshalJSON() ([]byte, error) {
	j := taskJSON{ID: t.ID, Name: t.Name, Device: t.Device, ParameterNames: t.ParameterNames,
		ObjectName: t.ObjectName, FileType: t.FileType, FileName: t.FileName, TargetFileName: t.TargetFileName}
	if !t.Timestamp.IsZero() {
		j.Timestamp = t.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	for _, p := range t.ParameterValues {
		typ := p.Type
		if typ == "" {
			typ = "xsd:string"
		}
		b, err := json.Marshal([]any{p.Name, jsonValue(typ, p.Value), typ})
		if err != nil {
			return nil, err
		}
		j.ParameterValues = append(j.ParameterValues, b)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a task as GenieACS answers or lists it.
func (t *Task) UnmarshalJSON(b []byte) error {
	var j taskJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = Task{ID: j.ID, Name: j.Name, Device: j.Device, ParameterNames: j.ParameterNames,
		ObjectName: j.ObjectName, FileType: j.FileType, FileName: j.FileName, TargetFileName: j.TargetFileName}
	if j.Timestamp != "" {
		t.Timestamp, _ = time.Parse(time.RFC3339Nano, j.Timestamp)
	}
	for i, raw := range j.ParameterValues {
		var triple []any
		if err := unmarshal(raw, &triple); err != nil || len(triple) < 2 {
			return fmt.Errorf("parameterValues[%d] is not a [name, value, type] triple", i)
		}
		name, ok := triple[0].(string)
		if !ok {
			return fmt.Errorf("parameterValues[%d]: the name is not a string", i)
		}
		p := cwmp.ParameterValueStruct{Name: name, Type: "xsd:string"}
		if len(triple) > 2 {
			if s, ok := triple[2].(string); ok && s != "" {
				p.Type = s
			}
		}
		p.Value = formatValue(triple[1], p.Type)
		t.ParameterValues = append(t.ParameterValues, p)
	}
	return nil
}

// jsonValue is the JSON value GenieACS stores for a value of xsd type typ:
// a number for the integer types, a boolean for xsd:boolean, else the
// string. A value that does not parse as its type is sent as a string
// (the device answers 9007).
func jsonValue(typ, v string) any {
	s := strings.TrimSpace(v)
	switch strings.TrimPrefix(typ, "xsd:") {
	case "int", "long", "unsignedInt", "unsignedLong":
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return json.Number(s)
		}
		if _, err := strconv.ParseUint(s, 10, 64); err == nil {
			return json.Number(s)
		}
	case "boolean":
		switch strings.ToLower(s) {
		case "1", "true":
			return true
		case "0", "false":
			return false
		}
	}
	return v
}

// ParseTask decodes one task as GenieACS answers or lists it.
func ParseTask(raw []byte) (Task, error) {
	var t Task
	if err := json.Unmarshal(raw, &t); err != nil {
		return Task{}, fmt.Errorf("genieacs: task: %w", err)
	}
	return t, nil
}

// PostOptions tunes one PostTask.
type PostOptions struct {
	// NoConnectionRequest queues the task for the device's next session
	// (GenieACS answers 202 Accepted) instead of waking the device.
	NoConnectionRequest bool
	// NoWait sends timeout=0: GenieACS wakes the device and answers at once
	// with 202 "Task queued but not processed"; the task is then never
	// deleted, the device runs it in the session just requested.
	NoWait bool
	// Timeout, if positive, replaces Options.TaskTimeout for this task.
	Timeout time.Duration
}

// PostTask stores t for the device and, unless o says otherwise, wakes the
// device with a connection request and waits for its session. It returns
// the stored task with its ID and nil when GenieACS answered 200 (done) or
// 202 Accepted (queued without a connection request). Any other 202 is a
// *TaskError (see the package documentation); 404 "No such device"
// matches acs.ErrUnknownDevice.
func (c *Client) PostTask(ctx context.Context, deviceID string, t Task, o PostOptions) (Task, error) {
	body, err := json.Marshal(t)
	if err != nil {
		return Task{}, fmt.Errorf("genieacs: %s task for %s: %w", t.Name, deviceID, err)
	}
	r := request{method: http.MethodPost, path: "/devices/" + seg(deviceID) + "/tasks", body: body,
		header: map[string]string{"Content-Type": "application/json"}}
	if !o.NoConnectionRequest {
		timeout := time.Duration(0)
		if !o.NoWait {
			want := o.Timeout
			if want <= 0 {
				want = c.opt.TaskTimeout
			}
			if timeout, err = taskTimeout(ctx, want); err != nil {
				return Task{}, fmt.Errorf("genieacs: %s task for %s: %w", t.Name, deviceID, err)
			}
		}
		r.query = "connection_request&timeout=" + strconv.FormatInt(timeout.Milliseconds(), 10)
		r.timeout = timeout + c.opt.RequestTimeout
	}
	resp, err := c.call(ctx, r)
	if err != nil {
		return Task{}, err
	}
	stored := t
	if len(resp.body) > 0 {
		if stored, err = ParseTask(resp.body); err != nil {
			return Task{}, fmt.Errorf("genieacs: %s task for %s: %w: %w", t.Name, deviceID, ErrBadResponse, err)
		}
	}
	if resp.status == http.StatusOK {
		return stored, nil
	}
	switch {
	case strings.EqualFold(resp.reason, "Task faulted"):
		return stored, c.taskFaulted(ctx, deviceID, stored, resp.reason)
	case strings.EqualFold(resp.reason, "Device is offline"):
		return stored, c.notRun(ctx, deviceID, stored, OutcomeOffline, resp.reason, o.NoWait)
	case o.NoConnectionRequest && resp.status == http.StatusAccepted:
		return stored, nil
	default: // "Task queued but not processed", or a reason this client does not know
		return stored, c.notRun(ctx, deviceID, stored, OutcomeNotProcessed, resp.reason, o.NoWait)
	}
}

// taskTimeout cuts want to what is left of ctx's deadline, less a margin
// for GenieACS's answer (it checks the session every 500ms).
func taskTimeout(ctx context.Context, want time.Duration) (time.Duration, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return want, nil
	}
	left := time.Until(dl)
	left -= min(time.Second, left/4)
	if left < time.Millisecond {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("no time left before the deadline to run a task: %w", context.DeadlineExceeded)
	}
	return min(want, left.Truncate(time.Millisecond)), nil
}

// notRun deletes (or keeps) a task the device did not run.
func (c *Client) notRun(ctx context.Context, deviceID string, t Task, out Outcome, reason string, noWait bool) error {
	te := &TaskError{DeviceID: deviceID, Task: t, Outcome: out, Reason: reason, Kept: true}
	if noWait || c.opt.KeepQueuedTasks || t.ID == "" {
		return te
	}
	// Delete even when ctx has ended: nothing should stay queued behind us.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opt.RequestTimeout)
	defer cancel()
	if err := c.DeleteTask(dctx, t.ID); err != nil && !errors.Is(err, ErrNotFound) {
		te.CleanupErr = err
		c.log.Warn("deleting a task the device did not run failed", "device", deviceID, "task", t.ID, "err", err)
		return te
	}
	te.Kept = false
	return te
}

// taskFaulted reads the fault of a faulted task, converts it and deletes it
// (which also deletes the task).
func (c *Client) taskFaulted(ctx context.Context, deviceID string, t Task, reason string) error {
	te := &TaskError{DeviceID: deviceID, Task: t, Outcome: OutcomeFaulted, Reason: reason}
	if t.ID == "" {
		return te
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opt.RequestTimeout)
	defer cancel()
	id := deviceID + ":task_" + t.ID
	faults, _, err := c.Faults(dctx, Query{Filter: Equal("_id", id)})
	if err != nil {
		te.CleanupErr = fmt.Errorf("read fault %s: %w", id, err)
		return te
	}
	if len(faults) == 0 {
		return te
	}
	f := faults[0]
	te.Fault = &f
	te.CWMP = f.CWMP()
	if err := c.DeleteFault(dctx, f.ID); err != nil && !errors.Is(err, ErrNotFound) {
		te.CleanupErr = err
		c.log.Warn("deleting a task's fault failed", "device", deviceID, "fault", f.ID, "err", err)
	}
	return te
}

// Fault is a GenieACS fault (an element of GET /faults/).
type Fault struct {
	// ID is _id: "<device id>:<channel>", e.g. "…-000000:task_<task id>".
	ID      string          `json:"_id"`
	Device  string          `json:"device"`
	Channel string          `json:"channel"`
	Time    time.Time       `json:"timestamp"`
	Code    string          `json:"code"` // e.g. "cwmp.9000", "timeout"
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
	Retries int             `json:"retries"`
	// Provisions is the JSON text GenieACS stores (a string holding a JSON
	// array, e.g. `[["reboot"]]`).
	Provisions string `json:"provisions"`
}

// ParseFaults decodes a GET /faults/ body.
func ParseFaults(raw []byte) ([]Fault, error) {
	var out []Fault
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("genieacs: fault list: %w", err)
	}
	return out, nil
}

// CWMP returns the device's CWMP fault for a "cwmp.NNNN" fault: the code
// and string the device sent (detail.faultCode, detail.faultString) and the
// SetParameterValuesFault list; nil for GenieACS's own faults.
func (f Fault) CWMP() *cwmp.Fault {
	codeText, ok := strings.CutPrefix(f.Code, "cwmp.")
	if !ok {
		return nil
	}
	var d struct {
		FaultCode   json.RawMessage `json:"faultCode"`
		FaultString string          `json:"faultString"`
		SPV         []struct {
			ParameterName string          `json:"parameterName"`
			FaultCode     json.RawMessage `json:"faultCode"`
			FaultString   string          `json:"faultString"`
		} `json:"setParameterValuesFault"`
	}
	_ = json.Unmarshal(f.Detail, &d)
	code, ok := atoiJSON(d.FaultCode)
	if !ok {
		if code, ok = atoiJSON(json.RawMessage(codeText)); !ok {
			return nil
		}
	}
	msg := d.FaultString
	if msg == "" {
		msg = f.Message
	}
	cf := &cwmp.Fault{Code: code, String: msg}
	for _, p := range d.SPV {
		pc, _ := atoiJSON(p.FaultCode)
		cf.SetParameterValuesFaults = append(cf.SetParameterValuesFaults, cwmp.SetParameterValuesFault{ParameterName: p.ParameterName, FaultCode: pc, FaultString: p.FaultString})
	}
	return cf
}

// atoiJSON reads a fault code sent as a number or a string.
func atoiJSON(raw json.RawMessage) (int, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Faults lists faults (GET /faults/), with the total count.
func (c *Client) Faults(ctx context.Context, q Query) ([]Fault, int, error) {
	items, total, err := c.list(ctx, "faults", q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Fault, 0, len(items))
	for _, it := range items {
		var f Fault
		if err := json.Unmarshal(it, &f); err != nil {
			return nil, 0, fmt.Errorf("genieacs: GET /faults/: %w: %w", ErrBadResponse, err)
		}
		out = append(out, f)
	}
	return out, total, nil
}

// DeleteFault deletes a fault by its ID; for a task's fault GenieACS also
// deletes the task. A fault that does not exist matches ErrNotFound.
func (c *Client) DeleteFault(ctx context.Context, id string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/faults/" + seg(id)})
	return err
}

// Tasks lists stored tasks (GET /tasks/), e.g. with
// Query{Filter: Equal("device", id)}, with the total count.
func (c *Client) Tasks(ctx context.Context, q Query) ([]Task, int, error) {
	items, total, err := c.list(ctx, "tasks", q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Task, 0, len(items))
	for _, it := range items {
		t, err := ParseTask(it)
		if err != nil {
			return nil, 0, fmt.Errorf("genieacs: GET /tasks/: %w: %w", ErrBadResponse, err)
		}
		out = append(out, t)
	}
	return out, total, nil
}

// DeleteTask deletes a stored task. A task that is gone (done, or deleted
// with its fault) matches ErrNotFound.
func (c *Client) DeleteTask(ctx context.Context, id string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/tasks/" + seg(id)})
	return err
}

// ConnectionRequest has GenieACS send a connection request to the device
// (POST /devices/<id>/tasks?connection_request with no task); it returns
// once the device accepted it, without waiting for the session.
func (c *Client) ConnectionRequest(ctx context.Context, deviceID string) error {
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/devices/" + seg(deviceID) + "/tasks", query: "connection_request"})
	return err
}
