package genieacs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// trimDot strips an object name's trailing dot: GenieACS's path parser
// rejects "X.Y.".
func trimDot(name string) string { return strings.TrimSuffix(name, ".") }

// run posts a task with a connection request and waits for the session.
func (c *Client) run(ctx context.Context, deviceID string, t Task) (Task, error) {
	return c.PostTask(ctx, deviceID, t, PostOptions{})
}

// GetParameterValues reads names from the device: parameters with a
// getParameterValues task, partial paths ("X.Y.") with a refreshObject
// task each, then the values from the device document, in the order asked
// (a partial path's parameters in data model order). A parameter the
// device document does not hold after the tasks is a *cwmp.Fault 9005, as
// the device itself would answer.
func (c *Client) GetParameterValues(ctx context.Context, deviceID string, names ...string) ([]cwmp.ParameterValueStruct, error) {
	params, err := c.getParams(ctx, deviceID, names)
	if err != nil {
		return nil, err
	}
	out := make([]cwmp.ParameterValueStruct, len(params))
	for i, p := range params {
		out[i] = cwmp.ParameterValueStruct{Name: p.Name, Value: p.Value, Type: p.Type}
	}
	return out, nil
}

// getParams is GetParameterValues with the timestamps kept.
func (c *Client) getParams(ctx context.Context, deviceID string, names []string) ([]Param, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("genieacs: getParameterValues for %s: no parameter names", deviceID)
	}
	var leaves, objects []string
	whole := false
	for _, n := range names {
		switch {
		case n == "":
			whole = true
			objects = append(objects, "")
		case strings.HasSuffix(n, "."):
			objects = append(objects, trimDot(n))
		default:
			leaves = append(leaves, n)
		}
	}
	if len(leaves) > 0 {
		if _, err := c.run(ctx, deviceID, Task{Name: TaskGetParameterValues, ParameterNames: leaves}); err != nil {
			return nil, err
		}
	}
	for _, o := range objects {
		if _, err := c.run(ctx, deviceID, Task{Name: TaskRefreshObject, ObjectName: o}); err != nil {
			return nil, err
		}
	}
	var proj []string
	if !whole {
		proj = append(append(proj, leaves...), objects...)
	}
	d, err := c.Document(ctx, deviceID, proj...)
	if err != nil {
		return nil, err
	}
	var out []Param
	var missing []string
	for _, n := range names {
		if !strings.HasSuffix(n, ".") && n != "" {
			p, ok := d.Params[n]
			if !ok || !p.HasValue {
				missing = append(missing, n)
				continue
			}
			out = append(out, p)
			continue
		}
		if _, ok := d.Objects[n]; !ok && n != "" {
			missing = append(missing, n)
			continue
		}
		out = append(out, d.Under(n)...)
	}
	if len(missing) > 0 {
		return nil, cwmp.NewFault(cwmp.FaultInvalidParameterName,
			fmt.Sprintf("GenieACS holds no value of %s for device %s after getParameterValues", strings.Join(missing, ", "), deviceID))
	}
	return out, nil
}

// SetParameterValues writes params with a setParameterValues task of
// [name, value, xsd type] triples (an empty type is xsd:string). GenieACS
// sets the ParameterKey itself, so key is not sent. A DiagnosticsState set
// to Requested is remembered for WaitInform.
func (c *Client) SetParameterValues(ctx context.Context, deviceID string, params []cwmp.ParameterValueStruct, key string) error {
	if len(params) == 0 {
		return fmt.Errorf("genieacs: setParameterValues for %s: no parameters", deviceID)
	}
	if _, err := c.run(ctx, deviceID, Task{Name: TaskSetParameterValues, ParameterValues: params}); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range params {
		if strings.HasSuffix(p.Name, ".DiagnosticsState") && p.Value == "Requested" {
			if c.diag[deviceID] == nil {
				c.diag[deviceID] = map[string]bool{}
			}
			c.diag[deviceID][p.Name] = true
		}
	}
	return nil
}

