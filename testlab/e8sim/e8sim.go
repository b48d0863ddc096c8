// Package e8sim is a simulated China Telecom e8 home gateway for testlab. It
// is a real TR-069 CPE (tr069/cpe) with a TR-098 + X_CT-COM data model, and
// it has behaviour behind its parameters:
//
//   - enabling a WANPPPConnection dials the operator's BRAS (testlab/operator)
//     with the configured account; the WAN comes up with an address only when
//     the BRAS accepts it, otherwise LastConnectionError reads
//     ERROR_AUTHENTICATION_FAILURE (PPP 691);
//   - writing X_CT-COM_UserInfo.UserName/Password registers the LOID with the
//     simulated ITMS and updates Status/Result with its answer;
//   - passwords are write-only, as on real gateways: they read back empty;
//   - Config.Preinstall starts it as an installed gateway (INTERNET WAN and
//     registered LOID already there) that registers and dials on its own;
//   - the parameter tree is the embedded e8 data model (tr069/datamodel);
//   - the lab puts faults on it with knobs (link.go): the optical power, the
//     fibre, local changes (ApplyLocal), a redial and a new registration;
//     on a PON uplink a refused registration keeps the ONU off the PON.
package e8sim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/operator"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/datamodel"
)

const (
	root       = "InternetGatewayDevice."
	devInfo    = root + "DeviceInfo."
	mgmt       = root + "ManagementServer."
	wanDev     = root + "WANDevice.1."
	wanConnDev = wanDev + "WANConnectionDevice.1."
	pppTable   = wanConnDev + "WANPPPConnection."
	userInfo   = root + "X_CT-COM_UserInfo."
)

// Config describes one simulated gateway.
type Config struct {
	// ACSURL is the ACS the gateway informs to.
	ACSURL string
	// Vendor, Model, OUI, ProductClass, Serial, Firmware and Hardware are
	// what DeviceInfo reports.
	Vendor, Model, OUI, ProductClass, Serial, Firmware, Hardware string
	// Access is lan, adsl, epon or gpon.
	Access string
	// Class is "e8-B" (a data gateway) or "e8-C" (with voice ports, whose
	// DeviceSummary lists the VoiceService profile); "" means e8-C on PON
	// uplinks and e8-B on LAN and ADSL.
	Class string
	// ACSUsername and ACSPassword, if set, are what the gateway answers
	// the ACS's HTTP authentication challenge with.
	ACSUsername string
	ACSPassword secret.Secret
	// ConnReqUsername and ConnReqPassword protect connection requests.
	ConnReqUsername string
	ConnReqPassword secret.Secret
	// OperatorURL and OperatorToken reach the BRAS and ITMS. An empty
	// OperatorURL is a gateway without an operator network (a load-test
	// fleet): it informs and answers the ACS, but a dial ends in
	// ERROR_ISP_TIME_OUT and a LOID registration fails.
	OperatorURL   string
	OperatorToken secret.Secret
	// RxPowerDBm is the optical receive power for EPON/GPON (default -18.5).
	RxPowerDBm float64
	// OpticalEncoding is how the optical readings are written: "" or "dbm"
	// as decimal text (dBm, °C, V, mA), "sff8472" as the raw transceiver
	// units some vendors pass through (power in 0.1 µW, temperature in
	// 1/256 °C, voltage in 100 µV, bias in 2 µA).
	OpticalEncoding string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// HTTPClient, if nil, is a client with a 10 s timeout. It reaches the
	// operator (BRAS, ITMS).
	HTTPClient *http.Client
	// ACSHTTPClient, if set, carries the CWMP sessions to the ACS; nil is
	// the CPE engine's client (30 s timeout). The lab sets both clients to
	// dial from the gateway's network namespace (testlab/netsite).
	ACSHTTPClient *http.Client
	// ConnReqAddr is where the gateway listens for connection requests,
	// and its ConnectionRequestURL; "" is "127.0.0.1:0". Run opens the
	// listener in the network namespace of the thread it is called on.
	ConnReqAddr string
	// PeriodicInform, if positive, is the periodic inform interval (the
	// tree's PeriodicInformInterval reads it in whole seconds, at least 1,
	// until the ACS changes it); negative disables periodic informs
	// (PeriodicInformEnable 0); zero keeps the data model's default
	// (enabled, 3600 s).
	PeriodicInform time.Duration
	// RetryBase is the first wait after a failed CWMP session (doubling);
	// 0 is the cpe package's default (5 s, TR-069 3.2.1.1).
	RetryBase time.Duration
	// DataModel, if non-nil, is the parsed e8 data model the tree is built
	// from (datamodel.Builtin(datamodel.E8Gateway), parsed once for a
	// fleet: parsing is most of New's cost); the gateway only reads it.
	// Nil parses the built-in model.
	DataModel *datamodel.Model
	// Preinstall, if set, makes the gateway an installed one rather than a
	// factory-fresh one: it carries the INTERNET PPPoE WAN and the LOID a
	// completed install leaves, and at Run it registers with ITMS and dials
	// on its own. A FactoryReset from the ACS still returns it to factory
	// state.
	Preinstall *Preinstall
}

