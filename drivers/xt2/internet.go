package xt2

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
)

// Fixed names of the routed-internet configuration.
const (
	dialer   = "Dialer1"
	wanPort  = "GigabitEthernet0/0/0"
	aclNAT   = "3000"
	poolName = "lan"
)

// InternetConfig is routed internet on the XT-2: a PPPoE dialer on the WAN
// port with NAT outbound, a default route, and the LAN DHCP pool.
type InternetConfig struct {
	// PPPoE is the order's account; Username and Password are required.
	// Bridge and a non-zero VLAN are not supported by the XT-2 driver.
	// LANPorts and SSIDs are ignored: all LAN ports are routed.
	PPPoE drivers.PPPoEConfig
	// LAN is the LAN subnet; the zero value means 192.168.1.0/24.
	LAN netip.Prefix
	// Gateway is the router's LAN address, handed out as the DHCP gateway;
	// the zero value means the first address of LAN.
	Gateway netip.Addr
	// DNS are the DNS servers handed out by the pool; nil leaves the
	// pool's dns-list out.
	DNS []netip.Addr
}

// lines validates c, applies its defaults and returns the configuration
// lines to send from system view, and the (head, line) pairs to verify.
func (c InternetConfig) lines() ([]string, [][2]string, error) {
	p := c.PPPoE
	switch {
	case p.Bridge:
		return nil, nil, fmt.Errorf("%w: bridge mode on the XT-2 business router: order routed internet", drivers.ErrUnsupported)
	case p.VLAN != 0:
		return nil, nil, fmt.Errorf("%w: a tagged (VLAN %d) WAN on the XT-2: the WAN port dials untagged", drivers.ErrUnsupported, p.VLAN)
	case p.Username == "" || strings.ContainsAny(p.Username, " \t\r\n"):
		return nil, nil, fmt.Errorf("%w: PPPoE username %q: it must be one word; check the order", ErrInvalidConfig, p.Username)
	case p.Password.IsZero() || strings.ContainsAny(p.Password.Reveal(), " \t\r\n?"):
		return nil, nil, fmt.Errorf("%w: PPPoE password is empty or has blanks or '?': check the order", ErrInvalidConfig)
	}
	lan := c.LAN
	if !lan.IsValid() {
		lan = netip.MustParsePrefix("192.168.1.0/24")
	}
	if !lan.Addr().Is4() || lan.Bits() < 8 || lan.Bits() > 30 {
		return nil, nil, fmt.Errorf("%w: LAN %s: want an IPv4 prefix from /8 to /30", ErrInvalidConfig, lan)
	}
	lan = lan.Masked()
	gw := c.Gateway
	if !gw.IsValid() {
		gw = lan.Addr().Next()
	}
	if !lan.Contains(gw) {
		return nil, nil, fmt.Errorf("%w: gateway %s is outside LAN %s", ErrInvalidConfig, gw, lan)
	}
	mask, wild := masks(lan.Bits())
	var dns []string
	for _, a := range c.DNS {
		if !a.Is4() {
			return nil, nil, fmt.Errorf("%w: DNS server %s: want IPv4", ErrInvalidConfig, a)
		}
		dns = append(dns, a.String())
	}
	user, pw := p.Username, p.Password.Reveal()
	blocks := []block{
		{head: "interface " + dialer, lines: []string{
			"dialer user " + user,
			"dialer bundle 1",
			"ppp chap user " + user,
			"ppp chap password cipher " + pw,
			"ppp pap local-user " + user + " password cipher " + pw,
			"ip address ppp-negotiate",
			"nat outbound " + aclNAT,
		}},
		{head: "interface " + wanPort, lines: []string{"pppoe-client dial-bundle-number 1"}},
		{head: "", lines: []string{"ip route-static 0.0.0.0 0.0.0.0 " + dialer}},
		{head: "acl number " + aclNAT, lines: []string{fmt.Sprintf("rule 5 permit source %s %s", lan.Addr(), wild)}},
		{head: "ip pool " + poolName, lines: []string{
			"gateway-list " + gw.String(),
			fmt.Sprintf("network %s mask %s", lan.Addr(), mask),
		}},
	}
	if len(dns) > 0 {
		blocks[4].lines = append(blocks[4].lines, "dns-list "+strings.Join(dns, " "))
	}
	var send []string
	var verify [][2]string
	for _, b := range blocks {
		if b.head != "" {
			send = append(send, b.head)
		}
		for _, l := range b.lines {
			send = append(send, l)
			verify = append(verify, [2]string{b.head, l})
		}
		if b.head != "" {
			send = append(send, "quit")
		}
	}
	return send, verify, nil
}

