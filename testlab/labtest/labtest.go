// Package labtest is the shared test harness around a testlab site: an
// embedded ACS on loopback that the site's TR-069 devices inform, the site
// itself, and drivers opened on its devices the way fieldagent opens them.
// Tests of drivers, diagnostics, the workflow and the fault catalogue use it
// instead of wiring an ACS and simulators by hand.
package labtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/drivers/e8"
	"fieldagent/drivers/itv"
	"fieldagent/drivers/snmp"
	"fieldagent/drivers/sshcli"
	"fieldagent/drivers/xt2"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
)

// CRUser and CRPassword are the connection-request credentials of every
// lab's devices and ACS.
const (
	CRUser     = "lab"
	CRPassword = "cr-pass-for-test"
)

// Lab is a running site with its ACS.
type Lab struct {
	Site   *testlab.Site
	ACS    *acs.Server
	ACSURL string
	// PollInterval is the drivers' state polling interval (default 20ms).
	PollInterval time.Duration
}

// Start starts an ACS and a site (cfg's ACS and connection-request fields
// are filled in) and stops both when the test ends.
func Start(tb testing.TB, cfg testlab.Config) *Lab {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	a := acs.New(acs.Config{
		Logger:                cfg.Logger,
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return CRUser, secret.New(CRPassword) },
	})
	srv := httptest.NewUnstartedServer(a)
	srv.Config.ConnState = a.ConnState
	srv.Start()
	tb.Cleanup(srv.Close)
	cfg.ACSURL = srv.URL + "/"
	cfg.ConnReqUsername, cfg.ConnReqPassword = CRUser, secret.New(CRPassword)
	site, err := testlab.Start(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(site.Close)
	return &Lab{Site: site, ACS: a, ACSURL: cfg.ACSURL, PollInterval: 20 * time.Millisecond}
}

// Ctx returns a context that ends after d or with the test.
func Ctx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// device waits for the device with the serial to inform and opens its
// driver through the catalogue, as fieldagent does.
func (l *Lab) device(ctx context.Context, tb testing.TB, serial string) drivers.Identifier {
	tb.Helper()
	d, err := l.ACS.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == serial })
	if err != nil {
		tb.Fatalf("no Inform from %s: %v", serial, err)
	}
	reg := catalog.New(catalog.Options{ACS: l.ACS, PollInterval: l.PollInterval})
	drv, _, err := catalog.OpenTR069(ctx, reg, d)
	if err != nil {
		tb.Fatal(err)
	}
	return drv
}

// Gateway returns the e8 driver of the site's gateway.
func (l *Lab) Gateway(ctx context.Context, tb testing.TB) *e8.Driver {
	tb.Helper()
	gw, ok := l.device(ctx, tb, testlab.SampleGatewaySN).(*e8.Driver)
	if !ok {
		tb.Fatal("the site's gateway did not open as an e8")
	}
	return gw
}

// STB returns the iTV driver of the site's set-top box (Config.STB).
func (l *Lab) STB(ctx context.Context, tb testing.TB) *itv.Driver {
	tb.Helper()
	stb, ok := l.device(ctx, tb, testlab.SampleSTBSN).(*itv.Driver)
	if !ok {
		tb.Fatal("the site's set-top box did not open as an iTV")
	}
	return stb
}

// XT2Config is how a driver reaches the site's XT-2 (Config.XT2): its SSH
// host key in a known_hosts file of the test's, SNMP v2c.
func (l *Lab) XT2Config(tb testing.TB) xt2.Config {
	tb.Helper()
	acc := l.Site.XT2Access
	kh := filepath.Join(tb.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(acc.KnownHostsLine()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return xt2.Config{
		SSH:  sshcli.Config{Addr: acc.SSHAddr, User: acc.Username, Password: acc.Password, KnownHostsFile: kh},
		SNMP: snmp.Target{Addr: acc.SNMPAddr, Version: snmp.V2c, Community: acc.SNMPCommunity, Timeout: time.Second, Retries: 2},
	}
}

// XT2 opens the site's XT-2 and closes it when the test ends.
func (l *Lab) XT2(ctx context.Context, tb testing.TB) *xt2.Driver {
	tb.Helper()
	d, err := xt2.Open(ctx, l.XT2Config(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}

// HTTPClient is a client for the site's HTTP servers.
func HTTPClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }
