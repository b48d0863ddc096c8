package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

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
