// Package testlab runs a simulated customer site and operator network
// in-process, on loopback, over real sockets: an order system holding the
// sample work orders (every order type, every device kind), a simulated e8
// gateway that speaks TR-069 to the agent's ACS (factory-fresh, installed or
// with a PPPoE fault), optionally an iTV set-top box with its EPG and an
// XT-2 business router with its BBMS, the operator's BRAS (PPPoE account
// check) and ITMS (LOID registration), and a speed server standing in for
// the internet.
//
// testlab is an importable library: tests and `fieldagent lab demo` start a
// whole site with one call to Start.
//
// With Config.Net (and root) the site runs in network namespaces instead
// (testlab/netsite, see netns.go): the agent runs in the laptop's, behind
// the simulated gateway, and reaches the internet exactly while the
// gateway's INTERNET WAN is connected. Without root, Config.Shape gives a
// loopback site the same dependence: the speed server sits behind a
// userspace relay (testlab/relay, see shape.go) shaped to the package and
// up only while the gateway's WAN is connected.
package testlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
	"fieldagent/diagnostics"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/testlab/bbms"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/mcast"
	"fieldagent/testlab/netsite"
	"fieldagent/testlab/operator"
	"fieldagent/testlab/ordersys"
	"fieldagent/testlab/relay"
	"fieldagent/testlab/stbsim"
	"fieldagent/testlab/xt2sim"
)

// ErrConfig is wrapped by the errors Start returns for a Config it cannot
// run; the message names the field to fix.
var ErrConfig = errors.New("invalid testlab config")

// GatewayState is the state the site's e8 gateway starts in.
type GatewayState string

// The gateway starting states.
const (
	// GatewayFactory is a factory-fresh gateway: no WAN, no LOID. It is the
	// zero value (a new install).
	GatewayFactory GatewayState = ""
	// GatewayInstalled is a gateway a completed install left: the INTERNET
	// PPPoE WAN with the sample account and the registered LOID. It
	// registers with ITMS and comes up connected on its own (move, removal).
	GatewayInstalled GatewayState = "installed"
	// GatewayFaultPPPoE is an installed gateway whose WAN carries a wrong
	// PPPoE password: the BRAS rejects it and the WAN stays Disconnected
	// with ERROR_AUTHENTICATION_FAILURE until the true account is
	// configured again (repair).
	GatewayFaultPPPoE GatewayState = "fault_pppoe"
)

// Config describes a site. The zero value (with ACSURL set) is the classic
// site: a factory-fresh e8 gateway, no set-top box, no XT-2.
type Config struct {
	// ACSURL is where the simulated gateway and set-top box inform: the
	// agent's ACS. Required unless the site has neither (NoGateway and not
	// STB).
	ACSURL string
	// ACSUsername and ACSPassword, if set, are the credentials the gateway
	// and set-top box present to the ACS.
	ACSUsername string
	ACSPassword secret.Secret
	// ConnReqUsername and ConnReqPassword are the gateway's (and set-top
	// box's) connection request credentials (the agent's ACS must use the
	// same).
	ConnReqUsername string
	ConnReqPassword secret.Secret
	// PPPoEPassword, LOIDPassword and Token, if set, replace the random
	// credentials the site makes up (tests set known values to prove they
	// never leak).
	PPPoEPassword secret.Secret
	LOIDPassword  secret.Secret
	Token         secret.Secret
	// IPTVPassword and XT2PPPoEPassword, if set, replace the random
	// passwords of SampleIPTVAccount and SampleXT2PPPoEUser.
	IPTVPassword     secret.Secret
	XT2PPPoEPassword secret.Secret
	// EditOrder, if set, edits every sample order before the order system
	// holds it (check o.ID to edit one); the operator network keeps the true
	// accounts. Tests use it to put a wrong password on an order. If edits
	// give two orders the same ID, the order system holds the one listed
	// first in SampleOrderIDs.
	EditOrder func(*order.Order)
	// Gateway is the state the e8 gateway starts in; the zero value is
	// GatewayFactory.
	Gateway GatewayState
	// NoGateway leaves the e8 gateway out (an XT-2-only site); Site.Gateway
	// is then nil and Gateway must be GatewayFactory.
	NoGateway bool
	// STB also starts an iTV set-top box (serial SampleSTBSN) informing on
	// ACSURL, and its EPG, which knows SampleIPTVAccount.
	STB bool
	// XT2 also starts an XT-2 business router (serial SampleXT2SN) whose
	// BRAS is the site's operator and whose BBMS (which knows
	// SampleBBMSCustomer) the site serves.
	XT2 bool
	// Multicast, if set, also runs the iTV head-end (testlab/mcast) on this
	// interface, sending SampleChannel: "lo" in a network namespace where
	// multicast is routed to it (testlab/mcast/mcasttest). Empty leaves it
	// out, as tests must not send multicast on the host's interfaces.
	Multicast string
	// Access is the e8 gateway's uplink (WANAccessType, optical or DSL
	// readings) and the access of the e8 sample orders' services; "" is
	// gpon. The XT-2 order stays on 100 Mbit/s LAN.
	Access order.AccessType
	// BandwidthMbps is the package of the e8 sample orders' internet
	// service; 0 is 300 Mbit/s, or what Access carries if that is less
	// (order.MaxBandwidthMbps).
	BandwidthMbps int
	// RxPowerDBm is the e8 gateway's optical receive power on epon or gpon
	// access; 0 is the simulator's default (-18.5 dBm).
	RxPowerDBm float64
	// LANHosts are the devices cabled (or associated) to the e8 gateway's
	// LAN at start: its hosts table lists them.
	LANHosts []e8sim.LANHost
	// Now, if nil, is time.Now.
	Now func() time.Time
	// Logger, if nil, discards.
	Logger *slog.Logger

	// Net, if set, runs the site in the network namespaces of a netsite
	// (testlab/netsite) that Start brings up and Close removes, instead of
	// on loopback; see netns.go for who listens where. Net.Instance names
	// the namespaces; PackageDownMbps and PackageUpMbps of 0 are the e8
	// sample orders' package (BandwidthMbps). ACSURL's host must then be
	// an IP address the gateway reaches, normally the laptop's (NetACSURL).
	// It needs root and the ip, tc and nft commands: without them Start
	// fails with an error wrapping netsite.ErrUnavailable, and the caller
	// runs the site without Net. The e8 gateway and the operator's servers
	// run in namespaces; STB, XT2 and Multicast do not yet (ErrConfig).
	Net *netsite.Options
	// Shape, on a loopback site, puts the speed server behind a userspace
	// relay (testlab/relay) that stands for the gateway's WAN: SpeedURL is
	// the relay, shaped to the package (BandwidthMbps down, ShapeUpMbps
	// up), and it carries connections exactly while the e8 gateway's
	// INTERNET WAN is Connected (WANUp); while it is not, connections are
	// refused and open ones cut. It needs the e8 gateway. The DNS stays
	// direct (the relay carries TCP only). With Net, Shape is ignored: the
	// gateway namespace shapes its WAN with tc tbf. False serves the speed
	// server directly, unshaped, whatever the gateway does.
	Shape bool
	// ShapeUpMbps is the relay's upload rate with Shape, in Mbit/s; 0 is
	// a tenth of the package.
	ShapeUpMbps float64

	// NetReady, if set, is called with the site's namespaces once they and
	// the site's servers are up and before the devices start: a caller
	// starts the ACS in the laptop namespace here so that the gateway's
	// first Inform finds it. An error stops Start. Nil without Net.
	NetReady func(*netsite.Net) error
}

// XT2Access is what a driver needs to reach the site's XT-2: the SSH CLI
// (address, host key, login) and the SNMPv2c agent.
type XT2Access struct {
	SSHAddr       string
	HostKey       ssh.PublicKey
	Username      string
	Password      secret.Secret
	SNMPAddr      string
	SNMPCommunity secret.Secret
}

// KnownHostsLine returns the OpenSSH known_hosts line for the router's host
// key (with a trailing newline), to write the file an SSH client checks.
func (a XT2Access) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(a.SSHAddr)}, a.HostKey) + "\n"
}

