// Package xt2sim simulates the XT-2 business router as docs/xt2-cli.md
// describes it: an SSH server with the router's CLI (views, prompts, echo,
// paging, errors, candidate/commit, save) and an SNMP agent (v2c and v3
// USM authPriv with SHA-256 + AES-128) serving the system group, IF-MIB and
// the lab's XT2-MIB. Behind the configuration there is behaviour: a
// committed PPPoE dialer asks the operator's BRAS (testlab/operator) for the
// account, and `bbms bind customer` registers the router with the BBMS
// (testlab/bbms), both over HTTP on loopback.
//
// Start a router with one call:
//
//	r, err := xt2sim.Start(ctx, xt2sim.Config{
//		Serial: "XT2A1B2C3D4",
//		Users:  map[string]secret.Secret{"admin": secret.New("pw")},
//	})
//	defer r.Close()
//	// ssh admin@r.SSHAddr(), snmp r.SNMPAddr()
package xt2sim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"fieldagent/agent/secret"
)

// Defaults applied by Start to zero fields of Config.
const (
	DefaultSysname  = "XT2"
	DefaultSerial   = "XT2A1B2C3D4"
	DefaultSoftware = "V300R001C10SPC200"
)

// ErrConfig means Start was given a Config it cannot run; the message names
// the field to fix.
var ErrConfig = errors.New("invalid xt2sim config")

// WANLink is the state of the cable on the WAN port. The zero value is a
// link that is up at 1000 Mb/s.
type WANLink struct {
	// Down is true when no link is detected (cable unplugged).
	Down bool
	// Speed is the negotiated speed in Mb/s: 1000 or 100; zero means 1000.
	Speed int
}

// Config describes a simulated XT-2. Zero fields get the defaults named
// below.
type Config struct {
	// Sysname is the factory sysname shown in prompts; empty means "XT2".
	Sysname string
	// Serial is the serial number; empty means DefaultSerial.
	Serial string
	// Software is the software version; empty means DefaultSoftware.
	Software string

	// Users are the password logins (user → password). Users and
	// AuthorizedKeys must not both be empty.
	Users map[string]secret.Secret
	// AuthorizedKeys are accepted for public-key login as any user.
	AuthorizedKeys []ssh.PublicKey
	// HostKey is the SSH host key; nil generates an ed25519 key.
	HostKey ssh.Signer

	// SNMPCommunity is the SNMPv2c read community; empty disables v2c.
	SNMPCommunity secret.Secret
	// SNMPv3User is the SNMPv3 USM user (SHA-256 + AES-128, authPriv);
	// empty disables v3. SNMPv3AuthKey and SNMPv3PrivKey are its
	// passphrases (at least 8 characters each).
	SNMPv3User    string
	SNMPv3AuthKey secret.Secret
	SNMPv3PrivKey secret.Secret

	// BRASURL is the base URL of the operator's BRAS (testlab/operator);
	// BRASToken its bearer token. Empty BRASURL means PADIs go unanswered.
	BRASURL   string
	BRASToken secret.Secret
	// BBMSURL is the base URL of the BBMS (testlab/bbms); BBMSToken its
	// bearer token. Empty BBMSURL means bindings fail.
	BBMSURL   string
	BBMSToken secret.Secret

	// WANLink is the initial state of the WAN port's link.
	WANLink WANLink

	// HTTPClient, if nil, is a client with a 5 s timeout.
	HTTPClient *http.Client
	// Now, if nil, is time.Now.
	Now func() time.Time
	// Logger, if nil, discards.
	Logger *slog.Logger
}

// PPP states as display pppoe-client session summary shows them.
const (
	PPPUp   = "UP"   // session up, address assigned
	PPPPADI = "PADI" // dialing, no answer from a BRAS
	PPPIdle = "IDLE" // not dialing: not configured, link down or rejected
)

// State is what the router's protocols show: the PPPoE session and the BBMS
// binding.
type State struct {
	// PPP is PPPUp, PPPPADI or PPPIdle.
	PPP string
	// Address is the address the BRAS assigned ("" when not up).
	Address string
	// LastError is the last PPP failure: "691" for an authentication
	// failure, "no PADO" when the BRAS did not answer, "" for none.
	LastError string
	// WANUp is the link state of the WAN port.
	WANUp bool
	// BBMSBound reports whether BBMS confirmed the binding; BBMSCustomer is
	// the customer it is bound to.
	BBMSBound    bool
	BBMSCustomer string
	// BBMSError is the last binding failure ("" for none).
	BBMSError string
}

