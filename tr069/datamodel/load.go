package datamodel

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Loader limits, against hostile or runaway files.
const (
	// MaxFileSize is the largest model file Load reads.
	MaxFileSize = 4 << 20
	// MaxObjects bounds the objects of one model.
	MaxObjects = 10000
	// MaxInstances bounds an object's default instance count.
	MaxInstances = 256
)

// Load reads a model in YAML:
//
//	name: e8-gateway
//	description: TR-098 e8 gateway with X_CT-COM extensions
//	root: InternetGatewayDevice
//	objects:
//	  - path: InternetGatewayDevice.ManagementServer.
//	    params:
//	      - {name: URL, type: string, writable: true, inform: true}
//	      - {name: PeriodicInformInterval, type: unsignedInt, writable: true, default: "3600", min: 1}
//	  - path: InternetGatewayDevice.WANDevice.1.WANConnectionDevice.{i}.
//	    writable: true      # AddObject/DeleteObject allowed
//	    instances: 1        # a new tree has instance 1
//	    params:
//	      - {name: WANPPPConnectionNumberOfEntries, type: unsignedInt, default: "0"}
//
// Object keys: path (required, ends in "."; "{i}." at the end makes a
// multi-instance object; an earlier "{i}" needs that object declared
// before), writable and instances (multi-instance objects only), params.
// Parameter keys: name (required), type (string, int, unsignedInt, long,
// unsignedLong, boolean, dateTime, base64, hexBinary; default string),
// writable, default, notify (0, 1, 2), activeNotify (normal or canDeny),
// hidden (reads back empty, for passwords), inform (forced inform
// parameter), min and max (numbers), maxLength (strings), enum (strings).
//
// Errors wrap ErrInvalid and name the line and the object or parameter,
// e.g. `datamodel: invalid model: line 9: object "X.": parameter "Y":
// notify 3 is not 0, 1 or 2`.
func Load(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("datamodel: reading model: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxFileSize)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%w: empty file", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("%w: empty file", ErrInvalid)
	}
	l := &loader{seen: map[string]*Object{}}
	m, err := l.model(doc.Content[0])
	if err != nil {
		return nil, err
	}
	return m, nil
}

type loader struct {
	seen map[string]*Object
}

func errAt(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrInvalid, n.Line, fmt.Sprintf(format, args...))
}

// pairs returns the key/value pairs of a mapping node, rejecting keys not
// in known and duplicate keys.
func pairs(n *yaml.Node, what string, known ...string) ([][2]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "%s: want a mapping", what)
	}
	seen := map[string]bool{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(k, "%s: keys must be plain names", what)
		}
		ok := false
		for _, kn := range known {
			if k.Value == kn {
				ok = true
				break
			}
		}
		if !ok {
			return nil, errAt(k, "%s: unknown key %q (want %s)", what, k.Value, strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return nil, errAt(k, "%s: key %q given twice", what, k.Value)
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out, nil
}

func scalar(n *yaml.Node, what, key string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errAt(n, "%s: %s: want a single value", what, key)
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func boolean(n *yaml.Node, what, key string) (bool, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errAt(n, "%s: %s: want true or false", what, key)
}

func integer(n *yaml.Node, what, key string) (int64, error) {
	if n.Kind == yaml.ScalarNode {
		if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			return v, nil
		}
	}
	return 0, errAt(n, "%s: %s: want an integer", what, key)
}

func (l *loader) model(n *yaml.Node) (*Model, error) {
	kv, err := pairs(n, "model", "name", "description", "root", "objects")
	if err != nil {
		return nil, err
	}
	m := &Model{}
	var objects *yaml.Node
	for _, p := range kv {
		k, v := p[0], p[1]
		switch k.Value {
		case "name":
			m.Name, err = scalar(v, "model", "name")
		case "description":
			m.Description, err = scalar(v, "model", "description")
		case "root":
			m.Root, err = scalar(v, "model", "root")
			if err == nil && !validName(m.Root) {
				err = errAt(v, "model: root %q is not an object name such as InternetGatewayDevice or Device", m.Root)
			}
		case "objects":
			objects = v
		}
		if err != nil {
			return nil, err
		}
	}
	if m.Root == "" {
		return nil, errAt(n, "model: root is required (InternetGatewayDevice or Device)")
	}
	if objects == nil || objects.Kind != yaml.SequenceNode || len(objects.Content) == 0 {
		return nil, errAt(n, "model: objects is required: a list of objects")
	}
	if len(objects.Content) > MaxObjects {
		return nil, errAt(objects, "model: more than %d objects", MaxObjects)
	}
	for _, on := range objects.Content {
		o, err := l.object(m, on)
		if err != nil {
			return nil, err
		}
		m.Objects = append(m.Objects, o)
	}
	return m, nil
}

// validName reports whether s is a TR-106 name (letters, digits, "_", "-",
// starting with a letter or "_").
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z'):
		case i > 0 && (r == '-' || (r >= '0' && r <= '9')):
		default:
			return false
		}
	}
	return true
}

