package snmp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers/snmp/snmptest"
)

// Values configured in the test agent and asserted by the tests.
const (
	testCommunity = "fa-public"
	testLocation  = "Lab rack 7"
	testContact   = "noc@example.test"
	testSysName   = "fa-test-agent"
	testUser      = "fa-user"
	testAuthKey   = "authpass123"
	testPrivKey   = "privpass123"

	oidSysDescr    = ".1.3.6.1.2.1.1.1.0"
	oidSysContact  = ".1.3.6.1.2.1.1.4.0"
	oidSysName     = ".1.3.6.1.2.1.1.5.0"
	oidSysLocation = ".1.3.6.1.2.1.1.6.0"
	oidSystem      = ".1.3.6.1.2.1.1"
	oidSysUpTime   = ".1.3.6.1.2.1.1.3.0"
)

// startSNMPD runs a private net-snmp agent with the values above (see
// drivers/snmp/snmptest) and returns its "127.0.0.1:port".
func startSNMPD(t testing.TB) string {
	t.Helper()
	return snmptest.Start(t, snmptest.Options{
		Community: testCommunity, Location: testLocation, Contact: testContact, SysName: testSysName,
		User: testUser, AuthKey: testAuthKey, PrivKey: testPrivKey,
	})
}

func v2cTarget(addr string) Target {
	return Target{Addr: addr, Version: V2c, Community: secret.New(testCommunity), Timeout: time.Second, Retries: 1}
}

func v3Target(addr string) Target {
	return Target{
		Addr: addr, Version: V3, User: testUser,
		AuthProtocol: SHA256, AuthKey: secret.New(testAuthKey),
		PrivProtocol: AES, PrivKey: secret.New(testPrivKey),
		Timeout: time.Second, Retries: 1,
	}
}

func dial(t *testing.T, tg Target) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, tg, nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSNMPDGet(t *testing.T) {
	addr := startSNMPD(t)
	tests := []struct {
		name   string
		target Target
		oid    string
		want   string // "" means any non-empty value
	}{
		{"v2c sysDescr", v2cTarget(addr), oidSysDescr, ""},
		{"v2c sysLocation", v2cTarget(addr), oidSysLocation, testLocation},
		{"v2c sysContact without leading dot", v2cTarget(addr), strings.TrimPrefix(oidSysContact, "."), testContact},
		{"v3 authPriv sysName", v3Target(addr), oidSysName, testSysName},
		{"v3 authPriv sysLocation", v3Target(addr), oidSysLocation, testLocation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.target)
			got, err := c.Get(testCtx(t), tc.oid)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if len(got) != 1 {
				t.Fatalf("Get returned %d values, want 1", len(got))
			}
			v := got[0]
			if v.Type != "OctetString" || v.OID != "."+strings.TrimPrefix(tc.oid, ".") {
				t.Errorf("Get = %+v, want an OctetString at %s", v, tc.oid)
			}
			if tc.want != "" && v.String() != tc.want {
				t.Errorf("value = %q, want %q", v.String(), tc.want)
			}
			if tc.want == "" && v.String() == "" {
				t.Errorf("value is empty")
			}
		})
	}
}

func TestSNMPDGetSeveral(t *testing.T) {
	addr := startSNMPD(t)
	c := dial(t, v2cTarget(addr))
	got, err := c.Get(testCtx(t), oidSysName, oidSysUpTime, oidSysLocation)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d values, want 3", len(got))
	}
	if got[0].String() != testSysName || got[2].String() != testLocation {
		t.Errorf("values = %v, %v", got[0], got[2])
	}
	if got[1].Type != "TimeTicks" {
		t.Errorf("sysUpTime type = %q, want TimeTicks", got[1].Type)
	}
	if _, ok := got[1].Uint64(); !ok {
		t.Errorf("sysUpTime Uint64 not ok: %+v", got[1])
	}
}

func TestSNMPDWalk(t *testing.T) {
	addr := startSNMPD(t)
	tests := []struct {
		name      string
		target    Target
		root      string
		wantOID   string // must be present, with wantValue
		wantValue string
		wantNone  bool
	}{
		{"v2c system subtree", v2cTarget(addr), oidSystem, oidSysName, testSysName, false},
		{"v3 system subtree", v3Target(addr), oidSystem, oidSysLocation, testLocation, false},
		{"scalar root", v2cTarget(addr), oidSysName, oidSysName, testSysName, false},
		{"empty subtree", v2cTarget(addr), ".1.3.6.1.2.1.1.99", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.target)
			got, err := c.Walk(testCtx(t), tc.root)
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
			if tc.wantNone {
				if len(got) != 0 {
					t.Fatalf("Walk = %v, want nothing", got)
				}
				return
			}
			found := false
			rootArcs, _ := parseOID(tc.root)
			var prev []uint32
			for _, v := range got {
				arcs, err := parseOID(v.OID)
				if err != nil {
					t.Fatalf("bad OID %q: %v", v.OID, err)
				}
				if !hasPrefix(arcs, rootArcs) {
					t.Errorf("%s is outside %s", v.OID, tc.root)
				}
				if prev != nil && compareOID(arcs, prev) <= 0 {
					t.Errorf("%s is out of order", v.OID)
				}
				prev = arcs
				if v.OID == tc.wantOID {
					found = true
					if v.String() != tc.wantValue {
						t.Errorf("%s = %q, want %q", v.OID, v.String(), tc.wantValue)
					}
				}
			}
			if !found {
				t.Errorf("Walk(%s) has no %s: %v", tc.root, tc.wantOID, got)
			}
		})
	}
}

