package cpe

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/datamodel"
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
	// DenyActiveNotify makes SetParameterAttributes with notification 2
	// fail with fault 9009 (TR-106 activeNotify "canDeny"), as CPEs do for
	// counters and other fast-changing values.
	DenyActiveNotify bool
	// AccessList is the SetParameterAttributes access list (e.g.
	// "Subscriber"); nil means only the ACS may write.
	AccessList []string
	// Hidden parameters (passwords) read back as "" over CWMP; Value and
	// Get still return the stored value.
	Hidden bool
	// Inform marks a forced inform parameter: every Inform carries it.
	Inform bool
	// Limits restricts the values SetParameterValues accepts (fault 9007);
	// the zero value accepts any value of the type.
	Limits datamodel.Limits
}

func (p Param) clone() Param {
	p.AccessList = slices.Clone(p.AccessList)
	return p
}

type template struct {
	params   []Param  // relative names
	objs     []string // relative sub-objects (and nested tables) created with each instance
	writable bool     // AddObject/DeleteObject allowed
}

// Tree is a thread-safe parameter tree. Objects are implied by parameter
// names; a name ending in "." addresses the subtree below it. The zero
// value is not usable: call NewTree or NewTreeFromModel.
//
// Values changed with SetValue (by the device, not the ACS) on parameters
// whose notification attribute is 1 or 2 are remembered for the engine's
// next "4 VALUE CHANGE" Inform; active ones (2) make the engine open a
// session promptly.
type Tree struct {
	mu sync.RWMutex
	// params and objects ("A.B." paths) are the tree's content.
	params  map[string]*Param
	objects map[string]bool
	// templates are keyed by table path, possibly a pattern with "{i}"
	// segments ("A.{i}.B.").
	templates map[string]*template
	// next is the next instance number by concrete table path.
	next map[string]uint32
	// changed holds parameters with notification whose value changed
	// since the last Inform that reported them.
	changed map[string]bool
	// observer, if set (by an Engine), hears of every value change.
	observer func(name string, notify int)
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{
		params: map[string]*Param{}, objects: map[string]bool{}, templates: map[string]*template{},
		next: map[string]uint32{}, changed: map[string]bool{},
	}
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

// Set defines or overwrites a parameter (internal: Writable is not checked,
// and no value change is notified).
func (t *Tree) Set(p Param) {
	p = p.clone()
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
	return p.clone(), true
}

// Value returns the value of name, "" if there is none.
func (t *Tree) Value(name string) string {
	p, _ := t.Get(name)
	return p.Value
}

// SetValue updates the value of an existing parameter as the device itself
// would (Writable is not checked). If the value changes and the parameter's
// notification is passive (1) or active (2), the change is reported in the
// engine's next Inform with "4 VALUE CHANGE"; an active one starts a
// session. It fails with ErrUnknownParam if name is not defined.
func (t *Tree) SetValue(name, value string) error {
	t.mu.Lock()
	p, ok := t.params[name]
	if !ok {
		t.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownParam, name)
	}
	if p.Value == value {
		t.mu.Unlock()
		return nil
	}
	p.Value = value
	notify := p.Notify
	if notify > 0 {
		t.changed[name] = true
	}
	obs := t.observer
	t.mu.Unlock()
	if obs != nil {
		obs(name, notify)
	}
	return nil
}

// setQuiet updates a value without notification (engine-maintained values
// such as ConnectionRequestURL and ParameterKey); if it does not exist,
// create defines it as a read-only string.
func (t *Tree) setQuiet(name, value string, create bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.params[name]; ok {
		p.Value = value
		return
	}
	if !create {
		return
	}
	t.params[name] = &Param{Name: name, Value: value, Type: "xsd:string"}
	t.addObjects(name)
}

// setObserver installs the engine's change observer.
func (t *Tree) setObserver(f func(name string, notify int)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observer = f
}

