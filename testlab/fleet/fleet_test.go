package fleet_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/fleet"
)

const serialParam = "InternetGatewayDevice.DeviceInfo.SerialNumber"

func TestFleetInformsAndAnswers(t *testing.T) {
	const n = 50
	a, acsURL := startACS(t, n)
	base := runtime.NumGoroutine()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := fleet.Start(ctx, fleet.Options{
		N: n, ACSURL: acsURL,
		ConnReqUsername: crUser, ConnReqPassword: secret.New(crPass),
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = f.Close()
		}
	}()
	if f.Len() != n {
		t.Fatalf("Len = %d, want %d", f.Len(), n)
	}
	if err := waitAll(ctx, a, f); err != nil {
		t.Fatal(err)
	}

	// Each serial once, and no device the fleet does not own.
	want := map[string]bool{}
	for _, s := range f.Serials() {
		if want[s] {
			t.Fatalf("serial %s given twice", s)
		}
		want[s] = true
	}
	devs := a.Devices()
	if len(devs) != n {
		t.Errorf("the ACS knows %d devices, want %d", len(devs), n)
	}
	for _, d := range devs {
		if !want[d.DeviceId.SerialNumber] {
			t.Errorf("the ACS knows %s (serial %q), not one of the fleet", d.ID, d.DeviceId.SerialNumber)
		}
		delete(want, d.DeviceId.SerialNumber)
	}
	if len(want) != 0 {
		t.Errorf("%d serials never informed", len(want))
	}

	// Remote support: reach 10 of them by connection request.
	for i := 0; i < n; i += n / 10 {
		pv, err := a.GetParameterValues(ctx, f.DeviceID(i), serialParam)
		if err != nil {
			t.Fatalf("gateway %d (%s): %v", i, f.Serial(i), err)
		}
		if len(pv) != 1 || pv[0].Value != f.Serial(i) {
			t.Errorf("gateway %d answered %+v, want its serial %s", i, pv, f.Serial(i))
		}
	}

	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	closed = true
	// Every gateway's goroutines are gone (the ACS may still be dropping
	// its side of a few connections: allow a little).
	const tolerance = 10
	if got := settleGoroutines(base + tolerance); got > base+tolerance {
		t.Errorf("%d goroutines after Close, %d before Start (tolerance %d)", got, base, tolerance)
	}
}

func TestSerials(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		prefix string
		first  string
		last   string
	}{
		{name: "one", n: 1, first: "FLT0", last: "FLT0"},
		{name: "ten is one digit", n: 10, first: "FLT0", last: "FLT9"},
		{name: "padded", n: 11, prefix: "GW", first: "GW00", last: "GW10"},
		{name: "hundred", n: 100, prefix: "X", first: "X00", last: "X99"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A stagger of an hour: nothing runs, Close stops the launcher.
			f, err := fleet.Start(context.Background(), fleet.Options{N: tc.n, ACSURL: "http://127.0.0.1:9/", SerialPrefix: tc.prefix, Stagger: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = f.Close() })
			s := f.Serials()
			if s[0] != tc.first || s[len(s)-1] != tc.last {
				t.Errorf("serials %s … %s, want %s … %s", s[0], s[len(s)-1], tc.first, tc.last)
			}
			if got := f.Gateway(tc.n - 1).Tree().Value(serialParam); got != tc.last {
				t.Errorf("last gateway's SerialNumber = %q, want %q", got, tc.last)
			}
			if got, want := f.DeviceID(0), fleet.OUI+"-"+fleet.ProductClass+"-"+tc.first; got != want {
				t.Errorf("DeviceID(0) = %q, want %q", got, want)
			}
		})
	}
}

func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts fleet.Options
		want string
	}{
		{name: "no gateways", opts: fleet.Options{ACSURL: "http://acs/"}, want: "fleet: invalid options: N is 0, want at least 1"},
		{name: "no ACS", opts: fleet.Options{N: 1}, want: "fleet: invalid options: ACSURL is required"},
		{name: "unknown access", opts: fleet.Options{N: 1, ACSURL: "http://acs/", Access: "cable"}, want: `fleet: invalid options: Access "cable" is not lan, adsl, epon or gpon`},
		{name: "negative periodic", opts: fleet.Options{N: 1, ACSURL: "http://acs/", PeriodicInform: -time.Second}, want: "fleet: invalid options: PeriodicInform -1s is negative (0 means none)"},
		{name: "ACS URL not http", opts: fleet.Options{N: 1, ACSURL: "acs:7547"}, want: `fleet: gateway FLT0: e8sim: cpe: invalid config: ACSURL "acs:7547" must be an http(s) URL`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fleet.Start(context.Background(), tc.opts)
			if err == nil {
				_ = f.Close()
				t.Fatal("Start accepted the options")
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			if tc.name != "ACS URL not http" && !errors.Is(err, fleet.ErrConfig) {
				t.Errorf("%v does not wrap ErrConfig", err)
			}
		})
	}
}
