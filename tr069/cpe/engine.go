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
)

// Config configures an Engine.
type Config struct {
	// ACSURL is the ACS endpoint (required).
	ACSURL string
	// ACSUsername and ACSPassword authenticate to the ACS (Basic or Digest,
	// as the ACS asks); an empty username sends none.
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
	// connection requests; an empty username accepts any request.
	ConnReqUsername string
	ConnReqPassword secret.Secret
	// PeriodicInformInterval, if positive, sends "2 PERIODIC" informs.
	PeriodicInformInterval time.Duration
	// InformParams are sent in every Inform's ParameterList (missing ones
	// are skipped), plus <root>.ManagementServer.ConnectionRequestURL which
	// the engine maintains itself.
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
	// the ACS as it is, any other error as 9002).
	OnSet func(ctx context.Context, changed []cwmp.ParameterValueStruct) error
	// OnReboot, if non-nil, is called after the session that carried a
	// Reboot ends, to simulate the restart (delay, state reset); then the
	// engine sends the "1 BOOT" + "M Reboot" Inform.
	OnReboot func(ctx context.Context)
	// OnAddObject, if non-nil, is called after AddObject created instance
	// path+n+"."; an error deletes it again and is sent like OnSet's.
	OnAddObject func(ctx context.Context, path string, instance uint32) error
	// OnDownload, if non-nil, performs a Download after the session; a
	// *cwmp.Fault error is reported in TransferComplete. Nil reports success.
	OnDownload func(ctx context.Context, d cwmp.Download) error
}

// Engine is a CPE. Create it with New and start it with Run.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	tree *Tree
	ds   *httpauth.DigestServer
	init []Param // factory defaults

	sessMu    chan struct{} // one session at a time
	crWake    chan struct{} // buffered 1: coalesced connection requests
	ready     chan struct{}
	runOnce   sync.Once
	crURL     string // set before ready is closed
	auth      *httpauth.Client
	mu        sync.Mutex
	followUp  []followUp
	pendingTC []*cwmp.TransferComplete
}

type followUp struct {
	kind     string // "reboot", "factory", "download"
	key      string
	download cwmp.Download
}