// Router is a running simulated XT-2. Its methods are safe for concurrent
// use.
type Router struct {
	cfg     Config
	logger  *slog.Logger
	hostKey ssh.Signer
	sshConf *ssh.ServerConfig
	start   time.Time
	now     func() time.Time
	client  *http.Client

	sshLn   net.Listener
	snmp    *snmpAgent
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.Once

	// applyMu serialises commits and the dialing behind them.
	applyMu sync.Mutex

	mu        sync.Mutex
	running   *config
	startup   *config
	state     State
	dialedKey string // account the current PPP session was dialed with
	wanSpeed  int
	dropAfter int
	conns     map[net.Conn]struct{}
}

// Start validates cfg, applies its defaults and starts the SSH server (TCP)
// and the SNMP agent (UDP) on 127.0.0.1 with ephemeral ports. The router
// runs until ctx is done or Close is called.
func Start(ctx context.Context, cfg Config) (*Router, error) {
	if cfg.Sysname == "" {
		cfg.Sysname = DefaultSysname
	}
	if cfg.Serial == "" {
		cfg.Serial = DefaultSerial
	}
	if cfg.Software == "" {
		cfg.Software = DefaultSoftware
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.WANLink.Speed == 0 {
		cfg.WANLink.Speed = 1000
	}
	switch {
	case len(cfg.Users) == 0 && len(cfg.AuthorizedKeys) == 0:
		return nil, fmt.Errorf("%w: set Users or AuthorizedKeys, or nobody can log in", ErrConfig)
	case cfg.WANLink.Speed != 1000 && cfg.WANLink.Speed != 100:
		return nil, fmt.Errorf("%w: WANLink.Speed %d is not 1000 or 100", ErrConfig, cfg.WANLink.Speed)
	case strings.ContainsAny(cfg.Sysname, " []<>"):
		return nil, fmt.Errorf("%w: Sysname %q must be one word without brackets", ErrConfig, cfg.Sysname)
	case cfg.SNMPv3User != "" && (len(cfg.SNMPv3AuthKey.Reveal()) < 8 || len(cfg.SNMPv3PrivKey.Reveal()) < 8):
		return nil, fmt.Errorf("%w: SNMPv3AuthKey and SNMPv3PrivKey must have at least 8 characters", ErrConfig)
	}
	hostKey := cfg.HostKey
	if hostKey == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate host key: %w", err)
		}
		if hostKey, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, fmt.Errorf("generate host key: %w", err)
		}
	}
	r := &Router{
		cfg: cfg, logger: cfg.Logger, hostKey: hostKey, now: cfg.Now, client: cfg.HTTPClient,
		running:  factoryConfig(cfg.Sysname),
		wanSpeed: cfg.WANLink.Speed,
		conns:    map[net.Conn]struct{}{},
		state:    State{PPP: PPPIdle, WANUp: !cfg.WANLink.Down},
	}
	r.start = r.now()
	r.startup = r.running.clone()
	r.sshConf = r.serverConfig()

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("xt2sim ssh listen: %w", err)
	}
	pc, err := lc.ListenPacket(ctx, "udp", "127.0.0.1:0")
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("xt2sim snmp listen: %w", err)
	}
	r.sshLn = ln
	r.snmp, err = newSNMPAgent(r, pc)
	if err != nil {
		_ = ln.Close()
		_ = pc.Close()
		return nil, err
	}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.wg.Add(3)
	go func() { defer r.wg.Done(); r.serveSSH() }()
	go func() { defer r.wg.Done(); r.snmp.serve() }()
	go func() {
		defer r.wg.Done()
		select {
		case <-ctx.Done():
			r.shutdown()
		case <-r.ctx.Done():
		}
	}()
	r.logger.Info("xt2sim: router started", "serial", cfg.Serial, "ssh", ln.Addr().String(), "snmp", pc.LocalAddr().String())
	return r, nil
}

// SSHAddr returns the SSH server's "127.0.0.1:port".
func (r *Router) SSHAddr() string { return r.sshLn.Addr().String() }

// SNMPAddr returns the SNMP agent's "127.0.0.1:port" (UDP).
func (r *Router) SNMPAddr() string { return r.snmp.conn.LocalAddr().String() }