// masks returns the dotted netmask and wildcard of a prefix length.
func masks(bits int) (mask, wildcard string) {
	m := ^uint32(0) << (32 - bits)
	q := func(v uint32) string {
		return fmt.Sprintf("%d.%d.%d.%d", v>>24, v>>16&0xff, v>>8&0xff, v&0xff)
	}
	return q(m), q(^m)
}

// ConfigurePPPoE is ConfigureInternet with the default LAN (192.168.1.0/24,
// gateway .1, no DNS list); it makes Driver a drivers.InternetConfigurer.
func (d *Driver) ConfigurePPPoE(ctx context.Context, cfg drivers.PPPoEConfig) (drivers.Undo, error) {
	return d.ConfigureInternet(ctx, InternetConfig{PPPoE: cfg})
}

// ConfigureInternet sets up routed internet as one transaction: snapshot
// the running configuration, send the dialer, WAN port, default route, NAT
// ACL and LAN pool lines into the candidate, commit, and verify (running
// configuration has every line; PPP is UP on the CLI and pppState is up(3)
// over SNMP, with the same address). A failure before the commit aborts
// the candidate, after it the undo lines are committed; the error is then a
// *drivers.RestoreError wrapping the cause: drivers.ErrPPPoEAuth (691),
// drivers.ErrPPPoENoServer, drivers.ErrTimeout, drivers.ErrVerify or the
// session's error. Validation errors (ErrInvalidConfig,
// drivers.ErrUnsupported) come before any change. The returned Undo puts
// the snapshot back.
func (d *Driver) ConfigureInternet(ctx context.Context, cfg InternetConfig) (drivers.Undo, error) {
	const op = "configure routed internet"
	send, verify, err := cfg.lines()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	t, err := d.begin(ctx, op, cfg.PPPoE.Password)
	if err != nil {
		return nil, err
	}
	defer t.end()
	if err := t.apply(ctx, send); err != nil {
		return nil, t.fail(ctx, err)
	}
	after, err := t.running(ctx)
	if err != nil {
		return nil, t.fail(ctx, fmt.Errorf("read back the running configuration: %w", err))
	}
	var missing []string
	for _, v := range verify {
		if !after.has(v[0], v[1]) {
			missing = append(missing, strings.TrimSpace(v[0]+" / "+secretPrefix(v[1])))
		}
	}
	if len(missing) > 0 {
		return nil, t.fail(ctx, fmt.Errorf("%w: the running configuration lacks %s", drivers.ErrVerify, strings.Join(missing, "; ")))
	}
	addr, err := d.waitPPP(ctx, t)
	if err != nil {
		return nil, t.fail(ctx, err)
	}
	d.log.Info("xt2: routed internet up", "addr", d.cfg.SSH.Addr, "user", secret.Hint(cfg.PPPoE.Username), "ppp_address", addr, "elapsed", time.Since(start))
	return d.undoFunc(op, t.before), nil
}

