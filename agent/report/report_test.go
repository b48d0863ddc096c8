package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/drivers"
)

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{5, "", "5"}, {0, "%", "0 %"}, {0.234, "ms", "0.23 ms"}, {812.349, "Mbit/s", "812.35 Mbit/s"},
	} {
		if got := FormatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("FormatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestCompletionText(t *testing.T) {
	c := &Completion{
		OrderID: "WO-1", Result: ResultSuccess,
		Device:   drivers.Identity{Vendor: "ZTE", Model: "F650", Serial: "SN1", Firmware: "V1", Access: "gpon"},
		WAN:      drivers.WANStatus{Instance: "x.", ConnectionType: "IP_Routed", Status: "Connected", ExternalIP: "100.64.0.2", NAT: true},
		LOID:     &LOID{Registered: true, Status: "0", Result: "1"},
		Readings: []Reading{{Name: "download_mbps", Value: 300.5, Unit: "Mbit/s"}},
	}
	var b bytes.Buffer
	if err := c.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WO-1", "完成 / completed", "SN SN1", "GPON", "IP 100.64.0.2", "注册成功 / registered", "download_mbps = 300.50 Mbit/s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	c.Result = ResultFailed
	b.Reset()
	_ = c.WriteText(&b)
	if !strings.Contains(b.String(), "未完成 / not completed") {
		t.Errorf("failed result not shown:\n%s", b.String())
	}
	js, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Completion
	if err := json.Unmarshal(js, &back); err != nil || back.Device.Serial != "SN1" || !back.LOID.Registered {
		t.Errorf("JSON round trip: %+v, %v", back, err)
	}
}

func TestCompletionTextAcceptanceAndOverrun(t *testing.T) {
	for _, tc := range []struct {
		name       string
		c          *Completion
		want, nots []string
	}{
		{"accepted, over the limit", sample(),
			[]string{"用时 Time", "1 h 45 min (时限 limit 1 h 30 min), 超时 overrun 15 min",
				"客户确认 Acceptance", "已确认验收 / accepted (李娜, 2025-03-14 10:52): 安装很快，师傅很专业。"},
			nil},
		{"refused, within the limit", func() *Completion {
			c := sample()
			c.SetTimeLimit(2 * time.Hour)
			c.Acceptance = &Acceptance{Name: "李娜", Comment: "网速不够\n要求复查", Accepted: false}
			return c
		}(),
			[]string{"1 h 45 min (时限 limit 2 h)", "未确认验收 / not accepted (李娜): 网速不够 要求复查"},
			[]string{"overrun", "已确认验收"}},
		{"neither recorded", &Completion{OrderID: "WO-1", Result: ResultSuccess},
			nil,
			[]string{"用时", "客户确认", "overrun"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.c.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("text lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tc.nots {
				if strings.Contains(b.String(), n) {
					t.Errorf("text has %q:\n%s", n, b.String())
				}
			}
		})
	}
}

// TestJSONCompatible: a completion with only the original fields encodes
// to exactly the original keys, and the new fields round-trip.
func TestJSONCompatible(t *testing.T) {
	old := &Completion{OrderID: "WO-1", Result: ResultSuccess, Readings: []Reading{}, Steps: []Step{}}
	js, err := old.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(js, &keys); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range keys {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{"agent", "device", "finished_at", "order_id", "readings", "result", "started_at", "steps", "wan"}
	if !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}

	c := sample()
	js, err = c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Completion
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	// Times come back in a fixed zone without its name: compare encodings.
	again, err := back.JSON()
	if err != nil || !bytes.Equal(again, js) {
		t.Errorf("round trip differs (%v):\n got %s\nwant %s", err, again, js)
	}
	if back.Acceptance == nil || back.Verdict == nil || len(back.Fixes) != 1 || back.Fixes[0].Finding == nil || back.Customer == nil {
		t.Errorf("round trip lost a part: %+v", back)
	}
	for _, k := range []string{`"order_type":"new_install"`, `"package":{"down_mbps":300,"up_mbps":50}`, `"time_limit_ns":5400000000000`,
		`"overrun":true`, `"acceptance":{"name":"李娜"`, `"fixes":[{"code":"OPTICAL_RX_LOW"`, `"speed":[{"kind":"laptop_download","mbps":312.4}`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("JSON lacks %s", k)
		}
	}
}
