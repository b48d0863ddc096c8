// Package testlab runs a simulated customer site and operator network
// in-process, on loopback, over real sockets: an order system holding one
// e8 new-install order, a simulated e8 gateway that speaks TR-069 to the
// agent's ACS, the operator's BRAS (PPPoE account check) and ITMS (LOID
// registration), and a speed server standing in for the internet.
//
// testlab is an importable library: tests and `fieldagent lab demo` start a
// whole site with one call to Start.
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
	"sync"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
	"fieldagent/diagnostics/speedtest"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/operator"
	"fieldagent/testlab/ordersys"
)

// Config describes a site.
type Config struct {
	// ACSURL is where the simulated gateway informs: the agent's ACS.
	ACSURL string
	// ACSUsername and ACSPassword, if set, are the credentials the gateway
	// presents to the ACS.
	ACSUsername string
	ACSPassword secret.Secret
	// ConnReqUsername and ConnReqPassword are the gateway's connection
	// request credentials (the agent's ACS must use the same).
	ConnReqUsername string
	ConnReqPassword secret.Secret
	// PPPoEPassword, LOIDPassword and Token, if set, replace the random
	// credentials the site makes up (tests set known values to prove they
	// never leak).
	PPPoEPassword secret.Secret
	LOIDPassword  secret.Secret
	Token         secret.Secret
	// EditOrder, if set, edits the sample order before the order system
	// holds it; the operator network keeps the true accounts. Tests use it to
	// put a wrong password on the order.
	EditOrder func(*order.Order)
	// Now, if nil, is time.Now.
	Now func() time.Time
	// Logger, if nil, discards.
	Logger *slog.Logger
}

// Site is a running simulated site.
type Site struct {
	// OrderSystemURL and Token reach the order system.
	OrderSystemURL string
	Token          secret.Secret
	// SpeedURL is the speed server standing in for the internet.
	SpeedURL string
	// OperatorURL reaches the BRAS and ITMS.
	OperatorURL string
	// Order is the sample order as the order system holds it.
	Order *order.Order

	Orders   *ordersys.Server
	Operator *operator.Server
	Gateway  *e8sim.Gateway

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

// SampleOrder returns the demo's order: a new e8 GPON install.
func SampleOrder(now time.Time, pppoePassword, loid, loidPassword secret.Secret) *order.Order {
	start := now.Truncate(time.Hour)
	return &order.Order{
		ID:         SampleOrderID,
		Type:       order.TypeNewInstall,
		Technician: SampleTechnician,
		Customer: order.Customer{
			Name:    "张伟 Zhang Wei",
			Phone:   "+86 21 5555 0101",
			Address: "上海市浦东新区世纪大道100号 12F-1201",
		},
		Appointment:      order.Window{Start: start, End: start.Add(2 * time.Hour)},
		Services:         []order.Service{{Device: order.DeviceE8, Access: sampleAccess, BandwidthMbps: sampleBandwidth}},
		PPPoE:            order.Account{Username: SamplePPPoEUser, Password: pppoePassword},
		LOID:             order.LOIDCredential{LOID: loid, Password: loidPassword},
		RequiredFirmware: SampleFirmware,
		Notes:            "Customer asks for a call 15 minutes before arrival.",
	}
}

func randomSecret(n int) secret.Secret {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return secret.New(hex.EncodeToString(b))
}

// Start starts a site and returns once every server listens and the gateway
// runs. Close stops it.
func Start(ctx context.Context, cfg Config) (*Site, error) {
	if cfg.ACSURL == "" {
		return nil, errors.New("testlab: ACSURL is required (the gateway needs an ACS to inform)")
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
	pppoePW := pick(cfg.PPPoEPassword, 6)
	loidPW := pick(cfg.LOIDPassword, 4)
	token := pick(cfg.Token, 16)
	opToken := randomSecret(16)
	loid := secret.New(SampleLOIDPrefix + randomSecret(6).Reveal())
	crUser := cfg.ConnReqUsername
	if crUser == "" {
		crUser = defaultCRUsername
	}

	ctx, cancel := context.WithCancel(ctx)
	s := &Site{Token: token, cancel: cancel}

	op := operator.New(opToken, log.With("lab", "operator"))
	op.AddPPPoEAccount(SamplePPPoEUser, pppoePW)
	op.AddLOID(loid, loidPW)
	s.Operator = op

	o := SampleOrder(now(), pppoePW, loid, loidPW)
	if cfg.EditOrder != nil {
		cfg.EditOrder(o)
	}
	s.Order = o
	s.Orders = ordersys.New(token, log.With("lab", "ordersys"))
	s.Orders.AddOrder(o)

	speed := speedtest.NewServer(speedtest.ServerOptions{Logger: log.With("lab", "speed")})

	var err error
	if s.OperatorURL, err = s.serve(op); err != nil {
		s.Close()
		return nil, err
	}
	if s.OrderSystemURL, err = s.serve(s.Orders); err != nil {
		s.Close()
		return nil, err
	}
	if s.SpeedURL, err = s.serve(speed); err != nil {
		s.Close()
		return nil, err
	}

	gw, err := e8sim.New(e8sim.Config{
		ACSURL: cfg.ACSURL, ACSUsername: cfg.ACSUsername, ACSPassword: cfg.ACSPassword,
		Vendor: "ZTE", Model: "ZXHN F650", OUI: "00D0D0", ProductClass: "F650",
		Serial: SampleGatewaySN, Firmware: SampleFirmware, Hardware: "V1.0",
		Access:          string(sampleAccess),
		ConnReqUsername: crUser, ConnReqPassword: cfg.ConnReqPassword,
		OperatorURL: s.OperatorURL, OperatorToken: opToken,
		Logger: log.With("lab", "e8", "serial", SampleGatewaySN),
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Gateway = gw
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := gw.Run(ctx); err != nil && ctx.Err() == nil {
			s.setErr(fmt.Errorf("e8 gateway: %w", err))
		}
	}()
	return s, nil
}

func (s *Site) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testlab: listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.setErr(err)
		}
	}()
	return "http://" + ln.Addr().String(), nil
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

// Close stops every server and the gateway and waits for them.
func (s *Site) Close() {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
	s.wg.Wait()
}
