package nbisim

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"fieldagent/tr069/acs"
)

// timeFormat is how GenieACS writes dates: ISO 8601, milliseconds, Z.
const timeFormat = "2006-01-02T15:04:05.000Z"

func isoTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// pnode is one node of a device's parameter tree as nbisim caches it: a
// leaf {_value,_type,_timestamp,_writable} or an object
// {_object,_timestamp,_writable} with children.
type pnode struct {
	object   bool
	hasValue bool
	value    string // lexical form; typed when encoded
	typ      string
	ts       time.Time // _timestamp; zero: none
	writable int8      // 0 unknown, 1 true, -1 false
	kids     map[string]*pnode
}

// child returns the child name of n, creating an object (or, with leaf, a
// leaf) node when it does not exist.
func (n *pnode) child(name string, leaf bool) *pnode {
	if n.kids == nil {
		n.kids = map[string]*pnode{}
	}
	c := n.kids[name]
	if c == nil {
		c = &pnode{object: !leaf}
		n.kids[name] = c
	}
	return c
}

// at returns the node at the dotted path (no trailing dot), creating the
// objects on the way and, with leaf, a leaf at the end.
func (n *pnode) at(path string, leaf bool) *pnode {
	segs := strings.Split(path, ".")
	cur := n
	for i, s := range segs {
		cur = cur.child(s, leaf && i == len(segs)-1)
	}
	if leaf {
		cur.object = false
	}
	return cur
}

// find returns the node at path or nil.
func (n *pnode) find(path string) *pnode {
	if path == "" {
		return n
	}
	cur := n
	for _, s := range strings.Split(path, ".") {
		if cur.kids == nil {
			return nil
		}
		if cur = cur.kids[s]; cur == nil {
			return nil
		}
	}
	return cur
}

// remove deletes the node at path; it reports whether it existed.
func (n *pnode) remove(path string) bool {
	parent, last := n, path
	if i := strings.LastIndex(path, "."); i >= 0 {
		parent, last = n.find(path[:i]), path[i+1:]
	}
	if parent == nil || parent.kids[last] == nil {
		return false
	}
	delete(parent.kids, last)
	return true
}

// setValue records a value the device reported for the leaf name.
func (n *pnode) setValue(name, value, typ string, ts time.Time) {
	l := n.at(name, true)
	l.hasValue, l.value, l.ts = true, value, ts
	if typ != "" {
		l.typ = typ
	} else if l.typ == "" {
		l.typ = "xsd:string"
	}
}

func writable(b bool) int8 {
	if b {
		return 1
	}
	return -1
}

// doc builds the generic document of n: objects as map[string]any with
// their children, leaves with typed _value.
func (n *pnode) doc() map[string]any {
	m := make(map[string]any, len(n.kids)+3)
	if n.object {
		for k, c := range n.kids {
			m[k] = c.doc()
		}
	}
	m["_object"] = n.object
	if !n.ts.IsZero() {
		m["_timestamp"] = n.ts
	}
	if n.writable != 0 {
		m["_writable"] = n.writable > 0
	}
	if !n.object && n.hasValue {
		m["_type"] = n.typ
		m["_value"] = typedValue(n.value, n.typ)
	}
	return m
}

// typedValue is the JSON value GenieACS stores for a value of xsd type
// typ: numbers for the integer types, booleans for xsd:boolean, strings
// otherwise (dateTime included, as the NBI returns it).
func typedValue(v, typ string) any {
	switch strings.TrimPrefix(typ, "xsd:") {
	case "int", "long", "unsignedInt", "unsignedLong":
		s := strings.TrimSpace(v)
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return json.Number(s)
		}
		if _, err := strconv.ParseUint(s, 10, 64); err == nil {
			return json.Number(s)
		}
	case "boolean":
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true":
			return true
		case "0", "false":
			return false
		}
	}
	return v
}

