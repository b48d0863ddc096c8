package cpe

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"fieldagent/tr069/cwmp"
)

// Param is one parameter of a CPE's data model.
type Param struct {
	// Name is the full path, e.g. "InternetGatewayDevice.DeviceInfo.UpTime".
	Name  string
	Value string
	// Type is the xsd type, e.g. "xsd:unsignedInt"; empty means "xsd:string".
	Type string
	// Writable allows SetParameterValues from the ACS.
	Writable bool
	// Notify is the notification attribute (0 off, 1 passive, 2 active).
	Notify int
}

type template struct {
	params []Param // relative names
	next   uint32  // next instance number
}

// Tree is a thread-safe parameter tree. Objects are implied by parameter
// names; a name ending in "." addresses the subtree below it. The zero
// value is not usable: call NewTree.
type Tree struct {
	mu        sync.RWMutex
	params    map[string]*Param
	objects   map[string]bool // "A.B." paths
	templates map[string]*template
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{params: map[string]*Param{}, objects: map[string]bool{}, templates: map[string]*template{}}
}

func normType(t string) string {
	t = strings.TrimSpace(t)
	if i := strings.LastIndexByte(t, ':'); i >= 0 {
		t = t[i+1:]
	}
	if t == "" {
		return "xsd:string"
	}
	return "xsd:" + t
}

// addObjects records every object prefix of name. Caller holds t.mu.
func (t *Tree) addObjects(name string) {
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			t.objects[name[:i+1]] = true
		}
	}
}

// Set defines or overwrites a parameter (internal: Writable is not checked).
func (t *Tree) Set(p Param) {
	p.Type = normType(p.Type)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.params[p.Name] = &p
	t.addObjects(p.Name)
}

// Get returns the parameter name, and false if there is none.
func (t *Tree) Get(name string) (Param, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, ok := t.params[name]
	if !ok {
		return Param{}, false
	}
	return *p, true
}

// Value returns the value of name, "" if there is none.
func (t *Tree) Value(name string) string {
	p, _ := t.Get(name)
	return p.Value
}

// SetValue updates the value of an existing parameter (internal: Writable
// is not checked). It fails with ErrUnknownParam if name is not defined.
func (t *Tree) SetValue(name, value string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.params[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownParam, name)
	}
	p.Value = value
	return nil
}

// Template makes objectPath (ending in ".") a multi-instance object:
// AddObject on it creates objectPath+"{n}."+name for each of params (named
// relative to the instance, e.g. "Enable"), and DeleteObject removes an
// instance. Instances that already exist count for numbering. If a
// parameter "<parent>.<Object>NumberOfEntries" exists it is kept up to date.
func (t *Tree) Template(objectPath string, params []Param) {
	if !strings.HasSuffix(objectPath, ".") {
		objectPath += "."
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tp := &template{params: append([]Param(nil), params...), next: 1}
	for _, n := range t.instances(objectPath) {
		if n >= tp.next {
			tp.next = n + 1
		}
	}
	t.templates[objectPath] = tp
	t.objects[objectPath] = true
	t.addObjects(objectPath)
}

// instances lists existing instance numbers under a template path. Caller holds t.mu.
func (t *Tree) instances(path string) []uint32 {
	seen := map[uint32]bool{}
	for o := range t.objects {
		rest, ok := strings.CutPrefix(o, path)
		if !ok {
			continue
		}
		seg, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.ParseUint(seg, 10, 32); err == nil {
			seen[uint32(n)] = true
		}
	}
	out := make([]uint32, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// updateCount refreshes "<parent>.<Object>NumberOfEntries". Caller holds t.mu.
func (t *Tree) updateCount(path string) {
	trimmed := strings.TrimSuffix(path, ".")
	i := strings.LastIndexByte(trimmed, '.')
	counter := trimmed[:i+1] + trimmed[i+1:] + "NumberOfEntries"
	if p, ok := t.params[counter]; ok {
		p.Value = strconv.Itoa(len(t.instances(path)))
	}
}

// Snapshot returns a copy of every parameter, in tree order.
func (t *Tree) Snapshot() []Param {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Param, 0, len(t.params))
	for _, p := range t.params {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].Name, out[j].Name) })
	return out
}

