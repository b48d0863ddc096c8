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
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
	WaitTransferComplete(ctx context.Context, deviceID, commandKey string) (cwmp.TransferComplete, error)
}

// fileRegistry is the subset of acs.FileServer the device API uses.
type fileRegistry interface {
	Register(name, deviceID, user string, pass secret.Secret)
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

// DownloadRequest asks a device to download a file (TR-069 Download RPC):
// from URL, or a File that this ACS serves, which the API makes available
// to that device alone with one-time credentials.
type DownloadRequest struct {
	URL            string        `json:"url"`
	File           string        `json:"file,omitempty"`
	Wait           bool          `json:"wait,omitempty"`
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
	// Files, FilesDir and FilesURL, if set, let a download name a file of
	// FilesDir that the ACS serves at FilesURL (as devices reach it, e.g.
	// http://192.0.2.10:7547/files/).
	Files    fileRegistry
	FilesDir string
	FilesURL string
	mux      *http.ServeMux
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
	File           string      `json:"file"`
	Wait           bool        `json:"wait"`
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
		if req.File != "" {
			if err := h.serveFile(id, &req); err != nil {
				writeErr(w, http.StatusBadRequest, KindBadRequest, err.Error(), 0)
				return
			}
		}
		if req.URL == "" || req.FileType == "" {
			writeErr(w, http.StatusBadRequest, KindBadRequest, `url (or file) and file_type are required (file_type e.g. "1 Firmware Upgrade Image")`, 0)
			return
		}
		if req.CommandKey == "" {
			req.CommandKey = "fieldagent-download-" + randomHex(4)
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
		if m.Status == 1 && req.Wait {
			if _, err := h.acs.WaitTransferComplete(ctx, id, req.CommandKey); err != nil {
				var f *cwmp.Fault
				if errors.As(err, &f) {
					writeErr(w, http.StatusUnprocessableEntity, KindCWMPFault, "the transfer failed: "+f.Error(), f.Code)
					return
				}
				h.deviceErr(w, id, op, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"status": 0, "command_key": req.CommandKey})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": m.Status, "command_key": req.CommandKey})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": 0})
	}
}

// serveFile makes a file of FilesDir available to one device with fresh
// credentials and points the request at it.
func (h *Devices) serveFile(id string, req *opRequest) error {
	if h.Files == nil || h.FilesDir == "" || h.FilesURL == "" {
		return errors.New("file: this ACS serves no files: set acs.files_dir and acs.files_url")
	}
	if req.File != filepath.Base(req.File) || strings.HasPrefix(req.File, ".") {
		return fmt.Errorf("file: %q must be a plain file name in acs.files_dir", req.File)
	}
	fi, err := os.Stat(filepath.Join(h.FilesDir, req.File))
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("file: %q is not a file in acs.files_dir", req.File)
	}
	user := "dl-" + randomHex(4)
	pass := secret.New(randomHex(16))
	h.Files.Register(req.File, id, user, pass)
	req.URL = strings.TrimRight(h.FilesURL, "/") + "/" + url.PathEscape(req.File)
	req.Username, req.Password = user, pass.Reveal()
	if req.FileSize == 0 && fi.Size() < 1<<32 {
		req.FileSize = uint32(fi.Size())
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
