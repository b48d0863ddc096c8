package server

// This file is `act` (docs/api.md, "Actions"): the changes the
// remote-support API makes to a device to fix what a diagnosis found —
// redial the PPPoE WAN, reboot, push the right VLAN, register the LOID
// again — for callers with the configure role, each recorded in the audit
// log before it starts and finished after it; the actions a device's
// latest diagnosis proposes; and the audit log itself.
//
// An action runs synchronously, within the request: it is short (a redial
// or a registration takes seconds, a reboot a minute or two) and the
// caller wants its outcome. Its deadline (APIConfig.ActionTimeout, or
// RebootTimeout) is its own: a caller that hangs up does not stop a change
// half-way. Only one action runs on a device at a time.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/secret"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/cwmptx"
	"fieldagent/drivers/e8"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Errors of the actions.
var (
	// ErrNoSuchWAN means the gateway has no WAN connection carrying the
	// service the action changes (no INTERNET PPPoE WAN, no IPTV WAN).
	ErrNoSuchWAN = errors.New("the gateway has no WAN connection for this service")
	// ErrNotFixed means the action was applied but the device did not
	// reach the state it should have (the WAN still down with an error,
	// ITMS refusing the LOID).
	ErrNotFixed = errors.New("the action was applied but did not fix the device")
	// errInternal marks a failure of the server itself (the store).
	errInternal = errors.New("internal error")
)

// The actions of POST /api/v1/devices/{id}/actions/{action}.
const (
	// ActionRedialPPPoE drops and redials the internet PPPoE WAN and waits
	// until it is up.
	ActionRedialPPPoE = "redial_pppoe"
	// ActionReboot reboots the device and waits for its "1 BOOT" Inform.
	ActionReboot = "reboot"
	// ActionSetWANVLAN sets the VLAN of the internet (then redials) or
	// IPTV WAN; VLAN 0 is untagged.
	ActionSetWANVLAN = "set_wan_vlan"
	// ActionReregisterLOID writes the LOID (the given one, or the
	// gateway's own) so that the gateway registers with ITMS again, and
	// waits for ITMS's answer.
	ActionReregisterLOID = "reregister_loid"
)

// Defaults of APIConfig for the actions.
const (
	// DefaultActionTimeout bounds an action other than a reboot.
	DefaultActionTimeout = 2 * time.Minute
	// DefaultRebootTimeout bounds a reboot, the wait for the device's
	// "1 BOOT" Inform included.
	DefaultRebootTimeout = 5 * time.Minute
	// DefaultActionPollInterval is how often an action re-reads the device
	// while it waits for the WAN or the LOID registration.
	DefaultActionPollInterval = 500 * time.Millisecond
)

const (
	// afterReadTimeout bounds the read of the values after a change, which
	// runs even when the action's deadline has passed.
	afterReadTimeout = 15 * time.Second
	// auditWriteTimeout bounds the store writes that finish an entry.
	auditWriteTimeout = 10 * time.Second
	// defaultAuditLimit and maxAuditLimit are GET /audit's limit= default
	// and cap.
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
	// redactedSet stands for a credential that is set, in audit entries and
	// answers; an unset one is "".
	redactedSet = "(set)"
	// wanInternet and wanIPTV are the WANs set_wan_vlan changes.
	wanInternet = "internet"
	wanIPTV     = "iptv"
)

