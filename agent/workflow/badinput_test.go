package workflow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/ordersys"
	"fieldagent/agent/secret"
	"fieldagent/agent/workflow"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
)

// recordRequests is an http.RoundTripper that records "METHOD path" of
// every request to the order system.
type recordRequests struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []string
}

func (rr *recordRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	rr.mu.Lock()
	rr.reqs = append(rr.reqs, r.Method+" "+r.URL.Path)
	rr.mu.Unlock()
	return rr.next.RoundTrip(r)
}

func (rr *recordRequests) list() []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return slices.Clone(rr.reqs)
}

// readOnlyRPCs are the ACS requests that cannot change a device.
func readOnlyRPCs() []string {
	return []string{"GetRPCMethods", "GetParameterNames", "GetParameterValues", "GetParameterAttributes"}
}

// sameParams reports whether two tree snapshots hold the same parameters
// with the same values and attributes, and names the first difference.
func sameParams(before, after []cpe.Param) (string, bool) {
	was := map[string]cpe.Param{}
	for _, p := range before {
		was[p.Name] = p
	}
	for _, p := range after {
		b, ok := was[p.Name]
		switch {
		case !ok:
			return fmt.Sprintf("%s was added (value %q)", p.Name, p.Value), false
		case b.Value != p.Value || b.Type != p.Type || b.Notify != p.Notify || !slices.Equal(b.AccessList, p.AccessList):
			return fmt.Sprintf("%s changed from %q to %q", p.Name, b.Value, p.Value), false
		}
		delete(was, p.Name)
	}
	for name := range was {
		return name + " was deleted", false
	}
	return "", true
}

