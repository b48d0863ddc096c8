package genieacs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Param is one parameter of a device document: a leaf
// {_value, _type, _timestamp, _writable}.
type Param struct {
	// Name is the full path, e.g. InternetGatewayDevice.DeviceInfo.UpTime.
	Name string
	// Value is the lexical form of _value: numbers as GenieACS sent them,
	// booleans as "true"/"false", dateTime as RFC 3339.
	Value string
	// Type is the xsd type, e.g. "xsd:unsignedInt"; empty without a value.
	Type string
	// HasValue is false for a parameter GenieACS knows from
	// GetParameterNames but has never read.
	HasValue bool
	// Timestamp is when GenieACS last read the value from the device; zero
	// if never (or unreadable).
	Timestamp time.Time
	// Writable is _writable; false when GenieACS does not know.
	Writable bool
}

// Object is an object (or object instance) of a device document.
type Object struct {
	// Name is the full path with its trailing dot, e.g. "...WANDevice.1.".
	Name     string
	Writable bool
	// Timestamp is when GenieACS last refreshed the object; zero if never.
	Timestamp time.Time
}

// Document is a GenieACS device document, flattened.
type Document struct {
	// ID is _id: OUI-ProductClass-SerialNumber (acs.DeviceID).
	ID string
	// DeviceID is _deviceId (_Manufacturer, _OUI, _ProductClass,
	// _SerialNumber).
	DeviceID cwmp.DeviceIdStruct
	// Registered, LastInform, LastBoot and LastBootstrap are _registered,
	// _lastInform, _lastBoot and _lastBootstrap; zero when absent.
	Registered, LastInform, LastBoot, LastBootstrap time.Time
	// Tags is _tags.
	Tags []string
	// Params holds the leaves by full name.
	Params map[string]Param
	// Objects holds the objects by full name (trailing dot).
	Objects map[string]Object
}

// ParseDocument decodes one device document as the NBI returns it (an
// element of GET /devices/). It fails only when raw is not a JSON object
// or _id is not a string; unreadable timestamps read as zero and unknown
// underscore fields are ignored.
func ParseDocument(raw []byte) (*Document, error) {
	var top map[string]json.RawMessage
	if err := unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("genieacs: device document: %w", err)
	}
	if top == nil {
		return nil, fmt.Errorf("genieacs: device document is null")
	}
	d := &Document{Params: map[string]Param{}, Objects: map[string]Object{}}
	for k, v := range top {
		switch k {
		case "_id":
			if err := json.Unmarshal(v, &d.ID); err != nil {
				return nil, fmt.Errorf("genieacs: device document: _id is not a string")
			}
		case "_deviceId":
			var id struct {
				Manufacturer string `json:"_Manufacturer"`
				OUI          string `json:"_OUI"`
				ProductClass string `json:"_ProductClass"`
				SerialNumber string `json:"_SerialNumber"`
			}
			if json.Unmarshal(v, &id) == nil {
				d.DeviceID = cwmp.DeviceIdStruct{Manufacturer: id.Manufacturer, OUI: id.OUI, ProductClass: id.ProductClass, SerialNumber: id.SerialNumber}
			}
		case "_registered":
			d.Registered = parseTime(v)
		case "_lastInform":
			d.LastInform = parseTime(v)
		case "_lastBoot":
			d.LastBoot = parseTime(v)
		case "_lastBootstrap":
			d.LastBootstrap = parseTime(v)
		case "_tags":
			_ = json.Unmarshal(v, &d.Tags)
		default:
			if strings.HasPrefix(k, "_") {
				continue
			}
			var node any
			if err := unmarshal(v, &node); err == nil {
				d.walk(k, node)
			}
		}
	}
	return d, nil
}