// restore replaces every parameter with ps (used by FactoryReset).
func (t *Tree) restore(ps []Param) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.params = map[string]*Param{}
	t.objects = map[string]bool{}
	for i := range ps {
		p := ps[i]
		t.params[p.Name] = &p
		t.addObjects(p.Name)
	}
	for path, tp := range t.templates {
		t.objects[path] = true
		t.addObjects(path)
		tp.next = 1
		for _, n := range t.instances(path) {
			if n >= tp.next {
				tp.next = n + 1
			}
		}
	}
}

// pathLess orders paths segment by segment, numbers numerically.
func pathLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		an, aerr := strconv.ParseUint(as[i], 10, 64)
		bn, berr := strconv.ParseUint(bs[i], 10, 64)
		if aerr == nil && berr == nil {
			return an < bn
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}

func fault(code int, msg string) *cwmp.Fault { return cwmp.NewFault(code, msg) }

// getValues implements GetParameterValues.
func (t *Tree) getValues(names []string) ([]cwmp.ParameterValueStruct, *cwmp.Fault) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []cwmp.ParameterValueStruct
	for _, name := range names {
		if name == "" || strings.HasSuffix(name, ".") {
			if name != "" && !t.objects[name] {
				return nil, fault(cwmp.FaultInvalidParameterName, "no such object: "+name)
			}
			var sub []cwmp.ParameterValueStruct
			for n, p := range t.params {
				if strings.HasPrefix(n, name) {
					sub = append(sub, cwmp.ParameterValueStruct{Name: n, Value: p.Value, Type: p.Type})
				}
			}
			sort.Slice(sub, func(i, j int) bool { return pathLess(sub[i].Name, sub[j].Name) })
			out = append(out, sub...)
			continue
		}
		p, ok := t.params[name]
		if !ok {
			return nil, fault(cwmp.FaultInvalidParameterName, "no such parameter: "+name)
		}
		out = append(out, cwmp.ParameterValueStruct{Name: name, Value: p.Value, Type: p.Type})
	}
	return out, nil
}

// objectWritable: templates accept AddObject, instances accept DeleteObject. Caller holds t.mu.
func (t *Tree) objectWritable(path string) bool {
	if t.templates[path] != nil {
		return true
	}
	trimmed := strings.TrimSuffix(path, ".")
	i := strings.LastIndexByte(trimmed, '.')
	if i < 0 {
		return false
	}
	if _, err := strconv.ParseUint(trimmed[i+1:], 10, 32); err != nil {
		return false
	}
	return t.templates[trimmed[:i+1]] != nil
}

// getNames implements GetParameterNames.
func (t *Tree) getNames(path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, *cwmp.Fault) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if path != "" && !strings.HasSuffix(path, ".") {
		p, ok := t.params[path]
		if !ok {
			return nil, fault(cwmp.FaultInvalidParameterName, "no such parameter: "+path)
		}
		if nextLevel {
			return nil, fault(cwmp.FaultInvalidArguments, "NextLevel true on a parameter: "+path)
		}
		return []cwmp.ParameterInfoStruct{{Name: path, Writable: p.Writable}}, nil
	}
	if path != "" && !t.objects[path] {
		return nil, fault(cwmp.FaultInvalidParameterName, "no such object: "+path)
	}
	var out []cwmp.ParameterInfoStruct
	depth := strings.Count(path, ".")
	if path != "" && !nextLevel {
		out = append(out, cwmp.ParameterInfoStruct{Name: path, Writable: t.objectWritable(path)})
	}
	for o := range t.objects {
		if o == path || !strings.HasPrefix(o, path) {
			continue
		}
		if nextLevel && strings.Count(o, ".") != depth+1 {
			continue
		}
		out = append(out, cwmp.ParameterInfoStruct{Name: o, Writable: t.objectWritable(o)})
	}
	for n, p := range t.params {
		if !strings.HasPrefix(n, path) {
			continue
		}
		if nextLevel && strings.Count(n, ".") != depth {
			continue
		}
		out = append(out, cwmp.ParameterInfoStruct{Name: n, Writable: p.Writable})
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].Name, out[j].Name) })
	return out, nil
}

