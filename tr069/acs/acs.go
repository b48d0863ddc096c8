// Package acs is the ACS side of CWMP: an http.Handler that runs CWMP
// sessions with CPEs, a registry of the devices that have informed, and a
// per-device task queue. Do queues an RPC for a device, wakes the device with
// a connection request (HTTP Digest, RFC 7616) when it is not in a session,
// and returns the CPE's response.
//
// The endpoint accepts POST only, gzip and deflate request bodies (the body
// limit applies after decompression), and authenticates CPEs with HTTP
// Digest (Basic only over TLS) when Config.CPEAuth is set. Devices are kept
// in memory and, through Config.Registry, in the caller's store. Subscribe
// and the Wait methods deliver Inform events and transfer completions.
// FileServer serves the files that a Download RPC points a CPE at.
package acs

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/cwmp"
	"fieldagent/tr069/internal/httpauth"
)

// Sentinel errors returned (wrapped) by Server methods.
var (
	// ErrUnknownDevice means no Inform has been received from the device ID.
	ErrUnknownDevice = errors.New("acs: unknown device (it has never informed)")
	// ErrConnectionRequest means the connection request to the CPE failed;
	// the error is a *ConnectionRequestError with the reason.
	ErrConnectionRequest = errors.New("acs: connection request failed")
	// ErrSessionEnded means the CPE's session ended (timeout or a new
	// Inform) before it answered the request.
	ErrSessionEnded = errors.New("acs: CWMP session ended before the CPE answered")
	// ErrUnexpectedResponse means the CPE answered with a different method
	// than the request called for.
	ErrUnexpectedResponse = errors.New("acs: unexpected response from CPE")
	// ErrRegistry means loading devices from Config.Registry failed.
	ErrRegistry = errors.New("acs: device registry failed")
	// ErrTransferFailed means a TransferComplete reported a fault; the
	// error also wraps the *cwmp.Fault.
	ErrTransferFailed = errors.New("acs: file transfer failed")
)

// SessionCookie is the cookie that carries the ACS session ID.
const SessionCookie = "cwmpsid"

// Config configures a Server. Zero values give the documented defaults.
type Config struct {
	// Logger, if nil, discards.
	Logger *slog.Logger
	// BodyLimit caps a request body after decompression; 0 means 1 MiB.
	// Larger requests get 413.
	BodyLimit int64
	// SessionTimeout drops a session idle this long (its pending requests
	// fail with ErrSessionEnded); 0 means 30s.
	SessionTimeout time.Duration
	// ConnLostGrace is how long a session whose CPE closed its persistent
	// connection with a request outstanding waits for the CPE to come back
	// on a new connection (an HTTP client may drop a pooled connection
	// legitimately) before it ends (see ConnState); 0 means 2s.
	ConnLostGrace time.Duration
	// SessionHold is how long a session with an empty queue is kept open
	// waiting for another request before the ACS ends it with 204; 0 means
	// 200ms, negative means end at once.
	SessionHold time.Duration
	// ConnectionRequestAuth returns the credentials for a device's
	// connection requests; nil uses the credentials the device record
	// holds (see Device.ConnectionRequestUsername), if any. Credentials
	// recorded for the device take precedence.
	ConnectionRequestAuth func(deviceID string) (user string, pass secret.Secret)
	// ConnectionRequestTimeout bounds one connection request; 0 means 10s.
	ConnectionRequestTimeout time.Duration
	// HTTPClient sends connection requests; nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// Now, if nil, is time.Now.
	Now func() time.Time

	// CPEAuth returns the credentials a CPE must present on the CWMP
	// endpoint. deviceHint is the username in the request's Authorization
	// header (CPEs usually send their serial number or device ID there);
	// return ok false for an unknown username. For shared credentials
	// ignore the hint. Nil means no authentication (a lab).
	CPEAuth func(deviceHint string) (user string, pass secret.Secret, ok bool)
	// AllowBasicWithoutTLS accepts HTTP Basic credentials on plain HTTP.
	// Without it Basic is accepted only on requests that arrived over TLS.
	AllowBasicWithoutTLS bool
	// AuthRealm is the Digest realm; empty means "fieldagent-acs".
	AuthRealm string

	// Registry, if non-nil, persists devices: Start loads them and every
	// Inform saves the device in the background. Nil keeps them in memory.
	Registry Registry
	// RegistryTimeout bounds one Registry.SaveDevice call; 0 means 5s.
	RegistryTimeout time.Duration
	// EventBuffer is the channel capacity of each Subscribe; 0 means 64.
	EventBuffer int
	// Observer, if non-nil, is told of every session's start and end, CPE
	// faults and connection requests (see SessionObserver); nil observes
	// nothing.
	Observer SessionObserver
}