// SampleCredentials are the accounts the sample orders carry and the
// operator network knows.
type SampleCredentials struct {
	// PPPoEPassword is SamplePPPoEUser's password.
	PPPoEPassword secret.Secret
	// LOID and LOIDPassword are the e8 gateway's ONT registration.
	LOID, LOIDPassword secret.Secret
	// IPTVPassword is SampleIPTVAccount's password.
	IPTVPassword secret.Secret
	// XT2PPPoEPassword is SampleXT2PPPoEUser's password.
	XT2PPPoEPassword secret.Secret
}

// Site is a running simulated site.
type Site struct {
	// OrderSystemURL and Token reach the order system.
	OrderSystemURL string
	Token          secret.Secret
	// SpeedURL is the speed server standing in for the internet; with
	// Config.Shape the WAN relay in front of it.
	SpeedURL string
	// OperatorURL reaches the BRAS and ITMS.
	OperatorURL string
	// DNS is the operator's resolver (it stands in for the DNS server the
	// BRAS hands out with a PPPoE session) and DNSAddr its host:port on
	// loopback (with Config.Net on the internet address, reached through
	// the gateway), the resolver a diagnosis asks. It knows
	// diagnostics.DefaultDNSName.
	DNS     *operator.DNS
	DNSAddr string
	// Order is the SampleOrderID order as the order system holds it; it is
	// SampleOrders[SampleOrderID].
	Order *order.Order
	// SampleOrders are the sample orders as the order system holds them
	// (after Config.EditOrder, credentials included), by their sample ID
	// (the constants, even if an edit changed o.ID).
	SampleOrders map[string]*order.Order
	// Credentials are the true accounts the operator network, the EPG and
	// BBMS know, whatever EditOrder put on the orders.
	Credentials SampleCredentials

	Orders   *ordersys.Server
	Operator *operator.Server
	// Gateway is the e8 gateway; nil with Config.NoGateway.
	Gateway *e8sim.Gateway

	// STB is the iTV set-top box, EPG its authentication server and EPGURL
	// the AuthURL to configure on it; nil and "" without Config.STB.
	STB    *stbsim.Box
	EPG    *stbsim.EPG
	EPGURL string

	// XT2 is the XT-2 business router, XT2Access how to reach it, BBMS the
	// BBMS it binds to and BBMSURL that server's base URL; zero without
	// Config.XT2.
	XT2       *xt2sim.Router
	XT2Access XT2Access
	BBMS      *bbms.Server
	BBMSURL   string

	// Net is the site's network namespaces (Config.Net); nil on loopback.
	// The URLs and addresses above are then as seen from the laptop
	// namespace, where the agent runs (netns.go).
	Net *netsite.Net

	// HeadEnd is the iTV head-end sending the channel Channel
	// (SampleChannel, the IPTV check's target); nil and "" without
	// Config.Multicast. What reaches the set-top box's port (LAN4) depends
	// on the gateway's IPTV configuration (see connectIPTV).
	HeadEnd *mcast.Source
	Channel string

	faults faultState
	svc    serviceFaultState
	wan    netWANState
	// relay is the WAN relay in front of the speed server (Config.Shape).
	relay *relay.Relay

	cancel  context.CancelFunc
	servers []*http.Server
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error
}

// Sample site identities.
const (
	SampleOrderID     = "WO-20261125-0001"
	SampleTechnician  = "t-0042"
	SampleGatewaySN   = "ZTEG1A2B3C4D"
	SamplePPPoEUser   = "ad02158812345"
	SampleFirmware    = "V2.1.0T6"
	SampleLOIDPrefix  = "LOID"
	sampleAccess      = order.AccessGPON
	sampleBandwidth   = 300
	defaultCRUsername = "itms"
)