// takeChanged returns and forgets the parameters with notification that
// changed, as values to put in an Inform, and whether any is active.
func (t *Tree) takeChanged() (list []cwmp.ParameterValueStruct, active bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name := range t.changed {
		p, ok := t.params[name]
		if !ok || p.Notify == 0 {
			continue
		}
		active = active || p.Notify == 2
		list = append(list, cwmp.ParameterValueStruct{Name: name, Value: p.wireValue(), Type: p.Type})
	}
	clear(t.changed)
	sort.Slice(list, func(i, j int) bool { return pathLess(list[i].Name, list[j].Name) })
	return list, active
}

// putBackChanged re-marks names as changed after a failed Inform.
func (t *Tree) putBackChanged(list []cwmp.ParameterValueStruct) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, pv := range list {
		t.changed[pv.Name] = true
	}
}

// activeChanged reports whether a parameter with active notification
// changed since the last Inform.
func (t *Tree) activeChanged() (pending, active bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for name := range t.changed {
		if p, ok := t.params[name]; ok && p.Notify > 0 {
			pending = true
			if p.Notify == 2 {
				return true, true
			}
		}
	}
	return pending, false
}

func (p *Param) wireValue() string {
	if p.Hidden {
		return ""
	}
	return p.Value
}

// Template makes objectPath (ending in ".") a multi-instance object:
// AddObject on it creates objectPath+"{n}."+name for each of params (named
// relative to the instance, e.g. "Enable"), and DeleteObject removes an
// instance. Instances that already exist count for numbering, and numbers
// are never reused while the tree lives (until a factory reset). If a
// parameter "<parent>.<Object>NumberOfEntries" exists it is kept up to
// date. objectPath may contain "{i}" segments (a table inside each
// instance of another table).
func (t *Tree) Template(objectPath string, params []Param) {
	t.defineTemplate(objectPath, params, nil, true)
}

func (t *Tree) defineTemplate(objectPath string, params []Param, objs []string, writable bool) {
	if !strings.HasSuffix(objectPath, ".") {
		objectPath += "."
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tp := &template{writable: writable, objs: slices.Clone(objs)}
	for _, p := range params {
		tp.params = append(tp.params, p.clone())
	}
	t.templates[objectPath] = tp
	if !strings.Contains(objectPath, "{i}") {
		t.objects[objectPath] = true
		t.addObjects(objectPath)
	}
}

// findTemplate returns the template of a concrete table path. Caller holds t.mu.
func (t *Tree) findTemplate(table string) *template {
	if tp := t.templates[table]; tp != nil {
		return tp
	}
	for pat, tp := range t.templates {
		if strings.Contains(pat, "{i}") && matchPattern(pat, table) {
			return tp
		}
	}
	return nil
}

// matchPattern reports whether the concrete path matches pattern, where a
// "{i}" segment matches an instance number.
func matchPattern(pattern, path string) bool {
	if strings.Count(pattern, ".") != strings.Count(path, ".") {
		return false
	}
	for {
		ps, prest, pok := strings.Cut(pattern, ".")
		s, rest, _ := strings.Cut(path, ".")
		if ps != s {
			if ps != "{i}" {
				return false
			}
			if _, err := strconv.ParseUint(s, 10, 32); err != nil {
				return false
			}
		}
		if !pok {
			return true
		}
		pattern, path = prest, rest
	}
}

// instances lists existing instance numbers under a table path. Caller holds t.mu.
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
	slices.Sort(out)
	return out
}

// nextFor returns the next instance number of a concrete table, starting
// after the highest existing instance. Caller holds t.mu.
func (t *Tree) nextFor(table string) uint32 {
	n, ok := t.next[table]
	if !ok {
		n = 1
		for _, i := range t.instances(table) {
			if i >= n {
				n = i + 1
			}
		}
		t.next[table] = n
	}
	return n
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
		out = append(out, p.clone())
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].Name, out[j].Name) })
	return out
}

// treeState is a saved copy of a tree's content (factory defaults).
type treeState struct {
	params  []Param
	objects []string
}