// Device is what the ACS knows of a CPE from its Informs. It marshals to
// JSON; ConnectionRequestPassword marshals as "******" (see Registry).
type Device struct {
	// ID is OUI-ProductClass-SerialNumber (OUI-SerialNumber without a ProductClass).
	ID                   string
	DeviceId             cwmp.DeviceIdStruct
	ConnectionRequestURL string
	// FirstInform is the time of the first Inform the ACS received.
	FirstInform time.Time
	LastInform  time.Time
	// LastEvents are the event codes of the last Inform, e.g. "1 BOOT".
	LastEvents []string
	// Events are the events of the last 32 Informs, oldest first.
	Events []InformRecord
	// Params is the ParameterList of the last Inform.
	Params     map[string]string
	RemoteAddr string
	// Namespace is the cwmp namespace the CPE speaks.
	Namespace string
	// AuthUsername is the username the CPE authenticated with (empty
	// without Config.CPEAuth).
	AuthUsername string
	// ConnectionRequestUsername and ConnectionRequestPassword are the
	// connection request credentials the ACS knows of: reported by the CPE
	// (username only), set with a successful SetParameterValues of
	// ManagementServer.ConnectionRequestUsername/Password, or with
	// SetConnectionRequestCredentials.
	ConnectionRequestUsername string
	ConnectionRequestPassword secret.Secret
}

// InformRecord is one Inform's time and events.
type InformRecord struct {
	At     time.Time
	Events []cwmp.EventStruct
}

// DeviceID returns the device ID for an Inform's DeviceId:
// OUI-ProductClass-SerialNumber, or OUI-SerialNumber without a ProductClass.
func DeviceID(d cwmp.DeviceIdStruct) string {
	if d.ProductClass == "" {
		return d.OUI + "-" + d.SerialNumber
	}
	return d.OUI + "-" + d.ProductClass + "-" + d.SerialNumber
}

// Result is the outcome of a request queued with Enqueue: the CPE's
// response, or an error (a *cwmp.Fault when the CPE answered with one).
type Result struct {
	Response cwmp.Message
	Err      error
}

type task struct {
	req      cwmp.Message
	done     chan Result // buffered 1
	sent     bool
	finished bool
	stop     func() bool // stops the context.AfterFunc of Enqueue
}

// finish delivers r once. Caller holds s.mu.
func (t *task) finish(r Result) {
	if t.finished {
		return
	}
	t.finished = true
	if t.stop != nil {
		t.stop()
	}
	if f, ok := r.Response.(*cwmp.Fault); ok && r.Err == nil {
		r = Result{Err: f}
	}
	t.done <- r
}

type device struct {
	dev       Device
	queue     []*task
	session   *session
	crPending bool
	wake      chan struct{} // buffered 1: a task was queued
	transfers []cwmp.TransferComplete
}

type session struct {
	id     string
	dev    *device
	remote string
	// persistent is true once the CPE sent a second request over the
	// connection it informed on: closing that connection then ends the
	// session (ConnState), instead of waiting for the idle timeout.
	persistent bool
	lost       *time.Timer // ConnLostGrace running after the connection closed
	ns         string
	authUser   string
	started    time.Time // for Observer's session durations (monotonic)
	lastSeen   time.Time
	inflight   *task
	seq        int
	timer      *time.Timer
}

type subscriber struct {
	ch chan InformEvent
}

// Server is an ACS. It is an http.Handler: mount it at any path and point
// CPEs' ManagementServer.URL at it. Safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	digest *httpauth.DigestServer

	mu       sync.Mutex
	devices  map[string]*device
	sessions map[string]*session // by cookie
	changed  chan struct{}       // closed and replaced on every Inform
	subs     map[*subscriber]struct{}
	dropped  atomic.Uint64
	dirty    map[string]struct{} // devices not yet saved to the Registry
	saving   chan struct{}       // non-nil while the saver runs; closed when it stops
}

// New returns a Server with cfg's defaults filled in. With a
// Config.Registry, call Start (or ListenAndServe) to load known devices.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 30 * time.Second
	}
	if cfg.ConnLostGrace <= 0 {
		cfg.ConnLostGrace = 2 * time.Second
	}
	if cfg.SessionHold == 0 {
		cfg.SessionHold = 200 * time.Millisecond
	}
	if cfg.ConnectionRequestTimeout <= 0 {
		cfg.ConnectionRequestTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AuthRealm == "" {
		cfg.AuthRealm = "fieldagent-acs"
	}
	if cfg.RegistryTimeout <= 0 {
		cfg.RegistryTimeout = 5 * time.Second
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 64
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	ds := httpauth.NewDigestServer(cfg.AuthRealm)
	ds.RequireQOP = true
	return &Server{
		cfg: cfg, log: cfg.Logger, client: client, digest: ds,
		devices: map[string]*device{}, sessions: map[string]*session{}, changed: make(chan struct{}),
		subs: map[*subscriber]struct{}{}, dirty: map[string]struct{}{},
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func copyDevice(d Device) Device {
	d.LastEvents = append([]string(nil), d.LastEvents...)
	if d.Events != nil {
		ev := make([]InformRecord, len(d.Events))
		for i, r := range d.Events {
			ev[i] = InformRecord{At: r.At, Events: append([]cwmp.EventStruct(nil), r.Events...)}
		}
		d.Events = ev
	}
	p := make(map[string]string, len(d.Params))
	for k, v := range d.Params {
		p[k] = v
	}
	d.Params = p
	return d
}

// Devices returns every device that has informed, sorted by ID.
func (s *Server) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Device, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, copyDevice(d.dev))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// EachDevice calls fn for every device, in no particular order, until fn
// returns false, without copying them: a search of a large registry
// allocates only what it keeps. fn runs with the server's lock held, so it
// must be quick, must not change d or keep d or its maps after it returns,
// and must not call the Server.
func (s *Server) EachDevice(fn func(d *Device) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if !fn(&d.dev) {
			return
		}
	}
}

// Device returns the device with id, and false if it has never informed.
func (s *Server) Device(id string) (Device, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return Device{}, false
	}
	return copyDevice(d.dev), true
}

