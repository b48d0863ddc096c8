package ordersys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
	"fieldagent/agent/store"
	labos "fieldagent/testlab/ordersys"
)

const labToken = "lab-token-123"

func labOrder(id, tech string) *order.Order {
	start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	return &order.Order{
		ID: id, Type: order.TypeNewInstall, Technician: tech,
		Customer:    order.Customer{Name: "Li Na", Address: "12 Garden Road"},
		Appointment: order.Window{Start: start, End: start.Add(2 * time.Hour)},
		Services:    []order.Service{{Device: order.DeviceE8, Access: order.AccessGPON, BandwidthMbps: 300}},
		PPPoE:       order.Account{Username: "ln@isp", Password: secret.New("pppoe-TOPSECRET")},
		LOID:        order.LOIDCredential{LOID: secret.New("LOID-TOPSECRET")},
	}
}

// startLab starts the simulated order system on 127.0.0.1 and a client of it.
func startLab(t *testing.T) (*labos.Server, *Client) {
	t.Helper()
	srv := labos.New(secret.New(labToken), nil)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, &Client{BaseURL: ts.URL, Token: secret.New(labToken), HTTPClient: ts.Client(), RetryBackoff: time.Millisecond}
}

func TestClientOrders(t *testing.T) {
	ctx := t.Context()
	srv, c := startLab(t)
	srv.AddOrder(labOrder("WO-1", "zhang"))
	srv.AddOrder(labOrder("WO-2", "chen"))

	list, err := c.ListOrders(ctx, "zhang")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "WO-1" || list[0].State != "assigned" || list[0].CustomerName != "Li Na" {
		t.Errorf("ListOrders = %+v", list)
	}
	all, err := c.ListOrders(ctx, "")
	if err != nil || len(all) != 2 {
		t.Errorf("ListOrders(all) = %+v, %v", all, err)
	}

	o, err := c.GetOrder(ctx, "WO-1")
	if err != nil {
		t.Fatal(err)
	}
	if o.PPPoE.Password.Reveal() != "pppoe-TOPSECRET" || o.LOID.LOID.Reveal() != "LOID-TOPSECRET" {
		t.Errorf("credentials did not come over the wire: %+v", o)
	}
	if _, err := c.GetOrder(ctx, "WO-404"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing order: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := t.Context()
	srv, c := startLab(t)
	srv.AddRawOrder("WO-BAD", "zhang", []byte(`{"id":"WO-BAD","type":"repair","technician":"t",
		"customer":{"name":"n","address":"a"},"appointment":{"start":"2025-03-02T14:00:00Z","end":"2025-03-02T16:00:00Z"},
		"services":[{"device":"e8","access":"vdsl","bandwidth_mbps":50}]}`))
	srv.AddRawOrder("WO-HTML", "zhang", []byte(`<html>maintenance</html>`))
	srv.AddRawOrder("WO-OTHER", "zhang", mustWire(t, labOrder("WO-1", "zhang")))
	srv.AddRawOrder("WO-BIG", "zhang", bytes.Repeat([]byte(" "), maxBody+1))

	wrong := *c
	wrong.Token = secret.New("not-the-token")
	noToken := *c
	noToken.Token = secret.Secret{}

	tests := []struct {
		name     string
		client   *Client
		call     func(c *Client) error
		wantIs   []error
		wantText string
	}{
		{"wrong token", &wrong, func(c *Client) error { _, err := c.ListOrders(ctx, ""); return err },
			[]error{ErrUnauthorized}, "401 Unauthorized: missing or invalid bearer token: check the order-system API token"},
		{"no token", &noToken, func(c *Client) error { _, err := c.GetOrder(ctx, "WO-1"); return err },
			[]error{ErrUnauthorized}, "no API token configured"},
		{"malformed order names the field", c, func(c *Client) error { _, err := c.GetOrder(ctx, "WO-BAD"); return err },
			[]error{ErrBadResponse, order.ErrInvalid}, `order: services[0].access: "vdsl" is not one of lan, adsl, epon, gpon`},
		{"not JSON", c, func(c *Client) error { _, err := c.GetOrder(ctx, "WO-HTML"); return err },
			[]error{ErrBadResponse, order.ErrInvalid}, "is not valid JSON"},
		{"other order returned", c, func(c *Client) error { _, err := c.GetOrder(ctx, "WO-OTHER"); return err },
			[]error{ErrBadResponse}, "asked for order WO-OTHER, got order WO-1"},
		{"response over the limit", c, func(c *Client) error { _, err := c.GetOrder(ctx, "WO-BIG"); return err },
			[]error{ErrBadResponse}, "GET /api/v1/orders/WO-BIG: the response is more than the 1048576-byte limit: check the order-system URL"},
		{"500 on every attempt", c, func(c *Client) error {
			srv.FailNext(3, http.StatusInternalServerError)
			defer srv.FailNext(0, 0)
			cc := *c
			cc.MaxAttempts = 3
			_, err := cc.GetOrder(ctx, "WO-OTHER")
			return err
		}, nil, "500 Internal Server Error: injected fault (3 attempts): the order system failed: try again later"},
		{"500 not retried", c, func(c *Client) error {
			srv.FailNext(1, http.StatusInternalServerError)
			defer srv.FailNext(0, 0)
			return c.PostEvent(ctx, "WO-OTHER", Event{Kind: EventArrived})
		}, nil, "POST /api/v1/orders/WO-OTHER/events: 500 Internal Server Error: injected fault: the order system failed"},
		{"event for missing order", c, func(c *Client) error { return c.PostEvent(ctx, "WO-404", Event{Kind: EventArrived}) },
			[]error{ErrNotFound}, "404 Not Found"},
		{"bad event kind", c, func(c *Client) error { return c.PostEvent(ctx, "WO-BAD", Event{Kind: "lunch"}) },
			[]error{ErrRejected}, `kind: "lunch" is not one of`},
		{"completion without key", c, func(c *Client) error { _, err := c.Complete(ctx, "WO-BAD", "", []byte(`{}`)); return err },
			[]error{ErrInvalidRequest}, "idempotency key is empty"},
		{"completion missing result", c, func(c *Client) error {
			_, err := c.Complete(ctx, "WO-BAD", "k", []byte(`{"order_id":"WO-BAD"}`))
			return err
		}, []error{ErrRejected}, "result: is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(tc.client)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("error does not wrap %v: %v", want, err)
				}
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
			if strings.Contains(err.Error(), labToken) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestClientEventsAndCompletion(t *testing.T) {
	ctx := t.Context()
	srv, c := startLab(t)
	srv.AddOrder(labOrder("WO-1", "zhang"))
	srv.AddOrder(labOrder("WO-2", "zhang"))

	at := time.Date(2025, 3, 1, 9, 5, 0, 0, time.UTC)
	if err := c.PostEvent(ctx, "WO-1", Event{Kind: EventArrived, At: at, Detail: "on site"}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // keyed event: recorded once
		if err := c.PostEvent(ctx, "WO-1", Event{Kind: EventStarted, At: at, Key: "WO-1/started"}); err != nil {
			t.Fatal(err)
		}
	}
	evs := srv.Events("WO-1")
	if len(evs) != 2 || evs[0].Kind != "arrived" || !evs[0].At.Equal(at) || evs[0].Detail != "on site" || evs[1].Kind != "started" {
		t.Errorf("server events = %+v", evs)
	}
	if got := srv.State("WO-1"); got != labos.StateInProgress {
		t.Errorf("state after events = %q", got)
	}

	body := []byte(`{"order_id":"WO-1","result":"installed","readings":[]}`)
	first, err := c.Complete(ctx, "WO-1", "WO-1/completion", body)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Complete(ctx, "WO-1", "WO-1/completion", body)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"receipt", first.Receipt != "", true},
		{"state", first.State, "closed"},
		{"order", first.OrderID, "WO-1"},
		{"first is new", first.Replayed, false},
		{"same receipt", again.Receipt, first.Receipt},
		{"second is replay", again.Replayed, true},
		{"server state", srv.State("WO-1"), labos.StateClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if created, _ := srv.CompletionCounts("WO-1"); created != 1 {
		t.Errorf("server accepted %d completions, want 1", created)
	}
	if got, _ := srv.Completion("WO-1"); !bytes.Equal(got, body) {
		t.Errorf("server holds %s", got)
	}
	if _, err := c.Complete(ctx, "WO-1", "another-key", body); !errors.Is(err, ErrConflict) {
		t.Errorf("second completion with another key: %v", err)
	}
}

func TestClientRetriesTemporaryFailures(t *testing.T) {
	ctx := t.Context()
	srv, c := startLab(t)
	srv.AddOrder(labOrder("WO-1", "zhang"))
	tests := []struct {
		name     string
		attempts int
		fail     int
		status   int
		wantErr  error
	}{
		{"retried until it works", 3, 2, http.StatusServiceUnavailable, nil},
		{"429 retried", 2, 1, http.StatusTooManyRequests, nil},
		{"gives up after MaxAttempts", 2, 2, http.StatusServiceUnavailable, ErrUnreachable},
		{"400 not retried", 3, 1, http.StatusBadRequest, ErrRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := *c
			cc.MaxAttempts = tc.attempts
			srv.FailNext(tc.fail, tc.status)
			defer srv.FailNext(0, 0)
			_, err := cc.GetOrder(ctx, "WO-1")
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("GetOrder = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestClientResponseBrokeOff: a response that ends before its
// Content-Length says how much arrived, not just "unexpected EOF".
func TestClientResponseBrokeOff(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
		_ = buf.Flush()
	}))
	t.Cleanup(ts.Close)
	c := &Client{BaseURL: ts.URL, Token: secret.New(labToken), HTTPClient: ts.Client(), RetryBackoff: time.Millisecond}
	_, err := c.GetOrder(t.Context(), "WO-1")
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("error does not wrap ErrUnreachable: %v", err)
	}
	want := "GET /api/v1/orders/WO-1: the response broke off after 6 of 100 bytes (unexpected EOF): check the network"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v does not say %q", err, want)
	}
}

// unreachableURL returns a URL on 127.0.0.1 where nothing listens.
func unreachableURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestClientUnreachable(t *testing.T) {
	c := &Client{BaseURL: unreachableURL(t), Token: secret.New(labToken), RetryBackoff: time.Millisecond}
	_, err := c.ListOrders(t.Context(), "zhang")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("ListOrders = %v, want ErrUnreachable", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.ListOrders(ctx, "zhang")
	if errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ListOrders = %v, want context.Canceled and not ErrUnreachable", err)
	}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// clock is a settable clock for the uploader and the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func enqueueCompletion(t *testing.T, s *store.Store, o *order.Order, key string) {
	t.Helper()
	if err := s.PutOrder(t.Context(), o, "done"); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"order_id": o.ID, "result": "installed"})
	if err := s.Enqueue(t.Context(), store.OutboxItem{OrderID: o.ID, Kind: KindCompletion, IdempotencyKey: key, Body: body}); err != nil {
		t.Fatal(err)
	}
}

