// Package server is fieldagent's HTTP API for the devices its ACS manages:
// `fieldagent acs serve` mounts it next to the ACS, and the `device`
// commands reach it with Client. Every request carries a bearer token; bodies
// are JSON and size-limited; every device operation has a deadline.
//
// API (v1):
//
//	GET  /api/v1/devices                   list of devices
//	GET  /api/v1/devices/{id}              one device with its last Inform's parameters
//	POST /api/v1/devices/{id}/get          {"names":[...]}                → {"parameters":[...]}
//	POST /api/v1/devices/{id}/names        {"path":"...","next_level":b}  → {"parameters":[...]}
//	POST /api/v1/devices/{id}/set          {"parameters":[...],"key":"..."}
//	POST /api/v1/devices/{id}/add          {"object":"...","key":"..."}   → {"instance":n}
//	POST /api/v1/devices/{id}/delete       {"object":"...","key":"..."}
//	POST /api/v1/devices/{id}/reboot       {"command_key":"..."}
//	POST /api/v1/devices/{id}/download     {"url":...,"file_type":...}    → {"status":n}
//
// Errors are {"error": "...", "kind": "...", "fault_code": n}: kind is
// bad_request, unauthorized, unknown_device, device_unreachable,
// device_timeout or cwmp_fault.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Error kinds of the API.
const (
	KindBadRequest        = "bad_request"
	KindUnauthorized      = "unauthorized"
	KindUnknownDevice     = "unknown_device"
	KindDeviceUnreachable = "device_unreachable"
	KindDeviceTimeout     = "device_timeout"
	KindCWMPFault         = "cwmp_fault"
)

// MaxBody is the largest request body the API reads.
const MaxBody = 1 << 20

// deviceACS is the subset of acs.Server the device API uses.
type deviceACS interface {
	Devices() []acs.Device
	Device(id string) (acs.Device, bool)
	Do(ctx context.Context, deviceID string, req cwmp.Message) (cwmp.Message, error)
}

// DeviceView is a device as the API shows it.
type DeviceView struct {
	ID                   string            `json:"id"`
	Manufacturer         string            `json:"manufacturer"`
	OUI                  string            `json:"oui"`
	ProductClass         string            `json:"product_class"`
	Serial               string            `json:"serial"`
	ConnectionRequestURL string            `json:"connection_request_url,omitempty"`
	LastInform           time.Time         `json:"last_inform"`
	LastEvents           []string          `json:"last_events,omitempty"`
	RemoteAddr           string            `json:"remote_addr,omitempty"`
	Params               map[string]string `json:"params,omitempty"`
}

func view(d acs.Device, withParams bool) DeviceView {
	v := DeviceView{
		ID: d.ID, Manufacturer: d.DeviceId.Manufacturer, OUI: d.DeviceId.OUI, ProductClass: d.DeviceId.ProductClass,
		Serial: d.DeviceId.SerialNumber, ConnectionRequestURL: d.ConnectionRequestURL, LastInform: d.LastInform,
		LastEvents: d.LastEvents, RemoteAddr: d.RemoteAddr,
	}
	if withParams {
		v.Params = d.Params
	}
	return v
}

// Parameter is one parameter value on the wire.
type Parameter struct {
	Name     string `json:"name"`
	Value    string `json:"value,omitempty"`
	Type     string `json:"type,omitempty"`
	Writable *bool  `json:"writable,omitempty"`
}

// DownloadRequest asks a device to download a file (TR-069 Download RPC).
type DownloadRequest struct {
	URL            string        `json:"url"`
	FileType       string        `json:"file_type"`
	FileSize       uint32        `json:"file_size,omitempty"`
	TargetFileName string        `json:"target_file_name,omitempty"`
	Username       string        `json:"username,omitempty"`
	Password       secret.Secret `json:"-"`
	CommandKey     string        `json:"command_key,omitempty"`
}

// apiError is the body of every error answer.
type apiError struct {
	Error     string `json:"error"`
	Kind      string `json:"kind"`
	FaultCode int    `json:"fault_code,omitempty"`
}