// save copies the tree's parameters and objects.
func (t *Tree) save() treeState {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := treeState{params: make([]Param, 0, len(t.params))}
	for _, p := range t.params {
		s.params = append(s.params, p.clone())
	}
	for o := range t.objects {
		s.objects = append(s.objects, o)
	}
	return s
}

// restore replaces the tree's content with s (used by FactoryReset):
// instance numbering starts again.
func (t *Tree) restore(s treeState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.params = make(map[string]*Param, len(s.params))
	t.objects = make(map[string]bool, len(s.objects))
	for _, p := range s.params {
		p = p.clone()
		t.params[p.Name] = &p
		t.addObjects(p.Name)
	}
	for _, o := range s.objects {
		t.objects[o] = true
	}
	clear(t.next)
	clear(t.changed)
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
					sub = append(sub, cwmp.ParameterValueStruct{Name: n, Value: p.wireValue(), Type: p.Type})
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
		out = append(out, cwmp.ParameterValueStruct{Name: name, Value: p.wireValue(), Type: p.Type})
	}
	return out, nil
}

// objectWritable: writable tables accept AddObject, their instances
// DeleteObject. Caller holds t.mu.
func (t *Tree) objectWritable(path string) bool {
	if tp := t.findTemplate(path); tp != nil {
		return tp.writable
	}
	trimmed := strings.TrimSuffix(path, ".")
	i := strings.LastIndexByte(trimmed, '.')
	if i < 0 {
		return false
	}
	if _, err := strconv.ParseUint(trimmed[i+1:], 10, 32); err != nil {
		return false
	}
	tp := t.findTemplate(trimmed[:i+1])
	return tp != nil && tp.writable
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

// checkValue checks v against xsd type typ and limits; unknown types accept
// anything.
func checkValue(typ string, limits datamodel.Limits, v string) error {
	dt, ok := datamodel.ParseType(typ)
	if !ok {
		return nil
	}
	return datamodel.CheckValue(dt, limits, v)
}

// validValue reports whether v is a valid value of xsd type typ.
func validValue(typ, v string) bool {
	return checkValue(typ, datamodel.Limits{}, v) == nil
}

// sameType reports whether a SetParameterValues xsi:type fits a parameter
// of type want. "xsd:string" fits every type: the codec reports it for
// values sent without xsi:type, as many ACSs do.
func sameType(got, want string) bool {
	g := normType(got)
	if g == "xsd:string" || g == want {
		return true
	}
	gt, ok1 := datamodel.ParseType(g)
	wt, ok2 := datamodel.ParseType(want)
	return ok1 && ok2 && gt == wt
}

// applySet validates list all-or-nothing and applies it, returning the
// previous parameters for rollback.
func (t *Tree) applySet(list []cwmp.ParameterValueStruct) ([]Param, *cwmp.Fault) {
	if len(list) == 0 {
		return nil, fault(cwmp.FaultInvalidArguments, "SetParameterValues with an empty ParameterList")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var faults []cwmp.SetParameterValuesFault
	seen := map[string]bool{}
	for _, pv := range list {
		if pv.Name == "" || strings.HasSuffix(pv.Name, ".") {
			return nil, fault(cwmp.FaultInvalidArguments, fmt.Sprintf("SetParameterValues needs full parameter names, not the partial path %q", pv.Name))
		}
		if seen[pv.Name] {
			return nil, fault(cwmp.FaultInvalidArguments, "parameter set twice: "+pv.Name)
		}
		seen[pv.Name] = true
		p, ok := t.params[pv.Name]
		code, msg := 0, ""
		switch {
		case !ok:
			code = cwmp.FaultInvalidParameterName
		case !p.Writable:
			code = cwmp.FaultNonWritableParameter
		case !sameType(pv.Type, p.Type):
			code = cwmp.FaultInvalidParameterType
			msg = fmt.Sprintf("%s is %s, not %s", pv.Name, p.Type, normType(pv.Type))
		default:
			if err := checkValue(p.Type, p.Limits, pv.Value); err != nil {
				code = cwmp.FaultInvalidParameterValue
				msg = strings.TrimPrefix(err.Error(), datamodel.ErrBadValue.Error()+": ")
			}
		}
		if code != 0 {
			if msg == "" {
				msg = cwmp.FaultMeaning(code)
			}
			faults = append(faults, cwmp.SetParameterValuesFault{ParameterName: pv.Name, FaultCode: code, FaultString: msg})
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
		delete(t.changed, pv.Name) // the ACS knows the value it set
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
	tp := t.findTemplate(path)
	if tp == nil || !t.objects[path] {
		return 0, fault(cwmp.FaultInvalidParameterName, "not a multi-instance object: "+path)
	}
	if !tp.writable {
		return 0, fault(cwmp.FaultInvalidParameterName, "the table does not accept AddObject (fixed instances): "+path)
	}
	return t.addInstance(path, tp), nil
}

// addInstance creates the next instance of a table. Caller holds t.mu.
func (t *Tree) addInstance(path string, tp *template) uint32 {
	n := t.nextFor(path)
	t.next[path] = n + 1
	inst := path + strconv.FormatUint(uint64(n), 10) + "."
	t.objects[inst] = true
	for _, o := range tp.objs {
		t.addObjects(inst + o)
	}
	for _, p := range tp.params {
		p = p.clone()
		p.Name = inst + p.Name
		p.Type = normType(p.Type)
		t.params[p.Name] = &p
		t.addObjects(p.Name)
	}
	t.updateCount(path)
	return n
}

// AddInstance creates the next instance of the multi-instance object table
// (a path ending in ".", e.g. "InternetGatewayDevice.LANDevice.1.Hosts.Host.")
// as the device itself does, writable table or not: result tables such as
// TR-143 PerConnectionResult and LAN host tables. The instance gets the
// template's parameters with their defaults; the table's NumberOfEntries
// parameter is updated. Nothing is notified. It fails with ErrUnknownParam
// when table is not a multi-instance object of the tree.
func (t *Tree) AddInstance(table string) (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tp := t.findTemplate(table)
	if tp == nil || !t.objects[table] {
		return 0, fmt.Errorf("%w: %s is not a multi-instance object", ErrUnknownParam, table)
	}
	return t.addInstance(table, tp), nil
}

// ClearTable deletes every instance of the multi-instance object table and
// restarts its numbering at 1, as a device does when it discards the rows
// of a result table (TR-143: "All instances are removed when
// DiagnosticsState is set to Requested or None"). The table's
// NumberOfEntries parameter becomes 0. It fails with ErrUnknownParam when
// table is not a multi-instance object of the tree.
func (t *Tree) ClearTable(table string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.findTemplate(table) == nil || !t.objects[table] {
		return fmt.Errorf("%w: %s is not a multi-instance object", ErrUnknownParam, table)
	}
	for _, n := range t.instances(table) {
		inst := table + strconv.FormatUint(uint64(n), 10) + "."
		for name := range t.params {
			if strings.HasPrefix(name, inst) {
				delete(t.params, name)
				delete(t.changed, name)
			}
		}
		for o := range t.objects {
			if strings.HasPrefix(o, inst) {
				delete(t.objects, o)
			}
		}
		for tbl := range t.next {
			if strings.HasPrefix(tbl, inst) {
				delete(t.next, tbl)
			}
		}
	}
	delete(t.next, table)
	t.updateCount(table)
	return nil
}

// deleteObject implements DeleteObject.
func (t *Tree) deleteObject(path string) *cwmp.Fault {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !strings.HasSuffix(path, ".") || !t.objects[path] || t.findTemplate(path) != nil || !t.objectWritable(path) {
		return fault(cwmp.FaultInvalidParameterName, "not a deletable object instance: "+path)
	}
	trimmed := strings.TrimSuffix(path, ".")
	table := trimmed[:strings.LastIndexByte(trimmed, '.')+1]
	t.nextFor(table) // numbering continues after the deleted instance
	for n := range t.params {
		if strings.HasPrefix(n, path) {
			delete(t.params, n)
			delete(t.changed, n)
		}
	}
	for o := range t.objects {
		if strings.HasPrefix(o, path) {
			delete(t.objects, o)
		}
	}
	for tbl := range t.next {
		if strings.HasPrefix(tbl, path) {
			delete(t.next, tbl)
		}
	}
	t.updateCount(table)
	return nil
}

// attrChange is one SetParameterAttributesStruct.
type attrChange struct {
	name         string
	notifyChange bool
	notify       int
	aclChange    bool
	acl          []string
}

// attr is one ParameterAttributeStruct.
type attr struct {
	name   string
	notify int
	acl    []string
}

// matchParams returns the parameters a full or partial name addresses.
// Caller holds t.mu.
func (t *Tree) matchParams(name string) ([]*Param, *cwmp.Fault) {
	if name != "" && !strings.HasSuffix(name, ".") {
		p, ok := t.params[name]
		if !ok {
			return nil, fault(cwmp.FaultInvalidParameterName, "no such parameter: "+name)
		}
		return []*Param{p}, nil
	}
	if name != "" && !t.objects[name] {
		return nil, fault(cwmp.FaultInvalidParameterName, "no such object: "+name)
	}
	var out []*Param
	for n, p := range t.params {
		if strings.HasPrefix(n, name) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].Name, out[j].Name) })
	return out, nil
}

// setAttributes implements SetParameterAttributes, all or nothing. A name
// ending in "." (or "") addresses every parameter below it.
func (t *Tree) setAttributes(list []attrChange) *cwmp.Fault {
	if len(list) == 0 {
		return fault(cwmp.FaultInvalidArguments, "SetParameterAttributes with an empty ParameterList")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	targets := make([][]*Param, len(list))
	for i, c := range list {
		if c.notifyChange && (c.notify < 0 || c.notify > 2) {
			return fault(cwmp.FaultInvalidArguments, fmt.Sprintf("notification %d for %s is not 0, 1 or 2", c.notify, c.name))
		}
		if c.aclChange {
			for _, a := range c.acl {
				if strings.TrimSpace(a) == "" {
					return fault(cwmp.FaultInvalidArguments, "empty AccessList entry for "+c.name)
				}
			}
		}
		ps, f := t.matchParams(c.name)
		if f != nil {
			return f
		}
		if c.notifyChange && c.notify == 2 {
			for _, p := range ps {
				if p.DenyActiveNotify {
					return fault(cwmp.FaultNotificationRejected, "active notification is not supported for "+p.Name)
				}
			}
		}
		targets[i] = ps
	}
	for i, c := range list {
		for _, p := range targets[i] {
			if c.notifyChange {
				p.Notify = c.notify
				if c.notify == 0 {
					delete(t.changed, p.Name)
				}
			}
			if c.aclChange {
				p.AccessList = slices.Clone(c.acl)
			}
		}
	}
	return nil
}

// getAttributes implements GetParameterAttributes.
func (t *Tree) getAttributes(names []string) ([]attr, *cwmp.Fault) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []attr
	for _, name := range names {
		ps, f := t.matchParams(name)
		if f != nil {
			return nil, f
		}
		for _, p := range ps {
			out = append(out, attr{name: p.Name, notify: p.Notify, acl: slices.Clone(p.AccessList)})
		}
	}
	return out, nil
}

// SetNotification sets the notification attribute (0, 1, 2) of name, or of
// every parameter below a partial path ending in "."; as the ACS would with
// SetParameterAttributes. It fails with ErrUnknownParam, or ErrNotification
// if a parameter refuses active notification.
func (t *Tree) SetNotification(name string, notify int) error {
	f := t.setAttributes([]attrChange{{name: name, notifyChange: true, notify: notify}})
	switch {
	case f == nil:
		return nil
	case f.Code == cwmp.FaultInvalidParameterName:
		return fmt.Errorf("%w: %s", ErrUnknownParam, name)
	case f.Code == cwmp.FaultNotificationRejected:
		return fmt.Errorf("%w: %s", ErrNotification, f.String)
	}
	return fmt.Errorf("cpe: set notification of %s: %w", name, f)
}
