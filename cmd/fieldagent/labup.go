package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
	"fieldagent/testlab"
	"fieldagent/testlab/fleet"
	"fieldagent/testlab/netsite"
	"fieldagent/testlab/scenario"
)

type labUpOptions struct {
	f *Factory
	// Scenario is a built-in scenario's name or a scenario file (*.yaml).
	Scenario string
	Name     string
	ACSURL   string
	// Store, if set, is the store the written config names (default: one
	// in the lab's directory, removed with it).
	Store string
	// Netns runs the site in network namespaces named after Name
	// (testlab.Config.Net): the agent runs in the laptop's.
	Netns bool
	// Shape puts a loopback lab's speed server behind the gateway's WAN
	// (testlab.Config.Shape): a relay shaped to the package, up only
	// while the gateway's WAN is connected. --netns shapes with tc tbf.
	Shape bool
	// Devices, if positive, also runs that many simulated e8 gateways
	// (testlab/fleet) informing the same ACS, for remote-support and load
	// tests.
	Devices int
	// Periodic is the fleet's periodic inform interval (0: none).
	Periodic time.Duration

	// onUp, if set, is called once the lab is up (tests reach the site).
	onUp func(*testlab.Site, *labUpResult)
}

func newLabUpCmd(f *Factory, runF func(context.Context, *labUpOptions) error) *cobra.Command {
	opts := &labUpOptions{f: f}
	cmd := &cobra.Command{
		Use:   "up [SCENARIO|FILE]",
		Short: "Run a simulated site from a scenario until interrupted",
		Long: `lab up starts the site a scenario describes — a built-in one (` + strings.Join(scenario.Names(), ", ") + `;
default: default) or a scenario file (*.yaml) — on 127.0.0.1, injects the
scenario's faults and runs until Ctrl-C (SIGINT or SIGTERM). Its TR-069
devices inform the ACS at --acs-url, where 'order run' and 'acs serve'
listen; when that ACS starts answering, the lab sends each device a
connection request so that it informs at once.

lab up writes a fieldagent config file (mode 0600; it holds the order
system's token and the devices' credentials) in the lab's directory under
$XDG_RUNTIME_DIR/fieldagent (or the temp directory's fieldagent-UID):
run orders with 'fieldagent --config PATH order run ID'. It also serves a
control API on 127.0.0.1 for 'lab fault' (token in the state file next to
the config). Everything in that directory is removed on exit; --name runs
several labs side by side.

With --netns (root, ip, tc and nft) the site runs in three network
namespaces named after --name instead — fa-NAME-laptop, fa-NAME-gw and
fa-NAME-op — joined by veth pairs: the technician's laptop (192.168.1.2)
behind the e8 gateway (192.168.1.1, WAN 100.64.0.2) and the operator
network with "the internet" (203.0.113.10: speed server, DNS). Run the
agent in the laptop namespace ('ip netns exec fa-NAME-laptop fieldagent
--config PATH order run ID'); the config points at the addresses it sees
there, and its ACS listens on 192.168.1.2:7547 (the default --acs-url
with --netns). The gateway forwards and NATs the laptop's traffic only
while its simulated WAN is connected, shaped to the order's package with
tc tbf. 'lab fault' runs on the host as before. The namespaces go away
on exit; 'lab clean' removes those of a lab that crashed.

Without root, --shape gives the loopback lab the same dependence: the
speed server sits behind a userspace relay that stands for the gateway's
WAN, shaped to the order's package (a tenth of it up), which refuses and
cuts connections unless the simulated gateway's WAN is connected. With
--netns it is not needed: the gateway namespace shapes with tc tbf.

A scenario file:

  name: repair
  description: e8 GPON repair, the gateway dials with an old password
  devices: [e8]            # e8, itv, xt2
  access: gpon             # lan, adsl, epon, gpon
  bandwidth_mbps: 300
  gateway: fault_pppoe     # factory, installed, fault_pppoe
  rx_power_dbm: -18.5      # epon, gpon
  lan_hosts:
    - {hostname: laptop, mac: "3c:22:fb:10:20:30", ip: 192.168.1.100, port: 1}
  faults: []               # ids from 'fieldagent lab fault list'
  order: WO-20261125-0005  # a sample order`,
		Example: `  # The demo's site (an e8 GPON new install), until Ctrl-C
  fieldagent lab up

  # In another terminal: run its order with the config lab up wrote
  fieldagent --config "$XDG_RUNTIME_DIR/fieldagent/labs/lab/config.yaml" order run WO-20261125-0001

  # A repair, an XT-2, or your own scenario file
  fieldagent lab up repair
  fieldagent lab up xt2 --name xt2lab
  fieldagent lab up ./weak-light.yaml --acs-url http://127.0.0.1:7600/

  # On loopback, the speed test through the gateway's WAN at the package rate
  fieldagent lab up --shape

  # Addresses as one JSON document (no secrets)
  fieldagent lab up --output json

  # As root: the site in network namespaces, the agent behind the gateway
  sudo fieldagent lab up repair --netns --name rep
  sudo ip netns exec fa-rep-laptop fieldagent --config PATH order run WO-20261125-0005  # PATH as printed`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Scenario = "default"
			if len(args) == 1 {
				opts.Scenario = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLabUp(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", defaultLabName, "name of this lab instance (lab fault --name picks it)")
	cmd.Flags().StringVar(&opts.ACSURL, "acs-url", labDefaultACSURL, "the ACS the lab's TR-069 devices inform (where order run or acs serve listen; with --netns "+testlab.NetACSURL(testlab.NetACSPort)+", the laptop's)")
	cmd.Flags().StringVar(&opts.Store, "store", "", "store for the config lab up writes (default: in the lab's directory, removed on exit)")
	cmd.Flags().IntVar(&opts.Devices, "devices", 0, "also run N simulated e8 gateways (serials FLT…) informing the same ACS, for load tests (1,000 take about 320 MB)")
	cmd.Flags().DurationVar(&opts.Periodic, "periodic-inform", 0, "with --devices: the gateways' periodic inform interval (e.g. 5m; 0: none)")
	cmd.Flags().BoolVar(&opts.Netns, "netns", false, "run the site in network namespaces named after --name (root): the agent runs in the laptop's, behind the simulated gateway")
	cmd.Flags().BoolVar(&opts.Shape, "shape", false, "on loopback: put the speed server behind the gateway's WAN, shaped to the package and reachable only while the WAN is connected (--netns shapes with tc tbf instead)")
	return cmd
}

// loadScenario resolves lab up's argument: a file (it has a path separator
// or ends in .yaml/.yml) or a built-in scenario.
func loadScenario(arg string) (*scenario.Scenario, error) {
	var (
		s   *scenario.Scenario
		err error
	)
	if strings.ContainsRune(arg, os.PathSeparator) || strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		s, err = scenario.Load(arg)
	} else {
		s, err = scenario.Builtin(arg)
	}
	if err != nil {
		return nil, &usageError{err}
	}
	return s, nil
}

// labUpResult is what lab up prints (table) or writes as one JSON
// document. It holds no secret: those are in the config file.
type labUpResult struct {
	Name           string       `json:"name"`
	Scenario       string       `json:"scenario"`
	Description    string       `json:"description,omitempty"`
	PID            int          `json:"pid"`
	ACSURL         string       `json:"acs_url"`
	OrderSystemURL string       `json:"order_system_url"`
	SpeedURL       string       `json:"speed_url"`
	Gateway        *labUpDevice `json:"gateway,omitempty"`
	STB            *labUpDevice `json:"stb,omitempty"`
	EPGAuthURL     string       `json:"epg_auth_url,omitempty"`
	XT2            *labUpXT2    `json:"xt2,omitempty"`
	BBMSURL        string       `json:"bbms_url,omitempty"`
	Order          string       `json:"order"`
	SampleOrders   []labUpOrder `json:"sample_orders"`
	Faults         []string     `json:"faults"`
	// Fleet is the extra simulated gateways (--devices).
	Fleet *labUpFleet `json:"fleet,omitempty"`
	// Netns is the laptop's network namespace (--netns), where the agent runs.
	Netns      string `json:"netns,omitempty"`
	ControlURL string `json:"control_url"`
	ConfigPath string `json:"config_path"`
	StatePath  string `json:"state_path"`
	Run        string `json:"run"`

	// SpeedShaped says the speed server is behind the gateway's WAN,
	// shaped to the package (--shape, or --netns).
	SpeedShaped bool `json:"speed_shaped,omitempty"`
}

type labUpFleet struct {
	Devices int    `json:"devices"`
	First   string `json:"first_serial"`
	Last    string `json:"last_serial"`
}

type labUpDevice struct {
	Serial string `json:"serial"`
	State  string `json:"state,omitempty"`
	Access string `json:"access,omitempty"`
}

type labUpXT2 struct {
	Serial     string `json:"serial"`
	SSHAddr    string `json:"ssh_addr"`
	SNMPAddr   string `json:"snmp_addr"`
	Username   string `json:"username"`
	KnownHosts string `json:"known_hosts"`
}

type labUpOrder struct {
	ID      string             `json:"id"`
	Type    order.Type         `json:"type"`
	Devices []order.DeviceKind `json:"devices"`
}

func runLabUp(ctx context.Context, opts *labUpOptions) error {
	switch {
	case opts.Devices < 0:
		return &usageError{fmt.Errorf("--devices %d: want a number of gateways ≥ 0", opts.Devices)}
	case opts.Devices > 0 && opts.Netns:
		return &usageError{errors.New("--devices runs on loopback: leave out --netns")}
	case opts.Periodic < 0:
		return &usageError{errors.New("--periodic-inform must not be negative")}
	case opts.Shape && opts.Netns:
		return &usageError{errors.New("--shape is for a loopback lab: with --netns the WAN is shaped with tc tbf already")}
	}
	f := opts.f
	logger := f.Logger()
	if !f.logLevelExplicit() {
		// The addresses are the point; the simulators' logs are for
		// --log-level info/debug.
		logger = newLogger(f.IO.ErrOut, "warn", f.Config().LogFormat)
	}
	if err := checkLabName(opts.Name); err != nil {
		return err
	}
	sc, err := loadScenario(opts.Scenario)
	if err != nil {
		return err
	}
	if opts.Netns && opts.ACSURL == labDefaultACSURL {
		opts.ACSURL = testlab.NetACSURL(testlab.NetACSPort)
	}
	acsURL, acsListen, err := parseLabACSURL(opts.ACSURL)
	if err != nil {
		return err
	}

	rt, err := labRuntimeDir(f.Env, true)
	if err != nil {
		return err
	}
	dir := labDir(rt, opts.Name)
	if st, _, err := readLabState(f.Env, opts.Name); err == nil && labAlive(ctx, st) {
		return &usageError{fmt.Errorf("a lab named %q is already running (pid %d, scenario %s): stop it, or start this one with --name", opts.Name, st.PID, st.Scenario)}
	}
	// What a lab of this name left behind is stale: start afresh.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the stale lab directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("lab directory: %w", err)
	}
	defer os.RemoveAll(dir)

	// The devices' credentials: the user's ACS settings if set, so that
	// their own config works too, else made up here (the written config
	// carries them).
	cfg := *f.Config()
	crUser, crPass := cfg.ACS.ConnectionRequestUsername, cfg.ACS.ConnectionRequestPassword
	if crUser == "" {
		crUser = "fieldagent"
	}
	if crPass.IsZero() {
		crPass = secret.New(randomToken())
	}
	cpeUser, cpePass := cfg.ACS.CPEUsername, cfg.ACS.CPEPassword
	if cpePass.IsZero() {
		cpeUser, cpePass = "cpe-lab", secret.New(randomToken())
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	site, err := sc.Start(sctx, testlab.Config{
		ACSURL: acsURL, ACSUsername: cpeUser, ACSPassword: cpePass,
		ConnReqUsername: crUser, ConnReqPassword: crPass,
		Now: f.Now, Logger: logger,
		Net: labNetOptions(opts), Shape: opts.Shape,
	})
	if err != nil {
		switch {
		case errors.Is(err, netsite.ErrUnavailable):
			return fmt.Errorf("start the lab in network namespaces: %w (or run lab up without --netns, on loopback)", err)
		case errors.Is(err, testlab.ErrConfig):
			return &usageError{fmt.Errorf("scenario %s: %w", sc.Name, err)}
		case errors.Is(err, scenario.ErrInvalid):
			return &usageError{err}
		}
		return fmt.Errorf("start the lab: %w", err)
	}
	defer site.Close()

	var fl *fleet.Fleet
	if opts.Devices > 0 {
		fl, err = fleet.Start(sctx, fleet.Options{
			N: opts.Devices, ACSURL: acsURL, ACSUsername: cpeUser, ACSPassword: cpePass,
			ConnReqUsername: crUser, ConnReqPassword: crPass, PeriodicInform: opts.Periodic,
			OperatorURL: site.OperatorURL, Logger: logger.With("lab", "fleet"),
		})
		if err != nil {
			return &usageError{fmt.Errorf("--devices: %w", err)}
		}
		defer func() { _ = fl.Close() }()
	}

	// The control API, for lab fault.
	token := secret.New(randomToken())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("lab control API: %w", err)
	}
	ctl := &labControl{Site: site, Devices: sc.Devices, Token: token}
	srv := &http.Server{Handler: ctl.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}()

	// The config file that reaches the lab.
	store := opts.Store
	if store == "" {
		store = filepath.Join(dir, labStoreFile)
	}
	configPath := filepath.Join(dir, labConfigFile)
	knownHosts := ""
	if site.XT2 != nil {
		knownHosts = filepath.Join(dir, labKnownHosts)
		if err := writeFileAtomic(knownHosts, []byte(site.XT2Access.KnownHostsLine())); err != nil {
			return fmt.Errorf("write the XT-2's known_hosts: %w", err)
		}
	}
	b, err := labConfigYAML(site, store, acsListen, crUser, crPass, cpeUser, cpePass, knownHosts)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(configPath, b); err != nil {
		return fmt.Errorf("write the lab's config: %w", err)
	}

	res := &labUpResult{
		Name: opts.Name, Scenario: sc.Name, Description: sc.Description, PID: os.Getpid(),
		ACSURL: acsURL, OrderSystemURL: site.OrderSystemURL, SpeedURL: site.SpeedURL,
		Order: sc.Order, Faults: nonNil(site.ActiveFaults()),
		ControlURL: "http://" + ln.Addr().String(), ConfigPath: configPath,
		Run: fmt.Sprintf("fieldagent --config %s order run %s", shellQuote(configPath), sc.Order),
	}
	res.SpeedShaped = opts.Shape || site.Net != nil
	if fl != nil {
		res.Fleet = &labUpFleet{Devices: fl.Len(), First: fl.Serial(0), Last: fl.Serial(fl.Len() - 1)}
	}
	if site.Net != nil {
		res.Netns = site.Net.Netns(netsite.Laptop)
		res.Run = "ip netns exec " + res.Netns + " " + res.Run
	}
	if site.Gateway != nil {
		state := string(sc.Gateway)
		if state == "" {
			state = "factory"
		}
		res.Gateway = &labUpDevice{Serial: testlab.SampleGatewaySN, State: state, Access: string(site.Order.Services[0].Access)}
	}
	if site.STB != nil {
		res.STB = &labUpDevice{Serial: testlab.SampleSTBSN}
		res.EPGAuthURL = site.EPGURL
	}
	if site.XT2 != nil {
		a := site.XT2Access
		res.XT2 = &labUpXT2{Serial: testlab.SampleXT2SN, SSHAddr: a.SSHAddr, SNMPAddr: a.SNMPAddr, Username: a.Username, KnownHosts: knownHosts}
		res.BBMSURL = site.BBMSURL
	}
	for _, id := range testlab.SampleOrderIDs() {
		o := site.SampleOrders[id]
		var kinds []order.DeviceKind
		for _, s := range o.Services {
			if !slices.Contains(kinds, s.Device) {
				kinds = append(kinds, s.Device)
			}
		}
		res.SampleOrders = append(res.SampleOrders, labUpOrder{ID: id, Type: o.Type, Devices: kinds})
	}

	// The state file last: lab fault finds a lab that is ready.
	statePath, err := writeLabState(dir, labState{
		Name: opts.Name, PID: os.Getpid(), Scenario: sc.Name, ControlURL: res.ControlURL,
		Token: token, ConfigPath: configPath, Started: f.Now(),
	})
	if err != nil {
		return fmt.Errorf("write the lab's state file: %w", err)
	}
	res.StatePath = statePath

	w := &acsWatcher{
		Addr: acsListen, Username: crUser, Password: crPass, Logger: logger,
		Devices: func() []string {
			var urls []string
			if site.Gateway != nil {
				urls = append(urls, site.Gateway.Engine().ConnectionRequestURL())
			}
			if site.STB != nil {
				urls = append(urls, site.STB.Tree().Value("Device.ManagementServer.ConnectionRequestURL"))
			}
			if fl != nil {
				for i := range fl.Len() {
					urls = append(urls, fl.Gateway(i).Engine().ConnectionRequestURL())
				}
			}
			return slices.DeleteFunc(urls, func(u string) bool { return u == "" })
		},
	}
	if site.Net != nil {
		// The ACS and the devices' connection request ports are in the
		// site's namespaces: look for them from the laptop, as the ACS does.
		w.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return site.Net.DialContext(ctx, netsite.Laptop, network, addr)
		}
	}
	go w.Run(sctx)

	if f.jsonOutput() {
		if err := f.writeJSON(res); err != nil {
			return err
		}
	} else {
		printLabUp(f, res)
	}
	if opts.onUp != nil {
		opts.onUp(site, res)
	}

	<-ctx.Done()
	_ = os.Remove(statePath)
	if !f.jsonOutput() {
		fmt.Fprintf(f.IO.Out, "\nlab %q stopped; removed %s\n", opts.Name, dir)
	}
	if err := site.Err(); err != nil {
		return fmt.Errorf("the lab failed while running: %w", err)
	}
	return nil
}

