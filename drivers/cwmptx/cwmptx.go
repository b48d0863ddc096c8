// Package cwmptx makes a TR-069 configuration change a transaction:
// snapshot the objects it touches, apply, read back and verify, and on any
// failure (a CWMP fault, a verification mismatch, a lost session) restore
// the snapshot and report both outcomes as a *drivers.RestoreError. The e8
// and itv drivers share it.
package cwmptx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"fieldagent/drivers"
	"fieldagent/tr069/cwmp"
)

// acsClient is the subset of acs.Server that transactions use.
type acsClient interface {
	GetParameterValues(ctx context.Context, deviceID string, names ...string) ([]cwmp.ParameterValueStruct, error)
	SetParameterValues(ctx context.Context, deviceID string, params []cwmp.ParameterValueStruct, key string) error
	GetParameterNames(ctx context.Context, deviceID, path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, error)
	DeleteObject(ctx context.Context, deviceID, objectName, key string) error
}

// Device runs transactions on one CPE known to an ACS.
type Device struct {
	ACS      acsClient
	DeviceID string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// RestoreTimeout bounds the rollback after a failed change, which runs
	// even when the caller's ctx has ended; zero means 30s.
	RestoreTimeout time.Duration
}

// New returns a Device for deviceID on acs.
func New(acs acsClient, deviceID string) *Device {
	return &Device{ACS: acs, DeviceID: deviceID}
}

func (d *Device) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Get reads names (parameters or partial paths) into a map by full name.
func (d *Device) Get(ctx context.Context, names ...string) (map[string]string, error) {
	pv, err := d.ACS.GetParameterValues(ctx, d.DeviceID, names...)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(pv))
	for _, p := range pv {
		m[p.Name] = p.Value
	}
	return m, nil
}

// Snapshot reads the writable parameters and the object instances under
// roots (object paths ending in "."). Write-only values (passwords, keys)
// read back empty on every gateway and cannot be restored.
func (d *Device) Snapshot(ctx context.Context, roots ...string) (drivers.Snapshot, error) {
	s := drivers.Snapshot{Roots: roots, Values: map[string]string{}, Types: map[string]string{}}
	for _, r := range roots {
		infos, err := d.ACS.GetParameterNames(ctx, d.DeviceID, r, false)
		if err != nil {
			return drivers.Snapshot{}, fmt.Errorf("snapshot %s: list names: %w", r, err)
		}
		writable := map[string]bool{}
		for _, in := range infos {
			if strings.HasSuffix(in.Name, ".") {
				if isInstance(in.Name) {
					s.Instances = append(s.Instances, in.Name)
				}
				continue
			}
			writable[in.Name] = in.Writable
		}
		pv, err := d.ACS.GetParameterValues(ctx, d.DeviceID, r)
		if err != nil {
			return drivers.Snapshot{}, fmt.Errorf("snapshot %s: read values: %w", r, err)
		}
		for _, p := range pv {
			if writable[p.Name] {
				s.Values[p.Name] = p.Value
				s.Types[p.Name] = p.Type
			}
		}
	}
	sort.Strings(s.Instances)
	return s, nil
}