// SetConnectionRequestCredentials records the credentials that
// connection requests to deviceID use (they take precedence over
// Config.ConnectionRequestAuth). It returns ErrUnknownDevice for a device
// that has never informed.
func (s *Server) SetConnectionRequestCredentials(deviceID, user string, pass secret.Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownDevice, deviceID)
	}
	d.dev.ConnectionRequestUsername, d.dev.ConnectionRequestPassword = user, pass
	s.markDirty(deviceID)
	return nil
}

// WaitDevice returns the first known device (in ID order) that match
// accepts, or waits for an Inform that makes one match. It returns ctx's
// error when ctx ends first.
func (s *Server) WaitDevice(ctx context.Context, match func(Device) bool) (Device, error) {
	for {
		s.mu.Lock()
		ids := make([]string, 0, len(s.devices))
		for id := range s.devices {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if d := copyDevice(s.devices[id].dev); match(d) {
				s.mu.Unlock()
				return d, nil
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Device{}, fmt.Errorf("acs: waiting for a device: %w", ctx.Err())
		}
	}
}

// WaitInform waits for an Inform from deviceID at or after after that
// carries eventCode (empty matches any Inform), e.g. "1 BOOT" after a
// Reboot or EventDiagnosticsComplete after a TR-143 test. Informs already
// received count (the last 32), so call it after the action.
func (s *Server) WaitInform(ctx context.Context, deviceID, eventCode string, after time.Time) (Device, error) {
	for {
		s.mu.Lock()
		if d, ok := s.devices[deviceID]; ok {
			for _, h := range d.dev.Events {
				if h.At.Before(after) {
					continue
				}
				if eventCode == "" || hasEvent(h.Events, eventCode) {
					dev := copyDevice(d.dev)
					s.mu.Unlock()
					return dev, nil
				}
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Device{}, fmt.Errorf("acs: waiting for inform %q from %s: %w", eventCode, deviceID, ctx.Err())
		}
	}
}

// WaitIdle returns once deviceID is not in a CWMP session (at once if it
// is idle), so that the next Do goes through a connection request.
func (s *Server) WaitIdle(ctx context.Context, deviceID string) error {
	for {
		s.mu.Lock()
		d, ok := s.devices[deviceID]
		if !ok {
			s.mu.Unlock()
			return fmt.Errorf("%w: %s", ErrUnknownDevice, deviceID)
		}
		if d.session == nil {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("acs: waiting for device %s to end its session: %w", deviceID, ctx.Err())
		}
	}
}

// broadcast wakes every waiter. Caller holds s.mu.
func (s *Server) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func hasEvent(list []cwmp.EventStruct, code string) bool {
	for _, x := range list {
		if strings.EqualFold(x.EventCode, code) {
			return true
		}
	}
	return false
}

// Enqueue queues req for deviceID's current session, or its next one,
// without sending a connection request (for a device that informs
// periodically, or when the caller makes it inform), and returns a
// channel that receives exactly one Result. If ctx ends before req is sent
// it is withdrawn and the Result carries ctx's error; if ctx ends while
// the CPE works on it, the Result carries ctx's error and the CPE's later
// answer is dropped. It returns ErrUnknownDevice for a device that has
// never informed.
func (s *Server) Enqueue(ctx context.Context, deviceID string, req cwmp.Message) (<-chan Result, error) {
	if req == nil {
		return nil, fmt.Errorf("acs: nil request for device %s", deviceID)
	}
	t := &task{req: req, done: make(chan Result, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceID]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownDevice, deviceID)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acs: %s for device %s: %w", req.MethodName(), deviceID, err)
	}
	d.queue = append(d.queue, t)
	select {
	case d.wake <- struct{}{}:
	default:
	}
	t.stop = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.remove(d, t)
		t.finish(Result{Err: fmt.Errorf("acs: %s for device %s: %w", req.MethodName(), deviceID, ctx.Err())})
	})
	return t.done, nil
}

