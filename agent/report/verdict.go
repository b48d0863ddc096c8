package report

import (
	"math"
	"time"

	"fieldagent/diagnostics/verdict"
)

// Status is the outcome of a check, a finding's severity and a re-test's
// result: ok, warn, fail or skip (not judged, not re-tested).
type Status string

// The statuses, as diagnostics/verdict names them.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
	StatusSkip Status = "skip"
)

// Symbol returns ✔ (ok), ⚠ (warn), ✘ (fail) or – (skip and anything else).
func (s Status) Symbol() string {
	switch s {
	case StatusOK:
		return "✔"
	case StatusWarn:
		return "⚠"
	case StatusFail:
		return "✘"
	}
	return "–"
}

// class is the page's CSS class of a status.
func (s Status) class() string {
	switch s {
	case StatusOK, StatusWarn, StatusFail:
		return "st-" + string(s)
	}
	return "st-skip"
}

// Verdict is the acceptance test's verdict as the report carries it: a copy
// of diagnostics/verdict's Report, so that the wire format does not change
// when that package's types do.
type Verdict struct {
	// Profile names the thresholds used.
	Profile string `json:"profile,omitempty"`
	// Status is the worst of the checks and findings.
	Status Status `json:"status"`
	// Checks are the readings judged against their limits.
	Checks []Check `json:"checks"`
	// Findings are the faults diagnosed, failures first.
	Findings []Finding `json:"findings"`
}

// Check is one reading judged against its limit.
type Check struct {
	// Name is the check's English name, e.g. "optical Rx power".
	Name string `json:"name"`
	// Reading is the reading's name, e.g. optical_rx_power_dbm; empty for a
	// probe that did not complete.
	Reading string  `json:"reading,omitempty"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	Status  Status  `json:"status"`
	// Limit is the threshold as text, e.g. "≥ 270 Mbit/s (90% of 300)".
	Limit string `json:"limit,omitempty"`
	// Detail says why a check was skipped or how a probe failed.
	Detail string `json:"detail,omitempty"`
}

// Finding is a diagnosed fault: symptom, cause and fix in English and in
// Chinese (the ZH fields), with the evidence that triggered it.
type Finding struct {
	Code      string   `json:"code"`
	Severity  Status   `json:"severity"`
	Symptom   string   `json:"symptom"`
	Cause     string   `json:"cause"`
	Fix       string   `json:"fix"`
	SymptomZH string   `json:"symptom_zh"`
	CauseZH   string   `json:"cause_zh"`
	FixZH     string   `json:"fix_zh"`
	Evidence  []string `json:"evidence,omitempty"`
}

// Fix is a fault found during the visit and what the technician did about
// it.
type Fix struct {
	// Code is the fault's finding code, e.g. OPTICAL_RX_LOW.
	Code string `json:"code"`
	// Finding is the fault as diagnosed; nil when only the code is known.
	Finding *Finding `json:"finding,omitempty"`
	// Action is what was done, in the technician's words.
	Action string `json:"action"`
	// Retest is the re-test's outcome; skip or empty means not re-tested.
	Retest Status `json:"retest,omitempty"`
	// At is when the fix was made; zero if not recorded.
	At time.Time `json:"at,omitzero"`
}

// FromVerdict copies a verdict report into the report's own types. A value
// that is not a finite number becomes 0 (JSON cannot carry it).
func FromVerdict(r verdict.Report) *Verdict {
	v := &Verdict{Profile: r.Profile, Status: Status(r.Status), Checks: []Check{}, Findings: []Finding{}}
	for _, c := range r.Checks {
		val := c.Value
		if math.IsNaN(val) || math.IsInf(val, 0) {
			val = 0
		}
		v.Checks = append(v.Checks, Check{
			Name: c.Name, Reading: c.Reading, Value: val, Unit: c.Unit,
			Status: Status(c.Status), Limit: c.Limit, Detail: c.Detail,
		})
	}
	for _, f := range r.Findings {
		v.Findings = append(v.Findings, FromVerdictFinding(f))
	}
	return v
}

// FromVerdictFinding copies one finding, e.g. for Fix.Finding.
func FromVerdictFinding(f verdict.Finding) Finding {
	return Finding{
		Code: string(f.Code), Severity: Status(f.Severity),
		Symptom: f.Symptom, Cause: f.Cause, Fix: f.Fix,
		SymptomZH: f.SymptomZH, CauseZH: f.CauseZH, FixZH: f.FixZH,
		Evidence: append([]string(nil), f.Evidence...),
	}
}
