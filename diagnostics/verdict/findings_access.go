package verdict

import (
	"strconv"
	"strings"
	"unicode"
)

// Facts the access rules read. diagnostics/line fills optical_status,
// firmware and lan_dhcp_server; the caller adds firmware_required (from
// the order) and wifi_neighbour_networks (from the laptop's Wi-Fi scan).
const (
	// FactOpticalStatus is the PON interface's state (Up when the OLT has
	// the ONU on the PON; NoSignal, Initializing, … otherwise).
	FactOpticalStatus = "optical_status"
	// FactFirmware is the firmware version the gateway runs.
	FactFirmware = "firmware"
	// FactFirmwareRequired is the firmware version the order requires.
	FactFirmwareRequired = "firmware_required"
	// FactLANDHCPServer is the gateway's LAN DHCP server switch (on/off,
	// 1/0, true/false).
	FactLANDHCPServer = "lan_dhcp_server"
	// FactWiFiNeighbours is how many other Wi-Fi networks the laptop's
	// scan sees on or next to the gateway's 2.4 GHz channel.
	FactWiFiNeighbours = "wifi_neighbour_networks"
)

// The finding codes of the access rules.
const (
	CodeONUNotAuthorised Code = "ONU_NOT_AUTHORISED"
	CodeLANDHCPOff       Code = "LAN_DHCP_OFF"
	CodeWiFiCongested    Code = "WIFI_CONGESTED"
	CodeFirmwareOutdated Code = "FIRMWARE_OUTDATED"
)

// wifiCrowdedNeighbours is how many neighbouring networks make a fixed
// 2.4 GHz channel crowded.
const wifiCrowdedNeighbours = 8

// accessRules are the findings of the gateway and its access line beyond
// the core rules (account, VLAN, firmware, LAN and Wi-Fi state).
var accessRules = []rule{
	{CodeONUNotAuthorised, ruleONUNotAuthorised},
	{CodeLANDHCPOff, ruleLANDHCPOff},
	{CodeWiFiCongested, ruleWiFiCongested},
	{CodeFirmwareOutdated, ruleFirmwareOutdated},
}

// ruleONUNotAuthorised: light reaches the ONU but its PON state is not Up,
// so the OLT has not let it onto the PON. A failed LOID registration the
// LOID rule reports says the same with its cause; this rule then stays
// quiet.
func ruleONUNotAuthorised(e *evidence) []Finding {
	st := strings.TrimSpace(e.facts[FactOpticalStatus])
	if st == "" || strings.EqualFold(st, "up") || !e.p.Optical.judged() {
		return nil
	}
	rx, ok := e.reading("optical_rx_power_dbm")
	if !ok || !above(rx.Value, e.p.Optical.NoLightDBm) {
		return nil
	}
	// A LOID that ITMS refused (no such LOID, wrong password, bound
	// elsewhere) is the LOID rule's; a registration that timed out
	// (status 3) is what an unauthorised ONU looks like.
	if s := e.facts[FactLOIDStatus]; s != "" && s != "0" && s != "3" {
		return nil
	}
	ev := append(e.quoteFacts(FactOpticalStatus), e.quoteReadings("optical_rx_power_dbm")...)
	ev = append(ev, e.quoteFacts(FactLOIDStatus, FactWANStatus, FactWANLastError)...)
	return []Finding{finding(CodeONUNotAuthorised, StatusFail, words{
		Symptom:   "The ONU receives light but is not on the PON: nothing passes the optical line.",
		Cause:     "The OLT has not authorised the ONU: the LOID on the gateway is not the one the operator registered for this line (mistyped, or from another order), or the ONU is not authorised on this PON port.",
		Fix:       "Compare the LOID on the gateway with the work order and register it again; if it matches, ask the OLT team to authorise the ONU on this PON port (give them the gateway's serial).",
		SymptomZH: "光猫能收到光，但未上线（PON未注册）：光路不通业务。",
		CauseZH:   "OLT未授权该ONU：网关上的LOID与运营商为该线路登记的不一致（输入有误或属于其他工单），或ONU未在该PON口授权。",
		FixZH:     "核对网关上的LOID与工单一致后重新注册；如一致，请OLT维护在该PON口授权ONU（提供网关序列号）。",
	}, ev)}
}

// ruleLANDHCPOff: the gateway's LAN DHCP server is off while it routes
// the internet WAN, so computers behind it get no address.
func ruleLANDHCPOff(e *evidence) []Finding {
	if !off(e.facts[FactLANDHCPServer]) || strings.Contains(strings.ToLower(e.facts[FactWANConnectionType]), "bridged") {
		return nil
	}
	ev := append(e.quoteFacts(FactLANDHCPServer, FactWANConnectionType), quoteChecks(e.bad("dhcp_lease"))...)
	return []Finding{finding(CodeLANDHCPOff, StatusFail, words{
		Symptom:   "The gateway hands out no addresses on its LAN: its DHCP server is off.",
		Cause:     "The LAN DHCP server was switched off (on the gateway's web page, or by a configuration from ITMS): computers and phones get only a self-assigned 169.254 address and no internet.",
		Fix:       "Turn the LAN DHCP server on (LAN settings, DHCP server enabled, pool 192.168.1.2–254), then renew the lease on the computer (ipconfig /renew or dhclient).",
		SymptomZH: "网关LAN侧不分配地址：DHCP服务已关闭。",
		CauseZH:   "网关LAN侧DHCP服务被关闭（在网关页面或由ITMS配置下发）：电脑和手机只能得到169.254自动地址，无法上网。",
		FixZH:     "开启网关LAN侧DHCP服务（LAN设置中启用DHCP服务器，地址池192.168.1.2–254），然后在电脑上重新获取地址（ipconfig /renew或dhclient）。",
	}, ev)}
}

