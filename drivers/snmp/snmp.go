// Package snmp is the SNMP transport that device drivers use to read a device:
// Get of single objects and Walk of a subtree, over SNMPv2c or SNMPv3
// (authPriv only), on top of github.com/gosnmp/gosnmp.
//
// Every request takes a context whose deadline caps the whole operation,
// retries included. Errors wrap the sentinels below so callers can tell a
// silent agent (ErrTimeout) from a rejected SNMPv3 credential (ErrAuth), a
// missing object (ErrNoSuchObject, ErrNoSuchInstance) and an access-control
// refusal (ErrNoAccess). Credentials are secret.Secret values: they are put on
// the wire and nowhere else, never in a log line or an error.
package snmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"

	"fieldagent/agent/secret"
)

// Sentinel errors. Errors returned by this package wrap one of them (or a
// context error); check with errors.Is.
var (
	// ErrTimeout means the agent did not answer in time: wrong address or
	// port, agent down, a firewall, or (SNMPv2c) a wrong community, which an
	// agent drops without a reply. A context deadline that expires while
	// waiting is reported as ErrTimeout too, and also wraps
	// context.DeadlineExceeded.
	ErrTimeout = errors.New("snmp agent did not respond")
	// ErrAuth means the agent rejected the SNMPv3 credentials.
	ErrAuth = errors.New("snmpv3 authentication failed")
	// ErrNoSuchObject means the agent does not implement the object
	// (varbind exception noSuchObject, or noSuchName from an old agent).
	ErrNoSuchObject = errors.New("no such object")
	// ErrNoSuchInstance means the object exists but not the instance asked
	// for (varbind exception noSuchInstance), e.g. a missing ".0" or index.
	ErrNoSuchInstance = errors.New("no such instance")
	// ErrNoAccess means the agent refused the request for the object
	// (error-status noAccess or authorizationError).
	ErrNoAccess = errors.New("no access to object")
	// ErrAgent means the agent answered with another error-status
	// (tooBig, genErr, ...).
	ErrAgent = errors.New("snmp agent returned an error")
	// ErrInvalidTarget means the Target cannot be used; the message names
	// the field to fix.
	ErrInvalidTarget = errors.New("invalid snmp target")
	// ErrInvalidOID means an OID given to Get or Walk is not numeric
	// ("1.3.6.1.2.1.1.5.0"); names from MIBs are not resolved here.
	ErrInvalidOID = errors.New("invalid OID")
	// ErrClosed means the Client was used after Close.
	ErrClosed = errors.New("snmp client closed")
)

// Version is the SNMP protocol version. The zero value is not a version:
// Dial rejects it, so a Target always says which one it means.
type Version int

// Supported versions.
const (
	// V2c is community-based SNMPv2c.
	V2c Version = 2
	// V3 is SNMPv3 with the user-based security model, authPriv.
	V3 Version = 3
)

// String returns "v2c", "v3" or "Version(n)".
func (v Version) String() string {
	switch v {
	case V2c:
		return "v2c"
	case V3:
		return "v3"
	}
	return "Version(" + strconv.Itoa(int(v)) + ")"
}

// AuthProtocol is an SNMPv3 authentication protocol. Dial accepts the names
// below case-insensitively and with or without a dash ("sha-256"). The zero
// value means SHA256.
type AuthProtocol string

// Authentication protocols.
const (
	SHA256 AuthProtocol = "SHA256" // HMAC-SHA-256-192 (RFC 7860), the default.
	SHA512 AuthProtocol = "SHA512" // HMAC-SHA-512-384 (RFC 7860).
	SHA    AuthProtocol = "SHA"    // HMAC-SHA-96 (RFC 3414).
	MD5    AuthProtocol = "MD5"    // HMAC-MD5-96 (RFC 3414); weak.
)

// PrivProtocol is an SNMPv3 privacy (encryption) protocol. Dial accepts the
// names below case-insensitively and with or without a dash ("aes-256"). The
// zero value means AES.
type PrivProtocol string

