// Package ordersys is the agent's client of the order system's REST API
// (docs/order-system.md): list and fetch work orders, post progress events,
// and post the completion report. Uploader delivers the store's outbox
// through the client, idempotently and with retries.
package ordersys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fieldagent/agent/order"
	"fieldagent/agent/secret"
)

// Sentinel errors. An *HTTPError wraps the one that matches its status.
var (
	// ErrUnauthorized: the server refused the bearer token (401/403), or no
	// token is configured.
	ErrUnauthorized = errors.New("order system refused the API token")
	// ErrNotFound: the order does not exist in the order system (404).
	ErrNotFound = errors.New("not found in the order system")
	// ErrConflict: the request conflicts with the order's state (409), e.g.
	// completing an order that another report already closed.
	ErrConflict = errors.New("order system reports a conflict")
	// ErrRejected: the server refused the request as malformed (400, 413,
	// 422 and other 4xx but 408 and 429); retrying the same request cannot
	// succeed.
	ErrRejected = errors.New("order system rejected the request")
	// ErrUnreachable: the order system could not be reached (connection
	// refused, DNS failure, timeout, 502/503/504). Commands exit with code 3.
	ErrUnreachable = errors.New("order system unreachable")
	// ErrInvalidRequest: the client refused to send a request that cannot
	// succeed (an empty order ID or idempotency key, a body that is not
	// JSON or is too large).
	ErrInvalidRequest = errors.New("invalid request to the order system")
	// ErrBadResponse: the server answered with something the client cannot
	// use (not JSON, too large, an invalid order).
	ErrBadResponse = errors.New("bad response from the order system")
)

// maxBody is the largest request or response body, in bytes (1 MiB).
const maxBody = order.MaxSize

// HTTPError is a response with an unexpected status.
type HTTPError struct {
	Method     string
	Path       string // Path is the URL path, without the query.
	StatusCode int
	Message    string // Message is the server's "error" field, if any.
	// RetryAfter is the server's Retry-After, if it sent one in seconds.
	RetryAfter time.Duration
	// Attempts is how many times the request was sent before the client
	// gave up with this answer; 0 means once.
	Attempts int
}

// Error returns e.g. "order system: POST /api/v1/orders/W1/completion: 409 Conflict: order already closed",
// with how many attempts failed and what to do where that is known.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("order system: %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (%d attempts)", e.Attempts)
	}
	switch {
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		msg += ": check the order-system API token"
	case e.StatusCode == http.StatusNotFound:
		msg += ": check the order ID and the order-system URL"
	case e.StatusCode >= 500:
		msg += ": the order system failed: try again later, and report it to its operators if it goes on"
	}
	return msg
}

// Unwrap returns the sentinel error for the status, or nil.
func (e *HTTPError) Unwrap() error {
	switch code := e.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return ErrUnauthorized
	case code == http.StatusNotFound:
		return ErrNotFound
	case code == http.StatusConflict:
		return ErrConflict
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return ErrUnreachable
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return nil
	case code >= 400 && code < 500:
		return ErrRejected
	}
	return nil
}