// ruleWiFiCongested: an enabled 2.4 GHz SSID fixed (auto channel off) on a
// channel that overlaps the usual ones (not 1, 6 or 11), or on one the
// laptop's scan finds crowded.
func ruleWiFiCongested(e *evidence) []Finding {
	neighbours, _ := strconv.Atoi(strings.TrimSpace(e.facts[FactWiFiNeighbours]))
	var ev []string
	for n := 1; n <= 8; n++ {
		pre := "wifi" + strconv.Itoa(n) + "_"
		en, ok1 := e.reading(pre + "enabled")
		ch, ok2 := e.reading(pre + "channel")
		auto, ok3 := e.reading(pre + "auto_channel")
		if !ok1 || !ok2 || !ok3 || en.Value != 1 || auto.Value != 0 || ch.Value < 1 || ch.Value > 14 {
			continue
		}
		overlapping := ch.Value != 1 && ch.Value != 6 && ch.Value != 11
		if !overlapping && neighbours < wifiCrowdedNeighbours {
			continue
		}
		ev = append(ev, e.quoteReadings(pre+"channel", pre+"auto_channel", pre+"clients")...)
	}
	if len(ev) == 0 {
		return nil
	}
	ev = append(ev, e.quoteFacts(FactWiFiNeighbours, FactWiFiRSSI)...)
	return []Finding{finding(CodeWiFiCongested, StatusWarn, words{
		Symptom:   "The gateway's 2.4 GHz Wi-Fi sits on a fixed, crowded channel: expect slow and unstable Wi-Fi.",
		Cause:     "Automatic channel selection is off and the channel overlaps its neighbours' (only 1, 6 and 11 do not overlap) or many networks nearby share it, so the radio waits for the air and collides.",
		Fix:       "Turn automatic channel selection on (or pick the clearest of 1, 6 and 11 after a scan), move the customer's devices to the 5 GHz SSID, and keep the gateway out of cabinets.",
		SymptomZH: "网关2.4 GHz Wi-Fi固定在拥挤的信道上：无线会慢且不稳定。",
		CauseZH:   "关闭了自动信道选择，且所用信道与周边网络重叠（只有1、6、11互不重叠）或周边同信道网络很多，无线需等待空口并产生冲突。",
		FixZH:     "开启自动信道选择（或扫描后在1、6、11中选最空闲的），让终端连接5 GHz，并避免把网关放在弱电箱内。",
	}, ev)}
}

// ruleFirmwareOutdated: the gateway runs firmware older than the order
// requires.
func ruleFirmwareOutdated(e *evidence) []Finding {
	have, want := strings.TrimSpace(e.facts[FactFirmware]), strings.TrimSpace(e.facts[FactFirmwareRequired])
	if have == "" || want == "" || compareVersions(have, want) >= 0 {
		return nil
	}
	return []Finding{finding(CodeFirmwareOutdated, StatusWarn, words{
		Symptom:   "The gateway runs older firmware than the order requires.",
		Cause:     "The gateway was not upgraded: ITMS has not pushed the required version yet, or an upgrade failed, so fixes and features the service needs are missing.",
		Fix:       "Upgrade the gateway to the required firmware (fieldagent upgrades it through the ACS, or ask ITMS to push it), then check the version again.",
		SymptomZH: "网关固件版本低于工单要求。",
		CauseZH:   "网关未升级：ITMS尚未推送要求的版本或升级失败，业务所需的修复和功能缺失。",
		FixZH:     "将网关升级到工单要求的固件（fieldagent可通过ACS升级，或请ITMS推送），然后再次确认版本。",
	}, e.quoteFacts(FactFirmware, FactFirmwareRequired))}
}

// compareVersions orders firmware versions such as V2.1.0T6: runs of digits
// compare as numbers, runs of letters case-insensitively, other characters
// separate; a version that goes on where the other ends is the newer. It
// returns -1, 0 or 1.
func compareVersions(a, b string) int {
	ta, tb := versionParts(a), versionParts(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		x, y := ta[i], tb[i]
		xd, yd := isDigit(x[0]), isDigit(y[0])
		switch {
		case xd && yd:
			x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if len(x) != len(y) {
				return sign(len(x) - len(y))
			}
		case xd != yd:
			// A number sorts after letters (a release after its -rc).
			if xd {
				return 1
			}
			return -1
		default:
			x, y = strings.ToLower(x), strings.ToLower(y)
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	return sign(len(ta) - len(tb))
}

// versionParts splits a version into runs of ASCII digits and of letters.
func versionParts(v string) []string {
	var out []string
	cur, digits := "", false
	for _, r := range v {
		d, isLetter := r < 0x80 && isDigit(byte(r)), unicode.IsLetter(r)
		if (!d && !isLetter) || (cur != "" && d != digits) {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
		}
		if d || isLetter {
			cur += string(r)
			digits = d
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