// Do queues req for deviceID and returns the CPE's response. If the device
// is not in a session, Do sends it a connection request and waits for the
// session. A CWMP fault is returned as a *cwmp.Fault error; a failed
// connection request as a *ConnectionRequestError (ErrConnectionRequest);
// a device that never informed as ErrUnknownDevice; and ctx's error if ctx
// ends first (a request not yet sent is then withdrawn).
func (s *Server) Do(ctx context.Context, deviceID string, req cwmp.Message) (cwmp.Message, error) {
	if req == nil {
		return nil, fmt.Errorf("acs: nil request for device %s", deviceID)
	}
	t := &task{req: req, done: make(chan Result, 1)}
	s.mu.Lock()
	d, ok := s.devices[deviceID]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrUnknownDevice, deviceID)
	}
	d.queue = append(d.queue, t)
	select {
	case d.wake <- struct{}{}:
	default:
	}
	startCR := d.session == nil && !d.crPending
	if startCR {
		d.crPending = true
	}
	crURL := d.dev.ConnectionRequestURL
	crUser, crPass := d.dev.ConnectionRequestUsername, d.dev.ConnectionRequestPassword
	s.mu.Unlock()

	if startCR {
		crStart := time.Now()
		err := s.connectionRequest(ctx, deviceID, crURL, crUser, crPass)
		s.cfg.Observer.ConnectionRequest(deviceID, time.Since(crStart), err)
		s.mu.Lock()
		d.crPending = false
		if err != nil && d.session == nil {
			// Fail every request that was waiting for this connection request.
			for _, q := range d.queue {
				q.finish(Result{Err: err})
			}
			d.queue = nil
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("connection request failed", "device", deviceID, "err", err)
		}
	}

	select {
	case r := <-t.done:
		return r.Response, r.Err
	case <-ctx.Done():
		s.mu.Lock()
		s.remove(d, t)
		t.finish(Result{Err: fmt.Errorf("acs: %s for device %s: %w", req.MethodName(), deviceID, ctx.Err())})
		s.mu.Unlock()
		r := <-t.done // a result may have raced in: it wins
		return r.Response, r.Err
	}
}

// remove withdraws t from d's queue if it has not been sent. Caller holds s.mu.
func (s *Server) remove(d *device, t *task) {
	for i, q := range d.queue {
		if q == t {
			d.queue = append(d.queue[:i], d.queue[i+1:]...)
			return
		}
	}
}

// GetParameterValues reads parameters (names ending in "." read subtrees).
func (s *Server) GetParameterValues(ctx context.Context, deviceID string, names ...string) ([]cwmp.ParameterValueStruct, error) {
	resp, err := s.Do(ctx, deviceID, &cwmp.GetParameterValues{ParameterNames: names})
	if err != nil {
		return nil, err
	}
	r, ok := resp.(*cwmp.GetParameterValuesResponse)
	if !ok {
		return nil, fmt.Errorf("%w: %s to GetParameterValues", ErrUnexpectedResponse, resp.MethodName())
	}
	return r.ParameterList, nil
}

// GetParameterNames lists names under path (objects end in ".").
func (s *Server) GetParameterNames(ctx context.Context, deviceID, path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, error) {
	resp, err := s.Do(ctx, deviceID, &cwmp.GetParameterNames{ParameterPath: path, NextLevel: nextLevel})
	if err != nil {
		return nil, err
	}
	r, ok := resp.(*cwmp.GetParameterNamesResponse)
	if !ok {
		return nil, fmt.Errorf("%w: %s to GetParameterNames", ErrUnexpectedResponse, resp.MethodName())
	}
	return r.ParameterList, nil
}

// SetParameterValues writes params atomically with ParameterKey key.
func (s *Server) SetParameterValues(ctx context.Context, deviceID string, params []cwmp.ParameterValueStruct, key string) error {
	resp, err := s.Do(ctx, deviceID, &cwmp.SetParameterValues{ParameterList: params, ParameterKey: key})
	if err != nil {
		return err
	}
	if _, ok := resp.(*cwmp.SetParameterValuesResponse); !ok {
		return fmt.Errorf("%w: %s to SetParameterValues", ErrUnexpectedResponse, resp.MethodName())
	}
	return nil
}

// AddObject creates an instance of objectName ("X.Y.") and returns its number.
func (s *Server) AddObject(ctx context.Context, deviceID, objectName, key string) (uint32, error) {
	resp, err := s.Do(ctx, deviceID, &cwmp.AddObject{ObjectName: objectName, ParameterKey: key})
	if err != nil {
		return 0, err
	}
	r, ok := resp.(*cwmp.AddObjectResponse)
	if !ok {
		return 0, fmt.Errorf("%w: %s to AddObject", ErrUnexpectedResponse, resp.MethodName())
	}
	return r.InstanceNumber, nil
}

