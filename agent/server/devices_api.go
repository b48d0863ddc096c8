package server

// This file is the device half of the remote-support API (docs/api.md,
// "Devices"): the device list and its search, one device's status (its
// driver's getters), its recent Informs and the findings of its latest
// diagnoses, and the XT-2 routers that serve knows from its config.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/diagrun"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
	"fieldagent/diagnostics/verdict"
	"fieldagent/drivers"
	"fieldagent/drivers/catalog"
	"fieldagent/drivers/xt2"
	"fieldagent/tr069/acs"
	"fieldagent/tr069/genieacs"
)

// Defaults and bounds of the device routes.
const (
	// DefaultStatusTimeout bounds GET /devices/{id}/status.
	DefaultStatusTimeout = 30 * time.Second
	// DefaultDeviceLimit is the device list's page size when the request
	// gives none; MaxDeviceLimit is the largest page it may ask for.
	DefaultDeviceLimit = 1000
	MaxDeviceLimit     = 10000
	// informsPerDevice is how many Informs GET /devices/{id}/events keeps
	// per device.
	informsPerDevice = 32
	// defaultFindingsLimit and maxFindingsLimit bound the diagnoses that
	// GET /devices/{id}/findings reads.
	defaultFindingsLimit = 5
	maxFindingsLimit     = 100
	// gatewayTestBytes is the size of a gateway's download test against
	// APIConfig.SpeedURL.
	gatewayTestBytes = 10_000_000
)

// loidParam ends the name of the parameter an e8 gateway keeps its LOID in
// (drivers/e8 RegisterLOID writes X_CT-COM_UserInfo.UserName).
const loidParam = "X_CT-COM_UserInfo.UserName"

// XT2Target is an XT-2 business router that the API diagnoses over SSH and
// SNMP. Serve knows it from its config: it never informs the ACS.
type XT2Target struct {
	// Name is its device ID in the API (/api/v1/devices/{name}/...); it
	// should not look like an ACS device ID.
	Name string
	// Address is its SSH "host:port", shown in the device list; account=
	// matches it (an order's visit records an XT-2 by its address).
	Address string
	// Access chooses diag's thresholds (lan, adsl, epon, gpon); empty is
	// the default profile.
	Access string
	// Open connects to the router; required. The API closes the driver
	// when the diagnosis or status read is done.
	Open func(ctx context.Context) (*xt2.Driver, error)
}

func (x *XT2Target) summary() DeviceSummary {
	return DeviceSummary{ID: x.Name, Kind: string(drivers.KindXT2), Model: "XT-2", Address: x.Address}
}

// kind is the driver family of an ACS device, or "unknown".
func (h *API) kind(d acs.Device) string {
	e, err := h.kinds.Lookup(drivers.SeenFromInform(d))
	if err != nil {
		return "unknown"
	}
	return string(e.Kind)
}

// isCredentialParam reports whether a parameter holds a credential that no
// answer may show: the LOID and its password, any password, key or PSK.
func isCredentialParam(name string) bool {
	if strings.HasSuffix(name, loidParam) || strings.HasSuffix(name, "X_CT-COM_UserInfo.UserId") ||
		strings.HasSuffix(name, "X_CT-COM_UserInfo.Password") {
		return true
	}
	last := strings.ToLower(name[strings.LastIndexByte(name, '.')+1:])
	for _, w := range []string{"password", "passphrase", "psk", "wepkey", "secret"} {
		if strings.Contains(last, w) {
			return true
		}
	}
	return last == "key"
}

// publicParams is params with every credential's value replaced by
// "******".
func publicParams(params map[string]string) map[string]string {
	if params == nil {
		return nil
	}
	out := make(map[string]string, len(params))
	for k, v := range params {
		if isCredentialParam(k) && v != "" {
			v = "******"
		}
		out[k] = v
	}
	return out
}

// deviceQuery is a parsed GET /api/v1/devices request.
type deviceQuery struct {
	serial, model, text, kind string
	// loid is compared with the device's LOID parameter; it is a
	// credential and never echoed.
	loid string
	// account, if set, restricts the answer to accountIDs (the devices of
	// the account's orders).
	account    string
	accountIDs map[string]bool
	seenSince  time.Time
	seenBefore time.Time
	online     *bool
	limit      int
	offset     int
}

