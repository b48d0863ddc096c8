package genieacs_test

// fakeNBI is a SYNTHETIC GenieACS NBI — not a recording — for what the
// recorded exchanges lack: a TR-143 test the device runs after a
// setParameterValues, a reboot followed by a BOOT Inform, tags, a failed
// transfer, and a fleet of devices for the benchmark. Its documents,
// tasks, faults and answers (status, reason phrase, total header,
// plain-text errors) are shaped like the recorded ones in testdata/nbi;
// its devices look like genieacs-sim's BM632w with the parameters the e8
// driver reads added.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeParam struct {
	value    any
	typ      string
	ts       time.Time
	writable bool
}

type fakeDevice struct {
	id, oui, pc, sn string
	params          map[string]*fakeParam
	registered      time.Time
	lastInform      time.Time
	lastBoot        time.Time // visible from bootAt on
	bootAt          time.Time
	tags            []string
	offline         bool
	rebootFault     bool
	downloadFault   bool
	// transferFault makes the download task succeed and the transfer fail
	// (GenieACS records the TransferComplete's fault on the task's channel).
	transferFault bool
	// diagPolls is, per diagnostics object, how many getParameterValues of
	// its DiagnosticsState still read Requested; -1 never finishes.
	diagPolls map[string]int
}

type fakeNBI struct {
	t testing.TB
	// latency is added to every task (the device's session).
	latency time.Duration
	// diagPolls is how many polls a diagnostics test reads Requested.
	diagPolls int
	// bootDelay is how long after a reboot task the BOOT Inform comes.
	bootDelay time.Duration

	mu      sync.Mutex
	devices map[string]*fakeDevice
	tasks   map[string]map[string]any
	faults  map[string]map[string]any
	nextID  int
	// counts of requests by "METHOD collection" and of tasks by name.
	requests map[string]int
	taskRuns map[string]int
	auth     []string

	inflight, peak atomic.Int64
}

func newFakeNBI(t testing.TB) *fakeNBI {
	return &fakeNBI{t: t, diagPolls: 2, bootDelay: 20 * time.Millisecond, devices: map[string]*fakeDevice{},
		tasks: map[string]map[string]any{}, faults: map[string]map[string]any{},
		requests: map[string]int{}, taskRuns: map[string]int{}}
}

// start serves f on loopback until the test ends.
func (f *fakeNBI) start() *httptest.Server {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	return srv
}

