// Package acs is the ACS side of CWMP: an http.Handler that runs CWMP
// sessions with CPEs, a registry of the devices that have informed, and a
// per-device task queue. Do queues an RPC for a device, wakes the device with
// a connection request (HTTP Digest, RFC 7616) when it is not in a session,
// and returns the CPE's response.
package acs

import (
	"bytes"
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
	// the error is a *ConnectionRequestError with the HTTP status.
	ErrConnectionRequest = errors.New("acs: connection request failed")
	// ErrSessionEnded means the CPE's session ended (timeout or a new
	// Inform) before it answered the request.
	ErrSessionEnded = errors.New("acs: CWMP session ended before the CPE answered")
	// ErrUnexpectedResponse means the CPE answered with a different method
	// than the request called for.
	ErrUnexpectedResponse = errors.New("acs: unexpected response from CPE")
)

// ConnectionRequestError describes a failed connection request. It matches
// ErrConnectionRequest with errors.Is.
type ConnectionRequestError struct {
	DeviceID string
	// StatusCode is the CPE's HTTP status, 0 if none was received.
	StatusCode int
	// Err is the transport error, if any.
	Err error
}

// Error names the device and the status or transport error (never credentials).
func (e *ConnectionRequestError) Error() string {
	if e.StatusCode != 0 {
		hint := ""
		if e.StatusCode == http.StatusUnauthorized {
			hint = ": check the connection request username and password"
		}
		return fmt.Sprintf("acs: connection request to device %s failed: HTTP %d (%s)%s", e.DeviceID, e.StatusCode, http.StatusText(e.StatusCode), hint)
	}
	return fmt.Sprintf("acs: connection request to device %s failed: %v", e.DeviceID, e.Err)
}

// Is makes errors.Is(err, ErrConnectionRequest) true.
func (e *ConnectionRequestError) Is(target error) bool { return target == ErrConnectionRequest }

// Unwrap returns the transport error.
func (e *ConnectionRequestError) Unwrap() error { return e.Err }

// SessionCookie is the cookie that carries the ACS session ID.
const SessionCookie = "cwmpsid"

// Config configures a Server. Zero values give the documented defaults.
type Config struct {
	// Logger, if nil, discards.
	Logger *slog.Logger
	// BodyLimit caps a request body; 0 means 1 MiB. Larger requests get 413.
	BodyLimit int64
	// SessionTimeout drops a session idle this long (its pending requests
	// fail with ErrSessionEnded); 0 means 30s.
	SessionTimeout time.Duration
	// SessionHold is how long a session with an empty queue is kept open
	// waiting for another request before the ACS ends it with 204; 0 means
	// 200ms, negative means end at once.
	SessionHold time.Duration
	// ConnectionRequestAuth returns the credentials for a device's
	// connection requests; nil sends none.
	ConnectionRequestAuth func(deviceID string) (user string, pass secret.Secret)
	// HTTPClient sends connection requests; nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// Now, if nil, is time.Now.
	Now func() time.Time
}

// Device is what the ACS knows of a CPE from its last Inform.
type Device struct {
	// ID is OUI-ProductClass-SerialNumber (OUI-SerialNumber without a ProductClass).
	ID                   string
	DeviceId             cwmp.DeviceIdStruct
	ConnectionRequestURL string
	LastInform           time.Time
	// LastEvents are the event codes of the last Inform, e.g. "1 BOOT".
	LastEvents []string
	// Params is the ParameterList of the last Inform.
	Params     map[string]string
	RemoteAddr string
	// Namespace is the cwmp namespace the CPE speaks.
	Namespace string
}

// DeviceID returns the device ID for an Inform's DeviceId:
// OUI-ProductClass-SerialNumber, or OUI-SerialNumber without a ProductClass.
func DeviceID(d cwmp.DeviceIdStruct) string {
	if d.ProductClass == "" {
		return d.OUI + "-" + d.SerialNumber
	}
	return d.OUI + "-" + d.ProductClass + "-" + d.SerialNumber
}

type result struct {
	msg cwmp.Message
	err error
}

type task struct {
	req  cwmp.Message
	done chan result // buffered 1
	sent bool
}

type informRecord struct {
	at     time.Time
	events []string
}

type device struct {
	dev       Device
	queue     []*task
	session   *session
	crPending bool
	wake      chan struct{} // buffered 1: a task was queued
	history   []informRecord
}

type session struct {
	id       string
	dev      *device
	remote   string
	ns       string
	lastSeen time.Time
	inflight *task
	seq      int
	timer    *time.Timer
}

// Server is an ACS. It is an http.Handler: mount it at any path and point
// CPEs' ManagementServer.URL at it. Safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client

	mu       sync.Mutex
	devices  map[string]*device
	sessions map[string]*session // by cookie
	changed  chan struct{}       // closed and replaced on every Inform
}

// New returns a Server with cfg's defaults filled in.
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
	if cfg.SessionHold == 0 {
		cfg.SessionHold = 200 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Server{
		cfg: cfg, log: cfg.Logger, client: client,
		devices: map[string]*device{}, sessions: map[string]*session{}, changed: make(chan struct{}),
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func copyDevice(d Device) Device {
	d.LastEvents = append([]string(nil), d.LastEvents...)
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
// Reboot. Informs already received count, so call it after the action.
func (s *Server) WaitInform(ctx context.Context, deviceID, eventCode string, after time.Time) (Device, error) {
	for {
		s.mu.Lock()
		if d, ok := s.devices[deviceID]; ok {
			for _, h := range d.history {
				if h.at.Before(after) {
					continue
				}
				if eventCode == "" || containsFold(h.events, eventCode) {
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

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
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
	t := &task{req: req, done: make(chan result, 1)}
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
	s.mu.Unlock()

	if startCR {
		err := s.connectionRequest(ctx, deviceID, crURL)
		s.mu.Lock()
		d.crPending = false
		if err != nil && d.session == nil {
			// Fail every request that was waiting for this connection request.
			for _, q := range d.queue {
				q.done <- result{err: err}
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
		if r.err != nil {
			return nil, r.err
		}
		if f, ok := r.msg.(*cwmp.Fault); ok {
			return nil, f
		}
		return r.msg, nil
	case <-ctx.Done():
		s.mu.Lock()
		s.remove(d, t)
		s.mu.Unlock()
		// A result may have raced in; prefer it.
		select {
		case r := <-t.done:
			if r.err != nil {
				return nil, r.err
			}
			if f, ok := r.msg.(*cwmp.Fault); ok {
				return nil, f
			}
			return r.msg, nil
		default:
		}
		return nil, fmt.Errorf("acs: %s for device %s: %w", req.MethodName(), deviceID, ctx.Err())
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

func (s *Server) connectionRequest(ctx context.Context, deviceID, url string) error {
	if url == "" {
		return &ConnectionRequestError{DeviceID: deviceID, Err: errors.New("the device reported no ConnectionRequestURL")}
	}
	c := &httpauth.Client{HTTP: s.client}
	if s.cfg.ConnectionRequestAuth != nil {
		c.Username, c.Password = s.cfg.ConnectionRequestAuth(deviceID)
	}
	resp, err := c.Do(ctx, http.MethodGet, url, nil, nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("acs: connection request to device %s: %w", deviceID, ctx.Err())
		}
		return &ConnectionRequestError{DeviceID: deviceID, Err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return &ConnectionRequestError{DeviceID: deviceID, StatusCode: resp.StatusCode}
	}
	s.log.Debug("connection request accepted", "device", deviceID)
	return nil
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

// ServeHTTP runs the ACS end of CWMP sessions.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "CWMP endpoint: POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.BodyLimit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.log.Warn("CWMP request body too large", "remote", r.RemoteAddr, "limit", s.cfg.BodyLimit)
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		s.log.Warn("reading CWMP request failed", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "cannot read request body", http.StatusBadRequest)
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
		s.serveInform(w, r, env, in)
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
	switch m := env.Body.(type) {
	case *cwmp.TransferComplete:
		s.mu.Unlock()
		s.log.Info("transfer complete", "device", sess.dev.dev.ID, "command_key", m.CommandKey, "fault_code", m.FaultStruct.FaultCode)
		s.reply(w, sess, env.ID, &cwmp.TransferCompleteResponse{})
		return
	case *cwmp.GetRPCMethods:
		s.mu.Unlock()
		s.reply(w, sess, env.ID, &cwmp.GetRPCMethodsResponse{MethodList: []string{"Inform", "GetRPCMethods", "TransferComplete"}})
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
		t.done <- result{msg: env.Body}
	} else {
		s.log.Warn("CPE response with no request outstanding", "device", sess.dev.dev.ID, "method", name)
	}
	s.mu.Unlock()
	s.next(w, r, sess)
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

// touch records activity and re-arms the idle timer. Caller holds s.mu.
func (s *Server) touch(sess *session) {
	sess.lastSeen = s.cfg.Now()
	sess.timer.Reset(s.cfg.SessionTimeout)
}

// endSession removes sess and fails what it owed. Caller holds s.mu.
func (s *Server) endSession(sess *session, why error) {
	sess.timer.Stop()
	delete(s.sessions, sess.id)
	if sess.dev.session == sess {
		sess.dev.session = nil
	}
	s.broadcast()
	if t := sess.inflight; t != nil {
		sess.inflight = nil
		t.done <- result{err: fmt.Errorf("%w: %s for device %s: %w", ErrSessionEnded, t.req.MethodName(), sess.dev.dev.ID, why)}
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
		q.done <- result{err: fmt.Errorf("%w: %s for device %s: session idle timeout", ErrSessionEnded, q.req.MethodName(), sess.dev.dev.ID)}
	}
	sess.dev.queue = nil
}

func (s *Server) serveInform(w http.ResponseWriter, r *http.Request, env *cwmp.Envelope, in *cwmp.Inform) {
	id := DeviceID(in.DeviceId)
	now := s.cfg.Now()
	events := make([]string, 0, len(in.Event))
	for _, e := range in.Event {
		events = append(events, e.EventCode)
	}
	params := make(map[string]string, len(in.ParameterList))
	crURL := ""
	for _, p := range in.ParameterList {
		params[p.Name] = p.Value
		if strings.HasSuffix(p.Name, "ManagementServer.ConnectionRequestURL") {
			crURL = strings.TrimSpace(p.Value)
		}
	}
	s.mu.Lock()
	d, ok := s.devices[id]
	if !ok {
		d = &device{wake: make(chan struct{}, 1)}
		s.devices[id] = d
	}
	if old := d.session; old != nil {
		s.endSession(old, errors.New("the CPE started a new session"))
	}
	if crURL == "" {
		crURL = d.dev.ConnectionRequestURL
	}
	d.dev = Device{
		ID: id, DeviceId: in.DeviceId, ConnectionRequestURL: crURL, LastInform: now, LastEvents: events,
		Params: params, RemoteAddr: r.RemoteAddr, Namespace: env.Namespace,
	}
	d.history = append(d.history, informRecord{at: now, events: events})
	if len(d.history) > 32 {
		d.history = d.history[len(d.history)-32:]
	}
	sess := &session{id: newID(), dev: d, remote: r.RemoteAddr, ns: env.Namespace, lastSeen: now}
	sess.timer = time.AfterFunc(s.cfg.SessionTimeout, func() { s.expire(sess) })
	s.sessions[sess.id] = sess
	d.session = sess
	s.broadcast()
	s.mu.Unlock()

	s.log.Info("inform", "device", id, "events", strings.Join(events, ","), "remote", r.RemoteAddr)
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
	if t := sess.inflight; t != nil {
		sess.inflight = nil
		t.done <- result{err: fmt.Errorf("%w: the CPE sent an empty message instead of answering %s", ErrUnexpectedResponse, t.req.MethodName())}
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
			s.endSession(sess, errors.New("session ended"))
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