// parseTimeBound reads seen_since or seen_before: an RFC 3339 time, or a
// Go duration meaning that long before now.
func parseTimeBound(key, v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s=%q is neither an RFC 3339 time nor a duration", key, v)
}

func parseDeviceQuery(r *http.Request, now time.Time) (deviceQuery, error) {
	v := r.URL.Query()
	q := deviceQuery{
		serial: v.Get("serial"), model: v.Get("model"), text: strings.ToLower(v.Get("q")), kind: v.Get("kind"),
		loid: v.Get("loid"), account: v.Get("account"), limit: DefaultDeviceLimit,
	}
	var err error
	if s := v.Get("seen_since"); s != "" {
		if q.seenSince, err = parseTimeBound("seen_since", s, now); err != nil {
			return q, err
		}
	}
	if s := v.Get("seen_before"); s != "" {
		if q.seenBefore, err = parseTimeBound("seen_before", s, now); err != nil {
			return q, err
		}
	}
	if s := v.Get("online"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, fmt.Errorf("online=%q is not true or false", s)
		}
		q.online = &b
	}
	if s := v.Get("limit"); s != "" {
		if q.limit, err = strconv.Atoi(s); err != nil || q.limit < 1 || q.limit > MaxDeviceLimit {
			return q, fmt.Errorf("limit=%q is not a number from 1 to %d", s, MaxDeviceLimit)
		}
	}
	if s := v.Get("offset"); s != "" {
		if q.offset, err = strconv.Atoi(s); err != nil || q.offset < 0 {
			return q, fmt.Errorf("offset=%q is not a number from 0 up", s)
		}
	}
	return q, nil
}

// matchACS reports whether an ACS device passes every filter of q.
func (h *API) matchACS(q *deviceQuery, d *acs.Device, now time.Time) bool {
	if q.serial != "" && !strings.EqualFold(d.DeviceId.SerialNumber, q.serial) {
		return false
	}
	if q.accountIDs != nil && !q.accountIDs[d.ID] {
		return false
	}
	if !q.seenSince.IsZero() && d.LastInform.Before(q.seenSince) {
		return false
	}
	if !q.seenBefore.IsZero() && !d.LastInform.Before(q.seenBefore) {
		return false
	}
	if q.loid != "" && !hasLOID(d.Params, q.loid) {
		return false
	}
	if q.online != nil && h.online(*d, now) != *q.online {
		return false
	}
	if q.model != "" || q.text != "" {
		m := model(*d)
		if q.model != "" && !strings.EqualFold(m, q.model) && !strings.EqualFold(d.DeviceId.ProductClass, q.model) {
			return false
		}
		if q.text != "" && !containsLower(q.text, d.ID, d.DeviceId.SerialNumber, m, d.DeviceId.Manufacturer, d.DeviceId.ProductClass) {
			return false
		}
	}
	if q.kind != "" && h.kind(*d) != q.kind {
		return false
	}
	return true
}

// remoteSearcher is an ACS whose device list is searched where it lives
// (GenieACSDevices): the API does not hold it.
type remoteSearcher interface {
	search(ctx context.Context, q *deviceQuery, onlineSince time.Time) ([]acs.Device, int, error)
	counts(onlineSince time.Time) (known, online int)
}