// waitPPP polls the PPPoE client on the CLI until the session is UP or
// fails, then checks pppState and pppAddress over SNMP against the CLI.
func (d *Driver) waitPPP(ctx context.Context, t *tx) (string, error) {
	vctx, cancel := context.WithTimeout(ctx, d.cfg.VerifyTimeout)
	defer cancel()
	var last pppoeSummary
	for {
		r, err := t.ch.SendCommand(vctx, "display pppoe-client session summary")
		if err != nil {
			return "", fmt.Errorf("read the PPPoE session: %w", err)
		}
		last = parsePPPoE(r.Output)
		if last.State == "UP" {
			break
		}
		if err := pppFailure(last); err != nil && last.State == "IDLE" {
			return "", err
		}
		select {
		case <-vctx.Done():
			if err := pppFailure(last); err != nil {
				return "", fmt.Errorf("%w: %w", drivers.ErrTimeout, err)
			}
			return "", fmt.Errorf("%w: PPPoE session is %s after %s: run a line test (WAN link, cable) and check the BRAS", drivers.ErrTimeout, last.State, d.cfg.VerifyTimeout)
		case <-time.After(d.cfg.PollInterval):
		}
	}
	r, err := t.ch.SendCommand(vctx, "display ip interface brief")
	if err != nil {
		return "", fmt.Errorf("read the dialer address: %w", err)
	}
	cliAddr, _, _ := strings.Cut(parseIPBrief(r.Output)[dialer], "/")
	vs, err := d.get(vctx, oidPPPState, oidPPPAddress)
	if err != nil {
		return "", fmt.Errorf("read pppState over SNMP: %w", err)
	}
	if st, _ := vs[0].Uint64(); st != 3 {
		return "", fmt.Errorf("%w: the CLI shows PPP UP but SNMP pppState is %s, not up(3)", drivers.ErrVerify, vs[0].String())
	}
	if snmpAddr := vs[1].String(); cliAddr == "" || snmpAddr != cliAddr {
		return "", fmt.Errorf("%w: Dialer1 address is %q on the CLI and %q over SNMP", drivers.ErrVerify, cliAddr, snmpAddr)
	}
	return cliAddr, nil
}

// pppFailure turns the PPPoE client's last error into a drivers error with
// advice, or nil for none.
func pppFailure(s pppoeSummary) error {
	switch code := lastErrorCode(s.LastError); {
	case code == "":
		return nil
	case code == "691":
		return fmt.Errorf("%w: server replied 691 (authentication rejected): check the account and password on the order", drivers.ErrPPPoEAuth)
	case strings.Contains(strings.ToLower(s.LastError), "no pado"):
		return fmt.Errorf("%w: no PADO: check the WAN cable and that the line is provisioned on the BRAS", drivers.ErrPPPoENoServer)
	default:
		return fmt.Errorf("pppoe dial failed: last error %q: check the account and the line", s.LastError)
	}
}

// WANStatus reads the PPPoE session over the CLI and the dialer address;
// Status is "Connected" when PPP is UP.
func (d *Driver) WANStatus(ctx context.Context) (drivers.WANStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out, err := d.command(ctx, "display pppoe-client session summary")
	if err != nil {
		return drivers.WANStatus{}, err
	}
	s := parsePPPoE(out)
	w := drivers.WANStatus{Instance: dialer, ConnectionType: "PPPoE_Routed", Status: pppStatus(s.State), LastError: s.LastError}
	ipOut, err := d.command(ctx, "display ip interface brief")
	if err != nil {
		return w, err
	}
	w.ExternalIP, _, _ = strings.Cut(parseIPBrief(ipOut)[dialer], "/")
	run, err := d.command(ctx, "display current-configuration")
	if err != nil {
		return w, err
	}
	w.NAT = parseConfig(run).has("interface "+dialer, "nat outbound "+aclNAT)
	return w, nil
}

func pppStatus(state string) string {
	switch state {
	case "UP":
		return "Connected"
	case "PADI":
		return "Connecting"
	}
	return "Disconnected"
}

// BBMSBinding is the router's registration in BBMS.
type BBMSBinding struct {
	Bound    bool   `json:"bound"`
	Customer string `json:"customer,omitempty"`
	Serial   string `json:"serial,omitempty"`
	// LastError is the router's last binding failure, "" for none.
	LastError string `json:"last_error,omitempty"`
}

