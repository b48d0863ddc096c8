// Package genieacs is a client of GenieACS's northbound REST API (the NBI,
// port 7557 by default): it lets the TR-069 drivers, TR-143 diagnostics and
// `diag run` work through an operator's GenieACS instead of the embedded
// ACS of tr069/acs. *Client has the method set the drivers ask of an ACS
// (GetParameterValues ... WaitInform), plus device search and counts, the
// parameter values with GenieACS's timestamps, tags, files, tasks and
// faults.
//
// How the CWMP calls map onto GenieACS tasks
// (POST /devices/<id>/tasks?connection_request&timeout=N):
//
//   - GetParameterValues: a getParameterValues task for the parameters and
//     a refreshObject task per partial path ("X.Y."), then one read of the
//     device document with a projection of those names.
//   - SetParameterValues: a setParameterValues task of [name, value, type]
//     triples (numbers and booleans as JSON numbers and booleans).
//   - GetParameterNames: a refreshObject task, then the names read from the
//     document.
//   - AddObject: the object read before and after an addObject task; the
//     new instance is the one that appeared.
//   - DeleteObject, Reboot, FactoryReset: the task of that name; Download: a
//     download task of a file in GenieACS's file store (see UploadFile).
//
// Object names are sent without their trailing dot (GenieACS rejects
// "X.Y."). A task that GenieACS answers 200 is done. 202 "Task faulted" is
// a *TaskError wrapping the *cwmp.Fault the device answered (the same type
// the embedded ACS returns); the fault is deleted, which also deletes its
// task, so the device is not blocked. 202 "Device is offline" and "Task
// queued but not processed" are a *TaskError matching ErrDeviceOffline
// (and acs.ErrConnectionRequest); the task is deleted unless
// Options.KeepQueuedTasks. 404 "No such device" matches
// acs.ErrUnknownDevice.
//
// The NBI knows no Inform events, so WaitInform polls: the device's
// DiagnosticsState parameters (with getParameterValues tasks) for
// "8 DIAGNOSTICS COMPLETE", _lastBoot for "1 BOOT", _lastBootstrap for
// "0 BOOTSTRAP" and _lastInform for any other event.
package genieacs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
)

// Options configures a Client. Zero values give the documented defaults.
type Options struct {
	// Username and Password, if Username is set, authenticate with HTTP
	// Basic. Token, if set, is sent as a Bearer token instead. Neither
	// ever appears in an error or a log line.
	Username string
	Password secret.Secret
	Token    secret.Secret
	// HTTPClient sends the requests; nil means a client whose transport
	// keeps up to 256 idle connections to the NBI (fleet operations run
	// many tasks at once).
	HTTPClient *http.Client
	// Logger, if nil, discards. Requests are logged at debug level.
	Logger *slog.Logger
	// RequestTimeout bounds a request that runs no task, and is added to
	// the task timeout for one that does; 0 means 30s. A ctx deadline that
	// comes sooner wins.
	RequestTimeout time.Duration
	// TaskTimeout is how long GenieACS waits for the device's session (the
	// timeout=N of a task); 0 means 20s. It is cut to what is left of the
	// ctx deadline, less a margin for the answer.
	TaskTimeout time.Duration
	// KeepQueuedTasks leaves a task that the device did not run ("Device
	// is offline", "Task queued but not processed") queued on GenieACS, to
	// run at the device's next session. False deletes it, so that nothing
	// is left queued behind this client.
	KeepQueuedTasks bool
	// PollInterval is the first wait between two polls of WaitInform and
	// WaitTransferComplete; 0 means 1s. Each wait is 1.5 times the one
	// before, up to MaxPollInterval (0 means 15s).
	PollInterval, MaxPollInterval time.Duration
	// MaxPolls bounds the getParameterValues tasks of one wait for
	// "8 DIAGNOSTICS COMPLETE" (each is a session with the device); 0
	// means 60. Other waits poll the device document until ctx ends.
	MaxPolls int
	// MaxResponseBytes caps a response body; 0 means 64 MiB.
	MaxResponseBytes int64
	// Now, if nil, is time.Now.
	Now func() time.Time
}