// Gateway is one simulated e8 gateway.
type Gateway struct {
	cfg    Config
	tree   *cpe.Tree
	engine *cpe.Engine
	log    *slog.Logger
	hc     *http.Client

	mu     sync.Mutex
	runCtx context.Context
	wans   map[string]bool // WANPPPConnection instances the ACS configured
	wg     sync.WaitGroup
	faults []setFault // injected SetParameterValues faults, oldest first
	cuts   []linkCut  // injected session drops, oldest first
	cutNow bool       // the request being handled drops after applying

	diag diagnostics // TR-143 / TR-098 diagnostics tests (diag.go)

	installed bool // Config.Preinstall was applied: Run boots the install

	link linkState // the uplink's faults (link.go)
}

// linkCut is one injected session drop: the next ACS request match accepts
// is left unanswered and the connection closed, before or after the
// gateway applied it.
type linkCut struct {
	match      func(m cwmp.Message) bool
	afterApply bool
}

// CutSessionWhere makes the gateway drop its CWMP session (close the TCP
// connection, send no response) at the next ACS request match accepts, as
// a gateway whose uplink fails half-way through a change would. With
// afterApply a SetParameterValues or AddObject is applied first — the ACS
// cannot know it was — otherwise the request is lost unapplied. The
// gateway answers connection requests again at once. Several calls queue.
func (g *Gateway) CutSessionWhere(match func(m cwmp.Message) bool, afterApply bool) {
	g.mu.Lock()
	g.cuts = append(g.cuts, linkCut{match: match, afterApply: afterApply})
	g.mu.Unlock()
}

// beforeRPC takes the first queued cut matching m.
func (g *Gateway) beforeRPC(_ context.Context, m cwmp.Message) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, c := range g.cuts {
		if !c.match(m) {
			continue
		}
		g.cuts = append(g.cuts[:i:i], g.cuts[i+1:]...)
		switch m.(type) {
		case *cwmp.SetParameterValues, *cwmp.AddObject:
			if c.afterApply {
				g.cutNow = true
				return nil
			}
		}
		return cpe.ErrDropSession
	}
	return nil
}

// takeCut reports whether the request just applied is to be dropped.
func (g *Gateway) takeCut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	cut := g.cutNow
	g.cutNow = false
	return cut
}

// setFault is one injected fault: the next SetParameterValues that writes a
// parameter match accepts is refused with code.
type setFault struct {
	match func(name string) bool
	code  int
}

// FailNextSet makes the next SetParameterValues fail with the CWMP fault
// code (e.g. cwmp.FaultInternalError), as a gateway that loses its
// configuration store half-way would. The tree is left unchanged by that
// request, as CWMP requires.
func (g *Gateway) FailNextSet(code int) { g.FailSetWhere(nil, code) }

// FailSetWhere makes the next SetParameterValues that writes a parameter
// match accepts fail with code; a nil match accepts every parameter.
// Several calls queue several faults.
func (g *Gateway) FailSetWhere(match func(name string) bool, code int) {
	if match == nil {
		match = func(string) bool { return true }
	}
	g.mu.Lock()
	g.faults = append(g.faults, setFault{match: match, code: code})
	g.mu.Unlock()
}

