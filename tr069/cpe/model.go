package cpe

import (
	"strings"

	"fieldagent/tr069/datamodel"
)

// NewTreeFromModel builds a tree from a data model: every parameter of the
// model's single-instance objects with its default value, type, writable
// flag, notification, limits and flags; a template for every
// multi-instance object (writable ones accept AddObject/DeleteObject), with
// the parameters and sub-objects of each instance; and the model's default
// instances. A nil model gives an empty tree.
func NewTreeFromModel(m *datamodel.Model) *Tree {
	t := NewTree()
	if m == nil {
		return t
	}
	type tmpl struct {
		params   []Param
		objs     []string
		writable bool
	}
	tmpls := map[string]*tmpl{} // by instance pattern ("A.{i}.")
	var order []string
	for _, o := range m.Objects {
		encl := enclosing(o.Path)
		if o.MultiInstance() {
			tmpls[o.Path] = &tmpl{writable: o.Writable}
			order = append(order, o.Path)
			if encl != "" {
				if tp := tmpls[encl]; tp != nil {
					tp.objs = append(tp.objs, strings.TrimPrefix(o.Table(), encl))
				}
			} else {
				t.mu.Lock()
				t.addObjects(o.Table())
				t.mu.Unlock()
			}
			for _, p := range o.Params {
				tmpls[o.Path].params = append(tmpls[o.Path].params, paramFromModel(p.Name, p))
			}
			continue
		}
		if encl != "" {
			tp := tmpls[encl]
			if tp == nil {
				continue // the loader rejects this; a hand-built model may not
			}
			rel := strings.TrimPrefix(o.Path, encl)
			tp.objs = append(tp.objs, rel)
			for _, p := range o.Params {
				tp.params = append(tp.params, paramFromModel(rel+p.Name, p))
			}
			continue
		}
		t.mu.Lock()
		t.addObjects(o.Path)
		t.mu.Unlock()
		for _, p := range o.Params {
			t.Set(paramFromModel(o.Path+p.Name, p))
		}
	}
	for _, pat := range order {
		tp := tmpls[pat]
		t.defineTemplate(strings.TrimSuffix(pat, "{i}."), tp.params, tp.objs, tp.writable)
	}
	// Default instances, parents first (the model lists parents first).
	for _, o := range m.Objects {
		if !o.MultiInstance() || o.Instances == 0 {
			continue
		}
		t.mu.Lock()
		tables := []string{}
		for obj := range t.objects {
			if matchPattern(o.Table(), obj) {
				tables = append(tables, obj)
			}
		}
		for _, tbl := range tables {
			tp := t.findTemplate(tbl)
			for i := 0; i < o.Instances && tp != nil; i++ {
				t.addInstance(tbl, tp)
			}
		}
		t.mu.Unlock()
	}
	return t
}

// enclosing returns the innermost multi-instance object pattern that
// contains path (a path ending in "{i}." is not its own enclosing object),
// or "".
func enclosing(path string) string {
	p := strings.TrimSuffix(path, ".")
	p = strings.TrimSuffix(p, ".{i}")
	i := strings.LastIndex(p, ".{i}.")
	if i < 0 {
		if strings.HasSuffix(p, ".{i}") {
			return p + "."
		}
		return ""
	}
	return p[:i+len(".{i}.")]
}

func paramFromModel(name string, p *datamodel.Parameter) Param {
	return Param{
		Name: name, Value: p.Default, Type: p.Type.XSD(), Writable: p.Writable, Notify: p.Notify,
		DenyActiveNotify: p.ActiveNotify == datamodel.ActiveCanDeny, Hidden: p.Hidden, Inform: p.Inform,
		Limits: p.Limits,
	}
}
