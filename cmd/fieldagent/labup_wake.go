package main

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"fieldagent/agent/secret"
)

// A lab's TR-069 devices inform an ACS that is usually not there yet (the
// technician runs `order run` later) and back off as TR-069 says, up to
// three quarters of an hour between tries. acsWatcher does what the ACS
// would on its first contact: when the ACS starts answering, it sends each
// device a connection request, which ends the device's wait.

// acsWatcher wakes the lab's devices whenever the ACS comes up.
type acsWatcher struct {
	// Addr is the ACS's host:port.
	Addr string
	// Devices returns the connection request URLs to call (read on each
	// wake: a device publishes its URL once it runs).
	Devices  func() []string
	Username string
	Password secret.Secret
	// Every is the poll interval; 0 means 1 s.
	Every  time.Duration
	Logger *slog.Logger
	// Dial, if set, dials the ACS and the devices (a lab in network
	// namespaces dials from the laptop's); nil dials from here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Run polls until ctx ends.
func (w *acsWatcher) Run(ctx context.Context) {
	every := w.Every
	if every == 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	up := false
	client := http.DefaultClient
	if w.Dial != nil {
		client = &http.Client{Transport: &http.Transport{DialContext: w.Dial, DisableKeepAlives: true}}
	}
	for {
		c, err := w.dial(ctx, every)
		now := err == nil
		if c != nil {
			_ = c.Close()
		}
		if now && !up {
			for _, u := range w.Devices() {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := digestGetWith(cctx, client, u, w.Username, w.Password); err != nil && ctx.Err() == nil {
					w.Logger.Warn("connection request to a lab device failed", "url", u, "err", err)
				} else {
					w.Logger.Debug("the ACS is up: woke a lab device", "url", u)
				}
				cancel()
			}
		}
		up = now
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// dial tries to connect to the ACS within timeout.
func (w *acsWatcher) dial(ctx context.Context, timeout time.Duration) (net.Conn, error) {
	if w.Dial == nil {
		d := net.Dialer{Timeout: timeout}
		return d.DialContext(ctx, "tcp", w.Addr)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return w.Dial(ctx, "tcp", w.Addr)
}

// digestGet sends a TR-069 connection request: GET rawURL, answering an
// HTTP Digest (MD5, qop=auth) challenge with user and pass.
func digestGet(ctx context.Context, rawURL, user string, pass secret.Secret) error {
	return digestGetWith(ctx, http.DefaultClient, rawURL, user, pass)
}

// digestGetWith is digestGet with client.
func digestGetWith(ctx context.Context, client *http.Client, rawURL, user string, pass secret.Secret) error {
	get := func(auth string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp, nil
	}
	resp, err := get("")
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		ch, ok := strings.CutPrefix(resp.Header.Get("WWW-Authenticate"), "Digest ")
		if !ok {
			return fmt.Errorf("connection request: %s without a Digest challenge", resp.Status)
		}
		u, err := url.Parse(rawURL)
		if err != nil {
			return err
		}
		p := digestParams(ch)
		h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
		cb := make([]byte, 8)
		_, _ = rand.Read(cb)
		cnonce, nc, uri := hex.EncodeToString(cb), "00000001", u.RequestURI()
		ha1 := h(user + ":" + p["realm"] + ":" + pass.Reveal())
		ha2 := h(http.MethodGet + ":" + uri)
		auth := fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, algorithm=MD5, qop=auth, nc=%s, cnonce=%q, response=%q`,
			user, p["realm"], p["nonce"], uri, nc, cnonce, h(ha1+":"+p["nonce"]+":"+nc+":"+cnonce+":auth:"+ha2))
		if o, ok := p["opaque"]; ok {
			auth += fmt.Sprintf(", opaque=%q", o)
		}
		if resp, err = get(auth); err != nil {
			return err
		}
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("connection request: %s", resp.Status)
	}
	return nil
}

// digestParams parses the key=value and key="value" list of a challenge.
func digestParams(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimLeft(s, ", ") {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				break
			}
			v, s = rest[1:1+end], rest[2+end:]
		} else {
			v, s, _ = strings.Cut(rest, ",")
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}
