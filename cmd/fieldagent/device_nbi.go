package main

// The device commands over the operator's GenieACS (acs.kind: genieacs):
// the same commands and output as over the embedded ACS's device API, with
// the NBI client underneath.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"fieldagent/agent/config"
	"fieldagent/agent/server"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/genieacs"
)

// deviceAPI is what the device commands need of an ACS: server.Client (the
// embedded ACS's device API) or nbiDevices (GenieACS).
type deviceAPI interface {
	Devices(ctx context.Context) ([]server.DeviceView, error)
	Device(ctx context.Context, id string) (server.DeviceView, error)
	Get(ctx context.Context, id string, names ...string) ([]server.Parameter, error)
	Names(ctx context.Context, id, path string, nextLevel bool) ([]server.Parameter, error)
	Set(ctx context.Context, id string, params []server.Parameter, key string) error
	Add(ctx context.Context, id, object, key string) (uint32, error)
	Delete(ctx context.Context, id, object, key string) error
	Reboot(ctx context.Context, id, commandKey string) error
	Download(ctx context.Context, id string, d server.DownloadRequest) (int, string, error)
}

// nbiClient returns the GenieACS NBI client the config names. A task the
// device did not run (offline) is deleted, unless keepTasks[0] asks to
// leave it queued for the device's next session.
func nbiClient(f *Factory, keepTasks ...bool) (*genieacs.Client, error) {
	cfg := f.Config()
	o := genieacs.Options{Username: cfg.ACS.NBIUsername, Password: cfg.ACS.NBIPassword, TaskTimeout: cfg.ACS.NBITimeout,
		Logger: f.Logger().With("component", "genieacs"), KeepQueuedTasks: len(keepTasks) > 0 && keepTasks[0]}
	if cfg.ACS.NBIUsername == "" && !cfg.ACS.NBIPassword.IsZero() {
		o.Token, o.Password = cfg.ACS.NBIPassword, o.Token // a password alone is a bearer token (a proxy in front of the NBI)
	}
	c, err := genieacs.New(cfg.ACS.NBIURL, o)
	if err != nil {
		return nil, &usageError{fmt.Errorf("acs.nbi_url: %w", err)}
	}
	return c, nil
}

// usesGenieACS reports whether the config points the ACS commands at GenieACS.
func usesGenieACS(f *Factory) bool { return f.Config().ACS.Kind == config.ACSGenieACS }

// nbiDevices adapts the GenieACS client to deviceAPI.
type nbiDevices struct {
	c        *genieacs.Client
	filesDir string
	// filter, offset and limit select device list's devices.
	filter        string
	offset, limit int
}

// nbiListFilter turns device list's search flags into a GenieACS query.
func nbiListFilter(q url.Values, now time.Time) (filter string, offset, limit int, err error) {
	var and []map[string]any
	for key, field := range map[string]string{"serial": "_deviceId._SerialNumber", "model": "_deviceId._ProductClass",
		"loid": "InternetGatewayDevice.X_CT-COM_UserInfo.UserName"} {
		if v := q.Get(key); v != "" {
			and = append(and, map[string]any{field: v})
		}
	}
	if v := q.Get("seen_since"); v != "" {
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			d, derr := time.ParseDuration(v)
			if derr != nil || d <= 0 {
				return "", 0, 0, fmt.Errorf("%w: --seen-since %q: give a duration (24h) or an RFC 3339 time", errUsage, v)
			}
			t = now.Add(-d)
		}
		and = append(and, map[string]any{"_lastInform": map[string]any{"$gte": t.UTC().Format("2006-01-02T15:04:05.000Z")}})
	}
	if v := q.Get("query"); v != "" {
		var raw map[string]any
		if json.Unmarshal([]byte(v), &raw) != nil {
			return "", 0, 0, fmt.Errorf("%w: --query %q is not a JSON object (a GenieACS query)", errUsage, v)
		}
		and = append(and, raw)
	}
	for _, key := range []string{"q", "kind", "account", "online"} {
		if q.Get(key) != "" {
			return "", 0, 0, fmt.Errorf("%w: --%s is a search of serve's registry; over GenieACS use --serial, --model, --loid, --seen-since or --query", errUsage, key)
		}
	}
	for key, p := range map[string]*int{"offset": &offset, "limit": &limit} {
		if v := q.Get(key); v != "" {
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 0 {
				return "", 0, 0, fmt.Errorf("%w: --%s %q is not a count", errUsage, key, v)
			}
			*p = n
		}
	}
	switch len(and) {
	case 0:
		return "", offset, limit, nil
	case 1:
		b, _ := json.Marshal(and[0])
		return string(b), offset, limit, nil
	}
	b, _ := json.Marshal(map[string]any{"$and": and})
	return string(b), offset, limit, nil
}

// maxListed bounds `device list` over GenieACS, which may manage millions.
const maxListed = 1000

func (n nbiDevices) Devices(ctx context.Context) ([]server.DeviceView, error) {
	q := genieacs.Query{Filter: n.filter, Projection: []string{"_id", "_deviceId", "_lastInform", "_registered"},
		Sort: `{"_lastInform":-1}`, Skip: n.offset, Limit: maxListed}
	if n.limit > 0 {
		q.Limit = n.limit
	}
	ds, total, err := n.c.Devices(ctx, q)
	if err != nil {
		return nil, err
	}
	if n.limit == 0 && total > n.offset+len(ds) {
		return nil, fmt.Errorf("%d devices on GenieACS match, more than device list shows at once (%d): narrow it (--serial, --model, --loid, --seen-since, --query) or page with --limit/--offset: %w", total, maxListed, errTooMany)
	}
	out := make([]server.DeviceView, 0, len(ds))
	for _, d := range ds {
		out = append(out, nbiView(d, false))
	}
	return out, nil
}