// Privacy protocols.
const (
	AES    PrivProtocol = "AES"    // AES-128-CFB (RFC 3826), the default.
	AES256 PrivProtocol = "AES256" // AES-256-CFB with Blumenthal key extension (net-snmp "AES-256").
	DES    PrivProtocol = "DES"    // CBC-DES (RFC 3414); weak.
)

// Defaults applied by Dial to zero fields of a Target.
const (
	// DefaultPort is used when Target.Addr has no port.
	DefaultPort = "161"
	// DefaultTimeout is the per-request timeout when Target.Timeout is zero.
	DefaultTimeout = 2 * time.Second
	// maxRepetitions is the GETBULK max-repetitions of Walk; halved on tooBig.
	maxRepetitions = 25
)

// Target says where an agent is and how to authenticate to it.
type Target struct {
	// Addr is the agent's "host:port"; a bare host means port 161.
	Addr string
	// Version is V2c or V3; the zero value is rejected.
	Version Version

	// Community is the SNMPv2c community; it must not be empty for V2c.
	Community secret.Secret

	// User is the SNMPv3 user name; it must not be empty for V3.
	User string
	// AuthProtocol is the SNMPv3 authentication protocol; empty means SHA256.
	AuthProtocol AuthProtocol
	// AuthKey is the SNMPv3 authentication passphrase (at least 8 characters).
	AuthKey secret.Secret
	// PrivProtocol is the SNMPv3 privacy protocol; empty means AES.
	PrivProtocol PrivProtocol
	// PrivKey is the SNMPv3 privacy passphrase (at least 8 characters).
	PrivKey secret.Secret

	// Timeout is how long one request waits for its answer; zero means
	// DefaultTimeout. The context deadline of each call caps it.
	Timeout time.Duration
	// Retries is how many times a request is resent after a timeout; zero
	// sends it once. Negative values are rejected.
	Retries int
}

// Weak reports whether an SNMPv3 target uses a protocol that is kept only
// for old devices: MD5 authentication or DES privacy. Such a target works,
// and callers should warn about it. SNMPv2c targets report false: their
// community is cleartext by design, which callers can see from Version.
func (t Target) Weak() bool {
	if t.Version != V3 {
		return false
	}
	a, errA := normAuth(t.AuthProtocol)
	p, errP := normPriv(t.PrivProtocol)
	return (errA == nil && a == MD5) || (errP == nil && p == DES)
}

// normAuth returns the canonical name of an auth protocol ("" means SHA256).
func normAuth(p AuthProtocol) (AuthProtocol, error) {
	switch AuthProtocol(canon(string(p))) {
	case "", SHA256:
		return SHA256, nil
	case SHA512:
		return SHA512, nil
	case SHA, "SHA1":
		return SHA, nil
	case MD5:
		return MD5, nil
	}
	return "", fmt.Errorf("%w: auth protocol %q is not one of SHA256, SHA512, SHA, MD5", ErrInvalidTarget, string(p))
}

// normPriv returns the canonical name of a priv protocol ("" means AES).
func normPriv(p PrivProtocol) (PrivProtocol, error) {
	switch PrivProtocol(canon(string(p))) {
	case "", AES, "AES128":
		return AES, nil
	case AES256:
		return AES256, nil
	case DES:
		return DES, nil
	}
	return "", fmt.Errorf("%w: priv protocol %q is not one of AES, AES256, DES", ErrInvalidTarget, string(p))
}

func canon(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", ""))
}

var (
	gosnmpAuth = map[AuthProtocol]gosnmp.SnmpV3AuthProtocol{
		SHA256: gosnmp.SHA256, SHA512: gosnmp.SHA512, SHA: gosnmp.SHA, MD5: gosnmp.MD5,
	}
	gosnmpPriv = map[PrivProtocol]gosnmp.SnmpV3PrivProtocol{
		AES: gosnmp.AES, AES256: gosnmp.AES256, DES: gosnmp.DES,
	}
)

