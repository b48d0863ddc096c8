package testlab

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/diagnostics/verdict"
	"fieldagent/testlab/stbsim"
)

// The site's IPTV cabling and the service faults' settings.
const (
	// STBPort is the gateway LAN port the set-top box is cabled to: LAN4,
	// the e8's IPTV port (drivers/e8 ConfigureIPTV binds it by default).
	STBPort = 4
	// multicastLossRate is the share of TS packets the head-end drops
	// under the multicast_loss fault.
	multicastLossRate = 0.02
	// faultTimeout bounds an injection that waits for a device (an EPG
	// authentication, an XT-2 redial or binding).
	faultTimeout = 15 * time.Second
	// pathCacheFor is how long the IPTV path read from the gateway is
	// reused by the head-end's gate (it asks before every datagram).
	pathCacheFor = 50 * time.Millisecond
)

// The XT-2 configuration the faults change.
const (
	xt2Dialer   = "interface Dialer1"
	xt2NAT      = "nat outbound"
	xt2BBMS     = "bbms bind customer"
	xt2CHAPPass = "ppp chap password"
	xt2PAPUser  = "ppp pap local-user"
)

// serviceFaultState is what the service faults saved at injection, for
// ClearFault to put back. InjectFault and ClearFault hold s.faults.mu
// while they run, which guards it.
type serviceFaultState struct {
	lanInterface string         // iptv_vlan_not_bound: the IPTV WAN's binding
	snooping     string         // igmp_snooping_off: SnoopingEnable
	stbAccount   stbsim.Account // stb_account_wrong
	lossRate     float64        // multicast_loss: the head-end's loss rate
	natLine      string         // xt2_nat_missing
	bbmsLine     string         // xt2_not_bound_bbms
	bbmsServer   string         // xt2_not_bound_bbms: the customer BBMS held
	pppLines     [][3]string    // xt2_pppoe_wrong_password: prefix, line, key
}

// connectIPTV cables the set-top box to the gateway's LAN4 and the
// head-end behind the gateway: the box's stream (and the head-end's
// channel at that port, which the IPTV check joins) arrives only while the
// gateway's IPTV WAN is bound to LAN4 and its IGMP proxy is on; the box
// also loses what the head-end drops. Without a gateway everything arrives.
func (s *Site) connectIPTV() {
	delivers := s.stbPortDelivers()
	if s.STB != nil {
		s.STB.SetFeed(func(string) (bool, float64) {
			loss := 0.0
			if s.HeadEnd != nil {
				loss = s.HeadEnd.LossRate()
			}
			return delivers(), loss
		})
	}
	if s.HeadEnd != nil && s.Gateway != nil {
		s.HeadEnd.SetGate(delivers)
	}
}

// stbPortDelivers returns whether IPTV reaches the set-top box's port now,
// read from the gateway's configuration at most every pathCacheFor.
func (s *Site) stbPortDelivers() func() bool {
	if s.Gateway == nil {
		return func() bool { return true }
	}
	var (
		mu sync.Mutex
		at time.Time
		ok bool
	)
	return func() bool {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(at) >= pathCacheFor {
			ok, at = s.Gateway.IPTVPath(STBPort).Delivers(), now
		}
		return ok
	}
}

// notApplicable is an injection error for a site whose device is not in the
// state the fault breaks.
func notApplicable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFaultNotApplicable, fmt.Sprintf(format, args...))
}

