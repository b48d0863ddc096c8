package verdict

import "strings"

// Fact names of the service findings, beside igmp_snooping, igmp_proxy and
// stb_auth_status (findings.go). The caller reads them from the devices;
// a fact left unset keeps its rule silent.
//
//   - iptv_wan_ports: the LAN ports and SSIDs bound to the gateway's IPTV WAN
//     (the bridged OTHER/IPTV connection's X_CT-COM_LanInterface), as
//     "LAN4" or "LAN1,SSID2", or "none"; set only when the gateway has an
//     IPTV WAN. igmp_snooping and igmp_proxy come from its
//     Services.X_CT-COM_IPTV, also only then.
//   - stb_port: the LAN port the set-top box is cabled to ("LAN4").
//   - stb_auth_status: "authenticated", "none" or "failed (EPG: <reason>)"
//     from the box's ServiceInfo.UserStatus and Statistics.AuthFailInfo.
//   - bbms_bound, bbms_customer, bbms_last_error: the XT-2's BBMS binding
//     (SNMP bbmsBound/bbmsCustomer, `display bbms binding`).
//   - wan_nat: NAT on the routed internet WAN (the XT-2 dialer's `nat
//     outbound`, the e8 INTERNET WAN's NATEnabled), 1/0.
//   - wan_status, wan_last_error, wan_connection_type: as for the e8, the
//     XT-2's dialer fills them from its PPPoE client (so PPPOE_AUTH_FAILED
//     applies to it too).
//
// Readings: the set-top box's own counters give iptv_packets (TS packets
// received over a short window) under the probe "stb", beside the IPTV
// probe's (diagnostics/iptv) iptv_packets, iptv_mlr, iptv_df_ms.
const (
	FactIPTVWANPorts = "iptv_wan_ports"
	FactSTBPort      = "stb_port"
	FactBBMSBound    = "bbms_bound"
	FactBBMSCustomer = "bbms_customer"
	FactBBMSError    = "bbms_last_error"
	FactWANNAT       = "wan_nat"
)

// The service finding codes.
const (
	// CodeIPTVPortNotBound: the set-top box's port is not bound to the
	// IPTV WAN.
	CodeIPTVPortNotBound Code = "IPTV_PORT_NOT_BOUND"
	// CodeIGMPOff: IGMP snooping or proxy is off for the IPTV service.
	CodeIGMPOff Code = "IPTV_IGMP_OFF"
	// CodeXT2NotBound: the XT-2 has no BBMS binding.
	CodeXT2NotBound Code = "XT2_NOT_BOUND"
	// CodeNATMissing: the routed internet WAN has no NAT.
	CodeNATMissing Code = "NAT_MISSING"
)

// serviceRules are the findings of the IPTV service and the XT-2 beyond the
// core rules.
var serviceRules = []rule{
	{CodeIPTVPortNotBound, ruleIPTVPortNotBound},
	{CodeIGMPOff, ruleIGMPOff},
	{CodeXT2NotBound, ruleXT2NotBound},
	{CodeNATMissing, ruleNATMissing},
}

func ruleIPTVPortNotBound(e *evidence) []Finding {
	ports, stb := strings.TrimSpace(e.facts[FactIPTVWANPorts]), strings.TrimSpace(e.facts[FactSTBPort])
	if ports == "" || stb == "" {
		return nil
	}
	for _, p := range strings.Split(ports, ",") {
		if strings.EqualFold(strings.TrimSpace(p), stb) {
			return nil
		}
	}
	ev := append(e.quoteFacts(FactIPTVWANPorts, FactSTBPort), e.quoteReadings("iptv_packets")...)
	return []Finding{finding(CodeIPTVPortNotBound, StatusFail, words{
		Symptom:   "IPTV shows no picture: the set-top box's port is not bound to the IPTV WAN.",
		Cause:     "The gateway's IPTV WAN (bridged, on the IPTV VLAN) is not bound to the LAN port the set-top box is plugged into, so the box's channel joins never reach the IPTV VLAN and no multicast comes back.",
		Fix:       "Bind the set-top box's port (usually LAN4) to the IPTV WAN (X_CT-COM_LanInterface, \"port binding\" in the gateway's web page), or move the box to the port that is bound; then change channel.",
		SymptomZH: "IPTV无图像：机顶盒所接端口未绑定到IPTV WAN。",
		CauseZH:   "网关的IPTV WAN（桥接、IPTV VLAN）没有绑定机顶盒所接的LAN口，机顶盒的点播加入请求到不了IPTV VLAN，也收不到组播。",
		FixZH:     "把机顶盒所接端口（一般为LAN4）绑定到IPTV WAN（网关页面的“端口绑定”，X_CT-COM_LanInterface），或把机顶盒改接到已绑定的端口，然后重新切换频道。",
	}, ev)}
}