// checkPath validates an object path and returns a problem, "" if none.
func (l *loader) checkPath(root, path string) string {
	if !strings.HasSuffix(path, ".") {
		return "path must end in \".\""
	}
	segs := strings.Split(strings.TrimSuffix(path, "."), ".")
	if segs[0] != root {
		return fmt.Sprintf("path must start with the root %q", root+".")
	}
	for i, s := range segs {
		switch {
		case s == "{i}":
			if i == 0 || !validName(segs[i-1]) {
				return "path: \"{i}\" must follow an object name"
			}
			parent := strings.Join(segs[:i+1], ".") + "."
			if i < len(segs)-1 && l.seen[parent] == nil {
				return fmt.Sprintf("multi-instance parent %q is not declared before it", parent)
			}
		case validName(s):
		default:
			if _, err := strconv.ParseUint(s, 10, 32); err == nil && s[0] != '0' && i > 0 && validName(segs[i-1]) {
				continue
			}
			return fmt.Sprintf("path segment %q is not a name, an instance number or \"{i}\"", s)
		}
	}
	return ""
}

func (l *loader) object(m *Model, n *yaml.Node) (*Object, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "object: want a mapping with a path")
	}
	o := &Object{Line: n.Line}
	what := "object"
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "path" {
			v, err := scalar(n.Content[i+1], what, "path")
			if err != nil {
				return nil, err
			}
			o.Path = v
			what = fmt.Sprintf("object %q", v)
		}
	}
	kv, err := pairs(n, what, "path", "writable", "instances", "params")
	if err != nil {
		return nil, err
	}
	if o.Path == "" {
		return nil, errAt(n, "object: path is required")
	}
	if prob := l.checkPath(m.Root, o.Path); prob != "" {
		return nil, errAt(n, "%s: %s", what, prob)
	}
	if prev := l.seen[o.Path]; prev != nil {
		return nil, errAt(n, "%s: declared twice (first on line %d)", what, prev.Line)
	}
	var params *yaml.Node
	for _, p := range kv {
		k, v := p[0], p[1]
		switch k.Value {
		case "writable":
			if o.Writable, err = boolean(v, what, "writable"); err != nil {
				return nil, err
			}
			if o.Writable && !o.MultiInstance() {
				return nil, errAt(v, "%s: writable applies only to multi-instance objects (path ending in \"{i}.\")", what)
			}
		case "instances":
			x, err := integer(v, what, "instances")
			if err != nil {
				return nil, err
			}
			if !o.MultiInstance() {
				return nil, errAt(v, "%s: instances applies only to multi-instance objects (path ending in \"{i}.\")", what)
			}
			if x < 0 || x > MaxInstances {
				return nil, errAt(v, "%s: instances %d is not between 0 and %d", what, x, MaxInstances)
			}
			o.Instances = int(x)
		case "params":
			params = v
		}
	}
	l.seen[o.Path] = o
	if params == nil {
		return o, nil
	}
	if params.Kind != yaml.SequenceNode {
		return nil, errAt(params, "%s: params: want a list of parameters", what)
	}
	names := map[string]int{}
	for _, pn := range params.Content {
		p, err := parameter(what, pn)
		if err != nil {
			return nil, err
		}
		if line, dup := names[p.Name]; dup {
			return nil, errAt(pn, "%s: parameter %q declared twice (first on line %d)", what, p.Name, line)
		}
		names[p.Name] = p.Line
		o.Params = append(o.Params, p)
	}
	return o, nil
}

