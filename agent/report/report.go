// Package report builds the completion report (报竣) of a work order: the
// JSON document uploaded to the order system, the text a technician reads,
// and the printable page (WriteHTML) left with the customer, in Chinese,
// English or both. Reports never carry credentials: they hold identities,
// states, readings and verdicts only (SetOrder copies an order without its
// passwords, LOID or secrets).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"fieldagent/agent/order"
	"fieldagent/drivers"
)

// Result values of a completion.
const (
	ResultSuccess = "success"
	ResultFailed  = "failed"
)

// Completion is the 报竣 report of one order. The fields up to Agent are the
// original wire format and keep their names; the fields after it were added
// for the customer's page and are all optional: a zero value leaves its
// part of the page out or shows it as not recorded.
type Completion struct {
	OrderID    string            `json:"order_id"`
	Result     string            `json:"result"`
	Technician string            `json:"technician,omitempty"`
	Device     drivers.Identity  `json:"device"`
	WAN        drivers.WANStatus `json:"wan"`
	LOID       *LOID             `json:"loid,omitempty"`
	Readings   []Reading         `json:"readings"`
	Steps      []Step            `json:"steps"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt time.Time         `json:"finished_at"`
	Agent      string            `json:"agent"`

	// OrderType is the order's type: new_install, move, repair or removal.
	OrderType string `json:"order_type,omitempty"`
	// Operator names the operator in the page header; empty means China
	// Telecom (中国电信).
	Operator string `json:"operator,omitempty"`
	// Customer is who the work was for; nil leaves the customer out.
	Customer *Customer `json:"customer,omitempty"`
	// OtherDevices are the devices installed besides Device (an iTV
	// set-top box, an XT-2 router), in the order they were installed.
	OtherDevices []drivers.Identity `json:"other_devices,omitempty"`
	// PPPoEAccount is the broadband account name. Its password is never
	// part of a report.
	PPPoEAccount string `json:"pppoe_account,omitempty"`
	// Package is the subscribed rate; zero when unknown.
	Package Package `json:"package,omitzero"`
	// Speed are the speed-test results drawn against the package. When
	// nil, the page takes them from Readings (see SpeedFromReadings).
	Speed []SpeedSample `json:"speed,omitempty"`
	// Verdict is the acceptance test's verdict: the line readings judged
	// against their limits and the faults still found; nil when no
	// verdict was made.
	Verdict *Verdict `json:"verdict,omitempty"`
	// Fixes are the faults found during the visit and what was done about
	// each, with its re-test.
	Fixes []Fix `json:"fixes,omitempty"`
	// ArrivedAt is when the technician arrived; zero if not recorded.
	ArrivedAt time.Time `json:"arrived_at,omitzero"`
	// TimeLimit is how long the visit may take; zero means no limit.
	// SetTimeLimit sets it with Elapsed and Overrun.
	TimeLimit time.Duration `json:"time_limit_ns,omitempty"`
	// Elapsed is how long the visit took; zero if not known.
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	// Overrun is set when Elapsed went over TimeLimit.
	Overrun bool `json:"overrun,omitempty"`
	// Acceptance is the customer's acceptance; nil while the customer has
	// not answered (the page then has a signature line).
	Acceptance *Acceptance `json:"acceptance,omitempty"`
}

// Customer is the customer of an order as the report shows them.
type Customer struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	// Phone is the contact number as the order gives it (the JSON carries
	// it whole); the page shows only its last 4 digits (MaskPhone).
	Phone string `json:"phone,omitempty"`
}

// Package is the subscribed rate of the internet service, in Mbit/s. Zero
// values are unknown.
type Package struct {
	DownMbps float64 `json:"down_mbps,omitempty"`
	UpMbps   float64 `json:"up_mbps,omitempty"`
	// MinRatio is the share of the package a speed test must reach; zero
	// means DefaultMinRatio.
	MinRatio float64 `json:"min_ratio,omitempty"`
}

// DefaultMinRatio is the share of the package rate a speed test must reach
// when Package.MinRatio is zero (the verdict profiles' default).
const DefaultMinRatio = 0.9

// ratio returns MinRatio or its default.
func (p Package) ratio() float64 {
	if p.MinRatio <= 0 || p.MinRatio > 1 {
		return DefaultMinRatio
	}
	return p.MinRatio
}

// The kinds of SpeedSample.
const (
	SpeedLaptopDown  = "laptop_download"
	SpeedLaptopUp    = "laptop_upload"
	SpeedGatewayDown = "gateway_download"
	SpeedGatewayUp   = "gateway_upload"
)

// SpeedSample is one speed-test result. Kind is one of the Speed kinds;
// the page's chart leaves out other kinds.
type SpeedSample struct {
	Kind string  `json:"kind"`
	Mbps float64 `json:"mbps"`
}

// speedReadings maps the readings of the speed probes to sample kinds.
var speedReadings = map[string]string{
	"download_mbps":         SpeedLaptopDown,
	"upload_mbps":           SpeedLaptopUp,
	"gateway_download_mbps": SpeedGatewayDown,
	"gateway_upload_mbps":   SpeedGatewayUp,
}

// SpeedFromReadings returns the speed samples among rs, in their order:
// download_mbps and upload_mbps (taken on the laptop) and
// gateway_download_mbps and gateway_upload_mbps. It returns nil when there
// are none.
func SpeedFromReadings(rs []Reading) []SpeedSample {
	var out []SpeedSample
	for _, r := range rs {
		if k, ok := speedReadings[r.Name]; ok {
			out = append(out, SpeedSample{Kind: k, Mbps: r.Value})
		}
	}
	return out
}

// speed returns c.Speed, or the samples among the readings when it is nil.
func (c *Completion) speed() []SpeedSample {
	if c.Speed != nil {
		return c.Speed
	}
	return SpeedFromReadings(c.Readings)
}

// Acceptance is the customer's answer at the end of the visit.
type Acceptance struct {
	// Name is who accepted, as they gave it.
	Name string `json:"name"`
	// Comment is what they said, if anything.
	Comment string `json:"comment,omitempty"`
	// At is when they answered; zero if not recorded.
	At time.Time `json:"at,omitzero"`
	// Accepted is false when the customer refused the installation.
	Accepted bool `json:"accepted"`
}

// SetOrder copies what the report shows of o: its id, type, technician
// (unless already set), customer, PPPoE account name and the subscribed
// rate of its first service with one. It copies no credential: not the
// PPPoE or IPTV password, not the LOID or its password.
func (c *Completion) SetOrder(o *order.Order) {
	c.OrderID = o.ID
	c.OrderType = string(o.Type)
	if c.Technician == "" {
		c.Technician = o.Technician
	}
	c.Customer = &Customer{Name: o.Customer.Name, Address: o.Customer.Address, Phone: o.Customer.Phone}
	c.PPPoEAccount = o.PPPoE.Username
	for _, s := range o.Services {
		if s.BandwidthMbps > 0 {
			c.Package.DownMbps = float64(s.BandwidthMbps)
			break
		}
	}
}

// SetTimeLimit records the visit's time limit (zero for none) and works out
// Elapsed, from ArrivedAt (or StartedAt when the arrival is not recorded)
// to FinishedAt, and Overrun. Elapsed is zero when either end is missing
// or the end is before the start; Overrun is then false.
func (c *Completion) SetTimeLimit(limit time.Duration) {
	c.TimeLimit = limit
	start := c.ArrivedAt
	if start.IsZero() {
		start = c.StartedAt
	}
	c.Elapsed = 0
	if !start.IsZero() && !c.FinishedAt.IsZero() && c.FinishedAt.After(start) {
		c.Elapsed = c.FinishedAt.Sub(start)
	}
	c.Overrun = limit > 0 && c.Elapsed > limit
}

// MaskPhone returns a phone number with everything but its last 4 digits
// hidden: "13812345678" gives "****5678". A number with 4 digits or fewer
// is hidden whole; an empty one stays empty.
func MaskPhone(phone string) string {
	if phone == "" {
		return ""
	}
	var digits []rune
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			digits = append(digits, r)
		}
	}
	if len(digits) <= 4 {
		return "****"
	}
	return "****" + string(digits[len(digits)-4:])
}

// LOID is the registration outcome, without the LOID itself.
type LOID struct {
	Registered bool   `json:"registered"`
	Status     string `json:"status"`
	Result     string `json:"result"`
}

// Reading is one measured value.
type Reading struct {
	Step  string    `json:"step"`
	Name  string    `json:"name"`
	Value float64   `json:"value"`
	Unit  string    `json:"unit"`
	At    time.Time `json:"at"`
}

// Step is one step of the visit.
type Step struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Detail     string    `json:"detail,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// JSON encodes the completion as the order system receives it.
func (c *Completion) JSON() ([]byte, error) { return json.Marshal(c) }

// WriteText writes a bilingual (zh/en) summary for people.
func (c *Completion) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	result := "完成 / completed"
	if c.Result != ResultSuccess {
		result = "未完成 / not completed"
	}
	fmt.Fprintf(tw, "工单 Order\t%s\n", c.OrderID)
	fmt.Fprintf(tw, "结果 Result\t%s\n", result)
	if c.Device.Serial != "" {
		fmt.Fprintf(tw, "设备 Device\t%s %s (SN %s, firmware %s, %s)\n", c.Device.Vendor, c.Device.Model, c.Device.Serial, c.Device.Firmware, strings.ToUpper(c.Device.Access))
	}
	if c.WAN.Instance != "" {
		fmt.Fprintf(tw, "上网 Internet\t%s %s, IP %s, NAT %v\n", c.WAN.ConnectionType, c.WAN.Status, orDash(c.WAN.ExternalIP), c.WAN.NAT)
	}
	if c.LOID != nil {
		reg := "未注册 / not registered"
		if c.LOID.Registered {
			reg = "注册成功 / registered"
		}
		fmt.Fprintf(tw, "LOID 注册 Registration\t%s (Status %s, Result %s)\n", reg, c.LOID.Status, c.LOID.Result)
	}
	for _, r := range c.Readings {
		fmt.Fprintf(tw, "测试 Test\t%s = %s\n", r.Name, FormatValue(r.Value, r.Unit))
	}
	if c.Elapsed > 0 || c.TimeLimit > 0 || c.Overrun {
		fmt.Fprintf(tw, "用时 Time\t%s\n", c.timingText())
	}
	if a := c.Acceptance; a != nil {
		state := "已确认验收 / accepted"
		if !a.Accepted {
			state = "未确认验收 / not accepted"
		}
		line := state + " (" + orDash(oneLine(a.Name))
		if !a.At.IsZero() {
			line += ", " + a.At.Format(timeLayout)
		}
		line += ")"
		if a.Comment != "" {
			line += ": " + oneLine(a.Comment)
		}
		fmt.Fprintf(tw, "客户确认 Acceptance\t%s\n", line)
	}
	return tw.Flush()
}

// timingText is the elapsed time against the limit for WriteText, e.g.
// "1 h 35 min (时限 limit 1 h 30 min), 超时 overrun 5 min".
func (c *Completion) timingText() string {
	s := "-"
	if c.Elapsed > 0 {
		s = durationEN(c.Elapsed)
	}
	if c.TimeLimit > 0 {
		s += " (时限 limit " + durationEN(c.TimeLimit) + ")"
	}
	if c.Overrun {
		s += ", 超时 overrun"
		if over := c.Elapsed - c.TimeLimit; c.TimeLimit > 0 && over > 0 {
			s += " " + durationEN(over)
		}
	}
	return s
}

// timeLayout is how reports print times.
const timeLayout = "2006-01-02 15:04"

// oneLine folds white space, newlines included, so free text keeps to one
// line of a table.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// FormatValue prints a reading's value with its unit: integers without
// decimals, others with two; no trailing space when there is no unit.
func FormatValue(v float64, unit string) string {
	s := fmt.Sprintf("%.2f", v)
	if v == float64(int64(v)) {
		s = fmt.Sprintf("%d", int64(v))
	}
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