// actionStore is the subset of *store.Store that the actions and the
// audit log use.
type actionStore interface {
	StartAudit(ctx context.Context, e store.AuditEntry) (int64, error)
	RecordAuditBefore(ctx context.Context, id int64, before []byte) error
	FinishAudit(ctx context.Context, id int64, outcome string, after []byte, errText string) error
	AuditLog(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
}

// actionLog returns cfg.ActionStore, else cfg.Store if it has the
// methods (a *store.Store has), else nil.
func (h *API) actionLog() actionStore {
	if h.cfg.ActionStore != nil {
		return h.cfg.ActionStore
	}
	if st, ok := h.cfg.Store.(actionStore); ok {
		return st
	}
	return nil
}

func noActionStore(w http.ResponseWriter) {
	auth.WriteError(w, http.StatusServiceUnavailable, "this server has no audit log, so it makes no changes",
		"the operator must give the API a store with an audit log (APIConfig.ActionStore)")
}

// actionSpec is one action: the device kinds it applies to and how its
// request body is read.
type actionSpec struct {
	name  string
	kinds []drivers.Kind
	// decode reads the request body (strict JSON; see auth.DecodeJSON) into
	// the action. It answers the request itself when it returns false.
	decode func(w http.ResponseWriter, r *http.Request) (deviceAction, bool)
	// reboot: the action's deadline is RebootTimeout.
	reboot bool
}

// actionSpecs are the actions in the order the API lists them.
func actionSpecs() []actionSpec {
	return []actionSpec{
		{name: ActionRedialPPPoE, kinds: []drivers.Kind{drivers.KindE8},
			decode: decodeEmpty(func() deviceAction { return &redialAction{} })},
		{name: ActionReboot, kinds: []drivers.Kind{drivers.KindE8, drivers.KindITV}, reboot: true,
			decode: decodeEmpty(func() deviceAction { return &rebootAction{} })},
		{name: ActionSetWANVLAN, kinds: []drivers.Kind{drivers.KindE8}, decode: decodeVLAN},
		{name: ActionReregisterLOID, kinds: []drivers.Kind{drivers.KindE8}, decode: decodeLOID},
	}
}

// ActionNames returns the names of the actions the API offers.
func ActionNames() []string {
	var out []string
	for _, s := range actionSpecs() {
		out = append(out, s.name)
	}
	return out
}

func findAction(name string) (actionSpec, bool) {
	for _, s := range actionSpecs() {
		if s.name == name {
			return s, true
		}
	}
	return actionSpec{}, false
}

// deviceAction is one requested action on one device. Its state reads the
// device's relevant values the same way before and after the change.
type deviceAction interface {
	// params are the action's parameters as the audit log records them,
	// credentials redacted.
	params() map[string]any
	// prepare finds what the action changes (a WAN instance) and checks
	// that the device allows it; it changes nothing.
	prepare(ctx context.Context, t *actTarget) error
	state(ctx context.Context, t *actTarget) (map[string]any, error)
	apply(ctx context.Context, t *actTarget) error
}

// actTarget is the device an action works on.
type actTarget struct {
	id      string
	kind    drivers.Kind
	acs     serveACS
	tx      *cwmptx.Device
	poll    time.Duration
	auditID int64
	// secrets are values that must not reach the audit log, an answer or
	// the log (a LOID, its password): errors are scrubbed of them.
	secrets []string
}

func (t *actTarget) addSecret(s string) {
	if s != "" {
		t.secrets = append(t.secrets, s)
	}
}

// scrub replaces every secret of t in s.
func (t *actTarget) scrub(s string) string {
	for _, sec := range t.secrets {
		s = strings.ReplaceAll(s, sec, "(redacted)")
	}
	return s
}

func (t *actTarget) key(op string) string {
	return "fieldagent-act-" + op + "-" + strconv.FormatInt(t.auditID, 10)
}

func (t *actTarget) sleep(ctx context.Context) error {
	tm := time.NewTimer(t.poll)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// ActionResult is the answer to POST /api/v1/devices/{id}/actions/{action},
// whether the action succeeded or not, and what its audit entry records.
type ActionResult struct {
	AuditID  int64  `json:"audit_id"`
	DeviceID string `json:"device_id"`
	Action   string `json:"action"`
	// Outcome is "ok" or "failed".
	Outcome    string          `json:"outcome"`
	Params     json.RawMessage `json:"params,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	// Error, Hint, Kind and FaultCode say why a failed action failed; Kind
	// is device_unreachable, device_timeout, cwmp_fault, not_fixed,
	// unsupported, device_error or internal.
	Error     string `json:"error,omitempty"`
	Hint      string `json:"hint,omitempty"`
	Kind      string `json:"kind,omitempty"`
	FaultCode int    `json:"fault_code,omitempty"`
	// AuditError, if set, says the audit entry could not be finished (it
	// stays "started" until the server marks it interrupted).
	AuditError string `json:"audit_error,omitempty"`
}

// actor serves POST /api/v1/devices/{id}/actions/{action}. It runs one
// action per device at a time.
type actor struct {
	h    *API
	mu   sync.Mutex
	busy map[string]string // device ID → the action running on it
}

// newActor returns the handler of the action route.
func (h *API) newActor() *actor { return &actor{h: h, busy: map[string]string{}} }

// claim marks the device busy with action, or returns the action already
// running on it.
func (a *actor) claim(id, action string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if running, ok := a.busy[id]; ok {
		return running, false
	}
	a.busy[id] = action
	return "", true
}

func (a *actor) release(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.busy, id)
}

func (a *actor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := a.h
	id, name := r.PathValue("id"), r.PathValue("action")
	d, ok := h.cfg.ACS.Device(id)
	if !ok {
		unknownDevice(w, id)
		return
	}
	spec, ok := findAction(name)
	if !ok {
		auth.WriteError(w, http.StatusBadRequest,
			fmt.Sprintf("unknown action %q: the actions are %s", name, strings.Join(ActionNames(), ", ")),
			"GET /api/v1/devices/"+id+"/actions lists the actions the device's latest diagnosis proposes")
		return
	}
	kind := drivers.Kind(h.kind(d))
	if !slices.Contains(spec.kinds, kind) {
		auth.WriteError(w, http.StatusUnprocessableEntity,
			fmt.Sprintf("action %s does not apply to device %s (a %s device); it applies to %s", name, id, orUnknownKind(kind), kindList(spec.kinds)),
			"GET /api/v1/devices/"+id+"/actions lists the actions this device allows")
		return
	}
	act, ok := spec.decode(w, r)
	if !ok {
		return
	}
	st := h.actionLog()
	if st == nil {
		noActionStore(w)
		return
	}
	if running, ok := a.claim(id, name); !ok {
		auth.WriteError(w, http.StatusConflict, fmt.Sprintf("action %s is running on device %s", running, id),
			"wait for it to finish (its answer, or GET /api/v1/audit?device="+id+"), then retry")
		return
	}
	defer a.release(id)

	caller, _ := auth.Caller(r.Context())
	params, err := json.Marshal(act.params())
	if err != nil {
		h.log.Error("api: action params not encoded", "device", id, "action", name, "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the action's parameters could not be encoded; nothing was changed", "see the server's log")
		return
	}
	// The entry is written before anything is read or changed: an action
	// that never finishes (a crash, a kill) still leaves a trace.
	auditID, err := st.StartAudit(r.Context(), store.AuditEntry{
		Actor: caller.Name, Role: string(caller.Role), DeviceID: id, Action: name, Params: params,
	})
	if err != nil {
		h.log.Error("api: audit entry not written; action refused", "device", id, "action", name, "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the audit entry could not be written, so nothing was changed", "see the server's log")
		return
	}
	timeout := h.cfg.ActionTimeout
	if timeout <= 0 {
		timeout = DefaultActionTimeout
	}
	if spec.reboot {
		timeout = h.cfg.RebootTimeout
		if timeout <= 0 {
			timeout = DefaultRebootTimeout
		}
	}
	poll := h.cfg.ActionPollInterval
	if poll <= 0 {
		poll = DefaultActionPollInterval
	}
	t := &actTarget{
		id: id, kind: kind, acs: h.cfg.ACS, poll: poll, auditID: auditID,
		tx: &cwmptx.Device{ACS: h.cfg.ACS, DeviceID: id, Logger: h.log.With("component", "act")},
	}
	// The change runs to its own deadline even if the caller hangs up: a
	// redial or a reboot stopped half-way helps nobody.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
	defer cancel()
	res := a.run(ctx, st, t, name, act, params, caller)
	status := http.StatusOK
	if res.Outcome != store.AuditOK {
		status = actionErrorStatus(res.Kind)
	}
	writeJSON(w, status, res)
}

// run does the action on t and records it in entry t.auditID: the values
// before, the change, the values after, the outcome.
func (a *actor) run(ctx context.Context, st actionStore, t *actTarget, name string, act deviceAction, params []byte, caller auth.Identity) ActionResult {
	h := a.h
	log := h.log.With("device", t.id, "action", name, "audit_id", t.auditID, "caller", caller.Name)
	log.Info("action started", "params", string(params))
	res := ActionResult{AuditID: t.auditID, DeviceID: t.id, Action: name, Params: params, StartedAt: h.cfg.Now()}

	err := act.prepare(ctx, t)
	if err == nil {
		var before map[string]any
		before, err = act.state(ctx, t)
		if err != nil {
			err = fmt.Errorf("read the device before the change (nothing was changed): %w", err)
		} else {
			res.Before, err = json.Marshal(before)
			if err == nil {
				err = st.RecordAuditBefore(ctx, t.auditID, res.Before)
			}
			if err != nil {
				res.Before = nil
				err = fmt.Errorf("%w: record the values before the change (nothing was changed): %w", errInternal, err)
			}
		}
	}
	if err == nil {
		err = act.apply(ctx, t)
		// The values after are read even when the change failed or its
		// deadline passed: the entry should say how the device was left.
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), afterReadTimeout)
		after, aerr := act.state(actx, t)
		acancel()
		if aerr != nil {
			log.Warn("values after the change not read", "err", t.scrub(aerr.Error()))
			after = map[string]any{"unread": t.scrub(aerr.Error())}
		}
		res.After, _ = json.Marshal(after)
	}

	res.Outcome = store.AuditOK
	errText := ""
	if err != nil {
		res.Outcome = store.AuditFailed
		errText = t.scrub(err.Error())
		res.Error = errText
		res.Kind, res.FaultCode, res.Hint = classifyActionError(err)
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer fcancel()
	if ferr := st.FinishAudit(fctx, t.auditID, res.Outcome, res.After, errText); ferr != nil {
		log.Error("audit entry not finished", "err", ferr)
		res.AuditError = "the audit entry could not be finished; it stays started until the server marks it interrupted"
	}
	res.FinishedAt = h.cfg.Now()
	if err != nil {
		log.Warn("action failed", "kind", res.Kind, "fault_code", res.FaultCode, "err", errText)
	} else {
		log.Info("action done")
	}
	return res
}

// classifyActionError returns the error kind of a failed action, its CWMP
// fault code if any, and a hint.
func classifyActionError(err error) (kind string, faultCode int, hint string) {
	var f *cwmp.Fault
	switch {
	case errors.Is(err, errInternal):
		return "internal", 0, "see the server's log"
	case errors.As(err, &f):
		return KindCWMPFault, f.Code, "the device refused the request; its fault code says why"
	case errors.Is(err, acs.ErrUnknownDevice):
		return KindUnknownDevice, 0, "GET /api/v1/devices lists the known devices"
	case errors.Is(err, acs.ErrConnectionRequest):
		return KindDeviceUnreachable, 0, "the device did not answer the ACS's connection request: check that it is powered and online, or wait for its next periodic Inform"
	case errors.Is(err, acs.ErrSessionEnded):
		return KindDeviceUnreachable, 0, "the device dropped its CWMP session: check its uplink; the error says whether the change had started, the after values how the device was left"
	case errors.Is(err, ErrNotFixed):
		return "not_fixed", 0, "the change was made but did not fix the device: see the error and the after values; the cause may need a technician or the back office"
	case errors.Is(err, ErrNoSuchWAN), errors.Is(err, drivers.ErrUnsupported):
		return "unsupported", 0, "the device's configuration does not allow this action"
	case errors.Is(err, drivers.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return KindDeviceTimeout, 0, "the device did not finish in time: it may be busy or offline; read it again before retrying"
	}
	return "device_error", 0, "see the error; read the device before retrying"
}

// actionErrorStatus is the HTTP status of a failed action's kind.
func actionErrorStatus(kind string) int {
	switch kind {
	case "internal":
		return http.StatusInternalServerError
	case KindUnknownDevice:
		return http.StatusNotFound
	case KindDeviceTimeout:
		return http.StatusGatewayTimeout
	case "not_fixed", "unsupported":
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadGateway // device_unreachable, cwmp_fault, device_error
}

func orUnknownKind(k drivers.Kind) string {
	if k == "" || k == "unknown" {
		return "unrecognised"
	}
	return string(k)
}

func kindList(ks []drivers.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, " and ")
}

// decodeEmpty reads an action without parameters: no body, or {}.
func decodeEmpty(newAction func() deviceAction) func(http.ResponseWriter, *http.Request) (deviceAction, bool) {
	return func(w http.ResponseWriter, r *http.Request) (deviceAction, bool) {
		if r.ContentLength != 0 {
			var req struct{}
			if err := auth.DecodeJSON(w, r, &req, 4<<10); err != nil {
				return nil, false
			}
		}
		return newAction(), true
	}
}

// The e8 data model paths the actions read beyond the driver's.
const (
	wanAccessType = e8.WANDevice + "WANCommonInterfaceConfig.WANAccessType"
	gponLink      = "X_CT-COM_WANGponLinkConfig."
	eponLink      = "X_CT-COM_WANEponLinkConfig."
	vlanIDMark    = "X_CT-COM_VLANIDMark"
)

// findWAN returns the gateway's WAN connection for service: for internet
// the WANPPPConnection whose service list has INTERNET, for iptv the
// bridged WANIPConnection with service list OTHER or IPTV.
func (t *actTarget) findWAN(ctx context.Context, service string) (string, error) {
	conns, err := e8.New(t.acs, t.id).WANConnections(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range conns {
		svc := strings.ToUpper(c.ServiceList)
		switch {
		case service == wanInternet && strings.Contains(c.Instance, ".WANPPPConnection.") && strings.Contains(svc, "INTERNET"):
			return c.Instance, nil
		case service == wanIPTV && strings.Contains(c.Instance, ".WANIPConnection.") && c.ConnectionType == "IP_Bridged" && (svc == "OTHER" || svc == "IPTV"):
			return c.Instance, nil
		}
	}
	if service == wanInternet {
		return "", fmt.Errorf("%w: no WANPPPConnection carries INTERNET: the internet service is not installed on this gateway", ErrNoSuchWAN)
	}
	return "", fmt.Errorf("%w: no bridged WANIPConnection carries the IPTV service (OTHER): IPTV is not installed on this gateway", ErrNoSuchWAN)
}

// connDevice returns the WANConnectionDevice instance ("...WANConnectionDevice.2.")
// of a WAN connection instance.
func connDevice(conn string) string {
	const table = "WANConnectionDevice."
	i := strings.Index(conn, table)
	if i < 0 {
		return ""
	}
	j := strings.Index(conn[i+len(table):], ".")
	if j < 0 {
		return ""
	}
	return conn[:i+len(table)+j+1]
}

// vlanSpot is where a WAN connection's VLAN is held: on a PON uplink its
// connection device's link config (Mode 0 is untagged), else the
// connection's own X_CT-COM_VLANIDMark.
type vlanSpot struct {
	mark string // the VLANIDMark parameter
	mode string // the link config's Mode parameter; "" when there is none
}

func vlanSpotOf(access, conn string) vlanSpot {
	switch strings.ToUpper(access) {
	case "GPON":
		return vlanSpot{mark: connDevice(conn) + gponLink + "VLANIDMark", mode: connDevice(conn) + gponLink + "Mode"}
	case "EPON":
		return vlanSpot{mark: connDevice(conn) + eponLink + "VLANIDMark", mode: connDevice(conn) + eponLink + "Mode"}
	}
	return vlanSpot{mark: conn + vlanIDMark}
}

func (v vlanSpot) names() []string {
	if v.mode == "" {
		return []string{v.mark}
	}
	return []string{v.mark, v.mode}
}

// vlan reads the VLAN from values read at v.names(); 0 is untagged.
func (v vlanSpot) vlan(m map[string]string) int {
	if v.mode != "" && (m[v.mode] == "" || m[v.mode] == "0") {
		return 0
	}
	n, _ := strconv.Atoi(m[v.mark])
	return n
}

// values set the VLAN to vlan; 0 is untagged (link Mode 0).
func (v vlanSpot) values(vlan int) []cwmp.ParameterValueStruct {
	ps := []cwmp.ParameterValueStruct{cwmptx.Uint(v.mark, vlan)}
	if v.mode != "" {
		mode := 2 // tag with VLANIDMark
		if vlan == 0 {
			mode = 0
		}
		ps = append(ps, cwmptx.Uint(v.mode, mode))
	}
	return ps
}

// wan is a WAN connection of a gateway an action works on.
type wan struct {
	conn string
	spot vlanSpot
}

// findWANSpot finds the WAN for service and where its VLAN is held.
func (t *actTarget) findWANSpot(ctx context.Context, service string) (wan, error) {
	conn, err := t.findWAN(ctx, service)
	if err != nil {
		return wan{}, err
	}
	m, err := t.tx.Get(ctx, wanAccessType)
	if err != nil {
		return wan{}, fmt.Errorf("read the access type: %w", err)
	}
	return wan{conn: conn, spot: vlanSpotOf(m[wanAccessType], conn)}, nil
}

// wanState reads a WAN connection: its state, its VLAN, and whether a
// PPPoE account is set (never the account).
func (t *actTarget) wanState(ctx context.Context, w wan) (map[string]any, error) {
	names := append([]string{w.conn + "ConnectionStatus", w.conn + "LastConnectionError", w.conn + "ExternalIPAddress", w.conn + "Enable"}, w.spot.names()...)
	ppp := strings.Contains(w.conn, ".WANPPPConnection.")
	if ppp {
		names = append(names, w.conn+"Username")
	}
	m, err := t.tx.Get(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", w.conn, err)
	}
	s := map[string]any{
		"wan":                   w.conn,
		"enable":                cwmptx.SameValue(m[w.conn+"Enable"], "1"),
		"connection_status":     m[w.conn+"ConnectionStatus"],
		"last_connection_error": m[w.conn+"LastConnectionError"],
		"external_ip":           m[w.conn+"ExternalIPAddress"],
		"vlan":                  w.spot.vlan(m),
		"vlan_parameter":        w.spot.mark,
	}
	if ppp {
		s["username"] = redact(m[w.conn+"Username"])
	}
	return s, nil
}

// redact returns redactedSet for a set credential, "" for an unset one.
func redact(v string) string {
	if v == "" {
		return ""
	}
	return redactedSet
}

// redial drops and redials a PPP WAN (Enable 0, then 1) as one
// transaction: if the device fails half-way the WAN is enabled again.
func (t *actTarget) redial(ctx context.Context, conn string) error {
	_, err := t.tx.Transact(ctx, "redial "+conn, []string{conn},
		func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
			_, err := t.tx.Set(ctx, t.key("redial"), []cwmp.ParameterValueStruct{cwmptx.Bool(conn+"Enable", false)})
			return nil, err
		},
		func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
			return t.tx.Set(ctx, t.key("redial"), []cwmp.ParameterValueStruct{cwmptx.Bool(conn+"Enable", true)})
		})
	return err
}

// waitWANUp polls a PPP WAN until it is connected with an address, it
// fails with a final error (ErrNotFixed), or ctx ends (drivers.ErrTimeout).
// A final error counts when two reads a poll interval apart show it: a
// gateway may still show the last dial's error just after the redial.
func (t *actTarget) waitWANUp(ctx context.Context, conn string) error {
	seen := ""
	for {
		m, err := t.tx.Get(ctx, conn+"ConnectionStatus", conn+"ExternalIPAddress", conn+"LastConnectionError")
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: waiting for the WAN to come up: %w", drivers.ErrTimeout, err)
			}
			return fmt.Errorf("read %s: %w", conn, err)
		}
		status, lastErr := m[conn+"ConnectionStatus"], m[conn+"LastConnectionError"]
		if status == "Connected" && m[conn+"ExternalIPAddress"] != "" {
			return nil
		}
		final := ""
		if status == "Disconnected" {
			final = lastErr
		}
		if final != "" && final == seen {
			switch lastErr {
			case "ERROR_AUTHENTICATION_FAILURE":
				return fmt.Errorf("%w: %w: the WAN redialled and the server replied 691 (authentication rejected): check the PPPoE account and password on the order, and that the account is open", ErrNotFixed, drivers.ErrPPPoEAuth)
			case "ERROR_ISP_TIME_OUT", "ERROR_NO_CARRIER":
				return fmt.Errorf("%w: %w: the WAN redialled and got no PADO (%s): check the internet VLAN against the work order, the line and the ONU registration", ErrNotFixed, drivers.ErrPPPoENoServer, lastErr)
			}
		}
		seen = final
		if err := t.sleep(ctx); err != nil {
			return fmt.Errorf("%w: the WAN is %s (last error %s)", drivers.ErrTimeout, orNone(status), orNone(lastErr))
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// redialAction is ActionRedialPPPoE.
type redialAction struct{ w wan }

func (a *redialAction) params() map[string]any { return map[string]any{} }

func (a *redialAction) prepare(ctx context.Context, t *actTarget) (err error) {
	a.w, err = t.findWANSpot(ctx, wanInternet)
	return err
}

func (a *redialAction) state(ctx context.Context, t *actTarget) (map[string]any, error) {
	return t.wanState(ctx, a.w)
}

func (a *redialAction) apply(ctx context.Context, t *actTarget) error {
	if err := t.redial(ctx, a.w.conn); err != nil {
		return err
	}
	return t.waitWANUp(ctx, a.w.conn)
}

// vlanRequest is the body of set_wan_vlan.
type vlanRequest struct {
	// VLAN is the 802.1Q VLAN ID, 1-4094, or 0 for untagged.
	VLAN *int `json:"vlan"`
	// WAN is "internet" (the default) or "iptv".
	WAN string `json:"wan"`
}

func decodeVLAN(w http.ResponseWriter, r *http.Request) (deviceAction, bool) {
	var req vlanRequest
	if err := auth.DecodeJSON(w, r, &req, 4<<10); err != nil {
		return nil, false
	}
	if req.VLAN == nil {
		auth.WriteError(w, http.StatusBadRequest, "set_wan_vlan needs the VLAN", `e.g. {"vlan": 41} or {"vlan": 45, "wan": "iptv"}; take the VLAN from the work order`)
		return nil, false
	}
	if *req.VLAN < 0 || *req.VLAN > 4094 {
		auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("VLAN %d is out of range 0-4094", *req.VLAN), "take the VLAN from the work order; 0 is untagged")
		return nil, false
	}
	switch req.WAN {
	case "":
		req.WAN = wanInternet
	case wanInternet, wanIPTV:
	default:
		auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("wan %q is not internet or iptv", req.WAN), `leave it out for the internet WAN`)
		return nil, false
	}
	return &vlanAction{vlan: *req.VLAN, service: req.WAN}, true
}

// vlanAction is ActionSetWANVLAN.
type vlanAction struct {
	vlan    int
	service string
	w       wan
}

func (a *vlanAction) params() map[string]any {
	return map[string]any{"vlan": a.vlan, "wan": a.service}
}

func (a *vlanAction) prepare(ctx context.Context, t *actTarget) (err error) {
	a.w, err = t.findWANSpot(ctx, a.service)
	return err
}

func (a *vlanAction) state(ctx context.Context, t *actTarget) (map[string]any, error) {
	return t.wanState(ctx, a.w)
}

// apply writes the VLAN as a transaction over the WAN's connection device
// (read back and verified; rolled back if the device faults or drops the
// session), then redials an internet WAN and waits until it is up: a PPP
// session does not move to the new VLAN by itself.
func (a *vlanAction) apply(ctx context.Context, t *actTarget) error {
	_, err := t.tx.Transact(ctx, fmt.Sprintf("set the %s VLAN to %d", a.service, a.vlan), []string{connDevice(a.w.conn)},
		func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
			return t.tx.Set(ctx, t.key("vlan"), a.w.spot.values(a.vlan))
		})
	if err != nil || a.service != wanInternet {
		return err
	}
	if err := t.redial(ctx, a.w.conn); err != nil {
		return fmt.Errorf("the VLAN is %d now, but the redial failed: %w", a.vlan, err)
	}
	return t.waitWANUp(ctx, a.w.conn)
}

// loidRequest is the (optional) body of reregister_loid.
type loidRequest struct {
	// LOID, if set, is written; else the gateway's own LOID is written
	// again.
	LOID secret.Secret `json:"loid"`
	// Password, if set, is written as the LOID password (UserId); else
	// the gateway's is kept.
	Password secret.Secret `json:"password"`
}

func decodeLOID(w http.ResponseWriter, r *http.Request) (deviceAction, bool) {
	var req loidRequest
	if r.ContentLength != 0 {
		if err := auth.DecodeJSON(w, r, &req, 4<<10); err != nil {
			return nil, false
		}
	}
	for _, f := range []struct {
		name string
		v    secret.Secret
	}{{"loid", req.LOID}, {"password", req.Password}} {
		v := f.v.Reveal()
		if len(v) > 64 || strings.IndexFunc(v, func(c rune) bool { return !unicode.IsPrint(c) || c == ' ' }) >= 0 {
			// The message never quotes the value: it is a credential.
			auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s must be at most 64 printable characters without spaces", f.name), "copy it from the work order")
			return nil, false
		}
	}
	return &loidAction{loid: req.LOID, password: req.Password}, true
}

// loidAction is ActionReregisterLOID.
type loidAction struct {
	loid, password secret.Secret
	// write is the LOID written: loid, or the gateway's own.
	write string
	// internet is the internet WAN, whose state the entry shows; zero if
	// the gateway has none.
	internet wan
}

func (a *loidAction) params() map[string]any {
	p := map[string]any{"loid": "(the gateway's)", "password": "(unchanged)"}
	if !a.loid.IsZero() {
		p["loid"] = redactedSet
	}
	if !a.password.IsZero() {
		p["password"] = redactedSet
	}
	return p
}

func (a *loidAction) prepare(ctx context.Context, t *actTarget) error {
	t.addSecret(a.loid.Reveal())
	t.addSecret(a.password.Reveal())
	m, err := t.tx.Get(ctx, e8.UserInfo+"UserName", e8.UserInfo+"Limit", e8.UserInfo+"Times")
	if err != nil {
		return fmt.Errorf("read X_CT-COM_UserInfo: %w", err)
	}
	cur := m[e8.UserInfo+"UserName"]
	t.addSecret(cur)
	a.write = a.loid.Reveal()
	if a.write == "" {
		if cur == "" {
			return fmt.Errorf("%w: the gateway has no LOID to register again: give the LOID (and password) from the work order", drivers.ErrUnsupported)
		}
		a.write = cur
	}
	limit, _ := strconv.Atoi(m[e8.UserInfo+"Limit"])
	times, _ := strconv.Atoi(m[e8.UserInfo+"Times"])
	if limit > 0 && times >= limit {
		return fmt.Errorf("%w: the gateway used all %d registration attempts: factory-reset it or ask ITMS support to reset the counter", drivers.ErrUnsupported, limit)
	}
	if w, err := t.findWANSpot(ctx, wanInternet); err == nil {
		a.internet = w
	} else if !errors.Is(err, ErrNoSuchWAN) {
		return err
	}
	return nil
}

func (a *loidAction) state(ctx context.Context, t *actTarget) (map[string]any, error) {
	m, err := t.tx.Get(ctx, e8.UserInfo+"UserName", e8.UserInfo+"Status", e8.UserInfo+"Result", e8.UserInfo+"Limit", e8.UserInfo+"Times")
	if err != nil {
		return nil, fmt.Errorf("read X_CT-COM_UserInfo: %w", err)
	}
	t.addSecret(m[e8.UserInfo+"UserName"])
	status, result := m[e8.UserInfo+"Status"], m[e8.UserInfo+"Result"]
	r := loidOutcome(status, result)
	s := map[string]any{
		"loid":        redact(m[e8.UserInfo+"UserName"]),
		"loid_status": status,
		"loid_result": result,
		"registered":  r.Registered,
		"detail":      r.Detail,
		"attempts":    m[e8.UserInfo+"Times"],
		"limit":       m[e8.UserInfo+"Limit"],
	}
	if a.internet.conn != "" {
		ws, err := t.wanState(ctx, a.internet)
		if err != nil {
			return nil, err
		}
		s["internet"] = ws
	}
	return s, nil
}

// apply writes the LOID (and password) as a transaction over
// X_CT-COM_UserInfo, which makes the gateway register with ITMS, and polls
// Status/Result until ITMS answers. Neither value is read back into an
// error: the LOID is compared without being quoted.
func (a *loidAction) apply(ctx context.Context, t *actTarget) error {
	ps := []cwmp.ParameterValueStruct{cwmptx.Str(e8.UserInfo+"UserName", a.write)}
	if !a.password.IsZero() {
		ps = append(ps, cwmptx.Str(e8.UserInfo+"UserId", a.password.Reveal()))
	}
	_, err := t.tx.Transact(ctx, "register the LOID", []string{e8.UserInfo},
		func(ctx context.Context) ([]cwmp.ParameterValueStruct, error) {
			_, err := t.tx.Set(ctx, t.key("loid"), ps)
			return nil, err // verified below, without quoting the LOID
		})
	if err != nil {
		return err
	}
	m, err := t.tx.Get(ctx, e8.UserInfo+"UserName")
	if err != nil {
		return fmt.Errorf("read the LOID back: %w", err)
	}
	if m[e8.UserInfo+"UserName"] != a.write {
		return fmt.Errorf("%w: the gateway does not show the LOID written", drivers.ErrVerify)
	}
	var last drivers.LOIDResult
	for {
		m, err := t.tx.Get(ctx, e8.UserInfo+"Status", e8.UserInfo+"Result")
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: waiting for ITMS: %w", drivers.ErrTimeout, err)
			}
			return fmt.Errorf("read the registration status: %w", err)
		}
		last = loidOutcome(m[e8.UserInfo+"Status"], m[e8.UserInfo+"Result"])
		switch last.Outcome {
		case drivers.LOIDSuccess:
			return nil
		case drivers.LOIDFailure:
			return fmt.Errorf("%w: %w: %s", ErrNotFixed, drivers.ErrLOIDRejected, last.Detail)
		}
		if err := t.sleep(ctx); err != nil {
			return fmt.Errorf("%w: loid registration: %s", drivers.ErrTimeout, last.Detail)
		}
	}
}

// loidOutcome judges X_CT-COM_UserInfo Status and Result as the e8 driver
// does (drivers/e8 RegisterLOID).
func loidOutcome(status, result string) drivers.LOIDResult {
	r := drivers.LOIDResult{Status: status, Result: result, Outcome: drivers.LOIDFailure}
	switch status {
	case e8.LOIDStatusRegistered:
		switch result {
		case e8.LOIDResultSuccess:
			r.Registered, r.Outcome, r.Detail = true, drivers.LOIDSuccess, "registered with ITMS; service delivered"
		case e8.LOIDResultFailed:
			r.Detail = "registered with ITMS but service delivery failed: ask ITMS support to re-deliver the work order"
		default:
			r.Outcome, r.Detail = drivers.LOIDInProgress, "registered with ITMS; service delivery in progress"
		}
	case e8.LOIDStatusNoSuchLOID:
		r.Detail = "ITMS does not know this LOID: check the LOID on the work order"
	case e8.LOIDStatusBadPassword:
		r.Detail = "ITMS rejected the LOID password: check the password on the work order"
	case e8.LOIDStatusTimeout:
		r.Detail = "registration timed out: check the optical line and that the ONU is authorised on the OLT"
	case e8.LOIDStatusTaken:
		r.Detail = "the LOID is already bound to another gateway: ask ITMS support to release it"
	default:
		r.Outcome, r.Detail = drivers.LOIDInProgress, "registration in progress"
	}
	return r
}

// rebootAction is ActionReboot.
type rebootAction struct{ root string }

func (a *rebootAction) params() map[string]any { return map[string]any{} }

func (a *rebootAction) prepare(_ context.Context, t *actTarget) error {
	a.root = e8.Root
	if t.kind == drivers.KindITV {
		a.root = "Device."
	}
	return nil
}

func (a *rebootAction) state(ctx context.Context, t *actTarget) (map[string]any, error) {
	up, sv := a.root+"DeviceInfo.UpTime", a.root+"DeviceInfo.SoftwareVersion"
	m, err := t.tx.Get(ctx, up, sv)
	if err != nil {
		return nil, fmt.Errorf("read DeviceInfo: %w", err)
	}
	s := map[string]any{"uptime": m[up], "software_version": m[sv]}
	if d, ok := t.acs.Device(t.id); ok {
		s["last_inform"] = d.LastInform
		s["last_events"] = d.LastEvents
	}
	return s, nil
}

// apply sends Reboot and waits for the "1 BOOT" Inform after the last
// Inform the ACS had (the ACS's clock, not the API's).
func (a *rebootAction) apply(ctx context.Context, t *actTarget) error {
	d, ok := t.acs.Device(t.id)
	if !ok {
		return fmt.Errorf("reboot %s: %w", t.id, acs.ErrUnknownDevice)
	}
	after := d.LastInform.Add(time.Nanosecond)
	if err := t.acs.Reboot(ctx, t.id, t.key("reboot")); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	if _, err := t.acs.WaitInform(ctx, t.id, "1 BOOT", after); err != nil {
		return fmt.Errorf("%w: the device accepted the reboot but sent no \"1 BOOT\" Inform: check its power and lights: %w", drivers.ErrTimeout, err)
	}
	return nil
}

// FindingActions is one finding of a device's latest diagnosis and the
// actions that may fix it.
type FindingActions struct {
	Code     verdict.Code   `json:"code"`
	Severity verdict.Status `json:"severity"`
	Symptom  string         `json:"symptom"`
	// Actions may fix the finding, most likely first; none means a
	// technician's or the back office's work (Fix says what).
	Actions []string `json:"actions"`
	// Note says when the actions help and what they need.
	Note string `json:"note,omitempty"`
	Fix  string `json:"fix"`
}

// DiagnosisRef names the stored diagnosis that proposals come from.
type DiagnosisRef struct {
	JobID      string         `json:"job_id"`
	State      string         `json:"state"`
	FinishedAt time.Time      `json:"finished_at"`
	Status     verdict.Status `json:"status"`
}

// ActionProposals is the answer of GET /api/v1/devices/{id}/actions.
type ActionProposals struct {
	DeviceID string `json:"device_id"`
	// Available are the actions that apply to the device.
	Available []string `json:"available"`
	// Diagnosis is the diagnosis the proposals come from; null when the
	// device has none stored.
	Diagnosis *DiagnosisRef `json:"diagnosis"`
	// Proposed are the actions the findings propose, each once, in the
	// findings' order.
	Proposed []string         `json:"proposed"`
	Findings []FindingActions `json:"findings"`
	Hint     string           `json:"hint,omitempty"`
}

// proposedActions returns the actions that may fix a finding and a note on
// when they help; none means no remote action helps.
func proposedActions(code verdict.Code) ([]string, string) {
	switch code {
	case verdict.CodePPPoEAuthFailed:
		return []string{ActionRedialPPPoE}, "redial once the back office has confirmed the PPPoE account is open and the gateway's password matches the work order; this API does not write PPPoE credentials"
	case verdict.CodeWANDown:
		return []string{ActionRedialPPPoE}, "a redial brings back a WAN that dropped without a final error"
	case verdict.CodePPPoENoServer:
		return []string{ActionSetWANVLAN, ActionRedialPPPoE}, `no access concentrator answered: if the WAN's VLAN differs from the work order's, set it ({"vlan": N}; it redials); else redial after the line is checked`
	case verdict.CodeLOIDNotRegistered:
		return []string{ActionReregisterLOID}, `give the LOID (and password) from the work order ({"loid": "...", "password": "..."}), or none to register the gateway's own again after ITMS was fixed`
	case verdict.CodeONUNotAuthorised:
		return []string{ActionReregisterLOID}, "register again once the OLT team has authorised the ONU"
	}
	return nil, ""
}

// listActions answers GET /api/v1/devices/{id}/actions: the actions that
// apply to the device and those its latest stored diagnosis proposes.
func (h *API) listActions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, ok := h.cfg.ACS.Device(id)
	if !ok {
		unknownDevice(w, id)
		return
	}
	kind := drivers.Kind(h.kind(d))
	out := ActionProposals{DeviceID: id, Available: []string{}, Proposed: []string{}, Findings: []FindingActions{}}
	for _, s := range actionSpecs() {
		if slices.Contains(s.kinds, kind) {
			out.Available = append(out.Available, s.name)
		}
	}
	rs, err := h.cfg.Store.DeviceResults(r.Context(), store.DeviceResultQuery{
		DeviceID: id, Kinds: []string{JobKindDiagnose, JobKindFleetDiagnose}, WithResult: true, Limit: 1,
	})
	if err == nil && len(rs) == 0 {
		out.Hint = "no diagnosis of this device is stored: POST /api/v1/devices/" + id + "/diagnose, then ask again"
		writeJSON(w, http.StatusOK, out)
		return
	}
	var o diagrun.Outcome
	if err == nil {
		err = json.Unmarshal(rs[0].Result, &o)
	}
	if err != nil {
		h.log.Error("api: latest diagnosis not read", "device", id, "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the device's latest diagnosis could not be read from the store", "see the server's log")
		return
	}
	res := rs[0]
	out.Diagnosis = &DiagnosisRef{JobID: res.JobID, State: res.State, FinishedAt: res.FinishedAt, Status: o.Report.Status}
	for _, f := range o.Report.Findings {
		acts, note := proposedActions(f.Code)
		fa := FindingActions{Code: f.Code, Severity: f.Severity, Symptom: f.Symptom, Actions: []string{}, Fix: f.Fix}
		for _, a := range acts {
			if slices.Contains(out.Available, a) {
				fa.Actions = append(fa.Actions, a)
				if !slices.Contains(out.Proposed, a) {
					out.Proposed = append(out.Proposed, a)
				}
			}
		}
		if len(fa.Actions) > 0 {
			fa.Note = note
		}
		out.Findings = append(out.Findings, fa)
	}
	if len(out.Proposed) == 0 {
		out.Hint = "no remote action fixes what the latest diagnosis found: see each finding's fix"
	}
	writeJSON(w, http.StatusOK, out)
}

