package httpauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"fieldagent/agent/secret"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		in   string
		want []Challenge
	}{
		{`Digest realm="cwmp", qop="auth,auth-int", nonce="abc", opaque="x\"y"`,
			[]Challenge{{"Digest", map[string]string{"realm": "cwmp", "qop": "auth,auth-int", "nonce": "abc", "opaque": `x"y`}}}},
		{`Basic realm="a", Digest realm="b", nonce=n1, algorithm=SHA-256`,
			[]Challenge{{"Basic", map[string]string{"realm": "a"}}, {"Digest", map[string]string{"realm": "b", "nonce": "n1", "algorithm": "SHA-256"}}}},
		{`Basic`, []Challenge{{"Basic", map[string]string{}}}},
		{`=,,  =x,`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := ParseChallenges(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v", got)
			}
		})
	}
}

func TestRFC2617Example(t *testing.T) {
	// RFC 2617 section 3.5 example.
	ch := Challenge{Scheme: "Digest", Params: map[string]string{"realm": "testrealm@host.com", "qop": "auth,auth-int",
		"nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "opaque": "5ccc069c403ebaf9f0171e9517f40e41"}}
	got, err := DigestAuthorization(ch, "GET", "/dir/index.html", "Mufasa", secret.New("Circle Of Life"), "0a4f113b", 1)
	if err != nil {
		t.Fatal(err)
	}
	p := ParseChallenges(got)[0].Params
	if p["response"] != "6629fae49393a05397450978507c4ef1" {
		t.Fatalf("response = %s", p["response"])
	}
}

func TestClientServer(t *testing.T) {
	ds := NewDigestServer("cr")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, stale := ds.Check(r, "user", secret.New("pw")); !ok {
			w.Header().Set("WWW-Authenticate", ds.Challenge(stale))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	tests := []struct {
		name string
		user string
		pass string
		want int
	}{
		{"right", "user", "pw", 200},
		{"wrong password", "user", "nope", 401},
		{"wrong user", "other", "pw", 401},
		{"none", "", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c := &Client{HTTP: srv.Client(), Username: tc.user, Password: secret.New(tc.pass)}
			for i := 0; i < 2; i++ { // second request reuses the challenge
				resp, err := c.Do(ctx, "GET", srv.URL+"/x?y=1", nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
				}
			}
		})
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{`Digest realm="cwmp", qop="auth", nonce="abc"`, `Basic realm="a", Digest realm="b", nonce=n1`, `Digest a="\"`, `x=`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, ch := range ParseChallenges(s) {
			if ch.Scheme == "" || ch.Params == nil {
				t.Fatalf("bad challenge %#v", ch)
			}
			_, _ = DigestAuthorization(ch, "GET", "/", "u", secret.New("p"), "c", 1)
		}
	})
}

func TestDigestReplayAndOrder(t *testing.T) {
	ds := NewDigestServer("acs")
	ch := ParseChallenges(ds.Challenge(false))[0]
	pass := secret.New("pw")
	req := func(nc uint32, cnonce string) *http.Request {
		a, err := DigestAuthorization(ch, "POST", "/cwmp", "u", pass, cnonce, nc)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", "/cwmp", nil)
		r.Header.Set("Authorization", a)
		return r
	}
	steps := []struct {
		name string
		nc   uint32
		want bool
	}{
		{"first", 1, true},
		{"replay", 1, false},
		{"jump ahead", 5, true},
		{"late but unseen", 3, true},
		{"late and seen", 3, false},
		{"zero", 0, false},
		{"far ahead", 200, true},
		{"outside the window", 100, false},
	}
	for _, st := range steps {
		if ok, _ := ds.Check(req(st.nc, "c"+st.name), "u", pass); ok != st.want {
			t.Fatalf("%s (nc %d): ok = %v, want %v", st.name, st.nc, ok, st.want)
		}
	}
}

func TestDigestExpiryAndQOP(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ds := NewDigestServer("acs")
	ds.Now = func() time.Time { return now }
	ds.RequireQOP = true
	ch := ParseChallenges(ds.Challenge(false))[0]
	a, _ := DigestAuthorization(ch, "GET", "/", "u", secret.New("pw"), "c", 1)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", a)
	now = now.Add(10 * time.Minute)
	if ok, stale := ds.Check(r, "u", secret.New("pw")); ok || !stale {
		t.Fatalf("expired nonce: ok %v stale %v", ok, stale)
	}
	// RFC 2069 form (no qop) refused when RequireQOP is set.
	ch = ParseChallenges(ds.Challenge(false))[0]
	delete(ch.Params, "qop")
	a, _ = DigestAuthorization(ch, "GET", "/", "u", secret.New("pw"), "c", 1)
	r.Header.Set("Authorization", a)
	if ok, _ := ds.Check(r, "u", secret.New("pw")); ok {
		t.Fatal("no-qop digest accepted with RequireQOP")
	}
	ds.RequireQOP = false
	if ok, _ := ds.Check(r, "u", secret.New("pw")); !ok {
		t.Fatal("no-qop digest refused without RequireQOP")
	}
}

func TestDigestTrackingLimit(t *testing.T) {
	ds := NewDigestServer("acs")
	ds.MaxTrackedNonces = 2
	for i, want := range []bool{true, true, false} {
		ch := ParseChallenges(ds.Challenge(false))[0]
		a, _ := DigestAuthorization(ch, "GET", "/", "u", secret.New("pw"), "c", 1)
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", a)
		ok, stale := ds.Check(r, "u", secret.New("pw"))
		if ok != want || (!want && !stale) {
			t.Fatalf("nonce %d: ok %v stale %v", i, ok, stale)
		}
	}
}

func TestBasicAndUsername(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if u, s := Username(r); u != "" || s != "" {
		t.Fatalf("no header: %q %q", u, s)
	}
	r.Header.Set("Authorization", BasicAuthorization("u", secret.New("pw")))
	if u, s := Username(r); u != "u" || s != "Basic" {
		t.Fatalf("basic: %q %q", u, s)
	}
	if !CheckBasic(r, "u", secret.New("pw")) || CheckBasic(r, "u", secret.New("px")) || CheckBasic(r, "v", secret.New("pw")) {
		t.Fatal("CheckBasic")
	}
	r.Header.Set("Authorization", `Digest username="dev1", realm="x"`)
	if u, s := Username(r); u != "dev1" || s != "Digest" {
		t.Fatalf("digest: %q %q", u, s)
	}
}