// DeleteObject removes the instance objectName ("X.Y.3.").
func (s *Server) DeleteObject(ctx context.Context, deviceID, objectName, key string) error {
	resp, err := s.Do(ctx, deviceID, &cwmp.DeleteObject{ObjectName: objectName, ParameterKey: key})
	if err != nil {
		return err
	}
	if _, ok := resp.(*cwmp.DeleteObjectResponse); !ok {
		return fmt.Errorf("%w: %s to DeleteObject", ErrUnexpectedResponse, resp.MethodName())
	}
	return nil
}

// Reboot asks the CPE to reboot after the session; wait for its "1 BOOT"
// Inform with WaitInform.
func (s *Server) Reboot(ctx context.Context, deviceID, commandKey string) error {
	resp, err := s.Do(ctx, deviceID, &cwmp.Reboot{CommandKey: commandKey})
	if err != nil {
		return err
	}
	if _, ok := resp.(*cwmp.RebootResponse); !ok {
		return fmt.Errorf("%w: %s to Reboot", ErrUnexpectedResponse, resp.MethodName())
	}
	return nil
}

// FactoryReset asks the CPE to reset to factory defaults after the session.
func (s *Server) FactoryReset(ctx context.Context, deviceID string) error {
	resp, err := s.Do(ctx, deviceID, &cwmp.FactoryReset{})
	if err != nil {
		return err
	}
	if _, ok := resp.(*cwmp.FactoryResetResponse); !ok {
		return fmt.Errorf("%w: %s to FactoryReset", ErrUnexpectedResponse, resp.MethodName())
	}
	return nil
}

// Download asks the CPE to fetch d.URL (see FileServer). Status 1 in the
// response means the transfer runs after the session: wait for it with
// WaitTransferComplete(ctx, deviceID, d.CommandKey). d.Password is sent to
// the CPE and never logged.
func (s *Server) Download(ctx context.Context, deviceID string, d cwmp.Download) (cwmp.DownloadResponse, error) {
	resp, err := s.Do(ctx, deviceID, &d)
	if err != nil {
		return cwmp.DownloadResponse{}, err
	}
	r, ok := resp.(*cwmp.DownloadResponse)
	if !ok {
		return cwmp.DownloadResponse{}, fmt.Errorf("%w: %s to Download", ErrUnexpectedResponse, resp.MethodName())
	}
	return *r, nil
}

// ServeHTTP runs the ACS end of CWMP sessions.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "CWMP endpoint: POST only", http.StatusMethodNotAllowed)
		return
	}
	authUser, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	body, status := s.readBody(w, r)
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		s.serveEmpty(w, r)
		return
	}
	dec := cwmp.Decoder{}
	if _, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil {
		dec.Charset = params["charset"]
	}
	env, err := dec.Decode(body)
	if err != nil {
		s.log.Warn("malformed CWMP message", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "malformed SOAP message", http.StatusBadRequest)
		return
	}
	if env.Body == nil {
		s.serveEmpty(w, r)
		return
	}
	if in, ok := env.Body.(*cwmp.Inform); ok {
		s.serveInform(w, r, env, in, authUser)
		return
	}
	s.mu.Lock()
	sess := s.lookup(r)
	if sess == nil {
		s.mu.Unlock()
		s.log.Warn("CWMP message outside a session", "remote", r.RemoteAddr, "method", env.Body.MethodName())
		http.Error(w, "no CWMP session: send Inform first", http.StatusBadRequest)
		return
	}
	s.touch(sess)
	s.sameConn(sess, r)
	if reply := s.cpeRequest(sess, env.Body); reply != nil {
		s.mu.Unlock()
		s.reply(w, sess, env.ID, reply)
		return
	}
	name := env.Body.MethodName()
	_, isFault := env.Body.(*cwmp.Fault)
	if !isFault && !strings.HasSuffix(name, "Response") {
		s.mu.Unlock()
		s.log.Info("CPE sent an unsupported request", "device", sess.dev.dev.ID, "method", name)
		s.reply(w, sess, env.ID, cwmp.NewFault(cwmp.FaultACSMethodNotSupported, name+" is not supported"))
		return
	}
	if t := sess.inflight; t != nil {
		sess.inflight = nil
		if f, ok := env.Body.(*cwmp.Fault); ok {
			s.cfg.Observer.Fault(sess.dev.dev.ID, t.req.MethodName(), f.Code)
		}
		s.learnCredentials(sess.dev, t.req, env.Body)
		t.finish(Result{Response: env.Body})
	} else {
		s.log.Warn("CPE response with no request outstanding", "device", sess.dev.dev.ID, "method", name)
	}
	s.mu.Unlock()
	s.next(w, r, sess)
}

