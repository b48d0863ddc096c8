// Package report builds the completion report (报竣) of a work order: the
// JSON document uploaded to the order system and the text a technician or a
// customer reads, in Chinese and English. Reports never carry credentials:
// they hold identities, states and readings only.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"fieldagent/drivers"
)

// Result values of a completion.
const (
	ResultSuccess = "success"
	ResultFailed  = "failed"
)

// Completion is the 报竣 report of one order.
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
	return tw.Flush()
}

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
