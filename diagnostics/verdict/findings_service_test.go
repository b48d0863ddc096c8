package verdict

import (
	"maps"
	"slices"
	"testing"

	"fieldagent/diagnostics"
)

// serviceRuleCases are the cases of the service rules; TestRules runs them
// with the others and TestEveryRuleHasCases checks each rule has a firing
// and a quiet one.
var serviceRuleCases = map[Code][]ruleCase{
	CodeIPTVPortNotBound: {
		{name: "bound elsewhere", results: []diagnostics.Result{ok("stb", rd("iptv_packets", 0, ""))},
			facts: facts(FactIPTVWANPorts, "LAN1,SSID2", FactSTBPort, "LAN4"), fires: true, sev: StatusFail,
			evidence: []string{"iptv_wan_ports = LAN1,SSID2", "stb_port = LAN4", "iptv_packets = 0"}, cause: "not bound to the LAN port", causeZH: "没有绑定机顶盒所接的LAN口"},
		{name: "bound to nothing", facts: facts(FactIPTVWANPorts, "none", FactSTBPort, "LAN4"), fires: true, sev: StatusFail,
			evidence: []string{"iptv_wan_ports = none"}},
		{name: "bound", facts: facts(FactIPTVWANPorts, "LAN3, lan4", FactSTBPort, "LAN4")},
		{name: "no IPTV WAN read", facts: facts(FactSTBPort, "LAN4")},
		{name: "the box's port unknown", facts: facts(FactIPTVWANPorts, "LAN1")},
		{name: "LAN4 is not LAN40", facts: facts(FactIPTVWANPorts, "LAN40", FactSTBPort, "LAN4"), fires: true, sev: StatusFail},
	},
	CodeIGMPOff: {
		{name: "snooping off", facts: facts(FactIGMPSnooping, "0", FactIGMPProxy, "1"), fires: true, sev: StatusWarn,
			evidence: []string{"igmp_snooping = 0", "igmp_proxy = 1"}, cause: "floods", causeZH: "泛洪"},
		{name: "proxy off", facts: facts(FactIGMPSnooping, "true", FactIGMPProxy, "false"), fires: true, sev: StatusFail,
			evidence: []string{"igmp_proxy = false"}, cause: "does not pass", causeZH: "不会把机顶盒"},
		{name: "both off", facts: facts(FactIGMPSnooping, "disabled", FactIGMPProxy, "off"), fires: true, sev: StatusFail},
		{name: "both on", facts: facts(FactIGMPSnooping, "1", FactIGMPProxy, "enabled")},
		{name: "not read (no IPTV on the gateway)"},
	},
	CodeXT2NotBound: {
		{name: "not bound", facts: facts(FactBBMSBound, "0", FactWANStatus, "Connected"), fires: true, sev: StatusFail,
			evidence: []string{"bbms_bound = 0", "wan_status = Connected"}, cause: "no BBMS binding", causeZH: "没有绑定"},
		{name: "binding failed", facts: facts(FactBBMSBound, "false", FactBBMSError, "BBMS refused (HTTP 404): customer X does not exist"), fires: true, sev: StatusFail,
			evidence: []string{"bbms_last_error = BBMS refused (HTTP 404): customer X does not exist"}, cause: "tried to bind and failed", causeZH: "绑定但失败"},
		{name: "bound", facts: facts(FactBBMSBound, "1", FactBBMSCustomer, "BBMS-1")},
		{name: "no XT-2", facts: facts(FactWANStatus, "Connected")},
	},
	CodeNATMissing: {
		{name: "no nat outbound", facts: facts(FactWANNAT, "0", FactWANStatus, "Connected", FactWANConnectionType, "PPPoE_Routed"), fires: true, sev: StatusFail,
			evidence: []string{"wan_nat = 0", "wan_status = Connected", "wan_connection_type = PPPoE_Routed"}, cause: "nat outbound", causeZH: "nat outbound"},
		{name: "nat on", facts: facts(FactWANNAT, "1", FactWANConnectionType, "PPPoE_Routed")},
		{name: "bridged WAN has no NAT by design", facts: facts(FactWANNAT, "0", FactWANConnectionType, "PPPoE_Bridged")},
		{name: "not read"},
	},
}

func init() { maps.Copy(ruleCases, serviceRuleCases) }

// TestServiceCodesAreNew: the service codes do not reuse a core code.
func TestServiceCodesAreNew(t *testing.T) {
	core := map[Code]bool{}
	for _, r := range coreRules {
		core[r.code] = true
	}
	for _, r := range serviceRules {
		if core[r.code] {
			t.Errorf("service rule %s reuses a core code", r.code)
		}
	}
}

// TestServiceFindingsTogether: a no-stream set-top box on an unbound port
// gets the symptom (IPTV_NO_STREAM) and its cause (IPTV_PORT_NOT_BOUND);
// an XT-2 rejected by the BRAS gets PPPOE_AUTH_FAILED from its dialer's
// facts, beside its missing binding and NAT.
func TestServiceFindingsTogether(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []diagnostics.Result
		facts   map[string]string
		want    []Code
	}{
		{"unbound port", []diagnostics.Result{ok("stb", rd("iptv_packets", 0, ""))},
			facts(FactIPTVWANPorts, "none", FactSTBPort, "LAN4", FactIGMPSnooping, "1", FactIGMPProxy, "1", FactSTBAuthStatus, "authenticated"),
			[]Code{CodeIPTVNoStream, CodeIPTVPortNotBound}},
		{"xt2", nil,
			facts(FactWANStatus, "Disconnected", FactWANLastError, "691 authentication failure", FactWANConnectionType, "PPPoE_Routed", FactWANNAT, "0", FactBBMSBound, "0"),
			[]Code{CodePPPoEAuthFailed, CodeXT2NotBound, CodeNATMissing}},
		{"healthy", []diagnostics.Result{ok("stb", rd("iptv_packets", 1300, ""))},
			facts(FactIPTVWANPorts, "LAN4", FactSTBPort, "LAN4", FactIGMPSnooping, "1", FactIGMPProxy, "1", FactSTBAuthStatus, "authenticated",
				FactWANStatus, "Connected", FactWANConnectionType, "PPPoE_Routed", FactWANNAT, "1", FactBBMSBound, "1"),
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Evaluate(ProfileFor("gpon", 100, 30), tc.results, tc.facts)
			var got []Code
			for _, f := range rep.Findings {
				got = append(got, f.Code)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings = %v, want %v", got, tc.want)
			}
		})
	}
}
