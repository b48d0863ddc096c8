package diagnostics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// testZone is what the fake resolvers know. Any other name does not exist.
var testZone = map[string][]string{
	"www.example.test.": {"www.example.test. 60 IN CNAME edge.example.test.", "edge.example.test. 60 IN A 192.0.2.10"},
	"v6.example.test.":  {"v6.example.test. 60 IN AAAA 2001:db8::10"},
	"web.example.test.": {"web.example.test. 60 IN A 127.0.0.1"},
	"txt.example.test.": {"txt.example.test. 60 IN TXT \"only text here\""},
}

// bigAnswer is an A record set too large for a 512-byte UDP answer.
func bigAnswer(name string) []dns.RR {
	var rrs []dns.RR
	for i := range 40 {
		rrs = append(rrs, mustRR(fmt.Sprintf("%s 60 IN A 192.0.2.%d", name, i+1)))
	}
	return rrs
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

// fakeResolver is a DNS server behaviour for the tests; it records the
// questions it saw and over which network.
type fakeResolver struct {
	// rewrite makes nonexistent names resolve to 198.51.100.7.
	rewrite bool
	// rcode, when not 0, is the answer to every question.
	rcode int
	// silent drops every question.
	silent bool

	mu        sync.Mutex
	questions []string // "udp www.example.test. A"
}

func (f *fakeResolver) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.questions)
}

