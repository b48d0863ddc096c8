package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"fieldagent/agent/secret"
)

// Errors the client returns; an *APIError wraps the matching one.
var (
	ErrUnauthorized      = errors.New("the ACS API refused the token")
	ErrUnknownDevice     = errors.New("unknown device")
	ErrDeviceUnreachable = errors.New("device unreachable")
	ErrFault             = errors.New("the device answered with a CWMP fault")
	ErrBadRequest        = errors.New("bad request")
	// ErrUnreachable means the API itself could not be reached.
	ErrUnreachable = errors.New("the ACS API is unreachable: is `fieldagent acs serve` running, and acs.api_url right?")
)

// APIError is an error answer of the API.
type APIError struct {
	Status    int
	Kind      string
	FaultCode int
	Message   string
}

func (e *APIError) Error() string { return e.Message }

// Unwrap maps the kind to the client's sentinel errors.
func (e *APIError) Unwrap() error {
	switch e.Kind {
	case KindUnauthorized:
		return ErrUnauthorized
	case KindUnknownDevice:
		return ErrUnknownDevice
	case KindDeviceUnreachable, KindDeviceTimeout:
		return ErrDeviceUnreachable
	case KindCWMPFault:
		return ErrFault
	}
	return ErrBadRequest
}

// Client talks to the device API.
type Client struct {
	// BaseURL is e.g. http://127.0.0.1:7548.
	BaseURL string
	Token   secret.Secret
	// HTTPClient, if nil, is http.DefaultClient; callers bound requests
	// with their context.
	HTTPClient *http.Client
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token.Reveal())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if resp.StatusCode >= 300 {
		var ae apiError
		if json.Unmarshal(b, &ae) != nil || ae.Kind == "" {
			return &APIError{Status: resp.StatusCode, Kind: KindBadRequest, Message: fmt.Sprintf("ACS API answered %s", resp.Status)}
		}
		return &APIError{Status: resp.StatusCode, Kind: ae.Kind, FaultCode: ae.FaultCode, Message: ae.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode the ACS API's answer: %w", err)
		}
	}
	return nil
}

func devPath(id, op string) string {
	p := "/api/v1/devices/" + url.PathEscape(id)
	if op != "" {
		p += "/" + op
	}
	return p
}

// Devices lists the devices the ACS knows.
func (c *Client) Devices(ctx context.Context) ([]DeviceView, error) {
	var out struct {
		Devices []DeviceView `json:"devices"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/devices", nil, &out)
	return out.Devices, err
}

// Device returns one device with its last Inform's parameters.
func (c *Client) Device(ctx context.Context, id string) (DeviceView, error) {
	var out DeviceView
	err := c.do(ctx, http.MethodGet, devPath(id, ""), nil, &out)
	return out, err
}

// Get reads parameter values (full names or partial paths ending in '.').
func (c *Client) Get(ctx context.Context, id string, names ...string) ([]Parameter, error) {
	var out struct {
		Parameters []Parameter `json:"parameters"`
	}
	err := c.do(ctx, http.MethodPost, devPath(id, "get"), opRequest{Names: names}, &out)
	return out.Parameters, err
}

// Names lists parameter names under path.
func (c *Client) Names(ctx context.Context, id, path string, nextLevel bool) ([]Parameter, error) {
	var out struct {
		Parameters []Parameter `json:"parameters"`
	}
	err := c.do(ctx, http.MethodPost, devPath(id, "names"), opRequest{Path: path, NextLevel: nextLevel}, &out)
	return out.Parameters, err
}

// Set writes parameter values atomically.
func (c *Client) Set(ctx context.Context, id string, params []Parameter, key string) error {
	return c.do(ctx, http.MethodPost, devPath(id, "set"), opRequest{Parameters: params, Key: key}, nil)
}

// Add creates an instance of a multi-instance object and returns its number.
func (c *Client) Add(ctx context.Context, id, object, key string) (uint32, error) {
	var out struct {
		Instance uint32 `json:"instance"`
	}
	err := c.do(ctx, http.MethodPost, devPath(id, "add"), opRequest{Object: object, Key: key}, &out)
	return out.Instance, err
}

// Delete removes an object instance.
func (c *Client) Delete(ctx context.Context, id, object, key string) error {
	return c.do(ctx, http.MethodPost, devPath(id, "delete"), opRequest{Object: object, Key: key}, nil)
}

// Reboot reboots the device.
func (c *Client) Reboot(ctx context.Context, id, commandKey string) error {
	return c.do(ctx, http.MethodPost, devPath(id, "reboot"), opRequest{CommandKey: commandKey}, nil)
}

// Download asks the device to download a file; it returns the Download
// status (0 done, 1 will complete later with a TransferComplete) and the
// command key that TransferComplete carries. With d.Wait the API waits for
// the TransferComplete and returns 0, or the transfer's fault.
func (c *Client) Download(ctx context.Context, id string, d DownloadRequest) (int, string, error) {
	var out struct {
		Status     int    `json:"status"`
		CommandKey string `json:"command_key"`
	}
	err := c.do(ctx, http.MethodPost, devPath(id, "download"), opRequest{
		URL: d.URL, File: d.File, Wait: d.Wait, FileType: d.FileType, FileSize: d.FileSize, TargetFileName: d.TargetFileName,
		Username: d.Username, Password: d.Password.Reveal(), CommandKey: d.CommandKey,
	}, &out)
	return out.Status, out.CommandKey, err
}