// injectedFault returns the fault queued for this request, if any.
func (g *Gateway) injectedFault(changed []cwmp.ParameterValueStruct) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, f := range g.faults {
		for _, p := range changed {
			if f.match(p.Name) {
				g.faults = append(g.faults[:i:i], g.faults[i+1:]...)
				return cwmp.NewFault(f.code, "e8sim: injected fault")
			}
		}
	}
	return nil
}

// New builds the gateway's data model and CPE engine.
func New(cfg Config) (*Gateway, error) {
	if cfg.Serial == "" || cfg.ACSURL == "" {
		return nil, errors.New("e8sim: Serial and ACSURL are required")
	}
	if c := strings.ToLower(cfg.Class); c != "" && c != "e8-b" && c != "e8-c" {
		return nil, fmt.Errorf("e8sim: Class %q is not e8-B or e8-C", cfg.Class)
	}
	if cfg.RxPowerDBm == 0 {
		cfg.RxPowerDBm = -18.5
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, hc: cfg.HTTPClient, wans: map[string]bool{}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.hc == nil {
		g.hc = &http.Client{Timeout: 10 * time.Second}
	}
	if err := g.buildModel(); err != nil {
		return nil, fmt.Errorf("e8sim: %w", err)
	}
	e, err := cpe.New(cpe.Config{
		ACSURL:          cfg.ACSURL,
		ACSUsername:     cfg.ACSUsername,
		ACSPassword:     cfg.ACSPassword,
		DeviceId:        cwmp.DeviceIdStruct{Manufacturer: cfg.Vendor, OUI: cfg.OUI, ProductClass: cfg.ProductClass, SerialNumber: cfg.Serial},
		ConnReqAddr:     cmp.Or(cfg.ConnReqAddr, "127.0.0.1:0"),
		HTTPClient:      cfg.ACSHTTPClient,
		ConnReqUsername: cfg.ConnReqUsername,
		ConnReqPassword: cfg.ConnReqPassword,
		InformParams: []string{
			devInfo + "HardwareVersion", devInfo + "SoftwareVersion", devInfo + "ProvisioningCode",
			mgmt + "ParameterKey", wanDev + "WANCommonInterfaceConfig.WANAccessType",
		},
		Logger:                 g.log,
		PeriodicInformInterval: max(cfg.PeriodicInform, 0),
		RetryBase:              cfg.RetryBase,
		OnSet:                  g.onSet,
		OnDownload:             g.onDownload,
		BeforeRPC:              g.beforeRPC,
		OnAddObject:            func(context.Context, string, uint32) error { return g.cutErr() },
		Namespace:              cwmp.NS10,
	}, g.tree)
	if err != nil {
		return nil, fmt.Errorf("e8sim: %w", err)
	}
	g.engine = e
	if cfg.Preinstall != nil {
		if err := g.preinstall(*cfg.Preinstall); err != nil {
			return nil, fmt.Errorf("e8sim: %w", err)
		}
	}
	return g, nil
}

// buildModel loads the embedded e8 data model (tr069/datamodel) and fills in
// what makes this gateway itself: identity, uplink, optical readings, cabling.
func (g *Gateway) buildModel() error {
	m := g.cfg.DataModel
	if m == nil {
		var err error
		if m, err = datamodel.Builtin(datamodel.E8Gateway); err != nil {
			return err
		}
	}
	g.tree = cpe.NewTreeFromModel(m)
	c := g.cfg
	values := [][2]string{
		{devInfo + "Manufacturer", c.Vendor},
		{devInfo + "ManufacturerOUI", c.OUI},
		{devInfo + "ModelName", c.Model},
		{devInfo + "ProductClass", c.ProductClass},
		{devInfo + "SerialNumber", c.Serial},
		{devInfo + "SoftwareVersion", c.Firmware},
		{devInfo + "HardwareVersion", c.Hardware},
		{mgmt + "ConnectionRequestUsername", c.ConnReqUsername},
		{mgmt + "ConnectionRequestPassword", c.ConnReqPassword.Reveal()},
		{wanDev + "WANCommonInterfaceConfig.WANAccessType", accessParam(c.Access)},
		{root + "DeviceSummary", deviceSummary(g.tree.Value(root+"DeviceSummary"), c)},
		{root + "LANDevice.1.LANEthernetInterfaceConfig.1.Status", "Up"},
		{root + "LANDevice.1.LANEthernetInterfaceConfig.1.MaxBitRate", "1000"},
	}
	switch c.Access {
	case "epon":
		values = append(values, optical(wanDev+"X_CT-COM_EponInterfaceConfig.", c.OpticalEncoding, c.RxPowerDBm)...)
	case "gpon":
		values = append(values, optical(wanDev+"X_CT-COM_GponInterfaceConfig.", c.OpticalEncoding, c.RxPowerDBm)...)
	case "adsl":
		dsl := wanDev + "WANDSLInterfaceConfig."
		values = append(values, [][2]string{
			{dsl + "Status", "Up"}, {dsl + "UpstreamCurrRate", "1024"}, {dsl + "DownstreamCurrRate", "20480"},
			{dsl + "UpstreamNoiseMargin", "120"}, {dsl + "DownstreamNoiseMargin", "85"},
			{dsl + "UpstreamAttenuation", "120"}, {dsl + "DownstreamAttenuation", "240"},
			{dsl + "Stats.Total.CRCErrors", "3"},
		}...)
	}
	switch {
	case c.PeriodicInform > 0:
		secs := max(int64(c.PeriodicInform.Round(time.Second)/time.Second), 1)
		values = append(values, [2]string{mgmt + "PeriodicInformEnable", "1"}, [2]string{mgmt + "PeriodicInformInterval", fmt.Sprint(secs)})
	case c.PeriodicInform < 0:
		values = append(values, [2]string{mgmt + "PeriodicInformEnable", "0"})
	}
	values = append(values,
		[2]string{root + "LANDevice.1.LANEthernetInterfaceConfig.1.DuplexMode", "Full"},
		[2]string{root + "LANDevice.1.WLANConfiguration.1.Enable", "1"},
		[2]string{root + "LANDevice.1.WLANConfiguration.1.Status", "Up"},
		[2]string{root + "LANDevice.1.WLANConfiguration.1.SSID", "ChinaNet-" + lastN(c.Serial, 4)},
		[2]string{root + "LANDevice.1.WLANConfiguration.1.TotalAssociations", "2"},
	)
	for _, kv := range values {
		if err := g.tree.SetValue(kv[0], kv[1]); err != nil {
			return fmt.Errorf("e8 model: %s: %w", kv[0], err)
		}
	}
	return nil
}

// optical returns a PON transceiver's readings (Tx +2.5 dBm, 45.5 °C,
// 3.3 V, 12 mA) in the vendor's encoding.
// deviceSummary adds the VoiceService profile of an e8-C gateway to the
// model's DeviceSummary.
func deviceSummary(base string, c Config) string {
	class := c.Class
	if class == "" {
		class = "e8-B"
		if c.Access == "epon" || c.Access == "gpon" {
			class = "e8-C"
		}
	}
	if strings.EqualFold(class, "e8-C") {
		return base + ", VoiceService:1.0[1](Endpoint:1, SIPEndpoint:1)"
	}
	return base
}

func optical(prefix, encoding string, rxDBm float64) [][2]string {
	const txDBm, tempC, volt, biasMA = 2.5, 45.5, 3.3, 12.0
	if encoding == "sff8472" {
		uw01 := func(dbm float64) string { return fmt.Sprintf("%d", int(math.Round(math.Pow(10, dbm/10)*1000*10))) }
		return [][2]string{
			{prefix + "Status", "Up"},
			{prefix + "RXPower", uw01(rxDBm)}, {prefix + "TXPower", uw01(txDBm)},
			{prefix + "TransceiverTemperature", fmt.Sprintf("%d", int(tempC*256))},
			{prefix + "SupplyVottage", fmt.Sprintf("%d", int(volt*10000))},
			{prefix + "BiasCurrent", fmt.Sprintf("%d", int(biasMA*500))},
		}
	}
	return [][2]string{
		{prefix + "Status", "Up"},
		{prefix + "RXPower", fmt.Sprintf("%.1f", rxDBm)}, {prefix + "TXPower", fmt.Sprintf("%.1f", txDBm)},
		{prefix + "TransceiverTemperature", fmt.Sprintf("%.1f", tempC)},
		{prefix + "SupplyVottage", fmt.Sprintf("%.2f", volt)},
		{prefix + "BiasCurrent", fmt.Sprintf("%.1f", biasMA)},
	}
}

func lastN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func accessParam(access string) string {
	switch access {
	case "adsl":
		return "DSL"
	case "epon":
		return "EPON"
	case "gpon":
		return "GPON"
	}
	return "Ethernet"
}

// Tree returns the gateway's parameter tree (tests read it).
func (g *Gateway) Tree() *cpe.Tree { return g.tree }

// Engine returns the CPE engine.
func (g *Gateway) Engine() *cpe.Engine { return g.engine }

// Run runs the gateway until ctx ends: it informs the ACS, answers
// connection requests and dials when asked. A preinstalled gateway
// (Config.Preinstall) also registers its LOID and dials its WAN at once.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	g.runCtx = ctx
	g.mu.Unlock()
	if g.installed {
		g.wg.Add(1)
		go func() { defer g.wg.Done(); g.boot(ctx) }()
	}
	err := g.engine.Run(ctx)
	g.wg.Wait()
	return err
}