// GetParameterNames lists the names under path (an object with its
// trailing dot, a parameter, or "" for everything) after a refreshObject
// task, from the device document, as TR-069 does: with nextLevel only the
// direct children, else path itself and everything below; objects end in
// ".". An object or parameter the document does not hold is a *cwmp.Fault
// 9005.
func (c *Client) GetParameterNames(ctx context.Context, deviceID, path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, error) {
	obj := trimDot(path)
	if _, err := c.run(ctx, deviceID, Task{Name: TaskRefreshObject, ObjectName: obj}); err != nil {
		return nil, err
	}
	var proj []string
	if obj != "" {
		proj = []string{obj}
	}
	d, err := c.Document(ctx, deviceID, proj...)
	if err != nil {
		return nil, err
	}
	if path != "" && !strings.HasSuffix(path, ".") {
		p, ok := d.Params[path]
		if !ok {
			return nil, cwmp.NewFault(cwmp.FaultInvalidParameterName, "GenieACS knows no parameter "+path+" of device "+deviceID)
		}
		if nextLevel {
			return nil, cwmp.NewFault(cwmp.FaultInvalidArguments, "NextLevel true on a parameter: "+path)
		}
		return []cwmp.ParameterInfoStruct{{Name: path, Writable: p.Writable}}, nil
	}
	if _, ok := d.Objects[path]; !ok && path != "" {
		return nil, cwmp.NewFault(cwmp.FaultInvalidParameterName, "GenieACS knows no object "+path+" of device "+deviceID)
	}
	depth := strings.Count(path, ".")
	var out []cwmp.ParameterInfoStruct
	for name, o := range d.Objects {
		if !strings.HasPrefix(name, path) || (nextLevel && (name == path || strings.Count(name, ".") != depth+1)) {
			continue
		}
		if strings.HasPrefix(name, "Downloads.") && !strings.HasPrefix(path, "Downloads.") {
			continue // GenieACS's own record of downloads, not the device's data model
		}
		out = append(out, cwmp.ParameterInfoStruct{Name: name, Writable: o.Writable})
	}
	for name, p := range d.Params {
		if !strings.HasPrefix(name, path) || (nextLevel && strings.Count(name, ".") != depth) {
			continue
		}
		if strings.HasPrefix(name, "Downloads.") && !strings.HasPrefix(path, "Downloads.") {
			continue
		}
		out = append(out, cwmp.ParameterInfoStruct{Name: name, Writable: p.Writable})
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].Name, out[j].Name) })
	return out, nil
}

// AddObject creates an instance of objectName ("X.Y." or "X.Y") with an
// addObject task and returns its number: the instance that the device
// document shows after the task and did not show before. key is not sent.
// When the document does not show exactly one new instance (another
// client added one meanwhile) the error matches ErrNoInstance.
func (c *Client) AddObject(ctx context.Context, deviceID, objectName, key string) (uint32, error) {
	obj := trimDot(objectName)
	before, err := c.Document(ctx, deviceID, obj)
	if err != nil {
		return 0, err
	}
	had := map[uint32]bool{}
	for _, n := range before.Instances(obj) {
		had[n] = true
	}
	if _, err := c.run(ctx, deviceID, Task{Name: TaskAddObject, ObjectName: obj}); err != nil {
		return 0, err
	}
	after, err := c.Document(ctx, deviceID, obj)
	if err != nil {
		return 0, err
	}
	var added []uint32
	for _, n := range after.Instances(obj) {
		if !had[n] {
			added = append(added, n)
		}
	}
	if len(added) != 1 {
		return 0, fmt.Errorf("%w: addObject %s on device %s: %d new instances (%v): read the object and delete what is not wanted", ErrNoInstance, obj, deviceID, len(added), added)
	}
	return added[0], nil
}

// DeleteObject deletes an object instance with a deleteObject task; key is
// not sent.
func (c *Client) DeleteObject(ctx context.Context, deviceID, objectName, key string) error {
	_, err := c.run(ctx, deviceID, Task{Name: TaskDeleteObject, ObjectName: trimDot(objectName)})
	return err
}

// Reboot reboots the device with a reboot task; GenieACS sets the command
// key itself, so commandKey is not sent.
func (c *Client) Reboot(ctx context.Context, deviceID, commandKey string) error {
	_, err := c.run(ctx, deviceID, Task{Name: TaskReboot})
	return err
}

// FactoryReset resets the device with a factoryReset task.
func (c *Client) FactoryReset(ctx context.Context, deviceID string) error {
	_, err := c.run(ctx, deviceID, Task{Name: TaskFactoryReset})
	return err
}