// TestBadInputLeavesDeviceUntouched: bad input from the order system (a
// missing PPPoE account, an unknown device kind, malformed JSON, an
// oversized body, a 500, a refused token) stops the run at fetch_order with
// an error that names the problem and no secret, before the gateway is
// touched and without anything uploaded.
func TestBadInputLeavesDeviceUntouched(t *testing.T) {
	const pppoePassword = "Pp-BadInput-Secret-6"
	const wrongToken = "Tk-Wrong-Token-6"
	id := testlab.SampleOrderID
	// rawOrder serves the site's order in wire form, changed by mangle.
	rawOrder := func(mangle func(t *testing.T, wire []byte) []byte) func(*testing.T, *workflow.Runner, *testlab.Site) {
		return func(t *testing.T, _ *workflow.Runner, site *testlab.Site) {
			wire, err := site.Order.WireJSON()
			if err != nil {
				t.Fatal(err)
			}
			site.Orders.AddRawOrder(id, testlab.SampleTechnician, mangle(t, wire))
		}
	}
	// syntaxAt is where the malformed case breaks the JSON: a comma where
	// the services array's first element belongs.
	syntaxAt := func(t *testing.T, wire []byte) int {
		i := bytes.Index(wire, []byte(`"services":[`))
		if i < 0 {
			t.Fatalf("no services array in %s", wire)
		}
		return i + len(`"services":[`)
	}

	tests := []struct {
		name string
		// edit changes the order before the order system holds it.
		edit func(*order.Order)
		// setup, if set, makes the order system (or the client) misbehave.
		setup  func(t *testing.T, r *workflow.Runner, site *testlab.Site)
		wantIs []error
		// want are substrings of the error; wantFn adds some that depend
		// on the order's wire form.
		want   []string
		wantFn func(t *testing.T, site *testlab.Site) []string
		// gets is how many times the client fetches the order; 0 means 1.
		gets int
	}{
		{
			name:   "missing PPPoE account",
			edit:   func(o *order.Order) { o.PPPoE = order.Account{} },
			wantIs: []error{ordersys.ErrBadResponse, order.ErrInvalid},
			want:   []string{"order " + id + " is invalid", "order: pppoe: is required for a new_install order", "ask dispatch for the broadband account"},
		},
		{
			name:   "PPPoE password without the account name",
			edit:   func(o *order.Order) { o.PPPoE.Username = "" },
			wantIs: []error{ordersys.ErrBadResponse, order.ErrInvalid},
			want:   []string{"order: pppoe.username: is required when pppoe.password is given"},
		},
		{
			// An e9 beside the e8: without validation the e8 would be
			// configured, so only the check of the kind stops the run.
			name: "unknown device kind beside the e8",
			edit: func(o *order.Order) {
				o.Services = append(o.Services, order.Service{Device: "e9", Access: order.AccessGPON, BandwidthMbps: 100})
			},
			wantIs: []error{ordersys.ErrBadResponse, order.ErrInvalid},
			want:   []string{`order: services[1].device: "e9" is not one of e8, itv, xt2`},
		},
		{
			name:   "unknown device kind",
			edit:   func(o *order.Order) { o.Services[0].Device = "e9" },
			wantIs: []error{ordersys.ErrBadResponse, order.ErrInvalid},
			want:   []string{`order: services[0].device: "e9" is not one of e8, itv, xt2`},
		},
		{
			// Cut inside the PPPoE password: half a credential is still
			// not for the error message.
			name: "truncated JSON",
			setup: rawOrder(func(t *testing.T, wire []byte) []byte {
				i := bytes.Index(wire, []byte(pppoePassword))
				if i < 0 {
					t.Fatalf("no PPPoE password in %s", wire)
				}
				return wire[:i+len(pppoePassword)/2]
			}),
			wantIs: []error{ordersys.ErrBadResponse, order.ErrInvalid},
			want:   []string{"order: is truncated JSON"},
		},
		{
			name: "malformed JSON",
			setup: rawOrder(func(t *testing.T, wire []byte) []byte {
				at := syntaxAt(t, wire)
				return slices.Concat(wire[:at], []byte(","), wire[at:])
			}),
			wantIs: []error{ordersys.ErrBadResponse, order.ErrInvalid},
			want:   []string{"invalid character ','"},
			wantFn: func(t *testing.T, site *testlab.Site) []string {
				wire, err := site.Order.WireJSON()
				if err != nil {
					t.Fatal(err)
				}
				return []string{fmt.Sprintf("is not valid JSON at byte %d", syntaxAt(t, wire)+1)}
			},
		},
		{
			// A well-formed order with 1 MiB of notes: the size limit, not
			// the parser, refuses it.
			name:   "oversized body",
			edit:   func(o *order.Order) { o.Notes = strings.Repeat("n", order.MaxSize) },
			wantIs: []error{ordersys.ErrBadResponse},
			want:   []string{fmt.Sprintf("the response is more than the %d-byte limit", order.MaxSize)},
		},
		{
			// Every attempt fails: the client tries MaxAttempts times.
			name: "500 from the server",
			setup: func(t *testing.T, r *workflow.Runner, site *testlab.Site) {
				r.Orders.MaxAttempts, r.Orders.RetryBackoff = 3, time.Millisecond
				site.Orders.FailNext(3, http.StatusInternalServerError)
			},
			want: []string{"GET /api/v1/orders/" + id + ": 500 Internal Server Error: injected fault (3 attempts)", "try again later"},
			gets: 3,
		},
		{
			name: "wrong API token",
			setup: func(t *testing.T, r *workflow.Runner, site *testlab.Site) {
				r.Orders.Token = secret.New(wrongToken)
			},
			wantIs: []error{ordersys.ErrUnauthorized},
			want:   []string{"401 Unauthorized", "missing or invalid bearer token", "check the order-system API token"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, site, st := labRunWith(t, testlab.Config{PPPoEPassword: secret.New(pppoePassword), EditOrder: tc.edit}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			// Let the gateway boot and inform first, so that the snapshot
			// below is the device as the technician finds it.
			if _, err := r.ACS.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == testlab.SampleGatewaySN }); err != nil {
				t.Fatalf("the gateway did not inform: %v", err)
			}
			// A session cut that never matches sees every ACS request
			// and cuts none.
			var rpcMu sync.Mutex
			var rpcs []string
			site.Gateway.CutSessionWhere(func(m cwmp.Message) bool {
				rpcMu.Lock()
				rpcs = append(rpcs, m.MethodName())
				rpcMu.Unlock()
				return false
			}, false)
			rec := &recordRequests{next: http.DefaultTransport}
			r.Orders.HTTPClient = &http.Client{Transport: rec, Timeout: 10 * time.Second}
			if tc.setup != nil {
				tc.setup(t, r, site)
			}
			secrets := map[string]string{
				"API token":      site.Token.Reveal(),
				"wrong token":    wrongToken,
				"PPPoE password": pppoePassword,
				"half of it":     pppoePassword[:len(pppoePassword)/2],
				"LOID":           site.Order.LOID.LOID.Reveal(),
				"LOID password":  site.Order.LOID.Password.Reveal(),
			}
			before := site.Gateway.Tree().Snapshot()

			out, err := r.Run(ctx, id)

			// 1. A clear error, at fetch_order, with nothing after it.
			var msg string
			if err == nil {
				t.Errorf("Run succeeded: the order is %s", out.State)
			} else {
				msg = err.Error()
			}
			if out.FailedStep != workflow.StepFetchOrder || out.State != workflow.OrderFailed {
				t.Errorf("failed step %q, state %q; want %q, %q", out.FailedStep, out.State, workflow.StepFetchOrder, workflow.OrderFailed)
			}
			var steps []string
			for _, s := range out.Steps {
				steps = append(steps, s.Name+":"+s.State)
			}
			if want := []string{workflow.StepFetchOrder + ":" + workflow.StateFailed}; !slices.Equal(steps, want) {
				t.Errorf("steps %v, want only %v", steps, want)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("error does not wrap %q", target)
				}
			}
			want := append([]string{"step fetch_order", "fetch order " + id}, tc.want...)
			if tc.wantFn != nil {
				want = append(want, tc.wantFn(t, site)...)
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not say %q:\n%s", w, msg)
				}
			}
			if out.Error != msg {
				t.Errorf("outcome error %q, want %q", out.Error, msg)
			}

			// 2. The gateway is untouched.
			if diff, ok := sameParams(before, site.Gateway.Tree().Snapshot()); !ok {
				t.Errorf("the gateway's data model changed: %s", diff)
			}
			rpcMu.Lock()
			writes := slices.DeleteFunc(slices.Clone(rpcs), func(m string) bool { return slices.Contains(readOnlyRPCs(), m) })
			if len(writes) > 0 {
				t.Errorf("the gateway received %v (all requests: %v)", writes, rpcs)
			}
			rpcMu.Unlock()

			// 3. Nothing reached the order system but the fetch, and
			// nothing waits to be uploaded.
			gets := max(tc.gets, 1)
			wantReqs := slices.Repeat([]string{"GET /api/v1/orders/" + id}, gets)
			if got := rec.list(); !slices.Equal(got, wantReqs) {
				t.Errorf("requests to the order system %v, want %v", got, wantReqs)
			}
			if _, ok := site.Orders.Completion(id); ok {
				t.Error("a completion was uploaded")
			}
			if evs := site.Orders.Events(id); len(evs) != 0 {
				t.Errorf("the order system got events %+v", evs)
			}
			if s := site.Orders.State(id); s != "assigned" {
				t.Errorf("order system state %q, want assigned", s)
			}
			if items, err := st.Outbox(context.Background(), id); err != nil || len(items) != 0 {
				t.Errorf("outbox holds %d items (%v), want none", len(items), err)
			}

			// 4. No secret in the error, the outcome or the store.
			var dump bytes.Buffer
			if err := st.Dump(context.Background(), &dump); err != nil {
				t.Fatal(err)
			}
			for name, v := range secrets {
				if v == "" {
					continue
				}
				for what, text := range map[string]string{"error": msg, "outcome": out.Error, "store": dump.String()} {
					if strings.Contains(text, v) {
						t.Errorf("the %s appears in the %s", name, what)
					}
				}
			}
		})
	}
}