// FirmwareMagic starts a simulated firmware image: "FA-FIRMWARE <model>
// <version>\n" (the model may hold spaces, the version not) and then any
// bytes. MakeFirmware builds one.
const FirmwareMagic = "FA-FIRMWARE"

// MakeFirmware returns a simulated firmware image for model and version.
func MakeFirmware(model, version string, size int) []byte {
	b := []byte(fmt.Sprintf("%s %s %s\n", FirmwareMagic, model, version))
	for len(b) < size {
		b = append(b, byte(len(b)))
	}
	return b
}

// onDownload fetches the file like a gateway does and, for a firmware image
// made for this model, installs it: SoftwareVersion reports the new version.
func (g *Gateway) onDownload(ctx context.Context, d cwmp.Download) error {
	data, err := g.engine.Fetch(ctx, d, 0)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(d.FileType, "1 ") {
		g.log.Info("e8sim: configuration file received", "bytes", len(data))
		return nil
	}
	line, _, _ := strings.Cut(string(data[:min(len(data), 256)]), "\n")
	rest, ok := strings.CutPrefix(line, FirmwareMagic+" ")
	i := strings.LastIndex(rest, " ")
	if !ok || i <= 0 {
		return cwmp.NewFault(cwmp.FaultDownloadCorrupted, "not a firmware image")
	}
	model, version := rest[:i], rest[i+1:]
	if model != g.cfg.Model {
		return cwmp.NewFault(cwmp.FaultDownloadCorrupted, fmt.Sprintf("image is for %s, this is a %s", model, g.cfg.Model))
	}
	if err := g.tree.SetValue(devInfo+"SoftwareVersion", version); err != nil {
		return cwmp.NewFault(cwmp.FaultInternalError, err.Error())
	}
	g.log.Info("e8sim: firmware upgraded", "version", version)
	// A gateway restarts into the new image: after this session's
	// TRANSFER COMPLETE it informs "1 BOOT".
	g.mu.Lock()
	runCtx := g.runCtx
	g.mu.Unlock()
	if runCtx != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := g.engine.Inform(runCtx, cwmp.EventStruct{EventCode: "1 BOOT"}); err != nil {
				g.log.Warn("e8sim: boot inform after the upgrade failed", "err", err)
			}
		}()
	}
	return nil
}

