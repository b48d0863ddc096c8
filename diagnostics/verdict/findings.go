package verdict

import (
	"slices"
	"strings"
	"unicode"

	"fieldagent/diagnostics"
)

// Fact names the finding rules read. diagnostics/line fills the access,
// wan_*, loid_*, dhcp_* and laptop_link facts; the caller adds the others
// (what it knows of the laptop's Wi-Fi, the gateway's IGMP settings and the
// set-top box).
const (
	FactAccess            = "access"
	FactWANStatus         = "wan_status"
	FactWANLastError      = "wan_last_error"
	FactWANConnectionType = "wan_connection_type"
	FactLOIDOutcome       = "loid_outcome"
	FactLOIDStatus        = "loid_status"
	FactLOIDResult        = "loid_result"
	FactLOIDDetail        = "loid_detail"
	FactDHCPInterface     = "dhcp_interface"
	FactDHCPAutoconf      = "dhcp_autoconf_address"
	FactDHCPError         = "dhcp_error"
	// FactLaptopLink is how the test laptop is connected: wifi or ethernet.
	FactLaptopLink = "laptop_link"
	// FactWiFiRSSI is the laptop's Wi-Fi signal in dBm, if known.
	FactWiFiRSSI = "wifi_rssi_dbm"
	// FactIGMPSnooping and FactIGMPProxy are the gateway's IGMP settings
	// (1/0, true/false, on/off, enabled/disabled).
	FactIGMPSnooping = "igmp_snooping"
	FactIGMPProxy    = "igmp_proxy"
	// FactSTBAuthStatus is the set-top box's EPG authentication outcome;
	// a value containing "fail", or error, rejected or denied, is a failure.
	FactSTBAuthStatus = "stb_auth_status"
)

// Code identifies a finding; codes are stable for scripts and reports.
type Code string

// The finding codes, in the order the rules run.
const (
	CodePPPoEAuthFailed   Code = "PPPOE_AUTH_FAILED"
	CodePPPoENoServer     Code = "PPPOE_NO_SERVER"
	CodeWANDown           Code = "WAN_DOWN"
	CodeLOIDNotRegistered Code = "LOID_NOT_REGISTERED"
	CodeOpticalNoLight    Code = "OPTICAL_NO_LIGHT"
	CodeOpticalRxLow      Code = "OPTICAL_RX_LOW"
	CodeOpticalRxHigh     Code = "OPTICAL_RX_HIGH"
	CodeDSLSNRLow         Code = "DSL_SNR_LOW"
	CodeLANLinkDegraded   Code = "LAN_LINK_DEGRADED"
	CodeNoDHCPLease       Code = "NO_DHCP_LEASE"
	CodeDNSFailing        Code = "DNS_FAILING"
	CodePacketLoss        Code = "PACKET_LOSS"
	CodeSlowAtGateway     Code = "SLOW_AT_GATEWAY"
	CodeSlowWiFiOnly      Code = "SLOW_WIFI_ONLY"
	CodeSlowLaptopSide    Code = "SLOW_LAPTOP_SIDE"
	CodeSpeedBelowPackage Code = "SPEED_BELOW_PACKAGE"
	CodeSTBAuthFailed     Code = "IPTV_STB_AUTH_FAILED"
	CodeIPTVNoStream      Code = "IPTV_NO_STREAM"
	CodeIPTVMulticastLoss Code = "IPTV_MULTICAST_LOSS"
	CodeIPTVJitter        Code = "IPTV_JITTER"
	CodeIPTVSlowJoin      Code = "IPTV_SLOW_JOIN"
)

// Finding is a diagnosis: what is wrong, why, and what to do, in English
// for the technician and Chinese (zh) for the customer, with the readings
// and facts that triggered it.
type Finding struct {
	Code     Code   `json:"code"`
	Severity Status `json:"severity"`
	Symptom  string `json:"symptom"`
	Cause    string `json:"cause"`
	Fix      string `json:"fix"`
	// SymptomZH, CauseZH and FixZH are the same in Chinese.
	SymptomZH string `json:"symptom_zh"`
	CauseZH   string `json:"cause_zh"`
	FixZH     string `json:"fix_zh"`
	// Evidence quotes what triggered the finding, e.g.
	// "wan_last_error = ERROR_AUTHENTICATION_FAILURE".
	Evidence []string `json:"evidence"`
}

// Lang selects the language of Finding.Text and Report.WriteFindings.
type Lang string

// The languages of the findings' text.
const (
	English Lang = "en"
	Chinese Lang = "zh"
)

// Text returns the symptom, cause and fix in lang; anything but Chinese
// is English.
func (f Finding) Text(lang Lang) (symptom, cause, fix string) {
	if lang == Chinese {
		return f.SymptomZH, f.CauseZH, f.FixZH
	}
	return f.Symptom, f.Cause, f.Fix
}

// words is a finding's text in both languages.
type words struct {
	Symptom, Cause, Fix       string
	SymptomZH, CauseZH, FixZH string
}

// with returns w with the cause and fix (both languages) of v where v sets them.
func (w words) with(v words) words {
	for _, p := range [][2]*string{
		{&w.Symptom, &v.Symptom}, {&w.Cause, &v.Cause}, {&w.Fix, &v.Fix},
		{&w.SymptomZH, &v.SymptomZH}, {&w.CauseZH, &v.CauseZH}, {&w.FixZH, &v.FixZH},
	} {
		if *p[1] != "" {
			*p[0] = *p[1]
		}
	}
	return w
}