// The other sample orders and the identities they use.
const (
	// SampleITVOrderID is a new install of e8 internet and iTV.
	SampleITVOrderID = "WO-20261125-0002"
	// SampleXT2OrderID is a new install of an XT-2 business router.
	SampleXT2OrderID = "WO-20261125-0003"
	// SampleMoveOrderID moves the sample customer's e8 service.
	SampleMoveOrderID = "WO-20261125-0004"
	// SampleRepairOrderID repairs the sample customer's e8 internet.
	SampleRepairOrderID = "WO-20261125-0005"
	// SampleRemovalOrderID takes the sample customer's e8 service out.
	SampleRemovalOrderID = "WO-20261125-0006"

	// SampleIPTVAccount is the iTV account of the iTV order.
	SampleIPTVAccount = "itv0215881234"
	// SampleXT2PPPoEUser is the business PPPoE account of the XT-2 order.
	SampleXT2PPPoEUser = "bz02155503030"
	// SampleBBMSCustomer is the XT-2 order's BBMS customer ID.
	SampleBBMSCustomer = "BBMS-3100012345"
	// SampleSTBSN and SampleXT2SN are the serials of the set-top box and
	// the XT-2.
	SampleSTBSN = "EC6108V9A1B2C3"
	SampleXT2SN = "XT2F1E2D3C4B5"
	// SampleChannel is the iTV channel the set-top box tunes to after
	// authentication and the head-end sends ("group:port").
	SampleChannel = "239.3.1.1:5140"

	sampleXT2User = "admin"
)

// SampleOrderIDs returns the IDs of every sample order, SampleOrderID first.
func SampleOrderIDs() []string {
	return []string{SampleOrderID, SampleITVOrderID, SampleXT2OrderID, SampleMoveOrderID, SampleRepairOrderID, SampleRemovalOrderID}
}

// sampleCustomer returns the customer of the e8 sample orders.
func sampleCustomer() order.Customer {
	return order.Customer{
		Name:    "张伟 Zhang Wei",
		Phone:   "+86 21 5555 0101",
		Address: "上海市浦东新区世纪大道100号 12F-1201",
	}
}

// sampleWindow is the appointment of every sample order: two hours from the
// start of the current hour.
func sampleWindow(now time.Time) order.Window {
	start := now.Truncate(time.Hour)
	return order.Window{Start: start, End: start.Add(2 * time.Hour)}
}

func e8Service() order.Service {
	return order.Service{Device: order.DeviceE8, Access: sampleAccess, BandwidthMbps: sampleBandwidth}
}

// SampleOrder returns the demo's order: a new e8 GPON install.
func SampleOrder(now time.Time, pppoePassword, loid, loidPassword secret.Secret) *order.Order {
	return &order.Order{
		ID:               SampleOrderID,
		Type:             order.TypeNewInstall,
		Technician:       SampleTechnician,
		Customer:         sampleCustomer(),
		Appointment:      sampleWindow(now),
		Services:         []order.Service{e8Service()},
		PPPoE:            order.Account{Username: SamplePPPoEUser, Password: pppoePassword},
		LOID:             order.LOIDCredential{LOID: loid, Password: loidPassword},
		RequiredFirmware: SampleFirmware,
		Notes:            "Customer asks for a call 15 minutes before arrival.",
	}
}

// SampleITVOrder returns the SampleITVOrderID order: a new install of e8
// GPON internet (the sample order's accounts) and an iTV set-top box on
// SampleIPTVAccount.
func SampleITVOrder(now time.Time, c SampleCredentials) *order.Order {
	o := SampleOrder(now, c.PPPoEPassword, c.LOID, c.LOIDPassword)
	o.ID = SampleITVOrderID
	o.Services = append(o.Services, order.Service{Device: order.DeviceITV, Access: sampleAccess})
	o.IPTV = order.IPTVAccount{Account: SampleIPTVAccount, Password: c.IPTVPassword}
	o.Notes = "Internet and iTV: the set-top box goes by the living-room TV."
	return o
}

// SampleXT2Order returns the SampleXT2OrderID order: a new install of an
// XT-2 business router on 100 Mbit/s LAN access, with its own PPPoE account
// and BBMS customer.
func SampleXT2Order(now time.Time, c SampleCredentials) *order.Order {
	return &order.Order{
		ID:         SampleXT2OrderID,
		Type:       order.TypeNewInstall,
		Technician: SampleTechnician,
		Customer: order.Customer{
			Name:    "上海星辰贸易有限公司 Shanghai Xingchen Trading Co., Ltd.",
			Phone:   "+86 21 5555 0303",
			Address: "上海市黄浦区南京东路300号 15F-1502",
		},
		Appointment:    sampleWindow(now),
		Services:       []order.Service{{Device: order.DeviceXT2, Access: order.AccessLAN, BandwidthMbps: 100}},
		PPPoE:          order.Account{Username: SampleXT2PPPoEUser, Password: c.XT2PPPoEPassword},
		BBMSCustomerID: SampleBBMSCustomer,
		Notes:          "Business line: the router goes in the comms cabinet on 15F; ask reception for the key.",
	}
}

