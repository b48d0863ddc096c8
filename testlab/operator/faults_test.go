package operator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/miekg/dns"

	"fieldagent/agent/secret"
)

// TestAccessFaults: the operator-side faults the lab injects — an account
// the BRAS does not know, a VLAN it does not serve, an ONU the OLT does not
// authorise — and their clearing.
func TestAccessFaults(t *testing.T) {
	op := New(secret.New("tok"), nil)
	op.AddPPPoEAccount("ad001", secret.New("pw1"))
	op.AddLOID(secret.New("LOID1"), secret.New("lp"))
	srv := httptest.NewServer(op)
	defer srv.Close()
	auth := func(vlan int, serial string) (int, PPPoEAuthResponse) {
		var ar PPPoEAuthResponse
		code := post(t, srv.URL+"/bras/pppoe/auth", "tok", PPPoEAuthRequest{Username: "ad001", Password: "pw1", Serial: serial, VLAN: vlan}, &ar)
		return code, ar
	}
	if code, _ := auth(0, "SN1"); code != http.StatusOK || len(op.Sessions()) != 1 {
		t.Fatalf("good account: %d, sessions %v", code, op.Sessions())
	}

	op.RemovePPPoEAccount("ad001")
	if len(op.Sessions()) != 0 {
		t.Errorf("session kept after the account went: %v", op.Sessions())
	}
	if code, ar := auth(0, "SN1"); code != http.StatusForbidden || ar.Code != 691 || ar.Reason != "authentication failure: no such account" {
		t.Errorf("removed account: %d %+v, want 403 691 no such account", code, ar)
	}
	op.AddPPPoEAccount("ad001", secret.New("pw1"))

	op.ServeInternetVLAN(41)
	if v, only := op.InternetVLAN(); v != 41 || !only {
		t.Errorf("InternetVLAN = %d %v", v, only)
	}
	if code, ar := auth(46, "SN1"); code != http.StatusGatewayTimeout || ar.Result != "timeout" {
		t.Errorf("wrong VLAN: %d %+v, want 504 timeout", code, ar)
	}
	if code, _ := auth(41, "SN1"); code != http.StatusOK {
		t.Errorf("internet VLAN: %d", code)
	}
	op.ServeAnyVLAN()
	if code, _ := auth(46, "SN1"); code != http.StatusOK {
		t.Errorf("any VLAN: %d", code)
	}

	op.AuthoriseONU("SN1", false)
	if code, ar := auth(0, "SN1"); code != http.StatusGatewayTimeout || ar.Result != "timeout" {
		t.Errorf("unauthorised ONU dials: %d %+v, want 504 timeout", code, ar)
	}
	if code := post(t, srv.URL+"/itms/register", "tok", RegisterRequest{LOID: "LOID1", Password: "lp", Serial: "SN1"}, &map[string]string{}); code != http.StatusGatewayTimeout {
		t.Errorf("unauthorised ONU registers: %d, want 504", code)
	}
	if code, _ := auth(0, "SN2"); code != http.StatusOK {
		t.Errorf("another ONU: %d", code)
	}
	op.AuthoriseONU("SN1", true)
	var rr RegisterResponse
	if code := post(t, srv.URL+"/itms/register", "tok", RegisterRequest{LOID: "LOID1", Password: "lp", Serial: "SN1"}, &rr); code != http.StatusOK || rr.Status != "0" {
		t.Errorf("authorised again: %d %+v", code, rr)
	}
}

func TestDNS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := StartDNS(ctx, "127.0.0.1:0", map[string]string{"www.example.cn": "not-an-ip"}, nil); err == nil {
		t.Fatal("a bad record was accepted")
	}
	d, err := StartDNS(ctx, "127.0.0.1:0", map[string]string{"www.example.cn": "100.64.0.80"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	ask := func(name string) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := c.Exchange(m, d.Addr())
		return r, err
	}
	r, err := ask("WWW.example.cn")
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "100.64.0.80" {
		t.Fatalf("known name: %v %v", r, err)
	}
	if r, err := ask("nope.example.cn"); err != nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("unknown name: %v %v, want NXDOMAIN", r, err)
	}
	d.SetAnswering(false)
	if _, err := ask("www.example.cn"); err == nil {
		t.Error("a resolver that is down answered")
	}
	d.SetAnswering(true)
	if _, err := ask("www.example.cn"); err != nil {
		t.Errorf("answering again: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	_ = d.Close() // again: no panic, no hang
}