// cpeRequest answers the requests a CPE may send in a session
// (TransferComplete, AutonomousTransferComplete, GetRPCMethods,
// RequestDownload); it returns nil for anything else. Caller holds s.mu.
func (s *Server) cpeRequest(sess *session, m cwmp.Message) cwmp.Message {
	d := sess.dev
	switch m := m.(type) {
	case *cwmp.TransferComplete:
		s.log.Info("transfer complete", "device", d.dev.ID, "command_key", m.CommandKey, "fault_code", m.FaultStruct.FaultCode)
		if m.FaultStruct.FaultCode != 0 {
			s.cfg.Observer.Fault(d.dev.ID, m.MethodName(), m.FaultStruct.FaultCode)
		}
		s.recordTransfer(d, *m)
		return &cwmp.TransferCompleteResponse{}
	case *cwmp.AutonomousTransferComplete:
		s.log.Info("autonomous transfer complete", "device", d.dev.ID, "file_type", m.FileType, "fault_code", m.FaultStruct.FaultCode)
		if m.FaultStruct.FaultCode != 0 {
			s.cfg.Observer.Fault(d.dev.ID, m.MethodName(), m.FaultStruct.FaultCode)
		}
		s.recordTransfer(d, cwmp.TransferComplete{FaultStruct: m.FaultStruct, StartTime: m.StartTime, CompleteTime: m.CompleteTime})
		return &cwmp.AutonomousTransferCompleteResponse{}
	case *cwmp.RequestDownload:
		// The ACS offers no downloads on request; acknowledging keeps the
		// CPE from retrying.
		s.log.Info("CPE requested a download", "device", d.dev.ID, "file_type", m.FileType)
		return &cwmp.RequestDownloadResponse{}
	case *cwmp.GetRPCMethods:
		return &cwmp.GetRPCMethodsResponse{MethodList: []string{
			"Inform", "GetRPCMethods", "TransferComplete", "AutonomousTransferComplete", "RequestDownload"}}
	}
	return nil
}

// recordTransfer keeps tc for WaitTransferComplete. Caller holds s.mu.
func (s *Server) recordTransfer(d *device, tc cwmp.TransferComplete) {
	d.transfers = append(d.transfers, tc)
	if len(d.transfers) > 16 {
		d.transfers = append([]cwmp.TransferComplete(nil), d.transfers[len(d.transfers)-16:]...)
	}
	s.broadcast()
}

// learnCredentials records connection request credentials that a
// successful SetParameterValues wrote. Caller holds s.mu.
func (s *Server) learnCredentials(d *device, req, resp cwmp.Message) {
	spv, ok := req.(*cwmp.SetParameterValues)
	if !ok {
		return
	}
	if _, ok := resp.(*cwmp.SetParameterValuesResponse); !ok {
		return
	}
	changed := false
	for _, p := range spv.ParameterList {
		switch {
		case strings.HasSuffix(p.Name, "ManagementServer.ConnectionRequestUsername"):
			d.dev.ConnectionRequestUsername, changed = p.Value, true
		case strings.HasSuffix(p.Name, "ManagementServer.ConnectionRequestPassword"):
			d.dev.ConnectionRequestPassword, changed = secret.New(p.Value), true
		}
	}
	if changed {
		s.markDirty(d.dev.ID)
	}
}

// readBody reads r's body, decompressing gzip and deflate, and returns it
// or the HTTP status to answer with.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int) {
	limit := s.cfg.BodyLimit
	raw := http.MaxBytesReader(w, r.Body, limit)
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	var rd io.Reader = raw
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip", "deflate":
		compressed, err := io.ReadAll(raw)
		if err != nil {
			return nil, s.readError(r, err)
		}
		if enc == "deflate" {
			// HTTP deflate is zlib; some CPEs send raw deflate.
			if zr, err := zlib.NewReader(bytes.NewReader(compressed)); err == nil {
				rd = zr
			} else {
				rd = flate.NewReader(bytes.NewReader(compressed))
			}
		} else {
			zr, err := gzip.NewReader(bytes.NewReader(compressed))
			if err != nil {
				s.log.Warn("bad gzip CWMP request", "remote", r.RemoteAddr, "err", err)
				return nil, http.StatusBadRequest
			}
			rd = zr
		}
	default:
		s.log.Warn("CWMP request with unsupported Content-Encoding", "remote", r.RemoteAddr, "encoding", enc)
		return nil, http.StatusUnsupportedMediaType
	}
	body, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, s.readError(r, err)
	}
	if int64(len(body)) > limit {
		s.log.Warn("CWMP request body too large after decompression", "remote", r.RemoteAddr, "limit", limit)
		return nil, http.StatusRequestEntityTooLarge
	}
	return body, 0
}

func (s *Server) readError(r *http.Request, err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		s.log.Warn("CWMP request body too large", "remote", r.RemoteAddr, "limit", s.cfg.BodyLimit)
		return http.StatusRequestEntityTooLarge
	}
	s.log.Warn("reading CWMP request failed", "remote", r.RemoteAddr, "err", err)
	return http.StatusBadRequest
}

