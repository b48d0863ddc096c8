package remote

import (
	"context"
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
// serial numbers) or SerialPrefix.
type FleetRequest struct {
	Devices      []string `json:"devices,omitempty"`
	SerialPrefix string   `json:"serial_prefix,omitempty"`
	Concurrency  int      `json:"concurrency,omitempty"`
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