// lexical is the CWMP value of a JSON value of a setParameterValues
// triple.
func lexical(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case json.Number:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// deviceDoc is GenieACS's device document for dev, with nbisim's cache of
// the device's parameters (the Inform's parameters merged in) and tags.
func deviceDoc(dev acs.Device, st *devState) map[string]any {
	m := map[string]any{"_id": dev.ID}
	if st != nil {
		for k, c := range st.tree.kids {
			m[k] = c.doc()
		}
	}
	m["_deviceId"] = map[string]any{
		"_Manufacturer": dev.DeviceId.Manufacturer, "_OUI": dev.DeviceId.OUI,
		"_ProductClass": dev.DeviceId.ProductClass, "_SerialNumber": dev.DeviceId.SerialNumber,
	}
	if !dev.FirstInform.IsZero() {
		m["_registered"] = dev.FirstInform
	}
	if !dev.LastInform.IsZero() {
		m["_lastInform"] = dev.LastInform
	}
	boot, bootstrap := lastEvents(dev)
	if st != nil {
		boot, bootstrap = later(boot, st.lastBoot), later(bootstrap, st.lastBootstrap)
		if len(st.tags) > 0 {
			m["_tags"] = append([]string(nil), st.tags...)
		}
	}
	if !boot.IsZero() {
		m["_lastBoot"] = boot
	}
	if !bootstrap.IsZero() {
		m["_lastBootstrap"] = bootstrap
	}
	return m
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// lastEvents returns the times of the last "1 BOOT" and "0 BOOTSTRAP"
// Informs the ACS remembers.
func lastEvents(dev acs.Device) (boot, bootstrap time.Time) {
	for _, r := range dev.Events {
		for _, e := range r.Events {
			switch strings.ToUpper(e.EventCode) {
			case acs.EventBoot:
				boot = later(boot, r.At)
			case acs.EventBootstrap:
				bootstrap = later(bootstrap, r.At)
			}
		}
	}
	return boot, bootstrap
}

// mergeInform records the Inform parameters of dev in st's tree, once per
// Inform (timestamped with the Inform's time, typed as the cache last saw
// them or xsd:string: the ACS keeps no types of Inform parameters).
func mergeInform(dev acs.Device, st *devState) {
	if !dev.LastInform.After(st.informMerged) {
		return
	}
	st.informMerged = dev.LastInform
	for name, v := range dev.Params {
		if name == "" || strings.HasSuffix(name, ".") {
			continue
		}
		st.tree.setValue(name, v, "", dev.LastInform)
	}
	b, bs := lastEvents(dev)
	st.lastBoot, st.lastBootstrap = later(b, st.lastBoot), later(bs, st.lastBootstrap)
}

// ---- JSON encoding in GenieACS's key order ----

// kv is one member of an ordered object.
type kv struct {
	k string
	v any
}

// obj is a JSON object written in member order (tasks, faults, files).
type obj []kv

func (o obj) get(k string) (any, bool) {
	for _, m := range o {
		if m.k == k {
			return m.v, true
		}
	}
	return nil, false
}

// encodeJSON writes v compactly: maps with "_id" first, then parameter
// names in data model order, then the other underscore keys
// alphabetically (the order GenieACS's documents come in); obj in member
// order; time.Time as an ISO 8601 string with milliseconds.
func encodeJSON(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		b.WriteString(x.String())
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case time.Time:
		writeString(b, isoTime(x))
	case json.RawMessage:
		if len(x) == 0 {
			b.WriteString("null")
		} else {
			_ = json.Compact(b, x)
		}
	case []string:
		b.WriteByte('[')
		for i, s := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, s)
		}
		b.WriteByte(']')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeJSON(b, e)
		}
		b.WriteByte(']')
	case obj:
		b.WriteByte('{')
		for i, m := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, m.k)
			b.WriteByte(':')
			encodeJSON(b, m.v)
		}
		b.WriteByte('}')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			encodeJSON(b, x[k])
		}
		b.WriteByte('}')
	default:
		raw, err := json.Marshal(x)
		if err != nil {
			b.WriteString("null")
			return
		}
		b.Write(raw)
	}
}

// keyLess orders document keys: _id, parameter names (instance numbers
// numerically), underscore keys.
func keyLess(a, b string) bool {
	rank := func(k string) int {
		switch {
		case k == "_id":
			return 0
		case strings.HasPrefix(k, "_"):
			return 2
		}
		return 1
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra < rb
	}
	an, aerr := strconv.ParseUint(a, 10, 64)
	bn, berr := strconv.ParseUint(b, 10, 64)
	switch {
	case aerr == nil && berr == nil:
		return an < bn
	case aerr == nil:
		return true
	case berr == nil:
		return false
	}
	return a < b
}

// writeString writes s as a JSON string without HTML escaping, as
// JSON.stringify does.
func writeString(b *bytes.Buffer, s string) {
	safe := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			safe = false
			break
		}
	}
	if safe {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
}

func marshal(v any) []byte {
	var b bytes.Buffer
	encodeJSON(&b, v)
	return b.Bytes()
}
