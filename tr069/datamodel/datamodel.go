// Package datamodel describes CWMP data models as data: objects, parameters,
// their xsd types, writability, default values, default notification and
// value limits, and multi-instance objects ("{i}" in the path) with the
// parameters of each instance.
//
// Models are written in a small YAML format (see Load) that a person can
// edit. The package embeds the models of the lab's devices: a TR-098 China
// Telecom e8 gateway with its X_CT-COM extensions and a TR-135 iTV set-top
// box (see Builtin). It does not depend on the CPE engine: tr069/cpe builds a
// parameter tree from a Model (cpe.NewTreeFromModel), and drivers may use a
// Model to check paths and types.
package datamodel

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors.
var (
	// ErrInvalid means a model file is malformed; the error names the line
	// and the object or parameter at fault.
	ErrInvalid = errors.New("datamodel: invalid model")
	// ErrUnknownModel means Builtin has no model of that name.
	ErrUnknownModel = errors.New("datamodel: unknown built-in model")
	// ErrBadValue means a value does not parse as its type or is outside
	// the parameter's limits.
	ErrBadValue = errors.New("datamodel: invalid value")
)

// Type is a parameter's xsd type without the "xsd:" prefix.
type Type string

// Types a parameter may have.
const (
	String       Type = "string"       // String is xsd:string.
	Int          Type = "int"          // Int is xsd:int (32-bit signed).
	UnsignedInt  Type = "unsignedInt"  // UnsignedInt is xsd:unsignedInt (32-bit unsigned).
	Long         Type = "long"         // Long is xsd:long (64-bit signed).
	UnsignedLong Type = "unsignedLong" // UnsignedLong is xsd:unsignedLong (64-bit unsigned).
	Boolean      Type = "boolean"      // Boolean is xsd:boolean (0, 1, true, false).
	DateTime     Type = "dateTime"     // DateTime is xsd:dateTime (RFC 3339, or the unknown time 0001-01-01T00:00:00Z).
	Base64       Type = "base64"       // Base64 is xsd:base64Binary.
	HexBinary    Type = "hexBinary"    // HexBinary is xsd:hexBinary.
)

// types lists the accepted type names in the order error messages give them.
func types() []Type {
	return []Type{String, Int, UnsignedInt, Long, UnsignedLong, Boolean, DateTime, Base64, HexBinary}
}

// ParseType accepts a type name with or without an "xsd:" prefix
// ("unsignedInt", "xsd:unsignedInt"; "base64Binary" is Base64). It reports
// false for an unknown name.
func ParseType(s string) (Type, bool) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	if s == "base64Binary" {
		return Base64, true
	}
	for _, t := range types() {
		if string(t) == s {
			return t, true
		}
	}
	return "", false
}

// XSD returns the xsi:type of t, e.g. "xsd:unsignedInt"; the zero Type is
// "xsd:string".
func (t Type) XSD() string {
	if t == "" {
		return "xsd:string"
	}
	return "xsd:" + string(t)
}

// ActiveNotify says whether an ACS may turn on active notification
// (TR-106 activeNotify).
type ActiveNotify string

// ActiveNotify values.
const (
	// ActiveNormal (the default, also the zero value) accepts notification 0, 1 and 2.
	ActiveNormal ActiveNotify = "normal"
	// ActiveCanDeny rejects active notification (2) with fault 9009, as
	// CPEs do for fast-changing values such as counters and uptime.
	ActiveCanDeny ActiveNotify = "canDeny"
)

// Limits restricts the values a parameter accepts. The zero value accepts
// every value of the type.
type Limits struct {
	// Min and Max bound numeric values (inclusive) when set.
	Min, Max *int64
	// MaxLength, if positive, bounds a string's length in bytes (the
	// decoded length for base64 and hexBinary).
	MaxLength int
	// Enum, if non-empty, lists the only accepted values (strings).
	Enum []string
}

// Parameter is one parameter of an object.
type Parameter struct {
	// Name is the parameter's name relative to its object, e.g. "UpTime".
	Name string
	// Type is its xsd type; the zero value is String.
	Type Type
	// Writable allows SetParameterValues.
	Writable bool
	// Default is the value a new tree (or object instance) starts with.
	Default string
	// Notify is the default notification attribute: 0 off, 1 passive, 2 active.
	Notify int
	// ActiveNotify says whether notification 2 may be requested.
	ActiveNotify ActiveNotify
	// Hidden parameters (passwords) read back as an empty string.
	Hidden bool
	// Inform marks a forced inform parameter, sent in every Inform.
	Inform bool
	// Limits restricts the accepted values.
	Limits Limits
	// Line is the line of the parameter in the model file (0 if built in code).
	Line int
}

// Object is one object of the model.
type Object struct {
	// Path is the full object path ending in ".", e.g.
	// "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.{i}.". A path
	// ending in "{i}." is a multi-instance object (a table row).
	Path string
	// Writable, for a multi-instance object, allows AddObject and
	// DeleteObject on its table.
	Writable bool
	// Instances is how many instances (1..Instances) a new tree creates of
	// a multi-instance object, in each instance of its parent.
	Instances int
	// Params are the object's parameters, in file order.
	Params []*Parameter
	// Line is the line of the object in the model file (0 if built in code).
	Line int
}

// MultiInstance reports whether o is a multi-instance object.
func (o *Object) MultiInstance() bool { return strings.HasSuffix(o.Path, ".{i}.") }

// Table returns the path of a multi-instance object's table (Path without
// the trailing "{i}."), where AddObject is sent; "" for other objects.
func (o *Object) Table() string {
	if !o.MultiInstance() {
		return ""
	}
	return strings.TrimSuffix(o.Path, "{i}.")
}