// Client talks to one GenieACS NBI. It is safe for concurrent use.
type Client struct {
	base *url.URL
	opt  Options
	hc   *http.Client
	log  *slog.Logger

	mu sync.Mutex
	// diag holds, per device, the DiagnosticsState parameters this client
	// set to Requested and not yet seen finished.
	diag map[string]map[string]bool
	// downloads holds, per device and command key, the download tasks this
	// client started and not yet seen complete.
	downloads map[string]map[string]download
}

type download struct {
	taskID, fileName string
	posted           time.Time
}

// New returns a client of the NBI at baseURL (e.g. http://acs:7557). The
// URL must not carry credentials: give them in Options.
func New(baseURL string, o Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("genieacs: NBI URL %q is not an http(s) URL: give e.g. http://genieacs:7557", redactRaw(baseURL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("genieacs: NBI URL %s carries credentials: give them as the NBI username/password or token instead", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("genieacs: NBI URL %s has a query or fragment: give the base URL only", u)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.TaskTimeout <= 0 {
		o.TaskTimeout = 20 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.MaxPollInterval <= 0 {
		o.MaxPollInterval = 15 * time.Second
	}
	if o.MaxPollInterval < o.PollInterval {
		o.MaxPollInterval = o.PollInterval
	}
	if o.MaxPolls <= 0 {
		o.MaxPolls = 60
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Client{base: u, opt: o, hc: o.HTTPClient, log: o.Logger,
		diag: map[string]map[string]bool{}, downloads: map[string]map[string]download{}}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
		c.hc = &http.Client{Transport: tr}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// redactRaw hides the userinfo of a URL that did not parse well enough to
// use url.Redacted.
func redactRaw(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "******@" + s[i+1:]
		}
		return "******@" + s[i+1:]
	}
	return s
}

// URL returns the NBI base URL (it never carries credentials).
func (c *Client) URL() string { return c.base.String() }

// request is one NBI call.
type request struct {
	method string
	// path is already escaped (see seg).
	path string
	// query is the raw query string, already encoded.
	query  string
	body   []byte
	header map[string]string // set as given (not canonicalised)
	// timeout bounds the call; 0 means Options.RequestTimeout.
	timeout time.Duration
}

// response is a complete NBI answer.
type response struct {
	status int
	reason string
	header http.Header
	body   []byte
}

// total returns the lower-case "total" header GenieACS sends with lists.
func (r *response) total() (int, error) {
	v := r.header.Get("total")
	if v == "" {
		return 0, fmt.Errorf("%w: no total header", ErrBadResponse)
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: total header %q is not a count", ErrBadResponse, v)
	}
	return n, nil
}

// seg escapes one path segment the way GenieACS's own UI does (":" too).
func seg(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}

// queryEscape escapes a query value with %20 for spaces.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// do sends r and reads the whole answer. Transport failures wrap
// ErrUnreachable; a ctx that ends first gives its error. Non-2xx answers
// are returned as a response, not an error (see check).
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	timeout := r.timeout
	if timeout <= 0 {
		timeout = c.opt.RequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := *c.base
	plain, err := url.PathUnescape(r.path)
	if err != nil {
		return nil, fmt.Errorf("genieacs: %s %s: %w", r.method, r.path, err)
	}
	u.Path += plain
	u.RawPath = c.base.EscapedPath() + r.path
	u.RawQuery = r.query
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("genieacs: %s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.header {
		req.Header[k] = []string{v}
	}
	switch {
	case !c.opt.Token.IsZero():
		req.Header.Set("Authorization", "Bearer "+c.opt.Token.Reveal())
	case c.opt.Username != "":
		req.SetBasicAuth(c.opt.Username, c.opt.Password.Reveal())
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportErr(ctx, r, timeout, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.opt.MaxResponseBytes+1))
	if err != nil {
		return nil, c.transportErr(ctx, r, timeout, err)
	}
	if int64(len(b)) > c.opt.MaxResponseBytes {
		return nil, fmt.Errorf("genieacs: %s %s: %w: the answer is larger than %d bytes: narrow the query or the projection", r.method, r.path, ErrBadResponse, c.opt.MaxResponseBytes)
	}
	reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
	c.log.Debug("nbi request", "method", r.method, "path", r.path, "status", resp.StatusCode, "reason", reason, "elapsed", time.Since(start))
	return &response{status: resp.StatusCode, reason: reason, header: resp.Header, body: b}, nil
}

func (c *Client) transportErr(ctx context.Context, r request, timeout time.Duration, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	where := c.base.Redacted() + r.path
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("genieacs: %s %s: no answer within %s: %w", r.method, where, timeout.Round(time.Millisecond), cerr)
		}
		return fmt.Errorf("genieacs: %s %s: %w", r.method, where, cerr)
	}
	return fmt.Errorf("genieacs: %s %s: %w: %w: check the NBI URL and that genieacs-nbi runs", r.method, where, ErrUnreachable, err)
}

// check turns a non-2xx answer into an *HTTPError.
func check(r request, resp *response) error {
	if resp.status >= 200 && resp.status < 300 {
		return nil
	}
	msg := strings.TrimSpace(string(resp.body))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	return &HTTPError{Method: r.method, Path: r.path, Status: resp.status, Reason: resp.reason, Message: msg}
}

// call is do followed by check.
func (c *Client) call(ctx context.Context, r request) (*response, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := check(r, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// list GETs a collection (devices, tasks, faults, files, presets,
// provisions) and returns its items and the total header.
func (c *Client) list(ctx context.Context, collection string, q Query) ([]json.RawMessage, int, error) {
	r := request{method: http.MethodGet, path: "/" + collection + "/", query: q.encode()}
	resp, err := c.call(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(resp.body, &items); err != nil {
		return nil, 0, fmt.Errorf("genieacs: GET %s: %w: the body is not a JSON array: %w", r.path, ErrBadResponse, err)
	}
	total := len(items)
	if resp.header.Get("total") != "" {
		if total, err = resp.total(); err != nil {
			return nil, 0, fmt.Errorf("genieacs: GET %s: %w", r.path, err)
		}
	}
	return items, total, nil
}

// Query selects items of a collection.
type Query struct {
	// Filter is the JSON text of a MongoDB-style query, e.g.
	// {"_deviceId._SerialNumber":"000001"}; it is sent as it is (GenieACS
	// answers 400 to one that is not JSON). Empty selects everything.
	Filter string
	// Projection lists the fields to return (e.g. "_deviceId",
	// "InternetGatewayDevice.DeviceInfo.SoftwareVersion"); nil returns
	// whole documents.
	Projection []string
	// Sort is the JSON text of a sort, e.g. {"_id":1}; empty is unsorted.
	Sort string
	// Skip and Limit page through the results; 0 means none.
	Skip, Limit int
}

func (q Query) encode() string {
	var parts []string
	if q.Filter != "" {
		parts = append(parts, "query="+queryEscape(q.Filter))
	}
	if len(q.Projection) > 0 {
		p := make([]string, len(q.Projection))
		for i, f := range q.Projection {
			p[i] = queryEscape(f)
		}
		parts = append(parts, "projection="+strings.Join(p, ","))
	}
	if q.Sort != "" {
		parts = append(parts, "sort="+queryEscape(q.Sort))
	}
	if q.Skip > 0 {
		parts = append(parts, "skip="+strconv.Itoa(q.Skip))
	}
	if q.Limit > 0 {
		parts = append(parts, "limit="+strconv.Itoa(q.Limit))
	}
	return strings.Join(parts, "&")
}

// Equal returns the JSON text of the filter {field: value}.
func Equal(field string, value any) string {
	b, err := json.Marshal(map[string]any{field: value})
	if err != nil {
		// A value that does not marshal (a channel, a func) is a bug of
		// the caller; a filter that matches nothing is the safe answer.
		return `{"_id":{"$in":[]}}`
	}
	return string(b)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff returns the wait after d.
func (c *Client) backoff(d time.Duration) time.Duration {
	return min(d*3/2, c.opt.MaxPollInterval)
}