// addDevice adds a BM632w-like gateway with serial sn; its id is returned.
func (f *fakeNBI) addDevice(sn string) string {
	now := time.Now().UTC()
	d := &fakeDevice{id: "202BC1-BM632w-" + sn, oui: "202BC1", pc: "BM632w", sn: sn, params: map[string]*fakeParam{},
		registered: now.Add(-time.Hour), lastInform: now.Add(-time.Minute), diagPolls: map[string]int{}}
	igd := "InternetGatewayDevice."
	set := func(name string, v any, typ string, w bool) {
		d.params[igd+name] = &fakeParam{value: v, typ: typ, ts: now.Add(-time.Minute), writable: w}
	}
	s, u, b := "xsd:string", "xsd:unsignedInt", "xsd:boolean"
	set("DeviceInfo.Manufacturer", "Huawei Technologies Co., Ltd.", s, false)
	set("DeviceInfo.ManufacturerOUI", "202BC1", s, false)
	set("DeviceInfo.ModelName", "BM632w", s, false)
	set("DeviceInfo.ProductClass", "BM632w", s, false)
	set("DeviceInfo.SerialNumber", sn, s, false)
	set("DeviceInfo.SoftwareVersion", "V100R001IRQC56B017", s, false)
	set("DeviceInfo.HardwareVersion", "40501", s, false)
	set("DeviceInfo.UpTime", 213138, u, false)
	set("DeviceSummary", "InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1)", s, false)
	set("ManagementServer.ConnectionRequestURL", "http://127.0.0.1:35581/", s, false)
	set("ManagementServer.PeriodicInformInterval", 300, u, true)
	set("LANDevice.1.Hosts.HostNumberOfEntries", 6, u, false)
	set("WANDevice.1.WANCommonInterfaceConfig.WANAccessType", "Ethernet", s, false)
	set("WANDevice.1.WANCommonInterfaceConfig.PhysicalLinkStatus", "Up", s, false)
	wan := "WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
	set(wan+"ConnectionStatus", "Connected", s, false)
	set(wan+"ConnectionType", "IP_Routed", s, true)
	set(wan+"ExternalIPAddress", "172.3.89.139", s, true)
	set(wan+"NATEnabled", 1, u, true)
	set(wan+"Uptime", 62703, u, false)
	for _, n := range []string{"DiagnosticsState", "Interface", "DownloadURL", "ROMTime", "BOMTime", "EOMTime", "TCPOpenRequestTime", "TCPOpenResponseTime"} {
		set("DownloadDiagnostics."+n, "", s, n == "DiagnosticsState" || n == "Interface" || n == "DownloadURL")
	}
	set("DownloadDiagnostics.DiagnosticsState", "None", s, true)
	for _, n := range []string{"DSCP", "EthernetPriority", "TestBytesReceived", "TotalBytesReceived"} {
		set("DownloadDiagnostics."+n, 0, u, n == "DSCP" || n == "EthernetPriority")
	}
	set("IPPingDiagnostics.DiagnosticsState", "None", s, true)
	set("IPPingDiagnostics.Host", "", s, true)
	set("IPPingDiagnostics.Interface", "", s, true)
	for _, n := range []string{"NumberOfRepetitions", "SuccessCount", "FailureCount", "AverageResponseTime", "MinimumResponseTime", "MaximumResponseTime"} {
		set("IPPingDiagnostics."+n, 0, u, n == "NumberOfRepetitions")
	}
	set("X_HUAWEI_FireWall.CurrentLevel", true, b, true)
	f.mu.Lock()
	f.devices[d.id] = d
	f.mu.Unlock()
	return d.id
}

func (f *fakeNBI) device(id string) *fakeDevice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devices[id]
}

func (f *fakeNBI) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[key]
}

func (f *fakeNBI) runs(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taskRuns[name]
}

func (f *fakeNBI) queued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tasks)
}

// ServeHTTP routes like genieacs-nbi.
func (f *fakeNBI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests[r.Method+" "+parts[0]]++
	if a := r.Header.Get("Authorization"); a != "" {
		f.auth = append(f.auth, a)
	}
	f.mu.Unlock()
	q := r.URL.Query()
	switch {
	case parts[0] == "devices" && len(parts) == 1 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		f.listDevices(w, r, q)
	case parts[0] == "devices" && len(parts) == 3 && parts[2] == "tasks" && r.Method == http.MethodPost:
		f.postTask(w, parts[1], q, body)
	case parts[0] == "devices" && len(parts) == 4 && parts[2] == "tags":
		f.tag(w, parts[1], parts[3], r.Method == http.MethodPost)
	case (parts[0] == "tasks" || parts[0] == "faults") && len(parts) == 1 && r.Method == http.MethodGet:
		f.listColl(w, parts[0], q)
	case parts[0] == "tasks" && len(parts) == 2 && r.Method == http.MethodDelete:
		f.mu.Lock()
		_, ok := f.tasks[parts[1]]
		delete(f.tasks, parts[1])
		f.mu.Unlock()
		if !ok {
			plain(w, http.StatusNotFound, "Task not found")
			return
		}
		w.Header().Set("GenieACS-Version", "1.3.0-dev+fake")
	case parts[0] == "faults" && len(parts) == 2 && r.Method == http.MethodDelete:
		f.mu.Lock()
		_, ok := f.faults[parts[1]]
		delete(f.faults, parts[1])
		if _, task, found := strings.Cut(parts[1], ":task_"); found {
			delete(f.tasks, task)
		}
		f.mu.Unlock()
		if !ok {
			plain(w, http.StatusNotFound, "Fault not found")
		}
	default:
		plain(w, http.StatusNotFound, "Not found")
	}
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("GenieACS-Version", "1.3.0-dev+fake")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// raw answers with a reason phrase net/http cannot set: it hijacks the
// connection, writes the status line itself and closes.
func raw(w http.ResponseWriter, status int, reason string, body []byte) {
	c, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nGenieACS-Version: 1.3.0-dev+fake\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, reason, len(body))
	_, _ = buf.Write(body)
	_ = buf.Flush()
}