// Model is a data model: a root object name and its objects in file order.
type Model struct {
	// Name identifies the model, e.g. "e8-gateway".
	Name string
	// Description says what the model covers and which specs it follows.
	Description string
	// Root is the root object, "InternetGatewayDevice" or "Device".
	Root string
	// Objects are the model's objects in file order; parents come before
	// their children.
	Objects []*Object
}

// Object returns the object with path (generic, with "{i}"), or nil.
func (m *Model) Object(path string) *Object {
	for _, o := range m.Objects {
		if o.Path == path {
			return o
		}
	}
	return nil
}

// Generic returns the generic form of a concrete path by matching it
// against the model's objects: "A.WANConnectionDevice.3.X" becomes
// "A.WANConnectionDevice.{i}.X" where the model has "{i}" there. It reports
// false if no object of the model matches.
func (m *Model) Generic(path string) (string, bool) {
	objPath, param := path, ""
	if !strings.HasSuffix(path, ".") {
		i := strings.LastIndexByte(path, '.')
		objPath, param = path[:i+1], path[i+1:]
	}
	for _, o := range m.Objects {
		if matchPath(o.Path, objPath) {
			return o.Path + param, true
		}
		if tbl := o.Table(); tbl != "" && matchPath(tbl, objPath) && param == "" {
			return tbl, true
		}
	}
	return "", false
}

// Param looks up a parameter by its concrete or generic full path and
// returns it with its object; nil, nil if there is none.
func (m *Model) Param(path string) (*Parameter, *Object) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 || i == len(path)-1 {
		return nil, nil
	}
	objPath, name := path[:i+1], path[i+1:]
	for _, o := range m.Objects {
		if !matchPath(o.Path, objPath) {
			continue
		}
		for _, p := range o.Params {
			if p.Name == name {
				return p, o
			}
		}
	}
	return nil, nil
}

// matchPath reports whether the concrete path matches pattern, where a
// "{i}" segment of pattern matches an instance number (or "{i}" itself).
func matchPath(pattern, path string) bool {
	for {
		ps, prest, pok := strings.Cut(pattern, ".")
		s, rest, ok := strings.Cut(path, ".")
		if pok != ok {
			return false
		}
		if ps != s {
			if ps != "{i}" {
				return false
			}
			if _, err := strconv.ParseUint(s, 10, 32); err != nil {
				return false
			}
		}
		if !ok {
			return true
		}
		pattern, path = prest, rest
	}
}

// CheckValue reports whether value is valid for type t and within limits;
// the error wraps ErrBadValue and says why.
func CheckValue(t Type, limits Limits, value string) error {
	if err := checkType(t, value); err != nil {
		return err
	}
	return limits.check(t, value)
}

func checkType(t Type, v string) error {
	var err error
	switch t {
	case Boolean:
		switch strings.TrimSpace(v) {
		case "0", "1", "true", "false":
		default:
			return fmt.Errorf("%w: %q is not a boolean (0, 1, true or false)", ErrBadValue, v)
		}
	case Int:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	case Long:
		_, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	case UnsignedInt:
		_, err = strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	case UnsignedLong:
		_, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	case DateTime:
		s := strings.TrimSpace(v)
		if _, err1 := time.Parse(time.RFC3339Nano, s); err1 != nil {
			if _, err2 := time.Parse("2006-01-02T15:04:05", s); err2 != nil {
				return fmt.Errorf("%w: %q is not a dateTime (e.g. 2024-01-02T03:04:05Z)", ErrBadValue, v)
			}
		}
	case Base64:
		if _, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%w: %q is not base64", ErrBadValue, v)
		}
	case HexBinary:
		if _, err := hex.DecodeString(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%w: %q is not hexBinary", ErrBadValue, v)
		}
	case String, "":
	default:
		return fmt.Errorf("%w: unknown type %q", ErrBadValue, string(t))
	}
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return fmt.Errorf("%w: %s is out of range for %s", ErrBadValue, v, t)
		}
		return fmt.Errorf("%w: %q is not an %s", ErrBadValue, v, t)
	}
	return nil
}

func (l Limits) check(t Type, v string) error {
	if len(l.Enum) > 0 {
		found := false
		for _, e := range l.Enum {
			if e == v {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: %q is not one of %s", ErrBadValue, v, strings.Join(l.Enum, ", "))
		}
	}
	if l.MaxLength > 0 {
		n := len(v)
		switch t {
		case Base64:
			b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			n = len(b)
		case HexBinary:
			n = len(strings.TrimSpace(v)) / 2
		}
		if n > l.MaxLength {
			return fmt.Errorf("%w: %d bytes, longer than the maximum %d", ErrBadValue, n, l.MaxLength)
		}
	}
	if l.Min == nil && l.Max == nil {
		return nil
	}
	switch t {
	case Int, Long:
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if (l.Min != nil && n < *l.Min) || (l.Max != nil && n > *l.Max) {
			return fmt.Errorf("%w: %d is outside the range %s", ErrBadValue, n, l.rangeString())
		}
	case UnsignedInt, UnsignedLong:
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if (l.Min != nil && (*l.Min > 0 && n < uint64(*l.Min))) || (l.Max != nil && (*l.Max < 0 || n > uint64(*l.Max))) {
			return fmt.Errorf("%w: %d is outside the range %s", ErrBadValue, n, l.rangeString())
		}
	}
	return nil
}

func (l Limits) rangeString() string {
	lo, hi := "", ""
	if l.Min != nil {
		lo = strconv.FormatInt(*l.Min, 10)
	}
	if l.Max != nil {
		hi = strconv.FormatInt(*l.Max, 10)
	}
	return "[" + lo + ":" + hi + "]"
}
