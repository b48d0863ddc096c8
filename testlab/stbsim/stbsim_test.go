package stbsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"fieldagent/agent/secret"
	"fieldagent/testlab/stbsim"
)

func TestEPG(t *testing.T) {
	epg := stbsim.NewEPG()
	epg.AddAccount("u1", secret.New("pw"))
	srv := httptest.NewServer(epg)
	defer srv.Close()
	for _, tc := range []struct {
		name, user, pw string
		code           int
		result         string
	}{
		{"ok", "u1", "pw", http.StatusOK, "ok"},
		{"wrong password", "u1", "x", http.StatusUnauthorized, "fail"},
		{"unknown user", "u2", "pw", http.StatusUnauthorized, "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(stbsim.AuthRequest{UserID: tc.user, Password: tc.pw, STBID: "S"})
			resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var ar stbsim.AuthResponse
			if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code || ar.Result != tc.result {
				t.Errorf("HTTP %d %+v, want %d %s", resp.StatusCode, ar, tc.code, tc.result)
			}
		})
	}
}

func TestNewNeedsSerial(t *testing.T) {
	if _, err := stbsim.New(stbsim.Config{ACSURL: "http://127.0.0.1:1/"}); err == nil {
		t.Error("New without Serial succeeded")
	}
	b, err := stbsim.New(stbsim.Config{ACSURL: "http://127.0.0.1:1/", Serial: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := b.Tree().Value("Device.X_CTC_IPTV.STBID"); v == "" {
		t.Error("no STBID")
	}
}