// lookup finds the session of r by cookie, then by remote address, then by
// remote host when exactly one session comes from it. Caller holds s.mu.
func (s *Server) lookup(r *http.Request) *session {
	if c, err := r.Cookie(SessionCookie); err == nil {
		// A cookie names one session; an unknown one (ended, timed out)
		// must not fall back to another device's session from the same host.
		return s.sessions[c.Value]
	}
	var byHost *session
	hostCount := 0
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	for _, sess := range s.sessions {
		if sess.remote == r.RemoteAddr {
			return sess
		}
		if h, _, _ := net.SplitHostPort(sess.remote); h == host {
			byHost = sess
			hostCount++
		}
	}
	if hostCount == 1 {
		return byHost
	}
	return nil
}

// sameConn notes whether the CPE kept its connection for r (persistent) or
// came back on a new one (a cookie session). Caller holds s.mu.
func (s *Server) sameConn(sess *session, r *http.Request) {
	if sess.lost != nil {
		sess.lost.Stop() // the CPE came back in time
		sess.lost = nil
	}
	if r.RemoteAddr == sess.remote {
		sess.persistent = true
	} else {
		sess.remote, sess.persistent = r.RemoteAddr, false
	}
}

// touch records activity and re-arms the idle timer. Caller holds s.mu.
func (s *Server) touch(sess *session) {
	sess.lastSeen = s.cfg.Now()
	sess.timer.Reset(s.cfg.SessionTimeout)
}

// endSession removes sess and fails what it owed. Caller holds s.mu.
func (s *Server) endSession(sess *session, why error) {
	sess.timer.Stop()
	if sess.lost != nil {
		sess.lost.Stop()
		sess.lost = nil
	}
	if s.sessions[sess.id] == sess { // tell the Observer once per session
		var outcome error
		if why != errSessionDone {
			outcome = why
		}
		s.cfg.Observer.SessionEnded(sess.dev.dev.ID, time.Since(sess.started), outcome)
	}
	delete(s.sessions, sess.id)
	if sess.dev.session == sess {
		sess.dev.session = nil
	}
	s.broadcast()
	if t := sess.inflight; t != nil {
		sess.inflight = nil
		t.finish(Result{Err: fmt.Errorf("%w: %s for device %s: %w", ErrSessionEnded, t.req.MethodName(), sess.dev.dev.ID, why)})
	}
}

// ErrConnectionLost is the reason a session ends when the CPE's persistent
// connection closes while a request to it is outstanding.
var ErrConnectionLost = errors.New("the CPE closed its connection with a request outstanding")

// ConnState is an http.Server ConnState hook: when a connection closes that
// a session kept alive and a request to the CPE is outstanding, the session
// ends (ErrSessionEnded wrapping ErrConnectionLost) unless the CPE comes
// back on a new connection within ConnLostGrace — instead of only after
// SessionTimeout — so a caller can recover while the technician waits.
// Serve installs it; a caller with its own http.Server should too. A CPE
// that uses a new connection per request (cookies) is never affected.
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	if st != http.StateClosed && st != http.StateHijacked {
		return
	}
	addr := c.RemoteAddr().String()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		if sess.remote != addr || !sess.persistent || sess.inflight == nil || sess.lost != nil {
			continue
		}
		sess.lost = time.AfterFunc(s.cfg.ConnLostGrace, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.sessions[sess.id] != sess || sess.lost == nil || sess.inflight == nil {
				return
			}
			sess.lost = nil
			s.log.Warn("CWMP connection lost mid-session", "device", sess.dev.dev.ID, "method", sess.inflight.req.MethodName())
			s.endSession(sess, ErrConnectionLost)
		})
	}
}

func (s *Server) expire(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.id] != sess {
		return
	}
	s.log.Warn("CWMP session timed out", "device", sess.dev.dev.ID)
	s.endSession(sess, errors.New("session idle timeout"))
	// Requests still queued would wait for a session that will not come
	// unless the CPE informs again; fail them so callers can retry.
	for _, q := range sess.dev.queue {
		q.finish(Result{Err: fmt.Errorf("%w: %s for device %s: session idle timeout", ErrSessionEnded, q.req.MethodName(), sess.dev.dev.ID)})
	}
	sess.dev.queue = nil
}