// AuditView is one audit entry as GET /api/v1/audit answers.
type AuditView struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	Actor      string          `json:"actor"`
	Role       string          `json:"role"`
	DeviceID   string          `json:"device_id"`
	Action     string          `json:"action"`
	Params     json.RawMessage `json:"params,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	Outcome    string          `json:"outcome"`
	Error      string          `json:"error,omitempty"`
}

// listAudit answers GET /api/v1/audit?device=&since=&limit=: since is an
// RFC 3339 time or a duration back from now ("24h"); limit is 1 to 1000
// (default 100). Newest first.
func (h *API) listAudit(w http.ResponseWriter, r *http.Request) {
	st := h.actionLog()
	if st == nil {
		noActionStore(w)
		return
	}
	q := r.URL.Query()
	aq := store.AuditQuery{DeviceID: q.Get("device"), Limit: defaultAuditLimit}
	if s := q.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			aq.Since = t
		} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
			aq.Since = h.cfg.Now().Add(-d)
		} else {
			auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("since %q is neither an RFC 3339 time nor a positive duration", s),
				"e.g. since=2025-03-01T09:00:00Z or since=24h")
			return
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not a number from 1 to %d", s, maxAuditLimit), "leave it out for the newest 100")
			return
		}
		aq.Limit = n
	}
	entries, err := st.AuditLog(r.Context(), aq)
	if err != nil {
		h.log.Error("api: audit log not read", "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the audit log could not be read from the store", "see the server's log")
		return
	}
	out := make([]AuditView, 0, len(entries))
	for _, e := range entries {
		out = append(out, AuditView{
			ID: e.ID, At: e.At, FinishedAt: timePtr(e.FinishedAt), Actor: e.Actor, Role: e.Role, DeviceID: e.DeviceID,
			Action: e.Action, Params: e.Params, Before: e.Before, After: e.After, Outcome: e.Outcome, Error: e.Error,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "count": len(out)})
}