func (f *fakeResolver) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	network := w.LocalAddr().Network()
	f.mu.Lock()
	f.questions = append(f.questions, network+" "+q.Name+" "+dns.TypeToString[q.Qtype])
	f.mu.Unlock()
	if f.silent {
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	switch {
	case f.rcode != 0:
		m.Rcode = f.rcode
	case q.Name == "big.example.test.":
		if network == "udp" {
			m.Truncated = true
		} else {
			m.Answer = bigAnswer(q.Name)
		}
	case testZone[q.Name] != nil:
		for _, s := range testZone[q.Name] {
			if rr := mustRR(s); rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
				m.Answer = append(m.Answer, rr)
			}
		}
	case q.Name == "noaddr.example.test.":
		// NOERROR, empty answer: the name exists without this type.
	case f.rewrite:
		m.Answer = []dns.RR{mustRR(q.Name + " 60 IN A 198.51.100.7")}
	default:
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

// startDNSServer serves h over UDP and TCP on one 127.0.0.1 port and
// returns host:port.
func startDNSServer(t *testing.T, h dns.Handler) string {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp4", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both udp and tcp on 127.0.0.1")
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// closedUDPPort returns a loopback address where nothing listens.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

var rewriteNameRE = regexp.MustCompile(`^fa-[0-9a-f]{16}\.com\.$`)

func TestDNSProbe(t *testing.T) {
	fast := DNSOptions{Timeout: 200 * time.Millisecond, Attempts: 1}
	tests := []struct {
		name     string
		resolver *fakeResolver
		opts     DNSOptions
		wantErr  error
		wantMsg  string             // substring of the error
		want     map[string]float64 // readings; nil means none at all
		noReadng []string           // readings that must be absent
	}{
		{
			name: "honest resolver", resolver: &fakeResolver{},
			opts: DNSOptions{Name: "www.example.test"},
			want: map[string]float64{"dns_answers": 2, "dns_rcode": 0, "dns_nxdomain_rewritten": 0},
		},
		{
			name: "rewriting resolver", resolver: &fakeResolver{rewrite: true},
			opts: DNSOptions{Name: "www.example.test."},
			want: map[string]float64{"dns_answers": 2, "dns_rcode": 0, "dns_nxdomain_rewritten": 1},
		},
		{
			name: "AAAA", resolver: &fakeResolver{},
			opts: DNSOptions{Name: "v6.example.test", Type: "aaaa"},
			want: map[string]float64{"dns_answers": 1, "dns_rcode": 0, "dns_nxdomain_rewritten": 0},
		},
		{
			name: "rewrite check skipped", resolver: &fakeResolver{rewrite: true},
			opts:     DNSOptions{Name: "www.example.test", SkipRewriteCheck: true},
			want:     map[string]float64{"dns_answers": 2},
			noReadng: []string{"dns_nxdomain_rewritten"},
		},
		{
			name: "SERVFAIL", resolver: &fakeResolver{rcode: dns.RcodeServerFailure},
			opts: DNSOptions{Name: "www.example.test"}, wantErr: ErrDNSRcode,
			wantMsg: "answered SERVFAIL for www.example.test. A: it could not resolve the name",
			want:    map[string]float64{"dns_answers": 0, "dns_rcode": 2, "dns_nxdomain_rewritten": 0},
		},
		{
			name: "REFUSED", resolver: &fakeResolver{rcode: dns.RcodeRefused},
			opts: DNSOptions{Name: "www.example.test"}, wantErr: ErrDNSRcode,
			wantMsg: "answered REFUSED for www.example.test. A: it does not serve this client",
			want:    map[string]float64{"dns_rcode": 5, "dns_nxdomain_rewritten": 0},
		},
		{
			name: "NXDOMAIN for the queried name", resolver: &fakeResolver{},
			opts: DNSOptions{Name: "nope.example.test"}, wantErr: ErrDNSRcode,
			wantMsg: "answered NXDOMAIN for nope.example.test. A: the name does not exist",
			want:    map[string]float64{"dns_answers": 0, "dns_rcode": 3, "dns_nxdomain_rewritten": 0},
		},
		{
			name: "name without the asked type", resolver: &fakeResolver{},
			opts: DNSOptions{Name: "txt.example.test"}, wantErr: ErrDNSNoRecords,
			wantMsg: "with 0 records but none of type A",
			want:    map[string]float64{"dns_answers": 0, "dns_rcode": 0, "dns_nxdomain_rewritten": 0},
		},
		{
			name: "silent resolver", resolver: &fakeResolver{silent: true},
			opts: fast, wantErr: ErrDNSNoAnswer, wantMsg: "within 200ms (1 attempts over udp)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server := startDNSServer(t, tc.resolver)
			reg := prometheus.NewRegistry()
			readings, err := DNSProbe(tc.opts)(t.Context(), server, reg, nil)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
			if err != nil && !strings.Contains(err.Error(), server) {
				t.Errorf("error %q does not name the resolver %s", err, server)
			}
			got := map[string]Reading{}
			for _, r := range readings {
				got[r.Name] = r
			}
			if tc.want == nil && len(readings) != 0 {
				t.Errorf("readings %v, want none", readings)
			}
			for name, v := range tc.want {
				if r, ok := got[name]; !ok || r.Value != v {
					t.Errorf("%s = %v (present %v), want %v", name, r.Value, ok, v)
				}
			}
			for _, name := range tc.noReadng {
				if _, ok := got[name]; ok {
					t.Errorf("reading %s present, want absent", name)
				}
			}
			if tc.want == nil {
				return
			}
			if r, ok := got["dns_lookup_ms"]; !ok || r.Unit != "ms" || r.Value < 0 {
				t.Errorf("dns_lookup_ms = %+v (present %v)", r, ok)
			}
			if v, ok := metricValue(t, reg, "probe_dns_answer_rrs"); !ok || v != tc.want["dns_answers"] {
				t.Errorf("probe_dns_answer_rrs = %v (present %v), want %v", v, ok, tc.want["dns_answers"])
			}
			if _, ok := metricValue(t, reg, "probe_dns_lookup_time_seconds"); !ok {
				t.Error("probe_dns_lookup_time_seconds missing")
			}
			want, checked := tc.want["dns_nxdomain_rewritten"]
			if v, ok := metricValue(t, reg, "probe_dns_nxdomain_rewritten"); ok != checked || v != want {
				t.Errorf("probe_dns_nxdomain_rewritten = %v (present %v), want %v (present %v)", v, ok, want, checked)
			}
		})
	}
}