// session builds the gosnmp session for t, with defaults applied, or
// explains what is wrong with t.
func (t Target) session() (*gosnmp.GoSNMP, error) {
	if t.Addr == "" {
		return nil, fmt.Errorf("%w: address is empty", ErrInvalidTarget)
	}
	host, portStr, err := net.SplitHostPort(t.Addr)
	if err != nil {
		// A bare host (or bare IPv6 address) gets the default port.
		host, portStr = strings.Trim(t.Addr, "[]"), DefaultPort
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || host == "" {
		return nil, fmt.Errorf("%w: address %q is not host:port", ErrInvalidTarget, t.Addr)
	}
	if t.Retries < 0 {
		return nil, fmt.Errorf("%w: retries %d is negative", ErrInvalidTarget, t.Retries)
	}
	if t.Timeout < 0 {
		return nil, fmt.Errorf("%w: timeout %s is negative", ErrInvalidTarget, t.Timeout)
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	g := &gosnmp.GoSNMP{
		Target:         host,
		Port:           uint16(port),
		Transport:      "udp",
		Timeout:        timeout,
		Retries:        t.Retries,
		MaxRepetitions: maxRepetitions,
		// Back off between retries: each resend waits twice as long as the
		// one before (gosnmp caps every wait by the context's deadline).
		ExponentialTimeout: true,
	}
	switch t.Version {
	case V2c:
		if t.Community.IsZero() {
			return nil, fmt.Errorf("%w: v2c needs a community", ErrInvalidTarget)
		}
		g.Version = gosnmp.Version2c
		g.Community = t.Community.Reveal()
	case V3:
		if t.User == "" {
			return nil, fmt.Errorf("%w: v3 needs a user", ErrInvalidTarget)
		}
		auth, err := normAuth(t.AuthProtocol)
		if err != nil {
			return nil, err
		}
		priv, err := normPriv(t.PrivProtocol)
		if err != nil {
			return nil, err
		}
		// RFC 3414 11.2: passphrases shorter than 8 octets are not allowed,
		// and agents (net-snmp) refuse to create such users.
		if len(t.AuthKey.Reveal()) < 8 {
			return nil, fmt.Errorf("%w: v3 auth key must be at least 8 characters", ErrInvalidTarget)
		}
		if len(t.PrivKey.Reveal()) < 8 {
			return nil, fmt.Errorf("%w: v3 priv key must be at least 8 characters", ErrInvalidTarget)
		}
		g.Version = gosnmp.Version3
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = gosnmp.AuthPriv
		g.SecurityParameters = &gosnmp.UsmSecurityParameters{
			UserName:                 t.User,
			AuthenticationProtocol:   gosnmpAuth[auth],
			AuthenticationPassphrase: t.AuthKey.Reveal(),
			PrivacyProtocol:          gosnmpPriv[priv],
			PrivacyPassphrase:        t.PrivKey.Reveal(),
		}
	default:
		return nil, fmt.Errorf("%w: version %s is not supported (use V2c or V3)", ErrInvalidTarget, t.Version)
	}
	return g, nil
}

// Client is an open SNMP session with one agent. Its methods may be called
// from several goroutines; requests are sent one at a time.
type Client struct {
	target Target // defaults not applied; used for messages only
	log    *slog.Logger

	// sem holds the right to use g; a buffered channel so that waiting
	// for it honours the caller's context.
	sem chan struct{}
	g   *gosnmp.GoSNMP

	// answered is set once the agent answered a request of ours (owned
	// by the holder of sem).
	answered bool

	closeOnce sync.Once
	done      chan struct{} // closed by Close; aborts in-flight requests
}

// Dial validates t, applies its defaults and opens a UDP socket to the agent.
// UDP is connectionless, so Dial sends nothing: an unreachable agent or a
// wrong credential shows up at the first Get or Walk. A nil logger discards.
// Errors wrap ErrInvalidTarget for a bad Target.
func Dial(ctx context.Context, t Target, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g, err := t.session()
	if err != nil {
		return nil, err
	}
	g.Context = ctx
	err = g.Connect()
	g.Context = context.Background()
	if err != nil {
		return nil, fmt.Errorf("snmp dial %s: %w", t.Addr, err)
	}
	logger.Debug("snmp session opened", "addr", t.Addr, "version", t.Version.String(), "weak", t.Weak())
	c := &Client{
		target: t,
		log:    logger,
		sem:    make(chan struct{}, 1),
		g:      g,
		done:   make(chan struct{}),
	}
	return c, nil
}

// Close releases the socket. It aborts requests in flight (they return
// ErrClosed), waits for them to return and is safe to call more than once.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		c.sem <- struct{}{} // wait for the request in flight, never released
		err = c.g.Close()
	})
	return err
}

