package verdict

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzOverride feeds Override arbitrary documents. Whatever the input:
// no panic; a failed override leaves the profile as it was; a successful
// one leaves a profile that validates and that, written back out as YAML,
// overrides a fresh profile to the same thresholds.
func FuzzOverride(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "~", "{}", "[]", "optical: {rx_min_dbm: -28}", `{"speed": {"down_mbps": 1e3}}`,
		"lan: {gigabit_ports: []}", "a: &x {b: 1}\nc: *x", "optical: &o {rx_min_dbm: -28}\nepon: *o",
		"iptv: {max_join_ms: 0x10}", "speed: {min_ratio: !!float '0.5'}", "name: [1]", "ping: {max_loss_pct: -0}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		base := ProfileFor("gpon", 100, 30)
		p := base
		if err := p.Override(doc); err != nil {
			if !reflect.DeepEqual(p, base) {
				t.Fatalf("failed override (%v) changed the profile: %+v", err, p)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("override accepted an invalid profile: %v", err)
		}
		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		q := ProfileFor("gpon", 100, 30)
		if err := q.Override(out); err != nil {
			t.Fatalf("the profile's own YAML does not override: %v\n%s", err, out)
		}
		pj, _ := json.Marshal(p)
		qj, _ := json.Marshal(q)
		if string(pj) != string(qj) {
			t.Fatalf("round trip changed the profile:\n%s\n%s", pj, qj)
		}
	})
}