func (s *Server) serveInform(w http.ResponseWriter, r *http.Request, env *cwmp.Envelope, in *cwmp.Inform, authUser string) {
	id := DeviceID(in.DeviceId)
	now := s.cfg.Now()
	events := make([]string, 0, len(in.Event))
	for _, e := range in.Event {
		events = append(events, e.EventCode)
	}
	params := make(map[string]string, len(in.ParameterList))
	crURL, crUser := "", ""
	for _, p := range in.ParameterList {
		params[p.Name] = p.Value
		switch {
		case strings.HasSuffix(p.Name, "ManagementServer.ConnectionRequestURL"):
			crURL = strings.TrimSpace(p.Value)
		case strings.HasSuffix(p.Name, "ManagementServer.ConnectionRequestUsername"):
			crUser = p.Value
		}
	}
	s.mu.Lock()
	d, ok := s.devices[id]
	if !ok {
		d = &device{wake: make(chan struct{}, 1), dev: Device{FirstInform: now}}
		s.devices[id] = d
	}
	if old := d.session; old != nil {
		s.endSession(old, errors.New("the CPE started a new session"))
	}
	if crURL == "" {
		crURL = d.dev.ConnectionRequestURL
	}
	first := d.dev.FirstInform
	if first.IsZero() {
		first = now
	}
	crPass := d.dev.ConnectionRequestPassword
	if crUser == "" {
		crUser = d.dev.ConnectionRequestUsername
	} else if crUser != d.dev.ConnectionRequestUsername {
		crPass = secret.Secret{} // the CPE's username changed: the old password is stale
	}
	history := append(d.dev.Events, InformRecord{At: now, Events: in.Event})
	if len(history) > 32 {
		history = append([]InformRecord(nil), history[len(history)-32:]...)
	}
	d.dev = Device{
		ID: id, DeviceId: in.DeviceId, ConnectionRequestURL: crURL, FirstInform: first, LastInform: now,
		LastEvents: events, Events: history, Params: params, RemoteAddr: r.RemoteAddr, Namespace: env.Namespace,
		AuthUsername: authUser, ConnectionRequestUsername: crUser, ConnectionRequestPassword: crPass,
	}
	sess := &session{id: newID(), dev: d, remote: r.RemoteAddr, ns: env.Namespace, started: time.Now(), lastSeen: now, authUser: authUser}
	sess.timer = time.AfterFunc(s.cfg.SessionTimeout, func() { s.expire(sess) })
	s.sessions[sess.id] = sess
	d.session = sess
	s.cfg.Observer.SessionStarted(id)
	s.broadcast()
	s.markDirty(id)
	s.publish(id, in.Event, now, params)
	s.mu.Unlock()

	if s.log.Enabled(r.Context(), slog.LevelInfo) {
		s.log.Info("inform", "device", id, "events", strings.Join(events, ","), "remote", r.RemoteAddr)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sess.id, Path: "/", HttpOnly: true})
	s.reply(w, sess, env.ID, &cwmp.InformResponse{MaxEnvelopes: 1})
}

func (s *Server) reply(w http.ResponseWriter, sess *session, id string, m cwmp.Message) {
	data, err := cwmp.Encode(&cwmp.Envelope{Namespace: sess.ns, ID: id, Body: m})
	if err != nil {
		s.log.Error("encoding CWMP message failed", "device", sess.dev.dev.ID, "method", m.MethodName(), "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

func (s *Server) serveEmpty(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sess := s.lookup(r)
	if sess == nil {
		s.mu.Unlock()
		if _, err := r.Cookie(SessionCookie); err == nil {
			// The session ended (timed out); tell the CPE it is over.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		s.log.Warn("empty CWMP POST outside a session", "remote", r.RemoteAddr)
		http.Error(w, "no CWMP session: send Inform first", http.StatusBadRequest)
		return
	}
	s.touch(sess)
	s.sameConn(sess, r)
	if t := sess.inflight; t != nil {
		sess.inflight = nil
		t.finish(Result{Err: fmt.Errorf("%w: the CPE sent an empty message instead of answering %s", ErrUnexpectedResponse, t.req.MethodName())})
	}
	s.mu.Unlock()
	s.next(w, r, sess)
}

// next sends the device's next queued request, or ends the session with
// 204 once the queue has stayed empty for the hold window.
func (s *Server) next(w http.ResponseWriter, r *http.Request, sess *session) {
	var hold <-chan time.Time
	if s.cfg.SessionHold > 0 {
		t := time.NewTimer(s.cfg.SessionHold)
		defer t.Stop()
		hold = t.C
	}
	for {
		s.mu.Lock()
		if s.sessions[sess.id] != sess {
			s.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		d := sess.dev
		if len(d.queue) > 0 {
			t := d.queue[0]
			d.queue = d.queue[1:]
			t.sent = true
			sess.inflight = t
			sess.seq++
			id := "acs-" + strconv.Itoa(sess.seq)
			s.touch(sess)
			s.mu.Unlock()
			s.log.Debug("sending request", "device", d.dev.ID, "method", t.req.MethodName())
			s.reply(w, sess, id, t.req)
			return
		}
		if hold == nil {
			s.endSession(sess, errSessionDone)
			s.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		wake := d.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-hold:
			hold = nil
		case <-r.Context().Done():
			s.mu.Lock()
			s.endSession(sess, r.Context().Err())
			s.mu.Unlock()
			return
		}
	}
}
