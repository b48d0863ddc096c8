package testlab

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"fieldagent/diagnostics/verdict"
)

// The gateway's data model paths the e8 faults change.
const (
	e8Root         = "InternetGatewayDevice."
	e8WANConnDevs  = e8Root + "WANDevice.1.WANConnectionDevice."
	e8UserInfo     = e8Root + "X_CT-COM_UserInfo."
	e8LAN1         = e8Root + "LANDevice.1.LANEthernetInterfaceConfig.1."
	e8WLAN1        = e8Root + "LANDevice.1.WLANConfiguration.1."
	e8DHCPServer   = e8Root + "LANDevice.1.LANHostConfigManagement.DHCPServerEnable"
	e8SoftwareVers = e8Root + "DeviceInfo.SoftwareVersion"
)

// The values the e8 faults put on the site.
const (
	// e8FaultWait bounds an injection or clear that waits for the gateway
	// (a dial, a registration).
	e8FaultWait = 15 * time.Second
	// wrongLOID is the LOID loid_wrong types in (ITMS does not know it).
	wrongLOID = SampleLOIDPrefix + "000000000000"
	// wrongVLAN is the internet VLAN wan_vlan_wrong puts on the WAN (or
	// this plus one, when the operator's VLAN is this one).
	wrongVLAN = 46
	// oldFirmware is the version firmware_outdated leaves running: older
	// than SampleFirmware, which the sample orders require.
	oldFirmware = "V2.0.3T2"
	// congestedChannel is the fixed 2.4 GHz channel of wifi_congested: it
	// overlaps channels 1 and 6.
	congestedChannel = "3"
)

// errE8FaultTimeout: the gateway did not reach the fault's state in time.
var errE8FaultTimeout = errors.New("the gateway did not get there in time")