// serviceFaults are the faults of the IPTV service (set-top box, multicast)
// and of the XT-2. The IPTV faults on the gateway need its IPTV WAN (as
// drivers/e8 ConfigureIPTV leaves it), the XT-2 faults an XT-2 with routed
// internet and a BBMS binding (drivers/xt2 ConfigureInternet, BindBBMS),
// multicast_loss the head-end (Config.Multicast); otherwise InjectFault
// returns an error wrapping ErrFaultNotApplicable that says what to set up.
func serviceFaults() []faultDef {
	return []faultDef{
		{
			Fault: Fault{
				ID:      "iptv_vlan_not_bound",
				Title:   "The IPTV WAN is not bound to the set-top box's port: no picture",
				TitleZH: "IPTV WAN未绑定机顶盒端口：无图像",
				Device:  "itv",
				Where:   "e8 gateway: LAN4 taken out of the IPTV WAN's X_CT-COM_LanInterface; the set-top box on LAN4 (and the head-end's channel there) then receives no multicast",
				Finding: verdict.CodeIPTVPortNotBound,
				Fix:     "Bind LAN4 (the set-top box's port) to the IPTV WAN again: the e8 IPTV setup (fieldagent's ConfigureIPTV), or port binding in the gateway's web page; then change channel.",
				FixZH:   "把LAN4（机顶盒端口）重新绑定到IPTV WAN：fieldagent的IPTV配置步骤，或网关页面的端口绑定；然后重新切换频道。",
			},
			inject: injectIPTVUnbound,
			clear:  clearIPTVUnbound,
		},
		{
			Fault: Fault{
				ID:      "igmp_snooping_off",
				Title:   "IGMP snooping is off for IPTV: multicast floods every port",
				TitleZH: "IPTV的IGMP snooping被关闭：组播泛洪到所有端口",
				Device:  "itv",
				Where:   "e8 gateway: Services.X_CT-COM_IPTV.SnoopingEnable set to 0 (the proxy stays on, so the picture still arrives)",
				Finding: verdict.CodeIGMPOff,
				Fix:     "Turn IGMP snooping back on (with the proxy) for the IPTV service: the e8 IPTV setup with snooping, or IGMP in the gateway's web page.",
				FixZH:   "为IPTV业务重新开启IGMP snooping（及代理）：fieldagent的IPTV配置步骤，或网关页面的IGMP设置。",
			},
			inject: injectSnoopingOff,
			clear:  clearSnoopingOff,
		},
		{
			Fault: Fault{
				ID:      "stb_account_wrong",
				Title:   "The set-top box carries a wrong iTV password: the EPG refuses it",
				TitleZH: "机顶盒iTV账号密码错误：EPG认证失败",
				Device:  "itv",
				Where:   "set-top box: ServiceInfo.UserIDPassword is not the EPG's (the sample iTV account, the site's EPG, if the box had none); it authenticates again and UserStatus reads 2",
				Finding: verdict.CodeSTBAuthFailed,
				Fix:     "Enter the iTV account and password from the order on the set-top box again (fieldagent's set-top box account step) and wait for it to authenticate.",
				FixZH:   "按工单重新在机顶盒上输入iTV账号和密码（fieldagent的机顶盒账号配置步骤），等待认证成功。",
			},
			inject: injectSTBAccountWrong,
			clear:  clearSTBAccountWrong,
		},
		{
			Fault: Fault{
				ID:      "multicast_loss",
				Title:   "The IPTV multicast loses packets: mosaic and freezes",
				TitleZH: "IPTV组播丢包：马赛克、卡顿",
				Device:  "itv",
				Where:   "iTV head-end (testlab/mcast, Config.Multicast): 2% of the channel's TS packets dropped; the IPTV check measures MLR > 0, the set-top box counts discontinuities",
				Finding: verdict.CodeIPTVMulticastLoss,
				Fix:     "Check the path to the set-top box (a direct good cable, no Wi-Fi or powerline bridge) and the line readings; if the loss is already upstream of the gateway, report the channel and the MLR to the IPTV team.",
				FixZH:   "检查到机顶盒的链路（良好网线直连，不经无线或电力猫）和线路指标；如丢包在网关上游，将频道和MLR报给IPTV维护。",
			},
			inject: injectMulticastLoss,
			clear:  clearMulticastLoss,
		},
		{
			Fault: Fault{
				ID:      "xt2_not_bound_bbms",
				Title:   "The XT-2 is not bound to its customer in BBMS",
				TitleZH: "XT-2未在BBMS中绑定客户",
				Device:  "xt2",
				Where:   "XT-2: `bbms bind customer` taken out of the running configuration (display bbms binding and SNMP bbmsBound say not bound) and the binding removed in BBMS",
				Finding: verdict.CodeXT2NotBound,
				Fix:     "Bind the router to the order's BBMS customer ID (fieldagent's XT-2 bind step, or `bbms bind customer <ID>` and commit) with the WAN up, and save.",
				FixZH:   "在WAN连通时按工单BBMS客户编号绑定路由器（fieldagent的XT-2绑定步骤，或 bbms bind customer <编号> 后提交），并保存配置。",
			},
			inject: injectXT2Unbound,
			clear:  clearXT2Unbound,
		},
		{
			Fault: Fault{
				ID:      "xt2_nat_missing",
				Title:   "The XT-2's dialer has no NAT: the LAN gets no internet",
				TitleZH: "XT-2拨号口缺少NAT：内网无法上网",
				Device:  "xt2",
				Where:   "XT-2: `nat outbound` taken out of interface Dialer1 in the running configuration; PPPoE stays up",
				Finding: verdict.CodeNATMissing,
				Fix:     "Put NAT back on the dialer: `interface Dialer1`, `nat outbound 3000`, commit and save (or run fieldagent's XT-2 internet setup again).",
				FixZH:   "在拨号口恢复NAT：interface Dialer1 下执行 nat outbound 3000，提交并保存（或重新运行fieldagent的XT-2上网配置）。",
			},
			inject: injectXT2NATMissing,
			clear:  clearXT2NATMissing,
		},
		{
			Fault: Fault{
				ID:      "xt2_pppoe_wrong_password",
				Title:   "The XT-2 dials with a wrong PPPoE password: the BRAS refuses it (691)",
				TitleZH: "XT-2 PPPoE密码错误：BRAS拒绝（691）",
				Device:  "xt2",
				Where:   "XT-2: the dialer's CHAP and PAP passwords replaced with a wrong one; it redials and the BRAS answers 691 (PPP IDLE, last error 691)",
				Finding: verdict.CodePPPoEAuthFailed,
				Fix:     "Enter the PPPoE account and password from the order on the XT-2 again (fieldagent's XT-2 internet setup), commit and save.",
				FixZH:   "按工单在XT-2上重新输入宽带账号和密码（fieldagent的XT-2上网配置），提交并保存。",
			},
			inject: injectXT2WrongPassword,
			clear:  clearXT2WrongPassword,
		},
	}
}

func faultCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), faultTimeout)
}

// iptvWAN returns the gateway's IPTV path to the set-top box's port, or an
// error when there is no gateway or no IPTV WAN to break.
func (s *Site) iptvWAN() (string, string, error) {
	if s.Gateway == nil {
		return "", "", notApplicable("the site has no e8 gateway")
	}
	p := s.Gateway.IPTVPath(STBPort)
	if p.WAN == "" {
		return "", "", notApplicable("the gateway has no IPTV WAN: configure IPTV first (drivers/e8 ConfigureIPTV, LAN4)")
	}
	return p.WAN, p.LanInterface, nil
}

func injectIPTVUnbound(s *Site) error {
	wan, binding, err := s.iptvWAN()
	if err != nil {
		return err
	}
	port := "LANDevice.1.LANEthernetInterfaceConfig." + strconv.Itoa(STBPort)
	var keep []string
	for _, b := range strings.Split(binding, ",") {
		if b = strings.TrimSpace(b); b != "" && !strings.HasSuffix(strings.TrimSuffix(b, "."), port) {
			keep = append(keep, b)
		}
	}
	if err := s.Gateway.Tree().SetValue(wan+"X_CT-COM_LanInterface", strings.Join(keep, ",")); err != nil {
		return err
	}
	s.svc.lanInterface = binding
	return nil
}

func clearIPTVUnbound(s *Site) error {
	wan, _, err := s.iptvWAN()
	if err != nil {
		return err
	}
	return s.Gateway.Tree().SetValue(wan+"X_CT-COM_LanInterface", s.svc.lanInterface)
}

const snoopingParam = "InternetGatewayDevice.Services.X_CT-COM_IPTV.SnoopingEnable"

func injectSnoopingOff(s *Site) error {
	if _, _, err := s.iptvWAN(); err != nil {
		return err
	}
	s.svc.snooping = s.Gateway.Tree().Value(snoopingParam)
	return s.Gateway.Tree().SetValue(snoopingParam, "0")
}

func clearSnoopingOff(s *Site) error {
	if s.Gateway == nil {
		return notApplicable("the site has no e8 gateway")
	}
	return s.Gateway.Tree().SetValue(snoopingParam, s.svc.snooping)
}

