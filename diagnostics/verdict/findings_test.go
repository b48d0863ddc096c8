package verdict

import (
	"slices"
	"strings"
	"testing"

	"fieldagent/diagnostics"
)

func failedProbe(probe, target, err string, rs ...diagnostics.Reading) diagnostics.Result {
	return diagnostics.Result{Probe: probe, Target: target, Err: err, Readings: rs}
}

func facts(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// ruleCase is one situation for one rule: whether the rule fires, with
// what severity, and what its evidence and cause must say.
type ruleCase struct {
	name    string
	p       *Profile // nil: ProfileFor("gpon", 100, 30)
	results []diagnostics.Result
	facts   map[string]string
	fires   bool
	sev     Status
	// evidence lines that must be quoted exactly; cause is a substring of
	// the English cause and causeZH of the Chinese one.
	evidence       []string
	cause, causeZH string
}

var bigPackage = ProfileFor("gpon", 300, 30)

// ruleCases holds the cases of every rule; TestEveryRuleHasCases keeps it
// complete.
var ruleCases = map[Code][]ruleCase{
	CodePPPoEAuthFailed: {
		{name: "691 from the gateway", results: []diagnostics.Result{ok("line", rd("wan_up", 0, ""))},
			facts: facts(FactWANLastError, "ERROR_AUTHENTICATION_FAILURE", FactWANStatus, "Disconnected"), fires: true, sev: StatusFail,
			evidence: []string{"wan_last_error = ERROR_AUTHENTICATION_FAILURE", "wan_status = Disconnected", "wan_up = 0"}, cause: "account or password is wrong", causeZH: "账号或密码错误"},
		{name: "a vendor's 691 text", facts: facts(FactWANLastError, "PPP auth fail (691)", FactWANStatus, "Connecting"), fires: true, sev: StatusFail},
		{name: "account disabled", facts: facts(FactWANLastError, "ERROR_ACCOUNT_DISABLED", FactWANStatus, "Disconnected"), fires: true, sev: StatusFail},
		{name: "old error on a WAN that is now up", results: []diagnostics.Result{ok("line", rd("wan_up", 1, ""))},
			facts: facts(FactWANLastError, "ERROR_AUTHENTICATION_FAILURE", FactWANStatus, "Connected")},
		{name: "6910 is not 691", facts: facts(FactWANLastError, "ERROR_6910", FactWANStatus, "Disconnected")},
		{name: "bridged WAN", facts: facts(FactWANLastError, "ERROR_AUTHENTICATION_FAILURE", FactWANStatus, "Disconnected", FactWANConnectionType, "PPPoE_Bridged")},
	},
	CodePPPoENoServer: {
		{name: "no answer", results: []diagnostics.Result{ok("line", rd("wan_up", 0, ""), rd("optical_rx_power_dbm", -20, "dBm"))},
			facts: facts(FactWANLastError, "ERROR_NO_ANSWER", FactWANStatus, "Disconnected", FactAccess, "gpon", FactLOIDStatus, "0"), fires: true, sev: StatusFail,
			evidence: []string{"wan_last_error = ERROR_NO_ANSWER", "loid_status = 0", "optical_rx_power_dbm = −20 dBm"}, cause: "VLAN", causeZH: "VLAN"},
		{name: "the BRAS timed out", facts: facts(FactWANLastError, "ERROR_ISP_TIME_OUT", FactWANStatus, "Disconnected"), fires: true, sev: StatusFail},
		{name: "678 text", facts: facts(FactWANLastError, "error 678: no PADO", FactWANStatus, "Connecting"), fires: true, sev: StatusFail},
		{name: "up again", results: []diagnostics.Result{ok("line", rd("wan_up", 1, ""))}, facts: facts(FactWANLastError, "ERROR_NO_ANSWER")},
		{name: "691 is not 678", facts: facts(FactWANLastError, "ERROR_AUTHENTICATION_FAILURE", FactWANStatus, "Disconnected")},
	},
	CodeWANDown: {
		{name: "down without a known error", results: []diagnostics.Result{ok("line", rd("wan_up", 0, ""))},
			facts: facts(FactWANLastError, "ERROR_UNKNOWN", FactWANStatus, "Disconnected"), fires: true, sev: StatusFail,
			evidence: []string{"wan_last_error = ERROR_UNKNOWN", "wan_up = 0"}},
		{name: "no internet WAN at all", facts: facts(FactWANStatus, "none"), fires: true, sev: StatusFail,
			evidence: []string{"wan_status = none"}, cause: "no WAN connection carrying the INTERNET service", causeZH: "INTERNET"},
		{name: "691 is reported by its own rule", facts: facts(FactWANLastError, "ERROR_AUTHENTICATION_FAILURE", FactWANStatus, "Disconnected")},
		{name: "up", results: []diagnostics.Result{ok("line", rd("wan_up", 1, ""))}, facts: facts(FactWANStatus, "Connected")},
		{name: "bridged", facts: facts(FactWANStatus, "Disconnected", FactWANConnectionType, "PPPoE_Bridged")},
	},
	CodeLOIDNotRegistered: {
		{name: "unknown loid", facts: facts(FactLOIDOutcome, "failure", FactLOIDStatus, "1", FactLOIDResult, "0", FactLOIDDetail, "ITMS does not know this LOID"),
			fires: true, sev: StatusFail, evidence: []string{"loid_outcome = failure", "loid_status = 1", "loid_detail = ITMS does not know this LOID"},
			cause: "mistyped", causeZH: "没有该LOID"},
		{name: "bad password", facts: facts(FactLOIDOutcome, "failure", FactLOIDStatus, "2"), fires: true, sev: StatusFail, cause: "password", causeZH: "密码"},
		{name: "timeout", facts: facts(FactLOIDOutcome, "failure", FactLOIDStatus, "3"), fires: true, sev: StatusFail, cause: "not authorised", causeZH: "未授权"},
		{name: "bound elsewhere", facts: facts(FactLOIDOutcome, "failure", FactLOIDStatus, "4"), fires: true, sev: StatusFail, cause: "another gateway", causeZH: "其他网关"},
		{name: "delivery failed", facts: facts(FactLOIDOutcome, "failure", FactLOIDStatus, "0", FactLOIDResult, "2"), fires: true, sev: StatusFail, cause: "delivering the service", causeZH: "下发失败"},
		{name: "attempts exceeded", facts: facts(FactLOIDOutcome, "attempts_exceeded", FactLOIDStatus, "99"), fires: true, sev: StatusFail, cause: "all its registration attempts", causeZH: "次数"},
		{name: "in progress", facts: facts(FactLOIDOutcome, "in_progress", FactLOIDStatus, "0", FactLOIDResult, "0"), fires: true, sev: StatusWarn, cause: "still running"},
		{name: "raw codes only, not registered", facts: facts(FactLOIDStatus, "99"), fires: true, sev: StatusFail, cause: "refused"},
		{name: "raw codes only, delivering", facts: facts(FactLOIDStatus, "0", FactLOIDResult, "0"), fires: true, sev: StatusWarn},
		{name: "raw codes only, registered", facts: facts(FactLOIDStatus, "0", FactLOIDResult, "1")},
		{name: "success", facts: facts(FactLOIDOutcome, "success", FactLOIDStatus, "0", FactLOIDResult, "1")},
		{name: "already registered", facts: facts(FactLOIDOutcome, "already_registered")},
		{name: "no loid facts"},
	},
	CodeOpticalNoLight: {
		{name: "-40 dBm", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -40, "dBm"))}, facts: facts("optical_status", "NoSignal"),
			fires: true, sev: StatusFail, evidence: []string{"optical_rx_power_dbm = −40 dBm (limit −27 … −8 dBm (warn below −25))", "optical_status = NoSignal"}, cause: "unplugged", causeZH: "断纤"},
		{name: "-39 dBm is weak light, not none", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -39, "dBm"))}},
		{name: "lan access", p: ptr(ProfileFor("lan", 100, 30)), results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -40, "dBm"))}},
	},
	CodeOpticalRxLow: {
		{name: "below sensitivity", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -28.3, "dBm"), rd("optical_tx_power_dbm", 2.5, "dBm"))},
			fires: true, sev: StatusFail, evidence: []string{"optical_rx_power_dbm = −28.3 dBm (limit −27 … −8 dBm (warn below −25))", "optical_tx_power_dbm = 2.5 dBm"},
			cause: "dirty or damaged connector", causeZH: "连接头脏污"},
		{name: "in the warning band", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -26, "dBm"))}, fires: true, sev: StatusWarn},
		{name: "-39 dBm", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -39, "dBm"))}, fires: true, sev: StatusFail},
		{name: "no light is its own finding", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -40, "dBm"))}},
		{name: "fine", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -20, "dBm"))}},
		{name: "too high is not low", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -5, "dBm"))}},
	},
	CodeOpticalRxHigh: {
		{name: "above overload", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -6.5, "dBm"))}, fires: true, sev: StatusFail,
			evidence: []string{"optical_rx_power_dbm = −6.5 dBm (limit −27 … −8 dBm (warn below −25))"}, cause: "attenuator", causeZH: "衰减器"},
		{name: "at overload", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -8, "dBm"))}},
		{name: "low", results: []diagnostics.Result{ok("line", rd("optical_rx_power_dbm", -30, "dBm"))}},
	},
	CodeDSLSNRLow: {
		{name: "downstream margin low", results: []diagnostics.Result{ok("line", rd("dsl_snr_margin_down_db", 4.5, "dB"), rd("dsl_snr_margin_up_db", 12, "dB"), rd("dsl_crc_errors", 210, ""))},
			fires: true, sev: StatusFail, evidence: []string{"dsl_snr_margin_down_db = 4.5 dB (limit ≥ 6 dB)", "dsl_crc_errors = 210"}, cause: "splitter", causeZH: "分离器"},
		{name: "both fine", results: []diagnostics.Result{ok("line", rd("dsl_snr_margin_down_db", 6, "dB"), rd("dsl_snr_margin_up_db", 6, "dB"))}},
	},
	CodeLANLinkDegraded: {
		{name: "100M on the gigabit port", results: []diagnostics.Result{ok("line", rd("lan1_up", 1, ""), rd("lan1_speed_mbps", 100, "Mbit/s"), rd("lan1_full_duplex", 1, ""))},
			fires: true, sev: StatusWarn, evidence: []string{"lan1_speed_mbps = 100 Mbit/s (limit ≥ 1000 Mbit/s)"}, cause: "T568A/T568B", causeZH: "T568A/T568B"},
		{name: "100M on the gigabit port of a 300M package", p: &bigPackage, results: []diagnostics.Result{ok("line", rd("lan1_speed_mbps", 100, "Mbit/s"))}, fires: true, sev: StatusFail},
		{name: "half duplex", results: []diagnostics.Result{ok("line", rd("lan3_full_duplex", 0, ""))}, fires: true, sev: StatusFail,
			evidence: []string{"lan3_full_duplex = 0 (limit full duplex)"}},
		{name: "100M on a fast ethernet port", results: []diagnostics.Result{ok("line", rd("lan2_speed_mbps", 100, "Mbit/s"), rd("lan2_full_duplex", 1, ""))}},
		{name: "gigabit full", results: []diagnostics.Result{ok("line", rd("lan1_speed_mbps", 1000, "Mbit/s"), rd("lan1_full_duplex", 1, ""))}},
	},
	CodeNoDHCPLease: {
		{name: "self-assigned address", results: []diagnostics.Result{ok("lease", rd("dhcp_lease", 0, ""))},
			facts: facts(FactDHCPInterface, "eth0", FactDHCPAutoconf, "169.254.3.4"), fires: true, sev: StatusFail,
			evidence: []string{"dhcp_lease = 0 (limit a usable IPv4 address)", "dhcp_interface = eth0", "dhcp_autoconf_address = 169.254.3.4"}, cause: "DHCP server is off", causeZH: "DHCP服务未开启"},
		{name: "bridged internet", results: []diagnostics.Result{ok("lease", rd("dhcp_lease", 0, ""))}, facts: facts(FactWANConnectionType, "PPPoE_Bridged"),
			fires: true, sev: StatusFail, cause: "dial PPPoE itself", causeZH: "桥接"},
		{name: "leased", results: []diagnostics.Result{ok("lease", rd("dhcp_lease", 1, ""))}},
	},
	CodeDNSFailing: {
		{name: "dns fails, ping fine", results: []diagnostics.Result{
			failedProbe("dns", "www.189.cn", "lookup timed out", rd("dns_rcode", 2, "")),
			ok("ping", rd("ping_loss", 0, "%"), rd("ping_rtt_avg", 4.2, "ms")),
		}, fires: true, sev: StatusFail,
			evidence: []string{"dns probe failed: lookup timed out", "dns_rcode = 2", "ping_loss = 0 %", "ping_rtt_avg = 4.2 ms"}, cause: "DNS servers", causeZH: "DNS"},
		{name: "dns fails, ping partly lost", results: []diagnostics.Result{
			failedProbe("dns", "www.189.cn", "SERVFAIL"), failedProbe("ping", "1.1.1.1", "loss", rd("ping_loss", 40, "%")),
		}, fires: true, sev: StatusFail},
		{name: "nothing gets through", results: []diagnostics.Result{
			failedProbe("dns", "www.189.cn", "timeout"), failedProbe("ping", "1.1.1.1", "no ping replies received", rd("ping_loss", 100, "%")),
		}},
		{name: "dns fine", results: []diagnostics.Result{ok("dns", rd("dns_lookup_ms", 12, "ms")), ok("ping", rd("ping_loss", 0, "%"))}},
		{name: "no ping to compare", results: []diagnostics.Result{failedProbe("dns", "www.189.cn", "timeout")}},
	},
	CodePacketLoss: {
		{name: "partial loss", results: []diagnostics.Result{ok("ping", rd("ping_loss", 20, "%"), rd("ping_rtt_avg", 31, "ms"))}, fires: true, sev: StatusFail,
			evidence: []string{"ping_loss = 20 % (limit ≤ 0 %)", "ping_rtt_avg = 31 ms"}, cause: "line errors", causeZH: "误码"},
		{name: "total loss", results: []diagnostics.Result{failedProbe("ping", "1.1.1.1", "no replies", rd("ping_loss", 100, "%"))}, fires: true, sev: StatusFail,
			cause: "WAN is down", causeZH: "未连接"},
		{name: "no loss", results: []diagnostics.Result{ok("ping", rd("ping_loss", 0, "%"))}},
	},
	CodeSlowAtGateway: {
		{name: "gateway below the package", results: []diagnostics.Result{
			ok("speed_download", rd("download_mbps", 40, "Mbit/s")), ok("tr143", rd("gateway_download_mbps", 45, "Mbit/s")), ok("line", rd("dsl_sync_down_kbps", 48000, "kbit/s")),
		}, fires: true, sev: StatusFail,
			evidence: []string{"gateway_download_mbps = 45 Mbit/s (limit ≥ 90 Mbit/s (90% of 100))", "download_mbps = 40 Mbit/s", "dsl_sync_down_kbps = 48000 kbit/s"},
			cause:    "BRAS", causeZH: "BRAS"},
		{name: "gateway upload below", results: []diagnostics.Result{ok("tr143", rd("gateway_upload_mbps", 10, "Mbit/s"))}, fires: true, sev: StatusFail},
		{name: "gateway fine", results: []diagnostics.Result{ok("tr143", rd("gateway_download_mbps", 95, "Mbit/s"))}},
	},
	CodeSlowWiFiOnly: {
		{name: "slow laptop on wifi, gateway fine", results: []diagnostics.Result{
			ok("speed_download", rd("download_mbps", 35, "Mbit/s")), ok("tr143", rd("gateway_download_mbps", 96, "Mbit/s")),
			ok("line", rd("wifi1_channel", 6, ""), rd("wifi1_clients", 9, "")),
		}, facts: facts(FactLaptopLink, "wifi", FactWiFiRSSI, "-72"), fires: true, sev: StatusFail,
			evidence: []string{"download_mbps = 35 Mbit/s (limit ≥ 90 Mbit/s (90% of 100))", "gateway_download_mbps = 96 Mbit/s (limit ≥ 90 Mbit/s (90% of 100))",
				"laptop_link = wifi", "wifi_rssi_dbm = -72", "wifi1_channel = 6", "wifi1_clients = 9"},
			cause: "congested channel", causeZH: "信道拥挤"},
		{name: "on ethernet", results: []diagnostics.Result{ok("speed_download", rd("download_mbps", 35, "Mbit/s")), ok("tr143", rd("gateway_download_mbps", 96, "Mbit/s"))},
			facts: facts(FactLaptopLink, "ethernet")},
		{name: "gateway slow too", results: []diagnostics.Result{ok("speed_download", rd("download_mbps", 35, "Mbit/s")), ok("tr143", rd("gateway_download_mbps", 40, "Mbit/s"))},
			facts: facts(FactLaptopLink, "wifi")},
		{name: "no gateway test", results: []diagnostics.Result{ok("speed_download", rd("download_mbps", 35, "Mbit/s"))}, facts: facts(FactLaptopLink, "wifi")},
		{name: "laptop fine", results: []diagnostics.Result{ok("speed_download", rd("download_mbps", 94, "Mbit/s")), ok("tr143", rd("gateway_download_mbps", 96, "Mbit/s"))},
			facts: facts(FactLaptopLink, "wifi")},
	},
	CodeSlowLaptopSide: {
		{name: "slow wired laptop, gateway fine", results: []diagnostics.Result{
			ok("speed_upload", rd("upload_mbps", 12, "Mbit/s")), ok("tr143", rd("gateway_upload_mbps", 29, "Mbit/s")), ok("line", rd("lan1_speed_mbps", 100, "Mbit/s")),
		}, facts: facts(FactLaptopLink, "ethernet"), fires: true, sev: StatusFail,
			evidence: []string{"upload_mbps = 12 Mbit/s (limit ≥ 27 Mbit/s (90% of 30))", "gateway_upload_mbps = 29 Mbit/s (limit ≥ 27 Mbit/s (90% of 30))", "lan1_speed_mbps = 100 Mbit/s"},
			cause:    "100M", causeZH: "百兆"},
		{name: "link unknown", results: []diagnostics.Result{ok("speed_upload", rd("upload_mbps", 12, "Mbit/s")), ok("tr143", rd("gateway_upload_mbps", 29, "Mbit/s"))},
			fires: true, sev: StatusFail},
		{name: "on wifi", results: []diagnostics.Result{ok("speed_upload", rd("upload_mbps", 12, "Mbit/s")), ok("tr143", rd("gateway_upload_mbps", 29, "Mbit/s"))},
			facts: facts(FactLaptopLink, "WiFi")},
	},
	CodeSpeedBelowPackage: {
		{name: "no gateway test", results: []diagnostics.Result{ok("speed_download", rd("download_mbps", 35, "Mbit/s"))}, facts: facts(FactLaptopLink, "wifi"),
			fires: true, sev: StatusFail, evidence: []string{"download_mbps = 35 Mbit/s (limit ≥ 90 Mbit/s (90% of 100))", "laptop_link = wifi"}, cause: "not known", causeZH: "无法判断"},
		{name: "gateway test for the other direction only", results: []diagnostics.Result{
			ok("speed_download", rd("download_mbps", 35, "Mbit/s")), ok("tr143", rd("gateway_upload_mbps", 29, "Mbit/s")),
		}, fires: true, sev: StatusFail},
		{name: "gateway test present", results: []diagnostics.Result{ok("speed_download", rd("download_mbps", 35, "Mbit/s")), ok("tr143", rd("gateway_download_mbps", 95, "Mbit/s"))}},
		{name: "package unknown", p: ptr(ProfileFor("gpon", 0, 0)), results: []diagnostics.Result{ok("speed_download", rd("download_mbps", 35, "Mbit/s"))}},
	},
	CodeSTBAuthFailed: {
		{name: "failed", facts: facts(FactSTBAuthStatus, "failed"), fires: true, sev: StatusFail,
			evidence: []string{"stb_auth_status = failed"}, cause: "STBID/MAC", causeZH: "机顶盒"},
		{name: "auth_failure", facts: facts(FactSTBAuthStatus, "AUTH_FAILURE"), fires: true, sev: StatusFail},
		{name: "denied", facts: facts(FactSTBAuthStatus, "denied"), fires: true, sev: StatusFail},
		{name: "ok", facts: facts(FactSTBAuthStatus, "success")},
	},
	CodeIPTVNoStream: {
		{name: "no packets, igmp on", results: []diagnostics.Result{failedProbe("iptv", "239.1.1.1:5140", "no packets", rd("iptv_packets", 0, ""))},
			facts: facts(FactIGMPSnooping, "1", FactIGMPProxy, "1"), fires: true, sev: StatusFail,
			evidence: []string{"iptv_packets = 0 (limit ≥ 1)", "igmp_snooping = 1", "igmp_proxy = 1"}, cause: "not bound to the IPTV WAN", causeZH: "未绑定"},
		{name: "no packets, snooping off", results: []diagnostics.Result{failedProbe("iptv", "239.1.1.1:5140", "no packets", rd("iptv_packets", 0, ""))},
			facts: facts(FactIGMPSnooping, "disabled", FactIGMPProxy, "1"), fires: true, sev: StatusFail,
			evidence: []string{"igmp_snooping = disabled"}, cause: "IGMP snooping or proxy is off", causeZH: "IGMP"},
		{name: "no packets, proxy off", results: []diagnostics.Result{ok("iptv", rd("iptv_packets", 0, ""))},
			facts: facts(FactIGMPProxy, "false"), fires: true, sev: StatusFail, cause: "IGMP snooping or proxy is off"},
		{name: "packets", results: []diagnostics.Result{ok("iptv", rd("iptv_packets", 5000, ""))}, facts: facts(FactIGMPProxy, "0")},
	},
	CodeIPTVMulticastLoss: {
		{name: "loss", results: []diagnostics.Result{ok("iptv", rd("iptv_packets", 5000, ""), rd("iptv_mlr", 3.5, "pkt/s"), rd("iptv_cc_errors", 17, ""))},
			fires: true, sev: StatusFail, evidence: []string{"iptv_mlr = 3.5 pkt/s (limit ≤ 0)", "iptv_cc_errors = 17", "iptv_packets = 5000"}, cause: "powerline", causeZH: "电力猫"},
		{name: "clean", results: []diagnostics.Result{ok("iptv", rd("iptv_mlr", 0, "pkt/s"), rd("iptv_cc_errors", 0, ""))}},
	},
	CodeIPTVJitter: {
		{name: "high delay factor", results: []diagnostics.Result{ok("iptv", rd("iptv_df_ms", 85, "ms"), rd("iptv_mlr", 0, ""))}, fires: true, sev: StatusFail,
			evidence: []string{"iptv_df_ms = 85 ms (limit ≤ 50 ms)", "iptv_mlr = 0"}, cause: "congested", causeZH: "拥塞"},
		{name: "fine", results: []diagnostics.Result{ok("iptv", rd("iptv_df_ms", 20, "ms"))}},
	},
	CodeIPTVSlowJoin: {
		{name: "slow join", results: []diagnostics.Result{ok("iptv", rd("iptv_join_ms", 2300, "ms"))}, facts: facts(FactIGMPProxy, "on"), fires: true, sev: StatusFail,
			evidence: []string{"iptv_join_ms = 2300 ms (limit ≤ 1000 ms)", "igmp_proxy = on"}, cause: "fast leave", causeZH: "快速离开"},
		{name: "fast join", results: []diagnostics.Result{ok("iptv", rd("iptv_join_ms", 300, "ms"))}},
	},
}