// Temporary reports whether the same request may succeed later: 408, 429 and
// 5xx.
func (e *HTTPError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Permanent reports whether err means that sending the same request again
// cannot succeed: ErrInvalidRequest, or a 4xx response other than 401, 403,
// 408 and 429. (401 and 403 are not permanent: the request is fine, the token
// must be fixed.)
func Permanent(err error) bool {
	if errors.Is(err, ErrInvalidRequest) {
		return true
	}
	var he *HTTPError
	if !errors.As(err, &he) {
		return false
	}
	switch he.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return he.StatusCode >= 400 && he.StatusCode < 500
}

// Client talks to the order system. Set the fields before first use; a
// Client is then safe for concurrent use.
type Client struct {
	// BaseURL is the order system's root, e.g. "https://orders.example.net";
	// the client appends /api/v1/….
	BaseURL string
	// Token is the bearer token. It is sent only in the Authorization header.
	Token secret.Secret
	// HTTPClient, if nil, is http.DefaultClient. Deadlines come from ctx.
	HTTPClient *http.Client
	// Logger, if nil, discards.
	Logger *slog.Logger
	// MaxAttempts is how many times an idempotent request (a GET, a
	// completion, an event with a Key) is tried on a temporary failure
	// (unreachable, 408, 429, 5xx). 0 means 3; 1 means no retry.
	MaxAttempts int
	// RetryBackoff is the wait before the first retry, doubled for each
	// further retry, with jitter, and capped at 10 times itself; a
	// Retry-After from the server is honoured up to that cap. 0 means
	// 500ms.
	RetryBackoff time.Duration
}

// EventKind is the kind of a progress event.
type EventKind string

// The event kinds the order system accepts.
const (
	EventAccepted             EventKind = "accepted"
	EventAppointmentConfirmed EventKind = "appointment_confirmed"
	EventArrived              EventKind = "arrived"
	EventStarted              EventKind = "started"
	EventStepFinished         EventKind = "step_finished"
	EventCustomerAccepted     EventKind = "customer_accepted"
	EventCleanedUp            EventKind = "cleaned_up"
)

// Event is a progress event of an order.
type Event struct {
	Kind   EventKind `json:"kind"`
	At     time.Time `json:"at"`     // At, if zero, is the time of PostEvent.
	Detail string    `json:"detail"` // Detail is free text; no credentials.
	// Key, if set, is sent as the Idempotency-Key header: the server then
	// records the event once however often it is sent, and the client may
	// retry it. Without a Key the event is sent once.
	Key string `json:"-"`
}

// Receipt is the order system's answer to a completion.
type Receipt struct {
	OrderID string `json:"order_id"`
	State   string `json:"state"`   // State is "closed".
	Receipt string `json:"receipt"` // Receipt is the order system's receipt ID.
	// Replayed is true when the server had already accepted this
	// idempotency key and replayed its first answer (status 200).
	Replayed bool `json:"-"`
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// ListOrders returns the orders assigned to technician (every order if
// technician is empty).
func (c *Client) ListOrders(ctx context.Context, technician string) ([]order.Summary, error) {
	path := "/api/v1/orders"
	if technician != "" {
		path += "?technician=" + url.QueryEscape(technician)
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, retry: true})
	if err != nil {
		return nil, err
	}
	var out struct {
		Orders []order.Summary `json:"orders"`
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return nil, fmt.Errorf("%w: GET %s: order list is not the expected JSON: %w", ErrBadResponse, path, err)
	}
	return out.Orders, nil
}

// GetOrder fetches one order with its credentials, parsed and validated by
// order.Parse. An invalid order gives an error wrapping ErrBadResponse and
// order.ErrInvalid that names the field.
func (c *Client) GetOrder(ctx context.Context, id string) (*order.Order, error) {
	if id == "" {
		return nil, fmt.Errorf("ordersys: get order: %w: the order ID is empty", ErrInvalidRequest)
	}
	path := "/api/v1/orders/" + url.PathEscape(id)
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, retry: true})
	if err != nil {
		return nil, err
	}
	o, err := order.Parse(resp.body)
	if err != nil {
		return nil, fmt.Errorf("%w: order %s is invalid: %w: report it to dispatch", ErrBadResponse, id, err)
	}
	if o.ID != id {
		return nil, fmt.Errorf("%w: asked for order %s, got order %s", ErrBadResponse, id, o.ID)
	}
	return o, nil
}

// PostEvent records a progress event of an order.
func (c *Client) PostEvent(ctx context.Context, id string, ev Event) error {
	if id == "" {
		return fmt.Errorf("ordersys: post event: %w: the order ID is empty", ErrInvalidRequest)
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	body, err := json.Marshal(struct {
		Kind   EventKind `json:"kind"`
		At     string    `json:"at"`
		Detail string    `json:"detail,omitempty"`
	}{ev.Kind, ev.At.Format(time.RFC3339Nano), ev.Detail})
	if err != nil {
		return fmt.Errorf("ordersys: encode event: %w", err)
	}
	_, err = c.do(ctx, request{
		method: http.MethodPost, path: "/api/v1/orders/" + url.PathEscape(id) + "/events",
		body: body, key: ev.Key, retry: ev.Key != "",
	})
	return err
}

// Complete posts the completion report of an order (a JSON object with at
// least "order_id" and "result") under idempotencyKey. Sending the same key
// again returns the first receipt with Replayed set; a different key for an
// order already closed gives ErrConflict.
func (c *Client) Complete(ctx context.Context, id, idempotencyKey string, body []byte) (Receipt, error) {
	if id == "" {
		return Receipt{}, fmt.Errorf("ordersys: complete order: %w: the order ID is empty", ErrInvalidRequest)
	}
	if idempotencyKey == "" {
		return Receipt{}, fmt.Errorf("ordersys: complete order %s: %w: the idempotency key is empty: use the outbox item's key", id, ErrInvalidRequest)
	}
	if !json.Valid(body) {
		return Receipt{}, fmt.Errorf("ordersys: complete order %s: %w: the completion report is not valid JSON", id, ErrInvalidRequest)
	}
	path := "/api/v1/orders/" + url.PathEscape(id) + "/completion"
	resp, err := c.do(ctx, request{method: http.MethodPost, path: path, body: body, key: idempotencyKey, retry: true})
	if err != nil {
		return Receipt{}, err
	}
	var r Receipt
	if err := json.Unmarshal(resp.body, &r); err != nil || r.Receipt == "" {
		return Receipt{}, fmt.Errorf("%w: POST %s: no receipt in the answer %.200q", ErrBadResponse, path, resp.body)
	}
	r.Replayed = resp.status == http.StatusOK
	return r, nil
}

type request struct {
	method, path string
	body         []byte
	key          string // Idempotency-Key
	retry        bool   // safe to send more than once
}

type response struct {
	status int
	body   []byte
}

// do sends req, retrying temporary failures when req.retry is set.
func (c *Client) do(ctx context.Context, req request) (response, error) {
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = 3
	}
	if !req.retry {
		attempts = 1
	}
	base := c.RetryBackoff
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, req)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		var he *HTTPError
		if errors.As(err, &he) {
			he.Attempts = attempt
		}
		if attempt >= attempts || !retryable(err) || ctx.Err() != nil {
			return response{}, lastErr
		}
		wait := backoff(base, 10*base, attempt)
		if he != nil && he.RetryAfter > 0 {
			wait = min(he.RetryAfter, 10*base)
		}
		c.logger().Debug("order system request failed, retrying", "method", req.method, "path", req.path, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return response{}, lastErr
		case <-t.C:
		}
	}
}