func finding(code Code, sev Status, w words, ev []string) Finding {
	if ev == nil {
		ev = []string{}
	}
	return Finding{
		Code: code, Severity: sev, Symptom: w.Symptom, Cause: w.Cause, Fix: w.Fix,
		SymptomZH: w.SymptomZH, CauseZH: w.CauseZH, FixZH: w.FixZH, Evidence: ev,
	}
}

// rule is one diagnosis: it looks at the evidence and returns its findings.
type rule struct {
	code Code
	fn   func(e *evidence) []Finding
}

// rules are every finding rule: these, then those of the access side
// (findings_access.go) and of the services (findings_service.go).
var rules = slices.Concat(coreRules, accessRules, serviceRules)

var coreRules = []rule{
	{CodePPPoEAuthFailed, rulePPPoEAuth},
	{CodePPPoENoServer, rulePPPoENoServer},
	{CodeWANDown, ruleWANDown},
	{CodeLOIDNotRegistered, ruleLOID},
	{CodeOpticalNoLight, ruleOpticalNoLight},
	{CodeOpticalRxLow, ruleOpticalLow},
	{CodeOpticalRxHigh, ruleOpticalHigh},
	{CodeDSLSNRLow, ruleDSLSNR},
	{CodeLANLinkDegraded, ruleLANLink},
	{CodeNoDHCPLease, ruleDHCP},
	{CodeDNSFailing, ruleDNS},
	{CodePacketLoss, rulePacketLoss},
	{CodeSlowAtGateway, ruleSlowAtGateway},
	{CodeSlowWiFiOnly, ruleSlowWiFi},
	{CodeSlowLaptopSide, ruleSlowLaptop},
	{CodeSpeedBelowPackage, ruleSpeedUnlocalised},
	{CodeSTBAuthFailed, ruleSTBAuth},
	{CodeIPTVNoStream, ruleIPTVNoStream},
	{CodeIPTVMulticastLoss, ruleIPTVLoss},
	{CodeIPTVJitter, ruleIPTVJitter},
	{CodeIPTVSlowJoin, ruleIPTVJoin},
}

// diagnose runs every rule; failures come before warnings, otherwise in
// rule order.
func diagnose(e *evidence) []Finding {
	out := []Finding{}
	for _, r := range rules {
		out = append(out, r.fn(e)...)
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return b.Severity.rank() - a.Severity.rank() })
	return out
}

// evidence is what the rules look at.
type evidence struct {
	p       Profile
	results []diagnostics.Result
	checks  []Check
	facts   map[string]string
}

// bad returns the warned and failed checks of the named readings.
func (e *evidence) bad(readings ...string) []Check {
	var out []Check
	for _, c := range e.checks {
		if slices.Contains(readings, c.Reading) && (c.Status == StatusFail || c.Status == StatusWarn) {
			out = append(out, c)
		}
	}
	return out
}

// ok returns the passed checks of the named reading.
func (e *evidence) ok(reading string) []Check {
	var out []Check
	for _, c := range e.checks {
		if c.Reading == reading && c.Status == StatusOK {
			out = append(out, c)
		}
	}
	return out
}

// reading returns the first reading called name in any result.
func (e *evidence) reading(name string) (diagnostics.Reading, bool) {
	for _, r := range e.results {
		if rd, ok := r.Reading(name); ok {
			return rd, true
		}
	}
	return diagnostics.Reading{}, false
}

// result returns the first result of the named probe.
func (e *evidence) result(probe string) (diagnostics.Result, bool) {
	for _, r := range e.results {
		if r.Probe == probe {
			return r, true
		}
	}
	return diagnostics.Result{}, false
}

// quoteFacts quotes the named facts that are set.
func (e *evidence) quoteFacts(names ...string) []string {
	var out []string
	for _, n := range names {
		if v := e.facts[n]; v != "" {
			out = append(out, n+" = "+v)
		}
	}
	return out
}

// quoteReadings quotes the named readings that are present.
func (e *evidence) quoteReadings(names ...string) []string {
	var out []string
	for _, n := range names {
		if rd, ok := e.reading(n); ok {
			out = append(out, n+" = "+human(rd.Value, rd.Unit))
		}
	}
	return out
}

// quoteReadingsLike quotes every reading whose name has prefix and suffix
// (e.g. wifi…_channel).
func (e *evidence) quoteReadingsLike(prefix, suffix string) []string {
	var out []string
	for _, r := range e.results {
		for _, rd := range r.Readings {
			if strings.HasPrefix(rd.Name, prefix) && strings.HasSuffix(rd.Name, suffix) {
				out = append(out, rd.Name+" = "+human(rd.Value, rd.Unit))
			}
		}
	}
	return out
}

func quoteChecks(cs []Check) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		s := c.Reading + " = " + human(c.Value, c.Unit)
		if c.Limit != "" {
			s += " (limit " + c.Limit + ")"
		}
		out = append(out, s)
	}
	return out
}

func worst(cs []Check) Status {
	s := StatusSkip
	for _, c := range cs {
		s = worse(s, c.Status)
	}
	return s
}

