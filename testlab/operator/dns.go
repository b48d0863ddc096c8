package operator

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// DNS is the operator's resolver: the DNS server the BRAS hands out with
// a PPPoE session. It answers A queries for its records (NXDOMAIN for
// other names) over UDP, until SetAnswering(false) makes it drop every
// query, as a resolver that is down does.
type DNS struct {
	conn   net.PacketConn
	srv    *dns.Server
	logger *slog.Logger
	done   chan struct{}
	once   sync.Once
	err    error

	mu        sync.Mutex
	records   map[string]netip.Addr // fqdn, lower case → address
	answering bool
}

// StartDNS listens on addr (e.g. "127.0.0.1:0") and serves records (name
// → IPv4 address) until ctx ends or Close. It fails when addr cannot be
// listened on or an address does not parse.
func StartDNS(ctx context.Context, addr string, records map[string]string, logger *slog.Logger) (*DNS, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &DNS{logger: logger, records: map[string]netip.Addr{}, answering: true, done: make(chan struct{})}
	for name, a := range records {
		ip, err := netip.ParseAddr(a)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("operator dns: record %s: %q is not an IPv4 address", name, a)
		}
		d.records[strings.ToLower(dns.Fqdn(name))] = ip
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("operator dns: listen: %w", err)
	}
	d.conn = conn
	started := make(chan struct{})
	d.srv = &dns.Server{PacketConn: conn, Handler: dns.HandlerFunc(d.serve), NotifyStartedFunc: func() { close(started) }}
	go func() {
		defer close(d.done)
		if err := d.srv.ActivateAndServe(); err != nil {
			logger.Warn("operator dns stopped", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = d.Close()
		case <-d.done:
		}
	}()
	select {
	case <-started:
	case <-d.done:
		return nil, fmt.Errorf("operator dns: the server did not start on %s", conn.LocalAddr())
	}
	return d, nil
}

// Addr returns the host:port the resolver listens on.
func (d *DNS) Addr() string { return d.conn.LocalAddr().String() }

// SetAnswering sets whether the resolver answers (true after StartDNS).
func (d *DNS) SetAnswering(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.answering = on
}

// Close stops the resolver and waits for it; it may be called again.
func (d *DNS) Close() error {
	d.once.Do(func() { d.err = d.srv.Shutdown() })
	<-d.done
	return d.err
}

func (d *DNS) serve(w dns.ResponseWriter, q *dns.Msg) {
	d.mu.Lock()
	on := d.answering
	d.mu.Unlock()
	if !on || len(q.Question) != 1 {
		// A resolver that is down: the query goes unanswered.
		return
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	qs := q.Question[0]
	d.mu.Lock()
	ip, ok := d.records[strings.ToLower(qs.Name)]
	d.mu.Unlock()
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case qs.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: qs.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IP(ip.AsSlice()),
		})
	}
	if err := w.WriteMsg(m); err != nil {
		d.logger.Debug("operator dns: reply not sent", "err", err)
	}
}