// retryable reports whether a failed request may succeed if sent again.
func retryable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Temporary()
	}
	return errors.Is(err, ErrUnreachable)
}

// backoff returns the wait before retry n (n ≥ 1): base·2^(n-1), capped at
// limit, with "equal jitter" (between half and all of it).
func backoff(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// once sends one request.
func (c *Client) once(ctx context.Context, req request) (response, error) {
	if c.BaseURL == "" {
		return response{}, errors.New("ordersys: no order-system URL configured: set the order system's base URL")
	}
	if c.Token.IsZero() {
		return response{}, fmt.Errorf("ordersys: %w: no API token configured: set the order-system token", ErrUnauthorized)
	}
	u := strings.TrimRight(c.BaseURL, "/") + req.path
	var body io.Reader
	if req.body != nil {
		if len(req.body) > maxBody {
			return response{}, fmt.Errorf("ordersys: %s %s: %w: the body is %d bytes, more than the %d-byte limit", req.method, req.path, ErrInvalidRequest, len(req.body), maxBody)
		}
		body = bytes.NewReader(req.body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return response{}, fmt.Errorf("ordersys: build %s %s: %w: check the order-system URL", req.method, req.path, err)
	}
	hreq.Header.Set("Authorization", "Bearer "+c.Token.Reveal())
	hreq.Header.Set("Accept", "application/json")
	if req.body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if req.key != "" {
		hreq.Header.Set("Idempotency-Key", req.key)
	}
	path := hreq.URL.Path
	hresp, err := c.httpClient().Do(hreq)
	if err != nil {
		if ctxErr := context.Cause(ctx); ctxErr != nil && !errors.Is(ctxErr, context.DeadlineExceeded) {
			return response{}, fmt.Errorf("ordersys: %s %s: %w", req.method, path, ctxErr)
		}
		return response{}, fmt.Errorf("ordersys: %w: %s %s: %w: check the network and the order-system URL", ErrUnreachable, req.method, path, redactURLError(err))
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, maxBody+1))
	if err != nil {
		got := fmt.Sprintf("after %d bytes", len(data))
		if hresp.ContentLength >= 0 {
			got = fmt.Sprintf("after %d of %d bytes", len(data), hresp.ContentLength)
		}
		return response{}, fmt.Errorf("ordersys: %w: %s %s: the response broke off %s (%w): check the network and try again", ErrUnreachable, req.method, path, got, err)
	}
	c.logger().Debug("order system request", "method", req.method, "path", path, "status", hresp.StatusCode, "bytes", len(data))
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		he := &HTTPError{Method: req.method, Path: path, StatusCode: hresp.StatusCode}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil {
			he.Message = e.Error
		}
		if s, err := strconv.Atoi(hresp.Header.Get("Retry-After")); err == nil && s > 0 {
			he.RetryAfter = time.Duration(s) * time.Second
		}
		return response{}, he
	}
	if len(data) > maxBody {
		return response{}, fmt.Errorf("%w: %s %s: the response is more than the %d-byte limit: check the order-system URL, or report it to dispatch", ErrBadResponse, req.method, path, maxBody)
	}
	return response{status: hresp.StatusCode, body: data}, nil
}

// redactURLError drops the URL from a *url.Error: the error message already
// names the method and path, and the cause (refused, timeout, DNS) is kept.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
