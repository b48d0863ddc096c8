package testlab_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/ordersys"
	"fieldagent/agent/secret"
	"fieldagent/testlab"
	"fieldagent/tr069/acs"
)

// Credentials of the test ACS.
const (
	crUser  = "lab"
	cpeUser = "cpe-lab"
)

// startSite starts an ACS on loopback and a site informing it; the ACS
// requires cfg.ACSUsername/ACSPassword when they are set.
func startSite(t *testing.T, cfg testlab.Config) (*acs.Server, *testlab.Site) {
	t.Helper()
	cr := secret.New("cr-pass-for-test")
	acsCfg := acs.Config{ConnLostGrace: 50 * time.Millisecond, ConnectionRequestAuth: func(string) (string, secret.Secret) { return crUser, cr }}
	if cfg.ACSUsername != "" {
		u, p := cfg.ACSUsername, cfg.ACSPassword
		acsCfg.CPEAuth = func(string) (string, secret.Secret, bool) { return u, p, true }
	}
	a := acs.New(acsCfg)
	as := httptest.NewUnstartedServer(a)
	as.Config.ConnState = a.ConnState
	as.Start()
	t.Cleanup(as.Close)
	cfg.ACSURL, cfg.ConnReqUsername, cfg.ConnReqPassword = as.URL+"/", crUser, cr
	site, err := testlab.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		site.Close()
		if err := site.Err(); err != nil {
			t.Errorf("site failed: %v", err)
		}
	})
	return a, site
}

// waitDevice waits for the device with serial to inform the ACS.
func waitDevice(t *testing.T, a *acs.Server, serial string) acs.Device {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := a.WaitDevice(ctx, func(d acs.Device) bool { return d.DeviceId.SerialNumber == serial })
	if err != nil {
		t.Fatalf("device %s did not inform: %v", serial, err)
	}
	return d
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func client(site *testlab.Site) *ordersys.Client {
	return &ordersys.Client{BaseURL: site.OrderSystemURL, Token: site.Token, HTTPClient: &http.Client{Timeout: 10 * time.Second}}
}

// TestSampleOrders checks that the order system holds every sample order,
// each valid (GetOrder parses and validates the wire form), with the
// credentials the operator network knows and the shape its ID promises.
func TestSampleOrders(t *testing.T) {
	iptvPW := secret.New("iptv-pass-1")
	_, site := startSite(t, testlab.Config{IPTVPassword: iptvPW})
	ctx := ctxT(t)
	c := client(site)

	ids := testlab.SampleOrderIDs()
	if len(ids) != 6 || ids[0] != testlab.SampleOrderID || len(site.SampleOrders) != len(ids) {
		t.Fatalf("SampleOrderIDs = %v, site holds %d orders", ids, len(site.SampleOrders))
	}
	if site.Order != site.SampleOrders[testlab.SampleOrderID] {
		t.Error("Site.Order is not SampleOrders[SampleOrderID]")
	}
	sums, err := c.ListOrders(ctx, testlab.SampleTechnician)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, s := range sums {
		listed = append(listed, s.ID)
	}
	if len(listed) != len(ids) || listed[0] != testlab.SampleOrderID {
		t.Errorf("order list = %v, want the %d sample orders, %s first", listed, len(ids), testlab.SampleOrderID)
	}

	cr := site.Credentials
	if !cr.IPTVPassword.Equal(iptvPW) {
		t.Error("Config.IPTVPassword was not used")
	}
	sampleAccounts := func(t *testing.T, o *order.Order) {
		t.Helper()
		if o.PPPoE.Username != testlab.SamplePPPoEUser || !o.PPPoE.Password.Equal(cr.PPPoEPassword) ||
			!o.LOID.LOID.Equal(cr.LOID) || !o.LOID.Password.Equal(cr.LOIDPassword) {
			t.Error("the order does not carry the sample PPPoE account and LOID")
		}
	}
	e8 := order.Service{Device: order.DeviceE8, Access: order.AccessGPON, BandwidthMbps: 300}
	for _, tc := range []struct {
		id       string
		typ      order.Type
		services []order.Service
		check    func(*testing.T, *order.Order)
	}{
		{testlab.SampleOrderID, order.TypeNewInstall, []order.Service{e8}, sampleAccounts},
		{testlab.SampleITVOrderID, order.TypeNewInstall, []order.Service{e8, {Device: order.DeviceITV, Access: order.AccessGPON}}, func(t *testing.T, o *order.Order) {
			sampleAccounts(t, o)
			if o.IPTV.Account != testlab.SampleIPTVAccount || !o.IPTV.Password.Equal(iptvPW) {
				t.Errorf("IPTV account %q, or not the site's password", o.IPTV.Account)
			}
		}},
		{testlab.SampleXT2OrderID, order.TypeNewInstall, []order.Service{{Device: order.DeviceXT2, Access: order.AccessLAN, BandwidthMbps: 100}}, func(t *testing.T, o *order.Order) {
			if o.PPPoE.Username != testlab.SampleXT2PPPoEUser || !o.PPPoE.Password.Equal(cr.XT2PPPoEPassword) || o.PPPoE.Password.Equal(cr.PPPoEPassword) {
				t.Errorf("PPPoE user %q, or not its own password", o.PPPoE.Username)
			}
			if o.BBMSCustomerID != testlab.SampleBBMSCustomer || !o.LOID.LOID.IsZero() {
				t.Errorf("BBMS customer %q, LOID set %v", o.BBMSCustomerID, !o.LOID.LOID.IsZero())
			}
			if o.Customer.Address == site.Order.Customer.Address || o.Customer.Name == site.Order.Customer.Name {
				t.Error("the business customer is the home customer")
			}
		}},
		{testlab.SampleMoveOrderID, order.TypeMove, []order.Service{e8}, func(t *testing.T, o *order.Order) {
			sampleAccounts(t, o)
			if o.Customer.Address == site.Order.Customer.Address || o.Customer.Name != site.Order.Customer.Name {
				t.Errorf("move: customer %+v, want the sample customer at another address", o.Customer)
			}
		}},
		{testlab.SampleRepairOrderID, order.TypeRepair, []order.Service{e8}, func(t *testing.T, o *order.Order) {
			sampleAccounts(t, o)
			if !strings.Contains(strings.ToLower(o.Notes), "no internet") {
				t.Errorf("repair notes %q do not report the fault", o.Notes)
			}
		}},
		{testlab.SampleRemovalOrderID, order.TypeRemoval, []order.Service{e8}, sampleAccounts},
	} {
		t.Run(tc.id, func(t *testing.T) {
			held := site.SampleOrders[tc.id]
			if held == nil || held.ID != tc.id {
				t.Fatalf("SampleOrders[%s] = %v", tc.id, held)
			}
			o, err := c.GetOrder(ctx, tc.id) // parses and validates
			if err != nil {
				t.Fatal(err)
			}
			if o.Type != tc.typ || o.Technician != testlab.SampleTechnician || !slices.Equal(o.Services, tc.services) {
				t.Errorf("type %s technician %s services %+v, want %s %s %+v", o.Type, o.Technician, o.Services, tc.typ, testlab.SampleTechnician, tc.services)
			}
			if !o.PPPoE.Password.Equal(held.PPPoE.Password) || !o.IPTV.Password.Equal(held.IPTV.Password) {
				t.Error("the order system's order differs from Site.SampleOrders")
			}
			tc.check(t, o)
		})
	}
}

// The constructors give valid orders on their own, without a site.
func TestSampleOrderConstructorsValidate(t *testing.T) {
	c := testlab.SampleCredentials{
		PPPoEPassword: secret.New("p"), LOID: secret.New("LOID0123456789abcdef"), LOIDPassword: secret.New("12345678"),
		IPTVPassword: secret.New("i"), XT2PPPoEPassword: secret.New("x"),
	}
	orders := testlab.AllSampleOrders(time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC), c)
	var ids []string
	for _, o := range orders {
		ids = append(ids, o.ID)
		if err := o.Validate(); err != nil {
			t.Errorf("%s: %v", o.ID, err)
		}
	}
	if !slices.Equal(ids, testlab.SampleOrderIDs()) {
		t.Errorf("AllSampleOrders IDs %v, want %v", ids, testlab.SampleOrderIDs())
	}
}

