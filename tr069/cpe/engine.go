// Package cpe is a CWMP CPE engine: a parameter tree and the CPE end of
// CWMP sessions (Inform, the ACS's requests executed against the tree,
// connection requests with Digest auth, periodic informs). testlab builds
// its simulated gateways and set-top boxes on it, and it talks to real ACSs
// such as GenieACS.
package cpe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/internal/httpauth"
)

// Sentinel errors.
var (
	// ErrUnknownParam means the parameter is not defined in the tree.
	ErrUnknownParam = errors.New("cpe: unknown parameter")
	// ErrConfig means the Config is invalid.
	ErrConfig = errors.New("cpe: invalid config")
	// ErrACS means the ACS answered a session message with an error status
	// or an unexpected message.
	ErrACS = errors.New("cpe: ACS rejected the session")
	// ErrRunning means Run was called twice.
	ErrRunning = errors.New("cpe: engine already running")
	// ErrDropSession, returned by a hook, makes the engine drop the
	// session without answering the ACS (the TCP connection is closed).
	ErrDropSession = errors.New("cpe: session dropped")
	// ErrNotification means a parameter refuses active notification
	// (Tree.SetNotification; the ACS gets fault 9009).
	ErrNotification = errors.New("cpe: notification request rejected")
)

// Event codes used by the engine.
const (
	EventBootstrap         = "0 BOOTSTRAP"
	EventBoot              = "1 BOOT"
	EventPeriodic          = "2 PERIODIC"
	EventValueChange       = "4 VALUE CHANGE"
	EventConnectionRequest = "6 CONNECTION REQUEST"
	EventTransferComplete  = "7 TRANSFER COMPLETE"
	EventMReboot           = "M Reboot"
	EventMDownload         = "M Download"
	// EventScheduled and EventMScheduleInform report a ScheduleInform.
	EventScheduled       = "3 SCHEDULED"
	EventMScheduleInform = "M ScheduleInform"
	// EventDiagnosticsComplete reports a finished TR-143 diagnostics run
	// (see Engine.DiagnosticsComplete).
	EventDiagnosticsComplete = "8 DIAGNOSTICS COMPLETE"
	// EventMUpload reports an Upload (with EventTransferComplete).
	EventMUpload = "M Upload"
)

// Config configures an Engine.
type Config struct {
	// ACSURL is the ACS endpoint (required): the factory value of
	// <root>.ManagementServer.URL, which New writes into the tree if the
	// tree has that parameter. From then on the tree's value rules: when the
	// ACS (or the device) changes it, the next session goes to the new URL
	// with "0 BOOTSTRAP".
	ACSURL string
	// ACSUsername and ACSPassword authenticate to the ACS (Basic or Digest,
	// as the ACS asks); an empty username sends none, unless the tree's
	// ManagementServer.Username is set. A SetParameterValues of
	// ManagementServer.Username/Password replaces them.
	ACSUsername string
	ACSPassword secret.Secret
	// DeviceId identifies the CPE in Informs.
	DeviceId cwmp.DeviceIdStruct
	// ConnReqAddr is the listen address for connection requests, e.g.
	// "127.0.0.1:0"; empty means no listener.
	ConnReqAddr string
	// ConnReqURL, if set, is the URL advertised to the ACS instead of
	// "http://<listener address>/" (e.g. behind NAT or a proxy).
	ConnReqURL string
	// ConnReqUsername and ConnReqPassword are required (Digest) on
	// connection requests; an empty username accepts any request. A
	// SetParameterValues of ManagementServer.ConnectionRequestUsername or
	// ConnectionRequestPassword replaces them for the next request.
	ConnReqUsername string
	ConnReqPassword secret.Secret
	// PeriodicInformInterval, if positive, sends "2 PERIODIC" informs at
	// this interval until the tree's ManagementServer.PeriodicInformEnable
	// or PeriodicInformInterval change; zero means the tree's values rule
	// from the start (no periodic informs if the tree has neither).
	PeriodicInformInterval time.Duration
	// InformParams are sent in every Inform's ParameterList (missing ones
	// are skipped), plus <root>.ManagementServer.ConnectionRequestURL which
	// the engine maintains itself, the parameters marked Inform in the tree,
	// and the parameters with notification that changed.
	InformParams []string
	// Namespace is the cwmp namespace; empty means cwmp.NS10 (what most
	// deployed gateways speak).
	Namespace string
	// Logger, if nil, discards.
	Logger *slog.Logger
	// HTTPClient talks to the ACS; nil means a client with a 30s timeout.
	// Each session gets its own cookie jar.
	HTTPClient *http.Client
	// RetryBase is the first retry wait after a failed session (TR-069
	// 3.2.1.1 uses 5s, doubling, capped at RetryBase*512); 0 means 5s.
	RetryBase time.Duration
	// Now, if nil, is time.Now.
	Now func() time.Time

	// OnSet, if non-nil, is called after a SetParameterValues has been
	// applied; returning an error rolls it back (a *cwmp.Fault is sent to
	// the ACS as it is, any other error as 9002). Returning ErrDropSession
	// keeps the change and drops the session before the response is sent,
	// as a gateway whose uplink fails at that moment would.
	OnSet func(ctx context.Context, changed []cwmp.ParameterValueStruct) error
	// BeforeRPC, if non-nil, is called with every ACS request before the
	// engine acts on it. Returning ErrDropSession drops the session with
	// the request unapplied; any other error is sent as a fault.
	BeforeRPC func(ctx context.Context, m cwmp.Message) error
	// OnReboot, if non-nil, is called after the session that carried a
	// Reboot ends, to simulate the restart (delay, state reset); then the
	// engine sends the "1 BOOT" + "M Reboot" Inform.
	OnReboot func(ctx context.Context)
	// OnAddObject, if non-nil, is called after AddObject created instance
	// path+n+"."; an error deletes it again and is sent like OnSet's, but
	// ErrDropSession keeps it and drops the session unanswered.
	OnAddObject func(ctx context.Context, path string, instance uint32) error
	// OnDownload, if non-nil, performs a Download after the session; a
	// *cwmp.Fault error is reported in TransferComplete. Nil reports success.
	OnDownload func(ctx context.Context, d cwmp.Download) error
	// OnUpload, if non-nil, performs an Upload after the session; a
	// *cwmp.Fault error is reported in TransferComplete. Nil uploads with
	// HTTP PUT (Digest or Basic with the request's credentials): a
	// "1 Vendor Configuration File" as name=value lines of the tree (hidden
	// values blank), a "2 Vendor Log File" as a short log; other file
	// types fail with 9011.
	OnUpload func(ctx context.Context, u cwmp.Upload) error
}

