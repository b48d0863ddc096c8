package testlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/netsite"
	"fieldagent/testlab/operator"
	"fieldagent/tr069/cpe"
)

// A site with Config.Net runs in the three namespaces of a netsite:
//
//	laptop  192.168.1.2   the agent (`ip netns exec fa-<instance>-laptop fieldagent …`)
//	                      and its ACS (NetACSURL); the order system on the
//	                      laptop's loopback (the technician reaches the back
//	                      office over their own mobile data, not the customer's line)
//	gw      192.168.1.1   the e8 gateway: it informs the ACS across the LAN and
//	        100.64.0.2    answers connection requests on 192.168.1.1:7547; it
//	                      dials the BRAS and registers with ITMS across the WAN
//	op      100.64.0.1    the operator's BRAS and ITMS (OperatorURL)
//	        203.0.113.10  "the internet": the speed server (port 80) and the
//	                      operator's DNS (port 53)
//
// The gateway namespace forwards and masquerades the LAN to the WAN only
// while the simulated gateway's INTERNET WAN is Connected (followWAN), so
// the laptop's speed test, DNS and pings reach the internet exactly when
// the gateway says it is online, at the package rate (tc tbf on the WAN).
// Site's URLs and addresses are as seen from the laptop; Orders, Operator
// and the other in-process handles work as on loopback.
//
// The gateway's TR-143 diagnostics (e8sim) still run from the host's
// namespace, which has no route into the site: they fail to reach the
// internet servers.

// Ports of the servers in namespaces: fixed, as each namespace is the site's own.
const (
	// NetACSPort is where the agent's ACS listens on the laptop (NetACSURL).
	NetACSPort = 7547
	// netSpeedPort and netDNSPort are the speed server's and the DNS's on
	// netsite.InternetAddr; netConnReqPort the gateway's connection
	// request port on netsite.GatewayLANAddr.
	netSpeedPort   = 80
	netDNSPort     = 53
	netConnReqPort = 7547
	// netWANPoll is how often the gateway's WAN state is read: the
	// forwarding follows a change within about this long.
	netWANPoll = 50 * time.Millisecond
)

// NetACSURL returns the ACS URL for a site with Config.Net whose ACS
// listens on the laptop (netsite.LaptopAddr) at port, e.g.
// "http://192.168.1.2:7547/".
func NetACSURL(port uint16) string {
	return "http://" + netip.AddrPortFrom(netsite.LaptopAddr, port).String() + "/"
}

// placement is where a server of the site listens with Config.Net.
type placement struct {
	role netsite.Role
	addr netip.AddrPort
}

// Where the site's servers listen with Config.Net.
var (
	placeOperator = placement{netsite.Operator, netip.AddrPortFrom(netsite.OperatorAddr, 0)}
	placeOrders   = placement{netsite.Laptop, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)}
	placeSpeed    = placement{netsite.Operator, netip.AddrPortFrom(netsite.InternetAddr, netSpeedPort)}
)

// netWANState is the state followWAN last applied to the path from the
// laptop to the internet: the gateway namespace's forwarding (Config.Net)
// or the WAN relay (Config.Shape); followed is set when either runs.
type netWANState struct {
	up       atomic.Bool
	followed bool
}

// checkNet checks the fields that go with Config.Net.
func (c Config) checkNet() error {
	if c.Net == nil {
		if c.NetReady != nil {
			return fmt.Errorf("testlab: %w: NetReady needs Net", ErrConfig)
		}
		return nil
	}
	if c.STB || c.XT2 || c.Multicast != "" {
		return fmt.Errorf("testlab: %w: with Net only the e8 gateway and the operator run in namespaces: leave out STB, XT2 and Multicast, or unset Net", ErrConfig)
	}
	if !c.NoGateway {
		u, err := url.Parse(c.ACSURL)
		if err != nil {
			return fmt.Errorf("testlab: %w: ACSURL: %w", ErrConfig, err)
		}
		if _, err := netip.ParseAddr(u.Hostname()); err != nil {
			return fmt.Errorf("testlab: %w: ACSURL %q: with Net its host must be an IP address the gateway reaches, e.g. the laptop's %s", ErrConfig, c.ACSURL, NetACSURL(NetACSPort))
		}
	}
	return nil
}