// do runs fn with exclusive use of the gosnmp session, bounded by ctx and by
// Close.
func (c *Client) do(ctx context.Context, fn func(g *gosnmp.GoSNMP) error) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
	defer func() { <-c.sem }()
	select {
	case <-c.done:
		return ErrClosed
	default:
	}

	// gosnmp checks its Context between retries and caps each wait by its
	// deadline; it does not notice a cancellation while blocked in a read,
	// so push the socket deadline to now when ctx ends or Close is called.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel() // also ends the goroutine below
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-rctx.Done():
		}
	}()
	conn := c.g.Conn
	stop := context.AfterFunc(rctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	c.g.Context = rctx
	defer func() { c.g.Context = context.Background() }()
	err := fn(c.g)
	if err == nil || isClassified(err) {
		c.answered = true // the agent accepted our credentials at least once
		return err
	}
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	if c.target.Version == V3 && !c.answered && engineKnown(c.g) && (isNetTimeout(err) || errors.Is(err, gosnmp.ErrMaxRetriesExceeded)) {
		// The agent answered engine discovery (unauthenticated) but never
		// an encrypted request: net-snmp drops a request it cannot decrypt
		// without a report, so a wrong priv key or protocol looks like this.
		return privSuspectError{err}
	}
	return err
}

// engineKnown reports whether SNMPv3 engine discovery has succeeded.
func engineKnown(g *gosnmp.GoSNMP) bool {
	usp, ok := g.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	return ok && usp.AuthoritativeEngineID != ""
}

// privSuspectError marks a v3 timeout after a successful engine discovery.
type privSuspectError struct{ error }

func (e privSuspectError) Unwrap() error { return e.error }

// Get reads the given objects (numeric OIDs, leading dot optional) with one
// GET request and returns one Value per OID, in order. If the agent answered
// but some objects are missing, Get returns all the values (the missing ones
// have Type "NoSuchObject" or "NoSuchInstance") together with an error that
// wraps ErrNoSuchObject or ErrNoSuchInstance and names the OIDs. Other errors
// wrap ErrTimeout, ErrAuth, ErrNoAccess, ErrAgent, ErrClosed or a context
// error, and come with no values.
func (c *Client) Get(ctx context.Context, oids ...string) ([]Value, error) {
	if len(oids) == 0 {
		return nil, nil
	}
	norm := make([]string, len(oids))
	for i, o := range oids {
		n, err := normalizeOID(o)
		if err != nil {
			return nil, err
		}
		norm[i] = n
	}
	var pkt *gosnmp.SnmpPacket
	err := c.do(ctx, func(g *gosnmp.GoSNMP) error {
		if len(norm) > g.MaxOids {
			return fmt.Errorf("%w: %d OIDs in one Get, at most %d", ErrInvalidOID, len(norm), g.MaxOids)
		}
		var err error
		pkt, err = g.Get(norm)
		return err
	})
	if err != nil {
		err = c.classify(ctx, "get", err)
		c.log.Debug("snmp get failed", "addr", c.target.Addr, "oids", len(norm), "err", err)
		return nil, err
	}
	if err := c.statusError("get", pkt, norm); err != nil {
		c.log.Debug("snmp get refused", "addr", c.target.Addr, "err", err)
		return nil, err
	}
	values := make([]Value, len(pkt.Variables))
	var noObj, noInst []string
	for i, v := range pkt.Variables {
		values[i] = fromPDU(v)
		switch v.Type {
		case gosnmp.NoSuchObject, gosnmp.EndOfMibView:
			noObj = append(noObj, v.Name)
		case gosnmp.NoSuchInstance:
			noInst = append(noInst, v.Name)
		}
	}
	var errs []error
	if len(noObj) > 0 {
		errs = append(errs, fmt.Errorf("snmp get %s: %w: %s (the agent does not implement it; check the OID and the device model)",
			c.target.Addr, ErrNoSuchObject, strings.Join(noObj, ", ")))
	}
	if len(noInst) > 0 {
		errs = append(errs, fmt.Errorf("snmp get %s: %w: %s (the object exists but not this instance; check the index, scalars end in .0)",
			c.target.Addr, ErrNoSuchInstance, strings.Join(noInst, ", ")))
	}
	return values, errors.Join(errs...)
}