// SampleMoveOrder returns the SampleMoveOrderID order: the sample
// customer's e8 GPON service (same accounts) moves to a new address.
func SampleMoveOrder(now time.Time, c SampleCredentials) *order.Order {
	o := SampleOrder(now, c.PPPoEPassword, c.LOID, c.LOIDPassword)
	o.ID = SampleMoveOrderID
	o.Type = order.TypeMove
	o.Customer.Address = "上海市浦东新区张杨路500号 8F-0803"
	o.Notes = "Moving from 世纪大道100号; the customer brings the gateway."
	return o
}

// SampleRepairOrder returns the SampleRepairOrderID order: the sample
// customer reports no internet on the e8 GPON service; the order carries the
// true PPPoE account and LOID.
func SampleRepairOrder(now time.Time, c SampleCredentials) *order.Order {
	o := SampleOrder(now, c.PPPoEPassword, c.LOID, c.LOIDPassword)
	o.ID = SampleRepairOrderID
	o.Type = order.TypeRepair
	o.Notes = "Customer reports no internet since yesterday evening; the gateway's lights look normal."
	return o
}

// SampleRemovalOrder returns the SampleRemovalOrderID order: the sample
// customer's e8 GPON service is taken out (the order names its accounts).
func SampleRemovalOrder(now time.Time, c SampleCredentials) *order.Order {
	o := SampleOrder(now, c.PPPoEPassword, c.LOID, c.LOIDPassword)
	o.ID = SampleRemovalOrderID
	o.Type = order.TypeRemoval
	o.Notes = "Customer cancels broadband: collect the gateway and the power adapter."
	return o
}

// AllSampleOrders returns every sample order, in SampleOrderIDs order.
func AllSampleOrders(now time.Time, c SampleCredentials) []*order.Order {
	return []*order.Order{
		SampleOrder(now, c.PPPoEPassword, c.LOID, c.LOIDPassword),
		SampleITVOrder(now, c),
		SampleXT2Order(now, c),
		SampleMoveOrder(now, c),
		SampleRepairOrder(now, c),
		SampleRemovalOrder(now, c),
	}
}

func randomSecret(n int) secret.Secret {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return secret.New(hex.EncodeToString(b))
}

