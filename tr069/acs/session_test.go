package acs_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/internal/httpauth"
)

// rawCPE speaks CWMP by hand, for what a cpe.Engine will not do.
type rawCPE struct {
	t      *testing.T
	url    string
	client *http.Client
}

func newRawCPE(t *testing.T, url string) *rawCPE {
	jar, _ := cookiejar.New(nil)
	return &rawCPE{t: t, url: url, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func informBody(t *testing.T, serial, crURL string, extra ...cwmp.ParameterValueStruct) []byte {
	t.Helper()
	params := append([]cwmp.ParameterValueStruct{{Name: "InternetGatewayDevice.ManagementServer.ConnectionRequestURL", Value: crURL}}, extra...)
	b, err := cwmp.Encode(&cwmp.Envelope{ID: "1", Body: &cwmp.Inform{
		DeviceId: cwmp.DeviceIdStruct{Manufacturer: "Raw", OUI: "00CAFE", ProductClass: "HG", SerialNumber: serial},
		Event:    []cwmp.EventStruct{{EventCode: acs.EventBoot}}, MaxEnvelopes: 1, CurrentTime: time.Now(),
		ParameterList: params,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body (nil: an empty POST) and returns the status and the decoded answer.
func (c *rawCPE) post(body []byte, header map[string]string) (int, *cwmp.Envelope) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(bytes.TrimSpace(data)) == 0 {
		return resp.StatusCode, nil
	}
	env, err := cwmp.Decode(data)
	if err != nil {
		c.t.Fatalf("decoding ACS answer: %v", err)
	}
	return resp.StatusCode, env
}

func encode(t *testing.T, id string, m cwmp.Message) []byte {
	t.Helper()
	b, err := cwmp.Encode(&cwmp.Envelope{ID: id, Body: m})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestContentEncoding(t *testing.T) {
	s := acs.New(acs.Config{SessionHold: -1, BodyLimit: 64 << 10})
	srv := httptest.NewServer(s)
	defer srv.Close()
	inform := informBody(t, "ENC", "")
	compress := func(kind string, data []byte) []byte {
		var b bytes.Buffer
		var w io.WriteCloser
		switch kind {
		case "gzip":
			w = gzip.NewWriter(&b)
		case "deflate":
			w = zlib.NewWriter(&b)
		case "raw-deflate":
			w, _ = flate.NewWriter(&b, flate.BestCompression)
		}
		_, _ = w.Write(data)
		_ = w.Close()
		return b.Bytes()
	}
	bomb := append(append([]byte("<x>"), make([]byte, 16<<20)...), "</x>"...) // 16 MiB of zeros
	tests := []struct {
		name     string
		encoding string
		body     []byte
		want     int
	}{
		{"gzip", "gzip", compress("gzip", inform), http.StatusOK},
		{"deflate (zlib)", "deflate", compress("deflate", inform), http.StatusOK},
		{"deflate (raw)", "deflate", compress("raw-deflate", inform), http.StatusOK},
		{"identity", "identity", inform, http.StatusOK},
		{"gzip bomb", "gzip", compress("gzip", bomb), http.StatusRequestEntityTooLarge},
		{"corrupt gzip", "gzip", []byte("not gzip at all"), http.StatusBadRequest},
		{"unknown encoding", "br", inform, http.StatusUnsupportedMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == http.StatusRequestEntityTooLarge && len(tc.body) > 64<<10 {
				t.Fatalf("bomb is %d bytes compressed: it must pass the raw limit", len(tc.body))
			}
			c := newRawCPE(t, srv.URL)
			status, env := c.post(tc.body, map[string]string{"Content-Encoding": tc.encoding, "Content-Type": "text/xml"})
			if status != tc.want {
				t.Fatalf("status %d, want %d", status, tc.want)
			}
			if tc.want == http.StatusOK {
				if _, ok := env.Body.(*cwmp.InformResponse); !ok {
					t.Fatalf("answer %#v", env.Body)
				}
				if status, _ := c.post(nil, nil); status != http.StatusNoContent {
					t.Fatalf("empty POST: %d", status)
				}
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv := httptest.NewServer(acs.New(acs.Config{}))
	defer srv.Close()
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead} {
		req, _ := http.NewRequest(m, srv.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
			t.Fatalf("%s: status %d Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

func TestSessionRestoredByCookie(t *testing.T) {
	s := acs.New(acs.Config{SessionHold: -1})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := testCtx(t)
	c := newRawCPE(t, srv.URL)
	if status, _ := c.post(informBody(t, "CK1", ""), nil); status != http.StatusOK {
		t.Fatalf("inform: %d", status)
	}
	const id = "00CAFE-HG-CK1"
	res, err := s.Enqueue(ctx, id, &cwmp.SetParameterValues{ParameterList: []cwmp.ParameterValueStruct{
		{Name: "InternetGatewayDevice.ManagementServer.ConnectionRequestUsername", Value: "cr-user"},
		{Name: "InternetGatewayDevice.ManagementServer.ConnectionRequestPassword", Value: "cr-pass"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The CPE reconnects on a new TCP connection, carrying only the cookie.
	c.client.Transport = &http.Transport{}
	status, env := c.post(nil, nil)
	if status != http.StatusOK {
		t.Fatalf("empty POST on a new connection: %d", status)
	}
	if _, ok := env.Body.(*cwmp.SetParameterValues); !ok {
		t.Fatalf("got %#v, want the queued SetParameterValues", env.Body)
	}
	if status, _ := c.post(encode(t, env.ID, &cwmp.SetParameterValuesResponse{}), nil); status != http.StatusNoContent {
		t.Fatalf("after the response: %d, want 204", status)
	}
	if r := <-res; r.Err != nil {
		t.Fatal(r.Err)
	}
	d, _ := s.Device(id)
	if d.ConnectionRequestUsername != "cr-user" || d.ConnectionRequestPassword.Reveal() != "cr-pass" {
		t.Fatalf("credentials not learned: %q", d.ConnectionRequestUsername)
	}
	if data, _ := json.Marshal(d); strings.Contains(string(data), "cr-pass") {
		t.Fatalf("Device JSON leaks the password: %s", data)
	}
}

func TestSessionTimeout(t *testing.T) {
	s := acs.New(acs.Config{SessionTimeout: 50 * time.Millisecond})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := testCtx(t)
	c := newRawCPE(t, srv.URL)
	c.post(informBody(t, "TO1", ""), nil)
	res, err := s.Enqueue(ctx, "00CAFE-HG-TO1", &cwmp.GetRPCMethods{})
	if err != nil {
		t.Fatal(err)
	}
	// The CPE goes silent: the session times out and the request fails.
	if r := <-res; !errors.Is(r.Err, acs.ErrSessionEnded) {
		t.Fatalf("err = %v, want ErrSessionEnded", r.Err)
	}
	if err := s.WaitIdle(ctx, "00CAFE-HG-TO1"); err != nil {
		t.Fatal(err)
	}
	// A late empty POST with the stale cookie is told the session is over.
	if status, _ := c.post(nil, nil); status != http.StatusNoContent {
		t.Fatalf("stale cookie: %d, want 204", status)
	}
}

func TestEnqueueContextWithdraws(t *testing.T) {
	s := acs.New(acs.Config{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newRawCPE(t, srv.URL)
	c.post(informBody(t, "EQ1", ""), nil)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := s.Enqueue(ctx, "00CAFE-HG-EQ1", &cwmp.GetRPCMethods{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if r := <-res; !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("err = %v", r.Err)
	}
	// Withdrawn: the next empty POST ends the session instead of sending it.
	if status, _ := c.post(nil, nil); status != http.StatusNoContent {
		t.Fatalf("status %d, want 204", status)
	}
	if _, err := s.Enqueue(context.Background(), "nope", &cwmp.GetRPCMethods{}); !errors.Is(err, acs.ErrUnknownDevice) {
		t.Fatalf("unknown device: %v", err)
	}
}

func TestCPERequests(t *testing.T) {
	s := acs.New(acs.Config{SessionHold: -1})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := testCtx(t)
	c := newRawCPE(t, srv.URL)
	c.post(informBody(t, "TC1", ""), nil)
	tests := []struct {
		name string
		req  cwmp.Message
		want string
	}{
		{"transfer complete", &cwmp.TransferComplete{CommandKey: "fw-9", FaultStruct: cwmp.FaultStruct{FaultCode: 9018, FaultString: "bad image"}}, "TransferCompleteResponse"},
		{"autonomous transfer complete", &cwmp.AutonomousTransferComplete{TransferURL: "http://x/fw", IsDownload: true, FileType: "1 Firmware Upgrade Image"}, "AutonomousTransferCompleteResponse"},
		{"request download", &cwmp.RequestDownload{FileType: "2 Web Content"}, "RequestDownloadResponse"},
		{"get rpc methods", &cwmp.GetRPCMethods{}, "GetRPCMethodsResponse"},
		{"unsupported", &cwmp.Unknown{Name: "Kicked"}, "Fault"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, env := c.post(encode(t, "c1", tc.req), nil)
			if status != http.StatusOK || env.Body.MethodName() != tc.want || env.ID != "c1" {
				t.Fatalf("status %d, answer %#v", status, env)
			}
		})
	}
	tc, err := s.WaitTransferComplete(ctx, "00CAFE-HG-TC1", "fw-9")
	var f *cwmp.Fault
	if !errors.Is(err, acs.ErrTransferFailed) || !errors.As(err, &f) || f.Code != 9018 || tc.CommandKey != "fw-9" {
		t.Fatalf("WaitTransferComplete = %+v, %v", tc, err)
	}
	if _, err := s.WaitTransferComplete(ctx, "00CAFE-HG-TC1", ""); err != nil {
		t.Fatalf("autonomous transfer: %v", err)
	}
}

func TestConnectionRequestReasons(t *testing.T) {
	// A port with nothing listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + ln.Addr().String() + "/"
	ln.Close()
	// A listener that accepts and never answers.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	var conns sync.WaitGroup
	conns.Add(1)
	go func() {
		defer conns.Done()
		var held []net.Conn
		for {
			c, err := silent.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	defer func() { silent.Close(); conns.Wait() }()
	s := acs.New(acs.Config{SessionHold: -1, ConnectionRequestTimeout: 200 * time.Millisecond})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := testCtx(t)
	tests := []struct {
		name   string
		url    string
		reason acs.Reason
		hint   string
	}{
		{"refused", closedURL, acs.ReasonRefused, "does not listen"},
		{"timeout", "http://" + silent.Addr().String() + "/", acs.ReasonTimeout, "timed out"},
		{"no url", "", acs.ReasonNoURL, "no ConnectionRequestURL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newRawCPE(t, srv.URL)
			serial := strings.ReplaceAll(tc.name, " ", "")
			c.post(informBody(t, serial, tc.url), nil)
			c.post(nil, nil) // 204: the session ends
			_, err := s.Do(ctx, "00CAFE-HG-"+serial, &cwmp.GetRPCMethods{})
			var cre *acs.ConnectionRequestError
			if !errors.As(err, &cre) || cre.Reason != tc.reason || !errors.Is(err, acs.ErrConnectionRequest) {
				t.Fatalf("err = %v, want reason %q", err, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("message %q does not say %q", err, tc.hint)
			}
		})
	}
}

func TestCPEAuth(t *testing.T) {
	users := map[string]string{"00CAFE-HG-AU1": "right-pass"}
	var logs bytes.Buffer
	var logMu sync.Mutex
	cfg := acs.Config{
		SessionHold: -1,
		Logger:      newLogger(&logs, &logMu),
		CPEAuth: func(hint string) (string, secret.Secret, bool) {
			p, ok := users[hint]
			return hint, secret.New(p), ok
		},
	}
	s := acs.New(cfg)
	srv := httptest.NewServer(s)
	defer srv.Close()
	inform := informBody(t, "AU1", "")
	ctx := testCtx(t)

	post := func(c *httpauth.Client, hc *http.Client, body []byte) int {
		t.Helper()
		resp, err := c.DoWith(ctx, hc, http.MethodPost, srv.URL+"/acs", body, http.Header{"Content-Type": {"text/xml"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jarClient := func() *http.Client { jar, _ := cookiejar.New(nil); return &http.Client{Jar: jar} }

	t.Run("digest success", func(t *testing.T) {
		c := &httpauth.Client{Username: "00CAFE-HG-AU1", Password: secret.New("right-pass")}
		hc := jarClient()
		if got := post(c, hc, inform); got != http.StatusOK {
			t.Fatalf("inform: %d", got)
		}
		if got := post(c, hc, nil); got != http.StatusNoContent {
			t.Fatalf("empty POST: %d", got)
		}
		if d, _ := s.Device("00CAFE-HG-AU1"); d.AuthUsername != "00CAFE-HG-AU1" {
			t.Fatalf("AuthUsername = %q", d.AuthUsername)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c := &httpauth.Client{Username: "00CAFE-HG-AU1", Password: secret.New("wrong-pass")}
		if got := post(c, jarClient(), inform); got != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", got)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		c := &httpauth.Client{Username: "someone", Password: secret.New("right-pass")}
		if got := post(c, jarClient(), inform); got != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", got)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		if got := post(&httpauth.Client{}, jarClient(), inform); got != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", got)
		}
	})
	t.Run("basic refused on plain HTTP", func(t *testing.T) {
		hdr := http.Header{"Authorization": {httpauth.BasicAuthorization("00CAFE-HG-AU1", secret.New("right-pass"))}}
		resp, err := (&httpauth.Client{}).Do(ctx, http.MethodPost, srv.URL, inform, hdr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		for _, v := range resp.Header.Values("WWW-Authenticate") {
			if strings.HasPrefix(v, "Basic") {
				t.Fatalf("Basic offered on plain HTTP: %q", v)
			}
		}
	})
	t.Run("replayed digest", func(t *testing.T) {
		// Capture one valid Authorization header, then send it twice.
		resp, _ := http.Post(srv.URL, "text/xml", bytes.NewReader(inform))
		resp.Body.Close()
		ch := httpauth.ParseChallenges(resp.Header.Get("WWW-Authenticate"))[0]
		auth, err := httpauth.DigestAuthorization(ch, http.MethodPost, "/", "00CAFE-HG-AU1", secret.New("right-pass"), "abcd", 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader(inform))
			req.Header.Set("Authorization", auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("attempt %d: status %d, want %d", i+1, resp.StatusCode, want)
			}
		}
	})

	s2 := acs.New(acs.Config{CPEAuth: cfg.CPEAuth, AllowBasicWithoutTLS: true, SessionHold: -1})
	srv2 := httptest.NewServer(s2)
	defer srv2.Close()
	t.Run("basic allowed by config", func(t *testing.T) {
		hdr := http.Header{"Authorization": {httpauth.BasicAuthorization("00CAFE-HG-AU1", secret.New("right-pass"))}}
		resp, err := (&httpauth.Client{}).Do(ctx, http.MethodPost, srv2.URL, inform, hdr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	})

	logMu.Lock()
	defer logMu.Unlock()
	out := logs.String()
	if strings.Contains(out, "right-pass") || strings.Contains(out, "wrong-pass") {
		t.Fatalf("a password was logged: %s", out)
	}
	if !strings.Contains(out, "CPE authentication failed") || !strings.Contains(out, "username=someone") || !strings.Contains(out, "remote=127.0.0.1") {
		t.Fatalf("failed attempts not logged with remote and username: %s", out)
	}
}