// onSet runs after the ACS changed parameters.
// cutErr is cpe.ErrDropSession when the request just applied is cut.
func (g *Gateway) cutErr() error {
	if g.takeCut() {
		return cpe.ErrDropSession
	}
	return nil
}

func (g *Gateway) onSet(_ context.Context, changed []cwmp.ParameterValueStruct) error {
	if err := g.injectedFault(changed); err != nil {
		g.takeCut()
		return err
	}
	if err := g.diagOnSet(changed); err != nil {
		g.takeCut()
		return err
	}
	cut := g.takeCut()
	g.react(changed)
	if cut {
		return cpe.ErrDropSession
	}
	return nil
}

// react does what the gateway does after its parameters changed, by the
// ACS or locally: it dials the PPP WANs that changed and registers a new
// LOID with ITMS.
func (g *Gateway) react(changed []cwmp.ParameterValueStruct) {
	dial := map[string]bool{}
	register := false
	for _, p := range changed {
		switch {
		case strings.HasPrefix(p.Name, pppTable):
			inst := p.Name[:len(pppTable)+strings.Index(p.Name[len(pppTable):], ".")+1]
			dial[inst] = true
		case p.Name == userInfo+"Password":
			register = true
		case p.Name == userInfo+"UserName", p.Name == userInfo+"UserId":
			register = true
		}
	}
	g.mu.Lock()
	ctx := g.runCtx
	g.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	for inst := range dial {
		g.mu.Lock()
		g.wans[inst] = true
		g.mu.Unlock()
		g.startDial(ctx, inst)
	}
	if register {
		if g.tree.Value(userInfo+"UserName") == "" {
			_ = g.tree.SetValue(userInfo+"Status", "99")
			_ = g.tree.SetValue(userInfo+"Result", "99")
		} else if limit, times := atoi(g.tree.Value(userInfo+"Limit")), atoi(g.tree.Value(userInfo+"Times")); limit > 0 && times >= limit {
			g.log.Info("e8sim: LOID registration attempts exhausted", "times", times, "limit", limit)
		} else {
			_ = g.tree.SetValue(userInfo+"Times", fmt.Sprint(times+1))
			_ = g.tree.SetValue(userInfo+"Status", "99")
			_ = g.tree.SetValue(userInfo+"Result", "0")
			g.wg.Add(1)
			go func() { defer g.wg.Done(); g.register(ctx) }()
		}
	}
}