// ParseDocuments decodes a GET /devices/ body (a JSON array of documents).
func ParseDocuments(raw []byte) ([]*Document, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("genieacs: device list: %w", err)
	}
	out := make([]*Document, 0, len(items))
	for i, it := range items {
		d, err := ParseDocument(it)
		if err != nil {
			return nil, fmt.Errorf("genieacs: device list item %d: %w", i, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// unmarshal decodes with numbers kept as json.Number.
func unmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// walk records node (at path, no trailing dot) and everything below it.
func (d *Document) walk(path string, node any) {
	m, ok := node.(map[string]any)
	if !ok {
		return // not a GenieACS node
	}
	obj, hasObj := m["_object"].(bool)
	_, hasValue := m["_value"]
	_, hasType := m["_type"]
	leaf := (hasObj && !obj) || (!hasObj && (hasValue || hasType))
	writable, _ := m["_writable"].(bool)
	ts := parseTimeAny(m["_timestamp"])
	if leaf {
		p := Param{Name: path, Writable: writable, Timestamp: ts}
		p.Type, _ = m["_type"].(string)
		if hasValue {
			p.HasValue = true
			p.Value = formatValue(m["_value"], p.Type)
			if p.Type == "" {
				p.Type = "xsd:string"
			}
		}
		d.Params[path] = p
		return
	}
	d.Objects[path+"."] = Object{Name: path + ".", Writable: writable, Timestamp: ts}
	for k, v := range m {
		if strings.HasPrefix(k, "_") || k == "" {
			continue
		}
		d.walk(path+"."+k, v)
	}
}

// formatValue gives the lexical form of a _value.
func formatValue(v any, typ string) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		if typ == "xsd:dateTime" {
			if ms, err := x.Int64(); err == nil {
				return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
			}
		}
		return x.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func parseTime(raw json.RawMessage) time.Time {
	var v any
	if unmarshal(raw, &v) != nil {
		return time.Time{}
	}
	return parseTimeAny(v)
}

// parseTimeAny reads an RFC 3339 string or milliseconds since the epoch.
func parseTimeAny(v any) time.Time {
	switch x := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}
		}
		return t
	case json.Number:
		if ms, err := x.Int64(); err == nil {
			return time.UnixMilli(ms).UTC()
		}
	}
	return time.Time{}
}

// Value returns the value of the parameter name and whether the document
// holds a value for it.
func (d *Document) Value(name string) (string, bool) {
	p, ok := d.Params[name]
	return p.Value, ok && p.HasValue
}

// Under returns the parameters with a value under the object path obj
// (with or without its trailing dot; empty means all), in data model
// order (instance numbers numerically).
func (d *Document) Under(obj string) []Param {
	prefix := obj
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	var out []Param
	for name, p := range d.Params {
		if p.HasValue && strings.HasPrefix(name, prefix) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i].Name, out[j].Name) })
	return out
}

// Instances returns the instance numbers of the multi-instance object obj
// (with or without its trailing dot), sorted.
func (d *Document) Instances(obj string) []uint32 {
	prefix := strings.TrimSuffix(obj, ".") + "."
	seen := map[uint32]bool{}
	var out []uint32
	add := func(name string) {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return
		}
		s, _, _ := strings.Cut(rest, ".")
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 || seen[uint32(n)] {
			return
		}
		seen[uint32(n)] = true
		out = append(out, uint32(n))
	}
	for name := range d.Objects {
		add(name)
	}
	for name := range d.Params {
		add(name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// pathLess orders data model paths with numeric segments numerically.
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

// ConnectionRequestURL returns ManagementServer.ConnectionRequestURL of
// the TR-098 or TR-181 root, or "".
func (d *Document) ConnectionRequestURL() string {
	for _, root := range []string{"InternetGatewayDevice", "Device"} {
		if v, ok := d.Value(root + ".ManagementServer.ConnectionRequestURL"); ok {
			return v
		}
	}
	return ""
}

// Device returns the document as the embedded ACS describes a device:
// FirstInform is _registered, Params holds every parameter with a value.
// The NBI keeps no Inform events, so LastEvents and Events stay empty.
func (d *Document) Device() acs.Device {
	dev := acs.Device{
		ID: d.ID, DeviceId: d.DeviceID, ConnectionRequestURL: d.ConnectionRequestURL(),
		FirstInform: d.Registered, LastInform: d.LastInform,
	}
	if dev.ID == "" && d.DeviceID.OUI != "" {
		dev.ID = acs.DeviceID(d.DeviceID)
	}
	for name, p := range d.Params {
		if !p.HasValue {
			continue
		}
		if dev.Params == nil {
			dev.Params = map[string]string{}
		}
		dev.Params[name] = p.Value
	}
	return dev
}

// HasTag reports whether the document carries tag.
func (d *Document) HasTag(tag string) bool {
	for _, t := range d.Tags {
		if t == tag {
			return true
		}
	}
	return false
}
