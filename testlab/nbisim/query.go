package nbisim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrQuery is wrapped by the errors of a query, sort or projection nbisim
// does not accept; the NBI answers 400 with the message as plain text.
var ErrQuery = errors.New("nbisim: unsupported query")

// pred is a compiled filter.
type pred func(doc any) bool

// queryError is a 400 with GenieACS's plain-text message ("SyntaxError:
// ..." for JSON, "Error: ..." otherwise).
type queryError struct{ msg string }

func (e *queryError) Error() string { return e.msg }
func (e *queryError) Unwrap() error { return ErrQuery }

func qerr(format string, args ...any) error {
	return &queryError{msg: "Error: " + fmt.Sprintf(format, args...)}
}

// decodeJSON parses s as JSON.parse would, numbers kept as json.Number;
// the error reads like V8's SyntaxError.
func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		off := int(dec.InputOffset())
		rest := s[off:]
		if trimmed := strings.TrimLeft(rest, " \t\r\n"); trimmed != "" {
			pos := off + len(rest) - len(trimmed)
			return nil, &queryError{msg: fmt.Sprintf("SyntaxError: Unexpected non-whitespace character after JSON at position %d", pos)}
		}
		return v, nil
	}
	return nil, &queryError{msg: "SyntaxError: " + v8Message(s, err)}
}

// v8Message words a Go JSON error as V8's JSON.parse does.
func v8Message(s string, err error) string {
	var se *json.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || !errors.As(err, &se) {
		return "Unexpected end of JSON input"
	}
	pos := int(se.Offset) - 1
	if pos < 0 {
		pos = 0
	}
	msg := se.Error()
	switch {
	case strings.Contains(msg, "unexpected end of JSON input"):
		return "Unexpected end of JSON input"
	case strings.Contains(msg, "looking for beginning of object key string"):
		return fmt.Sprintf("Expected property name or '}' in JSON at position %d", pos)
	case strings.Contains(msg, "after object key:value pair"):
		return fmt.Sprintf("Expected ',' or '}' after property value in JSON at position %d", pos)
	case strings.Contains(msg, "after object key"):
		return fmt.Sprintf("Expected ':' after property name in JSON at position %d", pos)
	case strings.Contains(msg, "after array element"):
		return fmt.Sprintf("Expected ',' or ']' after array element in JSON at position %d", pos)
	case strings.Contains(msg, "looking for beginning of value") && pos < len(s):
		return fmt.Sprintf("Unexpected token '%c', %q is not valid JSON", s[pos], s)
	}
	return fmt.Sprintf("Unexpected token in JSON at position %d", pos)
}

// parseFilter compiles a GenieACS query (the JSON text of the query
// parameter; empty matches everything). It also returns the device id of
// a top-level {"_id": "<id>"} so a lookup need not scan every device.
func parseFilter(raw string) (pred, string, error) {
	if strings.TrimSpace(raw) == "" {
		return func(any) bool { return true }, "", nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, "", err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, "", qerr("the query must be a JSON object")
	}
	p, err := compile(m)
	if err != nil {
		return nil, "", err
	}
	id, _ := m["_id"].(string)
	return p, id, nil
}

func compile(m map[string]any) (pred, error) {
	var preds []pred
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch {
		case k == "$and" || k == "$or":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return nil, qerr("%s needs a non-empty array of queries", k)
			}
			subs := make([]pred, len(list))
			for i, e := range list {
				sm, ok := e.(map[string]any)
				if !ok {
					return nil, qerr("%s[%d] is not a query object", k, i)
				}
				p, err := compile(sm)
				if err != nil {
					return nil, err
				}
				subs[i] = p
			}
			if k == "$and" {
				preds = append(preds, func(d any) bool {
					for _, p := range subs {
						if !p(d) {
							return false
						}
					}
					return true
				})
			} else {
				preds = append(preds, func(d any) bool {
					for _, p := range subs {
						if p(d) {
							return true
						}
					}
					return false
				})
			}
		case strings.HasPrefix(k, "$"):
			return nil, qerr("query operator %s is not supported by nbisim (it knows $and, $or, $in, $ne, $eq, $regex, $gt, $gte, $lt, $lte)", k)
		case k == "":
			return nil, qerr("empty field name in the query")
		default:
			p, err := compileField(k, v)
			if err != nil {
				return nil, err
			}
			preds = append(preds, p)
		}
	}
	return func(d any) bool {
		for _, p := range preds {
			if !p(d) {
				return false
			}
		}
		return true
	}, nil
}

