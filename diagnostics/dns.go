package diagnostics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors returned (wrapped) by DNSProbe and ResolveDNS.
var (
	// ErrDNSNoAnswer means the resolver sent no answer at all: every attempt
	// timed out, the port is closed or the network is unreachable.
	ErrDNSNoAnswer = errors.New("no answer from DNS resolver")
	// ErrDNSRcode means the resolver answered with an error code (SERVFAIL,
	// REFUSED, NXDOMAIN, ...). The error is a *DNSRcodeError that carries it.
	ErrDNSRcode = errors.New("DNS resolver answered with an error code")
	// ErrDNSNoRecords means the resolver answered NOERROR but without a
	// record of the asked type (the name exists, the record type does not).
	ErrDNSNoRecords = errors.New("DNS answer holds no record of the asked type")
)

// DNS probe defaults applied to zero DNSOptions fields.
const (
	// DefaultDNSName is the name looked up when DNSOptions.Name is empty: a
	// very popular name that every resolver in the field serves (usually
	// from its cache) and that is a CNAME chain, so the answer also shows
	// that the resolver follows aliases. Set Name to the operator's own
	// portal for a per-site check.
	DefaultDNSName = "www.baidu.com"
	// DefaultDNSTimeout is how long one query waits for its answer.
	DefaultDNSTimeout = 2 * time.Second
	// DefaultDNSAttempts is how many times a query is sent before the
	// resolver counts as silent (one retransmission, like a stub resolver).
	DefaultDNSAttempts = 2
	// DefaultDNSRewriteZone is the zone under which the NXDOMAIN-rewrite
	// check asks for a random name. The .com registry answers NXDOMAIN for
	// unregistered names and has no wildcard, so any address in the answer
	// was made up by the resolver.
	DefaultDNSRewriteZone = "com"
)

// DNS protocols accepted by DNSOptions.Protocol.
const (
	// DNSProtocolUDP queries over UDP and repeats a truncated answer's
	// query over TCP.
	DNSProtocolUDP = "udp"
	// DNSProtocolTCP queries over TCP only.
	DNSProtocolTCP = "tcp"
)

// DNSOptions configures DNSProbe and ResolveDNS. The zero value looks up
// DefaultDNSName's A records over UDP, 2s per query and 2 attempts, and
// runs the NXDOMAIN-rewrite check under DefaultDNSRewriteZone.
type DNSOptions struct {
	// Name is the name to resolve; "" means DefaultDNSName. A trailing dot
	// is optional.
	Name string
	// Type is "A" (also for "") or "AAAA", case-insensitive.
	Type string
	// Timeout is how long one query waits for its answer; 0 means
	// DefaultDNSTimeout. The probe's context deadline still applies.
	Timeout time.Duration
	// Attempts is how often a query is sent before giving up; 0 means
	// DefaultDNSAttempts.
	Attempts int
	// Protocol is DNSProtocolUDP (also for "") or DNSProtocolTCP.
	Protocol string
	// SkipRewriteCheck turns off the NXDOMAIN-rewrite check (one extra
	// query for a random, certainly nonexistent name).
	SkipRewriteCheck bool
	// RewriteZone is the zone under which the rewrite check invents its
	// name; "" means DefaultDNSRewriteZone. It must not have a wildcard.
	RewriteZone string
	// OnResult, if set, receives DNSProbe's full result (the answers
	// themselves), for a caller that prints them.
	OnResult func(DNSResult)
}

func (o DNSOptions) withDefaults() DNSOptions {
	if o.Name == "" {
		o.Name = DefaultDNSName
	}
	o.Type = strings.ToUpper(o.Type)
	if o.Type == "" {
		o.Type = "A"
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultDNSTimeout
	}
	if o.Attempts == 0 {
		o.Attempts = DefaultDNSAttempts
	}
	if o.Protocol == "" {
		o.Protocol = DNSProtocolUDP
	}
	if o.RewriteZone == "" {
		o.RewriteZone = DefaultDNSRewriteZone
	}
	return o
}

func (o DNSOptions) validate() error {
	switch {
	case o.Type != "A" && o.Type != "AAAA":
		return fmt.Errorf("dns record type %q is not A or AAAA: %w", o.Type, ErrInvalidOptions)
	case o.Protocol != DNSProtocolUDP && o.Protocol != DNSProtocolTCP:
		return fmt.Errorf("dns protocol %q is not udp or tcp: %w", o.Protocol, ErrInvalidOptions)
	case o.Timeout < 0:
		return fmt.Errorf("dns timeout %s is negative: %w", o.Timeout, ErrInvalidOptions)
	case o.Attempts < 0:
		return fmt.Errorf("dns attempts %d is negative: %w", o.Attempts, ErrInvalidOptions)
	}
	if _, ok := dns.IsDomainName(o.Name); !ok || strings.Trim(o.Name, ".") == "" {
		return fmt.Errorf("dns name %q is not a domain name: %w", o.Name, ErrInvalidOptions)
	}
	if _, ok := dns.IsDomainName(o.RewriteZone); !ok || strings.Trim(o.RewriteZone, ".") == "" {
		return fmt.Errorf("dns rewrite zone %q is not a domain name: %w", o.RewriteZone, ErrInvalidOptions)
	}
	return nil
}

// DNSAnswer is one resource record of an answer section, summarised.
type DNSAnswer struct {
	// Name is the owner name, fully qualified ("www.a.shifen.com.").
	Name string `json:"name"`
	// Type is the record type ("A", "AAAA", "CNAME", ...).
	Type string `json:"type"`
	// TTL is the record's time to live in seconds.
	TTL uint32 `json:"ttl"`
	// Value is the record data: the address for A and AAAA, the target for
	// CNAME, the presentation format otherwise.
	Value string `json:"value"`
}

// String renders a as "name TTL type value", like dig's answer lines.
func (a DNSAnswer) String() string {
	return a.Name + " " + strconv.FormatUint(uint64(a.TTL), 10) + " " + a.Type + " " + a.Value
}

// DNSResult is the outcome of ResolveDNS. Fields after Rcode are zero when
// the resolver sent no answer.
type DNSResult struct {
	// Server is the resolver's host:port.
	Server string `json:"server"`
	// Name is the fully qualified name asked for.
	Name string `json:"name"`
	// Type is the record type asked for ("A" or "AAAA").
	Type string `json:"type"`
	// Protocol is the protocol that carried the final answer ("udp", "tcp").
	Protocol string `json:"protocol"`
	// Truncated is true when the UDP answer was truncated and the query was
	// repeated over TCP.
	Truncated bool `json:"truncated,omitempty"`
	// Answered is true when the resolver answered (with any rcode).
	Answered bool `json:"answered"`
	// Rcode is the answer's response code (0 NOERROR, 2 SERVFAIL, 3
	// NXDOMAIN, 5 REFUSED); meaningful only when Answered.
	Rcode int `json:"rcode"`
	// Answers is the answer section in order, CNAMEs included.
	Answers []DNSAnswer `json:"answers"`
	// LookupTime runs from the first query sent to the answer read,
	// retransmissions and the TCP retry included.
	LookupTime time.Duration `json:"lookup_time_ns"`
	// RewriteChecked is true when the NXDOMAIN-rewrite check got an answer.
	RewriteChecked bool `json:"rewrite_checked"`
	// NXDomainRewritten is true when the resolver answered the check's
	// nonexistent name with addresses instead of NXDOMAIN.
	NXDomainRewritten bool `json:"nxdomain_rewritten"`
	// RewriteName is the random name the check asked for.
	RewriteName string `json:"rewrite_name,omitempty"`
	// RewriteAnswers is the check's answer section (the ad or search page's
	// addresses when NXDomainRewritten).
	RewriteAnswers []DNSAnswer `json:"rewrite_answers,omitempty"`
}

// Addrs returns the A and AAAA addresses in r.Answers, in order.
func (r DNSResult) Addrs() []netip.Addr {
	return answerAddrs(r.Answers)
}

// DNSRcodeError is the error for an answer whose rcode is not NOERROR.
// It unwraps to ErrDNSRcode.
type DNSRcodeError struct {
	// Server is the resolver's host:port.
	Server string
	// Name and Type are what was asked for.
	Name, Type string
	// Rcode is the answer's response code.
	Rcode int
}

// Error names the resolver, the question and the rcode, and says what the
// rcode usually means in the field.
func (e *DNSRcodeError) Error() string {
	q := e.Name + " " + e.Type
	what := "resolver " + e.Server + " answered " + rcodeName(e.Rcode) + " for " + q
	switch e.Rcode {
	case dns.RcodeServerFailure:
		return what + ": it could not resolve the name (its upstream is unreachable or DNSSEC validation failed); ask another resolver to tell which"
	case dns.RcodeRefused:
		return what + ": it does not serve this client; check the resolver's access list or use another resolver"
	case dns.RcodeNameError:
		return what + ": the name does not exist; check its spelling"
	case dns.RcodeFormatError:
		return what + ": it could not parse the query"
	}
	return what
}

// Unwrap returns ErrDNSRcode.
func (e *DNSRcodeError) Unwrap() error { return ErrDNSRcode }

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}

// DNSProbe returns a Probe that asks the resolver at target (host or
// host:port, port 53 by default; e.g. the gateway's LAN address) for
// opts.Name, through ResolveDNS.
//
// Readings: dns_lookup_ms (ms), dns_answers (answer-section records, CNAMEs
// included, like blackbox's probe_dns_answer_rrs), dns_rcode (numeric
// response code) and dns_nxdomain_rewritten (1 when the resolver answers a
// random nonexistent name with addresses, i.e. rewrites NXDOMAIN to an ad or
// search page; 0 when it answers honestly; absent when the check was skipped
// or got no answer). No readings when the resolver did not answer. The
// answers are logged at Info ("dns answers").
//
// Gauges: probe_dns_lookup_time_seconds, probe_dns_answer_rrs and, when the
// check ran, probe_dns_nxdomain_rewritten.
//
// Errors: ErrDNSNoAnswer (no answer within the timeout, port closed; also
// ErrTimeout when the probe deadline cut it short), *DNSRcodeError /
// ErrDNSRcode (SERVFAIL, REFUSED, NXDOMAIN for the queried name, ...),
// ErrDNSNoRecords (NOERROR without a record of the asked type),
// ErrInvalidTarget and ErrInvalidOptions. A rewriting resolver is not an
// error: the reading reports it.
func DNSProbe(opts DNSOptions) Probe {
	return func(ctx context.Context, target string, reg prometheus.Registerer, logger *slog.Logger) ([]Reading, error) {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		res, err := resolveDNS(ctx, target, opts, logger)
		if opts.OnResult != nil {
			opts.OnResult(res)
		}
		if !res.Answered {
			return nil, err
		}
		readings := []Reading{
			{Name: "dns_lookup_ms", Value: ms(res.LookupTime), Unit: "ms"},
			{Name: "dns_answers", Value: float64(len(res.Answers))},
			{Name: "dns_rcode", Value: float64(res.Rcode)},
		}
		lookupGauge := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "probe_dns_lookup_time_seconds",
			Help: "Returns the time taken for probe dns lookup in seconds",
		})
		answersGauge := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "probe_dns_answer_rrs",
			Help: "Returns number of entries in the answer resource record list",
		})
		register(reg, logger, lookupGauge, answersGauge)
		lookupGauge.Set(res.LookupTime.Seconds())
		answersGauge.Set(float64(len(res.Answers)))
		if res.RewriteChecked {
			rewritten := 0.0
			if res.NXDomainRewritten {
				rewritten = 1
			}
			readings = append(readings, Reading{Name: "dns_nxdomain_rewritten", Value: rewritten})
			rewrittenGauge := prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "probe_dns_nxdomain_rewritten",
				Help: "1 if the resolver answers a nonexistent name with addresses instead of NXDOMAIN",
			})
			register(reg, logger, rewrittenGauge)
			rewrittenGauge.Set(rewritten)
		}
		return readings, err
	}
}