// Devices serves the device API.
type Devices struct {
	acs   deviceACS
	token secret.Secret
	// Timeout bounds each device operation; zero means 60s.
	Timeout time.Duration
	// Logger, if nil, discards.
	Logger *slog.Logger
	mux    *http.ServeMux
}

// NewDevices returns the API over a (an *acs.Server) that accepts callers
// presenting token. An empty token refuses every caller.
func NewDevices(a deviceACS, token secret.Secret) *Devices {
	h := &Devices{acs: a, token: token, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /api/v1/devices", h.list)
	h.mux.HandleFunc("GET /api/v1/devices/{id}", h.show)
	h.mux.HandleFunc("POST /api/v1/devices/{id}/{op}", h.op)
	return h
}

func (h *Devices) log() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

// ServeHTTP authenticates the caller and routes the request.
func (h *Devices) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || h.token.IsZero() || subtle.ConstantTimeCompare([]byte(got), []byte(h.token.Reveal())) != 1 {
		h.log().Warn("api: refused caller", "remote", r.RemoteAddr, "path", r.URL.Path)
		writeErr(w, http.StatusUnauthorized, KindUnauthorized, "missing or invalid bearer token: set acs.api_token", 0)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	h.mux.ServeHTTP(w, r)
}

func (h *Devices) list(w http.ResponseWriter, _ *http.Request) {
	ds := h.acs.Devices()
	out := make([]DeviceView, 0, len(ds))
	for _, d := range ds {
		out = append(out, view(d, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

func (h *Devices) show(w http.ResponseWriter, r *http.Request) {
	d, ok := h.acs.Device(r.PathValue("id"))
	if !ok {
		writeErr(w, http.StatusNotFound, KindUnknownDevice, fmt.Sprintf("no device %q has informed this ACS", r.PathValue("id")), 0)
		return
	}
	writeJSON(w, http.StatusOK, view(d, true))
}

// opRequest is the union of the operations' bodies.
type opRequest struct {
	Names          []string    `json:"names"`
	Path           string      `json:"path"`
	NextLevel      bool        `json:"next_level"`
	Parameters     []Parameter `json:"parameters"`
	Key            string      `json:"key"`
	Object         string      `json:"object"`
	CommandKey     string      `json:"command_key"`
	URL            string      `json:"url"`
	FileType       string      `json:"file_type"`
	FileSize       uint32      `json:"file_size"`
	TargetFileName string      `json:"target_file_name"`
	Username       string      `json:"username"`
	Password       string      `json:"password"`
}

func (h *Devices) op(w http.ResponseWriter, r *http.Request) {
	id, op := r.PathValue("id"), r.PathValue("op")
	var req opRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, KindBadRequest, "request body: "+err.Error(), 0)
		return
	}
	var msg cwmp.Message
	switch op {
	case "get":
		if len(req.Names) == 0 {
			writeErr(w, http.StatusBadRequest, KindBadRequest, "names: give at least one parameter name or partial path (ending in '.')", 0)
			return
		}
		msg = &cwmp.GetParameterValues{ParameterNames: req.Names}
	case "names":
		msg = &cwmp.GetParameterNames{ParameterPath: req.Path, NextLevel: req.NextLevel}
	case "set":
		if len(req.Parameters) == 0 {
			writeErr(w, http.StatusBadRequest, KindBadRequest, "parameters: give at least one name and value", 0)
			return
		}
		ps := make([]cwmp.ParameterValueStruct, 0, len(req.Parameters))
		for i, p := range req.Parameters {
			if p.Name == "" || strings.HasSuffix(p.Name, ".") {
				writeErr(w, http.StatusBadRequest, KindBadRequest, fmt.Sprintf("parameters[%d].name: %q is not a full parameter name", i, p.Name), 0)
				return
			}
			typ := p.Type
			if typ == "" {
				typ = "xsd:string"
			} else if !strings.Contains(typ, ":") {
				typ = "xsd:" + typ
			}
			ps = append(ps, cwmp.ParameterValueStruct{Name: p.Name, Value: p.Value, Type: typ})
		}
		msg = &cwmp.SetParameterValues{ParameterList: ps, ParameterKey: req.Key}
	case "add", "delete":
		if !strings.HasSuffix(req.Object, ".") {
			writeErr(w, http.StatusBadRequest, KindBadRequest, fmt.Sprintf("object: %q must be an object path ending in '.'", req.Object), 0)
			return
		}
		if op == "add" {
			msg = &cwmp.AddObject{ObjectName: req.Object, ParameterKey: req.Key}
		} else {
			msg = &cwmp.DeleteObject{ObjectName: req.Object, ParameterKey: req.Key}
		}
	case "reboot":
		msg = &cwmp.Reboot{CommandKey: req.CommandKey}
	case "download":
		if req.URL == "" || req.FileType == "" {
			writeErr(w, http.StatusBadRequest, KindBadRequest, `url and file_type are required (file_type e.g. "1 Firmware Upgrade Image")`, 0)
			return
		}
		msg = &cwmp.Download{CommandKey: req.CommandKey, FileType: req.FileType, URL: req.URL, Username: req.Username,
			Password: req.Password, FileSize: req.FileSize, TargetFileName: req.TargetFileName}
	default:
		writeErr(w, http.StatusNotFound, KindBadRequest, fmt.Sprintf("no operation %q: use get, names, set, add, delete, reboot or download", op), 0)
		return
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	resp, err := h.acs.Do(ctx, id, msg)
	if err != nil {
		h.deviceErr(w, id, op, err)
		return
	}
	h.log().Info("api: device operation", "device", id, "op", op)
	switch m := resp.(type) {
	case *cwmp.GetParameterValuesResponse:
		out := make([]Parameter, 0, len(m.ParameterList))
		for _, p := range m.ParameterList {
			out = append(out, Parameter{Name: p.Name, Value: p.Value, Type: p.Type})
		}
		writeJSON(w, http.StatusOK, map[string]any{"parameters": out})
	case *cwmp.GetParameterNamesResponse:
		out := make([]Parameter, 0, len(m.ParameterList))
		for _, p := range m.ParameterList {
			wr := p.Writable
			out = append(out, Parameter{Name: p.Name, Writable: &wr})
		}
		writeJSON(w, http.StatusOK, map[string]any{"parameters": out})
	case *cwmp.SetParameterValuesResponse:
		writeJSON(w, http.StatusOK, map[string]any{"status": m.Status})
	case *cwmp.AddObjectResponse:
		writeJSON(w, http.StatusOK, map[string]any{"instance": m.InstanceNumber, "status": m.Status})
	case *cwmp.DeleteObjectResponse:
		writeJSON(w, http.StatusOK, map[string]any{"status": m.Status})
	case *cwmp.DownloadResponse:
		writeJSON(w, http.StatusOK, map[string]any{"status": m.Status})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": 0})
	}
}

func (h *Devices) deviceErr(w http.ResponseWriter, id, op string, err error) {
	var f *cwmp.Fault
	switch {
	case errors.As(err, &f):
		writeErr(w, http.StatusUnprocessableEntity, KindCWMPFault, f.Error(), f.Code)
	case errors.Is(err, acs.ErrUnknownDevice):
		writeErr(w, http.StatusNotFound, KindUnknownDevice, fmt.Sprintf("no device %q has informed this ACS: `fieldagent device list` shows the known ones", id), 0)
	case errors.Is(err, acs.ErrConnectionRequest):
		writeErr(w, http.StatusGatewayTimeout, KindDeviceUnreachable, err.Error(), 0)
	case errors.Is(err, context.DeadlineExceeded):
		writeErr(w, http.StatusGatewayTimeout, KindDeviceTimeout, fmt.Sprintf("%s on %s did not finish in time: the device may be busy or offline", op, id), 0)
	default:
		h.log().Error("api: device operation failed", "device", id, "op", op, "err", err)
		writeErr(w, http.StatusBadGateway, KindDeviceUnreachable, err.Error(), 0)
	}
}

func writeErr(w http.ResponseWriter, status int, kind, msg string, code int) {
	writeJSON(w, status, apiError{Error: msg, Kind: kind, FaultCode: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