// New checks cfg and returns an engine for tree (nil means a new empty tree).
func New(cfg Config, tree *Tree) (*Engine, error) {
	u, err := url.Parse(cfg.ACSURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
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
		init:   tree.Snapshot(),
		sessMu: make(chan struct{}, 1), crWake: make(chan struct{}, 1), ready: make(chan struct{}),
		auth: &httpauth.Client{Username: cfg.ACSUsername, Password: cfg.ACSPassword},
	}
	return e, nil
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

func (e *Engine) crParam() string {
	root := "InternetGatewayDevice"
	hasIGD, hasDev := false, false
	e.tree.mu.RLock()
	for n := range e.tree.params {
		if strings.HasPrefix(n, "InternetGatewayDevice.") {
			hasIGD = true
		} else if strings.HasPrefix(n, "Device.") {
			hasDev = true
		}
	}
	e.tree.mu.RUnlock()
	if hasDev && !hasIGD {
		root = "Device"
	}
	return root + ".ManagementServer.ConnectionRequestURL"
}

// Run listens for connection requests, sends the "0 BOOTSTRAP" + "1 BOOT"
// Inform (retrying with backoff), then periodic informs and sessions for
// connection requests, until ctx ends. It returns nil when ctx ends, or an
// error if the listener cannot be opened.
func (e *Engine) Run(ctx context.Context) error {
	first := false
	e.runOnce.Do(func() { first = true })
	if !first {
		return ErrRunning
	}
	var srv *http.Server
	e.crURL = e.cfg.ConnReqURL
	if e.cfg.ConnReqAddr != "" {
		ln, err := net.Listen("tcp", e.cfg.ConnReqAddr)
		if err != nil {
			return fmt.Errorf("cpe: connection request listener on %s: %w", e.cfg.ConnReqAddr, err)
		}
		if e.crURL == "" {
			e.crURL = "http://" + ln.Addr().String() + "/"
		}
		srv = &http.Server{Handler: http.HandlerFunc(e.serveCR), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	if e.crURL != "" {
		name := e.crParam()
		if _, ok := e.tree.Get(name); ok {
			_ = e.tree.SetValue(name, e.crURL)
		} else {
			e.tree.Set(Param{Name: name, Value: e.crURL, Type: "xsd:string"})
		}
	}
	close(e.ready)

	pending := []cwmp.EventStruct{{EventCode: EventBootstrap}, {EventCode: EventBoot}}
	retries := 0
	var periodic <-chan time.Time
	if e.cfg.PeriodicInformInterval > 0 {
		tk := time.NewTicker(e.cfg.PeriodicInformInterval)
		defer tk.Stop()
		periodic = tk.C
	}
	var retry <-chan time.Time
	retryTimer := time.NewTimer(time.Hour)
	retryTimer.Stop()
	defer retryTimer.Stop()
	for {
		if len(pending) > 0 && retry == nil {
			err := e.session(ctx, pending, retries)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				retries++
				wait := e.backoff(retries)
				e.log.Warn("CWMP session failed", "err", err, "retry_in", wait, "retry_count", retries)
				retryTimer.Reset(wait)
				retry = retryTimer.C
			} else {
				retries = 0
				pending = nil
				pending = append(pending, e.afterSession(ctx)...)
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
			retry = nil
		case <-e.crWake:
			pending = addEvent(pending, cwmp.EventStruct{EventCode: EventConnectionRequest})
		case <-periodic:
			pending = addEvent(pending, cwmp.EventStruct{EventCode: EventPeriodic})
		}
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

// Inform runs one session now with events (e.g. "4 VALUE CHANGE"); it waits
// for a running session to finish first. Follow-ups (reboot, download
// completion) are sent in further sessions before Inform returns.
func (e *Engine) Inform(ctx context.Context, events ...cwmp.EventStruct) error {
	if err := e.session(ctx, events, 0); err != nil {
		return err
	}
	for more := e.afterSession(ctx); len(more) > 0; more = e.afterSession(ctx) {
		if err := e.session(ctx, more, 0); err != nil {
			return err
		}
	}
	return nil
}

// afterSession performs what the last session asked for (reboot, factory
// reset, download) and returns the events to report in the next Inform.
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
				name := e.crParam()
				if _, ok := e.tree.Get(name); ok {
					_ = e.tree.SetValue(name, e.crURL)
				} else {
					e.tree.Set(Param{Name: name, Value: e.crURL, Type: "xsd:string"})
				}
			}
			events = addEvent(events, cwmp.EventStruct{EventCode: EventBootstrap})
			events = addEvent(events, cwmp.EventStruct{EventCode: EventBoot})
		case "download":
			start := e.cfg.Now()
			tc := &cwmp.TransferComplete{CommandKey: f.download.CommandKey, StartTime: start}
			if e.cfg.OnDownload != nil {
				if err := e.cfg.OnDownload(ctx, f.download); err != nil {
					var cf *cwmp.Fault
					if errors.As(err, &cf) {
						tc.FaultStruct = cwmp.FaultStruct{FaultCode: cf.Code, FaultString: cf.String}
					} else {
						tc.FaultStruct = cwmp.FaultStruct{FaultCode: cwmp.FaultDownloadFailure, FaultString: "download failed"}
					}
				}
			}
			tc.CompleteTime = e.cfg.Now()
			e.mu.Lock()
			e.pendingTC = append(e.pendingTC, tc)
			e.mu.Unlock()
			events = addEvent(events, cwmp.EventStruct{EventCode: EventTransferComplete})
			events = addEvent(events, cwmp.EventStruct{EventCode: EventMDownload, CommandKey: f.download.CommandKey})
		}
	}
	return events
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
	resp, err := s.e.auth.DoWith(ctx, s.client, http.MethodPost, s.e.cfg.ACSURL, body, header)
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

// session runs one CWMP session reporting events.
func (e *Engine) session(ctx context.Context, events []cwmp.EventStruct, retryCount int) error {
	if err := e.lock(ctx); err != nil {
		return err
	}
	defer e.unlock()
	jar, _ := cookiejar.New(nil)
	c := *e.cfg.HTTPClient
	c.Jar = jar
	s := &sess{e: e, client: &c}
	ns := e.cfg.Namespace

	inform := &cwmp.Inform{
		DeviceId: e.cfg.DeviceId, Event: events, MaxEnvelopes: 1, CurrentTime: e.cfg.Now(), RetryCount: retryCount,
	}
	names := append([]string(nil), e.cfg.InformParams...)
	names = append(names, e.crParam())
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if p, ok := e.tree.Get(n); ok {
			inform.ParameterList = append(inform.ParameterList, cwmp.ParameterValueStruct{Name: p.Name, Value: p.Value, Type: p.Type})
		}
	}
	codes := make([]string, 0, len(events))
	for _, ev := range events {
		codes = append(codes, ev.EventCode)
	}
	e.log.Info("inform", "device", e.cfg.DeviceId.SerialNumber, "events", strings.Join(codes, ","))
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
		out = &cwmp.Envelope{Namespace: ns, ID: req.ID, Body: msg}
	}
}