// SetValue is one variable of a Set: its OID, its type ("Integer",
// "OctetString", "IPAddress", "Gauge32", "TimeTicks", "ObjectIdentifier",
// "Counter32" or "Counter64") and its value (int, uint, string or, for
// OctetString, []byte).
type SetValue struct {
	OID   string
	Type  string
	Value any
}

var setTypes = map[string]gosnmp.Asn1BER{
	"Integer": gosnmp.Integer, "OctetString": gosnmp.OctetString, "IPAddress": gosnmp.IPAddress,
	"Gauge32": gosnmp.Gauge32, "TimeTicks": gosnmp.TimeTicks, "ObjectIdentifier": gosnmp.ObjectIdentifier,
	"Counter32": gosnmp.Counter32, "Counter64": gosnmp.Counter64,
}

// Set writes the variables in one SetRequest: the agent applies all or none.
// A refusal for a read-only object or an object outside the community's or
// user's write view wraps ErrNoAccess (notWritable, noAccess,
// authorizationError); a value of the wrong type or range wraps ErrAgent
// (wrongType, wrongValue, ...). Other errors are those of Get.
func (c *Client) Set(ctx context.Context, vs ...SetValue) error {
	if len(vs) == 0 {
		return nil
	}
	pdus := make([]gosnmp.SnmpPDU, len(vs))
	oids := make([]string, len(vs))
	for i, v := range vs {
		n, err := normalizeOID(v.OID)
		if err != nil {
			return err
		}
		t, ok := setTypes[v.Type]
		if !ok {
			return fmt.Errorf("%w: type %q of %s is not one of Integer, OctetString, IPAddress, Gauge32, TimeTicks, ObjectIdentifier, Counter32, Counter64", ErrInvalidOID, v.Type, n)
		}
		pdus[i] = gosnmp.SnmpPDU{Name: n, Type: t, Value: v.Value}
		oids[i] = n
	}
	var pkt *gosnmp.SnmpPacket
	err := c.do(ctx, func(g *gosnmp.GoSNMP) error {
		var err error
		pkt, err = g.Set(pdus)
		return err
	})
	if err != nil {
		err = c.classify(ctx, "set", err)
		c.log.Debug("snmp set failed", "addr", c.target.Addr, "oids", len(oids), "err", err)
		return err
	}
	if pkt.Error == gosnmp.NotWritable || pkt.Error == gosnmp.ReadOnly {
		oid := ""
		if i := int(pkt.ErrorIndex) - 1; i >= 0 && i < len(oids) {
			oid = " " + oids[i]
		}
		return fmt.Errorf("snmp set %s: %w:%s is not writable (agent said %s): check the OID, and that the community or user has write access", c.target.Addr, ErrNoAccess, oid, pkt.Error)
	}
	return c.statusError("set", pkt, oids)
}