// tokens splits s into upper-case alphanumeric words: "ERROR_691 (x)" →
// ERROR, 691, X.
func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToUpper(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// isAuthError reports a PPP authentication refusal (691 and its kin).
func isAuthError(lastErr string) bool {
	u := strings.ToUpper(lastErr)
	switch u {
	case "ERROR_AUTHENTICATION_FAILURE", "ERROR_ACCOUNT_DISABLED", "ERROR_ACCOUNT_EXPIRED", "ERROR_PASSWORD_EXPIRED", "ERROR_RESTRICTED_LOGON_HOURS":
		return true
	}
	return slices.Contains(tokens(u), "691")
}

// isNoServerError reports PPPoE discovery that got no answer (no PADO, 678).
func isNoServerError(lastErr string) bool {
	u := strings.ToUpper(lastErr)
	switch u {
	case "ERROR_NO_ANSWER", "ERROR_ISP_TIME_OUT", "ERROR_NO_CARRIER":
		return true
	}
	t := tokens(u)
	return slices.Contains(t, "678") || slices.Contains(t, "651") || slices.Contains(t, "PADO")
}

// wanNotUp reports whether the routed internet WAN is down: wan_up is 0,
// or (without the reading) wan_status says so.
func (e *evidence) wanNotUp() bool {
	if strings.Contains(strings.ToLower(e.facts[FactWANConnectionType]), "bridged") {
		return false
	}
	if rd, ok := e.reading("wan_up"); ok {
		return rd.Value == 0
	}
	s := e.facts[FactWANStatus]
	return s != "" && s != "Connected"
}

func (e *evidence) wanEvidence() []string {
	return append(e.quoteFacts(FactWANLastError, FactWANStatus), e.quoteReadings("wan_up")...)
}

func rulePPPoEAuth(e *evidence) []Finding {
	if !isAuthError(e.facts[FactWANLastError]) || !e.wanNotUp() {
		return nil
	}
	return []Finding{finding(CodePPPoEAuthFailed, StatusFail, words{
		Symptom:   "The gateway's PPPoE dial is refused (error 691).",
		Cause:     "The operator's server rejected the account: the PPPoE account or password is wrong, or the account is not opened (or is suspended).",
		Fix:       "Check the PPPoE account and password on the work order and enter them again; if they match, ask the back office to confirm the account is opened and not in arrears.",
		SymptomZH: "网关PPPoE拨号被拒绝（错误691）。",
		CauseZH:   "宽带账号或密码错误，或账号未开通（或已停机）。",
		FixZH:     "核对工单上的宽带账号和密码后重新输入；如一致，请后台确认账号已开通且未欠费。",
	}, e.wanEvidence())}
}

func rulePPPoENoServer(e *evidence) []Finding {
	if !isNoServerError(e.facts[FactWANLastError]) || !e.wanNotUp() {
		return nil
	}
	ev := append(e.wanEvidence(), e.quoteFacts(FactAccess, FactLOIDStatus)...)
	ev = append(ev, e.quoteReadings("optical_rx_power_dbm", "dsl_sync_down_kbps")...)
	return []Finding{finding(CodePPPoENoServer, StatusFail, words{
		Symptom:   "The gateway's PPPoE dial gets no answer (no PADO, error 678).",
		Cause:     "No access concentrator answered the PPPoE discovery: the line is down, the internet VLAN on the WAN does not match the OLT/BRAS, or the ONU is not registered (LOID) so no traffic passes.",
		Fix:       "Check the line readings (optical power or DSL sync) first, confirm the LOID is registered, and compare the WAN's VLAN with the work order.",
		SymptomZH: "网关PPPoE拨号无响应（无PADO，错误678）。",
		CauseZH:   "没有BRAS回应拨号：线路不通、上网WAN的VLAN与局端不一致，或ONU未注册（LOID）导致业务不通。",
		FixZH:     "先检查线路（光功率或DSL同步），确认LOID已注册成功，再核对上网WAN的VLAN与工单一致。",
	}, ev)}
}

func ruleWANDown(e *evidence) []Finding {
	w := words{
		Symptom:   "The internet WAN is not connected.",
		Cause:     "The gateway has no address on its internet WAN; its last error does not say why.",
		Fix:       "Check the line and the LOID registration, the WAN's VLAN and account against the order, then redial and read the last error again.",
		SymptomZH: "上网WAN连接未建立。",
		CauseZH:   "网关上网WAN没有获得地址，设备未给出明确原因。",
		FixZH:     "检查线路和LOID注册情况，核对WAN的VLAN和账号与工单一致，然后重新拨号并查看错误码。",
	}
	if e.facts[FactWANStatus] == "none" {
		return []Finding{finding(CodeWANDown, StatusFail, w.with(words{
			Cause:   "The gateway has no WAN connection carrying the INTERNET service: ITMS has not delivered the configuration, or the WAN was deleted.",
			Fix:     "Register the LOID so that ITMS delivers the work order, or create the routed PPPoE WAN from the order.",
			CauseZH: "网关没有承载INTERNET业务的WAN连接：ITMS未下发配置，或WAN被删除。",
			FixZH:   "完成LOID注册让ITMS下发工单，或按工单手工建立路由PPPoE上网WAN。",
		}), e.quoteFacts(FactWANStatus))}
	}
	le := e.facts[FactWANLastError]
	if !e.wanNotUp() || isAuthError(le) || isNoServerError(le) {
		return nil
	}
	return []Finding{finding(CodeWANDown, StatusFail, w, e.wanEvidence())}
}

// loidWords are the causes of a failed registration by
// X_CT-COM_UserInfo.Status (and "delivery" for Status 0 with Result 2).
var loidWords = map[string]words{
	"1": {
		Cause:   "ITMS does not know this LOID: it is mistyped, or the order was not sent to ITMS.",
		Fix:     "Check the LOID on the work order and enter it again exactly; if it matches, ask the back office to check the order reached ITMS.",
		CauseZH: "ITMS中没有该LOID：输入有误，或工单未下发到ITMS。",
		FixZH:   "核对工单上的LOID并重新准确输入；如一致，请后台确认工单已到达ITMS。",
	},
	"2": {
		Cause:   "ITMS rejected the LOID password.",
		Fix:     "Check the LOID password on the work order and enter it again.",
		CauseZH: "LOID密码错误。",
		FixZH:   "核对工单上的LOID密码后重新输入。",
	},
	"3": {
		Cause:   "The registration timed out: the ONU has no working optical link to the OLT, or the OLT has not authorised it.",
		Fix:     "Check the optical power and the PON light; ask the OLT team to confirm the ONU is authorised on the right PON port.",
		CauseZH: "注册超时：ONU到OLT的光路不通，或OLT未授权该ONU。",
		FixZH:   "检查光功率和PON灯；请OLT维护确认ONU已在正确的PON口授权。",
	},
	"4": {
		Cause:   "The LOID is already bound to another gateway.",
		Fix:     "Ask ITMS support to release the LOID from the old gateway (after a swap, for example), then register again.",
		CauseZH: "该LOID已绑定到其他网关。",
		FixZH:   "联系ITMS支撑解除旧网关的绑定（如换机后），再重新注册。",
	},
	"delivery": {
		Cause:   "ITMS accepted the LOID but delivering the service configuration failed.",
		Fix:     "Ask ITMS support to deliver the work order again, then check that the WAN connections appear.",
		CauseZH: "LOID注册成功，但业务配置下发失败。",
		FixZH:   "联系ITMS支撑重新下发工单，然后检查WAN连接是否生成。",
	},
	"attempts_exceeded": {
		Cause:   "The gateway used all its registration attempts.",
		Fix:     "Factory-reset the gateway or ask ITMS support to reset the counter, then register once with the checked LOID.",
		CauseZH: "网关的注册次数已用完。",
		FixZH:   "恢复出厂设置或联系ITMS支撑重置次数，核对LOID后再注册一次。",
	},
	"in_progress": {
		Cause:   "ITMS has not finished: the registration or the service delivery is still running.",
		Fix:     "Wait a minute and read the status again; if it does not move, check the optical link.",
		CauseZH: "ITMS尚未完成注册或业务下发。",
		FixZH:   "稍等一分钟后再次查看；如一直不变，请检查光路。",
	},
}

func ruleLOID(e *evidence) []Finding {
	outcome, status, result := e.facts[FactLOIDOutcome], e.facts[FactLOIDStatus], e.facts[FactLOIDResult]
	if outcome == "" && status == "" {
		return nil
	}
	variant := status
	sev := StatusFail
	switch {
	case outcome == "success" || outcome == "already_registered":
		return nil
	case outcome == "attempts_exceeded":
		variant = "attempts_exceeded"
	case outcome == "in_progress":
		variant, sev = "in_progress", StatusWarn
	case status == "0" && result == "2":
		variant = "delivery"
	case outcome == "" && status == "0" && result == "1":
		return nil
	case outcome == "" && status == "0":
		variant, sev = "in_progress", StatusWarn
	}
	w := words{
		Symptom:   "The gateway is not registered with ITMS (LOID).",
		Cause:     "ITMS refused the registration.",
		Fix:       "Check the LOID and its password on the work order and register again; see loid_detail.",
		SymptomZH: "网关LOID注册未成功。",
		CauseZH:   "ITMS拒绝了注册。",
		FixZH:     "核对工单上的LOID及密码后重新注册。",
	}
	if v, ok := loidWords[variant]; ok {
		w = w.with(v)
	}
	if sev == StatusWarn {
		w = w.with(words{Symptom: "The LOID registration has not finished.", SymptomZH: "LOID注册尚未完成。"})
	}
	return []Finding{finding(CodeLOIDNotRegistered, sev, w, e.quoteFacts(FactLOIDOutcome, FactLOIDStatus, FactLOIDResult, FactLOIDDetail))}
}

// noLight returns the optical Rx checks at or below NoLightDBm.
func (e *evidence) noLight() []Check {
	if !e.p.Optical.judged() {
		return nil
	}
	var out []Check
	for _, c := range e.bad("optical_rx_power_dbm") {
		if !above(c.Value, e.p.Optical.NoLightDBm) {
			out = append(out, c)
		}
	}
	return out
}

func ruleOpticalNoLight(e *evidence) []Finding {
	cs := e.noLight()
	if len(cs) == 0 {
		return nil
	}
	return []Finding{finding(CodeOpticalNoLight, StatusFail, words{
		Symptom:   "No light reaches the ONU.",
		Cause:     "The fibre is unplugged, broken or on the wrong splitter port, or the OLT's PON port is down.",
		Fix:       "Check the drop fibre clicks into the PON port, look for breaks and crushed or tightly bent fibre along the run, and measure at the splitter port with a PON power meter; with no light there, call the line team.",
		SymptomZH: "光猫收不到光（无光）。",
		CauseZH:   "光纤未插好、断纤、接错分光器端口，或OLT的PON口故障。",
		FixZH:     "确认皮线光纤已插紧PON口，沿线检查断纤、压伤和过度弯折，用PON光功率计在分光器端口测光；若无光请联系线路维护。",
	}, append(quoteChecks(cs), e.quoteFacts("optical_status")...))}
}

func ruleOpticalLow(e *evidence) []Finding {
	var cs []Check
	for _, c := range e.bad("optical_rx_power_dbm") {
		if below(c.Value, e.p.Optical.RxWarnDBm) && above(c.Value, e.p.Optical.NoLightDBm) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return []Finding{finding(CodeOpticalRxLow, worst(cs), words{
		Symptom:   "The optical receive power is too low.",
		Cause:     "Light is lost on the way: a dirty or damaged connector, a fibre bent too tightly or a bad splice, or the wrong splitter ratio (too many splits) on the path.",
		Fix:       "Clean both SC/APC connectors with a cleaning pen and re-seat them, straighten tight bends and coils, and measure again; if the splitter port itself is low, report it to the line team.",
		SymptomZH: "光猫收光功率偏低。",
		CauseZH:   "光路损耗过大：连接头脏污或损坏、光纤弯折过度或熔接不良，或分光比不对（分光级数过多）。",
		FixZH:     "用清洁笔清洁两端SC/APC连接头后重新插好，理顺过度弯折和盘绕，再次测量；若分光器端口光功率本身偏低，报线路维护处理。",
	}, append(quoteChecks(cs), e.quoteReadings("optical_tx_power_dbm")...))}
}

func ruleOpticalHigh(e *evidence) []Finding {
	var cs []Check
	for _, c := range e.bad("optical_rx_power_dbm") {
		if e.p.Optical.judged() && above(c.Value, e.p.Optical.RxMaxDBm) {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return []Finding{finding(CodeOpticalRxHigh, StatusFail, words{
		Symptom:   "The optical receive power is too high.",
		Cause:     "The ONU is close to the OLT or on a lightly split path without an attenuator, which overloads its receiver.",
		Fix:       "Fit an SC/APC optical attenuator (for example 5 or 10 dB) at the ONU so the power falls inside the range.",
		SymptomZH: "光猫收光功率过高。",
		CauseZH:   "光猫离OLT太近或分光少，又没有加衰减器，接收机过载。",
		FixZH:     "在光猫侧加装SC/APC光衰减器（如5或10 dB），使光功率落入正常范围。",
	}, quoteChecks(cs))}
}

func ruleDSLSNR(e *evidence) []Finding {
	cs := e.bad("dsl_snr_margin_down_db", "dsl_snr_margin_up_db")
	if len(cs) == 0 {
		return nil
	}
	ev := append(quoteChecks(cs), e.quoteReadings("dsl_attenuation_down_db", "dsl_attenuation_up_db", "dsl_crc_errors", "dsl_sync_down_kbps")...)
	return []Finding{finding(CodeDSLSNRLow, worst(cs), words{
		Symptom:   "The DSL line's noise margin is too low.",
		Cause:     "The line is long or poor, has bad joints, a phone without a splitter or microfilter, or picks up interference.",
		Fix:       "Fit the splitter and a microfilter on every phone, redo indoor joints with twisted pair away from power cables; if the margin stays low, ask for a more robust line profile.",
		SymptomZH: "ADSL/VDSL线路噪声裕量过低。",
		CauseZH:   "线路过长或质量差、接头不良、电话未接分离器/滤波器，或有干扰。",
		FixZH:     "装好分离器并给每部电话加滤波器，室内接头重做并使用双绞线、远离电源线；如仍偏低，申请更稳定的线路模板。",
	}, ev)}
}

func ruleLANLink(e *evidence) []Finding {
	var cs []Check
	for _, c := range e.checks {
		if c.Status != StatusFail && c.Status != StatusWarn {
			continue
		}
		if _, ok := lanPort(c.Reading, "_speed_mbps"); ok {
			cs = append(cs, c)
		} else if _, ok := lanPort(c.Reading, "_full_duplex"); ok {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return []Finding{finding(CodeLANLinkDegraded, worst(cs), words{
		Symptom:   "A LAN link runs below gigabit or at half duplex.",
		Cause:     "Gigabit needs all four pairs: a bad pair in the crimp, mixed T568A/T568B colour orders, a damaged cable, or a 100M network card drops the link to 100M or half duplex.",
		Fix:       "Re-crimp both ends in the same order (T568B: white-orange, orange, white-green, blue, white-blue, green, white-brown, brown), check the cable with a tester, and make sure the computer's port is gigabit and auto-negotiating.",
		SymptomZH: "网口未协商到千兆或为半双工。",
		CauseZH:   "千兆需要四对线全通：水晶头某对线压接不良、两端T568A/T568B线序混用、网线损坏，或电脑网卡只有百兆，都会降为百兆或半双工。",
		FixZH:     "两端按相同线序重新压接（T568B：白橙、橙、白绿、蓝、白蓝、绿、白棕、棕），用测线仪测试，并确认电脑网卡为千兆且设为自协商。",
	}, quoteChecks(cs))}
}

func ruleDHCP(e *evidence) []Finding {
	cs := e.bad("dhcp_lease")
	if len(cs) == 0 {
		return nil
	}
	w := words{
		Symptom:   "The computer got no address from the gateway (no DHCP lease).",
		Cause:     "The gateway's DHCP server is off, the port is bound to a bridged WAN (such as the IPTV port), or the cable has no link.",
		Fix:       "Plug into LAN1-3 rather than the IPTV port, check the gateway's LAN DHCP server is on, then renew the lease (ipconfig /renew or dhclient).",
		SymptomZH: "电脑没有从网关获取到地址（DHCP失败）。",
		CauseZH:   "网关DHCP服务未开启、所接端口绑定在桥接WAN上（如IPTV口），或网线未连通。",
		FixZH:     "改接LAN1-3口（不要接IPTV口），确认网关LAN侧DHCP服务已开启，然后重新获取地址（ipconfig /renew或dhclient）。",
	}
	if strings.Contains(strings.ToLower(e.facts[FactWANConnectionType]), "bridged") {
		w = w.with(words{
			Cause:   "The internet WAN is bridged: the gateway hands out no address there and the computer must dial PPPoE itself.",
			Fix:     "Set up a PPPoE (broadband) connection on the computer with the account on the order, or change the WAN to routed mode if the order says so.",
			CauseZH: "上网WAN为桥接模式：网关不分配地址，需要电脑自行拨号。",
			FixZH:   "在电脑上建立宽带（PPPoE）拨号连接并使用工单上的账号；如工单要求路由模式，请改为路由。",
		})
	}
	ev := append(quoteChecks(cs), e.quoteFacts(FactDHCPInterface, FactDHCPAutoconf, FactDHCPError, FactWANConnectionType)...)
	return []Finding{finding(CodeNoDHCPLease, StatusFail, w, ev)}
}

func ruleDNS(e *evidence) []Finding {
	dns, ok := e.result("dns")
	if !ok || dns.Success {
		return nil
	}
	ping, ok := e.result("ping")
	if !ok {
		return nil
	}
	loss, hasLoss := ping.Reading("ping_loss")
	if !ping.Success && (!hasLoss || loss.Value >= 100) {
		return nil
	}
	ev := []string{"dns probe failed: " + orDash(dns.Err)}
	for _, n := range []string{"dns_rcode", "dns_lookup_ms", "dns_nxdomain_rewritten"} {
		if rd, ok := dns.Reading(n); ok {
			ev = append(ev, n+" = "+human(rd.Value, rd.Unit))
		}
	}
	ev = append(ev, "ping probe to "+orDash(ping.Target)+" answered")
	for _, n := range []string{"ping_loss", "ping_rtt_avg"} {
		if rd, ok := ping.Reading(n); ok {
			ev = append(ev, n+" = "+human(rd.Value, rd.Unit))
		}
	}
	return []Finding{finding(CodeDNSFailing, StatusFail, words{
		Symptom:   "Web pages do not open although the line works: name lookups (DNS) fail while ping gets through.",
		Cause:     "The DNS servers the computer uses are wrong or unreachable, the gateway's DNS relay is stuck, or the computer has static DNS servers.",
		Fix:       "Check the DNS servers (ipconfig /all) and remove static ones, compare them with the WAN's DNS servers from the operator, and restart the gateway if its DNS relay does not answer.",
		SymptomZH: "网络已通但打不开网页：域名解析（DNS）失败，ping正常。",
		CauseZH:   "电脑使用的DNS服务器错误或不可达、网关DNS代理异常，或电脑手工设置了DNS。",
		FixZH:     "查看DNS设置（ipconfig /all）并改为自动获取，与WAN获取的运营商DNS对比；如网关DNS代理无响应，重启网关。",
	}, ev)}
}

func rulePacketLoss(e *evidence) []Finding {
	cs := e.bad("ping_loss")
	if len(cs) == 0 {
		return nil
	}
	w := words{
		Symptom:   "Ping loses packets.",
		Cause:     "Packets are lost on the way: line errors (low optical power, DSL noise), a bad LAN cable or weak Wi-Fi, or congestion.",
		Fix:       "Repeat the test over a cable on LAN1 and check the line readings; if the loss stays, escalate with this evidence.",
		SymptomZH: "ping有丢包。",
		CauseZH:   "链路丢包：线路误码（光功率低、DSL噪声）、网线不良或Wi-Fi信号弱，或网络拥塞。",
		FixZH:     "用网线接LAN1重测并检查线路指标；如仍丢包，带上这些数据升级处理。",
	}
	total := true
	for _, c := range cs {
		total = total && c.Value >= 100
	}
	if total {
		w = w.with(words{
			Symptom:   "Ping gets no reply at all.",
			Cause:     "Nothing answers: the internet WAN is down, or the target does not answer ping.",
			Fix:       "Check the internet WAN is connected, then ping the gateway and a known host such as the operator's DNS server.",
			SymptomZH: "ping完全不通。",
			CauseZH:   "目标无响应：上网WAN未连接，或目标不响应ping。",
			FixZH:     "确认上网WAN已连接，再分别ping网关和已知主机（如运营商DNS）。",
		})
	}
	return []Finding{finding(CodePacketLoss, worst(cs), w, append(quoteChecks(cs), e.quoteReadings("ping_rtt_avg")...))}
}

// speedSplit is the speed evidence per direction.
type speedSplit struct {
	laptopSlow, gatewaySlow, gatewayOK []Check
	gatewayMissing                     bool
}

// speeds sorts the speed checks: for each direction, the laptop's failed
// test and how the gateway's own test (TR-143) did.
func (e *evidence) speeds() []speedSplit {
	var out []speedSplit
	for _, dir := range []string{"download", "upload"} {
		s := speedSplit{
			laptopSlow:  failed(e.bad(dir + "_mbps")),
			gatewaySlow: failed(e.bad("gateway_" + dir + "_mbps")),
			gatewayOK:   e.ok("gateway_" + dir + "_mbps"),
		}
		_, hasGW := e.reading("gateway_" + dir + "_mbps")
		s.gatewayMissing = !hasGW
		out = append(out, s)
	}
	return out
}

func failed(cs []Check) []Check {
	var out []Check
	for _, c := range cs {
		if c.Status == StatusFail {
			out = append(out, c)
		}
	}
	return out
}

func ruleSlowAtGateway(e *evidence) []Finding {
	var cs []Check
	for _, s := range e.speeds() {
		cs = append(cs, s.gatewaySlow...)
	}
	if len(cs) == 0 {
		return nil
	}
	ev := append(quoteChecks(cs), e.quoteReadings("download_mbps", "upload_mbps", "dsl_sync_down_kbps", "dsl_sync_up_kbps", "optical_rx_power_dbm")...)
	return []Finding{finding(CodeSlowAtGateway, StatusFail, words{
		Symptom:   "The gateway's own speed test is below the package.",
		Cause:     "The shortfall is before the house: the line (DSL sync rate, optical errors) limits the rate, or the account's speed profile on the BRAS is lower than the order (wrong package).",
		Fix:       "Compare the line readings (DSL sync rate) with the package; if the line is fine, ask the back office to check the account's rate profile on the BRAS matches the order.",
		SymptomZH: "网关自身测速达不到签约速率。",
		CauseZH:   "问题在入户之前：线路（DSL同步速率、光路误码）限制了速率，或BRAS上账号的限速模板低于工单（套餐不符）。",
		FixZH:     "对比线路指标（DSL同步速率）与套餐；如线路正常，请后台核查BRAS上账号的限速模板是否与工单一致。",
	}, ev)}
}

// slowBehindGateway returns the laptop's failed speed checks in the
// directions where the gateway's own test passed, and those checks.
func (e *evidence) slowBehindGateway() (laptop, gateway []Check) {
	for _, s := range e.speeds() {
		if len(s.laptopSlow) > 0 && len(s.gatewaySlow) == 0 && len(s.gatewayOK) > 0 {
			laptop = append(laptop, s.laptopSlow...)
			gateway = append(gateway, s.gatewayOK...)
		}
	}
	return laptop, gateway
}

func ruleSlowWiFi(e *evidence) []Finding {
	laptop, gateway := e.slowBehindGateway()
	if len(laptop) == 0 || !strings.EqualFold(e.facts[FactLaptopLink], "wifi") {
		return nil
	}
	ev := append(quoteChecks(laptop), quoteChecks(gateway)...)
	ev = append(ev, e.quoteFacts(FactLaptopLink, FactWiFiRSSI)...)
	ev = append(ev, e.quoteReadingsLike("wifi", "_channel")...)
	ev = append(ev, e.quoteReadingsLike("wifi", "_clients")...)
	return []Finding{finding(CodeSlowWiFiOnly, StatusFail, words{
		Symptom:   "Slow only over Wi-Fi: the gateway reaches the package, the laptop on Wi-Fi does not.",
		Cause:     "Wi-Fi is the bottleneck: a congested channel (many neighbouring networks on 2.4 GHz), a weak signal (RSSI below about −65 dBm), or the laptop's Wi-Fi standard.",
		Fix:       "Prove the package with a cable on LAN1; then move the laptop to 5 GHz and nearer the gateway, pick a clear channel, and suggest an extra access point for far rooms.",
		SymptomZH: "仅无线慢：网关测速达标，笔记本通过Wi-Fi测速不达标。",
		CauseZH:   "瓶颈在Wi-Fi：信道拥挤（2.4 GHz周边网络多）、信号弱（RSSI低于约−65 dBm），或终端无线标准较旧。",
		FixZH:     "先用网线接LAN1测速证明宽带达标；再让终端连5 GHz并靠近网关、更换空闲信道，远处房间建议加装无线AP。",
	}, ev)}
}

func ruleSlowLaptop(e *evidence) []Finding {
	laptop, gateway := e.slowBehindGateway()
	if len(laptop) == 0 || strings.EqualFold(e.facts[FactLaptopLink], "wifi") {
		return nil
	}
	ev := append(quoteChecks(laptop), quoteChecks(gateway)...)
	ev = append(ev, e.quoteFacts(FactLaptopLink)...)
	ev = append(ev, e.quoteReadingsLike("lan", "_speed_mbps")...)
	return []Finding{finding(CodeSlowLaptopSide, StatusFail, words{
		Symptom:   "The gateway reaches the package but the test computer does not.",
		Cause:     "The shortfall is inside the house: the LAN cable or port links at 100M, or the computer (an old network card, CPU load, a VPN or security software) is the limit.",
		Fix:       "Check the LAN port's link speed, try another cable and another computer, and close VPNs and downloads during the test.",
		SymptomZH: "网关测速达标，但测试电脑达不到。",
		CauseZH:   "问题在户内：网线或网口只连到百兆，或电脑本身（网卡老旧、CPU占用、VPN或安全软件）限制了速度。",
		FixZH:     "检查网口协商速率，换网线和电脑再测，测速时关闭VPN和下载。",
	}, ev)}
}

func ruleSpeedUnlocalised(e *evidence) []Finding {
	var cs []Check
	for _, s := range e.speeds() {
		if s.gatewayMissing {
			cs = append(cs, s.laptopSlow...)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return []Finding{finding(CodeSpeedBelowPackage, StatusFail, words{
		Symptom:   "The speed test is below the package.",
		Cause:     "Without the gateway's own speed test it is not known whether the line or the home network is slow.",
		Fix:       "Run the gateway's speed test (TR-143) and a wired test on LAN1 to find where the speed is lost.",
		SymptomZH: "测速低于签约速率。",
		CauseZH:   "缺少网关自身测速结果，无法判断是线路慢还是户内网络慢。",
		FixZH:     "运行网关测速（TR-143）并用网线接LAN1测速，以定位速度损失的位置。",
	}, append(quoteChecks(cs), e.quoteFacts(FactLaptopLink)...))}
}

// stbAuthFailed reports whether the stb_auth_status fact says failure.
func stbAuthFailed(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return strings.Contains(v, "fail") || v == "error" || v == "rejected" || v == "denied"
}

func ruleSTBAuth(e *evidence) []Finding {
	if !stbAuthFailed(e.facts[FactSTBAuthStatus]) {
		return nil
	}
	return []Finding{finding(CodeSTBAuthFailed, StatusFail, words{
		Symptom:   "IPTV shows no picture: the set-top box failed authentication.",
		Cause:     "The iTV account or password is wrong, the account is not opened, or the set-top box (STBID/MAC) is not bound to it.",
		Fix:       "Check the iTV account, password and authentication server in the set-top box against the order, and ask the back office to bind the box's STBID/MAC.",
		SymptomZH: "IPTV无图像：机顶盒认证失败。",
		CauseZH:   "iTV业务账号或密码错误、账号未开通，或机顶盒（STBID/MAC）未绑定。",
		FixZH:     "核对机顶盒中的iTV账号、密码和认证服务器地址与工单一致，并请后台绑定机顶盒STBID/MAC。",
	}, e.quoteFacts(FactSTBAuthStatus))}
}

// off reports whether a setting fact says disabled.
func off(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "false", "off", "no", "disabled", "disable":
		return true
	}
	return false
}

func ruleIPTVNoStream(e *evidence) []Finding {
	var cs []Check
	for _, c := range e.bad("iptv_packets") {
		if c.Status == StatusFail {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	w := words{
		Symptom:   "IPTV shows no picture: no multicast packets arrive.",
		Cause:     "The set-top box's port is not bound to the IPTV WAN, or the IPTV VLAN is wrong, so the channel join never reaches the network.",
		Fix:       "Bind the set-top box's port (usually LAN4) to the IPTV WAN, check the IPTV VLAN against the order, and make sure IGMP snooping and proxy are on.",
		SymptomZH: "IPTV无图像：收不到组播流。",
		CauseZH:   "机顶盒所接端口未绑定到IPTV WAN，或IPTV的VLAN不对，点播请求到不了网络。",
		FixZH:     "把机顶盒端口（一般为LAN4）绑定到IPTV WAN，核对IPTV VLAN与工单一致，并确认IGMP snooping和代理已开启。",
	}
	if off(e.facts[FactIGMPSnooping]) || off(e.facts[FactIGMPProxy]) {
		w = w.with(words{
			Cause:   "IGMP snooping or proxy is off on the gateway, so the set-top box's channel join is not passed on and no multicast reaches its port.",
			Fix:     "Turn on IGMP snooping and IGMP proxy for the IPTV WAN, then change channel again.",
			CauseZH: "网关未开启IGMP snooping或IGMP代理，机顶盒的加入请求没有转发，组播到不了端口。",
			FixZH:   "为IPTV WAN开启IGMP snooping和IGMP代理，然后重新切换频道。",
		})
	}
	ev := append(quoteChecks(cs), e.quoteFacts(FactIGMPSnooping, FactIGMPProxy, FactSTBAuthStatus)...)
	ev = append(ev, e.quoteReadings("iptv_join_ms")...)
	return []Finding{finding(CodeIPTVNoStream, StatusFail, w, ev)}
}

func ruleIPTVLoss(e *evidence) []Finding {
	cs := e.bad("iptv_mlr")
	if len(cs) == 0 {
		return nil
	}
	ev := append(quoteChecks(cs), e.quoteReadings("iptv_cc_errors", "iptv_packets", "optical_rx_power_dbm", "dsl_crc_errors")...)
	return []Finding{finding(CodeIPTVMulticastLoss, worst(cs), words{
		Symptom:   "IPTV loses packets: the picture breaks up into mosaic or freezes.",
		Cause:     "Multicast packets are lost: line errors (low optical power, DSL noise), a bad cable to the set-top box, or a Wi-Fi or powerline bridge on the way.",
		Fix:       "Connect the set-top box straight to its IPTV port with a good cable (no Wi-Fi or powerline bridge) and check the line readings.",
		SymptomZH: "IPTV丢包：画面出现马赛克或卡顿。",
		CauseZH:   "组播丢包：线路误码（光功率低、DSL噪声）、机顶盒网线不良，或中间经过无线/电力猫桥接。",
		FixZH:     "用良好的网线把机顶盒直连IPTV端口（不要经过无线或电力猫），并检查线路指标。",
	}, ev)}
}

func ruleIPTVJitter(e *evidence) []Finding {
	cs := e.bad("iptv_df_ms")
	if len(cs) == 0 {
		return nil
	}
	return []Finding{finding(CodeIPTVJitter, worst(cs), words{
		Symptom:   "IPTV packets arrive in bursts (high delay factor): the picture may stutter.",
		Cause:     "The path is congested or goes through Wi-Fi or powerline, or internet traffic shares the set-top box's port.",
		Fix:       "Give the set-top box its own IPTV port and a direct cable; keep internet downloads off that port.",
		SymptomZH: "IPTV抖动大（延迟因子高），画面可能卡顿。",
		CauseZH:   "链路拥塞或经过无线/电力猫，或上网流量与机顶盒共用端口。",
		FixZH:     "机顶盒使用独立的IPTV端口并用网线直连，不要与上网流量共用该端口。",
	}, append(quoteChecks(cs), e.quoteReadings("iptv_mlr")...))}
}

func ruleIPTVJoin(e *evidence) []Finding {
	cs := e.bad("iptv_join_ms")
	if len(cs) == 0 {
		return nil
	}
	return []Finding{finding(CodeIPTVSlowJoin, worst(cs), words{
		Symptom:   "Changing IPTV channels is slow.",
		Cause:     "IGMP proxy or fast leave is off on the gateway, or the channel's multicast group is not served close by.",
		Fix:       "Turn on IGMP proxy and fast leave for the IPTV WAN; if joins stay slow, report the channel to the IPTV team.",
		SymptomZH: "IPTV换台慢。",
		CauseZH:   "网关未开启IGMP代理或快速离开，或该频道组播未在本地节点提供。",
		FixZH:     "为IPTV WAN开启IGMP代理和快速离开；如仍然慢，将该频道报给IPTV维护。",
	}, append(quoteChecks(cs), e.quoteFacts(FactIGMPSnooping, FactIGMPProxy)...))}
}