// ResolveDNS asks the resolver server (host or host:port, port 53 by
// default) for opts.Name and, unless opts.SkipRewriteCheck, checks whether
// it rewrites NXDOMAIN. The result is filled as far as the lookup got, also
// alongside an error; res.Answered tells whether the resolver answered.
// Errors are as for DNSProbe. A rewrite check that gets no answer is logged
// by DNSProbe only and leaves RewriteChecked false.
func ResolveDNS(ctx context.Context, server string, opts DNSOptions) (DNSResult, error) {
	return resolveDNS(ctx, server, opts, slog.New(slog.DiscardHandler))
}

func resolveDNS(ctx context.Context, server string, opts DNSOptions, logger *slog.Logger) (DNSResult, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return DNSResult{}, err
	}
	addr, err := dnsServerAddr(server)
	if err != nil {
		return DNSResult{}, err
	}
	qtype := dns.TypeA
	if o.Type == "AAAA" {
		qtype = dns.TypeAAAA
	}
	res := DNSResult{Server: addr, Name: dns.Fqdn(o.Name), Type: o.Type, Protocol: o.Protocol}

	ex, err := exchangeDNS(ctx, addr, res.Name, qtype, o)
	if err != nil {
		return res, err
	}
	res.Protocol, res.Truncated, res.LookupTime = ex.protocol, ex.truncated, ex.rtt
	res.Answered, res.Rcode, res.Answers = true, ex.msg.Rcode, summarizeAnswers(ex.msg.Answer)
	logger.Info("dns answers", "server", addr, "name", res.Name, "type", res.Type,
		"rcode", rcodeName(res.Rcode), "protocol", res.Protocol, "answers", answerStrings(res.Answers))

	if !o.SkipRewriteCheck {
		checkRewrite(ctx, &res, o, logger)
	}

	switch {
	case res.Rcode != dns.RcodeSuccess:
		return res, &DNSRcodeError{Server: addr, Name: res.Name, Type: res.Type, Rcode: res.Rcode}
	case !hasType(ex.msg.Answer, qtype):
		return res, fmt.Errorf("resolver %s answered NOERROR for %s %s with %d records but none of type %s: %w",
			addr, res.Name, res.Type, len(res.Answers), res.Type, ErrDNSNoRecords)
	}
	return res, nil
}

// checkRewrite asks for a random name that cannot exist and records whether
// the resolver makes up addresses for it.
func checkRewrite(ctx context.Context, res *DNSResult, o DNSOptions, logger *slog.Logger) {
	name, err := rewriteCheckName(o.RewriteZone)
	if err != nil {
		logger.Warn("dns rewrite check skipped", "err", err)
		return
	}
	res.RewriteName = name
	ex, err := exchangeDNS(ctx, res.Server, name, dns.TypeA, o)
	if err != nil {
		logger.Warn("dns rewrite check got no answer", "server", res.Server, "name", name, "err", err)
		return
	}
	res.RewriteChecked = true
	res.RewriteAnswers = summarizeAnswers(ex.msg.Answer)
	res.NXDomainRewritten = ex.msg.Rcode == dns.RcodeSuccess && len(answerAddrs(res.RewriteAnswers)) > 0
	switch {
	case res.NXDomainRewritten:
		logger.Warn("dns resolver rewrites NXDOMAIN", "server", res.Server, "name", name,
			"answers", answerStrings(res.RewriteAnswers))
	case ex.msg.Rcode != dns.RcodeNameError:
		logger.Info("dns resolver did not answer NXDOMAIN for a nonexistent name", "server", res.Server,
			"name", name, "rcode", rcodeName(ex.msg.Rcode))
	}
}