func atoi(s string) int {
	var n int
	_, _ = fmt.Sscan(s, &n)
	return n
}

func (g *Gateway) down(inst, lastErr, status string) {
	_ = g.tree.SetValue(inst+"ConnectionStatus", status)
	_ = g.tree.SetValue(inst+"LastConnectionError", lastErr)
	_ = g.tree.SetValue(inst+"ExternalIPAddress", "")
	_ = g.tree.SetValue(inst+"Uptime", "0")
}

func (g *Gateway) enabled(inst string) bool {
	v := g.tree.Value(inst + "Enable")
	return v == "1" || v == "true"
}

// startDial dials an enabled instance in the background. A new attempt
// clears the previous attempt's LastConnectionError (a reconfigured WAN does
// not still read as rejected while it dials). On a PON uplink the ONU has no
// link before its LOID is registered, so the connection waits in
// Connecting until registration succeeds.
func (g *Gateway) startDial(ctx context.Context, inst string) {
	if !g.enabled(inst) {
		g.down(inst, "ERROR_NONE", "Disconnected")
		return
	}
	if lastErr := g.linkError(); lastErr != "" {
		g.down(inst, lastErr, "Disconnected")
		return
	}
	_ = g.tree.SetValue(inst+"LastConnectionError", "ERROR_NONE")
	_ = g.tree.SetValue(inst+"ConnectionStatus", "Connecting")
	if g.pon() && g.tree.Value(userInfo+"Status") != "0" {
		g.log.Info("e8sim: pppoe waits for the optical link (LOID not registered)")
		return
	}
	g.wg.Add(1)
	go func() { defer g.wg.Done(); g.dial(ctx, inst) }()
}

func (g *Gateway) pon() bool { return g.cfg.Access == "epon" || g.cfg.Access == "gpon" }