// EditOrder reaches every order, and the operator keeps the true accounts.
func TestEditOrderEditsEveryOrder(t *testing.T) {
	_, site := startSite(t, testlab.Config{NoGateway: true, EditOrder: func(o *order.Order) {
		o.Notes = "edited " + o.ID
		if o.ID == testlab.SampleRepairOrderID {
			o.PPPoE.Password = secret.New("typo")
		}
	}})
	ctx := ctxT(t)
	for _, id := range testlab.SampleOrderIDs() {
		o, err := client(site).GetOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if o.Notes != "edited "+id {
			t.Errorf("%s: notes %q, want the edit", id, o.Notes)
		}
	}
	if got := site.SampleOrders[testlab.SampleRepairOrderID].PPPoE.Password; !got.Equal(secret.New("typo")) {
		t.Error("the repair order lost its edit")
	}
	if site.Order.PPPoE.Password.Equal(secret.New("typo")) || site.Credentials.PPPoEPassword.Equal(secret.New("typo")) {
		t.Error("an edit of one order reached another order or the true credentials")
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  testlab.Config
	}{
		{"no ACS for the gateway", testlab.Config{}},
		{"no ACS for the set-top box", testlab.Config{NoGateway: true, STB: true}},
		{"unknown gateway state", testlab.Config{ACSURL: "http://127.0.0.1:1/", Gateway: "broken"}},
		{"gateway state without a gateway", testlab.Config{ACSURL: "http://127.0.0.1:1/", NoGateway: true, Gateway: testlab.GatewayInstalled}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site, err := testlab.Start(t.Context(), tc.cfg)
			if err == nil {
				site.Close()
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, testlab.ErrConfig) {
				t.Errorf("err = %v, want ErrConfig", err)
			}
		})
	}
}
