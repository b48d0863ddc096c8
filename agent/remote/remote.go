// Package remote is the client of a remote `fieldagent serve` API
// (docs/api.md): what the CLI uses when a remote engineer gives --server,
// so that the same commands work against the support centre's daemon as
// against the technician's local store and ACS.
package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"fieldagent/agent/secret"
)

// Errors a call returns; an *Error wraps the one matching its status.
var (
	// ErrUnreachable means the server could not be reached at all.
	ErrUnreachable = errors.New("the fieldagent serve API is unreachable")
	// ErrUnauthorized is a 401: no token, or one the server does not know.
	ErrUnauthorized = errors.New("the server refused the token")
	// ErrForbidden is a 403: the token's role is below the route's.
	ErrForbidden = errors.New("the token's role does not allow this")
	// ErrNotFound is a 404: an unknown device, job or route.
	ErrNotFound = errors.New("not found")
	// ErrBadRequest is a 400, 413 or 415: the request was refused as malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrBusy is a 429 (the token's rate) or a 503 (shutting down).
	ErrBusy = errors.New("the server is busy or shutting down")
	// ErrDevice is a 502 or 504: the server could not complete the device's part.
	ErrDevice = errors.New("the device did not answer the server")
)

// maxAnswer bounds an answer the client reads (a fleet job's results).
const maxAnswer = 64 << 20

// Error is an error answer of the API: its status and the server's
// {"error", "hint"} body.
type Error struct {
	Method, Path string
	Status       int
	Message      string
	Hint         string
	// RetryAfter is the server's Retry-After on a 429 or 503, if any.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s %s: %d: %s", e.Method, e.Path, e.Status, msg)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap maps the status to the package's sentinel errors.
func (e *Error) Unwrap() error {
	switch e.Status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return ErrBadRequest
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return ErrBusy
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return ErrDevice
	}
	return nil
}

// Options configures New.
type Options struct {
	// Server is the API's base URL, e.g. https://support.example:7550.
	Server string
	// Token is the caller's bearer token.
	Token secret.Secret
	// CAFile, if set, adds the PEM CA certificates in it to the system's
	// for an HTTPS server.
	CAFile string
	// Timeout bounds each call that is not a stream; 0 means 30 s.
	Timeout time.Duration
	// HTTPClient, if set, is used as is (CAFile is then ignored).
	HTTPClient *http.Client
}

// Client calls one serve API. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	token   secret.Secret
	timeout time.Duration
	hc      *http.Client
}

// New returns a client of the API at o.Server.
func New(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(o.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("remote: server %q is not an http:// or https:// URL", o.Server)
	}
	if o.Token.IsZero() {
		return nil, errors.New("remote: no token: set remote.token (or FIELDAGENT_REMOTE_TOKEN) to a token from `fieldagent serve token new`")
	}
	hc := o.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("remote: CA file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("remote: CA file %s holds no PEM certificate", o.CAFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr}
	}
	t := o.Timeout
	if t <= 0 {
		t = 30 * time.Second
	}
	return &Client{base: u, token: o.Token, timeout: t, hc: hc}, nil
}

// Server is the base URL the client calls.
func (c *Client) Server() string { return c.base.String() }

// request builds an authenticated request for path (which may carry a query).
func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("remote: encode the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return nil, fmt.Errorf("remote: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Do calls method path with body (JSON, or nil) and decodes a 2xx answer
// into out (if not nil). Any other status is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, c.timeout, method, path, body, out)
}

// actionTimeout bounds a device action, which the server runs within the
// request for up to 5 minutes (a reboot).
const actionTimeout = 6 * time.Minute

func (c *Client) do(ctx context.Context, timeout time.Duration, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportErr(ctx, method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return answerErr(method, path, resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return c.transportErr(ctx, method, path, err)
	}
	if len(b) > maxAnswer {
		return fmt.Errorf("remote: %s %s: the answer is over %d MiB", method, path, maxAnswer>>20)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("remote: %s %s: the answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

func (c *Client) transportErr(ctx context.Context, method, path string, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("remote: %s %s%s: no answer within %s: %w", method, c.base.Host, path, c.timeout, ErrUnreachable)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is already in our message
	}
	return fmt.Errorf("remote: %s %s%s: %w: %w", method, c.base.Host, path, ErrUnreachable, err)
}

// answerErr reads a non-2xx answer's {"error","hint"} body.
func answerErr(method, path string, resp *http.Response) error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := time.ParseDuration(ra + "s"); err == nil {
			e.RetryAfter = secs
		}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error string `json:"error"`
		Hint  string `json:"hint"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Message, e.Hint = body.Error, body.Hint
	} else {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	return e
}