// BindBBMS registers the router's serial with customerID in BBMS as a
// transaction: `bbms bind customer ID`, commit, then confirm with `display
// bbms binding` and SNMP bbmsBound/bbmsCustomer. On failure the binding
// line is rolled back and the error is a *drivers.RestoreError wrapping
// ErrBBMS (or drivers.ErrTimeout / drivers.ErrVerify) that says what to
// check: an unknown customer id, a serial bound to another customer, or a
// WAN that is down.
func (d *Driver) BindBBMS(ctx context.Context, customerID string) (BBMSBinding, drivers.Undo, error) {
	const op = "bind to BBMS"
	if customerID == "" || strings.ContainsAny(customerID, " \t\r\n?") {
		return BBMSBinding{}, nil, fmt.Errorf("%s: %w: customer id %q must be one word: check the order", op, ErrInvalidConfig, customerID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.begin(ctx, op)
	if err != nil {
		return BBMSBinding{}, nil, err
	}
	defer t.end()
	if err := t.apply(ctx, []string{"bbms bind customer " + customerID}); err != nil {
		return BBMSBinding{}, nil, t.fail(ctx, err)
	}
	b, err := d.waitBBMS(ctx, t, customerID)
	if err != nil {
		return b, nil, t.fail(ctx, err)
	}
	d.log.Info("xt2: bbms binding confirmed", "addr", d.cfg.SSH.Addr, "customer", customerID, "serial", b.Serial)
	return b, d.undoFunc(op, t.before), nil
}

// waitBBMS polls `display bbms binding` until the router is bound to
// customer or reports a failure, then checks SNMP.
func (d *Driver) waitBBMS(ctx context.Context, t *tx, customer string) (BBMSBinding, error) {
	vctx, cancel := context.WithTimeout(ctx, d.cfg.VerifyTimeout)
	defer cancel()
	for {
		r, err := t.ch.SendCommand(vctx, "display bbms binding")
		if err != nil {
			return BBMSBinding{}, fmt.Errorf("read the BBMS binding: %w", err)
		}
		p := parseBBMS(r.Output)
		b := BBMSBinding(p)
		if b.Bound && b.Customer == customer {
			vs, err := d.get(vctx, oidBBMSBound, oidBBMSCustomer)
			if err != nil {
				return b, fmt.Errorf("read bbmsBound over SNMP: %w", err)
			}
			if st, _ := vs[0].Uint64(); st != 2 || vs[1].String() != customer {
				return b, fmt.Errorf("%w: the CLI shows the binding but SNMP bbmsBound is %s, bbmsCustomer %q", drivers.ErrVerify, vs[0].String(), vs[1].String())
			}
			return b, nil
		}
		if b.Bound {
			return b, fmt.Errorf("%w: the router is bound to customer %s, not %s: check the order", ErrBBMS, b.Customer, customer)
		}
		if b.LastError != "" {
			return b, fmt.Errorf("%w: %s: %s", ErrBBMS, b.LastError, bbmsAdvice(b.LastError))
		}
		select {
		case <-vctx.Done():
			return b, fmt.Errorf("%w: BBMS did not confirm the binding within %s: check that the WAN is up and BBMS is reachable", drivers.ErrTimeout, d.cfg.VerifyTimeout)
		case <-time.After(d.cfg.PollInterval):
		}
	}
}

// bbmsAdvice says what to check for a binding failure.
func bbmsAdvice(e string) string {
	l := strings.ToLower(e)
	switch {
	case strings.Contains(l, "404") || strings.Contains(l, "does not exist"):
		return "the customer id is unknown to BBMS: check the customer id on the order"
	case strings.Contains(l, "409") || strings.Contains(l, "already bound"):
		return "this serial is bound to another customer in BBMS: have it unbound there first"
	case strings.Contains(l, "wan is down"):
		return "the router has no internet: run a line test and configure routed internet first"
	case strings.Contains(l, "cannot be reached"):
		return "BBMS cannot be reached from the router: check the WAN and the BBMS address"
	}
	return "check the customer id and the router's WAN"
}

// Save writes the running configuration to the startup configuration,
// answering the router's [Y/N] question. Errors wrap those of sshcli and
// drivers.ErrVerify when the router does not confirm.
func (d *Driver) Save(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch, err := d.mainChannel(ctx)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	r, err := ch.Save(ctx)
	if lost(err) {
		_ = ch.Close()
		d.ch = nil
	}
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if !strings.Contains(r.Output, "successfully") {
		return fmt.Errorf("save: %w: the router did not confirm (%q): check the flash and save again", drivers.ErrVerify, strings.TrimSpace(r.Output))
	}
	return nil
}
