package operator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"fieldagent/agent/secret"
)

func post(t *testing.T, url, token string, body any, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func TestBRASAndITMS(t *testing.T) {
	op := New(secret.New("tok"), nil)
	op.AddPPPoEAccount("ad001", secret.New("pw1"))
	op.AddLOID(secret.New("LOID1"), secret.New("lp"))
	srv := httptest.NewServer(op)
	defer srv.Close()

	if code := post(t, srv.URL+"/bras/pppoe/auth", "wrong", PPPoEAuthRequest{Username: "ad001", Password: "pw1"}, nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	var ar PPPoEAuthResponse
	if code := post(t, srv.URL+"/bras/pppoe/auth", "tok", PPPoEAuthRequest{Username: "ad001", Password: "bad"}, &ar); code != http.StatusForbidden || ar.Code != 691 {
		t.Errorf("wrong password: %d %+v, want 403 code 691", code, ar)
	}
	if code := post(t, srv.URL+"/bras/pppoe/auth", "tok", PPPoEAuthRequest{Username: "nobody", Password: "pw1"}, &ar); code != http.StatusForbidden || ar.Code != 691 {
		t.Errorf("unknown user: %d %+v, want 403 code 691", code, ar)
	}
	if len(op.Sessions()) != 0 {
		t.Errorf("sessions after rejections: %v", op.Sessions())
	}
	ar = PPPoEAuthResponse{}
	if code := post(t, srv.URL+"/bras/pppoe/auth", "tok", PPPoEAuthRequest{Username: "ad001", Password: "pw1"}, &ar); code != http.StatusOK || ar.IP == "" {
		t.Errorf("good account: %d %+v", code, ar)
	}
	if op.Sessions()["ad001"] != ar.IP {
		t.Errorf("session table %v does not hold %s", op.Sessions(), ar.IP)
	}

	cases := []struct {
		req            RegisterRequest
		status, result string
	}{
		{RegisterRequest{LOID: "NOPE", Password: "lp", Serial: "SN1"}, "1", "2"},
		{RegisterRequest{LOID: "LOID1", Password: "xx", Serial: "SN1"}, "2", "2"},
		{RegisterRequest{LOID: "LOID1", Password: "lp", Serial: "SN1"}, "0", "1"},
		{RegisterRequest{LOID: "LOID1", Password: "lp", Serial: "SN1"}, "0", "1"}, // same gateway again
		{RegisterRequest{LOID: "LOID1", Password: "lp", Serial: "SN2"}, "4", "2"}, // another gateway
	}
	for _, tc := range cases {
		var rr RegisterResponse
		if code := post(t, srv.URL+"/itms/register", "tok", tc.req, &rr); code != http.StatusOK || rr.Status != tc.status || rr.Result != tc.result {
			t.Errorf("register %+v: %d %+v, want status %s result %s", tc.req, code, rr, tc.status, tc.result)
		}
	}
	if sn, ok := op.BoundSerial("LOID1"); !ok || sn != "SN1" {
		t.Errorf("LOID1 bound to %q", sn)
	}
}