func TestUploaderRetriesAndDeliversOnce(t *testing.T) {
	ctx := t.Context()
	srv, c := startLab(t)
	c.MaxAttempts = 1 // let the uploader do the retrying
	o := labOrder("WO-1", "zhang")
	srv.AddOrder(o)
	st := openStore(t)
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	st.Now = clk.now
	enqueueCompletion(t, st, o, "WO-1/completion/1")
	u := &Uploader{Store: st, Client: c, Now: clk.now, Backoff: time.Minute, MaxBackoff: time.Hour}

	srv.FailNext(2, http.StatusServiceUnavailable)
	rounds := []struct {
		name          string
		advance       time.Duration
		wantDelivered int
		wantErr       error
		wantAttempts  int
	}{
		{"first attempt fails", 0, 0, ErrUnreachable, 1},
		{"not due yet: nothing sent", 10 * time.Second, 0, nil, 1},
		{"second attempt fails", 2 * time.Minute, 0, ErrUnreachable, 2},
		{"third attempt delivers", 10 * time.Minute, 1, nil, 3},
		{"nothing left", time.Hour, 0, nil, 3},
	}
	for _, r := range rounds {
		t.Run(r.name, func(t *testing.T) {
			clk.t = clk.t.Add(r.advance)
			n, err := u.Flush(ctx)
			if n != r.wantDelivered || (r.wantErr == nil) != (err == nil) || r.wantErr != nil && !errors.Is(err, r.wantErr) {
				t.Fatalf("Flush = %d, %v; want %d, %v", n, err, r.wantDelivered, r.wantErr)
			}
			items, err := st.Outbox(ctx, "WO-1")
			if err != nil {
				t.Fatal(err)
			}
			if items[0].Attempts != r.wantAttempts {
				t.Errorf("completion item attempts = %d, want %d (last error %q)", items[0].Attempts, r.wantAttempts, items[0].LastError)
			}
		})
	}
	items, _ := st.Outbox(ctx, "WO-1")
	for _, it := range items {
		if !it.Delivered() || len(it.Response) == 0 {
			t.Errorf("item %s not delivered: %+v", it.IdempotencyKey, it)
		}
	}
	if !strings.Contains(string(items[0].Response), `"receipt":"R-000001"`) {
		t.Errorf("stored response %s", items[0].Response)
	}
	if created, replayed := srv.CompletionCounts("WO-1"); created != 1 || replayed != 0 {
		t.Errorf("server completions: %d created, %d replayed; want exactly one", created, replayed)
	}
	if srv.State("WO-1") != labos.StateClosed {
		t.Errorf("order not closed")
	}
}

