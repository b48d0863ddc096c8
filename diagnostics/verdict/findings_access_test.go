package verdict

import (
	"maps"
	"testing"

	"fieldagent/diagnostics"
)

// accessRuleCases are the cases of the access rules; TestRules and
// TestEveryRuleHasCases run them with the core ones.
var accessRuleCases = map[Code][]ruleCase{
	CodeONUNotAuthorised: {
		{name: "light but not on the PON", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -18.5, "dBm"), rd("wan_up", 0, ""))},
			facts: facts(FactOpticalStatus, "Initializing", FactWANStatus, "Disconnected", FactWANLastError, "ERROR_ISP_TIME_OUT"), fires: true, sev: StatusFail,
			evidence: []string{"optical_status = Initializing", "optical_rx_power_dbm = −18.5 dBm", "wan_last_error = ERROR_ISP_TIME_OUT"},
			cause:    "not authorised", causeZH: "未授权"},
		{name: "registered by the loid facts", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -20, "dBm"))},
			facts: facts(FactOpticalStatus, "Initializing", FactLOIDStatus, "0"), fires: true, sev: StatusFail},
		{name: "on the PON", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -18.5, "dBm"))}, facts: facts(FactOpticalStatus, "Up")},
		{name: "no light is its own finding", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -40, "dBm"))}, facts: facts(FactOpticalStatus, "NoSignal")},
		{name: "the LOID rule says why", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -18.5, "dBm"))},
			facts: facts(FactOpticalStatus, "Initializing", FactLOIDStatus, "1")},
		{name: "no status", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -18.5, "dBm"))}},
		{name: "lan access", p: ptr(ProfileFor("lan", 100, 30)), results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -18.5, "dBm"))},
			facts: facts(FactOpticalStatus, "Initializing")},
	},
	CodeLANDHCPOff: {
		{name: "off, routed", results: []diagnostics.Result{ok("lease", rd("dhcp_lease", 0, ""))},
			facts: facts(FactLANDHCPServer, "off", FactWANConnectionType, "IP_Routed"), fires: true, sev: StatusFail,
			evidence: []string{"lan_dhcp_server = off", "wan_connection_type = IP_Routed", "dhcp_lease = 0 (limit a usable IPv4 address)"},
			cause:    "switched off", causeZH: "DHCP服务被关闭"},
		{name: "0 from the data model", facts: facts(FactLANDHCPServer, "0"), fires: true, sev: StatusFail},
		{name: "on", facts: facts(FactLANDHCPServer, "on")},
		{name: "bridged internet", facts: facts(FactLANDHCPServer, "off", FactWANConnectionType, "PPPoE_Bridged")},
		{name: "not read"},
	},
	CodeWiFiCongested: {
		{name: "fixed on an overlapping channel", results: []diagnostics.Result{ok("line",
			rd("wifi1_enabled", 1, ""), rd("wifi1_channel", 3, ""), rd("wifi1_clients", 14, ""), rd("wifi1_auto_channel", 0, ""))},
			fires: true, sev: StatusWarn, evidence: []string{"wifi1_channel = 3", "wifi1_auto_channel = 0", "wifi1_clients = 14"},
			cause: "overlaps", causeZH: "重叠"},
		{name: "fixed on 6 among many neighbours", results: []diagnostics.Result{ok("line",
			rd("wifi1_enabled", 1, ""), rd("wifi1_channel", 6, ""), rd("wifi1_auto_channel", 0, ""))},
			facts: facts(FactWiFiNeighbours, "12", FactWiFiRSSI, "-58"), fires: true, sev: StatusWarn,
			evidence: []string{"wifi1_channel = 6", "wifi_neighbour_networks = 12", "wifi_rssi_dbm = -58"}},
		{name: "fixed on 6, few neighbours", results: []diagnostics.Result{ok("line",
			rd("wifi1_enabled", 1, ""), rd("wifi1_channel", 6, ""), rd("wifi1_auto_channel", 0, ""))}, facts: facts(FactWiFiNeighbours, "3")},
		{name: "automatic channel", results: []diagnostics.Result{ok("line",
			rd("wifi1_enabled", 1, ""), rd("wifi1_channel", 3, ""), rd("wifi1_auto_channel", 1, ""))}, facts: facts(FactWiFiNeighbours, "20")},
		{name: "5 GHz", results: []diagnostics.Result{ok("line",
			rd("wifi2_enabled", 1, ""), rd("wifi2_channel", 36, ""), rd("wifi2_auto_channel", 0, ""))}, facts: facts(FactWiFiNeighbours, "20")},
		{name: "disabled SSID", results: []diagnostics.Result{ok("line",
			rd("wifi3_enabled", 0, ""), rd("wifi3_channel", 3, ""), rd("wifi3_auto_channel", 0, ""))}},
		{name: "auto channel unknown", results: []diagnostics.Result{ok("line", rd("wifi1_enabled", 1, ""), rd("wifi1_channel", 3, ""))}},
	},
	CodeFirmwareOutdated: {
		{name: "older build", facts: facts(FactFirmware, "V2.0.3T2", FactFirmwareRequired, "V2.1.0T6"), fires: true, sev: StatusWarn,
			evidence: []string{"firmware = V2.0.3T2", "firmware_required = V2.1.0T6"}, cause: "not upgraded", causeZH: "未升级"},
		{name: "numbers, not text: 9 < 10", facts: facts(FactFirmware, "V1.9", FactFirmwareRequired, "V1.10"), fires: true, sev: StatusWarn},
		{name: "same", facts: facts(FactFirmware, "V2.1.0T6", FactFirmwareRequired, "v2.1.0t6")},
		{name: "newer", facts: facts(FactFirmware, "V2.1.1T1", FactFirmwareRequired, "V2.1.0T6")},
		{name: "no requirement", facts: facts(FactFirmware, "V1.0")},
		{name: "version unknown", facts: facts(FactFirmwareRequired, "V2.1.0T6")},
	},
}

func init() { maps.Copy(ruleCases, accessRuleCases) }

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"V2.1.0T6", "V2.1.0T6", 0},
		{"V2.0.3T2", "V2.1.0T6", -1},
		{"V1.10", "V1.9", 1},
		{"V1.09", "V1.9", 0},
		{"v2.1.0t6", "V2.1.0T6", 0},
		{"V2.1.0", "V2.1.0T6", -1},
		{"V2.1.0RC1", "V2.1.0.1", -1},
		{"RP0201", "RP0200", 1},
		{"", "V1", -1},
		{"99999999999999999999.1", "99999999999999999999.2", -1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

// FuzzCompareVersions: versions come from devices; any two compare
// without panicking, antisymmetrically, and each equals itself.
func FuzzCompareVersions(f *testing.F) {
	for _, s := range [][2]string{{"V2.1.0T6", "V2.0.3T2"}, {"V1.10", "V1.9"}, {"", "é1"}, {"RC1", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if c := compareVersions(a, a); c != 0 {
			t.Fatalf("compareVersions(%q, itself) = %d", a, c)
		}
		if x, y := compareVersions(a, b), compareVersions(b, a); x != -y {
			t.Fatalf("compareVersions(%q, %q) = %d but the reverse is %d", a, b, x, y)
		}
	})
}
