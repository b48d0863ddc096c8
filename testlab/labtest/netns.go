package labtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab"
	"fieldagent/testlab/netsite"
	"fieldagent/tr069/acs"
)

// StartNet is Start for a site in network namespaces (testlab.Config.Net;
// a fresh instance name unless cfg.Net sets one): the ACS listens on the
// laptop at testlab.NetACSURL(testlab.NetACSPort) and sends connection
// requests from there, as fieldagent run with `ip netns exec` in the
// laptop namespace does. It skips tb where namespaces are unavailable
// (not root, no ip/tc/nft).
func StartNet(tb testing.TB, cfg testlab.Config) *Lab {
	tb.Helper()
	if err := netsite.Available(); err != nil {
		tb.Skipf("a site in network namespaces: %v", err)
	}
	opts := netsite.Options{Instance: NewNetInstance(tb)}
	if cfg.Net != nil {
		opts = *cfg.Net
		if opts.Instance == "" {
			opts.Instance = NewNetInstance(tb)
		}
	}
	cfg.Net = &opts
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	var a *acs.Server
	cfg.ACSURL = testlab.NetACSURL(testlab.NetACSPort)
	cfg.ConnReqUsername, cfg.ConnReqPassword = CRUser, secret.New(CRPassword)
	cfg.NetReady = func(n *netsite.Net) error {
		a = acs.New(acs.Config{
			Logger:                cfg.Logger,
			ConnectionRequestAuth: func(string) (string, secret.Secret) { return CRUser, secret.New(CRPassword) },
			HTTPClient:            NetHTTPClient(n, netsite.Laptop, 10*time.Second),
		})
		ln, err := n.Listen(netsite.Laptop, "tcp", netip.AddrPortFrom(netsite.LaptopAddr, testlab.NetACSPort).String())
		if err != nil {
			return err
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: a, ConnState: a.ConnState, ReadHeaderTimeout: 10 * time.Second}}
		srv.Start()
		tb.Cleanup(srv.Close)
		return nil
	}
	site, err := testlab.Start(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(site.Close)
	return &Lab{Site: site, ACS: a, ACSURL: cfg.ACSURL, PollInterval: 20 * time.Millisecond}
}

// NewNetInstance returns a fresh netsite instance name: "t" and 6 random
// hex digits.
func NewNetInstance(tb testing.TB) string {
	tb.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:])
}

// NetHTTPClient returns a client whose connections are dialed in the
// namespace of role of n (URLs must carry IP addresses), without
// keep-alives: each request dials afresh, so it shows the path as it is now.
func NetHTTPClient(n *netsite.Net, role netsite.Role, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return n.DialContext(ctx, role, network, addr)
		},
		DisableKeepAlives: true,
	}}
}