func ruleIGMPOff(e *evidence) []Finding {
	snooping, proxy := off(e.facts[FactIGMPSnooping]), off(e.facts[FactIGMPProxy])
	if !snooping && !proxy {
		return nil
	}
	ev := e.quoteFacts(FactIGMPSnooping, FactIGMPProxy)
	if proxy {
		return []Finding{finding(CodeIGMPOff, StatusFail, words{
			Symptom:   "IGMP proxy is off for the IPTV service on the gateway.",
			Cause:     "Without the IGMP proxy the gateway does not pass the set-top box's channel joins to the IPTV network, so channels do not start or change slowly.",
			Fix:       "Turn on IGMP proxy and IGMP snooping for the IPTV WAN (Services.X_CT-COM_IPTV, \"IGMP\" in the gateway's web page), then change channel.",
			SymptomZH: "网关IPTV业务的IGMP代理未开启。",
			CauseZH:   "没有IGMP代理，网关不会把机顶盒的频道加入请求转发到IPTV网络，频道打不开或换台很慢。",
			FixZH:     "为IPTV WAN开启IGMP代理和IGMP snooping（网关页面的“IGMP”设置），然后重新切换频道。",
		}, ev)}
	}
	return []Finding{finding(CodeIGMPOff, StatusWarn, words{
		Symptom:   "IGMP snooping is off for the IPTV service on the gateway.",
		Cause:     "Without snooping the gateway floods every IPTV channel to all LAN ports and the Wi-Fi: internet on the other ports slows down, Wi-Fi can choke, and the picture can break up when the Wi-Fi is busy.",
		Fix:       "Turn on IGMP snooping (with IGMP proxy) for the IPTV WAN (Services.X_CT-COM_IPTV, \"IGMP\" in the gateway's web page).",
		SymptomZH: "网关IPTV业务的IGMP snooping未开启。",
		CauseZH:   "没有snooping，网关会把IPTV组播泛洪到所有LAN口和Wi-Fi：其他端口上网变慢，无线拥塞，画面也可能出现马赛克。",
		FixZH:     "为IPTV WAN开启IGMP snooping（及IGMP代理）（网关页面的“IGMP”设置）。",
	}, ev)}
}

func ruleXT2NotBound(e *evidence) []Finding {
	if !off(e.facts[FactBBMSBound]) {
		return nil
	}
	w := words{
		Symptom:   "The XT-2 is not bound to the customer in BBMS.",
		Cause:     "The router's serial has no BBMS binding: it was never bound, or the binding was removed. Without it the operator cannot manage the router and the business service is not activated.",
		Fix:       "Bind the router to the BBMS customer ID on the order (`bbms bind customer <ID>` in system view, or fieldagent's XT-2 bind step) while its WAN is up, commit, and check `display bbms binding` says bound.",
		SymptomZH: "XT-2未在BBMS中绑定客户。",
		CauseZH:   "路由器序列号在BBMS中没有绑定：从未绑定，或绑定已被删除。没有绑定，运营商无法管理该路由器，业务也不会开通。",
		FixZH:     "在WAN已连通时，按工单上的BBMS客户编号绑定（系统视图下 bbms bind customer <编号>，或fieldagent的XT-2绑定步骤），提交后用 display bbms binding 确认已绑定。",
	}
	if le := strings.ToLower(e.facts[FactBBMSError]); le != "" {
		w = w.with(words{
			Cause:   "The router tried to bind and failed (see the last error): the customer ID is unknown to BBMS, the serial is bound to another customer, or BBMS cannot be reached because the WAN is down.",
			CauseZH: "路由器尝试绑定但失败（见最后错误）：BBMS中没有该客户编号、该序列号已绑定其他客户，或WAN未通导致无法访问BBMS。",
		})
	}
	return []Finding{finding(CodeXT2NotBound, StatusFail, w, e.quoteFacts(FactBBMSBound, FactBBMSCustomer, FactBBMSError, FactWANStatus))}
}

func ruleNATMissing(e *evidence) []Finding {
	if !off(e.facts[FactWANNAT]) || strings.Contains(strings.ToLower(e.facts[FactWANConnectionType]), "bridged") {
		return nil
	}
	return []Finding{finding(CodeNATMissing, StatusFail, words{
		Symptom:   "The internet WAN has no NAT: computers behind the router get no internet even with the WAN up.",
		Cause:     "NAT is off on the routed internet WAN (no `nat outbound` on the XT-2's dialer, NATEnabled 0 on a gateway): the LAN's private addresses leave untranslated and the operator drops them.",
		Fix:       "Turn NAT back on: on the XT-2, `interface Dialer1` then `nat outbound 3000` (ACL 3000 permits the LAN), commit and save; on a gateway, enable NAT on the INTERNET WAN. Then browse from a LAN computer.",
		SymptomZH: "上网WAN未开启NAT：WAN已连通，但下挂电脑无法上网。",
		CauseZH:   "路由上网WAN没有NAT（XT-2拨号口缺少 nat outbound，网关NATEnabled为0）：内网私有地址未经转换发出，被运营商丢弃。",
		FixZH:     "重新开启NAT：XT-2上进入 interface Dialer1 执行 nat outbound 3000（ACL 3000放通内网），提交并保存；网关上为INTERNET WAN开启NAT。然后用内网电脑测试上网。",
	}, e.quoteFacts(FactWANNAT, FactWANStatus, FactWANConnectionType))}
}