func compileField(path string, v any) (pred, error) {
	switch x := v.(type) {
	case []any:
		return nil, qerr("equality with an array (field %s) is not supported by nbisim", path)
	case map[string]any:
		if len(x) == 0 {
			return nil, qerr("equality with an object (field %s) is not supported by nbisim", path)
		}
		var preds []pred
		for op, arg := range x {
			if !strings.HasPrefix(op, "$") {
				return nil, qerr("equality with an object (field %s) is not supported by nbisim", path)
			}
			p, err := compileOp(path, op, arg, x)
			if err != nil {
				return nil, err
			}
			if p != nil {
				preds = append(preds, p)
			}
		}
		return func(d any) bool {
			for _, p := range preds {
				if !p(d) {
					return false
				}
			}
			return true
		}, nil
	}
	return func(d any) bool {
		got, ok := lookup(d, path)
		return equal(got, ok, v)
	}, nil
}

func compileOp(path, op string, arg any, all map[string]any) (pred, error) {
	switch op {
	case "$eq":
		if isComposite(arg) {
			return nil, qerr("$eq with an object or array (field %s) is not supported by nbisim", path)
		}
		return func(d any) bool { got, ok := lookup(d, path); return equal(got, ok, arg) }, nil
	case "$ne":
		if isComposite(arg) {
			return nil, qerr("$ne with an object or array (field %s) is not supported by nbisim", path)
		}
		return func(d any) bool { got, ok := lookup(d, path); return !equal(got, ok, arg) }, nil
	case "$in":
		list, ok := arg.([]any)
		if !ok {
			return nil, qerr("$in needs an array (field %s)", path)
		}
		return func(d any) bool {
			got, ok := lookup(d, path)
			for _, e := range list {
				if equal(got, ok, e) {
					return true
				}
			}
			return false
		}, nil
	case "$gt", "$gte", "$lt", "$lte":
		if isComposite(arg) || arg == nil {
			return nil, qerr("%s needs a number, string or date (field %s)", op, path)
		}
		return func(d any) bool {
			got, ok := lookup(d, path)
			if !ok {
				return false
			}
			c, ok := compareVal(got, arg)
			if !ok {
				return false
			}
			switch op {
			case "$gt":
				return c > 0
			case "$gte":
				return c >= 0
			case "$lt":
				return c < 0
			}
			return c <= 0
		}, nil
	case "$regex":
		pat, ok := arg.(string)
		if !ok {
			return nil, qerr("$regex needs a string (field %s)", path)
		}
		if o, ok := all["$options"]; ok {
			opts, _ := o.(string)
			for _, c := range opts {
				if c != 'i' && c != 'm' && c != 's' {
					return nil, qerr("$options %q is not supported by nbisim (it knows i, m, s)", opts)
				}
			}
			if opts != "" {
				pat = "(?" + opts + ")" + pat
			}
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, qerr("invalid $regex %q: %v", pat, err)
		}
		return func(d any) bool {
			got, ok := lookup(d, path)
			if !ok {
				return false
			}
			switch g := got.(type) {
			case string:
				return re.MatchString(g)
			case []string:
				for _, s := range g {
					if re.MatchString(s) {
						return true
					}
				}
			}
			return false
		}, nil
	case "$options":
		if _, ok := all["$regex"]; !ok {
			return nil, qerr("$options without $regex (field %s)", path)
		}
		return nil, nil
	}
	return nil, qerr("query operator %s (field %s) is not supported by nbisim (it knows $in, $ne, $eq, $regex, $gt, $gte, $lt, $lte)", op, path)
}

func isComposite(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

// raw returns the value at path in a document (maps or obj), with no
// _value substitution.
func raw(d any, path string) (any, bool) {
	cur := d
	for _, seg := range strings.Split(path, ".") {
		switch m := cur.(type) {
		case map[string]any:
			v, ok := m[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case obj:
			v, ok := m.get(seg)
			if !ok {
				return nil, false
			}
			cur = v
		default:
			return nil, false
		}
	}
	return cur, true
}

// lookup returns the value a query compares at path: a parameter's
// _value when path names a leaf (GenieACS matches "X.Y" as "X.Y._value"),
// nothing for a leaf without a value.
func lookup(d any, path string) (any, bool) {
	v, ok := raw(d, path)
	if !ok {
		return nil, false
	}
	if m, isMap := v.(map[string]any); isMap {
		if o, _ := m["_object"].(bool); !o {
			if val, has := m["_value"]; has {
				return val, true
			}
			if _, leaf := m["_object"]; leaf {
				return nil, false
			}
		}
	}
	return v, true
}

// equal is Mongo equality with GenieACS's type expansion: a string query
// value also matches the number or date it spells. A missing field
// equals only null.
func equal(got any, present bool, q any) bool {
	if !present || got == nil {
		return q == nil
	}
	switch g := got.(type) {
	case []string:
		for _, s := range g {
			if equal(s, true, q) {
				return true
			}
		}
		return false
	case time.Time:
		t, ok := toTime(q)
		return ok && t.Equal(g)
	case json.Number:
		if a, ok := toFloat(q); ok {
			b, err := g.Float64()
			return err == nil && a == b
		}
		return false
	case string:
		switch x := q.(type) {
		case string:
			return g == x
		case json.Number:
			a, err1 := strconv.ParseFloat(g, 64)
			b, err2 := x.Float64()
			return err1 == nil && err2 == nil && a == b
		}
		return false
	case bool:
		switch x := q.(type) {
		case bool:
			return g == x
		case string:
			return strconv.FormatBool(g) == x
		}
		return false
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// toTime reads a date as GenieACS's query sanitiser does: ISO 8601 text
// or milliseconds since the epoch.
func toTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case json.Number:
		ms, err := x.Int64()
		if err != nil {
			return time.Time{}, false
		}
		return time.UnixMilli(ms).UTC(), true
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02", time.RFC1123, time.RFC1123Z} {
			if t, err := time.Parse(layout, x); err == nil {
				return t, true
			}
		}
		if ms, err := strconv.ParseInt(x, 10, 64); err == nil {
			return time.UnixMilli(ms).UTC(), true
		}
	}
	return time.Time{}, false
}

// compareVal orders a document value against a query value: dates,
// numbers, strings.
func compareVal(got, q any) (int, bool) {
	switch g := got.(type) {
	case time.Time:
		t, ok := toTime(q)
		if !ok {
			return 0, false
		}
		return g.Compare(t), true
	case json.Number:
		a, err := g.Float64()
		b, ok := toFloat(q)
		if err != nil || !ok {
			return 0, false
		}
		return cmpFloat(a, b), true
	case string:
		switch x := q.(type) {
		case string:
			return strings.Compare(g, x), true
		case json.Number:
			a, err1 := strconv.ParseFloat(g, 64)
			b, err2 := x.Float64()
			if err1 != nil || err2 != nil {
				return 0, false
			}
			return cmpFloat(a, b), true
		}
	case bool:
		if x, ok := q.(bool); ok {
			switch {
			case g == x:
				return 0, true
			case !g:
				return -1, true
			}
			return 1, true
		}
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sortKey is one member of a sort object.
type sortKey struct {
	path string
	dir  int
}

// parseSort reads {"field": 1 | -1, ...} in member order.
func parseSort(s string) ([]sortKey, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if _, err := decodeJSON(s); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, qerr("sort must be a JSON object")
	}
	var keys []sortKey
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, qerr("sort: %v", err)
		}
		k, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, qerr("sort: %v", err)
		}
		n, ok := v.(json.Number)
		dir, err := strconv.Atoi(string(n))
		if !ok || err != nil || (dir != 1 && dir != -1) {
			return nil, qerr("sort direction of %s must be 1 or -1", k)
		}
		keys = append(keys, sortKey{path: k, dir: dir})
	}
	return keys, nil
}

// sortDocs orders docs by keys (stable; a missing value first, as Mongo's
// null).
func sortDocs(docs []any, keys []sortKey) {
	if len(keys) == 0 {
		return
	}
	sort.SliceStable(docs, func(i, j int) bool {
		for _, k := range keys {
			a, aok := lookup(docs[i], k.path)
			b, bok := lookup(docs[j], k.path)
			var c int
			switch {
			case !aok && !bok:
				c = 0
			case !aok:
				c = -1
			case !bok:
				c = 1
			default:
				var ok bool
				if c, ok = compareVal(a, b); !ok {
					c = strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
				}
			}
			if c != 0 {
				return c*k.dir < 0
			}
		}
		return false
	})
}

// parseProjection splits projection=a,b,c.
func parseProjection(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// project keeps _id and the subtrees named by paths (a path that does not
// exist gives nothing, as "DeviceID" in fixture 02).
func project(d map[string]any, paths []string) map[string]any {
	if len(paths) == 0 {
		return d
	}
	out := map[string]any{"_id": d["_id"]}
	for _, p := range paths {
		v, ok := raw(d, p)
		if !ok {
			continue
		}
		segs := strings.Split(p, ".")
		cur := out
		for _, s := range segs[:len(segs)-1] {
			next, ok := cur[s].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[s] = next
			}
			cur = next
		}
		cur[segs[len(segs)-1]] = v
	}
	return out
}

// projectObj applies a projection to an ordered object (tasks, faults,
// files), keeping _id.
func projectObj(o obj, paths []string) obj {
	if len(paths) == 0 {
		return o
	}
	keep := map[string]bool{"_id": true}
	for _, p := range paths {
		top, _, _ := strings.Cut(p, ".")
		keep[top] = true
	}
	var out obj
	for _, m := range o {
		if keep[m.k] {
			out = append(out, m)
		}
	}
	return out
}

// window applies skip and limit.
func window[T any](items []T, skip, limit int) []T {
	if skip >= len(items) {
		return nil
	}
	items = items[skip:]
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	return items
}