// e8Faults are the faults of the e8 gateway, its line and the operator's
// access side.
func e8Faults() []faultDef {
	return []faultDef{
		{
			Fault: Fault{
				ID: "pppoe_wrong_password", Device: "e8", Finding: verdict.CodePPPoEAuthFailed,
				Title:   "PPPoE password on the gateway is wrong",
				TitleZH: "网关上的宽带密码错误",
				Where:   "e8sim: the INTERNET WAN's Password is changed locally; the gateway redials and the BRAS (testlab/operator) answers 691, LastConnectionError ERROR_AUTHENTICATION_FAILURE",
				Fix:     "Enter the PPPoE account and password from the work order on the gateway's INTERNET WAN again and redial.",
				FixZH:   "按工单在网关上网WAN上重新输入宽带账号和密码并重新拨号。",
			},
			inject: func(s *Site) error {
				return s.setPPPoEPassword("wrong-"+s.Credentials.PPPoEPassword.Reveal(), "ERROR_AUTHENTICATION_FAILURE")
			},
			clear: func(s *Site) error { return s.setPPPoEPassword(s.Credentials.PPPoEPassword.Reveal(), "") },
		},
		{
			Fault: Fault{
				ID: "pppoe_account_not_opened", Device: "e8", Finding: verdict.CodePPPoEAuthFailed,
				Title:   "PPPoE account not opened in the operator's system",
				TitleZH: "宽带账号未在运营商系统开通",
				Where: "testlab/operator: the BRAS forgets the sample PPPoE account and ends its session; the gateway redials and gets 691 (reply \"no such account\"). " +
					"A real BRAS rejects an unknown account with the same 691 as a wrong password and the gateway reports ERROR_AUTHENTICATION_FAILURE for both over TR-069, " +
					"so the diagnosis cannot tell this from a mistyped password: PPPOE_AUTH_FAILED",
				Fix:   "With the password checked against the order and still refused, ask the back office to open (or reactivate) the PPPoE account on the order, then redial.",
				FixZH: "核对密码无误仍被拒绝时，请后台开通（或恢复）工单上的宽带账号，然后重新拨号。",
			},
			inject: func(s *Site) error {
				s.Operator.RemovePPPoEAccount(SamplePPPoEUser)
				return s.redialUntil("ERROR_AUTHENTICATION_FAILURE")
			},
			clear: func(s *Site) error {
				s.Operator.AddPPPoEAccount(SamplePPPoEUser, s.Credentials.PPPoEPassword)
				return s.redialUntil("")
			},
		},
		{
			Fault: Fault{
				ID: "loid_wrong", Device: "e8", Finding: verdict.CodeLOIDNotRegistered,
				Title:   "LOID on the gateway is not the one ITMS knows",
				TitleZH: "网关上的LOID与ITMS登记的不一致",
				Where: "e8sim: X_CT-COM_UserInfo.UserName is changed to a LOID ITMS does not know; the gateway registers again, ITMS answers Status 1 and the ONU is refused the PON " +
					"(PON Status Initializing, the WAN drops with ERROR_ISP_TIME_OUT); the diagnosis reads X_CT-COM_UserInfo.Status 1 (no such LOID)",
				Fix:   "Enter the LOID from the work order on the gateway exactly and register again.",
				FixZH: "按工单在网关上准确输入LOID后重新注册。",
			},
			inject: func(s *Site) error { return s.setLOID(wrongLOID, "", false) },
			clear: func(s *Site) error {
				return s.setLOID(s.Credentials.LOID.Reveal(), s.Credentials.LOIDPassword.Reveal(), true)
			},
		},
		{
			Fault: Fault{
				ID: "onu_not_authorised", Device: "e8", Finding: verdict.CodeONUNotAuthorised,
				Title:   "OLT does not authorise the ONU",
				TitleZH: "OLT未授权该ONU",
				Where: "testlab/operator: the OLT stops authorising the gateway's serial (ITMS gets no registration, the BRAS no PPPoE discovery); the ONU registers again, " +
					"times out (UserInfo Status 3) and is refused the PON: PON Status Initializing, the WAN drops with ERROR_ISP_TIME_OUT (no PADO)",
				Fix:   "With the LOID checked against the order, ask the OLT team to authorise the ONU (the gateway's serial) on this PON port, then register again.",
				FixZH: "核对LOID无误后，请OLT维护在该PON口授权该ONU（网关序列号），然后重新注册。",
			},
			inject: func(s *Site) error { return s.authoriseONU(false) },
			clear:  func(s *Site) error { return s.authoriseONU(true) },
		},
		{
			Fault: Fault{
				ID: "optical_rx_low", Device: "e8", Finding: verdict.CodeOpticalRxLow,
				Title:   "Optical receive power too low (−29 dBm)",
				TitleZH: "光猫收光功率过低（−29 dBm）",
				Where:   "e8sim: the PON transceiver's RXPower reads −29 dBm (a dirty connector or a tight bend); the link stays up",
				Fix:     "Clean and re-seat both SC/APC connectors, straighten tight bends, and measure at the splitter port; if it is low there, call the line team.",
				FixZH:   "清洁并重新插好两端SC/APC连接头，理顺过度弯折，在分光器端口测光；若该处也偏低，报线路维护。",
			},
			inject: func(s *Site) error { return s.Gateway.SetRxPower(-29) },
			clear:  func(s *Site) error { return s.Gateway.SetRxPower(0) },
		},
		{
			Fault: Fault{
				ID: "optical_rx_high", Device: "e8", Finding: verdict.CodeOpticalRxHigh,
				Title:   "Optical receive power too high (−6 dBm)",
				TitleZH: "光猫收光功率过高（−6 dBm）",
				Where:   "e8sim: the PON transceiver's RXPower reads −6 dBm (close to the OLT, no attenuator); the link stays up",
				Fix:     "Fit an SC/APC attenuator (5 or 10 dB) at the ONU so the power falls inside the range.",
				FixZH:   "在光猫侧加装SC/APC光衰减器（5或10 dB），使光功率落入正常范围。",
			},
			inject: func(s *Site) error { return s.Gateway.SetRxPower(-6) },
			clear:  func(s *Site) error { return s.Gateway.SetRxPower(0) },
		},
		{
			Fault: Fault{
				ID: "fibre_unplugged", Device: "e8", Finding: verdict.CodeOpticalNoLight,
				Title:   "Fibre unplugged (no light, LOS)",
				TitleZH: "光纤未插（无光，LOS）",
				Where:   "e8sim: the drop fibre is out: RXPower reads no light, the PON interface NoSignal, and the WAN drops with ERROR_NO_CARRIER until it is back",
				Fix:     "Click the drop fibre into the PON port, check the run for breaks, and measure at the splitter port; with no light there, call the line team.",
				FixZH:   "把皮线光纤插紧PON口，沿线检查断纤，在分光器端口测光；若无光请联系线路维护。",
			},
			inject: func(s *Site) error { return s.Gateway.SetFibre(false) },
			clear: func(s *Site) error {
				if err := s.Gateway.SetFibre(true); err != nil {
					return err
				}
				return s.waitWAN("")
			},
		},
		{
			Fault: Fault{
				ID: "lan_cable_wrong_pair", Device: "e8", Finding: verdict.CodeLANLinkDegraded,
				Title:   "LAN cable with a bad pair: LAN1 links at 100 Mbit/s",
				TitleZH: "网线线序错误：LAN1只协商到百兆",
				Where:   "e8sim: LAN1 (LANEthernetInterfaceConfig.1) links at 100 Mbit/s full duplex instead of 1000",
				Fix:     "Re-crimp both ends of the LAN1 cable in the same order (T568B) and test it; gigabit needs all four pairs.",
				FixZH:   "LAN1网线两端按相同线序（T568B）重新压接并测试；千兆需要四对线全通。",
			},
			inject: func(s *Site) error {
				return s.Gateway.ApplyLocal(map[string]string{e8LAN1 + "Status": "Up", e8LAN1 + "MaxBitRate": "100", e8LAN1 + "DuplexMode": "Full"})
			},
			clear: func(s *Site) error {
				return s.Gateway.ApplyLocal(map[string]string{e8LAN1 + "Status": "Up", e8LAN1 + "MaxBitRate": "1000", e8LAN1 + "DuplexMode": "Full"})
			},
		},
		{
			Fault: Fault{
				ID: "wan_vlan_wrong", Device: "e8", Finding: verdict.CodePPPoENoServer,
				Title:   "Internet WAN on the wrong VLAN",
				TitleZH: "上网WAN的VLAN错误",
				Where: "e8sim + testlab/operator: the BRAS answers PPPoE discovery only on the WAN's VLAN, the WAN's PON link is tagged with VLAN 46 instead; " +
					"the gateway redials and gets no PADO (ERROR_ISP_TIME_OUT)",
				Fix:   "Set the internet WAN's VLAN to the one on the work order and redial.",
				FixZH: "把上网WAN的VLAN改为工单上的VLAN后重新拨号。",
			},
			inject: func(s *Site) error { return s.setWrongVLAN() },
			clear:  func(s *Site) error { return s.restoreVLAN() },
		},
		{
			Fault: Fault{
				ID: "dns_server_down", Device: "e8", Finding: verdict.CodeDNSFailing,
				Title:   "Operator DNS server does not answer",
				TitleZH: "运营商DNS服务器无响应",
				Where:   "testlab/operator DNS (Site.DNSAddr): the resolver stops answering queries; ping still gets through",
				Fix:     "Point the computer (or the gateway's LAN DNS) at a working resolver, compare with the WAN's DNS servers, and report the operator's resolver as down.",
				FixZH:   "把电脑（或网关LAN侧DNS）改为可用的DNS服务器，与WAN获取的DNS对比，并报告运营商DNS故障。",
			},
			inject: func(s *Site) error { return s.setDNSAnswering(false) },
			clear:  func(s *Site) error { return s.setDNSAnswering(true) },
		},
		{
			Fault: Fault{
				ID: "lan_dhcp_off", Device: "e8", Finding: verdict.CodeLANDHCPOff,
				Title:   "Gateway's LAN DHCP server switched off",
				TitleZH: "网关LAN侧DHCP服务被关闭",
				Where:   "e8sim: LANHostConfigManagement.DHCPServerEnable is 0",
				Fix:     "Turn the gateway's LAN DHCP server on, then renew the lease on the computer.",
				FixZH:   "开启网关LAN侧DHCP服务，然后在电脑上重新获取地址。",
			},
			inject: func(s *Site) error { return s.Gateway.ApplyLocal(map[string]string{e8DHCPServer: "0"}) },
			clear:  func(s *Site) error { return s.Gateway.ApplyLocal(map[string]string{e8DHCPServer: "1"}) },
		},
		{
			Fault: Fault{
				ID: "wifi_congested", Device: "e8", Finding: verdict.CodeWiFiCongested,
				Title:   "2.4 GHz Wi-Fi fixed on a crowded, overlapping channel",
				TitleZH: "2.4 GHz Wi-Fi固定在拥挤的重叠信道上",
				Where:   "e8sim: SSID1 (WLANConfiguration.1) has AutoChannelEnable 0 on channel 3, which overlaps channels 1 and 6",
				Fix:     "Turn automatic channel selection on (or pick the clearest of 1, 6 and 11) and move devices to 5 GHz.",
				FixZH:   "开启自动信道选择（或在1、6、11中选最空闲的），并让终端连接5 GHz。",
			},
			inject: func(s *Site) error {
				return s.Gateway.ApplyLocal(map[string]string{e8WLAN1 + "AutoChannelEnable": "0", e8WLAN1 + "Channel": congestedChannel})
			},
			clear: func(s *Site) error {
				return s.Gateway.ApplyLocal(map[string]string{e8WLAN1 + "AutoChannelEnable": "1", e8WLAN1 + "Channel": "6"})
			},
		},
		{
			Fault: Fault{
				ID: "firmware_outdated", Device: "e8", Finding: verdict.CodeFirmwareOutdated,
				Title:   "Gateway firmware older than the order requires",
				TitleZH: "网关固件版本低于工单要求",
				Where:   "e8sim: DeviceInfo.SoftwareVersion is " + oldFirmware + ", below the orders' RequiredFirmware " + SampleFirmware + " (the diagnosis needs the firmware_required fact from the order)",
				Fix:     "Upgrade the gateway to the order's required firmware, then check the version.",
				FixZH:   "将网关升级到工单要求的固件，然后确认版本。",
			},
			inject: func(s *Site) error { return s.Gateway.ApplyLocal(map[string]string{e8SoftwareVers: oldFirmware}) },
			clear:  func(s *Site) error { return s.Gateway.ApplyLocal(map[string]string{e8SoftwareVers: SampleFirmware}) },
		},
	}
}