var errTooMany = errors.New("too many devices")

func nbiView(d acs.Device, params bool) server.DeviceView {
	v := server.DeviceView{ID: d.ID, Manufacturer: d.DeviceId.Manufacturer, OUI: d.DeviceId.OUI, ProductClass: d.DeviceId.ProductClass,
		Serial: d.DeviceId.SerialNumber, ConnectionRequestURL: d.ConnectionRequestURL, LastInform: d.LastInform, LastEvents: d.LastEvents}
	if params {
		v.Params = d.Params
	}
	return v
}

func (n nbiDevices) Device(ctx context.Context, id string) (server.DeviceView, error) {
	d, err := n.c.Device(ctx, id)
	if err != nil {
		return server.DeviceView{}, err
	}
	return nbiView(d, true), nil
}

func (n nbiDevices) Get(ctx context.Context, id string, names ...string) ([]server.Parameter, error) {
	pv, err := n.c.GetParameterValues(ctx, id, names...)
	if err != nil {
		return nil, err
	}
	out := make([]server.Parameter, 0, len(pv))
	for _, p := range pv {
		out = append(out, server.Parameter{Name: p.Name, Value: p.Value, Type: p.Type})
	}
	return out, nil
}

func (n nbiDevices) Names(ctx context.Context, id, path string, nextLevel bool) ([]server.Parameter, error) {
	infos, err := n.c.GetParameterNames(ctx, id, path, nextLevel)
	if err != nil {
		return nil, err
	}
	out := make([]server.Parameter, 0, len(infos))
	for _, in := range infos {
		w := in.Writable
		out = append(out, server.Parameter{Name: in.Name, Writable: &w})
	}
	return out, nil
}

func (n nbiDevices) Set(ctx context.Context, id string, params []server.Parameter, key string) error {
	ps := make([]cwmp.ParameterValueStruct, 0, len(params))
	for _, p := range params {
		typ := p.Type
		if typ == "" {
			typ = "string"
		}
		if !strings.HasPrefix(typ, "xsd:") {
			typ = "xsd:" + typ
		}
		ps = append(ps, cwmp.ParameterValueStruct{Name: p.Name, Value: p.Value, Type: typ})
	}
	return n.c.SetParameterValues(ctx, id, ps, key)
}

func (n nbiDevices) Add(ctx context.Context, id, object, key string) (uint32, error) {
	return n.c.AddObject(ctx, id, object, key)
}

func (n nbiDevices) Delete(ctx context.Context, id, object, key string) error {
	return n.c.DeleteObject(ctx, id, object, key)
}

func (n nbiDevices) Reboot(ctx context.Context, id, commandKey string) error {
	return n.c.Reboot(ctx, id, commandKey)
}

// Download makes the device fetch a file from GenieACS's file store (its
// download task names a stored file, not a URL). A --file that is in
// acs.files_dir is uploaded there first, for the device's OUI and
// product class.
func (n nbiDevices) Download(ctx context.Context, id string, d server.DownloadRequest) (int, string, error) {
	if d.File == "" {
		return 0, "", fmt.Errorf("%w: GenieACS downloads files from its own store: give --file NAME (a file uploaded to GenieACS, or one in acs.files_dir that fieldagent uploads)", errUsage)
	}
	if d.File != filepath.Base(d.File) {
		return 0, "", fmt.Errorf("%w: --file %q: a file name, not a path", errUsage, d.File)
	}
	if n.filesDir != "" {
		if fh, err := os.Open(filepath.Join(n.filesDir, d.File)); err == nil {
			defer fh.Close()
			dev, err := n.c.Device(ctx, id)
			if err != nil {
				return 0, "", err
			}
			meta := genieacs.FileMeta{FileType: d.FileType, OUI: dev.DeviceId.OUI, ProductClass: dev.DeviceId.ProductClass}
			if err := n.c.UploadFile(ctx, d.File, meta, fh); err != nil {
				return 0, "", fmt.Errorf("upload %s to GenieACS: %w", d.File, err)
			}
		}
	}
	key := d.CommandKey
	resp, err := n.c.Download(ctx, id, cwmp.Download{CommandKey: key, FileType: d.FileType, URL: d.File, TargetFileName: d.TargetFileName, FileSize: d.FileSize})
	if err != nil {
		return 0, "", err
	}
	if !d.Wait {
		return int(resp.Status), key, nil
	}
	if _, err := n.c.WaitTransferComplete(ctx, id, key); err != nil {
		return 0, key, err
	}
	return 0, key, nil
}

// errUsage marks an nbiDevices error as the caller's.
var errUsage = errors.New("usage")

// nbiErr gives a GenieACS error its exit code.
func nbiErr(err error) error {
	var fault *cwmp.Fault
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errUsage), errors.Is(err, genieacs.ErrBadRequest), errors.Is(err, acs.ErrUnknownDevice),
		errors.Is(err, genieacs.ErrUnauthorized), errors.Is(err, errTooMany):
		return &usageError{err}
	case errors.Is(err, genieacs.ErrUnreachable), errors.Is(err, genieacs.ErrDeviceOffline), errors.Is(err, context.DeadlineExceeded):
		return &codedError{err: err, code: exitUnreachable}
	case errors.As(err, &fault):
		return &codedError{err: fmt.Errorf("%w (CWMP fault %d: %s)", err, fault.Code, fault.String), code: exitCheckFailed}
	}
	return err
}