// dial asks the BRAS to authenticate the instance's account, as PPPoE
// discovery + PAP/CHAP would.
func (g *Gateway) dial(ctx context.Context, inst string) {
	req := operator.PPPoEAuthRequest{
		Username: g.tree.Value(inst + "Username"),
		Password: g.tree.Value(inst + "Password"),
		Serial:   g.cfg.Serial,
		VLAN:     g.WANVLAN(inst),
	}
	var resp operator.PPPoEAuthResponse
	status, err := g.post(ctx, "/bras/pppoe/auth", req, &resp)
	switch {
	case err != nil:
		g.log.Warn("e8sim: no answer from BRAS", "err", err)
		g.down(inst, "ERROR_ISP_TIME_OUT", "Disconnected")
	case status == http.StatusGatewayTimeout || resp.Result == "timeout":
		g.log.Info("e8sim: pppoe discovery unanswered (no PADO)", "reason", resp.Reason)
		g.down(inst, "ERROR_ISP_TIME_OUT", "Disconnected")
	case status == http.StatusForbidden || resp.Code == 691:
		g.log.Info("e8sim: pppoe rejected", "code", resp.Code)
		g.down(inst, "ERROR_AUTHENTICATION_FAILURE", "Disconnected")
	case status == http.StatusOK && resp.Result == "ok":
		_ = g.tree.SetValue(inst+"ExternalIPAddress", resp.IP)
		_ = g.tree.SetValue(inst+"DefaultGateway", resp.Gateway)
		_ = g.tree.SetValue(inst+"DNSServers", strings.Join(resp.DNS, ","))
		_ = g.tree.SetValue(inst+"LastConnectionError", "ERROR_NONE")
		_ = g.tree.SetValue(inst+"Uptime", "1")
		_ = g.tree.SetValue(inst+"ConnectionStatus", "Connected")
		g.log.Info("e8sim: pppoe up", "ip", resp.IP)
	default:
		g.down(inst, "ERROR_UNKNOWN", "Disconnected")
	}
}

func (g *Gateway) register(ctx context.Context) {
	if g.linkError() != "" {
		// No optical link: the registration cannot reach the OLT.
		_ = g.tree.SetValue(userInfo+"Status", "3")
		_ = g.tree.SetValue(userInfo+"Result", "2")
		return
	}
	// The CT specification names the LOID password UserId; older
	// firmware used Password. Either works here.
	pw := g.tree.Value(userInfo + "UserId")
	if pw == "" {
		pw = g.tree.Value(userInfo + "Password")
	}
	req := operator.RegisterRequest{
		LOID:     g.tree.Value(userInfo + "UserName"),
		Password: pw,
		Serial:   g.cfg.Serial,
	}
	var resp operator.RegisterResponse
	status, err := g.post(ctx, "/itms/register", req, &resp)
	if err != nil || status != http.StatusOK {
		g.log.Warn("e8sim: ITMS registration failed", "status", status, "err", err)
		_ = g.tree.SetValue(userInfo+"Status", "3")
		_ = g.tree.SetValue(userInfo+"Result", "2")
		g.ponRegistered(false)
		return
	}
	_ = g.tree.SetValue(userInfo+"Status", resp.Status)
	_ = g.tree.SetValue(userInfo+"Result", resp.Result)
	g.ponRegistered(resp.Status == "0")
	if resp.Status != "0" {
		return
	}
	for _, inst := range g.wanInstances() {
		if g.tree.Value(inst+"ConnectionStatus") != "Connected" {
			g.startDial(ctx, inst)
		}
	}
}

// errNoOperator is post's error on a gateway without Config.OperatorURL.
var errNoOperator = errors.New("e8sim: no operator network (Config.OperatorURL is empty)")

func (g *Gateway) post(ctx context.Context, path string, body, out any) (int, error) {
	if g.cfg.OperatorURL == "" {
		return 0, errNoOperator
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(g.cfg.OperatorURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+g.cfg.OperatorToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s answer: %w", path, err)
	}
	return resp.StatusCode, nil
}