// internetWAN returns the gateway's PPP WAN instance carrying INTERNET.
func (s *Site) internetWAN() (string, error) {
	for _, p := range s.Gateway.Tree().Snapshot() {
		if strings.HasPrefix(p.Name, e8WANConnDevs) && strings.HasSuffix(p.Name, ".X_CT-COM_ServiceList") &&
			strings.Contains(p.Name, ".WANPPPConnection.") && strings.Contains(strings.ToUpper(p.Value), "INTERNET") {
			return strings.TrimSuffix(p.Name, "X_CT-COM_ServiceList"), nil
		}
	}
	return "", errors.New("the gateway has no INTERNET PPPoE WAN: start the site with Gateway: GatewayInstalled")
}

// waitWAN waits until the INTERNET WAN reads lastErr (Disconnected), or
// with lastErr "" until it is Connected.
func (s *Site) waitWAN(lastErr string) error {
	inst, err := s.internetWAN()
	if err != nil {
		return err
	}
	t := s.Gateway.Tree()
	return waitFor(func() bool {
		if lastErr == "" {
			return t.Value(inst+"ConnectionStatus") == "Connected"
		}
		return t.Value(inst+"LastConnectionError") == lastErr && t.Value(inst+"ConnectionStatus") != "Connected"
	}, "WAN "+orConnected(lastErr))
}