// Walk reads the subtree under root with GETBULK requests and returns its
// objects in OID order. An empty subtree gives no values and no error; if
// root itself is an object (a scalar such as sysDescr.0) Walk returns it, as
// snmpwalk does. An agent that returns OIDs out of order ends the walk with
// an error wrapping ErrAgent. Other errors are those of Get; values read
// before an error are not returned.
func (c *Client) Walk(ctx context.Context, root string) ([]Value, error) {
	rootOID, err := normalizeOID(root)
	if err != nil {
		return nil, err
	}
	rootArcs, _ := parseOID(rootOID) // valid: normalizeOID checked it
	var values []Value
	err = c.do(ctx, func(g *gosnmp.GoSNMP) error {
		var werr error
		values, werr = c.walk(g, rootOID, rootArcs)
		return werr
	})
	if err != nil {
		if !isClassified(err) {
			err = c.classify(ctx, "walk", err)
		}
		c.log.Debug("snmp walk failed", "addr", c.target.Addr, "root", rootOID, "err", err)
		return nil, err
	}
	if len(values) == 0 {
		got, err := c.Get(ctx, rootOID)
		if err == nil && len(got) == 1 {
			values = got
		} else if !errors.Is(err, ErrNoSuchObject) && !errors.Is(err, ErrNoSuchInstance) {
			return nil, err
		}
	}
	c.log.Debug("snmp walk", "addr", c.target.Addr, "root", rootOID, "values", len(values))
	return values, nil
}

// classifiedError marks an error that already wraps this package's sentinels.
type classifiedError struct{ error }

func (e classifiedError) Unwrap() error { return e.error }

func isClassified(err error) bool {
	var ce classifiedError
	return errors.As(err, &ce)
}

func (c *Client) walk(g *gosnmp.GoSNMP, rootOID string, rootArcs []uint32) ([]Value, error) {
	var values []Value
	cur, curArcs := rootOID, rootArcs
	reps := uint32(maxRepetitions)
	for {
		pkt, err := g.GetBulk([]string{cur}, 0, reps)
		if err != nil {
			return nil, err
		}
		if pkt.Error == gosnmp.TooBig && reps > 1 {
			reps /= 2
			continue
		}
		if err := c.statusError("walk", pkt, []string{cur}); err != nil {
			return nil, classifiedError{err}
		}
		if len(pkt.Variables) == 0 {
			return values, nil
		}
		for _, v := range pkt.Variables {
			switch v.Type {
			case gosnmp.EndOfMibView, gosnmp.NoSuchObject, gosnmp.NoSuchInstance:
				return values, nil
			}
			arcs, err := parseOID(v.Name)
			if err != nil {
				return nil, classifiedError{fmt.Errorf("snmp walk %s: %w: bad OID in response: %w", c.target.Addr, ErrAgent, err)}
			}
			if !hasPrefix(arcs, rootArcs) {
				return values, nil
			}
			if compareOID(arcs, curArcs) <= 0 {
				return nil, classifiedError{fmt.Errorf("snmp walk %s: %w: OID %s does not follow %s (agent bug; walk a smaller subtree)",
					c.target.Addr, ErrAgent, v.Name, cur)}
			}
			values = append(values, fromPDU(v))
			cur, curArcs = v.Name, arcs
		}
	}
}

// statusError turns a non-zero error-status into an error.
func (c *Client) statusError(op string, pkt *gosnmp.SnmpPacket, oids []string) error {
	if pkt.Error == gosnmp.NoError {
		return nil
	}
	oid := ""
	if i := int(pkt.ErrorIndex) - 1; i >= 0 && i < len(oids) {
		oid = " for " + oids[i]
	} else if i >= 0 && i < len(pkt.Variables) {
		oid = " for " + pkt.Variables[i].Name
	}
	switch pkt.Error {
	case gosnmp.NoAccess, gosnmp.AuthorizationError:
		return fmt.Errorf("snmp %s %s: %w%s (agent said %s): the agent's access control (view) does not allow it; check the view of this community or user",
			op, c.target.Addr, ErrNoAccess, oid, pkt.Error)
	case gosnmp.NoSuchName:
		return fmt.Errorf("snmp %s %s: %w%s (agent said noSuchName)", op, c.target.Addr, ErrNoSuchObject, oid)
	}
	return fmt.Errorf("snmp %s %s: %w%s: error-status %s", op, c.target.Addr, ErrAgent, oid, pkt.Error)
}