func ptr(p Profile) *Profile { return &p }

func TestRules(t *testing.T) {
	for _, r := range rules {
		t.Run(string(r.code), func(t *testing.T) {
			for _, tc := range ruleCases[r.code] {
				t.Run(tc.name, func(t *testing.T) {
					p := ProfileFor("gpon", 100, 30)
					if tc.p != nil {
						p = *tc.p
					}
					rep := Evaluate(p, tc.results, tc.facts)
					var got []Finding
					for _, f := range rep.Findings {
						if f.Code == r.code {
							got = append(got, f)
						}
					}
					if !tc.fires {
						if len(got) != 0 {
							t.Fatalf("fired: %+v", got)
						}
						return
					}
					if len(got) != 1 {
						t.Fatalf("findings = %+v, want one %s", rep.Findings, r.code)
					}
					f := got[0]
					if f.Severity != tc.sev {
						t.Errorf("severity = %s, want %s", f.Severity, tc.sev)
					}
					for _, ev := range tc.evidence {
						if !slices.Contains(f.Evidence, ev) {
							t.Errorf("evidence %q missing from %q", ev, f.Evidence)
						}
					}
					if !strings.Contains(f.Cause, tc.cause) || !strings.Contains(f.CauseZH, tc.causeZH) {
						t.Errorf("cause = %q / %q, want %q / %q", f.Cause, f.CauseZH, tc.cause, tc.causeZH)
					}
					for _, s := range []string{f.Symptom, f.Cause, f.Fix, f.SymptomZH, f.CauseZH, f.FixZH} {
						if s == "" {
							t.Errorf("finding has an empty text field: %+v", f)
						}
					}
					if len(f.Evidence) == 0 {
						t.Error("finding quotes no evidence")
					}
					if rep.Status.rank() < f.Severity.rank() {
						t.Errorf("report status %s is better than its finding's %s", rep.Status, f.Severity)
					}
				})
			}
		})
	}
}