// writeList answers a list the way GenieACS streams it.
func writeList(w http.ResponseWriter, head bool, items []any) {
	w.Header().Set("GenieACS-Version", "1.3.0-dev+fake")
	w.Header().Set("Content-Type", "application/json")
	w.Header()["total"] = []string{strconv.Itoa(len(items))}
	if head {
		return
	}
	parts := make([]string, len(items))
	for i, it := range items {
		b, _ := json.Marshal(it)
		parts[i] = string(b)
	}
	_, _ = io.WriteString(w, "[\n"+strings.Join(parts, ",\n")+"\n]")
}

func filterOf(w http.ResponseWriter, q url.Values) (map[string]any, bool) {
	m := map[string]any{}
	if s := q.Get("query"); s != "" {
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			plain(w, http.StatusBadRequest, "SyntaxError: "+err.Error())
			return nil, false
		}
	}
	return m, true
}

func (f *fakeNBI) listDevices(w http.ResponseWriter, r *http.Request, q url.Values) {
	filter, ok := filterOf(w, q)
	if !ok {
		return
	}
	var proj []string
	if p := q.Get("projection"); p != "" {
		proj = strings.Split(p, ",")
	}
	f.mu.Lock()
	var ids []string
	if want, ok := filter["_id"].(string); ok {
		if f.devices[want] != nil {
			ids = append(ids, want)
		}
	} else {
		for id := range f.devices {
			ids = append(ids, id)
		}
		sort.Strings(ids)
	}
	items := make([]any, 0, len(ids))
	for _, id := range ids {
		items = append(items, f.devices[id].doc(proj, time.Now()))
	}
	f.mu.Unlock()
	writeList(w, r.Method == http.MethodHead, items)
}

func included(name string, proj []string) bool {
	if proj == nil {
		return true
	}
	for _, p := range proj {
		if name == p || strings.HasPrefix(name, p+".") {
			return true
		}
	}
	return false
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// doc renders the device document as the NBI does. Caller holds f.mu.
func (d *fakeDevice) doc(proj []string, now time.Time) map[string]any {
	doc := map[string]any{"_id": d.id}
	top := map[string]any{
		"_deviceId":   map[string]any{"_Manufacturer": "Huawei Technologies Co., Ltd.", "_OUI": d.oui, "_ProductClass": d.pc, "_SerialNumber": d.sn},
		"_registered": ts(d.registered), "_lastInform": ts(d.lastInform),
	}
	if !d.lastBoot.IsZero() && !now.Before(d.bootAt) {
		top["_lastBoot"] = ts(d.lastBoot)
	}
	if len(d.tags) > 0 {
		top["_tags"] = append([]string(nil), d.tags...)
	}
	for k, v := range top {
		if included(k, proj) {
			doc[k] = v
		}
	}
	node := func(path string) map[string]any {
		cur := doc
		for _, s := range strings.Split(path, ".") {
			next, ok := cur[s].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[s] = next
			}
			cur = next
		}
		return cur
	}
	objects := map[string]bool{}
	for name, p := range d.params {
		segs := strings.Split(name, ".")
		for i := 1; i < len(segs); i++ {
			objects[strings.Join(segs[:i], ".")] = true
		}
		if !included(name, proj) {
			continue
		}
		n := node(name)
		n["_object"], n["_timestamp"], n["_type"], n["_value"], n["_writable"] = false, ts(p.ts), p.typ, p.value, p.writable
	}
	for o := range objects {
		if included(o, proj) {
			n := node(o)
			n["_object"], n["_writable"] = true, false
		}
	}
	return doc
}