// classify maps an error from gosnmp to this package's sentinels.
func (c *Client) classify(ctx context.Context, op string, err error) error {
	addr := c.target.Addr
	switch {
	case errors.Is(err, ErrClosed), errors.Is(err, ErrInvalidOID):
		return err
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("snmp %s %s: %w", op, addr, ctx.Err())
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("snmp %s %s: %w before the deadline: %w", op, addr, ErrTimeout, context.DeadlineExceeded)
	case isAuthFailure(err):
		return fmt.Errorf("snmp %s %s: %w for user %q (%s): a wrong user name, a wrong auth or priv key "+
			"and a wrong auth or priv protocol look alike on the wire; check the user name, the auth protocol (%s), the auth key, "+
			"the priv protocol (%s), the priv key, and that the agent has this user with authPriv",
			op, addr, ErrAuth, c.target.User, reportName(err), authName(c.target.AuthProtocol), privName(c.target.PrivProtocol))
	case errors.Is(err, gosnmp.ErrMaxRetriesExceeded), isNetTimeout(err):
		hint := "check the address and port, that the agent runs and that no firewall drops UDP"
		if c.target.Version == V2c {
			hint += ", and the community: a v2c agent drops a wrong community without answering"
		}
		return fmt.Errorf("snmp %s %s: %w (%d attempts): %s", op, addr, ErrTimeout, c.target.Retries+1, hint)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		// e.g. ICMP port unreachable seen as "connection refused" on a
		// connected UDP socket: nothing listens there.
		return fmt.Errorf("snmp %s %s: %w: %w (nothing answers at this address and port)", op, addr, ErrTimeout, err)
	}
	return fmt.Errorf("snmp %s %s: %w", op, addr, err)
}

// isAuthFailure reports whether err is gosnmp's way of saying that the
// agent rejected the SNMPv3 credentials: a USM report (wrongDigests,
// unknownUserNames, decryptionErrors, unsupportedSecLevels), a report that
// fails authentication because it was sent with the agent's idea of the
// keys, or a request the agent dropped after discovery (privSuspectError).
// The string checks pin gosnmp v1.47.0 messages that have no sentinel;
// TestSNMPDErrors fails if they change.
func isAuthFailure(err error) bool {
	var ps privSuspectError
	if errors.As(err, &ps) {
		return true
	}
	switch {
	case errors.Is(err, gosnmp.ErrWrongDigest), errors.Is(err, gosnmp.ErrUnknownUsername),
		errors.Is(err, gosnmp.ErrDecryption), errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "incoming packet is not authentic") ||
		strings.Contains(msg, "message is not authenticated but user")
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func reportName(err error) string {
	var ps privSuspectError
	switch {
	case errors.As(err, &ps):
		return "the agent answered engine discovery but not the encrypted request, as when it cannot decrypt it"
	case errors.Is(err, gosnmp.ErrWrongDigest):
		return "agent reported usmStatsWrongDigests"
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return "agent reported usmStatsUnknownUserNames"
	case errors.Is(err, gosnmp.ErrDecryption):
		return "agent reported usmStatsDecryptionErrors"
	case errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return "agent reported usmStatsUnsupportedSecLevels"
	}
	return "the agent's report failed authentication with our keys"
}

func authName(p AuthProtocol) string {
	a, err := normAuth(p)
	if err != nil {
		return string(p)
	}
	return string(a)
}

func privName(p PrivProtocol) string {
	a, err := normPriv(p)
	if err != nil {
		return string(p)
	}
	return string(a)
}
