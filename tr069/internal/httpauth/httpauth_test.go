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