// Download has the device download a file of GenieACS's file store (see
// UploadFile) with a download task: the file name is d.URL's last path
// segment (or d.URL when it is a bare name), with d.FileType and
// d.TargetFileName. GenieACS builds the URL and credentials the device
// uses, so d.URL's host, d.Username, d.Password, d.FileSize and
// d.DelaySeconds are not sent. The NBI does not say whether the device
// finished at once, so the response is always Status 1: call
// WaitTransferComplete with d.CommandKey.
func (c *Client) Download(ctx context.Context, deviceID string, d cwmp.Download) (cwmp.DownloadResponse, error) {
	name := d.URL
	if u, err := url.Parse(d.URL); err == nil && u.Path != "" {
		name = path.Base(u.Path)
	}
	if name == "" || name == "/" || name == "." {
		return cwmp.DownloadResponse{}, fmt.Errorf("genieacs: download for %s: no file name in %q: upload the file to GenieACS and give its name", deviceID, d.URL)
	}
	posted := c.opt.Now()
	t, err := c.run(ctx, deviceID, Task{Name: TaskDownload, FileType: d.FileType, FileName: name, TargetFileName: d.TargetFileName})
	if err != nil {
		return cwmp.DownloadResponse{}, err
	}
	c.mu.Lock()
	if c.downloads[deviceID] == nil {
		c.downloads[deviceID] = map[string]download{}
	}
	c.downloads[deviceID][d.CommandKey] = download{taskID: t.ID, fileName: name, posted: posted}
	c.mu.Unlock()
	return cwmp.DownloadResponse{Status: 1}, nil
}

// WaitTransferComplete waits for the end of the download that Download
// started with commandKey: it polls the device document's Downloads
// records until the one for the file shows LastDownload equal to its
// Download time (GenieACS writes it from the TransferComplete), and
// GenieACS's faults for one of the download task. A failed transfer
// returns an error matching acs.ErrTransferFailed that wraps the
// *cwmp.Fault, as the embedded ACS does (the fault is deleted). A command
// key that no Download of this Client started matches ErrUnknownTransfer.
func (c *Client) WaitTransferComplete(ctx context.Context, deviceID, commandKey string) (cwmp.TransferComplete, error) {
	c.mu.Lock()
	dl, ok := c.downloads[deviceID][commandKey]
	c.mu.Unlock()
	if !ok {
		return cwmp.TransferComplete{}, fmt.Errorf("%w: device %s, command key %q", ErrUnknownTransfer, deviceID, commandKey)
	}
	done := func() {
		c.mu.Lock()
		delete(c.downloads[deviceID], commandKey)
		c.mu.Unlock()
	}
	wait := c.opt.PollInterval
	for {
		d, err := c.Document(ctx, deviceID, "Downloads")
		if err != nil {
			return cwmp.TransferComplete{}, fmt.Errorf("genieacs: waiting for the transfer %q of %s: %w", commandKey, deviceID, err)
		}
		if tc, ok := transferDone(d, dl); ok {
			done()
			tc.CommandKey = commandKey
			return tc, nil
		}
		if dl.taskID != "" {
			id := deviceID + ":task_" + dl.taskID
			faults, _, err := c.Faults(ctx, Query{Filter: Equal("_id", id)})
			if err != nil {
				return cwmp.TransferComplete{}, fmt.Errorf("genieacs: waiting for the transfer %q of %s: %w", commandKey, deviceID, err)
			}
			if len(faults) > 0 {
				done()
				f := faults[0].CWMP()
				if f == nil {
					f = cwmp.NewFault(cwmp.FaultDownloadFailure, faults[0].Code+": "+faults[0].Message)
				}
				if err := c.DeleteFault(ctx, faults[0].ID); err != nil && !errors.Is(err, ErrNotFound) {
					c.log.Warn("deleting a download's fault failed", "device", deviceID, "fault", faults[0].ID, "err", err)
				}
				tc := cwmp.TransferComplete{CommandKey: commandKey, FaultStruct: cwmp.FaultStruct{FaultCode: f.Code, FaultString: f.String}}
				return tc, fmt.Errorf("%w: device %s, command key %q: %w", acs.ErrTransferFailed, deviceID, commandKey, f)
			}
		}
		if err := sleep(ctx, wait); err != nil {
			return cwmp.TransferComplete{}, fmt.Errorf("genieacs: waiting for the transfer %q of %s: %w", commandKey, deviceID, err)
		}
		wait = c.backoff(wait)
	}
}

// transferDone finds the Downloads record of dl's file whose LastDownload
// equals its Download time.
func transferDone(d *Document, dl download) (cwmp.TransferComplete, bool) {
	for _, n := range d.Instances("Downloads") {
		pre := fmt.Sprintf("Downloads.%d.", n)
		name, _ := d.Value(pre + "FileName")
		last, _ := d.Value(pre + "LastFileName")
		started, ok1 := d.Value(pre + "Download")
		lastDL, ok2 := d.Value(pre + "LastDownload")
		if name != dl.fileName || last != dl.fileName || !ok1 || !ok2 || started != lastDL {
			continue
		}
		tc := cwmp.TransferComplete{}
		if v, ok := d.Value(pre + "StartTime"); ok {
			tc.StartTime, _ = time.Parse(time.RFC3339Nano, v)
		}
		if v, ok := d.Value(pre + "CompleteTime"); ok {
			tc.CompleteTime, _ = time.Parse(time.RFC3339Nano, v)
		}
		return tc, true
	}
	return cwmp.TransferComplete{}, false
}

