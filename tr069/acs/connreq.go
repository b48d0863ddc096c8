package acs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"fieldagent/agent/secret"
	"fieldagent/tr069/internal/httpauth"
)

// Reason says why a connection request failed.
type Reason string

// Reasons of a ConnectionRequestError.
const (
	// ReasonNoURL: the device never reported a ConnectionRequestURL.
	ReasonNoURL Reason = "no connection request URL"
	// ReasonRefused: the device's address answered, but nothing listens on
	// the connection request port (TCP connection refused).
	ReasonRefused Reason = "connection refused"
	// ReasonTimeout: no answer in time (device off, address wrong, or a
	// firewall or NAT drops the request).
	ReasonTimeout Reason = "timed out"
	// ReasonUnreachable: no route to the device's address.
	ReasonUnreachable Reason = "unreachable"
	// ReasonUnauthorized: the CPE answered 401: wrong credentials.
	ReasonUnauthorized Reason = "unauthorized"
	// ReasonHTTPStatus: the CPE answered with another non-2xx status.
	ReasonHTTPStatus Reason = "HTTP error"
	// ReasonOther: any other transport error.
	ReasonOther Reason = "failed"
)

// ConnectionRequestError describes a failed connection request. It matches
// ErrConnectionRequest with errors.Is.
type ConnectionRequestError struct {
	DeviceID string
	// Reason says what went wrong; the zero value means ReasonOther (or
	// ReasonHTTPStatus when StatusCode is set).
	Reason Reason
	// Host is the host:port of the ConnectionRequestURL.
	Host string
	// StatusCode is the CPE's HTTP status, 0 if none was received.
	StatusCode int
	// Err is the transport error, if any.
	Err error
}

// Error names the device, what went wrong and what to check (never
// credentials).
func (e *ConnectionRequestError) Error() string {
	at := ""
	if e.Host != "" {
		at = " at " + e.Host
	}
	head := fmt.Sprintf("acs: connection request to device %s%s failed", e.DeviceID, at)
	switch e.Reason {
	case ReasonNoURL:
		return head + ": the device reported no ConnectionRequestURL; it can only be reached when it informs (check ManagementServer.PeriodicInformEnable)"
	case ReasonRefused:
		return head + ": connection refused: the device is reachable but does not listen for connection requests; check that the ACS connection is enabled on the gateway and that its ConnectionRequestURL is current (it informs its address at boot)"
	case ReasonTimeout:
		return head + ": timed out: check that the device is powered and that this laptop can reach its WAN/management address (same VLAN, no NAT or firewall in between)"
	case ReasonUnreachable:
		return fmt.Sprintf("%s: no route to the device (%v): check the cabling and this laptop's IP address and routes", head, e.Err)
	case ReasonUnauthorized:
		return head + ": HTTP 401 (Unauthorized): check the connection request username and password (ManagementServer.ConnectionRequestUsername/Password)"
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("%s: HTTP %d (%s)", head, e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("%s: %v", head, e.Err)
}

// Is makes errors.Is(err, ErrConnectionRequest) true.
func (e *ConnectionRequestError) Is(target error) bool { return target == ErrConnectionRequest }

// Unwrap returns the transport error.
func (e *ConnectionRequestError) Unwrap() error { return e.Err }

// classify returns the Reason of a transport error.
func classify(err error) Reason {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ReasonUnreachable
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ReasonUnreachable
	}
	return ReasonOther
}

func (s *Server) connectionRequest(ctx context.Context, deviceID, rawURL, user string, pass secret.Secret) error {
	if rawURL == "" {
		return &ConnectionRequestError{DeviceID: deviceID, Reason: ReasonNoURL}
	}
	host := ""
	if u, err := url.Parse(rawURL); err == nil {
		host = u.Host
	}
	c := &httpauth.Client{HTTP: s.client}
	switch {
	case user != "" && !pass.IsZero():
		c.Username, c.Password = user, pass
	case s.cfg.ConnectionRequestAuth != nil:
		c.Username, c.Password = s.cfg.ConnectionRequestAuth(deviceID)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectionRequestTimeout)
	defer cancel()
	resp, err := c.Do(cctx, http.MethodGet, rawURL, nil, nil)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("acs: connection request to device %s: %w", deviceID, ctx.Err())
		}
		return &ConnectionRequestError{DeviceID: deviceID, Host: host, Reason: classify(err), Err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent:
	case resp.StatusCode == http.StatusUnauthorized:
		return &ConnectionRequestError{DeviceID: deviceID, Host: host, Reason: ReasonUnauthorized, StatusCode: resp.StatusCode}
	default:
		return &ConnectionRequestError{DeviceID: deviceID, Host: host, Reason: ReasonHTTPStatus, StatusCode: resp.StatusCode}
	}
	s.log.Debug("connection request accepted", "device", deviceID)
	return nil
}
