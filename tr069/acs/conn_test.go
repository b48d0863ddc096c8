package acs_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/cpe"
	"fieldagent/tr069/cwmp"
)

const swVersion = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"

// A CPE whose connection drops while it holds a request ends its session at
// once (not after SessionTimeout), and the next request reaches it again
// through a new connection request.
func TestConnectionLostEndsSession(t *testing.T) {
	var drops atomic.Int32
	drops.Store(1)
	l := startLab(t, 1, acs.Config{}, func(c *cpe.Config) {
		c.BeforeRPC = func(_ context.Context, m cwmp.Message) error {
			if _, ok := m.(*cwmp.GetParameterValues); ok && drops.Add(-1) >= 0 {
				return cpe.ErrDropSession
			}
			return nil
		}
	})
	ctx := testCtx(t)
	d := l.waitBoot(t, ctx, "SN000")
	start := time.Now()
	_, err := l.acs.Do(ctx, d.ID, &cwmp.GetParameterValues{ParameterNames: []string{swVersion}})
	if !errors.Is(err, acs.ErrSessionEnded) || !errors.Is(err, acs.ErrConnectionLost) {
		t.Fatalf("err = %v, want the session ended by the lost connection", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("the lost connection was noticed after %v", el)
	}
	resp, err := l.acs.Do(ctx, d.ID, &cwmp.GetParameterValues{ParameterNames: []string{swVersion}})
	if err != nil {
		t.Fatalf("after the drop: %v", err)
	}
	if got := resp.(*cwmp.GetParameterValuesResponse).ParameterList[0].Value; got != "V1.0" {
		t.Errorf("value = %q", got)
	}
}

// A CPE that opens a new connection for every request (the session carried
// by its cookie) is not mistaken for a lost one.
func TestConnectionPerRequestKeepsSession(t *testing.T) {
	l := startLab(t, 1, acs.Config{}, func(c *cpe.Config) {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	})
	ctx := testCtx(t)
	d := l.waitBoot(t, ctx, "SN000")
	for i := range 3 {
		_, err := l.acs.Do(ctx, d.ID, &cwmp.GetParameterValues{ParameterNames: []string{swVersion}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

// A CPE whose HTTP client drops the pooled connection while it works on a
// request, and answers on a new one within ConnLostGrace, keeps its session.
func TestConnectionDroppedByPoolKeepsSession(t *testing.T) {
	tr := &http.Transport{}
	l := startLab(t, 1, acs.Config{}, func(c *cpe.Config) {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: tr}
		c.BeforeRPC = func(context.Context, cwmp.Message) error {
			tr.CloseIdleConnections() // the connection the request came on
			return nil
		}
	})
	ctx := testCtx(t)
	d := l.waitBoot(t, ctx, "SN000")
	for i := range 3 {
		if _, err := l.acs.Do(ctx, d.ID, &cwmp.GetParameterValues{ParameterNames: []string{swVersion}}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}