// diagnosticsStates are the DiagnosticsState parameters WaitInform looks
// at when this client did not request the test itself.
var diagnosticsStates = []string{
	"InternetGatewayDevice.IPPingDiagnostics.DiagnosticsState",
	"InternetGatewayDevice.TraceRouteDiagnostics.DiagnosticsState",
	"InternetGatewayDevice.DownloadDiagnostics.DiagnosticsState",
	"InternetGatewayDevice.UploadDiagnostics.DiagnosticsState",
	"Device.IP.Diagnostics.IPPing.DiagnosticsState",
	"Device.IP.Diagnostics.TraceRoute.DiagnosticsState",
	"Device.IP.Diagnostics.DownloadDiagnostics.DiagnosticsState",
	"Device.IP.Diagnostics.UploadDiagnostics.DiagnosticsState",
}

// WaitInform waits for the device to do what an Inform with eventCode at
// or after after would report, by polling GenieACS (the NBI has no
// events):
//
//   - "8 DIAGNOSTICS COMPLETE": getParameterValues tasks of the
//     DiagnosticsState parameters this client set to Requested (or, if
//     none, those the document shows Requested) until one leaves
//     Requested, at most Options.MaxPolls times with backoff;
//   - "1 BOOT": _lastBoot; "0 BOOTSTRAP": _lastBootstrap; any other event
//     (or ""): _lastInform, until it is not before after.
//
// It returns the device as Device does. after is compared with
// GenieACS's clock.
func (c *Client) WaitInform(ctx context.Context, deviceID, eventCode string, after time.Time) (acs.Device, error) {
	if strings.EqualFold(eventCode, acs.EventDiagnosticsComplete) {
		if err := c.waitDiagnostics(ctx, deviceID); err != nil {
			return acs.Device{}, err
		}
		return c.Device(ctx, deviceID)
	}
	field := func(d *Document) time.Time { return d.LastInform }
	switch {
	case strings.EqualFold(eventCode, acs.EventBoot):
		field = func(d *Document) time.Time { return d.LastBoot }
	case strings.EqualFold(eventCode, acs.EventBootstrap):
		field = func(d *Document) time.Time { return d.LastBootstrap }
	}
	wait := c.opt.PollInterval
	for {
		d, err := c.Document(ctx, deviceID, summaryProjection...)
		if err != nil {
			return acs.Device{}, fmt.Errorf("genieacs: waiting for inform %q from %s: %w", eventCode, deviceID, err)
		}
		if t := field(d); !t.IsZero() && !t.Before(after) {
			return d.Device(), nil
		}
		if err := sleep(ctx, wait); err != nil {
			return acs.Device{}, fmt.Errorf("genieacs: waiting for inform %q from %s: %w", eventCode, deviceID, err)
		}
		wait = c.backoff(wait)
	}
}

// waitDiagnostics polls the pending DiagnosticsState parameters of the
// device until one is no longer Requested.
func (c *Client) waitDiagnostics(ctx context.Context, deviceID string) error {
	c.mu.Lock()
	var names []string
	for n := range c.diag[deviceID] {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	if len(names) == 0 {
		d, err := c.Document(ctx, deviceID, diagnosticsStates...)
		if err != nil {
			return fmt.Errorf("genieacs: waiting for diagnostics on %s: %w", deviceID, err)
		}
		for _, n := range diagnosticsStates {
			if v, _ := d.Value(n); v == "Requested" {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return fmt.Errorf("%w: %s: no DiagnosticsState reads Requested", ErrNoDiagnostics, deviceID)
		}
	}
	wait := c.opt.PollInterval
	var last error
	for i := 0; i < c.opt.MaxPolls; i++ {
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("genieacs: waiting for diagnostics on %s (%s still Requested): %w", deviceID, strings.Join(names, ", "), errors.Join(err, last))
		}
		wait = c.backoff(wait)
		params, err := c.getParams(ctx, deviceID, names)
		switch {
		case errors.Is(err, ErrDeviceOffline):
			// A device busy with a test may miss a connection request: poll again.
			last = err
			continue
		case err != nil:
			return fmt.Errorf("genieacs: waiting for diagnostics on %s: %w", deviceID, err)
		}
		var finished []string
		for _, p := range params {
			if p.Value != "Requested" {
				finished = append(finished, p.Name)
			}
		}
		if len(finished) > 0 {
			c.mu.Lock()
			for _, n := range finished {
				delete(c.diag[deviceID], n)
			}
			c.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("%w: %s: %s still Requested after %d polls", ErrPollLimit, deviceID, strings.Join(names, ", "), c.opt.MaxPolls)
}