func injectSTBAccountWrong(s *Site) error {
	before := s.STB.Account()
	wrong := before
	if wrong.UserID == "" || wrong.AuthURL == "" {
		wrong = stbsim.Account{UserID: SampleIPTVAccount, AuthURL: s.EPGURL}
	}
	// The EPG's password with a character in front is never the EPG's.
	wrong.Password = secret.New("0" + s.Credentials.IPTVPassword.Reveal())
	ctx, cancel := faultCtx()
	defer cancel()
	if err := s.STB.SetAccount(ctx, wrong); err != nil {
		return err
	}
	s.svc.stbAccount = before
	return nil
}

func clearSTBAccountWrong(s *Site) error {
	ctx, cancel := faultCtx()
	defer cancel()
	return s.STB.SetAccount(ctx, s.svc.stbAccount)
}

func injectMulticastLoss(s *Site) error {
	if s.HeadEnd == nil {
		return notApplicable("the site runs no iTV head-end: start it with Config.Multicast")
	}
	before := s.HeadEnd.LossRate()
	if err := s.HeadEnd.SetLossRate(multicastLossRate); err != nil {
		return err
	}
	s.svc.lossRate = before
	return nil
}

func clearMulticastLoss(s *Site) error {
	return s.HeadEnd.SetLossRate(s.svc.lossRate)
}

func injectXT2Unbound(s *Site) error {
	line, ok := s.XT2.ConfigLine("", xt2BBMS)
	if !ok {
		return notApplicable("the XT-2 is not bound to BBMS yet: bind it first (drivers/xt2 BindBBMS)")
	}
	ctx, cancel := faultCtx()
	defer cancel()
	s.XT2.ChangeConfig(ctx, "", xt2BBMS, 0, true)
	s.svc.bbmsLine = line
	s.svc.bbmsServer, _ = s.BBMS.Unbind(s.XT2.Serial())
	return nil
}

func clearXT2Unbound(s *Site) error {
	ctx, cancel := faultCtx()
	defer cancel()
	// The router binds again on commit: BBMS gets the binding back from it.
	s.XT2.ChangeConfig(ctx, "", s.svc.bbmsLine, 3, false)
	if st := s.XT2.State(); !st.BBMSBound {
		return fmt.Errorf("the XT-2 did not bind again: %s", st.BBMSError)
	}
	return nil
}

func injectXT2NATMissing(s *Site) error {
	line, ok := s.XT2.ConfigLine(xt2Dialer, xt2NAT)
	if !ok {
		return notApplicable("the XT-2's dialer has no NAT to take away: configure routed internet first (drivers/xt2 ConfigureInternet)")
	}
	ctx, cancel := faultCtx()
	defer cancel()
	s.XT2.ChangeConfig(ctx, xt2Dialer, xt2NAT, 0, true)
	s.svc.natLine = line
	return nil
}

func clearXT2NATMissing(s *Site) error {
	ctx, cancel := faultCtx()
	defer cancel()
	s.XT2.ChangeConfig(ctx, xt2Dialer, s.svc.natLine, 2, false)
	return nil
}

func injectXT2WrongPassword(s *Site) error {
	var saved [][3]string
	for _, p := range []struct {
		prefix string
		key    int
	}{{xt2CHAPPass, 3}, {xt2PAPUser, 2}} {
		if line, ok := s.XT2.ConfigLine(xt2Dialer, p.prefix); ok {
			saved = append(saved, [3]string{p.prefix, line, strconv.Itoa(p.key)})
		}
	}
	if len(saved) == 0 {
		return notApplicable("the XT-2's dialer has no PPPoE password: configure routed internet first (drivers/xt2 ConfigureInternet)")
	}
	ctx, cancel := faultCtx()
	defer cancel()
	for _, sv := range saved {
		w := strings.Fields(sv[1])
		// The password is the word after "cipher"; prefix it so it is wrong.
		for i := 0; i+1 < len(w); i++ {
			if w[i] == "cipher" {
				w[i+1] = "0" + w[i+1]
			}
		}
		key, _ := strconv.Atoi(sv[2])
		s.XT2.ChangeConfig(ctx, xt2Dialer, strings.Join(w, " "), key, false)
	}
	s.svc.pppLines = saved
	return nil
}

func clearXT2WrongPassword(s *Site) error {
	ctx, cancel := faultCtx()
	defer cancel()
	for _, sv := range s.svc.pppLines {
		key, _ := strconv.Atoi(sv[2])
		s.XT2.ChangeConfig(ctx, xt2Dialer, sv[1], key, false)
	}
	return nil
}