func TestSNMPDErrors(t *testing.T) {
	addr := startSNMPD(t)
	withAuthKey := func(k string) Target { tg := v3Target(addr); tg.AuthKey = secret.New(k); return tg }
	withPrivKey := func(k string) Target { tg := v3Target(addr); tg.PrivKey = secret.New(k); return tg }
	withUser := func(u string) Target { tg := v3Target(addr); tg.User = u; return tg }
	withAuthProto := func(p AuthProtocol) Target { tg := v3Target(addr); tg.AuthProtocol = p; return tg }
	wrongCommunity := v2cTarget(addr)
	wrongCommunity.Community = secret.New("not-the-community")
	wrongCommunity.Timeout, wrongCommunity.Retries = 300*time.Millisecond, 0

	tests := []struct {
		name      string
		target    Target
		oid       string
		wantErr   error
		notInErr  []string // credentials that must never appear
		wantValue string   // Type of the returned value, for missing objects
	}{
		{"v3 wrong auth key", withAuthKey("wrong-auth-key"), oidSysName, ErrAuth, []string{"wrong-auth-key", testPrivKey}, ""},
		{"v3 wrong priv key", withPrivKey("wrong-priv-key"), oidSysName, ErrAuth, []string{"wrong-priv-key", testAuthKey}, ""},
		{"v3 unknown user", withUser("nobody"), oidSysName, ErrAuth, []string{testAuthKey, testPrivKey}, ""},
		{"v3 wrong auth protocol", withAuthProto(SHA512), oidSysName, ErrAuth, []string{testAuthKey, testPrivKey}, ""},
		{"v2c wrong community", wrongCommunity, oidSysName, ErrTimeout, []string{"not-the-community"}, ""},
		{"no such object", v2cTarget(addr), ".1.3.6.1.2.1.1.99.0", ErrNoSuchObject, nil, "NoSuchObject"},
		{"no such instance", v2cTarget(addr), ".1.3.6.1.2.1.1.5.1", ErrNoSuchInstance, nil, "NoSuchInstance"},
		{"v3 no such object", v3Target(addr), ".1.3.6.1.2.1.1.99.0", ErrNoSuchObject, nil, "NoSuchObject"},
		{"invalid OID", v2cTarget(addr), "sysName.0", ErrInvalidOID, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.target)
			got, err := c.Get(testCtx(t), tc.oid)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Get error = %v, want %v", err, tc.wantErr)
			}
			for _, s := range tc.notInErr {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q reveals a credential", err)
				}
			}
			if tc.wantValue != "" {
				if len(got) != 1 || got[0].Type != tc.wantValue {
					t.Errorf("values = %+v, want one %s", got, tc.wantValue)
				}
			} else if got != nil {
				t.Errorf("values = %+v, want none", got)
			}
		})
	}
}

func TestSNMPDAuthErrorExplains(t *testing.T) {
	addr := startSNMPD(t)
	tg := v3Target(addr)
	tg.AuthKey = secret.New("wrong-auth-key")
	c := dial(t, tg)
	_, err := c.Get(testCtx(t), oidSysName)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("error = %v, want ErrAuth", err)
	}
	for _, s := range []string{"look alike", "user name", "auth protocol", "priv key", testUser} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestSNMPDContext(t *testing.T) {
	addr := startSNMPD(t)
	// A wrong community gets no answer at all: only the context can end
	// these requests early (Timeout*Retries is far longer than any test).
	silent := v2cTarget(addr)
	silent.Community = secret.New("silent")
	silent.Timeout, silent.Retries = 30*time.Second, 5

	tests := []struct {
		name    string
		ctx     func(t *testing.T) context.Context
		op      func(ctx context.Context, c *Client) error
		wantErr []error
	}{
		{
			name: "get deadline",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			op:      func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, oidSysName); return err },
			wantErr: []error{ErrTimeout, context.DeadlineExceeded},
		},
		{
			name: "walk deadline",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			op:      func(ctx context.Context, c *Client) error { _, err := c.Walk(ctx, oidSystem); return err },
			wantErr: []error{ErrTimeout, context.DeadlineExceeded},
		},
		{
			name: "get cancelled",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(100*time.Millisecond, cancel)
				t.Cleanup(cancel)
				return ctx
			},
			op:      func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, oidSysName); return err },
			wantErr: []error{context.Canceled},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, silent)
			err := tc.op(tc.ctx(t), c)
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("error = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestSNMPDCloseAbortsRequest(t *testing.T) {
	addr := startSNMPD(t)
	silent := v2cTarget(addr)
	silent.Community = secret.New("silent")
	silent.Timeout, silent.Retries = 30*time.Second, 5
	c := dial(t, silent)

	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, err := c.Get(testCtx(t), oidSysName)
		errc <- err
	}()
	<-started
	time.Sleep(50 * time.Millisecond) // let Get reach the socket; correctness does not depend on it
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := c.Get(testCtx(t), oidSysName); !errors.Is(err, ErrClosed) {
		t.Errorf("second Get = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSNMPDConcurrentGets(t *testing.T) {
	addr := startSNMPD(t)
	c := dial(t, v3Target(addr))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			v, err := c.Get(ctx, oidSysName)
			if err == nil && v[0].String() != testSysName {
				err = fmt.Errorf("got %q", v[0].String())
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