// validValue reports whether v is a valid value of xsd type typ.
func validValue(typ, v string) bool {
	var err error
	switch typ {
	case "xsd:boolean":
		_, err = cwmp.ParseBool(v)
		if strings.TrimSpace(v) == "" {
			return false
		}
	case "xsd:int":
		_, err = strconv.ParseInt(v, 10, 32)
	case "xsd:long":
		_, err = strconv.ParseInt(v, 10, 64)
	case "xsd:unsignedInt":
		_, err = strconv.ParseUint(v, 10, 32)
	case "xsd:unsignedLong":
		_, err = strconv.ParseUint(v, 10, 64)
	case "xsd:dateTime":
		if cwmp.ParseTime(v).IsZero() && !strings.HasPrefix(v, "0001-01-01") {
			return false
		}
	case "xsd:base64":
		_, err = base64.StdEncoding.DecodeString(v)
	}
	return err == nil
}

// applySet validates list all-or-nothing and applies it, returning the
// previous parameters for rollback.
func (t *Tree) applySet(list []cwmp.ParameterValueStruct) ([]Param, *cwmp.Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var faults []cwmp.SetParameterValuesFault
	seen := map[string]bool{}
	for _, pv := range list {
		if seen[pv.Name] {
			return nil, fault(cwmp.FaultInvalidArguments, "parameter set twice: "+pv.Name)
		}
		seen[pv.Name] = true
		p, ok := t.params[pv.Name]
		code := 0
		switch {
		case !ok:
			code = cwmp.FaultInvalidParameterName
		case !p.Writable:
			code = cwmp.FaultNonWritableParameter
		case normType(pv.Type) != p.Type && normType(pv.Type) != "xsd:string":
			code = cwmp.FaultInvalidParameterType
		case !validValue(p.Type, pv.Value):
			code = cwmp.FaultInvalidParameterValue
		}
		if code != 0 {
			faults = append(faults, cwmp.SetParameterValuesFault{ParameterName: pv.Name, FaultCode: code, FaultString: cwmp.FaultMeaning(code)})
		}
	}
	if len(faults) > 0 {
		// The top-level code is the parameters' common code (what most
		// CPEs send, e.g. 9008 for a read-only parameter), else 9003.
		code := faults[0].FaultCode
		for _, f := range faults[1:] {
			if f.FaultCode != code {
				code = cwmp.FaultInvalidArguments
			}
		}
		return nil, &cwmp.Fault{Code: code, String: cwmp.FaultMeaning(code), SetParameterValuesFaults: faults}
	}
	old := make([]Param, 0, len(list))
	for _, pv := range list {
		p := t.params[pv.Name]
		old = append(old, *p)
		p.Value = pv.Value
	}
	return old, nil
}

// rollback restores values saved by applySet.
func (t *Tree) rollback(old []Param) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range old {
		if p, ok := t.params[o.Name]; ok {
			p.Value = o.Value
		}
	}
}

// addObject implements AddObject.
func (t *Tree) addObject(path string) (uint32, *cwmp.Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tp := t.templates[path]
	if tp == nil {
		return 0, fault(cwmp.FaultInvalidParameterName, "not a multi-instance object: "+path)
	}
	n := tp.next
	tp.next++
	inst := path + strconv.FormatUint(uint64(n), 10) + "."
	t.objects[inst] = true
	for _, p := range tp.params {
		p.Name = inst + p.Name
		p.Type = normType(p.Type)
		t.params[p.Name] = &p
		t.addObjects(p.Name)
	}
	t.updateCount(path)
	return n, nil
}

// deleteObject implements DeleteObject.
func (t *Tree) deleteObject(path string) *cwmp.Fault {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !strings.HasSuffix(path, ".") || !t.objects[path] || t.templates[path] != nil || !t.objectWritable(path) {
		return fault(cwmp.FaultInvalidParameterName, "not a deletable object instance: "+path)
	}
	for n := range t.params {
		if strings.HasPrefix(n, path) {
			delete(t.params, n)
		}
	}
	for o := range t.objects {
		if strings.HasPrefix(o, path) {
			delete(t.objects, o)
		}
	}
	trimmed := strings.TrimSuffix(path, ".")
	t.updateCount(trimmed[:strings.LastIndexByte(trimmed, '.')+1])
	return nil
}
