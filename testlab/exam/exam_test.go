package exam_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/testlab"
	"fieldagent/testlab/exam"
)

// TestFieldagentScoresFullMarks is issue 7's acceptance test: fieldagent
// sitting the exam on an e8 site, every catalogued fault the site can have
// set in turn, scores full marks — installation, activation, service and
// every fault found.
func TestFieldagentScoresFullMarks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an order and a diagnosis per fault")
	}
	for _, tc := range []struct {
		name string
		site testlab.Config
	}{
		{"e8 and iTV", testlab.Config{STB: true}},
		{"XT-2", testlab.Config{XT2: true, NoGateway: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			sheet, err := exam.Run(ctx, exam.Options{Scenario: tc.name, Site: tc.site, Seed: 7, All: true, Candidate: "fieldagent test",
				SpeedDuration: 300 * time.Millisecond, Dir: t.TempDir(), Progress: func(s string) { t.Log(s) }})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := sheet.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", text.String())
			if sheet.Total != sheet.Max || sheet.Max != exam.DefaultRubric.Max() || !sheet.Passed {
				t.Errorf("score %v / %v, want full marks of %v", sheet.Total, sheet.Max, exam.DefaultRubric.Max())
			}
			for _, f := range sheet.Faults {
				if f.Skipped != "" {
					t.Logf("fault %s not set on this site: %s", f.Fault.ID, f.Skipped)
					continue
				}
				if !f.Found {
					t.Errorf("fault %s: expected %s, diagnosis reported %v", f.Fault.ID, f.Fault.Finding, f.Reported)
				}
			}
			var want []string
			for _, f := range testlab.Faults() {
				if slices.Contains(exam.Devices(tc.site), f.Device) {
					want = append(want, f.ID)
				}
			}
			var got []string
			for _, f := range sheet.Faults {
				got = append(got, f.Fault.ID)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("faults set %v, want every applicable one %v", got, want)
			}
			for _, sec := range []string{exam.SectionService, exam.SectionInstall, exam.SectionActivation, exam.SectionFaults} {
				if g, m := sheet.Section(sec); g != m || m == 0 {
					t.Errorf("section %s: %v / %v", sec, g, m)
				}
			}
		})
	}
}

// TestDrawIsReproducible: the same seed draws the same faults; the draw
// keeps to the site's devices.
func TestDrawIsReproducible(t *testing.T) {
	a, b := exam.Draw(42, 3, "e8"), exam.Draw(42, 3, "e8")
	if len(a) != len(b) {
		t.Fatalf("draws of %d and %d", len(a), len(b))
	}
	for i := range a {
		if a[i].ID != b[i].ID {
			t.Errorf("draw %d: %s then %s", i, a[i].ID, b[i].ID)
		}
		if a[i].Device != "e8" {
			t.Errorf("drew %s for the %s on an e8 site", a[i].ID, a[i].Device)
		}
	}
	if n := len(testlab.Faults()); n >= 6 {
		differs := false
		for seed := uint64(1); seed < 20 && !differs; seed++ {
			c := exam.Draw(seed, 3, "e8", "itv", "xt2")
			differs = len(c) > 0 && c[0].ID != exam.Draw(0, 3, "e8", "itv", "xt2")[0].ID
		}
		if !differs {
			t.Error("every seed draws the same first fault")
		}
	}
}

// TestSheetRendering: marks lost show in the text, the JSON and both
// languages of the page, and the time penalty applies past the limit.
func TestSheetRendering(t *testing.T) {
	s := exam.SheetForTest([]exam.Item{
		{Section: exam.SectionInstall, Name: "internet configured", NameZH: "宽带配置", Max: 5, Got: 5},
		{Section: exam.SectionFaults, Name: "fibre unplugged", NameZH: "光纤未插", Max: 35, Got: 0, Note: "expected OPTICAL_NO_LIGHT, reported nothing"},
	}, 21*time.Minute+10*time.Second, 20*time.Minute)
	// Two started minutes over cost 10 marks, but no more than were got.
	if s.Penalty != 5 || s.Total != 0 || s.Passed || s.Max != 40 {
		t.Errorf("penalty %v total %v/%v passed %v; want −5 (2 minutes over, floored at the 5 got), 0/40, failed", s.Penalty, s.Total, s.Max, s.Passed)
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fibre unplugged", "0/35", "FAIL", "over"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	for lang, want := range map[string][]string{
		exam.English:   {"Skills exam score sheet", "fibre unplugged", "FAIL"},
		exam.Chinese:   {"技能考核评分表", "光纤未插", "不合格", "故障处理"},
		exam.Bilingual: {"技能考核评分表 Skills exam score sheet", "光纤未插 fibre unplugged"},
	} {
		var page bytes.Buffer
		if err := s.WriteHTML(&page, lang); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(page.String(), w) {
				t.Errorf("%s page lacks %q", lang, w)
			}
		}
	}
	if err := s.WriteHTML(&bytes.Buffer{}, "fr"); err == nil {
		t.Error("WriteHTML accepted an unknown language")
	}
	b, err := json.Marshal(s)
	if err != nil || !strings.Contains(string(b), `"elapsed":"21m10s"`) || !strings.Contains(string(b), `"passed":false`) {
		t.Errorf("JSON %s, %v", b, err)
	}
}