// Start starts a site and returns once every server listens and the
// devices run. Close stops it. A Config it cannot run gives an error
// wrapping ErrConfig.
func Start(ctx context.Context, cfg Config) (*Site, error) {
	switch {
	case cfg.Gateway != GatewayFactory && cfg.Gateway != GatewayInstalled && cfg.Gateway != GatewayFaultPPPoE:
		return nil, fmt.Errorf("testlab: %w: Gateway %q is not one of \"\", %q, %q", ErrConfig, cfg.Gateway, GatewayInstalled, GatewayFaultPPPoE)
	case cfg.NoGateway && cfg.Gateway != GatewayFactory:
		return nil, fmt.Errorf("testlab: %w: Gateway %q needs a gateway: unset NoGateway or Gateway", ErrConfig, cfg.Gateway)
	case cfg.ACSURL == "" && (!cfg.NoGateway || cfg.STB):
		return nil, fmt.Errorf("testlab: %w: ACSURL is required (the gateway and set-top box need an ACS to inform)", ErrConfig)
	case cfg.Access != "" && !slices.Contains(order.AccessTypes(), cfg.Access):
		return nil, fmt.Errorf("testlab: %w: Access %q is not one of %v", ErrConfig, cfg.Access, order.AccessTypes())
	case cfg.BandwidthMbps < 0 || cfg.BandwidthMbps > order.MaxBandwidthMbps(cfg.access()):
		return nil, fmt.Errorf("testlab: %w: BandwidthMbps %d is out of range 0 to %d (%s access)", ErrConfig, cfg.BandwidthMbps, order.MaxBandwidthMbps(cfg.access()), cfg.access())
	case cfg.RxPowerDBm != 0 && !cfg.access().IsPON():
		return nil, fmt.Errorf("testlab: %w: RxPowerDBm needs epon or gpon access, not %s", ErrConfig, cfg.access())
	case len(cfg.LANHosts) > 0 && cfg.NoGateway:
		return nil, fmt.Errorf("testlab: %w: LANHosts need the e8 gateway: unset NoGateway", ErrConfig)
	}
	if err := cfg.checkNet(); err != nil {
		return nil, err
	}
	if err := cfg.checkShape(); err != nil {
		return nil, err
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pick := func(s secret.Secret, n int) secret.Secret {
		if s.IsZero() {
			return randomSecret(n)
		}
		return s
	}
	creds := SampleCredentials{
		PPPoEPassword:    pick(cfg.PPPoEPassword, 6),
		LOID:             secret.New(SampleLOIDPrefix + randomSecret(6).Reveal()),
		LOIDPassword:     pick(cfg.LOIDPassword, 4),
		IPTVPassword:     pick(cfg.IPTVPassword, 6),
		XT2PPPoEPassword: pick(cfg.XT2PPPoEPassword, 6),
	}
	token := pick(cfg.Token, 16)
	opToken := randomSecret(16)
	crUser := cfg.ConnReqUsername
	if crUser == "" {
		crUser = defaultCRUsername
	}

	ctx, cancel := context.WithCancel(ctx)
	s := &Site{Token: token, Credentials: creds, cancel: cancel, SampleOrders: map[string]*order.Order{}}
	if cfg.Net != nil {
		if err := s.startNet(ctx, cfg, log); err != nil {
			s.Close()
			return nil, err
		}
	}

	op := operator.New(opToken, log.With("lab", "operator"))
	op.AddPPPoEAccount(SamplePPPoEUser, creds.PPPoEPassword)
	op.AddPPPoEAccount(SampleXT2PPPoEUser, creds.XT2PPPoEPassword)
	op.AddLOID(creds.LOID, creds.LOIDPassword)
	s.Operator = op

	s.Orders = ordersys.New(token, log.With("lab", "ordersys"))
	orders := AllSampleOrders(now(), creds)
	for i, id := range SampleOrderIDs() {
		o := orders[i]
		cfg.shapeOrder(o)
		if cfg.EditOrder != nil {
			cfg.EditOrder(o)
		}
		s.SampleOrders[id] = o
	}
	s.Order = s.SampleOrders[SampleOrderID]
	// Added last to first, so that if edits made two IDs equal the order
	// system holds the first (the sample order, as before there were more).
	for _, o := range slices.Backward(orders) {
		s.Orders.AddOrder(o)
	}

	speed := speedtest.NewServer(speedtest.ServerOptions{Logger: log.With("lab", "speed")})

	var err error
	if s.OperatorURL, err = s.serveAt(placeOperator, op); err != nil {
		s.Close()
		return nil, err
	}
	if s.OrderSystemURL, err = s.serveAt(placeOrders, s.Orders); err != nil {
		s.Close()
		return nil, err
	}
	if s.SpeedURL, err = s.serveAt(placeSpeed, speed); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.Shape && s.Net == nil {
		if s.SpeedURL, err = s.startShape(ctx, cfg, s.SpeedURL, log.With("lab", "wan-relay")); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.DNS, err = s.startDNS(ctx, map[string]string{diagnostics.DefaultDNSName: "100.64.0.80"}, log.With("lab", "dns")); err != nil {
		s.Close()
		return nil, fmt.Errorf("testlab: %w", err)
	}
	s.DNSAddr = s.DNS.Addr()
	s.wg.Add(1)
	go func() { defer s.wg.Done(); <-ctx.Done(); _ = s.DNS.Close() }()
	if s.Net != nil && cfg.NetReady != nil {
		if err := cfg.NetReady(s.Net); err != nil {
			s.Close()
			return nil, fmt.Errorf("testlab: NetReady: %w", err)
		}
	}
	if !cfg.NoGateway {
		if err := s.startGateway(ctx, cfg, crUser, opToken, log); err != nil {
			s.Close()
			return nil, err
		}
	}
	if cfg.STB {
		if err := s.startSTB(ctx, cfg, crUser, log); err != nil {
			s.Close()
			return nil, err
		}
	}
	if cfg.XT2 {
		if err := s.startXT2(ctx, opToken, log); err != nil {
			s.Close()
			return nil, err
		}
	}
	if cfg.Multicast != "" {
		if err := s.startHeadEnd(ctx, cfg.Multicast, log); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.connectIPTV()
	switch {
	case s.Net != nil:
		s.wan.followed = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.followWAN(ctx, log.With("lab", "netsite"), "gateway namespace", s.Net.SetWANUp)
		}()
	case s.relay != nil:
		s.wan.followed = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.followWAN(ctx, log.With("lab", "wan-relay"), "WAN relay", func(up bool) error { s.relay.SetUp(up); return nil })
		}()
	}
	return s, nil
}

// startHeadEnd starts the iTV head-end sending SampleChannel on iface.
func (s *Site) startHeadEnd(ctx context.Context, iface string, log *slog.Logger) error {
	group, port, err := net.SplitHostPort(SampleChannel)
	if err != nil {
		return fmt.Errorf("testlab: SampleChannel: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("testlab: SampleChannel port: %w", err)
	}
	src, err := mcast.Start(ctx, mcast.Config{Group: group, Port: p, Interface: iface, RTP: true, Logger: log.With("lab", "headend")})
	if err != nil {
		return fmt.Errorf("testlab: start the iTV head-end on %s: %w", iface, err)
	}
	s.HeadEnd, s.Channel = src, SampleChannel
	return nil
}

// access is Config.Access with its default.
func (c Config) access() order.AccessType {
	if c.Access == "" {
		return sampleAccess
	}
	return c.Access
}

// bandwidth is the e8 sample orders' package in Mbit/s: BandwidthMbps
// with its default.
func (c Config) bandwidth() int {
	if c.BandwidthMbps == 0 {
		return min(sampleBandwidth, order.MaxBandwidthMbps(c.access()))
	}
	return c.BandwidthMbps
}

// shapeOrder puts Access and BandwidthMbps on an e8 sample order's
// services (the XT-2 order keeps its own line).
func (c Config) shapeOrder(o *order.Order) {
	if o.HasDevice(order.DeviceXT2) {
		return
	}
	bw := c.bandwidth()
	for i := range o.Services {
		o.Services[i].Access = c.access()
		if o.Services[i].Device == order.DeviceE8 {
			o.Services[i].BandwidthMbps = bw
		}
	}
}

// startGateway starts the e8 gateway in cfg.Gateway's state.
func (s *Site) startGateway(ctx context.Context, cfg Config, crUser string, opToken secret.Secret, log *slog.Logger) error {
	var pre *e8sim.Preinstall
	switch cfg.Gateway {
	case GatewayInstalled, GatewayFaultPPPoE:
		pre = &e8sim.Preinstall{
			PPPoEUser: SamplePPPoEUser, PPPoEPassword: s.Credentials.PPPoEPassword,
			LOID: s.Credentials.LOID, LOIDPassword: s.Credentials.LOIDPassword,
		}
		if cfg.Gateway == GatewayFaultPPPoE {
			// The account's password was changed after the install: the
			// gateway still dials with the old one.
			pre.PPPoEPassword = secret.New("old-" + s.Credentials.PPPoEPassword.Reveal())
		}
	}
	gwCfg := e8sim.Config{
		ACSURL: cfg.ACSURL, ACSUsername: cfg.ACSUsername, ACSPassword: cfg.ACSPassword,
		Vendor: "ZTE", Model: "ZXHN F650", OUI: "00D0D0", ProductClass: "F650",
		Serial: SampleGatewaySN, Firmware: SampleFirmware, Hardware: "V1.0",
		Access:          string(cfg.access()),
		RxPowerDBm:      cfg.RxPowerDBm,
		ConnReqUsername: crUser, ConnReqPassword: cfg.ConnReqPassword,
		OperatorURL: s.OperatorURL, OperatorToken: opToken,
		Preinstall: pre,
		Logger:     log.With("lab", "e8", "serial", SampleGatewaySN),
	}
	if s.Net != nil {
		s.placeGateway(&gwCfg)
	}
	gw, err := e8sim.New(gwCfg)
	if err != nil {
		return err
	}
	for _, h := range cfg.LANHosts {
		if _, err := gw.AddLANHost(h); err != nil {
			return fmt.Errorf("testlab: %w: LANHosts: %w", ErrConfig, err)
		}
	}
	s.Gateway = gw
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.runGateway(ctx, gw); err != nil && ctx.Err() == nil {
			s.setErr(fmt.Errorf("e8 gateway: %w", err))
		}
	}()
	return nil
}

// startSTB serves the EPG and starts the set-top box.
func (s *Site) startSTB(ctx context.Context, cfg Config, crUser string, log *slog.Logger) error {
	s.EPG = stbsim.NewEPG()
	s.EPG.AddAccount(SampleIPTVAccount, s.Credentials.IPTVPassword)
	u, err := s.serve(s.EPG)
	if err != nil {
		return err
	}
	s.EPGURL = u + "/epg/auth"
	box, err := stbsim.New(stbsim.Config{
		ACSURL: cfg.ACSURL, ACSUsername: cfg.ACSUsername, ACSPassword: cfg.ACSPassword,
		Vendor: "Huawei", Model: "EC6108V9", OUI: "00E0FC", ProductClass: "EC6108V9",
		Serial: SampleSTBSN, Firmware: "V100R003C10",
		ConnReqUsername: crUser, ConnReqPassword: cfg.ConnReqPassword,
		Logger: log.With("lab", "stb", "serial", SampleSTBSN),
	})
	if err != nil {
		return err
	}
	s.STB = box
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := box.Run(ctx); err != nil && ctx.Err() == nil {
			s.setErr(fmt.Errorf("iTV set-top box: %w", err))
		}
	}()
	return nil
}

