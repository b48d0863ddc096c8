package verdict

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"fieldagent/diagnostics"
)

// Status is the outcome of a check, and a finding's severity.
type Status string

// The statuses, from best to worst; skip means the reading was not judged
// (no threshold applies, e.g. the package rate is unknown).
const (
	StatusOK   Status = "ok"
	StatusSkip Status = "skip"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
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

func (s Status) rank() int {
	switch s {
	case StatusWarn:
		return 2
	case StatusFail:
		return 3
	case StatusOK:
		return 1
	}
	return 0
}

// worse returns the worse of a and b (fail > warn > ok > skip).
func worse(a, b Status) Status {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Check is one reading judged against its threshold, or a probe that did
// not complete (Reading empty, Detail holds its error).
type Check struct {
	// Name is a short human name, e.g. "optical Rx power" or "LAN1 link speed".
	Name string `json:"name"`
	// Reading is the reading's name, e.g. optical_rx_power_dbm.
	Reading string `json:"reading,omitempty"`
	// Value and Unit are the reading's; Value is 0 for a probe check.
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
	// Status is ok, warn, fail or skip.
	Status Status `json:"status"`
	// Limit is the threshold as text, e.g. "−27 … −8 dBm (warn below −25)".
	Limit string `json:"limit,omitempty"`
	// Probe is the probe that took the reading.
	Probe string `json:"probe,omitempty"`
	// Detail says why a check was skipped or how a probe failed.
	Detail string `json:"detail,omitempty"`
}

// Report is the verdict on one set of results.
type Report struct {
	// Profile and Access name the thresholds used.
	Profile string `json:"profile"`
	Access  string `json:"access,omitempty"`
	// Status is the worst of the checks' and findings' statuses; ok when
	// nothing was judged.
	Status Status `json:"status"`
	// Checks are in the order of the results and their readings.
	Checks []Check `json:"checks"`
	// Findings are the diagnoses, failures before warnings.
	Findings []Finding `json:"findings"`
}

// Failed reports whether anything failed (the exit code 1 case).
func (r Report) Failed() bool { return r.Status == StatusFail }

// Evaluate judges every reading of results that has a threshold in p, adds
// a failed check for every result that did not succeed, and applies the
// finding rules to the checks, the results and facts (which may be nil).
// Readings without a threshold (ping_rtt_avg, dsl_crc_errors, …) give no
// check but may be quoted as evidence.
func Evaluate(p Profile, results []diagnostics.Result, facts map[string]string) Report {
	if facts == nil {
		facts = map[string]string{}
	}
	rep := Report{Profile: p.Name, Access: p.Access, Status: StatusOK, Checks: []Check{}, Findings: []Finding{}}
	for _, res := range results {
		if !res.Success {
			rep.Checks = append(rep.Checks, Check{
				Name: res.Probe + " probe", Probe: res.Probe, Status: StatusFail,
				Limit: "completes without error", Detail: res.Err,
			})
		}
		for _, rd := range res.Readings {
			if c, ok := judge(p, rd, facts); ok {
				c.Probe = res.Probe
				rep.Checks = append(rep.Checks, c)
			}
		}
	}
	rep.Findings = diagnose(&evidence{p: p, results: results, checks: rep.Checks, facts: facts})
	for _, c := range rep.Checks {
		rep.Status = worse(rep.Status, c.Status)
	}
	for _, f := range rep.Findings {
		rep.Status = worse(rep.Status, f.Severity)
	}
	if rep.Status == StatusSkip {
		rep.Status = StatusOK
	}
	return rep
}

// eps absorbs float noise (0.9 × 100 is 90.00000000000001) at a boundary.
func eps(limit float64) float64 { return 1e-9 * math.Max(1, math.Abs(limit)) }

func below(v, limit float64) bool { return v < limit-eps(limit) }
func above(v, limit float64) bool { return v > limit+eps(limit) }

// judge returns the check of rd, if p has a threshold for it.
func judge(p Profile, rd diagnostics.Reading, facts map[string]string) (Check, bool) {
	c := Check{Reading: rd.Name, Value: rd.Value, Unit: rd.Unit}
	name, j := p.judgeFor(rd.Name, facts)
	if j == nil {
		return Check{}, false
	}
	c.Name = name
	if math.IsNaN(rd.Value) || math.IsInf(rd.Value, 0) {
		c.Value = 0
		c.Status = StatusSkip
		c.Detail = fmt.Sprintf("the reading is %v, not a number", rd.Value)
		return c, true
	}
	c.Status, c.Limit, c.Detail = j(rd.Value)
	return c, true
}

// judgement maps a value to a status, the limit as text and an optional detail.
type judgement func(v float64) (Status, string, string)

func atLeast(min float64, unit string) judgement {
	return func(v float64) (Status, string, string) {
		if below(v, min) {
			return StatusFail, "≥ " + human(min, unit), ""
		}
		return StatusOK, "≥ " + human(min, unit), ""
	}
}

func atMost(max float64, unit string) judgement {
	return func(v float64) (Status, string, string) {
		if above(v, max) {
			return StatusFail, "≤ " + human(max, unit), ""
		}
		return StatusOK, "≤ " + human(max, unit), ""
	}
}

// flagIs judges a 1/0 reading: want is the good value, text says what it means.
func flagIs(want float64, text string) judgement {
	return func(v float64) (Status, string, string) {
		if v != want {
			return StatusFail, text, ""
		}
		return StatusOK, text, ""
	}
}

func skip(why string) judgement {
	return func(float64) (Status, string, string) { return StatusSkip, "", why }
}

// judgeFor returns the check's name and judgement for a reading, or a nil
// judgement when no threshold applies.
func (p Profile) judgeFor(reading string, facts map[string]string) (string, judgement) {
	switch reading {
	case "optical_rx_power_dbm":
		return "optical Rx power", p.opticalRx()
	case "dsl_snr_margin_down_db":
		return "DSL SNR margin down", atLeast(p.DSL.SNRMarginMinDB, "dB")
	case "dsl_snr_margin_up_db":
		return "DSL SNR margin up", atLeast(p.DSL.SNRMarginMinDB, "dB")
	case "wan_up":
		if strings.Contains(strings.ToLower(facts[FactWANConnectionType]), "bridged") {
			return "internet WAN", skip("the internet WAN is bridged: a PC behind the gateway dials")
		}
		return "internet WAN", flagIs(1, "connected with an address")
	case "dhcp_lease":
		return "DHCP lease", flagIs(1, "a usable IPv4 address")
	case "download_mbps":
		return "download speed", p.speed(p.Speed.DownMbps)
	case "upload_mbps":
		return "upload speed", p.speed(p.Speed.UpMbps)
	case "gateway_download_mbps":
		return "gateway download speed", p.speed(p.Speed.DownMbps)
	case "gateway_upload_mbps":
		return "gateway upload speed", p.speed(p.Speed.UpMbps)
	case "ping_loss":
		return "ping loss", atMost(p.Ping.MaxLossPct, "%")
	case "iptv_mlr":
		return "IPTV media loss rate", atMost(p.IPTV.MaxMLR, "")
	case "iptv_df_ms":
		return "IPTV delay factor", atMost(p.IPTV.MaxDFMs, "ms")
	case "iptv_join_ms":
		return "IPTV channel join", atMost(p.IPTV.MaxJoinMs, "ms")
	case "iptv_packets":
		return "IPTV packets", atLeast(1, "")
	case "http_status":
		return "HTTP status", httpStatus
	}
	if port, ok := lanPort(reading, "_speed_mbps"); ok {
		if !slices.Contains(p.LAN.GigabitPorts, port) {
			return "", nil
		}
		return fmt.Sprintf("LAN%d link speed", port), p.gigabit()
	}
	if port, ok := lanPort(reading, "_full_duplex"); ok {
		return fmt.Sprintf("LAN%d duplex", port), flagIs(1, "full duplex")
	}
	return "", nil
}

// lanPort parses lan<N><suffix>.
func lanPort(reading, suffix string) (int, bool) {
	rest, ok := strings.CutPrefix(reading, "lan")
	if !ok {
		return 0, false
	}
	n, ok := strings.CutSuffix(rest, suffix)
	if !ok {
		return 0, false
	}
	port, err := strconv.Atoi(n)
	return port, err == nil && port > 0
}

func (p Profile) opticalRx() judgement {
	o := p.Optical
	if !o.judged() {
		return skip("no optical limits for access " + orDash(p.Access))
	}
	limit := human(o.RxMinDBm, "") + " … " + human(o.RxMaxDBm, "dBm")
	if o.RxWarnDBm > o.RxMinDBm {
		limit += " (warn below " + human(o.RxWarnDBm, "") + ")"
	}
	return func(v float64) (Status, string, string) {
		switch {
		case below(v, o.RxMinDBm) || above(v, o.RxMaxDBm):
			return StatusFail, limit, ""
		case below(v, o.RxWarnDBm):
			return StatusWarn, limit, ""
		}
		return StatusOK, limit, ""
	}
}

// speed judges a rate against MinRatio of the package rate pkg.
func (p Profile) speed(pkg float64) judgement {
	if pkg <= 0 {
		return skip("the package rate is unknown")
	}
	min := pkg * p.Speed.MinRatio
	limit := fmt.Sprintf("≥ %s (%s%% of %s)", human(min, "Mbit/s"), human(p.Speed.MinRatio*100, ""), human(pkg, ""))
	return func(v float64) (Status, string, string) {
		if below(v, min) {
			return StatusFail, limit, ""
		}
		return StatusOK, limit, ""
	}
}

// gigabit judges a gigabit port's link speed: slower warns, and fails when
// the link cannot carry the package's download rate.
func (p Profile) gigabit() judgement {
	limit := "≥ " + human(p.LAN.GigabitSpeedMbps, "Mbit/s")
	return func(v float64) (Status, string, string) {
		if !below(v, p.LAN.GigabitSpeedMbps) {
			return StatusOK, limit, ""
		}
		if p.Speed.DownMbps > v {
			return StatusFail, limit, fmt.Sprintf("a %s link cannot carry the %s package", human(v, "Mbit/s"), human(p.Speed.DownMbps, "Mbit/s"))
		}
		return StatusWarn, limit, ""
	}
}

func httpStatus(v float64) (Status, string, string) {
	if v >= 200 && v < 400 {
		return StatusOK, "2xx or 3xx", ""
	}
	return StatusFail, "2xx or 3xx", ""
}

// num formats v for error messages: at most three decimals, ASCII minus.
func num(v float64) string {
	if math.Abs(v) >= 1e12 || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	s := strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
	if s == "-0" {
		s = "0"
	}
	return s
}

// human formats v with a typographic minus and an optional unit, for
// limits and evidence: human(-27, "dBm") is "−27 dBm".
func human(v float64, unit string) string {
	s := strings.Replace(num(v), "-", "−", 1)
	if unit != "" {
		s += " " + unit
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