// startNet brings up the site's namespaces, the WAN shaped to the package
// unless Config.Net sets the rates.
func (s *Site) startNet(ctx context.Context, cfg Config, log *slog.Logger) error {
	opts := *cfg.Net
	if opts.PackageDownMbps == 0 {
		opts.PackageDownMbps = float64(cfg.bandwidth())
	}
	if opts.PackageUpMbps == 0 {
		opts.PackageUpMbps = float64(cfg.bandwidth())
	}
	n, err := netsite.Up(ctx, opts)
	if errors.Is(err, netsite.ErrInvalidOptions) {
		return fmt.Errorf("testlab: %w: Net: %w", ErrConfig, err)
	}
	if err != nil {
		return fmt.Errorf("testlab: %w", err)
	}
	s.Net = n
	log.Info("site in network namespaces", "laptop", n.Netns(netsite.Laptop), "gateway", n.Netns(netsite.Gateway),
		"operator", n.Netns(netsite.Operator), "down_mbps", opts.PackageDownMbps, "up_mbps", opts.PackageUpMbps)
	return nil
}

// closeNet removes the site's namespaces, if any.
func (s *Site) closeNet() {
	if s.Net == nil {
		return
	}
	if err := s.Net.Close(context.Background()); err != nil {
		s.setErr(fmt.Errorf("testlab: %w", err))
	}
}

// serveAt serves h where p says with Config.Net, else on loopback, and
// returns its base URL.
func (s *Site) serveAt(p placement, h http.Handler) (string, error) {
	if s.Net == nil {
		return s.serve(h)
	}
	ln, err := s.Net.Listen(p.role, "tcp", p.addr.String())
	if err != nil {
		return "", fmt.Errorf("testlab: listen on %s in %s: %w", p.addr, s.Net.Netns(p.role), err)
	}
	return s.serveListener(ln, h), nil
}

// startDNS starts the operator's resolver: on loopback, or with Config.Net
// on the internet address in the operator's namespace.
func (s *Site) startDNS(ctx context.Context, records map[string]string, log *slog.Logger) (*operator.DNS, error) {
	if s.Net == nil {
		return operator.StartDNS(ctx, "127.0.0.1:0", records, log)
	}
	var d *operator.DNS
	err := s.Net.Run(netsite.Operator, func() (err error) {
		d, err = operator.StartDNS(ctx, netip.AddrPortFrom(netsite.InternetAddr, netDNSPort).String(), records, log)
		return err
	})
	return d, err
}

// placeGateway puts the gateway's sockets in its namespace: its clients
// dial from there, and it answers connection requests on its LAN address.
func (s *Site) placeGateway(c *e8sim.Config) {
	c.HTTPClient = s.netClient(netsite.Gateway, 10*time.Second)
	c.ACSHTTPClient = s.netClient(netsite.Gateway, 30*time.Second)
	c.ConnReqAddr = netip.AddrPortFrom(netsite.GatewayLANAddr, netConnReqPort).String()
}

// runGateway runs gw until ctx ends; with Config.Net on a thread in the
// gateway's namespace, where it opens its connection request listener.
func (s *Site) runGateway(ctx context.Context, gw *e8sim.Gateway) error {
	if s.Net == nil {
		return gw.Run(ctx)
	}
	return s.Net.Run(netsite.Gateway, func() error { return gw.Run(ctx) })
}