// listRemoteDevices answers the device list from a remoteSearcher: its
// page of devices, then the XT-2s that match once its devices are past.
func (h *API) listRemoteDevices(w http.ResponseWriter, r *http.Request, g remoteSearcher, q *deviceQuery, out DeviceList, now time.Time) {
	devs, total, err := g.search(r.Context(), q, now.Add(-h.cfg.OnlineWindow))
	switch {
	case errors.Is(err, errNotSearchable):
		auth.WriteError(w, http.StatusBadRequest, err.Error(), "over GenieACS the list filters by serial, model, q, loid, account, seen_since, seen_before and online")
		return
	case errors.Is(err, genieacs.ErrBadRequest):
		auth.WriteError(w, http.StatusBadRequest, "GenieACS refused the search: "+err.Error(), "")
		return
	case err != nil:
		h.log.Error("api: GenieACS search failed", "err", err)
		auth.WriteError(w, http.StatusBadGateway, "GenieACS could not be searched: "+err.Error(), "check acs.nbi_url and that GenieACS's NBI is up")
		return
	}
	for _, d := range devs {
		out.Devices = append(out.Devices, h.summary(d, now))
	}
	out.Total = total
	skip := max(0, q.offset-total)
	for _, name := range slices.Sorted(maps.Keys(h.xt2)) {
		if x := h.xt2[name]; matchXT2(q, x) {
			out.Total++
			if skip > 0 {
				skip--
				continue
			}
			if len(out.Devices) < q.limit && q.offset+len(out.Devices) >= total {
				out.Devices = append(out.Devices, x.summary())
			}
		}
	}
	out.Count = len(out.Devices)
	writeJSON(w, http.StatusOK, out)
}

// matchXT2 reports whether an XT-2 of the config passes every filter of
// q. It has no serial, LOID or Informs: a filter on those leaves it out.
func matchXT2(q *deviceQuery, x *XT2Target) bool {
	switch {
	case q.serial != "" || q.loid != "" || !q.seenSince.IsZero() || !q.seenBefore.IsZero() || q.online != nil:
		return false
	case q.accountIDs != nil && !q.accountIDs[x.Address] && !q.accountIDs[x.Name]:
		return false
	case q.model != "" && !strings.EqualFold(q.model, "XT-2") && !strings.EqualFold(q.model, "xt2"):
		return false
	case q.kind != "" && q.kind != string(drivers.KindXT2):
		return false
	case q.text != "" && !containsLower(q.text, x.Name, x.Address, "XT-2"):
		return false
	}
	return true
}

// hasLOID reports whether the Inform's parameters carry the LOID.
func hasLOID(params map[string]string, loid string) bool {
	for k, v := range params {
		if v == loid && strings.HasSuffix(k, loidParam) {
			return true
		}
	}
	return false
}

// containsLower reports whether any field contains sub, which is lower
// case, ignoring case.
func containsLower(sub string, fields ...string) bool {
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), sub) {
			return true
		}
	}
	return false
}

