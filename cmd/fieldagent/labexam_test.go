package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lab exam sits the exam on a built-in scenario: the sheet is printed, the
// seed is repeatable, the HTML page is written 0600, JSON is one document
// with full marks for fieldagent.
func TestLabExam(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an order and a diagnosis per fault")
	}
	f, out, _, dir := newTestFactory(t)
	page := filepath.Join(dir, "sheet.html")
	if err := execute(t, f, "lab", "exam", "--seed", "3", "--faults", "2", "--html", page, "--lang", "zh"); err != nil {
		t.Fatalf("lab exam: %v\n%s", err, out)
	}
	for _, want := range []string{"seed 3", "--seed 3", "Score: 90 / 90", "PASS", "faults"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	fi, err := os.Stat(page)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("sheet %v, %v; want a 0600 file", fi, err)
	}
	b, _ := os.ReadFile(page)
	if !strings.Contains(string(b), "技能考核评分表") || !strings.Contains(string(b), "合格") {
		t.Error("the Chinese sheet lacks its title or verdict")
	}

	g, jout, _, _ := newTestFactory(t)
	if err := execute(t, g, "lab", "exam", "--seed", "3", "--faults", "2", "--output", "json"); err != nil {
		t.Fatal(err)
	}
	var sheet struct {
		Seed   uint64  `json:"seed"`
		Total  float64 `json:"total"`
		Max    float64 `json:"max"`
		Faults []struct {
			Fault struct {
				ID string `json:"id"`
			} `json:"fault"`
			Found bool `json:"found"`
		} `json:"faults"`
	}
	if err := json.Unmarshal(jout.Bytes(), &sheet); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, jout)
	}
	if sheet.Seed != 3 || sheet.Total != sheet.Max || len(sheet.Faults) != 2 {
		t.Errorf("sheet %+v", sheet)
	}
	// The text sheet lists the drawn faults.
	drawn := func(s string) string {
		var ids []string
		for _, line := range strings.Split(s, "\n") {
			if strings.HasPrefix(line, "faults") {
				ids = append(ids, strings.Join(strings.Fields(line)[1:4], " "))
			}
		}
		return strings.Join(ids, "|")
	}
	if d := drawn(out.String()); d == "" {
		t.Errorf("no faults in the text sheet:\n%s", out)
	}

	err = execute(t, g, "lab", "exam", "--lang", "fr")
	if code := exitCode(err); code != exitUsage {
		t.Errorf("--lang fr: %v (exit %d), want a usage error", err, code)
	}
}