// startXT2 serves the BBMS and starts the XT-2 against it and the operator.
func (s *Site) startXT2(ctx context.Context, opToken secret.Secret, log *slog.Logger) error {
	bbmsToken := randomSecret(16)
	s.BBMS = bbms.New(bbmsToken, log.With("lab", "bbms"))
	s.BBMS.AddCustomer(SampleBBMSCustomer)
	var err error
	if s.BBMSURL, err = s.serve(s.BBMS); err != nil {
		return err
	}
	password, community := randomSecret(8), randomSecret(8)
	r, err := xt2sim.Start(ctx, xt2sim.Config{
		Serial:        SampleXT2SN,
		Users:         map[string]secret.Secret{sampleXT2User: password},
		SNMPCommunity: community,
		BRASURL:       s.OperatorURL, BRASToken: opToken,
		BBMSURL: s.BBMSURL, BBMSToken: bbmsToken,
		Logger: log.With("lab", "xt2", "serial", SampleXT2SN),
	})
	if err != nil {
		return fmt.Errorf("testlab: start XT-2: %w", err)
	}
	s.XT2 = r
	s.XT2Access = XT2Access{
		SSHAddr: r.SSHAddr(), HostKey: r.HostKey(), Username: sampleXT2User, Password: password,
		SNMPAddr: r.SNMPAddr(), SNMPCommunity: community,
	}
	return nil
}

// serve serves h on loopback and returns its base URL.
func (s *Site) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testlab: listen: %w", err)
	}
	return s.serveListener(ln, h), nil
}

// serveListener serves h on ln until Close and returns its base URL.
func (s *Site) serveListener(ln net.Listener, h http.Handler) string {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.setErr(err)
		}
	}()
	return "http://" + ln.Addr().String()
}

func (s *Site) setErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Err returns the first error a site component failed with, if any.
func (s *Site) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Close stops every server and device and waits for them, then removes
// the site's network namespaces (Config.Net); a failure to remove them is
// reported by Err (`fieldagent lab clean` removes what is left).
func (s *Site) Close() {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.HeadEnd != nil {
		_ = s.HeadEnd.Stop()
	}
	if s.XT2 != nil {
		_ = s.XT2.Close()
	}
	if s.relay != nil {
		_ = s.relay.Close()
	}
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
	s.wg.Wait()
	s.closeNet()
}
