// Package exam runs a technician skills exam on a testlab site and scores
// it with the operator's rubric: service and process 10, installation 15,
// activation and demo 30, faults 35 — within the time limit (e8 20 min,
// XT-2 15 min). fieldagent itself can sit the exam: it runs the order and
// diagnoses the drawn faults, and as an acceptance test it must score full
// marks on every catalogued fault.
package exam

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"fieldagent/testlab"
)

// Sections of the operator's rubric, with their marks.
const (
	SectionService    = "service"    // service and process
	SectionInstall    = "install"    // installation
	SectionActivation = "activation" // activation and demo
	SectionFaults     = "faults"     // troubleshooting
)

// Rubric is the marks of each section.
type Rubric struct {
	Service, Install, Activation, Faults float64
}

// DefaultRubric is the operator's: 10, 15, 30 and 35.
var DefaultRubric = Rubric{Service: 10, Install: 15, Activation: 30, Faults: 35}

// Max is the rubric's total.
func (r Rubric) Max() float64 { return r.Service + r.Install + r.Activation + r.Faults }

// Item is one scored line of the sheet.
type Item struct {
	Section string  `json:"section"`
	Name    string  `json:"name"`
	NameZH  string  `json:"name_zh"`
	Max     float64 `json:"max"`
	Got     float64 `json:"got"`
	// Note says why marks were lost, or what was seen.
	Note string `json:"note,omitempty"`
}

// FaultResult is one drawn fault and what the candidate made of it.
type FaultResult struct {
	Fault testlab.Fault `json:"fault"`
	// Found is whether the candidate's diagnosis reported the fault's
	// finding; Reported are the finding codes it reported.
	Found    bool     `json:"found"`
	Reported []string `json:"reported"`
	Took     Duration `json:"took"`
	// Skipped, if set, says why the fault could not be set on this site
	// (e.g. multicast faults without a head-end); it is not scored.
	Skipped string `json:"skipped,omitempty"`
}

// Duration is a time.Duration that reads as "1m30s" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Sheet is a scored exam.
type Sheet struct {
	Candidate string `json:"candidate"`
	Scenario  string `json:"scenario"`
	OrderID   string `json:"order_id"`
	Device    string `json:"device"`
	Seed      uint64 `json:"seed"`
	Items     []Item `json:"items"`
	// Faults are the drawn faults, in the order they were set.
	Faults  []FaultResult `json:"faults"`
	Elapsed Duration      `json:"elapsed"`
	Limit   Duration      `json:"limit"`
	// Overrun is the time past the limit; Penalty the marks it cost.
	Overrun Duration `json:"overrun,omitempty"`
	Penalty float64  `json:"penalty,omitempty"`
	Total   float64  `json:"total"`
	Max     float64  `json:"max"`
	// Passed is Total ≥ PassMark.
	Passed   bool    `json:"passed"`
	PassMark float64 `json:"pass_mark"`
}

// PenaltyPerMinute is the marks lost per started minute over the time
// limit.
const PenaltyPerMinute = 5

// PassShare is the share of the marks that passes.
const PassShare = 0.6

// Section returns the marks got and possible in a section.
func (s *Sheet) Section(name string) (got, max float64) {
	for _, it := range s.Items {
		if it.Section == name {
			got += it.Got
			max += it.Max
		}
	}
	return got, max
}

// finish totals the items, applies the time penalty and the pass mark.
func (s *Sheet) finish() {
	s.Total, s.Max = 0, 0
	for _, it := range s.Items {
		s.Total += it.Got
		s.Max += it.Max
	}
	s.Penalty = 0
	if s.Limit > 0 && s.Elapsed > s.Limit {
		s.Overrun = s.Elapsed - s.Limit
		minutes := math.Ceil(time.Duration(s.Overrun).Minutes())
		s.Penalty = math.Min(s.Total, minutes*PenaltyPerMinute)
	}
	s.Total = round1(s.Total - s.Penalty)
	s.Max = round1(s.Max)
	s.PassMark = round1(s.Max * PassShare)
	s.Passed = s.Total >= s.PassMark
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// faultItems scores the drawn faults: the section's marks shared equally,
// each fault's share for reporting its finding.
func faultItems(r Rubric, faults []FaultResult) []Item {
	if len(faults) == 0 {
		return []Item{{Section: SectionFaults, Name: "no fault drawn", NameZH: "未抽取故障", Max: r.Faults, Got: r.Faults}}
	}
	var set []FaultResult
	for _, f := range faults {
		if f.Skipped == "" {
			set = append(set, f)
		}
	}
	if len(set) == 0 {
		return []Item{{Section: SectionFaults, Name: "no fault could be set", NameZH: "未设置故障", Max: r.Faults, Got: r.Faults}}
	}
	share := r.Faults / float64(len(set))
	var items []Item
	for _, f := range set {
		it := Item{Section: SectionFaults, Name: f.Fault.Title, NameZH: f.Fault.TitleZH, Max: share}
		if f.Found {
			it.Got = it.Max
			it.Note = "found " + string(f.Fault.Finding)
		} else {
			it.Note = fmt.Sprintf("expected %s, reported %s", f.Fault.Finding, orNone(f.Reported))
		}
		items = append(items, it)
	}
	return items
}

func orNone(codes []string) string {
	if len(codes) == 0 {
		return "nothing"
	}
	return strings.Join(codes, ", ")
}

// Draw picks n faults for a site running devices, reproducibly from seed:
// the same seed draws the same faults. Faults whose device the site does
// not run are not drawn.
func Draw(seed uint64, n int, devices ...string) []testlab.Fault {
	var pool []testlab.Fault
	for _, f := range testlab.Faults() {
		if slices.Contains(devices, f.Device) {
			pool = append(pool, f)
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	return pool[:min(n, len(pool))]
}

// WriteText prints the score sheet as a table.
func (s *Sheet) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Exam: %s, order %s (%s), seed %d, candidate %s\n", s.Scenario, s.OrderID, s.Device, s.Seed, s.Candidate)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SECTION\tITEM\tMARKS\tNOTE")
	for _, it := range s.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\n", it.Section, it.Name, num(it.Got), num(it.Max), it.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "Time: %s of %s", time.Duration(s.Elapsed).Round(time.Second), time.Duration(s.Limit))
	if s.Penalty > 0 {
		fmt.Fprintf(w, " — %s over, −%s", time.Duration(s.Overrun).Round(time.Second), num(s.Penalty))
	}
	verdict := "PASS"
	if !s.Passed {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "\nScore: %s / %s (pass mark %s) %s\n", num(s.Total), num(s.Max), num(s.PassMark), verdict)
	return err
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
