package acs_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// observed is one call to a recordingObserver.
type observed struct {
	call, device, method string
	code                 int
	err                  error
}

// recordingObserver is a hand-written acs.SessionObserver that records
// every call; notify, if set, gets each one too.
type recordingObserver struct {
	mu     sync.Mutex
	calls  []observed
	notify chan observed
}

func (o *recordingObserver) add(c observed) {
	o.mu.Lock()
	o.calls = append(o.calls, c)
	o.mu.Unlock()
	if o.notify != nil {
		select {
		case o.notify <- c:
		default:
		}
	}
}

func (o *recordingObserver) SessionStarted(id string) { o.add(observed{call: "started", device: id}) }
func (o *recordingObserver) SessionEnded(id string, took time.Duration, err error) {
	if took < 0 {
		err = errors.New("negative duration")
	}
	o.add(observed{call: "ended", device: id, err: err})
}
func (o *recordingObserver) Fault(id, method string, code int) {
	o.add(observed{call: "fault", device: id, method: method, code: code})
}
func (o *recordingObserver) ConnectionRequest(id string, _ time.Duration, err error) {
	o.add(observed{call: "connreq", device: id, err: err})
}

// snapshot returns the calls so far.
func (o *recordingObserver) snapshot() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observed(nil), o.calls...)
}

// waitFor waits until match accepts a recorded call and returns it.
func (o *recordingObserver) waitFor(t *testing.T, what string, match func(observed) bool) observed {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range o.snapshot() {
			if match(c) {
				return c
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s observed; calls: %+v", what, o.snapshot())
	return observed{}
}

// The observer sees sessions start and end (normally, nil error), the
// connection request that opened a session, and a CPE's fault by method
// and code; every started session ends exactly once.
func TestObserverSessionsFaultsConnectionRequests(t *testing.T) {
	obs := &recordingObserver{}
	l := startLab(t, 1, acs.Config{Observer: obs}, nil)
	ctx := testCtx(t)
	d := l.waitBoot(t, ctx, "SN000")
	if err := l.acs.WaitIdle(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	// A request through a connection request, then one the CPE faults
	// (a read-only parameter: 9008) in a second connection request.
	if _, err := l.acs.GetParameterValues(ctx, d.ID, swVersion); err != nil {
		t.Fatal(err)
	}
	if err := l.acs.WaitIdle(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	err := l.acs.SetParameterValues(ctx, d.ID, []cwmp.ParameterValueStruct{{Name: "InternetGatewayDevice.DeviceInfo.SerialNumber", Value: "X"}}, "k")
	var f *cwmp.Fault
	if !errors.As(err, &f) || f.Code != cwmp.FaultNonWritableParameter {
		t.Fatalf("err = %v, want fault 9008", err)
	}
	if err := l.acs.WaitIdle(ctx, d.ID); err != nil {
		t.Fatal(err)
	}

	calls := obs.snapshot()
	count := map[string]int{}
	for _, c := range calls {
		if c.device != d.ID {
			t.Errorf("call for device %q: %+v", c.device, c)
		}
		count[c.call]++
		switch c.call {
		case "ended", "connreq":
			if c.err != nil {
				t.Errorf("%s with error %v", c.call, c.err)
			}
		case "fault":
			if c.method != "SetParameterValues" || c.code != cwmp.FaultNonWritableParameter {
				t.Errorf("fault %+v, want SetParameterValues 9008", c)
			}
		}
	}
	if count["started"] != 3 || count["ended"] != 3 || count["connreq"] != 2 || count["fault"] != 1 {
		t.Fatalf("counts %v, want 3 sessions started and ended, 2 connection requests, 1 fault; calls %+v", count, calls)
	}
}

// informOnly sends one Inform for serial with crURL as its connection
// request URL, and never continues the session.
func informOnly(t *testing.T, acsURL, serial, crURL string) string {
	t.Helper()
	inform, err := cwmp.Encode(&cwmp.Envelope{ID: "1", Body: &cwmp.Inform{
		DeviceId: cwmp.DeviceIdStruct{OUI: "00AABB", SerialNumber: serial},
		Event:    []cwmp.EventStruct{{EventCode: acs.EventBoot}},
		ParameterList: []cwmp.ParameterValueStruct{
			{Name: "Device.ManagementServer.ConnectionRequestURL", Value: crURL},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(acsURL, "text/xml", strings.NewReader(string(inform)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return "00AABB-" + serial
}

// A session the CPE abandons ends with the idle timeout as its error; a
// connection request to a closed port, to a CPE that never answers, and
// with wrong credentials each reach the observer with their reason.
func TestObserverFailures(t *testing.T) {
	obs := &recordingObserver{}
	s := acs.New(acs.Config{
		Observer: obs, SessionTimeout: 100 * time.Millisecond, ConnectionRequestTimeout: 300 * time.Millisecond,
		ConnectionRequestAuth: func(string) (string, secret.Secret) { return crUser, secret.New(crPass) },
	})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := testCtx(t)

	// A closed port: take one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/cr"
	ln.Close()
	// A CPE that accepts TCP connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	defer func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	// A CPE that refuses the credentials.
	denying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer denying.Close()

	tests := []struct {
		name, serial, crURL string
		reason              acs.Reason
	}{
		{"refused", "REFUSED1", closedURL, acs.ReasonRefused},
		{"timeout", "SILENT1", "http://" + silent.Addr().String() + "/cr", acs.ReasonTimeout},
		{"unauthorized", "DENY1", denying.URL + "/cr", acs.ReasonUnauthorized},
		{"no URL", "NOURL1", "", acs.ReasonNoURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := informOnly(t, srv.URL, tc.serial, tc.crURL)
			obs.waitFor(t, "started", func(c observed) bool { return c.call == "started" && c.device == id })
			ended := obs.waitFor(t, "idle timeout", func(c observed) bool { return c.call == "ended" && c.device == id })
			if ended.err == nil || !strings.Contains(ended.err.Error(), "idle timeout") {
				t.Fatalf("abandoned session ended with %v, want the idle timeout", ended.err)
			}
			if err := s.WaitIdle(ctx, id); err != nil {
				t.Fatal(err)
			}
			_, err := s.Do(ctx, id, &cwmp.GetRPCMethods{})
			if !errors.Is(err, acs.ErrConnectionRequest) {
				t.Fatalf("Do: %v, want a failed connection request", err)
			}
			c := obs.waitFor(t, "connection request", func(c observed) bool { return c.call == "connreq" && c.device == id })
			var cre *acs.ConnectionRequestError
			if !errors.As(c.err, &cre) || cre.Reason != tc.reason {
				t.Fatalf("observed %v, want reason %q", c.err, tc.reason)
			}
		})
	}
}