// HostKey returns the public half of the SSH host key.
func (r *Router) HostKey() ssh.PublicKey { return r.hostKey.PublicKey() }

// Serial returns the router's serial number.
func (r *Router) Serial() string { return r.cfg.Serial }

// Running returns the running configuration as display
// current-configuration prints it, lines joined with "\n".
func (r *Router) Running() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.running.render(), "\n")
}

// Startup returns the saved (startup) configuration, as Running does.
func (r *Router) Startup() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.startup.render(), "\n")
}

// State returns the PPPoE and BBMS state.
func (r *Router) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// DropNextSessionAfter makes the next SSH shell session that starts lose its
// connection right after its n-th command has run (n ≥ 1), as a cut cable
// would. Its candidate configuration is discarded. n ≤ 0 cancels.
func (r *Router) DropNextSessionAfter(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropAfter = max(n, 0)
}

// SetWANLink plugs (up) or unplugs (down) the WAN cable. Unplugging drops
// the PPP session; plugging it back dials again when the running
// configuration has a complete dialer, and retries a pending BBMS binding.
func (r *Router) SetWANLink(up bool) {
	r.mu.Lock()
	r.state.WANUp = up
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	r.reconcile(ctx)
}

// Close stops the router: listeners, sessions and the SNMP agent. It is safe
// to call more than once.
func (r *Router) Close() error {
	r.shutdown()
	r.wg.Wait()
	return nil
}

func (r *Router) shutdown() {
	r.closeMu.Do(func() {
		r.cancel()
		_ = r.sshLn.Close()
		_ = r.snmp.conn.Close()
		r.mu.Lock()
		for c := range r.conns {
			_ = c.Close()
		}
		r.mu.Unlock()
	})
}

func (r *Router) uptime() time.Duration { return max(r.now().Sub(r.start), 0) }

func (r *Router) sysname() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.running.value("", "sysname"); ok {
		return v
	}
	return r.cfg.Sysname
}

// commit applies a session's edits to the running configuration and then
// brings the router's behaviour in line with it.
func (r *Router) commit(ctx context.Context, edits []edit) {
	r.applyMu.Lock()
	r.mu.Lock()
	for _, e := range edits {
		e.apply(r.running)
		r.logger.Info("xt2sim: config committed", "serial", r.cfg.Serial, "view", e.head, "line", maskLine(e.line), "undo", e.undo)
	}
	r.mu.Unlock()
	r.applyMu.Unlock()
	r.reconcile(ctx)
}

// save copies running to startup.
func (r *Router) save() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startup = r.running.clone()
}

// dialPlan is what the running configuration asks the PPPoE client to do.
type dialPlan struct {
	ready    bool
	user     string
	password secret.Secret
}

func (p dialPlan) key() string { return p.user + "\x00" + p.password.Reveal() }

// plan reads the dialer settings from the running configuration. Callers
// hold r.mu.
func (r *Router) plan() dialPlan {
	c := r.running
	if c.find("interface "+dialerName) == nil {
		return dialPlan{}
	}
	if _, ok := c.value("interface "+dialerName, "dialer user"); !ok {
		return dialPlan{}
	}
	if _, off := c.value("interface "+dialerName, "shutdown"); off {
		return dialPlan{}
	}
	if _, off := c.value("interface "+wanPort, "shutdown"); off {
		return dialPlan{}
	}
	bundle, ok := c.value("interface "+wanPort, "pppoe-client dial-bundle-number")
	if !ok {
		return dialPlan{}
	}
	want := "1"
	if v, ok := c.value("interface "+dialerName, "dialer bundle"); ok {
		want = v
	}
	if bundle != want {
		return dialPlan{}
	}
	var p dialPlan
	if u, ok := c.value("interface "+dialerName, "ppp chap user"); ok {
		p.user = u
		if pw, ok := c.value("interface "+dialerName, "ppp chap password cipher"); ok {
			p.password = secret.New(pw)
		}
	}
	if p.user == "" || p.password.IsZero() {
		if v, ok := c.value("interface "+dialerName, "ppp pap local-user"); ok {
			if w := strings.Fields(v); len(w) == 4 {
				p.user, p.password = w[0], secret.New(w[3])
			}
		}
	}
	p.ready = p.user != "" && !p.password.IsZero()
	return p
}

// reconcile dials, hangs up and binds as the running configuration and the
// WAN link require.
func (r *Router) reconcile(ctx context.Context) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()

	r.mu.Lock()
	plan := r.plan()
	wanUp := r.state.WANUp
	customer, wantBind := r.running.value("", "bbms bind customer")
	switch {
	case !plan.ready || !wanUp:
		r.state.PPP, r.state.Address, r.dialedKey = PPPIdle, "", ""
	case r.state.PPP == PPPUp && r.dialedKey == plan.key():
		// Session up with the same account: nothing to do.
	default:
		r.state.PPP, r.state.Address = PPPPADI, ""
		r.mu.Unlock()
		res, err := r.dial(ctx, plan)
		r.mu.Lock()
		switch {
		case err != nil:
			r.logger.Info("xt2sim: pppoe dial got no answer", "serial", r.cfg.Serial, "err", err)
			r.state.PPP, r.state.LastError = PPPPADI, "no PADO"
		case res.Result == "ok":
			r.state.PPP, r.state.Address, r.dialedKey = PPPUp, res.IP, plan.key()
			r.logger.Info("xt2sim: pppoe session up", "serial", r.cfg.Serial, "ip", res.IP)
		default:
			r.state.PPP, r.state.LastError = PPPIdle, fmt.Sprint(res.Code)
			r.logger.Info("xt2sim: pppoe authentication rejected", "serial", r.cfg.Serial, "code", res.Code)
		}
	}
	pppUp := r.state.PPP == PPPUp
	switch {
	case !wantBind:
		r.state.BBMSBound, r.state.BBMSCustomer, r.state.BBMSError = false, "", ""
	case r.state.BBMSBound && r.state.BBMSCustomer == customer:
	case !pppUp:
		r.state.BBMSBound, r.state.BBMSCustomer = false, ""
		r.state.BBMSError = "WAN is down: BBMS cannot be reached"
	default:
		r.mu.Unlock()
		err := r.bind(ctx, customer)
		r.mu.Lock()
		if err != nil {
			r.state.BBMSBound, r.state.BBMSCustomer, r.state.BBMSError = false, "", err.Error()
			r.logger.Info("xt2sim: bbms binding failed", "serial", r.cfg.Serial, "customer", customer, "err", err)
		} else {
			r.state.BBMSBound, r.state.BBMSCustomer, r.state.BBMSError = true, customer, ""
			r.logger.Info("xt2sim: bbms binding confirmed", "serial", r.cfg.Serial, "customer", customer)
		}
	}
	r.mu.Unlock()
}

// brasReply is the BRAS's answer (testlab/operator's PPPoEAuthResponse).
type brasReply struct {
	Result string `json:"result"`
	Code   int    `json:"code"`
	IP     string `json:"ip"`
}

// dial asks the BRAS to authenticate the account. An error means no
// answer (no PADO); a rejection is a reply with Result != "ok".
func (r *Router) dial(ctx context.Context, plan dialPlan) (brasReply, error) {
	if r.cfg.BRASURL == "" {
		return brasReply{}, errors.New("no BRAS configured")
	}
	body := map[string]string{"username": plan.user, "password": plan.password.Reveal(), "serial": r.cfg.Serial}
	var rep brasReply
	status, err := r.postJSON(ctx, r.cfg.BRASURL+"/bras/pppoe/auth", r.cfg.BRASToken, body, &rep)
	if err != nil {
		return brasReply{}, err
	}
	if status != http.StatusOK && status != http.StatusForbidden {
		return brasReply{}, fmt.Errorf("bras answered HTTP %d", status)
	}
	if status == http.StatusOK && (rep.Result != "ok" || rep.IP == "") {
		return brasReply{}, fmt.Errorf("bras answered without an address")
	}
	return rep, nil
}

// bind registers the serial with customer in BBMS.
func (r *Router) bind(ctx context.Context, customer string) error {
	if r.cfg.BBMSURL == "" {
		return errors.New("no BBMS server configured")
	}
	body := map[string]string{"serial": r.cfg.Serial, "customer_id": customer}
	var rep struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	status, err := r.postJSON(ctx, r.cfg.BBMSURL+"/api/v1/bindings", r.cfg.BBMSToken, body, &rep)
	if err != nil {
		return fmt.Errorf("BBMS cannot be reached: %w", err)
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("BBMS refused (HTTP %d): %s", status, rep.Error)
	}
	return nil
}

func (r *Router) postJSON(ctx context.Context, url string, token secret.Secret, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if !token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+token.Reveal())
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}