func orConnected(lastErr string) string {
	if lastErr == "" {
		return "Connected"
	}
	return lastErr
}

// waitFor polls cond until it holds or e8FaultWait passes.
func waitFor(cond func() bool, what string) error {
	deadline := time.Now().Add(e8FaultWait)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: waited %s for %s", errE8FaultTimeout, e8FaultWait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// setPPPoEPassword writes the INTERNET WAN's password as the gateway's
// local page does (it redials) and waits for lastErr ("" for Connected).
func (s *Site) setPPPoEPassword(pw, lastErr string) error {
	inst, err := s.internetWAN()
	if err != nil {
		return err
	}
	if err := s.Gateway.ApplyLocal(map[string]string{inst + "Password": pw}); err != nil {
		return err
	}
	return s.waitWAN(lastErr)
}

// redialUntil redials the gateway's WANs and waits for lastErr ("" for
// Connected).
func (s *Site) redialUntil(lastErr string) error {
	if err := s.Gateway.Redial(); err != nil {
		return err
	}
	return s.waitWAN(lastErr)
}

// setLOID writes the LOID (and its password, if set) on the gateway, which
// registers with ITMS, and waits for the outcome: registered and the WAN
// up, or refused and the WAN down.
func (s *Site) setLOID(loid, password string, registered bool) error {
	v := map[string]string{e8UserInfo + "UserName": loid}
	if password != "" {
		v[e8UserInfo+"UserId"] = password
	}
	if err := s.Gateway.ApplyLocal(v); err != nil {
		return err
	}
	t := s.Gateway.Tree()
	if err := waitFor(func() bool {
		st := t.Value(e8UserInfo + "Status")
		return st != "99" && (st == "0") == registered
	}, "the LOID registration"); err != nil {
		return err
	}
	if registered {
		return s.waitWAN("")
	}
	return s.waitWAN("ERROR_ISP_TIME_OUT")
}

// authoriseONU makes the OLT authorise the gateway or not, and the
// gateway register again.
func (s *Site) authoriseONU(ok bool) error {
	s.Operator.AuthoriseONU(SampleGatewaySN, ok)
	if err := s.Gateway.RegisterAgain(); err != nil {
		return err
	}
	if ok {
		return s.waitWAN("")
	}
	return s.waitWAN("ERROR_ISP_TIME_OUT")
}

// vlanValues are the parameters that tag the WAN connection inst with
// vlan (0: untagged) on the gateway's access.
func (s *Site) vlanValues(inst string, vlan int) map[string]string {
	wcd := inst[:strings.Index(inst, ".WANPPPConnection.")+1]
	link := ""
	switch s.Gateway.Tree().Value(e8Root + "WANDevice.1.WANCommonInterfaceConfig.WANAccessType") {
	case "GPON":
		link = wcd + "X_CT-COM_WANGponLinkConfig."
	case "EPON":
		link = wcd + "X_CT-COM_WANEponLinkConfig."
	default:
		return map[string]string{inst + "X_CT-COM_VLANIDMark": strconv.Itoa(vlan)}
	}
	mode := "2"
	if vlan == 0 {
		mode = "0"
	}
	return map[string]string{link + "Mode": mode, link + "VLANIDMark": strconv.Itoa(vlan)}
}

// setWrongVLAN makes the BRAS serve the WAN's VLAN only, puts another on
// the WAN and redials.
func (s *Site) setWrongVLAN() error {
	inst, err := s.internetWAN()
	if err != nil {
		return err
	}
	vlan := s.Gateway.WANVLAN(inst)
	s.Operator.ServeInternetVLAN(vlan)
	wrong := wrongVLAN
	if vlan == wrong {
		wrong++
	}
	if err := s.Gateway.ApplyLocal(s.vlanValues(inst, wrong)); err != nil {
		return err
	}
	return s.redialUntil("ERROR_ISP_TIME_OUT")
}

// restoreVLAN puts the operator's VLAN back on the WAN, lets the BRAS
// answer on any VLAN again and redials.
func (s *Site) restoreVLAN() error {
	inst, err := s.internetWAN()
	if err != nil {
		return err
	}
	vlan, _ := s.Operator.InternetVLAN()
	if err := s.Gateway.ApplyLocal(s.vlanValues(inst, vlan)); err != nil {
		return err
	}
	s.Operator.ServeAnyVLAN()
	return s.redialUntil("")
}

func (s *Site) setDNSAnswering(on bool) error {
	if s.DNS == nil {
		return errors.New("the site runs no DNS server")
	}
	s.DNS.SetAnswering(on)
	return nil
}
