package drivers

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Seen is what a device reported about itself before a driver was chosen:
// the TR-069 Inform's DeviceId and root object, or the SNMP system group and
// the CLI's `display version`.
type Seen struct {
	// Target is how to reach the device: the ACS device id or a host.
	Target       string `json:"target"`
	Manufacturer string `json:"manufacturer,omitempty"`
	OUI          string `json:"oui,omitempty"`
	ProductClass string `json:"product_class,omitempty"`
	ModelName    string `json:"model_name,omitempty"`
	// RootObject is the TR-069 data model root, e.g. "InternetGatewayDevice"
	// or "Device.STBService".
	RootObject     string `json:"root_object,omitempty"`
	SysObjectID    string `json:"sys_object_id,omitempty"`
	DisplayVersion string `json:"display_version,omitempty"`
}

// String lists the non-empty fields, for error messages.
func (s Seen) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+fmt.Sprintf("%q", v))
		}
	}
	add("manufacturer", s.Manufacturer)
	add("oui", s.OUI)
	add("product_class", s.ProductClass)
	add("model", s.ModelName)
	add("root", s.RootObject)
	add("sysObjectID", s.SysObjectID)
	dv, _, _ := strings.Cut(s.DisplayVersion, "\n")
	add("display_version", dv)
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, " ")
}

// Match says which devices a driver takes. Every non-empty field must match
// (case-insensitively); an all-empty Match takes nothing.
type Match struct {
	// OUI, ProductClass and ModelName are shell patterns (path.Match), e.g.
	// "F6*".
	OUI, ProductClass, ModelName string
	// RootObject matches when the reported root starts with it.
	RootObject string
	// SysObjectIDPrefix matches an OID and its subtree.
	SysObjectIDPrefix string
	// DisplayVersion, if set, must match the `display version` text.
	DisplayVersion *regexp.Regexp
}

// score is the number of fields that matched, or -1.
func (m Match) score(s Seen) int {
	n := 0
	glob := func(pat, v string) bool {
		if pat == "" {
			return true
		}
		ok, err := path.Match(strings.ToLower(pat), strings.ToLower(v))
		if ok && err == nil {
			n++
			return true
		}
		return false
	}
	if !glob(m.OUI, s.OUI) || !glob(m.ProductClass, s.ProductClass) || !glob(m.ModelName, s.ModelName) {
		return -1
	}
	if m.RootObject != "" {
		if s.RootObject == "" || !strings.HasPrefix(strings.ToLower(s.RootObject), strings.ToLower(m.RootObject)) {
			return -1
		}
		n++
	}
	if m.SysObjectIDPrefix != "" {
		p := strings.TrimPrefix(m.SysObjectIDPrefix, ".")
		o := strings.TrimPrefix(s.SysObjectID, ".")
		if o != p && !strings.HasPrefix(o, p+".") {
			return -1
		}
		n++
	}
	if m.DisplayVersion != nil {
		if !m.DisplayVersion.MatchString(s.DisplayVersion) {
			return -1
		}
		n++
	}
	if n == 0 {
		return -1
	}
	return n
}

// Constructor builds a driver for a device that matched; the returned value
// implements Identifier and whichever capability interfaces the model has.
type Constructor func(ctx context.Context, seen Seen) (Identifier, error)

// Entry is one driver in a Registry.
type Entry struct {
	// Name names the driver in messages, e.g. "e8".
	Name  string
	Kind  Kind
	Match Match
	New   Constructor
}

// Registry maps what a device reports to a driver constructor. The zero
// Registry is empty and ready to use; it is not safe for concurrent
// Register calls, so fill it in main before use.
type Registry struct {
	entries []Entry
}

// Register adds a driver. Lookup prefers the entry whose Match names more
// fields, and among equals the first registered.
func (r *Registry) Register(e Entry) {
	r.entries = append(r.entries, e)
}

// Lookup returns the entry for seen, or an error that wraps
// ErrUnknownDevice and lists what the device reported and which drivers are
// registered.
func (r *Registry) Lookup(seen Seen) (Entry, error) {
	best, bestScore := -1, 0
	for i, e := range r.entries {
		if sc := e.Match.score(seen); sc > bestScore {
			best, bestScore = i, sc
		}
	}
	if best < 0 {
		names := make([]string, 0, len(r.entries))
		for _, e := range r.entries {
			names = append(names, e.Name)
		}
		return Entry{}, fmt.Errorf("%w: the device reported %s; registered drivers: %s: add the model to the driver registry or check that this is the device on the order",
			ErrUnknownDevice, seen, strings.Join(names, ", "))
	}
	return r.entries[best], nil
}

// Open looks seen up and builds its driver.
func (r *Registry) Open(ctx context.Context, seen Seen) (Identifier, error) {
	e, err := r.Lookup(seen)
	if err != nil {
		return nil, err
	}
	d, err := e.New(ctx, seen)
	if err != nil {
		return nil, fmt.Errorf("open %s driver for %s: %w", e.Name, seen.Target, err)
	}
	return d, nil
}
