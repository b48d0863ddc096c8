package remote

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"fieldagent/agent/server"
)

// DeviceList is the answer of GET /api/v1/devices.
type DeviceList struct {
	Devices []server.DeviceSummary `json:"devices"`
	// Count is how many devices are in this answer; Total how many match
	// (more than Count when paged).
	Count int `json:"count"`
	Total int `json:"total"`
}

// Devices lists the devices the server's ACS knows that match q (serial,
// model, q, loid, account, online, seen_since, limit, offset: docs/api.md).
func (c *Client) Devices(ctx context.Context, q url.Values) (DeviceList, error) {
	var out DeviceList
	path := "/api/v1/devices"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	if out.Total < out.Count {
		out.Total = out.Count
	}
	return out, err
}

// Device returns one device and its last Inform's parameters.
func (c *Client) Device(ctx context.Context, id string) (server.DeviceDetail, error) {
	var out server.DeviceDetail
	err := c.Do(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Accepted is the server's 202 answer to a diagnosis: the job that runs it.
type Accepted struct {
	JobID   string   `json:"job_id"`
	Devices []string `json:"devices"`
	Events  string   `json:"events"`
	Status  string   `json:"status"`
}

// DiagnoseRequest is the optional body of a one-device diagnosis.
type DiagnoseRequest struct {
	// Probes, if set, runs only these probes (e.g. "line", "wan").
	Probes []string `json:"probes,omitempty"`
}

// Diagnose starts a diagnosis of one device as a job.
func (c *Client) Diagnose(ctx context.Context, id string, req DiagnoseRequest) (Accepted, error) {
	var out Accepted
	err := c.Do(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/diagnose", req, &out)
	return out, err
}

// FleetRequest selects the devices of a fleet diagnosis: Devices (IDs or
// serial numbers), SerialPrefix, or Query.
type FleetRequest struct {
	Devices      []string `json:"devices,omitempty"`
	SerialPrefix string   `json:"serial_prefix,omitempty"`
	Concurrency  int      `json:"concurrency,omitempty"`
	// Query is a GenieACS query, for a server whose ACS is GenieACS.
	Query string `json:"query,omitempty"`
}

// FleetDiagnose starts a diagnosis of many devices as one job.
func (c *Client) FleetDiagnose(ctx context.Context, req FleetRequest) (Accepted, error) {
	var out Accepted
	err := c.Do(ctx, http.MethodPost, "/api/v1/fleet/diagnose", req, &out)
	return out, err
}

// Job returns a job and its stored results.
func (c *Client) Job(ctx context.Context, id string) (server.JobView, error) {
	var out server.JobView
	err := c.Do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &out)
	return out, err
}

// Jobs lists jobs, newest first; q may hold state, kind and limit.
func (c *Client) Jobs(ctx context.Context, q url.Values) (server.JobList, error) {
	var out server.JobList
	path := "/api/v1/jobs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// CancelJob cancels a running job: its unfinished devices are recorded
// cancelled, its finished results kept.
func (c *Client) CancelJob(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil)
}

// Actions returns what the device allows and what its latest stored
// diagnosis proposes (GET /api/v1/devices/{id}/actions), as the server
// sent it.
func (c *Client) Actions(ctx context.Context, id string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.Do(ctx, http.MethodGet, "/api/v1/devices/"+url.PathEscape(id)+"/actions", nil, &out)
	return out, err
}

// Act applies a fix to a device (POST /api/v1/devices/{id}/actions/{action})
// and returns how it ended. body holds the action's parameters (nil for
// none); a LOID or password in it goes to the server only.
func (c *Client) Act(ctx context.Context, id, action string, body map[string]any) (server.ActionResult, error) {
	var out server.ActionResult
	if body == nil {
		body = map[string]any{}
	}
	err := c.do(ctx, max(c.timeout, actionTimeout), http.MethodPost, "/api/v1/devices/"+url.PathEscape(id)+"/actions/"+url.PathEscape(action), body, &out)
	return out, err
}