// handle executes one ACS request against the tree.
func (e *Engine) handle(ctx context.Context, m cwmp.Message) cwmp.Message {
	switch r := m.(type) {
	case *cwmp.GetRPCMethods:
		return &cwmp.GetRPCMethodsResponse{MethodList: []string{
			"GetRPCMethods", "GetParameterValues", "SetParameterValues", "GetParameterNames",
			"AddObject", "DeleteObject", "Reboot", "FactoryReset", "Download"}}
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
		old, f := e.tree.applySet(r.ParameterList)
		if f != nil {
			return f
		}
		if e.cfg.OnSet != nil {
			if err := e.cfg.OnSet(ctx, r.ParameterList); err != nil {
				e.tree.rollback(old)
				return asFault(err)
			}
		}
		e.setKey(r.ParameterKey)
		return &cwmp.SetParameterValuesResponse{Status: 0}
	case *cwmp.AddObject:
		n, f := e.tree.addObject(r.ObjectName)
		if f != nil {
			return f
		}
		if e.cfg.OnAddObject != nil {
			if err := e.cfg.OnAddObject(ctx, r.ObjectName, n); err != nil {
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
		e.mu.Lock()
		e.followUp = append(e.followUp, followUp{kind: "reboot", key: r.CommandKey})
		e.mu.Unlock()
		return &cwmp.RebootResponse{}
	case *cwmp.FactoryReset:
		e.mu.Lock()
		e.followUp = append(e.followUp, followUp{kind: "factory"})
		e.mu.Unlock()
		return &cwmp.FactoryResetResponse{}
	case *cwmp.Download:
		e.mu.Lock()
		e.followUp = append(e.followUp, followUp{kind: "download", download: *r})
		e.mu.Unlock()
		return &cwmp.DownloadResponse{Status: 1}
	}
	return cwmp.NewFault(cwmp.FaultMethodNotSupported, m.MethodName()+" is not supported")
}

func asFault(err error) *cwmp.Fault {
	var f *cwmp.Fault
	if errors.As(err, &f) {
		return f
	}
	return cwmp.NewFault(cwmp.FaultInternalError, "")
}

// setKey records a ParameterKey in <root>.ManagementServer.ParameterKey if
// the tree has that parameter.
func (e *Engine) setKey(key string) {
	name := strings.TrimSuffix(e.crParam(), "ConnectionRequestURL") + "ParameterKey"
	_ = e.tree.SetValue(name, key)
}

// serveCR answers connection requests: Digest auth, then a coalesced session.
func (e *Engine) serveCR(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET")
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	if e.cfg.ConnReqUsername != "" {
		if ok, stale := e.ds.Check(r, e.cfg.ConnReqUsername, e.cfg.ConnReqPassword); !ok {
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