func parameter(objWhat string, n *yaml.Node) (*Parameter, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "%s: parameter: want a mapping with a name", objWhat)
	}
	p := &Parameter{Line: n.Line, Type: String, ActiveNotify: ActiveNormal}
	what := objWhat + ": parameter"
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			v, err := scalar(n.Content[i+1], what, "name")
			if err != nil {
				return nil, err
			}
			p.Name = v
			what = fmt.Sprintf("%s: parameter %q", objWhat, v)
		}
	}
	kv, err := pairs(n, what, "name", "type", "writable", "default", "notify", "activeNotify",
		"hidden", "inform", "min", "max", "maxLength", "enum")
	if err != nil {
		return nil, err
	}
	if p.Name == "" {
		return nil, errAt(n, "%s: name is required", what)
	}
	if !validName(p.Name) {
		return nil, errAt(n, "%s: name is not a parameter name (letters, digits, \"_\" and \"-\")", what)
	}
	var defNode, enumNode, minNode, maxNode, lenNode *yaml.Node
	for _, kvp := range kv {
		k, v := kvp[0], kvp[1]
		switch k.Value {
		case "type":
			s, err := scalar(v, what, "type")
			if err != nil {
				return nil, err
			}
			t, ok := ParseType(s)
			if !ok {
				names := make([]string, 0, 9)
				for _, t := range types() {
					names = append(names, string(t))
				}
				return nil, errAt(v, "%s: unknown type %q (want %s)", what, s, strings.Join(names, ", "))
			}
			p.Type = t
		case "writable":
			p.Writable, err = boolean(v, what, "writable")
		case "hidden":
			p.Hidden, err = boolean(v, what, "hidden")
		case "inform":
			p.Inform, err = boolean(v, what, "inform")
		case "default":
			defNode = v
			p.Default, err = scalar(v, what, "default")
		case "notify":
			var x int64
			if x, err = integer(v, what, "notify"); err == nil && (x < 0 || x > 2) {
				err = errAt(v, "%s: notify %d is not 0 (off), 1 (passive) or 2 (active)", what, x)
			}
			p.Notify = int(x)
		case "activeNotify":
			var s string
			if s, err = scalar(v, what, "activeNotify"); err == nil {
				switch ActiveNotify(s) {
				case ActiveNormal, ActiveCanDeny:
					p.ActiveNotify = ActiveNotify(s)
				default:
					err = errAt(v, "%s: activeNotify %q is not normal or canDeny", what, s)
				}
			}
		case "min":
			minNode = v
		case "max":
			maxNode = v
		case "maxLength":
			lenNode = v
		case "enum":
			enumNode = v
		}
		if err != nil {
			return nil, err
		}
	}
	numeric := p.Type == Int || p.Type == UnsignedInt || p.Type == Long || p.Type == UnsignedLong
	for _, b := range []struct {
		node *yaml.Node
		key  string
		dst  **int64
	}{{minNode, "min", &p.Limits.Min}, {maxNode, "max", &p.Limits.Max}} {
		if b.node == nil {
			continue
		}
		if !numeric {
			return nil, errAt(b.node, "%s: %s applies only to numeric types, not %s", what, b.key, p.Type)
		}
		x, err := integer(b.node, what, b.key)
		if err != nil {
			return nil, err
		}
		*b.dst = &x
	}
	if p.Limits.Min != nil && p.Limits.Max != nil && *p.Limits.Min > *p.Limits.Max {
		return nil, errAt(minNode, "%s: min %d is greater than max %d", what, *p.Limits.Min, *p.Limits.Max)
	}
	if lenNode != nil {
		if p.Type != String && p.Type != Base64 && p.Type != HexBinary {
			return nil, errAt(lenNode, "%s: maxLength applies only to string, base64 and hexBinary, not %s", what, p.Type)
		}
		x, err := integer(lenNode, what, "maxLength")
		if err != nil {
			return nil, err
		}
		if x < 1 || x > 1<<20 {
			return nil, errAt(lenNode, "%s: maxLength %d is not between 1 and %d", what, x, 1<<20)
		}
		p.Limits.MaxLength = int(x)
	}
	if enumNode != nil {
		if p.Type != String {
			return nil, errAt(enumNode, "%s: enum applies only to string, not %s", what, p.Type)
		}
		if enumNode.Kind != yaml.SequenceNode || len(enumNode.Content) == 0 {
			return nil, errAt(enumNode, "%s: enum: want a list of values", what)
		}
		for _, e := range enumNode.Content {
			if e.Kind != yaml.ScalarNode {
				return nil, errAt(e, "%s: enum: want a list of values", what)
			}
			p.Limits.Enum = append(p.Limits.Enum, e.Value)
		}
	}
	if p.Notify == 2 && p.ActiveNotify == ActiveCanDeny {
		return nil, errAt(n, "%s: notify 2 (active) contradicts activeNotify canDeny", what)
	}
	if p.Default == "" && defNode == nil {
		p.Default = zeroValue(p)
	}
	if err := CheckValue(p.Type, p.Limits, p.Default); err != nil {
		line := n
		if defNode != nil {
			line = defNode
		}
		return nil, errAt(line, "%s: default: %s", what, strings.TrimPrefix(err.Error(), ErrBadValue.Error()+": "))
	}
	return p, nil
}

// zeroValue is the default of a parameter without one: the type's zero, or
// the first enum value.
func zeroValue(p *Parameter) string {
	switch p.Type {
	case Int, UnsignedInt, Long, UnsignedLong:
		if p.Limits.Min != nil && *p.Limits.Min > 0 {
			return strconv.FormatInt(*p.Limits.Min, 10)
		}
		if p.Limits.Max != nil && *p.Limits.Max < 0 {
			return strconv.FormatInt(*p.Limits.Max, 10)
		}
		return "0"
	case Boolean:
		return "0"
	case DateTime:
		return "0001-01-01T00:00:00Z"
	}
	if len(p.Limits.Enum) > 0 {
		return p.Limits.Enum[0]
	}
	return ""
}