// rewriteCheckName returns "fa-<16 random hex digits>.<zone>.".
func rewriteCheckName(zone string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random name for the rewrite check: %w", err)
	}
	return "fa-" + hex.EncodeToString(b[:]) + "." + dns.Fqdn(strings.TrimPrefix(zone, ".")), nil
}

// dnsExchange is one answered question.
type dnsExchange struct {
	msg       *dns.Msg
	protocol  string
	truncated bool
	rtt       time.Duration
}

// exchangeDNS asks server for name/qtype over o.Protocol, with o.Attempts
// tries of o.Timeout each, and repeats a truncated UDP answer's query over
// TCP. The error says why no answer came.
func exchangeDNS(ctx context.Context, server, name string, qtype uint16, o DNSOptions) (dnsExchange, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	what := fmt.Sprintf("%s %s", name, dns.TypeToString[qtype])

	start := time.Now()
	m, err := exchangeAttempts(ctx, server, q, o.Protocol, o)
	if err != nil {
		return dnsExchange{}, noAnswerErr(ctx, server, what, o, err)
	}
	ex := dnsExchange{msg: m, protocol: o.Protocol}
	if m.Truncated && o.Protocol == DNSProtocolUDP {
		ex.truncated, ex.protocol = true, DNSProtocolTCP
		m, err = exchangeAttempts(ctx, server, q, DNSProtocolTCP, o)
		if err != nil {
			return dnsExchange{}, fmt.Errorf("the udp answer for %s was truncated and the tcp retry failed: %w",
				what, noAnswerErr(ctx, server, what, o, err))
		}
		ex.msg = m
	}
	ex.rtt = time.Since(start)
	return ex, nil
}

// exchangeAttempts sends q up to o.Attempts times and returns the first
// answer. A truncated answer counts as an answer (its Truncated bit set).
func exchangeAttempts(ctx context.Context, server string, q *dns.Msg, protocol string, o DNSOptions) (*dns.Msg, error) {
	var err error
	for range o.Attempts {
		var m *dns.Msg
		m, err = exchangeOnce(ctx, server, q, protocol, o.Timeout)
		if m != nil && (err == nil || m.Truncated) {
			return m, nil
		}
		if ctxDone(ctx) || errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
	}
	return nil, err
}

// exchangeOnce sends q once and waits at most timeout (and ctx) for the
// answer. Cancelling ctx interrupts the wait.
func exchangeOnce(ctx context.Context, server string, q *dns.Msg, protocol string, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: protocol, Timeout: timeout}
	dialCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	co, err := c.DialContext(dialCtx, server)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	stop := context.AfterFunc(ctx, func() { _ = co.SetDeadline(time.Now()) })
	defer stop()
	m, _, err := c.ExchangeWithConnContext(ctx, q, co)
	return m, err
}

// noAnswerErr explains why server gave no answer for what.
func noAnswerErr(ctx context.Context, server, what string, o DNSOptions, err error) error {
	var nerr net.Error
	switch {
	case deadlinePassed(ctx):
		return fmt.Errorf("no answer from resolver %s for %s before the probe deadline: %w: %w", server, what, ErrDNSNoAnswer, ErrTimeout)
	case ctx.Err() != nil:
		return fmt.Errorf("no answer from resolver %s for %s: %w: %w", server, what, ErrDNSNoAnswer, ctx.Err())
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("resolver %s refused the %s connection for %s: nothing serves DNS on that port: %w: %w",
			server, o.Protocol, what, ErrDNSNoAnswer, err)
	case errors.As(err, &nerr) && nerr.Timeout():
		return fmt.Errorf("no answer from resolver %s for %s within %s (%d attempts over %s): check that the address is a resolver and reachable: %w: %w",
			server, what, o.Timeout, o.Attempts, o.Protocol, ErrDNSNoAnswer, err)
	}
	return fmt.Errorf("no answer from resolver %s for %s: %w: %w", server, what, ErrDNSNoAnswer, err)
}

