package nbisim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/e8sim"
	"fieldagent/testlab/fleet"
	"fieldagent/testlab/nbisim"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/genieacs"
)

// Connection-request credentials of the test gateways and their ACS.
const (
	crUser = "lab"
	crPass = "cr-pass-for-test"
)

// sim is an embedded ACS on loopback, a fleet of e8sim gateways informing
// it, nbisim in front of it and a GenieACS client of nbisim.
type sim struct {
	acs    *acs.Server
	acsURL string
	fleet  *fleet.Fleet
	nbi    *nbisim.Server
	url    string
	client *genieacs.Client
}

// startSim starts n fleet gateways (n may be 0) and nbisim, and stops
// them when the test ends.
func startSim(tb testing.TB, n int, o nbisim.Options) *sim {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	a := acs.New(acs.Config{
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return crUser, secret.New(crPass) },
		EventBuffer:           2*n + 64,
		ConnLostGrace:         50 * time.Millisecond,
	})
	as := httptest.NewUnstartedServer(a)
	as.Config.ConnState = a.ConnState
	as.Start()
	tb.Cleanup(as.Close)
	s := &sim{acs: a, acsURL: as.URL + "/"}
	if n > 0 {
		f, err := fleet.Start(ctx, fleet.Options{N: n, ACSURL: s.acsURL, ConnReqUsername: crUser, ConnReqPassword: secret.New(crPass)})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = f.Close() })
		s.fleet = f
		wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
		defer wcancel()
		for i := range n {
			if _, err := a.WaitDevice(wctx, func(d acs.Device) bool { return d.ID == f.DeviceID(i) }); err != nil {
				tb.Fatalf("gateway %d never informed: %v", i, err)
			}
		}
	}
	s.nbi = nbisim.New(a, o)
	ns := httptest.NewServer(s.nbi)
	tb.Cleanup(ns.Close)
	tb.Cleanup(func() { _ = s.nbi.Close() })
	s.url = ns.URL
	c, err := genieacs.New(ns.URL, genieacs.Options{PollInterval: 20 * time.Millisecond, MaxPollInterval: 200 * time.Millisecond, TaskTimeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	s.client = c
	return s
}

// gateway starts one more e8sim gateway informing the sim's ACS; stop
// cancels its Run (its connection-request listener closes) and waits.
func (s *sim) gateway(tb testing.TB, cfg e8sim.Config) (gw *e8sim.Gateway, id string, stop func()) {
	tb.Helper()
	cfg.ACSURL = s.acsURL
	cfg.ConnReqUsername, cfg.ConnReqPassword = crUser, secret.New(crPass)
	if cfg.Access == "" {
		cfg.Access = "gpon"
	}
	cfg.PeriodicInform = -1
	gw, err := e8sim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	tb.Cleanup(stop)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	d, err := s.acs.WaitDevice(wctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == cfg.Serial })
	if err != nil {
		tb.Fatal(err)
	}
	return gw, d.ID, stop
}

func ctxT(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// raw sends one request to nbisim and returns the answer with its body.
func (s *sim) raw(tb testing.TB, method, path string, header map[string]string, body string) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(method, s.url+path, stringsReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := readAll(resp)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}

func reason(r *http.Response) string {
	return r.Status[len(fmt.Sprint(r.StatusCode))+1:]
}