// labDefaultACSURL is --acs-url's default: an ACS on the host's loopback.
// With --netns it means the laptop's (testlab.NetACSURL).
const labDefaultACSURL = "http://127.0.0.1:7547/"

// labNetOptions is the site's testlab.Config.Net: namespaces named after
// the lab with --netns, else nil (loopback).
func labNetOptions(opts *labUpOptions) *netsite.Options {
	if !opts.Netns {
		return nil
	}
	return &netsite.Options{Instance: opts.Name}
}

// parseLabACSURL checks --acs-url and returns it with the host:port an ACS
// listens on to be reached there.
func parseLabACSURL(s string) (string, string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", &usageError{fmt.Errorf("--acs-url %q: want an http:// or https:// URL, e.g. http://127.0.0.1:7547/", s)}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.String(), net.JoinHostPort(u.Hostname(), port), nil
}

// labConfigFileYAML is the fieldagent config lab up writes: what reaches
// the lab, credentials inline (the file is 0600).
type labConfigFileYAML struct {
	Store       string `yaml:"store"`
	Technician  string `yaml:"technician"`
	OrderSystem struct {
		URL   string `yaml:"url"`
		Token string `yaml:"token"`
	} `yaml:"order_system"`
	ACS struct {
		Listen                    string `yaml:"listen"`
		ConnectionRequestUsername string `yaml:"connection_request_username"`
		ConnectionRequestPassword string `yaml:"connection_request_password"`
		CPEUsername               string `yaml:"cpe_username"`
		CPEPassword               string `yaml:"cpe_password"`
		APIToken                  string `yaml:"api_token"`
	} `yaml:"acs"`
	Diag struct {
		SpeedURL      string `yaml:"speed_url"`
		SpeedDuration string `yaml:"speed_duration"`
	} `yaml:"diag"`
	IPTV *labConfigIPTV `yaml:"iptv,omitempty"`
	XT2  *labConfigXT2  `yaml:"xt2,omitempty"`
}

// labConfigIPTV and labConfigXT2 are the iptv and xt2 sections of the
// lab's config file.
type labConfigIPTV struct {
	AuthURL string `yaml:"auth_url"`
}

type labConfigXT2 struct {
	Address       string `yaml:"address"`
	Username      string `yaml:"username"`
	Password      string `yaml:"password"`
	KnownHosts    string `yaml:"known_hosts"`
	SNMPAddress   string `yaml:"snmp_address"`
	SNMPVersion   string `yaml:"snmp_version"`
	SNMPCommunity string `yaml:"snmp_community"`
}

func labConfigYAML(site *testlab.Site, store, acsListen, crUser string, crPass secret.Secret, cpeUser string, cpePass secret.Secret, knownHosts string) ([]byte, error) {
	var c labConfigFileYAML
	c.Store = store
	c.Technician = testlab.SampleTechnician
	c.OrderSystem.URL, c.OrderSystem.Token = site.OrderSystemURL, site.Token.Reveal()
	c.ACS.Listen = acsListen
	c.ACS.ConnectionRequestUsername, c.ACS.ConnectionRequestPassword = crUser, crPass.Reveal()
	c.ACS.CPEUsername, c.ACS.CPEPassword = cpeUser, cpePass.Reveal()
	c.ACS.APIToken = randomToken()
	c.Diag.SpeedURL, c.Diag.SpeedDuration = site.SpeedURL, "3s"
	if site.EPGURL != "" {
		c.IPTV = &labConfigIPTV{AuthURL: site.EPGURL}
	}
	if site.XT2 != nil {
		a := site.XT2Access
		c.XT2 = &labConfigXT2{a.SSHAddr, a.Username, a.Password.Reveal(), knownHosts, a.SNMPAddr, "v2c", a.SNMPCommunity.Reveal()}
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	head := "# Written by fieldagent lab up for the lab's lifetime; removed when it stops.\n" +
		"# It holds the lab's credentials: keep it 0600.\n"
	return append([]byte(head), b...), nil
}

// shellQuote quotes p for a POSIX shell when it needs it.
func shellQuote(p string) string {
	if p != "" && !strings.ContainsFunc(p, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,@", r))
	}) {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}

func printLabUp(f *Factory, r *labUpResult) {
	out := f.IO.Out
	fmt.Fprintf(out, "lab %q up: scenario %s", r.Name, r.Scenario)
	if r.Description != "" {
		fmt.Fprintf(out, " — %s", r.Description)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if r.Netns != "" {
		fmt.Fprintf(tw, "laptop namespace\t%s (run the agent here; the addresses below are as seen from it)\n", r.Netns)
	}
	fmt.Fprintf(tw, "devices inform the ACS at\t%s\n", r.ACSURL)
	if g := r.Gateway; g != nil {
		fmt.Fprintf(tw, "e8 gateway\t%s (%s, %s)\n", g.Serial, g.State, g.Access)
	}
	if r.STB != nil {
		fmt.Fprintf(tw, "iTV set-top box\t%s (EPG %s)\n", r.STB.Serial, r.EPGAuthURL)
	}
	if x := r.XT2; x != nil {
		fmt.Fprintf(tw, "XT-2 SSH\t%s (user %s; password in the config; host key in %s)\n", x.SSHAddr, x.Username, x.KnownHosts)
		fmt.Fprintf(tw, "XT-2 SNMP\t%s (v2c; community in the config)\n", x.SNMPAddr)
		fmt.Fprintf(tw, "BBMS\t%s\n", r.BBMSURL)
	}
	if fl := r.Fleet; fl != nil {
		fmt.Fprintf(tw, "fleet\t%d e8 gateways, serials %s … %s\n", fl.Devices, fl.First, fl.Last)
	}
	fmt.Fprintf(tw, "order system\t%s (token in the config)\n", r.OrderSystemURL)
	if r.SpeedShaped {
		fmt.Fprintf(tw, "speed server\t%s (behind the gateway's WAN: at the package rate, only while it is connected)\n", r.SpeedURL)
	} else {
		fmt.Fprintf(tw, "speed server\t%s\n", r.SpeedURL)
	}
	faults := strings.Join(r.Faults, ", ")
	if faults == "" {
		faults = "none"
	}
	fmt.Fprintf(tw, "faults injected\t%s\n", faults)
	fmt.Fprintf(tw, "config (0600)\t%s\n", r.ConfigPath)
	_ = tw.Flush()

	fmt.Fprintln(out, "\nsample orders:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, o := range r.SampleOrders {
		mark := " "
		if o.ID == r.Order {
			mark = "*"
		}
		kinds := make([]string, len(o.Devices))
		for i, k := range o.Devices {
			kinds[i] = string(k)
		}
		fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", mark, o.ID, o.Type, strings.Join(kinds, "+"))
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\nrun the scenario's order (*):  %s\n", r.Run)
	name := ""
	if r.Name != defaultLabName {
		name = " --name " + r.Name
	}
	fmt.Fprintf(out, "inject a fault:                fieldagent lab fault list%s; fieldagent lab fault inject ID%s\n", name, name)
	fmt.Fprintln(out, "stop the lab:                  Ctrl-C")
}