// DeviceList is the answer of GET /api/v1/devices: a page of the devices
// that match, Total of them in all.
type DeviceList struct {
	Devices []DeviceSummary `json:"devices"`
	// Count is len(Devices); Total how many devices match.
	Count  int `json:"count"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// listDevices answers GET /api/v1/devices: the ACS's devices by ID, then
// the XT-2s by name, filtered (docs/api.md) and paged. It reads the ACS's
// registry once, and the store once when account= is given.
func (h *API) listDevices(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	q, err := parseDeviceQuery(r, now)
	if err != nil {
		auth.WriteError(w, http.StatusBadRequest, err.Error(), "see docs/api.md for the device list's parameters")
		return
	}
	if q.account != "" {
		ids, err := h.cfg.Store.DevicesByAccount(r.Context(), q.account)
		if err != nil {
			h.log.Error("api: devices of an account not read", "err", err)
			auth.WriteError(w, http.StatusInternalServerError, "the account's orders could not be read from the store", "see the server's log")
			return
		}
		q.accountIDs = make(map[string]bool, len(ids))
		for _, id := range ids {
			q.accountIDs[id] = true
		}
	}
	out := DeviceList{Devices: []DeviceSummary{}, Limit: q.limit, Offset: q.offset}
	if g, ok := h.cfg.ACS.(remoteSearcher); ok {
		h.listRemoteDevices(w, r, g, &q, out, now)
		return
	}
	take := func(s func() DeviceSummary) {
		out.Total++
		if out.Total > q.offset && len(out.Devices) < q.limit {
			out.Devices = append(out.Devices, s())
		}
	}
	var matched []DeviceSummary
	h.eachDevice(func(d *acs.Device) {
		if h.matchACS(&q, d, now) {
			matched = append(matched, h.summary(*d, now))
		}
	})
	slices.SortFunc(matched, func(a, b DeviceSummary) int { return strings.Compare(a.ID, b.ID) })
	for _, m := range matched {
		take(func() DeviceSummary { return m })
	}
	for _, name := range slices.Sorted(maps.Keys(h.xt2)) {
		if x := h.xt2[name]; matchXT2(&q, x) {
			take(x.summary)
		}
	}
	out.Count = len(out.Devices)
	writeJSON(w, http.StatusOK, out)
}

// DeviceStatus is what GET /devices/{id}/status read from the device: its
// identity and the StatusReader getters' answers (gateways), or the
// router's WAN and SNMP status (XT-2). A getter the device does not have
// is listed in Unsupported; one that failed is in Errors. It carries no
// credential: the drivers never read a password or key back.
type DeviceStatus struct {
	DeviceID string            `json:"device_id"`
	ReadAt   time.Time         `json:"read_at"`
	Identity *drivers.Identity `json:"identity,omitempty"`

	WAN      []drivers.WANStatus  `json:"wan,omitempty"`
	Optical  *drivers.Optical     `json:"optical,omitempty"`
	DSL      *drivers.DSLLine     `json:"dsl,omitempty"`
	LANPorts []drivers.LANPort    `json:"lan_ports,omitempty"`
	WiFi     []drivers.WiFiStatus `json:"wifi,omitempty"`
	LANHosts []drivers.LANHost    `json:"lan_hosts,omitempty"`
	// XT2 is an XT-2's SNMP status.
	XT2 *xt2.Status `json:"xt2,omitempty"`

	Unsupported []string          `json:"unsupported,omitempty"`
	Errors      map[string]string `json:"errors,omitempty"`
}

// getter records one getter's answer in st.
func getter[T any](st *DeviceStatus, name string, read func() (T, error), keep func(T)) {
	v, err := read()
	switch {
	case errors.Is(err, drivers.ErrUnsupported):
		st.Unsupported = append(st.Unsupported, name)
	case err != nil:
		if st.Errors == nil {
			st.Errors = map[string]string{}
		}
		st.Errors[name] = err.Error()
	default:
		keep(v)
	}
}

// deviceStatus answers GET /api/v1/devices/{id}/status: it opens the
// device's driver and runs its getters within StatusTimeout.
func (h *API) deviceStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.StatusTimeout)
	defer cancel()
	st := DeviceStatus{DeviceID: id}
	var err error
	if x, ok := h.xt2[id]; ok {
		err = h.xt2Status(ctx, x, &st)
	} else if d, ok := h.cfg.ACS.Device(id); ok {
		err = h.tr069Status(ctx, d, &st)
	} else {
		unknownDevice(w, id)
		return
	}
	if err != nil {
		h.log.Warn("api: device status not read", "device", id, "err", err)
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		auth.WriteError(w, status, fmt.Sprintf("the status of %s could not be read: %v", id, err),
			"check that the device is online (GET /api/v1/devices/"+id+") and retry")
		return
	}
	st.ReadAt = h.cfg.Now()
	writeJSON(w, http.StatusOK, st)
}

func (h *API) tr069Status(ctx context.Context, d acs.Device, st *DeviceStatus) error {
	reg := catalog.New(catalog.Options{ACS: h.cfg.ACS, Logger: h.log})
	drv, _, err := catalog.OpenTR069(ctx, reg, d)
	if err != nil {
		return fmt.Errorf("open a driver: %w", err)
	}
	ident, err := drv.Identify(ctx)
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	st.Identity = &ident
	sr, ok := drv.(drivers.StatusReader)
	if !ok {
		st.Unsupported = append(st.Unsupported, "wan", "optical", "dsl", "lan_ports", "wifi", "lan_hosts")
		return nil
	}
	getter(st, "wan", func() ([]drivers.WANStatus, error) { return sr.WANConnections(ctx) }, func(v []drivers.WANStatus) { st.WAN = v })
	getter(st, "optical", func() (drivers.Optical, error) { return sr.Optical(ctx) }, func(v drivers.Optical) { st.Optical = &v })
	getter(st, "dsl", func() (drivers.DSLLine, error) { return sr.DSLLine(ctx) }, func(v drivers.DSLLine) { st.DSL = &v })
	getter(st, "lan_ports", func() ([]drivers.LANPort, error) { return sr.LANPorts(ctx) }, func(v []drivers.LANPort) { st.LANPorts = v })
	getter(st, "wifi", func() ([]drivers.WiFiStatus, error) { return sr.WiFi(ctx) }, func(v []drivers.WiFiStatus) { st.WiFi = v })
	getter(st, "lan_hosts", func() ([]drivers.LANHost, error) { return sr.LANHosts(ctx) }, func(v []drivers.LANHost) { st.LANHosts = v })
	return ctx.Err()
}

func (h *API) xt2Status(ctx context.Context, x *XT2Target, st *DeviceStatus) error {
	drv, err := x.Open(ctx)
	if err != nil {
		return fmt.Errorf("connect to the XT-2: %w", err)
	}
	defer drv.Close()
	ident, err := drv.Identify(ctx)
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	st.Identity = &ident
	getter(st, "wan", func() (drivers.WANStatus, error) { return drv.WANStatus(ctx) }, func(v drivers.WANStatus) { st.WAN = []drivers.WANStatus{v} })
	getter(st, "xt2", func() (xt2.Status, error) { return drv.Status(ctx) }, func(v xt2.Status) { st.XT2 = &v })
	return ctx.Err()
}

// diagnoseXT2 runs diagrun on an XT-2 of the config.
func (h *API) diagnoseXT2(ctx context.Context, x *XT2Target, probes []string) (diagrun.Outcome, error) {
	drv, err := x.Open(ctx)
	if err != nil {
		return diagrun.Outcome{}, fmt.Errorf("connect to XT-2 %s: %w", x.Name, err)
	}
	defer drv.Close()
	site := diagrun.Site{XT2: drv, Access: x.Access}
	site.GatewayTests, site.GatewayTargets = diagrun.GatewayTests(drv, h.cfg.SpeedURL, gatewayTestBytes)
	return diagrun.Run(ctx, site, diagrun.Options{Timeout: h.cfg.StepTimeout, Logger: h.log.With("device", x.Name), Probes: probes})
}

// checkProbes answers 400 and returns false if a probe name is unknown.
func checkProbes(w http.ResponseWriter, probes []string) bool {
	for _, p := range probes {
		if !diagrun.ValidProbe(p) {
			auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("unknown probe %q", p),
				"probes are "+strings.Join(diagrun.ProbeNames(), ", ")+", or a gateway test's gateway_… name; leave probes out to run them all")
			return false
		}
	}
	return true
}

// InformView is one Inform of a device: when, and its event codes.
type InformView struct {
	At     time.Time `json:"at"`
	Events []string  `json:"events"`
}

// informLog keeps the last informsPerDevice Informs of every device that
// informed while the API ran.
type informLog struct {
	mu   sync.Mutex
	devs map[string]*informRing
}

// informRing is a ring of Informs: next is where the next one goes, n how
// many it holds.
type informRing struct {
	buf  [informsPerDevice]InformView
	next int
	n    int
}

func newInformLog() *informLog { return &informLog{devs: map[string]*informRing{}} }

func (l *informLog) add(ev acs.InformEvent) {
	codes := make([]string, len(ev.Events))
	for i, e := range ev.Events {
		codes[i] = e.EventCode
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.devs[ev.DeviceID]
	if r == nil {
		r = &informRing{}
		l.devs[ev.DeviceID] = r
	}
	r.buf[r.next] = InformView{At: ev.At, Events: codes}
	r.next = (r.next + 1) % informsPerDevice
	r.n = min(r.n+1, informsPerDevice)
}

// recent returns the device's Informs, newest first.
func (l *informLog) recent(id string) []InformView {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.devs[id]
	if r == nil {
		return nil
	}
	out := make([]InformView, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+informsPerDevice)%informsPerDevice])
	}
	return out
}

// DeviceEvents is the answer of GET /devices/{id}/events.
type DeviceEvents struct {
	DeviceID string       `json:"device_id"`
	Informs  []InformView `json:"informs"`
	// Source is "api" for the Informs the API saw while it ran, or
	// "registry" for those the ACS kept in its device record (after a
	// restart, until the device informs again).
	Source string `json:"source"`
}

// deviceEvents answers GET /api/v1/devices/{id}/events: the device's recent
// Informs, newest first.
func (h *API) deviceEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, ok := h.cfg.ACS.Device(id)
	if !ok {
		unknownDevice(w, id)
		return
	}
	out := DeviceEvents{DeviceID: id, Informs: h.events.recent(id), Source: "api"}
	if len(out.Informs) == 0 {
		out.Source = "registry"
		out.Informs = []InformView{}
		for i := len(d.Events) - 1; i >= 0 && len(out.Informs) < informsPerDevice; i-- {
			v := InformView{At: d.Events[i].At, Events: []string{}}
			for _, e := range d.Events[i].Events {
				v.Events = append(v.Events, e.EventCode)
			}
			out.Informs = append(out.Informs, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// FindingView is one finding of a diagnosis, in English.
type FindingView struct {
	Code     string   `json:"code"`
	Severity string   `json:"severity"`
	Symptom  string   `json:"symptom"`
	Cause    string   `json:"cause"`
	Fix      string   `json:"fix"`
	Evidence []string `json:"evidence,omitempty"`
}

// DiagnosisFindings are the findings of one stored diagnosis.
type DiagnosisFindings struct {
	JobID      string        `json:"job_id"`
	JobKind    string        `json:"job_kind"`
	State      string        `json:"state"`
	FinishedAt time.Time     `json:"finished_at"`
	Status     string        `json:"status"`
	Findings   []FindingView `json:"findings"`
}

// DeviceFindings is the answer of GET /devices/{id}/findings.
type DeviceFindings struct {
	DeviceID  string              `json:"device_id"`
	Diagnoses []DiagnosisFindings `json:"diagnoses"`
}

// deviceFindings answers GET /api/v1/devices/{id}/findings?limit=: the
// findings of the device's latest stored diagnoses, newest first.
func (h *API) deviceFindings(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := h.xt2[id]; !ok {
		if _, ok := h.cfg.ACS.Device(id); !ok {
			unknownDevice(w, id)
			return
		}
	}
	limit := defaultFindingsLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxFindingsLimit {
			auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit=%q is not a number from 1 to %d", s, maxFindingsLimit), "")
			return
		}
		limit = n
	}
	rs, err := h.cfg.Store.DeviceResults(r.Context(), store.DeviceResultQuery{
		DeviceID: id, Kinds: []string{JobKindDiagnose, JobKindFleetDiagnose}, WithResult: true, Limit: limit,
	})
	if err != nil {
		h.log.Error("api: device results not read", "device", id, "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the device's diagnoses could not be read from the store", "see the server's log")
		return
	}
	out := DeviceFindings{DeviceID: id, Diagnoses: []DiagnosisFindings{}}
	for _, res := range rs {
		var o diagrun.Outcome
		if err := json.Unmarshal(res.Result, &o); err != nil {
			h.log.Warn("api: stored diagnosis not readable", "job", res.JobID, "device", id, "err", err)
			continue
		}
		df := DiagnosisFindings{JobID: res.JobID, JobKind: res.JobKind, State: res.State, FinishedAt: res.FinishedAt,
			Status: string(o.Report.Status), Findings: findingViews(o.Report.Findings)}
		out.Diagnoses = append(out.Diagnoses, df)
	}
	writeJSON(w, http.StatusOK, out)
}

func findingViews(fs []verdict.Finding) []FindingView {
	out := make([]FindingView, 0, len(fs))
	for _, f := range fs {
		out = append(out, FindingView{Code: string(f.Code), Severity: string(f.Severity), Symptom: f.Symptom,
			Cause: f.Cause, Fix: f.Fix, Evidence: f.Evidence})
	}
	return out
}