// netClient returns an HTTP client whose connections are dialed in the
// namespace of role (URLs must carry IP addresses).
func (s *Site) netClient(role netsite.Role, timeout time.Duration) *http.Client {
	n := s.Net
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return n.DialContext(ctx, role, network, addr)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// followWAN makes the path from the laptop to the internet follow the
// simulated gateway's INTERNET WAN: it calls apply(true) once the WAN is
// Connected (the BRAS accepted its dial) and apply(false) once it is not,
// starting from down, and records what it applied for WANUp. A fault, a
// wrong password, a lost link or a factory reset that takes the WAN down
// is followed within netWANPoll; a WAN the ACS just added within
// wanRescan. path names what follows, for the log. A failing apply is
// retried at the next poll and reported once by Err. It runs until ctx
// ends.
func (s *Site) followWAN(ctx context.Context, log *slog.Logger, path string, apply func(up bool) error) {
	t := time.NewTicker(netWANPoll)
	defer t.Stop()
	var w wanWatch
	applied, failing := false, false // netsite.Up and startShape leave the path down
	for {
		up := s.Gateway != nil && w.internetConnected(s.Gateway.Tree())
		if up != applied {
			if err := apply(up); err != nil {
				if ctx.Err() == nil && !failing {
					log.Warn("the path to the internet does not follow the gateway's WAN", "path", path, "up", up, "err", err)
					s.setErr(fmt.Errorf("testlab: %s: follow the gateway's WAN: %w", path, err))
				}
				failing = true
			} else {
				applied, failing = up, false
				s.wan.up.Store(up)
				log.Info("the path to the internet follows the gateway's WAN", "path", path, "up", up)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wanRescan is how often wanWatch lists the gateway's WAN connections
// afresh (a full tree snapshot costs milliseconds); in between it reads
// the status of those it knows.
const wanRescan = time.Second

// wanWatch reads whether a gateway's INTERNET WAN is Connected.
type wanWatch struct {
	insts   []string // the INTERNET WAN connections ("…WANPPPConnection.N.")
	scanned time.Time
}

// internetConnected reports whether tree holds a WAN connection that
// carries the INTERNET service and is Connected. A connection added since
// the last scan shows within wanRescan; a known one's change at once.
func (w *wanWatch) internetConnected(tree *cpe.Tree) bool {
	if time.Since(w.scanned) >= wanRescan {
		w.insts, w.scanned = internetWANs(tree.Snapshot()), time.Now()
	}
	for _, inst := range w.insts {
		if tree.Value(inst+"ConnectionStatus") == "Connected" &&
			strings.Contains(strings.ToUpper(tree.Value(inst+"X_CT-COM_ServiceList")), "INTERNET") {
			return true
		}
	}
	return false
}

// NetWANUp reports whether the site's gateway namespace forwards the LAN
// to the WAN (Config.Net): it follows the simulated gateway's INTERNET WAN
// (within 50 ms, or a second for a WAN just added). It is false on a
// loopback site.
func (s *Site) NetWANUp() bool { return s.Net != nil && s.wan.up.Load() }

// WANUp reports whether the laptop reaches the site's internet (SpeedURL)
// through the gateway's WAN: with Config.Net whether the gateway namespace
// forwards (NetWANUp), with Config.Shape whether the WAN relay carries
// connections; both follow the simulated gateway's INTERNET WAN (within
// 50 ms, or a second for a WAN just added). Without either the speed
// server is reached directly, whatever the gateway does, and WANUp is
// true.
func (s *Site) WANUp() bool { return !s.wan.followed || s.wan.up.Load() }

// internetWANs lists the WAN connections in params (a gateway's tree)
// that carry the INTERNET service.
func internetWANs(params []cpe.Param) []string {
	var insts []string
	for _, p := range params {
		if !strings.HasPrefix(p.Name, e8WANConnDevs) ||
			!strings.Contains(p.Name, ".WANPPPConnection.") && !strings.Contains(p.Name, ".WANIPConnection.") {
			continue
		}
		if inst, field := splitParam(p.Name); field == "X_CT-COM_ServiceList" && strings.Contains(strings.ToUpper(p.Value), "INTERNET") {
			insts = append(insts, inst)
		}
	}
	return insts
}

// splitParam splits "A.B.C" into "A.B." and "C".
func splitParam(name string) (obj, field string) {
	i := strings.LastIndexByte(name, '.')
	return name[:i+1], name[i+1:]
}