// isInstance reports whether an object path names an instance of a
// multi-instance object ("...WANPPPConnection.2.").
func isInstance(path string) bool {
	p := strings.TrimSuffix(path, ".")
	i := strings.LastIndex(p, ".")
	seg := p[i+1:]
	if seg == "" {
		return false
	}
	for _, c := range seg {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Restore puts the objects of s back as they were: it deletes the instances
// created since, writes back the values that changed and reads them again
// to check. An instance deleted since cannot be recreated with its number;
// Restore reports it.
func (d *Device) Restore(ctx context.Context, s drivers.Snapshot) error {
	cur, err := d.Snapshot(ctx, s.Roots...)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	had := make(map[string]bool, len(s.Instances))
	for _, in := range s.Instances {
		had[in] = true
	}
	var errs []error
	var deleted []string
	for _, in := range cur.Instances { // sorted: parents before children
		if had[in] || under(in, deleted) {
			continue
		}
		if err := d.ACS.DeleteObject(ctx, d.DeviceID, in, "fieldagent-rollback"); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", in, err))
			continue
		}
		deleted = append(deleted, in)
		d.log().Info("rollback deleted object", "device", d.DeviceID, "object", in)
	}
	now := map[string]bool{}
	for _, in := range cur.Instances {
		now[in] = true
	}
	for _, in := range s.Instances {
		if !now[in] {
			errs = append(errs, fmt.Errorf("%s was deleted and cannot be recreated with the same instance number", in))
		}
	}
	var ps []cwmp.ParameterValueStruct
	for name, v := range s.Values {
		if c, ok := cur.Values[name]; ok && !SameValue(c, v) {
			ps = append(ps, cwmp.ParameterValueStruct{Name: name, Value: v, Type: s.Types[name]})
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	if len(ps) > 0 {
		if err := d.ACS.SetParameterValues(ctx, d.DeviceID, ps, "fieldagent-rollback"); err != nil {
			errs = append(errs, fmt.Errorf("write back %d values: %w", len(ps), err))
		} else if err := d.Verify(ctx, ps); err != nil {
			errs = append(errs, err)
		}
		d.log().Info("rollback wrote back values", "device", d.DeviceID, "count", len(ps))
	}
	return errors.Join(errs...)
}

func under(path string, parents []string) bool {
	for _, p := range parents {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// SameValue compares two parameter values, treating the boolean spellings
// alike.
func SameValue(a, b string) bool {
	norm := func(v string) string {
		switch strings.ToLower(v) {
		case "true":
			return "1"
		case "false":
			return "0"
		}
		return v
	}
	return norm(a) == norm(b)
}

// Verify reads ps back and reports every value that differs, wrapping
// drivers.ErrVerify. Hidden (write-only) parameters must not be in ps.
func (d *Device) Verify(ctx context.Context, ps []cwmp.ParameterValueStruct) error {
	if len(ps) == 0 {
		return nil
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	got, err := d.Get(ctx, names...)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	var diffs []string
	for _, p := range ps {
		if g := got[p.Name]; !SameValue(g, p.Value) {
			diffs = append(diffs, fmt.Sprintf("%s is %q, wrote %q", p.Name, g, p.Value))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%w: %s", drivers.ErrVerify, strings.Join(diffs, "; "))
	}
	return nil
}

// Step is one part of a change: it writes to the device and returns the
// values it wrote that can be read back (never write-only ones).
type Step func(ctx context.Context) ([]cwmp.ParameterValueStruct, error)

// Transact is "every change is a transaction": snapshot roots, run the steps,
// read back and verify what they wrote, and on any failure (a fault, a
// mismatch, a lost session) restore the snapshot with a fresh deadline and
// return a *drivers.RestoreError that carries both outcomes. On success it
// returns an Undo that restores the snapshot.
func (d *Device) Transact(ctx context.Context, op string, roots []string, steps ...Step) (drivers.Undo, error) {
	snap, err := d.Snapshot(ctx, roots...)
	if err != nil {
		return nil, fmt.Errorf("%s: nothing changed: %w", op, err)
	}
	var written []cwmp.ParameterValueStruct
	for _, st := range steps {
		var ps []cwmp.ParameterValueStruct
		ps, err = st(ctx)
		written = append(written, ps...)
		if err != nil {
			break
		}
	}
	if err == nil {
		err = d.Verify(ctx, written)
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.restoreTimeout())
		defer cancel()
		rerr := d.Restore(rctx, snap)
		if rerr != nil {
			d.log().Error("rollback failed", "device", d.DeviceID, "op", op, "err", rerr)
		} else {
			d.log().Warn("change failed and was rolled back", "device", d.DeviceID, "op", op, "err", err)
		}
		return nil, &drivers.RestoreError{Op: op, Err: err, RestoreErr: rerr}
	}
	return func(ctx context.Context) error {
		if err := d.Restore(ctx, snap); err != nil {
			return fmt.Errorf("undo %s: %w", op, err)
		}
		return nil
	}, nil
}

func (d *Device) restoreTimeout() time.Duration {
	if d.RestoreTimeout > 0 {
		return d.RestoreTimeout
	}
	return 30 * time.Second
}

// Set writes ps and returns the readable ones (those not in hidden) for
// verification.
func (d *Device) Set(ctx context.Context, key string, ps []cwmp.ParameterValueStruct, hidden ...string) ([]cwmp.ParameterValueStruct, error) {
	if err := d.ACS.SetParameterValues(ctx, d.DeviceID, ps, key); err != nil {
		return nil, err
	}
	var out []cwmp.ParameterValueStruct
	for _, p := range ps {
		skip := false
		for _, h := range hidden {
			if strings.HasSuffix(p.Name, h) {
				skip = true
			}
		}
		if !skip {
			out = append(out, p)
		}
	}
	return out, nil
}

// Str is an xsd:string value.
func Str(name, v string) cwmp.ParameterValueStruct {
	return cwmp.ParameterValueStruct{Name: name, Value: v, Type: "xsd:string"}
}

// Bool is an xsd:boolean value ("1" or "0").
func Bool(name string, v bool) cwmp.ParameterValueStruct {
	s := "0"
	if v {
		s = "1"
	}
	return cwmp.ParameterValueStruct{Name: name, Value: s, Type: "xsd:boolean"}
}

// Uint is an xsd:unsignedInt value.
func Uint(name string, v int) cwmp.ParameterValueStruct {
	return cwmp.ParameterValueStruct{Name: name, Value: fmt.Sprint(v), Type: "xsd:unsignedInt"}
}