func TestResolveDNSAnswers(t *testing.T) {
	f := &fakeResolver{rewrite: true}
	server := startDNSServer(t, f)
	res, err := ResolveDNS(t.Context(), server, DNSOptions{Name: "www.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	wantAnswers := []DNSAnswer{
		{Name: "www.example.test.", Type: "CNAME", TTL: 60, Value: "edge.example.test."},
		{Name: "edge.example.test.", Type: "A", TTL: 60, Value: "192.0.2.10"},
	}
	if !slices.Equal(res.Answers, wantAnswers) {
		t.Errorf("answers %v, want %v", res.Answers, wantAnswers)
	}
	if got, want := res.Addrs(), []netip.Addr{netip.MustParseAddr("192.0.2.10")}; !slices.Equal(got, want) {
		t.Errorf("Addrs() = %v, want %v", got, want)
	}
	if res.Server != server || res.Name != "www.example.test." || res.Type != "A" || res.Protocol != "udp" || res.Truncated || !res.Answered {
		t.Errorf("result %+v", res)
	}
	if !res.RewriteChecked || !res.NXDomainRewritten {
		t.Errorf("rewrite checked %v rewritten %v, want both", res.RewriteChecked, res.NXDomainRewritten)
	}
	if !rewriteNameRE.MatchString(res.RewriteName) {
		t.Errorf("rewrite check name %q, want fa-<16 hex>.com.", res.RewriteName)
	}
	if len(res.RewriteAnswers) != 1 || res.RewriteAnswers[0].Value != "198.51.100.7" {
		t.Errorf("rewrite answers %v, want the made-up 198.51.100.7", res.RewriteAnswers)
	}
	if got := wantAnswers[0].String(); got != "www.example.test. 60 CNAME edge.example.test." {
		t.Errorf("DNSAnswer.String() = %q", got)
	}
	want := []string{"udp www.example.test. A", "udp " + res.RewriteName + " A"}
	if got := f.seen(); !slices.Equal(got, want) {
		t.Errorf("resolver saw %q, want %q", got, want)
	}

	// Two checks never ask for the same name (a cached answer would hide a rewrite).
	res2, err := ResolveDNS(t.Context(), server, DNSOptions{Name: "www.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if res2.RewriteName == res.RewriteName {
		t.Errorf("rewrite check reused the name %q", res.RewriteName)
	}

	res, err = ResolveDNS(t.Context(), server, DNSOptions{Name: "txt.example.test", SkipRewriteCheck: true})
	if !errors.Is(err, ErrDNSNoRecords) || res.RewriteChecked || len(res.Answers) != 0 || !res.Answered {
		t.Errorf("TXT-only name: err %v, result %+v", err, res)
	}
}

func TestResolveDNSTruncatedFallsBackToTCP(t *testing.T) {
	f := &fakeResolver{}
	server := startDNSServer(t, f)
	res, err := ResolveDNS(t.Context(), server, DNSOptions{Name: "big.example.test", SkipRewriteCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || res.Protocol != "tcp" || len(res.Answers) != 40 {
		t.Errorf("truncated %v protocol %q answers %d; want true, tcp, 40", res.Truncated, res.Protocol, len(res.Answers))
	}
	want := []string{"udp big.example.test. A", "tcp big.example.test. A"}
	if got := f.seen(); !slices.Equal(got, want) {
		t.Errorf("resolver saw %q, want %q", got, want)
	}
}

func TestResolveDNSOverTCP(t *testing.T) {
	f := &fakeResolver{}
	server := startDNSServer(t, f)
	res, err := ResolveDNS(t.Context(), server, DNSOptions{Name: "www.example.test", Protocol: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Protocol != "tcp" || res.Truncated || len(res.Answers) != 2 {
		t.Errorf("result %+v", res)
	}
	for _, q := range f.seen() {
		if !strings.HasPrefix(q, "tcp ") {
			t.Errorf("question %q not over tcp", q)
		}
	}
}

func TestResolveDNSNoAnswer(t *testing.T) {
	t.Run("retransmits, then names the resolver and the wait", func(t *testing.T) {
		f := &fakeResolver{silent: true}
		server := startDNSServer(t, f)
		res, err := ResolveDNS(t.Context(), server, DNSOptions{Name: "www.example.test", Timeout: 100 * time.Millisecond})
		if !errors.Is(err, ErrDNSNoAnswer) || errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v, want ErrDNSNoAnswer without ErrTimeout", err)
		}
		for _, s := range []string{"no answer from resolver " + server, "www.example.test. A", "within 100ms (2 attempts over udp)"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %q", err, s)
			}
		}
		if res.Answered {
			t.Error("result says answered")
		}
		if got := f.seen(); len(got) != DefaultDNSAttempts {
			t.Errorf("resolver saw %d queries, want %d: %q", len(got), DefaultDNSAttempts, got)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		server := closedUDPPort(t)
		_, err := ResolveDNS(t.Context(), server, DNSOptions{Name: "www.example.test", Timeout: time.Second})
		if !errors.Is(err, ErrDNSNoAnswer) || !strings.Contains(err.Error(), "nothing serves DNS on that port") {
			t.Fatalf("err %v, want ErrDNSNoAnswer naming the closed port", err)
		}
	})
	t.Run("probe deadline", func(t *testing.T) {
		server := startDNSServer(t, &fakeResolver{silent: true})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := ResolveDNS(ctx, server, DNSOptions{Name: "www.example.test", Timeout: time.Minute})
		if !errors.Is(err, ErrDNSNoAnswer) || !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v, want ErrDNSNoAnswer and ErrTimeout", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		server := startDNSServer(t, &fakeResolver{silent: true})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := ResolveDNS(ctx, server, DNSOptions{Name: "www.example.test", Timeout: time.Minute})
		if !errors.Is(err, ErrDNSNoAnswer) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want ErrDNSNoAnswer and context.Canceled", err)
		}
	})
	t.Run("via Run", func(t *testing.T) {
		server := startDNSServer(t, &fakeResolver{silent: true})
		res := Run(t.Context(), "dns", DNSProbe(DNSOptions{Timeout: 50 * time.Millisecond}), server, time.Second, nil, nil)
		if res.Success || !strings.Contains(res.Err, "no answer from resolver") || len(res.Readings) != 0 {
			t.Errorf("Run: %+v", res)
		}
	})
}

func TestDNSRcodeError(t *testing.T) {
	server := startDNSServer(t, &fakeResolver{rcode: dns.RcodeServerFailure})
	_, err := ResolveDNS(t.Context(), server, DNSOptions{SkipRewriteCheck: true})
	var rerr *DNSRcodeError
	if !errors.As(err, &rerr) {
		t.Fatalf("err %v (%T), want a *DNSRcodeError", err, err)
	}
	want := DNSRcodeError{Server: server, Name: DefaultDNSName + ".", Type: "A", Rcode: dns.RcodeServerFailure}
	if *rerr != want {
		t.Errorf("error %+v, want %+v", *rerr, want)
	}
	if got := (&DNSRcodeError{Server: "s", Name: "n.", Type: "A", Rcode: 12}).Error(); got != "resolver s answered RCODE12 for n. A" {
		t.Errorf("unknown rcode message %q", got)
	}
}

func TestDNSInvalid(t *testing.T) {
	tests := []struct {
		name   string
		opts   DNSOptions
		target string
		want   error
	}{
		{"empty target", DNSOptions{}, "", ErrInvalidTarget},
		{"URL target", DNSOptions{}, "udp://192.0.2.1", ErrInvalidTarget},
		{"port zero", DNSOptions{}, "192.0.2.1:0", ErrInvalidTarget},
		{"port too large", DNSOptions{}, "192.0.2.1:65536", ErrInvalidTarget},
		{"empty host", DNSOptions{}, ":53", ErrInvalidTarget},
		{"record type", DNSOptions{Type: "MX"}, "192.0.2.1", ErrInvalidOptions},
		{"protocol", DNSOptions{Protocol: "doh"}, "192.0.2.1", ErrInvalidOptions},
		{"negative timeout", DNSOptions{Timeout: -time.Second}, "192.0.2.1", ErrInvalidOptions},
		{"negative attempts", DNSOptions{Attempts: -1}, "192.0.2.1", ErrInvalidOptions},
		{"bad name", DNSOptions{Name: "a..b"}, "192.0.2.1", ErrInvalidOptions},
		{"root as name", DNSOptions{Name: "."}, "192.0.2.1", ErrInvalidOptions},
		{"bad rewrite zone", DNSOptions{RewriteZone: "."}, "192.0.2.1", ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DNSProbe(tc.opts)(t.Context(), tc.target, nil, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

var dnsServerAddrTests = []struct {
	in, want string // want "" means invalid
}{
	{"192.0.2.1", "192.0.2.1:53"},
	{"192.0.2.1:5353", "192.0.2.1:5353"},
	{"2001:db8::1", "[2001:db8::1]:53"},
	{"[2001:db8::1]", "[2001:db8::1]:53"},
	{"[2001:db8::1]:5353", "[2001:db8::1]:5353"},
	{"fe80::1%eth0", "[fe80::1%eth0]:53"},
	{"dns.example.test", "dns.example.test:53"},
	{"dns.example.test:53", "dns.example.test:53"},
	{"", ""},
	{":53", ""},
	{"192.0.2.1:", ""},
	{"192.0.2.1:x", ""},
	{"192.0.2.1:0", ""},
	{"a:b:c", ""},
	{"[dns.example.test]:53", ""},
	{"udp://192.0.2.1", ""},
	{"two words", ""},
	{"fe80::1%eth0]:53", ""},
	{"[fe80::1%eth0]:53", "[fe80::1%eth0]:53"},
	{"[192.0.2.1]", "192.0.2.1:53"},
	{"[]", ""},
}

func TestDNSServerAddr(t *testing.T) {
	for _, tc := range dnsServerAddrTests {
		got, err := dnsServerAddr(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("dnsServerAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrInvalidTarget) {
			t.Errorf("dnsServerAddr(%q) error %v is not ErrInvalidTarget", tc.in, err)
		}
	}
}

// FuzzDNSServerAddr checks that any accepted resolver target becomes a
// host:port with a valid port, and that the result is accepted unchanged.
func FuzzDNSServerAddr(f *testing.F) {
	for _, tc := range dnsServerAddrTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := dnsServerAddr(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("dnsServerAddr(%q) error %v is not ErrInvalidTarget", in, err)
			}
			return
		}
		host, port, err := net.SplitHostPort(out)
		if err != nil || host == "" || port == "" || port == "0" {
			t.Fatalf("dnsServerAddr(%q) = %q: not host:port (%v)", in, out, err)
		}
		if again, err := dnsServerAddr(out); err != nil || again != out {
			t.Fatalf("dnsServerAddr(%q) = %q, %v; want it unchanged", out, again, err)
		}
	})
}

// FuzzSummarizeAnswers feeds arbitrary DNS messages (as a resolver could
// send) through the answer summary: it must not panic, must keep one entry
// per record and must only report addresses from A and AAAA records.
func FuzzSummarizeAnswers(f *testing.F) {
	for _, name := range []string{"www.example.test.", "v6.example.test.", "big.example.test."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		for _, s := range testZone[name] {
			m.Answer = append(m.Answer, mustRR(s))
		}
		if name == "big.example.test." {
			m.Answer = bigAnswer(name)
		}
		m.Answer = append(m.Answer, mustRR(name+" 60 IN MX 10 mail.example.test."))
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return
		}
		as := summarizeAnswers(m.Answer)
		if len(as) != len(m.Answer) {
			t.Fatalf("%d answers summarised from %d records", len(as), len(m.Answer))
		}
		addrs := 0
		for i, a := range as {
			if a.Type == "" {
				t.Fatalf("answer %d without a type: %+v", i, a)
			}
			if _, ok := m.Answer[i].(*dns.A); ok {
				addrs++
			} else if _, ok := m.Answer[i].(*dns.AAAA); ok {
				addrs++
			}
		}
		if got := len(answerAddrs(as)); got > addrs {
			t.Fatalf("%d addresses from %d address records", got, addrs)
		}
	})
}