// TestUploaderRedeliveryIsIdempotent simulates a crash after the server
// accepted the completion but before the store recorded it.
func TestUploaderRedeliveryIsIdempotent(t *testing.T) {
	ctx := t.Context()
	srv, c := startLab(t)
	o := labOrder("WO-1", "zhang")
	srv.AddOrder(o)
	if _, err := c.Complete(ctx, "WO-1", "WO-1/completion/1", []byte(`{"order_id":"WO-1","result":"installed"}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.PostEvent(ctx, "WO-1", Event{Kind: EventCleanedUp, Detail: "site tidy", Key: "WO-1/event/cleaned_up"}); err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	enqueueCompletion(t, st, o, "WO-1/completion/1")
	ev, _ := json.Marshal(map[string]any{"kind": "cleaned_up", "at": time.Now(), "detail": "site tidy"})
	if err := st.Enqueue(ctx, store.OutboxItem{OrderID: "WO-1", Kind: KindEvent, IdempotencyKey: "WO-1/event/cleaned_up", Body: ev}); err != nil {
		t.Fatal(err)
	}
	n, err := (&Uploader{Store: st, Client: c}).Flush(ctx)
	if n != 2 || err != nil {
		t.Fatalf("Flush = %d, %v", n, err)
	}
	if evs := srv.Events("WO-1"); len(evs) != 1 || evs[0].Kind != "cleaned_up" {
		t.Errorf("server events %+v; want the keyed event once", evs)
	}
	if created, replayed := srv.CompletionCounts("WO-1"); created != 1 || replayed != 1 {
		t.Errorf("server completions: %d created, %d replayed; want 1, 1", created, replayed)
	}
}

func TestUploaderPermanentFailure(t *testing.T) {
	ctx := t.Context()
	srv, c := startLab(t)
	o := labOrder("WO-1", "zhang")
	srv.AddOrder(o)
	st := openStore(t)
	if err := st.PutOrder(ctx, o, "done"); err != nil {
		t.Fatal(err)
	}
	bad := []store.OutboxItem{
		{OrderID: "WO-1", Kind: KindCompletion, IdempotencyKey: "k-no-result", Body: []byte(`{"order_id":"WO-1"}`)},
		{OrderID: "WO-1", Kind: "fax", IdempotencyKey: "k-fax", Body: []byte(`{}`)},
	}
	for _, it := range bad {
		if err := st.Enqueue(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	u := &Uploader{Store: st, Client: c}
	n, err := u.Flush(ctx)
	if n != 0 || !errors.Is(err, ErrRejected) || !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Flush = %d, %v", n, err)
	}
	items, _ := st.Outbox(ctx, "WO-1")
	for _, it := range items {
		if !it.Failed() || it.Attempts != 1 || it.LastError == "" {
			t.Errorf("item %s not recorded as failed: %+v", it.IdempotencyKey, it)
		}
	}
	if due, _ := st.Due(ctx, time.Now().Add(24*time.Hour)); len(due) != 0 {
		t.Errorf("permanently failed items are still due: %+v", due)
	}
}

func TestUploaderUnreachableKeepsItemDue(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	st.Now = clk.now
	o := labOrder("WO-1", "zhang")
	enqueueCompletion(t, st, o, "WO-1/completion/1")
	enqueueCompletion(t, st, labOrder("WO-2", "zhang"), "WO-2/completion/1")
	c := &Client{BaseURL: unreachableURL(t), Token: secret.New(labToken), RetryBackoff: time.Millisecond}
	u := &Uploader{Store: st, Client: c, Now: clk.now, Backoff: time.Minute}

	n, err := u.Flush(ctx)
	if n != 0 || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Flush = %d, %v; want 0, ErrUnreachable", n, err)
	}
	items, _ := st.Outbox(ctx, "WO-1")
	if len(items) != 1 || items[0].Delivered() || items[0].Failed() || items[0].Attempts != 1 || !strings.Contains(items[0].LastError, "unreachable") {
		t.Fatalf("item after unreachable = %+v", items)
	}
	other, _ := st.Outbox(ctx, "WO-2")
	if other[0].Attempts != 0 {
		t.Errorf("Flush kept trying other items after the server was unreachable: %+v", other[0])
	}
	due, err := st.Due(ctx, clk.t.Add(2*time.Minute))
	if err != nil || len(due) != 2 {
		t.Errorf("items not due again after the backoff: %+v, %v", due, err)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{10, 5 * time.Second, 10 * time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			if d := backoff(time.Second, 10*time.Second, tc.n); d < tc.min || d > tc.max {
				t.Errorf("backoff(1s, 10s, %d) = %v, want in [%v, %v]", tc.n, d, tc.min, tc.max)
			}
		}
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&HTTPError{StatusCode: 400}, true},
		{&HTTPError{StatusCode: 409}, true},
		{&HTTPError{StatusCode: 401}, false},
		{&HTTPError{StatusCode: 408}, false},
		{&HTTPError{StatusCode: 429}, false},
		{&HTTPError{StatusCode: 503}, false},
		{ErrUnreachable, false},
		{ErrInvalidRequest, true},
	}
	for _, tc := range tests {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func mustWire(t *testing.T, o *order.Order) []byte {
	t.Helper()
	b, err := o.WireJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNoCredentialAtRest fetches an order with credentials, stores it, posts
// through the uploader with a debug logger, and checks that neither the store
// nor the log holds a credential or the token.
func TestNoCredentialAtRest(t *testing.T) {
	ctx := t.Context()
	srv, c := startLab(t)
	var logBuf bytes.Buffer
	c.Logger = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv.AddOrder(labOrder("WO-1", "zhang"))
	o, err := c.GetOrder(ctx, "WO-1")
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	enqueueCompletion(t, st, o, "WO-1/completion/1")
	u := &Uploader{Store: st, Client: c, Logger: c.Logger}
	if n, err := u.Flush(ctx); n != 1 || err != nil {
		t.Fatalf("Flush = %d, %v", n, err)
	}
	var dump bytes.Buffer
	if err := st.Dump(ctx, &dump); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump.String(), "ln@isp") {
		t.Fatalf("dump lacks the order:\n%s", dump.String())
	}
	for _, leak := range []string{"pppoe-TOPSECRET", "LOID-TOPSECRET", labToken} {
		if strings.Contains(dump.String(), leak) {
			t.Errorf("the store holds %q", leak)
		}
		if strings.Contains(logBuf.String(), leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
}
