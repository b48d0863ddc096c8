package genieacs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fieldagent/tr069/genieacs"
)

// seedBodies adds every recorded response body (and the task request
// bodies) of testdata/nbi to f; testdata/fuzz holds a few more.
func seedBodies(f *testing.F, keep func(name string) bool) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	for _, p := range files {
		if !keep(filepath.Base(p)) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		var ex struct {
			Request  struct{ Body json.RawMessage }
			Response struct{ Body json.RawMessage }
		}
		if err := json.Unmarshal(b, &ex); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(ex.Response.Body))
		var items []json.RawMessage
		if json.Unmarshal(ex.Response.Body, &items) == nil {
			for _, it := range items {
				f.Add([]byte(it))
			}
		}
		if len(ex.Request.Body) > 0 && ex.Request.Body[0] == '{' {
			f.Add([]byte(ex.Request.Body))
		}
	}
}

// FuzzParseDocument: any bytes either fail to parse or give a document
// whose parameters and objects are consistent and that converts to an
// acs.Device.
func FuzzParseDocument(f *testing.F) {
	seedBodies(f, func(n string) bool { return strings.Contains(n, "device") })
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := genieacs.ParseDocument(b)
		if err != nil {
			return
		}
		for name, p := range d.Params {
			if p.Name != name || strings.HasSuffix(name, ".") {
				t.Fatalf("param %q named %q", name, p.Name)
			}
			if p.HasValue && p.Type == "" {
				t.Fatalf("param %q has a value without a type", name)
			}
		}
		for name, o := range d.Objects {
			if o.Name != name || !strings.HasSuffix(name, ".") {
				t.Fatalf("object %q named %q", name, o.Name)
			}
		}
		dev := d.Device()
		for name, v := range dev.Params {
			if got, ok := d.Value(name); !ok || got != v {
				t.Fatalf("Device().Params[%q] = %q, document %q", name, v, got)
			}
		}
		_ = d.Under("")
		_ = d.Instances("InternetGatewayDevice.WANDevice")
	})
}

// FuzzParseFaultsAndTasks: the fault and task decoders never panic, a
// CWMP fault keeps GenieACS's code, and a task survives a round trip.
func FuzzParseFaultsAndTasks(f *testing.F) {
	seedBodies(f, func(n string) bool { return strings.Contains(n, "fault") || strings.Contains(n, "task") })
	f.Fuzz(func(t *testing.T, b []byte) {
		if faults, err := genieacs.ParseFaults(b); err == nil {
			for _, fl := range faults {
				if cf := fl.CWMP(); cf != nil && !strings.HasPrefix(fl.Code, "cwmp.") {
					t.Fatalf("fault %q converted to a CWMP fault", fl.Code)
				}
			}
		}
		task, err := genieacs.ParseTask(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(task)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", task, err)
		}
		again, err := genieacs.ParseTask(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if again.Name != task.Name || again.ID != task.ID || len(again.ParameterValues) != len(task.ParameterValues) ||
			len(again.ParameterNames) != len(task.ParameterNames) || again.ObjectName != task.ObjectName {
			t.Fatalf("round trip %+v -> %+v", task, again)
		}
		for i, p := range task.ParameterValues {
			if again.ParameterValues[i].Name != p.Name || again.ParameterValues[i].Type != p.Type {
				t.Fatalf("parameter %d: %+v -> %+v", i, p, again.ParameterValues[i])
			}
		}
	})
}