// deadlinePassed reports whether ctx's deadline has passed, also in the
// moment before ctx's own timer has cancelled it (a socket deadline set from
// ctx can fire first).
func deadlinePassed(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// ctxDone reports whether ctx is cancelled or past its deadline.
func ctxDone(ctx context.Context) bool {
	return ctx.Err() != nil || deadlinePassed(ctx)
}

// doneErr is deadlineErr for a ctx that ctxDone reports done: ErrTimeout
// when the deadline passed (even if ctx's timer has not fired yet), else
// ctx's cancellation.
func doneErr(ctx context.Context, what string) error {
	if deadlinePassed(ctx) {
		return fmt.Errorf("%s: %w", what, ErrTimeout)
	}
	return fmt.Errorf("%s: %w", what, ctx.Err())
}

// dnsServerAddr turns a resolver target (IP, [IPv6], host, or any of those
// with :port) into host:port, port 53 by default.
func dnsServerAddr(target string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("dns resolver %q: %s: %w", target, why, ErrInvalidTarget)
	}
	if target == "" {
		return bad("empty")
	}
	if strings.ContainsAny(target, "/ \t\r\n@") {
		return bad("not a host or host:port")
	}
	if inner, ok := strings.CutPrefix(target, "["); ok && strings.HasSuffix(inner, "]") {
		ip, ok := parseIPWithZone(strings.TrimSuffix(inner, "]"))
		if !ok {
			return bad("not an IP address in brackets")
		}
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	if ip, ok := parseIPWithZone(target); ok {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		if strings.ContainsAny(target, ":[]") {
			return bad("not a host or host:port")
		}
		host, port = target, "53"
	}
	if host == "" {
		return bad("empty host")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return bad("port must be 1..65535")
	}
	if ip, ok := parseIPWithZone(host); ok {
		return net.JoinHostPort(ip.String(), port), nil
	}
	if strings.HasPrefix(target, "[") {
		return bad("not an IP address in brackets")
	}
	if _, ok := dns.IsDomainName(host); !ok || strings.ContainsAny(host, "[]:%") {
		return bad("not a host name or IP address")
	}
	return net.JoinHostPort(host, port), nil
}

// parseIPWithZone parses an IP address whose zone, if any, is a plain
// interface name (netip accepts any characters there).
func parseIPWithZone(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, c := range ip.Zone() {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return netip.Addr{}, false
		}
	}
	return ip, true
}

// summarizeAnswers turns an answer section into DNSAnswers.
func summarizeAnswers(rrs []dns.RR) []DNSAnswer {
	out := make([]DNSAnswer, 0, len(rrs))
	for _, rr := range rrs {
		if rr == nil {
			continue
		}
		h := rr.Header()
		a := DNSAnswer{Name: h.Name, Type: dns.TypeToString[h.Rrtype], TTL: h.Ttl}
		if a.Type == "" {
			a.Type = "TYPE" + strconv.Itoa(int(h.Rrtype))
		}
		switch v := rr.(type) {
		case *dns.A:
			a.Value = v.A.String()
		case *dns.AAAA:
			a.Value = v.AAAA.String()
		case *dns.CNAME:
			a.Value = v.Target
		default:
			a.Value = strings.TrimPrefix(strings.TrimPrefix(rr.String(), h.String()), "\t")
		}
		out = append(out, a)
	}
	return out
}

func answerAddrs(as []DNSAnswer) []netip.Addr {
	var out []netip.Addr
	for _, a := range as {
		if a.Type != "A" && a.Type != "AAAA" {
			continue
		}
		if ip, err := netip.ParseAddr(a.Value); err == nil {
			out = append(out, ip)
		}
	}
	return out
}

func answerStrings(as []DNSAnswer) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr != nil && rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}