// Engine is a CPE. Create it with New and start it with Run.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	tree *Tree
	ds   *httpauth.DigestServer
	init treeState // factory defaults

	sessMu  chan struct{} // one session at a time
	crWake  chan struct{} // buffered 1: coalesced connection requests
	kick    chan struct{} // buffered 1: state changed, Run re-evaluates
	ready   chan struct{}
	runOnce sync.Once
	crURL   string // set before ready is closed

	mu        sync.Mutex
	auth      *httpauth.Client
	crUser    string
	crPass    secret.Secret
	bootURL   string // ACS URL of the last successful BOOTSTRAP session
	events    []cwmp.EventStruct
	waiters   []chan struct{}
	running   bool
	timers    []*time.Timer
	followUp  []followUp
	pendingTC []*cwmp.TransferComplete
}

type followUp struct {
	kind     string // "reboot", "factory", "download", "upload", "func"
	key      string
	download cwmp.Download
	upload   cwmp.Upload
	fn       func(ctx context.Context) // kind "func" (Defer)
}

// New checks cfg and returns an engine for tree (nil means a new empty
// tree). It writes cfg.ACSURL into the tree's ManagementServer.URL, if
// the tree has that parameter, and keeps the tree as the factory defaults
// for FactoryReset.
func New(cfg Config, tree *Tree) (*Engine, error) {
	if !validACSURL(cfg.ACSURL) {
		return nil, fmt.Errorf("%w: ACSURL %q must be an http(s) URL", ErrConfig, cfg.ACSURL)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = cwmp.NS10
	}
	if !cwmp.KnownNamespace(cfg.Namespace) {
		return nil, fmt.Errorf("%w: unknown cwmp namespace %q", ErrConfig, cfg.Namespace)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if tree == nil {
		tree = NewTree()
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger, tree: tree, ds: httpauth.NewDigestServer("cwmp"),
		sessMu: make(chan struct{}, 1), crWake: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		ready: make(chan struct{}),
	}
	if _, ok := tree.Get(e.mgmt("URL")); ok {
		tree.setQuiet(e.mgmt("URL"), cfg.ACSURL, false)
	}
	e.init = tree.save()
	e.resetCredentials()
	tree.setObserver(e.observe)
	return e, nil
}

func validACSURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// resetCredentials sets the ACS and connection request credentials from
// the config, or the tree where the config has none.
func (e *Engine) resetCredentials() {
	user, pass := e.cfg.ACSUsername, e.cfg.ACSPassword
	if user == "" {
		user, pass = e.tree.Value(e.mgmt("Username")), secret.New(e.tree.Value(e.mgmt("Password")))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.auth = &httpauth.Client{Username: user, Password: pass}
	e.crUser, e.crPass = e.cfg.ConnReqUsername, e.cfg.ConnReqPassword
}

// Tree returns the engine's parameter tree.
func (e *Engine) Tree() *Tree { return e.tree }

// Ready is closed once Run listens for connection requests and
// ConnectionRequestURL is valid.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// ConnectionRequestURL returns the advertised connection request URL; it is
// empty before Ready is closed or when there is no listener.
func (e *Engine) ConnectionRequestURL() string {
	select {
	case <-e.ready:
		return e.crURL
	default:
		return ""
	}
}

// ACSURL returns the URL the next session goes to: the tree's
// ManagementServer.URL if it holds an http(s) URL, else Config.ACSURL.
func (e *Engine) ACSURL() string {
	if u := e.tree.Value(e.mgmt("URL")); validACSURL(u) {
		return u
	}
	return e.cfg.ACSURL
}

// root is "Device" for a TR-181/TR-106 tree, else "InternetGatewayDevice".
func (e *Engine) root() string {
	e.tree.mu.RLock()
	defer e.tree.mu.RUnlock()
	if !e.tree.objects["InternetGatewayDevice."] && e.tree.objects["Device."] {
		return "Device"
	}
	return "InternetGatewayDevice"
}

// mgmt returns the full name of a ManagementServer parameter.
func (e *Engine) mgmt(name string) string { return e.root() + ".ManagementServer." + name }

func (e *Engine) crParam() string { return e.mgmt("ConnectionRequestURL") }

// observe hears of every local value change in the tree.
func (e *Engine) observe(name string, notify int) {
	if notify == 2 || strings.HasSuffix(name, ".ManagementServer.URL") ||
		strings.HasSuffix(name, ".ManagementServer.PeriodicInformEnable") ||
		strings.HasSuffix(name, ".ManagementServer.PeriodicInformInterval") {
		e.wake()
	}
}

// wake makes Run re-evaluate what to send.
func (e *Engine) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// queue adds events for the next session and returns a channel that is
// closed once an Inform carrying them has been accepted by the ACS.
func (e *Engine) queue(events ...cwmp.EventStruct) <-chan struct{} {
	ch := make(chan struct{})
	e.mu.Lock()
	for _, ev := range events {
		e.events = addEvent(e.events, ev)
	}
	e.waiters = append(e.waiters, ch)
	e.mu.Unlock()
	e.wake()
	return ch
}

// due reports whether Run should open a session now.
func (e *Engine) due() bool {
	e.mu.Lock()
	n, boot := len(e.events), e.bootURL
	e.mu.Unlock()
	if n > 0 || boot != e.ACSURL() {
		return true
	}
	_, active := e.tree.activeChanged()
	return active
}

// periodicInterval returns the current periodic inform interval, 0 for none.
// seen is the tree's setting when Run started: until it changes, a positive
// Config.PeriodicInformInterval rules.
func (e *Engine) periodicInterval(seen string) time.Duration {
	en, iv := e.tree.Value(e.mgmt("PeriodicInformEnable")), e.tree.Value(e.mgmt("PeriodicInformInterval"))
	if e.cfg.PeriodicInformInterval > 0 && en+"/"+iv == seen {
		return e.cfg.PeriodicInformInterval
	}
	_, hasEn := e.tree.Get(e.mgmt("PeriodicInformEnable"))
	_, hasIv := e.tree.Get(e.mgmt("PeriodicInformInterval"))
	if !hasEn && !hasIv {
		return e.cfg.PeriodicInformInterval
	}
	if hasEn {
		if b, err := cwmp.ParseBool(en); err != nil || !b {
			return 0
		}
	}
	if n, err := strconv.ParseUint(strings.TrimSpace(iv), 10, 32); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if !hasIv {
		return e.cfg.PeriodicInformInterval
	}
	return 0
}

// Run listens for connection requests, sends the "0 BOOTSTRAP" + "1 BOOT"
// Inform (retrying with backoff), then periodic informs, "4 VALUE CHANGE"
// informs and sessions for connection requests, scheduled informs and
// diagnostics, until ctx ends. It returns nil when ctx ends, or an error if
// the listener cannot be opened.
func (e *Engine) Run(ctx context.Context) error {
	first := false
	e.runOnce.Do(func() { first = true })
	if !first {
		return ErrRunning
	}
	e.crURL = e.cfg.ConnReqURL
	if e.cfg.ConnReqAddr != "" {
		ln, err := net.Listen("tcp", e.cfg.ConnReqAddr)
		if err != nil {
			return fmt.Errorf("cpe: connection request listener on %s: %w", e.cfg.ConnReqAddr, err)
		}
		if e.crURL == "" {
			e.crURL = "http://" + ln.Addr().String() + "/"
		}
		srv := &http.Server{Handler: http.HandlerFunc(e.serveCR), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	if e.crURL != "" {
		e.tree.setQuiet(e.crParam(), e.crURL, true)
	}
	e.mu.Lock()
	e.running = true
	e.events = addEvent(e.events, cwmp.EventStruct{EventCode: EventBoot})
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = false
		for _, t := range e.timers {
			t.Stop()
		}
		e.timers = nil
		e.mu.Unlock()
	}()
	close(e.ready)

	seen := e.tree.Value(e.mgmt("PeriodicInformEnable")) + "/" + e.tree.Value(e.mgmt("PeriodicInformInterval"))
	periodic := time.NewTimer(time.Hour)
	periodic.Stop()
	defer periodic.Stop()
	var armed time.Duration
	retries := 0
	var retry <-chan time.Time
	retryTimer := time.NewTimer(time.Hour)
	retryTimer.Stop()
	defer retryTimer.Stop()
	for {
		if retry == nil && e.due() {
			err := e.session(ctx, nil, retries)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrDropSession) {
				// A simulated link cut is not the ACS's failure: the next
				// connection request or event starts a session at once.
				retries = 0
			} else if err != nil {
				retries++
				wait := e.backoff(retries)
				e.log.Warn("CWMP session failed", "err", err, "retry_in", wait, "retry_count", retries)
				retryTimer.Reset(wait)
				retry = retryTimer.C
			} else {
				retries = 0
				e.queueFollowUps(e.afterSession(ctx))
				continue
			}
		}
		if d := e.periodicInterval(seen); d != armed {
			periodic.Stop()
			if d > 0 {
				periodic.Reset(d)
			}
			armed = d
			e.log.Debug("periodic inform interval", "interval", d)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
			retry = nil
		case <-e.crWake:
			// A connection request comes from the ACS, which is
			// therefore back: it ends a retry wait (the retry count is
			// kept, so a session that fails again waits longer).
			e.queueFollowUps([]cwmp.EventStruct{{EventCode: EventConnectionRequest}})
			if retry != nil {
				retryTimer.Stop()
				retry = nil
			}
		case <-e.kick:
		case <-periodic.C:
			periodic.Reset(armed)
			e.queueFollowUps([]cwmp.EventStruct{{EventCode: EventPeriodic}})
		}
	}
}

// queueFollowUps queues events without a waiter.
func (e *Engine) queueFollowUps(events []cwmp.EventStruct) {
	if len(events) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range events {
		e.events = addEvent(e.events, ev)
	}
}

func addEvent(list []cwmp.EventStruct, ev cwmp.EventStruct) []cwmp.EventStruct {
	for _, x := range list {
		if x == ev {
			return list
		}
	}
	return append(list, ev)
}

// backoff returns the TR-069 3.2.1.1 retry wait for retry n (1-based):
// random in [m*2^(n-1), m*2^n), exponent capped at 9.
func (e *Engine) backoff(n int) time.Duration {
	if n > 10 {
		n = 10
	}
	lo := e.cfg.RetryBase << (n - 1)
	return lo + time.Duration(rand.Int64N(int64(lo)))
}

// Inform runs one session now with events (e.g. "4 VALUE CHANGE") and
// whatever else is pending ("0 BOOTSTRAP" before the first contact with an
// ACS URL, changed parameters with notification, queued events); it waits
// for a running session to finish first. Follow-ups (reboot, transfer
// completion) are sent in further sessions before Inform returns.
func (e *Engine) Inform(ctx context.Context, events ...cwmp.EventStruct) error {
	if err := e.session(ctx, events, 0); err != nil {
		return err
	}
	for {
		e.queueFollowUps(e.afterSession(ctx))
		e.mu.Lock()
		n := len(e.events)
		e.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := e.session(ctx, nil, 0); err != nil {
			return err
		}
	}
}

// DiagnosticsComplete reports the end of a diagnostics run (TR-143 or
// IPPing) with "8 DIAGNOSTICS COMPLETE": Run opens a session at once. It
// returns when the ACS has accepted that Inform, or with ctx's error. If
// Run is not running, it runs the session itself.
func (e *Engine) DiagnosticsComplete(ctx context.Context) error {
	done := e.queue(cwmp.EventStruct{EventCode: EventDiagnosticsComplete})
	e.mu.Lock()
	running := e.running
	e.mu.Unlock()
	if !running {
		if err := e.Inform(ctx); err != nil {
			return fmt.Errorf("cpe: diagnostics complete inform: %w", err)
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cpe: diagnostics complete inform: %w", ctx.Err())
	}
}

// Defer runs fn once the current CWMP session has ended (or, when no session
// is in progress, once the next one has ended), the way TR-069 wants a CPE
// to start a diagnostics test that the ACS requested: "the CPE SHOULD wait
// until after completion of the communication session with the ACS". Call
// it from a Config.OnSet or OnAddObject hook. fn runs on the engine's
// goroutine with Run's (or Inform's) context, in order with the session's
// other follow-ups (reboot, transfers), so it must return promptly: start
// long work in a goroutine and report its end with DiagnosticsComplete or
// Inform. If the session fails, fn waits for the next successful one.
func (e *Engine) Defer(fn func(ctx context.Context)) {
	if fn == nil {
		return
	}
	e.addFollowUp(followUp{kind: "func", fn: fn})
}

// afterSession performs what the last session asked for (reboot, factory
// reset, transfers, deferred functions) and returns the events to report in
// the next Inform.
func (e *Engine) afterSession(ctx context.Context) []cwmp.EventStruct {
	e.mu.Lock()
	fus := e.followUp
	e.followUp = nil
	e.mu.Unlock()
	var events []cwmp.EventStruct
	for _, f := range fus {
		switch f.kind {
		case "reboot":
			if e.cfg.OnReboot != nil {
				e.cfg.OnReboot(ctx)
			}
			events = addEvent(events, cwmp.EventStruct{EventCode: EventBoot})
			events = addEvent(events, cwmp.EventStruct{EventCode: EventMReboot, CommandKey: f.key})
		case "factory":
			e.tree.restore(e.init)
			if e.crURL != "" {
				e.tree.setQuiet(e.crParam(), e.crURL, true)
			}
			e.resetCredentials()
			e.mu.Lock()
			e.bootURL = "" // the next Inform is a BOOTSTRAP
			e.mu.Unlock()
			events = addEvent(events, cwmp.EventStruct{EventCode: EventBoot})
		case "download":
			tc := &cwmp.TransferComplete{CommandKey: f.download.CommandKey, StartTime: e.cfg.Now()}
			var err error
			if e.cfg.OnDownload != nil {
				err = e.cfg.OnDownload(ctx, f.download)
			}
			tc.FaultStruct = transferFault(err, cwmp.FaultDownloadFailure, "download failed")
			tc.CompleteTime = e.cfg.Now()
			e.addTC(tc)
			events = addEvent(events, cwmp.EventStruct{EventCode: EventTransferComplete})
			events = addEvent(events, cwmp.EventStruct{EventCode: EventMDownload, CommandKey: f.download.CommandKey})
		case "upload":
			tc := &cwmp.TransferComplete{CommandKey: f.upload.CommandKey, StartTime: e.cfg.Now()}
			var err error
			if e.cfg.OnUpload != nil {
				err = e.cfg.OnUpload(ctx, f.upload)
			} else {
				err = e.upload(ctx, f.upload)
			}
			if err != nil {
				e.log.Warn("upload failed", "url", redactURL(f.upload.URL), "file_type", f.upload.FileType, "err", err)
			}
			tc.FaultStruct = transferFault(err, cwmp.FaultUploadFailure, "upload failed")
			tc.CompleteTime = e.cfg.Now()
			e.addTC(tc)
			events = addEvent(events, cwmp.EventStruct{EventCode: EventTransferComplete})
			events = addEvent(events, cwmp.EventStruct{EventCode: EventMUpload, CommandKey: f.upload.CommandKey})
		case "func":
			f.fn(ctx)
		}
	}
	return events
}

func (e *Engine) addTC(tc *cwmp.TransferComplete) {
	e.mu.Lock()
	e.pendingTC = append(e.pendingTC, tc)
	e.mu.Unlock()
}

func transferFault(err error, code int, msg string) cwmp.FaultStruct {
	if err == nil {
		return cwmp.FaultStruct{}
	}
	var cf *cwmp.Fault
	if errors.As(err, &cf) {
		return cwmp.FaultStruct{FaultCode: cf.Code, FaultString: cf.String}
	}
	return cwmp.FaultStruct{FaultCode: code, FaultString: msg}
}

// redactURL drops any userinfo from a URL for logging.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

func (e *Engine) lock(ctx context.Context) error {
	select {
	case e.sessMu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) unlock() { <-e.sessMu }

// sess is one HTTP conversation with the ACS.
type sess struct {
	e      *Engine
	client *http.Client
	auth   *httpauth.Client
	url    string
	seq    int
}

func (s *sess) post(ctx context.Context, env *cwmp.Envelope) (*cwmp.Envelope, error) {
	var body []byte
	header := http.Header{}
	if env != nil {
		var err error
		if body, err = cwmp.Encode(env); err != nil {
			return nil, err
		}
		header.Set("Content-Type", `text/xml; charset="utf-8"`)
		header.Set("SOAPAction", `""`)
	}
	resp, err := s.auth.DoWith(ctx, s.client, http.MethodPost, s.url, body, header)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("cpe: reading ACS response: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return nil, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("%w: HTTP 401 (Unauthorized): check ManagementServer.Username and Password", ErrACS)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: HTTP %d (%s)", ErrACS, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := cwmp.Decoder{}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil {
		dec.Charset = params["charset"]
	}
	out, err := dec.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("cpe: ACS response: %w", err)
	}
	if out.Body == nil {
		return nil, nil
	}
	return out, nil
}

func (s *sess) nextID() string {
	s.seq++
	return "cpe-" + strconv.Itoa(s.seq)
}

// informParams builds an Inform's ParameterList: the configured and forced
// inform parameters, then the changed ones with notification.
func (e *Engine) informParams(changed []cwmp.ParameterValueStruct) []cwmp.ParameterValueStruct {
	names := append([]string(nil), e.cfg.InformParams...)
	names = append(names, e.crParam())
	e.tree.mu.RLock()
	var forced []string
	for n, p := range e.tree.params {
		if p.Inform {
			forced = append(forced, n)
		}
	}
	e.tree.mu.RUnlock()
	sort.Slice(forced, func(i, j int) bool { return pathLess(forced[i], forced[j]) })
	names = append(names, forced...)
	seen := map[string]bool{}
	var out []cwmp.ParameterValueStruct
	for _, pv := range changed {
		seen[pv.Name] = true
	}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		e.tree.mu.RLock()
		p, ok := e.tree.params[n]
		if ok {
			out = append(out, cwmp.ParameterValueStruct{Name: p.Name, Value: p.wireValue(), Type: p.Type})
		}
		e.tree.mu.RUnlock()
	}
	return append(out, changed...)
}

// session runs one CWMP session reporting events plus the pending ones.
func (e *Engine) session(ctx context.Context, extra []cwmp.EventStruct, retryCount int) error {
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.unlock()

	acsURL := e.ACSURL()
	e.mu.Lock()
	queued, waiters := e.events, e.waiters
	e.events, e.waiters = nil, nil
	bootstrap := e.bootURL != acsURL
	auth := e.auth
	e.mu.Unlock()
	changed, _ := e.tree.takeChanged()
	ok := false
	defer func() {
		if ok {
			for _, w := range waiters {
				close(w)
			}
			return
		}
		e.tree.putBackChanged(changed)
		e.mu.Lock()
		for _, ev := range queued {
			e.events = addEvent(e.events, ev)
		}
		e.waiters = append(e.waiters, waiters...)
		e.mu.Unlock()
	}()

	var events []cwmp.EventStruct
	if bootstrap {
		events = append(events, cwmp.EventStruct{EventCode: EventBootstrap})
	}
	for _, ev := range append(append([]cwmp.EventStruct(nil), extra...), queued...) {
		events = addEvent(events, ev)
	}
	if len(changed) > 0 {
		events = addEvent(events, cwmp.EventStruct{EventCode: EventValueChange})
	}

	jar, _ := cookiejar.New(nil)
	c := *e.cfg.HTTPClient
	c.Jar = jar
	s := &sess{e: e, client: &c, auth: auth, url: acsURL}
	ns := e.cfg.Namespace

	inform := &cwmp.Inform{
		DeviceId: e.cfg.DeviceId, Event: events, MaxEnvelopes: 1, CurrentTime: e.cfg.Now(), RetryCount: retryCount,
		ParameterList: e.informParams(changed),
	}
	codes := make([]string, 0, len(events))
	for _, ev := range events {
		codes = append(codes, ev.EventCode)
	}
	e.log.Info("inform", "device", e.cfg.DeviceId.SerialNumber, "events", strings.Join(codes, ","), "acs", redactURL(acsURL))
	resp, err := s.post(ctx, &cwmp.Envelope{Namespace: ns, ID: s.nextID(), Body: inform})
	if err != nil {
		return fmt.Errorf("cpe: inform: %w", err)
	}
	if resp == nil {
		return fmt.Errorf("%w: empty answer to Inform", ErrACS)
	}
	if f, ok := resp.Body.(*cwmp.Fault); ok {
		return fmt.Errorf("%w: inform: %w", ErrACS, f)
	}
	if _, ok := resp.Body.(*cwmp.InformResponse); !ok {
		return fmt.Errorf("%w: %s in answer to Inform", ErrACS, resp.Body.MethodName())
	}
	if cwmp.KnownNamespace(resp.Namespace) {
		ns = resp.Namespace
	}
	// The Inform was accepted: its events and changes are delivered.
	ok = true
	if bootstrap {
		e.mu.Lock()
		e.bootURL = acsURL
		e.mu.Unlock()
	}

	e.mu.Lock()
	tcs := e.pendingTC
	e.pendingTC = nil
	e.mu.Unlock()
	for i, tc := range tcs {
		r, err := s.post(ctx, &cwmp.Envelope{Namespace: ns, ID: s.nextID(), Body: tc})
		if err == nil && (r == nil || r.Body.MethodName() != "TransferCompleteResponse") {
			err = fmt.Errorf("%w: TransferComplete not acknowledged", ErrACS)
		}
		if err != nil {
			e.mu.Lock()
			e.pendingTC = append(tcs[i:], e.pendingTC...)
			e.events = addEvent(e.events, cwmp.EventStruct{EventCode: EventTransferComplete})
			e.mu.Unlock()
			return fmt.Errorf("cpe: transfer complete: %w", err)
		}
	}

	var out *cwmp.Envelope // nil: empty POST
	for {
		req, err := s.post(ctx, out)
		if err != nil {
			return err
		}
		if req == nil {
			return nil // 204 or empty: session over
		}
		msg := e.handle(ctx, req.Body)
		if _, ok := msg.(dropped); ok {
			// The link fails before the answer leaves: close the
			// connection and abandon the session.
			s.client.CloseIdleConnections()
			e.log.Warn("session dropped", "device", e.cfg.DeviceId.SerialNumber, "during", req.Body.MethodName())
			return fmt.Errorf("%w during %s", ErrDropSession, req.Body.MethodName())
		}
		out = &cwmp.Envelope{Namespace: ns, ID: req.ID, Body: msg}
	}
}

// dropped is handle's answer when the session is to be dropped unanswered.
type dropped struct{}

func (dropped) MethodName() string { return "(dropped)" }

// methods lists the RPCs the engine answers (GetRPCMethods).
func methods() []string {
	return []string{
		"GetRPCMethods", "GetParameterValues", "SetParameterValues", "GetParameterNames",
		"SetParameterAttributes", "GetParameterAttributes", "AddObject", "DeleteObject",
		"Reboot", "FactoryReset", "Download", "Upload", "ScheduleInform",
		"GetQueuedTransfers", "GetAllQueuedTransfers", "CancelTransfer"}
}

// handle executes one ACS request against the tree.
func (e *Engine) handle(ctx context.Context, m cwmp.Message) cwmp.Message {
	if e.cfg.BeforeRPC != nil {
		if err := e.cfg.BeforeRPC(ctx, m); errors.Is(err, ErrDropSession) {
			return dropped{}
		} else if err != nil {
			return asFault(err)
		}
	}
	switch r := m.(type) {
	case *cwmp.GetRPCMethods:
		return &cwmp.GetRPCMethodsResponse{MethodList: methods()}
	case *cwmp.GetParameterValues:
		list, f := e.tree.getValues(r.ParameterNames)
		if f != nil {
			return f
		}
		return &cwmp.GetParameterValuesResponse{ParameterList: list}
	case *cwmp.GetParameterNames:
		list, f := e.tree.getNames(r.ParameterPath, r.NextLevel)
		if f != nil {
			return f
		}
		return &cwmp.GetParameterNamesResponse{ParameterList: list}
	case *cwmp.SetParameterValues:
		for _, pv := range r.ParameterList {
			if pv.Name == e.mgmt("URL") && !validACSURL(pv.Value) {
				return &cwmp.Fault{Code: cwmp.FaultInvalidParameterValue, String: cwmp.FaultMeaning(cwmp.FaultInvalidParameterValue),
					SetParameterValuesFaults: []cwmp.SetParameterValuesFault{{ParameterName: pv.Name, FaultCode: cwmp.FaultInvalidParameterValue, FaultString: "the ACS URL must be an http or https URL"}}}
			}
		}
		old, f := e.tree.applySet(r.ParameterList)
		if f != nil {
			return f
		}
		if e.cfg.OnSet != nil {
			if err := e.cfg.OnSet(ctx, r.ParameterList); errors.Is(err, ErrDropSession) {
				e.setKey(r.ParameterKey)
				e.applyManagement(r.ParameterList)
				return dropped{}
			} else if err != nil {
				e.tree.rollback(old)
				return asFault(err)
			}
		}
		e.setKey(r.ParameterKey)
		e.applyManagement(r.ParameterList)
		return &cwmp.SetParameterValuesResponse{Status: 0}
	case *cwmp.SetParameterAttributes:
		list := make([]attrChange, 0, len(r.ParameterList))
		for _, a := range r.ParameterList {
			if a.NotificationChange && a.Notification > 2 && a.Notification <= 6 {
				return fault(cwmp.FaultNotificationRejected, fmt.Sprintf("lightweight notification %d is not supported (%s)", a.Notification, a.Name))
			}
			list = append(list, attrChange{name: a.Name, notifyChange: a.NotificationChange, notify: a.Notification, aclChange: a.AccessListChange, acl: a.AccessList})
		}
		if f := e.tree.setAttributes(list); f != nil {
			return f
		}
		return &cwmp.SetParameterAttributesResponse{}
	case *cwmp.GetParameterAttributes:
		list, f := e.tree.getAttributes(r.ParameterNames)
		if f != nil {
			return f
		}
		resp := &cwmp.GetParameterAttributesResponse{ParameterList: make([]cwmp.ParameterAttributeStruct, 0, len(list))}
		for _, a := range list {
			resp.ParameterList = append(resp.ParameterList, cwmp.ParameterAttributeStruct{Name: a.name, Notification: a.notify, AccessList: a.acl})
		}
		return resp
	case *cwmp.AddObject:
		n, f := e.tree.addObject(r.ObjectName)
		if f != nil {
			return f
		}
		if e.cfg.OnAddObject != nil {
			if err := e.cfg.OnAddObject(ctx, r.ObjectName, n); errors.Is(err, ErrDropSession) {
				e.setKey(r.ParameterKey)
				return dropped{}
			} else if err != nil {
				_ = e.tree.deleteObject(r.ObjectName + strconv.FormatUint(uint64(n), 10) + ".")
				return asFault(err)
			}
		}
		e.setKey(r.ParameterKey)
		return &cwmp.AddObjectResponse{InstanceNumber: n}
	case *cwmp.DeleteObject:
		if f := e.tree.deleteObject(r.ObjectName); f != nil {
			return f
		}
		e.setKey(r.ParameterKey)
		return &cwmp.DeleteObjectResponse{}
	case *cwmp.Reboot:
		e.addFollowUp(followUp{kind: "reboot", key: r.CommandKey})
		return &cwmp.RebootResponse{}
	case *cwmp.FactoryReset:
		e.addFollowUp(followUp{kind: "factory"})
		return &cwmp.FactoryResetResponse{}
	case *cwmp.Download:
		e.addFollowUp(followUp{kind: "download", key: r.CommandKey, download: *r})
		return &cwmp.DownloadResponse{Status: 1}
	case *cwmp.Upload:
		e.addFollowUp(followUp{kind: "upload", key: r.CommandKey, upload: *r})
		return &cwmp.UploadResponse{Status: 1}
	case *cwmp.ScheduleInform:
		if r.DelaySeconds == 0 {
			return fault(cwmp.FaultInvalidArguments, "ScheduleInform needs DelaySeconds greater than 0")
		}
		e.scheduleInform(time.Duration(r.DelaySeconds)*time.Second, r.CommandKey)
		return &cwmp.ScheduleInformResponse{}
	case *cwmp.GetQueuedTransfers:
		resp := &cwmp.GetQueuedTransfersResponse{}
		for _, f := range e.transfers() {
			resp.TransferList = append(resp.TransferList, cwmp.QueuedTransferStruct{CommandKey: f.key, State: 1})
		}
		return resp
	case *cwmp.GetAllQueuedTransfers:
		resp := &cwmp.GetAllQueuedTransfersResponse{}
		for _, f := range e.transfers() {
			q := cwmp.AllQueuedTransferStruct{CommandKey: f.key, State: 1, IsDownload: f.kind == "download"}
			if q.IsDownload {
				q.FileType, q.FileSize, q.TargetFileName = f.download.FileType, f.download.FileSize, f.download.TargetFileName
			} else {
				q.FileType = f.upload.FileType
			}
			resp.TransferList = append(resp.TransferList, q)
		}
		return resp
	case *cwmp.CancelTransfer:
		e.mu.Lock()
		defer e.mu.Unlock()
		for i, f := range e.followUp {
			if (f.kind == "download" || f.kind == "upload") && f.key == r.CommandKey {
				e.followUp = append(e.followUp[:i:i], e.followUp[i+1:]...)
				return &cwmp.CancelTransferResponse{}
			}
		}
		return fault(cwmp.FaultCancelTransferNotPermitted, "no queued transfer with CommandKey "+strconv.Quote(r.CommandKey))
	}
	return cwmp.NewFault(cwmp.FaultMethodNotSupported, m.MethodName()+" is not supported")
}

func (e *Engine) addFollowUp(f followUp) {
	e.mu.Lock()
	e.followUp = append(e.followUp, f)
	e.mu.Unlock()
}

// transfers lists the queued (not yet started) transfers.
func (e *Engine) transfers() []followUp {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []followUp
	for _, f := range e.followUp {
		if f.kind == "download" || f.kind == "upload" {
			out = append(out, f)
		}
	}
	return out
}

// scheduleInform queues "3 SCHEDULED" + "M ScheduleInform" after d.
func (e *Engine) scheduleInform(d time.Duration, key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := time.AfterFunc(d, func() {
		e.queue(cwmp.EventStruct{EventCode: EventScheduled}, cwmp.EventStruct{EventCode: EventMScheduleInform, CommandKey: key})
	})
	e.timers = append(e.timers, t)
}

// applyManagement takes effect of ManagementServer changes made by the ACS.
// Credentials come from the request (a device may blank its readable copy
// of a password).
func (e *Engine) applyManagement(list []cwmp.ParameterValueStruct) {
	prefix := e.mgmt("")
	wake := false
	e.mu.Lock()
	for _, pv := range list {
		name, ok := strings.CutPrefix(pv.Name, prefix)
		if !ok {
			continue
		}
		switch name {
		case "Username":
			e.auth = &httpauth.Client{Username: pv.Value, Password: e.auth.Password}
		case "Password":
			e.auth = &httpauth.Client{Username: e.auth.Username, Password: secret.New(pv.Value)}
		case "ConnectionRequestUsername":
			e.crUser = pv.Value
		case "ConnectionRequestPassword":
			e.crPass = secret.New(pv.Value)
		case "URL", "PeriodicInformEnable", "PeriodicInformInterval":
			wake = true
		}
	}
	e.mu.Unlock()
	if wake {
		e.wake()
	}
}

func asFault(err error) *cwmp.Fault {
	var f *cwmp.Fault
	if errors.As(err, &f) {
		return f
	}
	return cwmp.NewFault(cwmp.FaultInternalError, "")
}

// setKey records a ParameterKey in <root>.ManagementServer.ParameterKey if
// the tree has that parameter. Only successful SetParameterValues,
// AddObject and DeleteObject call it.
func (e *Engine) setKey(key string) {
	e.tree.setQuiet(e.mgmt("ParameterKey"), key, false)
}

// serveCR answers connection requests: Digest auth, then a coalesced session.
func (e *Engine) serveCR(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET")
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	e.mu.Lock()
	user, pass := e.crUser, e.crPass
	e.mu.Unlock()
	if user != "" {
		if ok, stale := e.ds.Check(r, user, pass); !ok {
			if r.Header.Get("Authorization") != "" && !stale {
				e.log.Warn("connection request with wrong credentials", "remote", r.RemoteAddr)
			}
			w.Header().Set("WWW-Authenticate", e.ds.Challenge(stale))
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	select {
	case e.crWake <- struct{}{}:
	default: // one already pending: coalesce
	}
	e.log.Debug("connection request accepted", "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusOK)
}