// TestEveryRuleHasCases: each rule has a case that fires it and one that
// does not.
func TestEveryRuleHasCases(t *testing.T) {
	seen := map[Code]bool{}
	for _, r := range rules {
		if seen[r.code] {
			t.Errorf("rule %s listed twice", r.code)
		}
		seen[r.code] = true
		var fires, quiet bool
		for _, tc := range ruleCases[r.code] {
			fires = fires || tc.fires
			quiet = quiet || !tc.fires
		}
		if !fires || !quiet {
			t.Errorf("rule %s: a firing case %v, a quiet case %v; want both", r.code, fires, quiet)
		}
	}
	for code := range ruleCases {
		if !seen[code] {
			t.Errorf("cases for %s, which is no rule", code)
		}
	}
}

func TestFindingsOrder(t *testing.T) {
	rep := Evaluate(ProfileFor("gpon", 100, 30), []diagnostics.Result{
		ok("line", rd("optical_rx_power_dbm", -26, "dBm"), rd("wan_up", 0, "")),
	}, facts(FactWANLastError, "ERROR_AUTHENTICATION_FAILURE"))
	var codes []Code
	for _, f := range rep.Findings {
		codes = append(codes, f.Code)
	}
	if !slices.Equal(codes, []Code{CodePPPoEAuthFailed, CodeOpticalRxLow}) {
		t.Errorf("findings = %v, want the failure before the warning", codes)
	}
}

func TestFindingText(t *testing.T) {
	f := Finding{Symptom: "s", Cause: "c", Fix: "f", SymptomZH: "症", CauseZH: "因", FixZH: "修"}
	if s, c, x := f.Text(Chinese); s != "症" || c != "因" || x != "修" {
		t.Errorf("zh = %s %s %s", s, c, x)
	}
	if s, c, x := f.Text(English); s != "s" || c != "c" || x != "f" {
		t.Errorf("en = %s %s %s", s, c, x)
	}
	if s, _, _ := f.Text("fr"); s != "s" {
		t.Errorf("unknown language gave %s", s)
	}
}
