package genieacs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"fieldagent/tr069/acs"
)

// Tags fieldagent puts on the devices it worked on.
const (
	TagDiagnosed   = "fieldagent-diagnosed"
	TagProvisioned = "fieldagent-provisioned"
)

// Search returns the device documents that q selects and the total count
// of matches (GenieACS's total header, which ignores Skip and Limit). A
// filter that is not JSON gives an *HTTPError matching ErrBadRequest with
// GenieACS's message.
func (c *Client) Search(ctx context.Context, q Query) ([]*Document, int, error) {
	items, total, err := c.list(ctx, "devices", q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*Document, 0, len(items))
	for i, it := range items {
		d, err := ParseDocument(it)
		if err != nil {
			return nil, 0, fmt.Errorf("genieacs: GET /devices/ item %d: %w: %w", i, ErrBadResponse, err)
		}
		out = append(out, d)
	}
	return out, total, nil
}

// Devices is Search with every document converted to an acs.Device.
func (c *Client) Devices(ctx context.Context, q Query) ([]acs.Device, int, error) {
	docs, total, err := c.Search(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]acs.Device, len(docs))
	for i, d := range docs {
		out[i] = d.Device()
	}
	return out, total, nil
}

// Count returns how many devices filter selects (HEAD /devices/ and the
// total header); an empty filter counts every device.
func (c *Client) Count(ctx context.Context, filter string) (int, error) {
	r := request{method: http.MethodHead, path: "/devices/", query: Query{Filter: filter}.encode()}
	resp, err := c.call(ctx, r)
	if err != nil {
		return 0, err
	}
	n, err := resp.total()
	if err != nil {
		return 0, fmt.Errorf("genieacs: HEAD /devices/: %w", err)
	}
	return n, nil
}

// Document returns the device document of id, restricted to projection
// (nil: the whole document). A device GenieACS does not know matches
// acs.ErrUnknownDevice.
func (c *Client) Document(ctx context.Context, id string, projection ...string) (*Document, error) {
	docs, _, err := c.Search(ctx, Query{Filter: Equal("_id", id), Projection: projection})
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("genieacs: device %s: %w", id, acs.ErrUnknownDevice)
	}
	return docs[0], nil
}

// summaryProjection is what Device reads: identity, the GenieACS
// timestamps and the connection request URLs.
var summaryProjection = []string{
	"_deviceId", "_registered", "_lastInform", "_lastBoot", "_lastBootstrap", "_tags",
	"InternetGatewayDevice.ManagementServer.ConnectionRequestURL", "Device.ManagementServer.ConnectionRequestURL",
}

// Device returns what GenieACS knows of the device id as an acs.Device
// (identity, timestamps and the ConnectionRequestURL, without the other
// parameters). A device GenieACS does not know matches acs.ErrUnknownDevice.
func (c *Client) Device(ctx context.Context, id string) (acs.Device, error) {
	d, err := c.Document(ctx, id, summaryProjection...)
	if err != nil {
		return acs.Device{}, err
	}
	return d.Device(), nil
}

// Values reads parameters from the device document as GenieACS last saw
// them, with their types and timestamps, without asking the device: names
// are parameters or objects (all parameters with a value under them). A
// name the document does not hold is left out.
func (c *Client) Values(ctx context.Context, id string, names ...string) ([]Param, error) {
	proj := make([]string, 0, len(names))
	for _, n := range names {
		if n == "" {
			proj = nil // the whole document
			break
		}
		proj = append(proj, trimDot(n))
	}
	d, err := c.Document(ctx, id, proj...)
	if err != nil {
		return nil, err
	}
	var out []Param
	for _, n := range names {
		if p, ok := d.Params[trimDot(n)]; ok {
			if p.HasValue {
				out = append(out, p)
			}
			continue
		}
		out = append(out, d.Under(n)...)
	}
	return out, nil
}

// AddTag tags the device (POST /devices/<id>/tags/<tag>).
func (c *Client) AddTag(ctx context.Context, id, tag string) error {
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/devices/" + seg(id) + "/tags/" + seg(tag)})
	return err
}

// RemoveTag removes a tag from the device (DELETE /devices/<id>/tags/<tag>).
func (c *Client) RemoveTag(ctx context.Context, id, tag string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/devices/" + seg(id) + "/tags/" + seg(tag)})
	return err
}

// FileMeta is the metadata GenieACS keeps with a file.
type FileMeta struct {
	// FileType is the TR-069 file type, e.g. "1 Firmware Upgrade Image".
	FileType string `json:"fileType"`
	// OUI, ProductClass and Version say which devices the image is for and
	// what it installs.
	OUI          string `json:"oui"`
	ProductClass string `json:"productClass"`
	Version      string `json:"version"`
}

// File is a file in GenieACS's file store (an element of GET /files/).
type File struct {
	Name       string    `json:"filename"`
	Length     int64     `json:"length"`
	UploadDate time.Time `json:"uploadDate"`
	Metadata   FileMeta  `json:"metadata"`
}

// UploadFile stores body as the file name (PUT /files/<name> with the
// fileType, oui, productClass and version headers); a download task can
// then name it.
func (c *Client) UploadFile(ctx context.Context, name string, meta FileMeta, body io.Reader) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("genieacs: upload %s: read the file: %w", name, err)
	}
	r := request{method: http.MethodPut, path: "/files/" + seg(name), body: b, header: map[string]string{
		"Content-Type": "application/octet-stream",
		"fileType":     meta.FileType, "oui": meta.OUI, "productClass": meta.ProductClass, "version": meta.Version,
	}}
	// A large image takes a while over a slow link: allow 1s per 256 KiB.
	r.timeout = c.opt.RequestTimeout + time.Duration(len(b)/(256<<10))*time.Second
	_, err = c.call(ctx, r)
	return err
}

// Files lists the file store (GET /files/), with the total count.
func (c *Client) Files(ctx context.Context, q Query) ([]File, int, error) {
	items, total, err := c.list(ctx, "files", q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]File, 0, len(items))
	for _, it := range items {
		var f File
		if err := json.Unmarshal(it, &f); err != nil {
			return nil, 0, fmt.Errorf("genieacs: GET /files/: %w: %w", ErrBadResponse, err)
		}
		out = append(out, f)
	}
	return out, total, nil
}

// DeleteFile removes a file from the file store.
func (c *Client) DeleteFile(ctx context.Context, name string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/files/" + seg(name)})
	return err
}

// Presets lists GenieACS's presets as raw JSON documents, with the total.
func (c *Client) Presets(ctx context.Context, q Query) ([]json.RawMessage, int, error) {
	return c.list(ctx, "presets", q)
}

// Provisions lists GenieACS's provision scripts as raw JSON documents,
// with the total.
func (c *Client) Provisions(ctx context.Context, q Query) ([]json.RawMessage, int, error) {
	return c.list(ctx, "provisions", q)
}

// Ping checks that the NBI answers (HEAD /devices/ counting nothing).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Count(ctx, Equal("_id", "fieldagent-ping-"+strconv.FormatInt(c.opt.Now().UnixNano(), 36)))
	return err
}