func (f *fakeNBI) tag(w http.ResponseWriter, id, tag string, add bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[id]
	if d == nil {
		plain(w, http.StatusNotFound, "No such device")
		return
	}
	var kept []string
	for _, t := range d.tags {
		if t != tag {
			kept = append(kept, t)
		}
	}
	if add {
		kept = append(kept, tag)
	}
	d.tags = kept
}

func (f *fakeNBI) listColl(w http.ResponseWriter, coll string, q url.Values) {
	filter, ok := filterOf(w, q)
	if !ok {
		return
	}
	f.mu.Lock()
	src := f.tasks
	if coll == "faults" {
		src = f.faults
	}
	var ids []string
	for id := range src {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var items []any
	for _, id := range ids {
		match := true
		for k, v := range filter {
			if src[id][k] != v {
				match = false
			}
		}
		if match {
			items = append(items, src[id])
		}
	}
	f.mu.Unlock()
	writeList(w, false, items)
}

func (f *fakeNBI) postTask(w http.ResponseWriter, id string, q url.Values, body []byte) {
	f.mu.Lock()
	d := f.devices[id]
	f.mu.Unlock()
	if d == nil {
		plain(w, http.StatusNotFound, "No such device")
		return
	}
	if len(body) == 0 {
		w.Header().Set("GenieACS-Version", "1.3.0-dev+fake")
		return // a connection request only
	}
	var task map[string]any
	if err := json.Unmarshal(body, &task); err != nil {
		plain(w, http.StatusBadRequest, "SyntaxError: "+err.Error())
		return
	}
	now := time.Now().UTC()
	f.mu.Lock()
	f.nextID++
	tid := fmt.Sprintf("6b0715%018x", f.nextID)
	task["_id"], task["device"], task["timestamp"] = tid, id, ts(now)
	offline := d.offline
	if offline || !q.Has("connection_request") {
		f.tasks[tid] = task
	}
	f.mu.Unlock()
	answer, _ := json.Marshal(task)
	switch {
	case !q.Has("connection_request"):
		raw(w, http.StatusAccepted, "Accepted", answer)
		return
	case offline:
		raw(w, http.StatusAccepted, "Device is offline", answer)
		return
	}
	time.Sleep(f.latency) // the CWMP session
	f.mu.Lock()
	name, _ := task["name"].(string)
	f.taskRuns[name]++
	fault := d.run(f, task, time.Now().UTC())
	if fault == nil && name == "download" && d.transferFault {
		fid := id + ":task_" + tid
		tf := cwmpFault("9010", "Download failure")
		tf["_id"], tf["device"], tf["channel"], tf["timestamp"], tf["retries"] = fid, id, "task_"+tid, ts(now), 0
		f.faults[fid] = tf
	}
	if fault != nil {
		fid := id + ":task_" + tid
		fault["_id"], fault["device"], fault["channel"], fault["timestamp"], fault["retries"] = fid, id, "task_"+tid, ts(now), 0
		fault["provisions"] = `[["` + name + `"]]`
		f.faults[fid] = fault
		f.tasks[tid] = task
	}
	f.mu.Unlock()
	if fault != nil {
		raw(w, http.StatusAccepted, "Task faulted", answer)
		return
	}
	w.Header().Set("GenieACS-Version", "1.3.0-dev+fake")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
}

func cwmpFault(code, msg string) map[string]any {
	return map[string]any{"code": "cwmp." + code, "message": msg,
		"detail": map[string]any{"faultCode": code, "faultString": msg, "setParameterValuesFault": nil}}
}

// run applies a task to the device; it returns a fault document or nil.
// Caller holds f.mu.
func (d *fakeDevice) run(f *fakeNBI, task map[string]any, now time.Time) map[string]any {
	d.lastInform = now
	switch task["name"] {
	case "getParameterValues":
		names, _ := task["parameterNames"].([]any)
		for _, n := range names {
			name, _ := n.(string)
			p := d.params[name]
			if p == nil {
				continue
			}
			p.ts = now
			if obj, ok := strings.CutSuffix(name, "DiagnosticsState"); ok && p.value == "Requested" {
				if left := d.diagPolls[obj]; left > 0 {
					d.diagPolls[obj] = left - 1
				} else if left == 0 {
					d.finishDiagnostics(obj, now)
				}
			}
		}
	case "refreshObject":
		obj, _ := task["objectName"].(string)
		for name, p := range d.params {
			if obj == "" || strings.HasPrefix(name, obj+".") {
				p.ts = now
			}
		}
	case "setParameterValues":
		list, _ := task["parameterValues"].([]any)
		for _, it := range list {
			triple, _ := it.([]any)
			name, _ := triple[0].(string)
			p := d.params[name]
			if p == nil {
				return cwmpFault("9005", "Invalid parameter name")
			}
			p.value, p.ts = triple[1], now
			if typ, ok := triple[2].(string); ok {
				p.typ = typ
			}
			if obj, ok := strings.CutSuffix(name, "DiagnosticsState"); ok && p.value == "Requested" {
				d.diagPolls[obj] = f.diagPolls
			}
		}
	case "reboot":
		if d.rebootFault {
			return cwmpFault("9000", "Method not supported")
		}
		d.lastBoot = now.Add(f.bootDelay)
		d.bootAt = d.lastBoot
	case "download":
		if d.downloadFault {
			return cwmpFault("9010", "Download failure")
		}
		if d.transferFault {
			return nil
		}
		fn, _ := task["fileName"].(string)
		ft, _ := task["fileType"].(string)
		set := func(n string, v any, typ string) {
			d.params["Downloads.1."+n] = &fakeParam{value: v, typ: typ, ts: now}
		}
		at := ts(now)
		set("Download", at, "xsd:dateTime")
		set("LastDownload", at, "xsd:dateTime")
		set("FileName", fn, "xsd:string")
		set("LastFileName", fn, "xsd:string")
		set("FileType", ft, "xsd:string")
		set("StartTime", at, "xsd:dateTime")
		set("CompleteTime", ts(now.Add(time.Second)), "xsd:dateTime")
	}
	return nil
}

// finishDiagnostics completes the test of obj ("…DownloadDiagnostics.").
func (d *fakeDevice) finishDiagnostics(obj string, now time.Time) {
	set := func(n string, v any) { d.params[obj+n].value, d.params[obj+n].ts = v, now }
	switch {
	case strings.HasSuffix(obj, "DownloadDiagnostics."):
		set("DiagnosticsState", "Completed")
		base := now.Add(-2 * time.Second)
		set("TCPOpenRequestTime", base.Format(time.RFC3339Nano))
		set("TCPOpenResponseTime", base.Add(10*time.Millisecond).Format(time.RFC3339Nano))
		set("ROMTime", base.Add(20*time.Millisecond).Format(time.RFC3339Nano))
		set("BOMTime", base.Add(30*time.Millisecond).Format(time.RFC3339Nano))
		set("EOMTime", base.Add(1030*time.Millisecond).Format(time.RFC3339Nano))
		set("TestBytesReceived", 12_500_000)
		set("TotalBytesReceived", 12_600_000)
	case strings.HasSuffix(obj, "IPPingDiagnostics."):
		set("DiagnosticsState", "Complete")
		set("SuccessCount", 4)
		set("FailureCount", 0)
		set("MinimumResponseTime", 3)
		set("AverageResponseTime", 5)
		set("MaximumResponseTime", 9)
	default:
		set("DiagnosticsState", "Complete")
	}
}

// fakeAuthHeaders returns the Authorization headers seen.
func (f *fakeNBI) authHeaders() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...)
}
