package nbisim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// Task names GenieACS accepts.
const (
	taskGPV          = "getParameterValues"
	taskSPV          = "setParameterValues"
	taskRefresh      = "refreshObject"
	taskAddObject    = "addObject"
	taskDeleteObject = "deleteObject"
	taskReboot       = "reboot"
	taskFactoryReset = "factoryReset"
	taskDownload     = "download"
)

type taskState int

const (
	statePending taskState = iota
	stateRunning
	stateDone
	stateFaulted
)

// task is a stored GenieACS task.
type task struct {
	id, device, name string
	// fields are the members of the posted task, in order, as posted
	// (without _id, device, timestamp).
	fields obj
	ts     time.Time
	state  taskState
	ctx    context.Context
	cancel context.CancelFunc
	// host is the NBI address the task was posted to (download URLs).
	host string

	names          []string
	values         []cwmp.ParameterValueStruct
	objectName     string
	fileType, file string
	targetFileName string
}

// posted is the task as POST answers it: the posted members, then device,
// timestamp and _id.
func (t *task) posted() obj {
	o := append(obj{}, t.fields...)
	return append(o, kv{"device", t.device}, kv{"timestamp", t.ts}, kv{"_id", t.id})
}

// listed is the task as GET /tasks/ lists it: _id first.
func (t *task) listed() obj {
	o := obj{{"_id", t.id}}
	o = append(o, t.fields...)
	return append(o, kv{"device", t.device}, kv{"timestamp", t.ts})
}

// simFault is a fault of GenieACS's own (not the device's).
type simFault struct{ code, message string }

func (f *simFault) Error() string { return f.code + ": " + f.message }

// parseTask reads a posted task, keeping its members in order.
func parseTask(body []byte) (*task, error) {
	if _, err := decodeJSON(string(body)); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, qerr("the task must be a JSON object")
	}
	t := &task{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, qerr("task: %v", err)
		}
		k, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, qerr("task: %v", err)
		}
		switch k {
		case "_id", "device", "timestamp":
			continue
		}
		t.fields = append(t.fields, kv{k, v})
	}
	name, _ := get(t.fields, "name").(string)
	t.name = name
	str := func(k string) (string, bool) { s, ok := get(t.fields, k).(string); return s, ok }
	switch name {
	case taskGPV:
		list, ok := get(t.fields, "parameterNames").([]any)
		if !ok || len(list) == 0 {
			return nil, qerr("getParameterValues needs parameterNames, an array of parameter names")
		}
		for _, e := range list {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, qerr("parameterNames must hold parameter names")
			}
			t.names = append(t.names, s)
		}
	case taskSPV:
		list, ok := get(t.fields, "parameterValues").([]any)
		if !ok || len(list) == 0 {
			return nil, qerr("setParameterValues needs parameterValues, an array of [name, value, type]")
		}
		for i, e := range list {
			tr, ok := e.([]any)
			if !ok || len(tr) < 2 || len(tr) > 3 {
				return nil, qerr("parameterValues[%d] is not a [name, value, type] triple", i)
			}
			n, ok := tr[0].(string)
			if !ok || n == "" {
				return nil, qerr("parameterValues[%d]: the name is not a string", i)
			}
			p := cwmp.ParameterValueStruct{Name: n, Value: lexical(tr[1])}
			if len(tr) == 3 {
				if s, ok := tr[2].(string); ok {
					p.Type = s
				}
			}
			if p.Type == "" {
				switch tr[1].(type) {
				case bool:
					p.Type = "xsd:boolean"
				case json.Number:
					p.Type = "xsd:int"
				default:
					p.Type = "xsd:string"
				}
			}
			t.values = append(t.values, p)
		}
	case taskRefresh, taskAddObject, taskDeleteObject:
		o, ok := str("objectName")
		if !ok || (o == "" && name != taskRefresh) {
			return nil, qerr("%s needs objectName", name)
		}
		if strings.HasSuffix(o, ".") {
			return nil, qerr("invalid parameter path %q: no trailing dot", o)
		}
		t.objectName = o
	case taskReboot, taskFactoryReset:
	case taskDownload:
		f, ok := str("fileName")
		if !ok || f == "" {
			return nil, qerr("download needs fileName, a file of the file store")
		}
		t.file = f
		t.fileType, _ = str("fileType")
		t.targetFileName, _ = str("targetFileName")
	case "":
		return nil, qerr("the task has no name")
	default:
		return nil, qerr("invalid task name %q", name)
	}
	return t, nil
}

func get(o obj, k string) any {
	v, _ := o.get(k)
	return v
}

// postTask answers POST /devices/<id>/tasks.
func (s *Server) postTask(r *http.Request, id string, body []byte) *response {
	dev, ok := s.acs.Device(id)
	if !ok {
		return plain(http.StatusNotFound, "", "No such device")
	}
	q := r.URL.Query()
	cr := q.Has("connection_request")
	if len(bytes.TrimSpace(body)) == 0 {
		if !cr {
			return plain(http.StatusBadRequest, "", "Error: no task in the body")
		}
		return s.connectionRequestOnly(dev)
	}
	timeout := s.opt.TaskTimeout
	if v := q.Get("timeout"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 {
			return plain(http.StatusBadRequest, "", "Error: timeout must be milliseconds")
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	t, err := parseTask(body)
	if err != nil {
		return badQuery(err)
	}
	t.id, t.device, t.ts, t.host = s.newObjectID(), id, s.opt.Now(), r.Host
	t.ctx, t.cancel = context.WithCancel(s.ctx)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		t.cancel()
		return plain(http.StatusServiceUnavailable, "", "Error: server closed")
	}
	st := s.dev(id)
	st.queue = append(st.queue, t)
	s.tasks[t.id] = t
	fails := st.crFails
	if cr {
		st.wantSession = true
	}
	s.startRunner(st)
	s.mu.Unlock()

	if !cr {
		return jsonResponse(http.StatusAccepted, "Accepted", marshal(t.posted()))
	}
	if timeout == 0 {
		return jsonResponse(http.StatusAccepted, "Task queued but not processed", marshal(t.posted()))
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		state, changed, offline := t.state, st.changed, st.crFails > fails
		s.mu.Unlock()
		switch {
		case state == stateDone:
			return jsonResponse(http.StatusOK, "", marshal(t.posted()))
		case state == stateFaulted:
			return jsonResponse(http.StatusAccepted, "Task faulted", marshal(t.posted()))
		case offline && state == statePending:
			return jsonResponse(http.StatusAccepted, "Device is offline", marshal(t.posted()))
		}
		select {
		case <-changed:
		case <-timer.C:
			return jsonResponse(http.StatusAccepted, "Task queued but not processed", marshal(t.posted()))
		case <-s.ctx.Done():
			return jsonResponse(http.StatusAccepted, "Task queued but not processed", marshal(t.posted()))
		}
	}
}

// connectionRequestOnly answers a POST with connection_request and no
// task: 200 once the device answered (nbisim cannot send a bare
// connection request through the ACS, so it reads the device's
// ConnectionRequestURL in a session), 504 when the request failed.
func (s *Server) connectionRequestOnly(dev acs.Device) *response {
	s.mu.Lock()
	st := s.dev(dev.ID)
	st.wantSession = true
	s.startRunner(st)
	s.mu.Unlock()
	name := "InternetGatewayDevice.ManagementServer.ConnectionRequestURL"
	for k := range dev.Params {
		if strings.HasSuffix(k, ".ManagementServer.ConnectionRequestURL") {
			name = k
			break
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opt.TaskTimeout)
	defer cancel()
	if _, err := s.acs.GetParameterValues(ctx, dev.ID, name); err != nil {
		var f *cwmp.Fault
		if !errors.As(err, &f) {
			s.log.Info("connection request failed", "device", dev.ID, "err", err)
			return plain(http.StatusGatewayTimeout, "", "Device is offline")
		}
	}
	return empty(http.StatusOK, "")
}

// listTasks answers GET/HEAD /tasks/.
func (s *Server) listTasks(r *http.Request) *response {
	a, err := parseList(r)
	if err != nil {
		return badQuery(err)
	}
	s.mu.Lock()
	ts := make([]*task, 0, len(s.tasks))
	for _, t := range s.tasks {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if !ts[i].ts.Equal(ts[j].ts) {
			return ts[i].ts.Before(ts[j].ts)
		}
		return ts[i].id < ts[j].id
	})
	docs := make([]any, len(ts))
	for i, t := range ts {
		docs[i] = t.listed()
	}
	s.mu.Unlock()
	return s.list(r, docs, a, func(d any) any { return projectObj(d.(obj), a.projection) })
}

// deleteTask answers DELETE /tasks/<id>; the task's fault goes with it.
func (s *Server) deleteTask(id string) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[id]
	if t == nil {
		return plain(http.StatusNotFound, "", "Task not found")
	}
	s.dropTask(t)
	delete(s.faults, t.device+":task_"+t.id)
	return empty(http.StatusOK, "")
}

// dropTask removes t from the store and withdraws it from the device.
// Caller holds s.mu.
func (s *Server) dropTask(t *task) {
	delete(s.tasks, t.id)
	t.cancel()
	if st := s.devs[t.device]; st != nil {
		for i, q := range st.queue {
			if q == t {
				st.queue = append(st.queue[:i:i], st.queue[i+1:]...)
				break
			}
		}
		st.poke()
		st.broadcast()
	}
}

// startRunner starts st's runner, or wakes it. Caller holds s.mu.
func (s *Server) startRunner(st *devState) {
	if st.running {
		st.poke()
		return
	}
	st.running = true
	s.wg.Add(1)
	go s.runner(st)
}

// next returns the first pending task of st, and whether a faulted task
// blocks the device (GenieACS runs none of its later tasks until the
// fault is deleted). Caller holds s.mu.
func (st *devState) next() (*task, bool) {
	for _, t := range st.queue {
		switch t.state {
		case stateFaulted:
			return nil, true
		case statePending:
			return t, false
		}
	}
	return nil, false
}

type wake int

const (
	wakeKick wake = iota
	wakeInform
	wakeClosed
)

// runner executes st's tasks in order: in a session that a POST with
// connection_request asked for, or at the device's next Inform (a task
// queued without a connection request, or after the device was offline).
// It ends when no task is pending.
func (s *Server) runner(st *devState) {
	defer s.wg.Done()
	active := false
	since := time.Now()
	for {
		s.mu.Lock()
		if st.wantSession {
			active, st.wantSession = true, false
		}
		t, blocked := st.next()
		if (t == nil && !blocked) || s.ctx.Err() != nil {
			st.running = false
			s.mu.Unlock()
			return
		}
		kick := st.kick
		s.mu.Unlock()
		if blocked || !active {
			switch s.wait(st.id, kick, since, !blocked) {
			case wakeClosed:
				s.mu.Lock()
				st.running = false
				s.mu.Unlock()
				return
			case wakeInform:
				active, since = true, time.Now()
			}
			continue
		}
		if s.opt.TaskLatency > 0 {
			lt := time.NewTimer(s.opt.TaskLatency)
			select {
			case <-lt.C:
			case <-t.ctx.Done():
				lt.Stop()
			}
		}
		s.mu.Lock()
		if s.tasks[t.id] != t {
			s.mu.Unlock()
			continue // deleted meanwhile
		}
		t.state = stateRunning
		s.mu.Unlock()
		err := s.execute(st, t)
		if !s.finish(st, t, err) {
			active, since = false, time.Now()
		}
	}
}

// wait blocks until kick, an Inform of the device at or after since (if
// inform), or Close.
func (s *Server) wait(id string, kick <-chan struct{}, since time.Time, inform bool) wake {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	informed := make(chan struct{})
	if inform {
		go func() {
			if _, err := s.acs.WaitInform(ctx, id, "", since); err == nil {
				close(informed)
			}
		}()
	}
	select {
	case <-kick:
		return wakeKick
	case <-informed:
		return wakeInform
	case <-s.ctx.Done():
		return wakeClosed
	}
}

// finish records the outcome of t and reports whether the session goes
// on (false after a failed connection request or a broken session).
func (s *Server) finish(st *devState, t *task, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer st.broadcast()
	if s.tasks[t.id] != t {
		return true // deleted while it ran
	}
	var cf *cwmp.Fault
	var sf *simFault
	switch {
	case err == nil:
		t.state = stateDone
		s.taskRun.Add(1)
		s.dropTask(t)
		return true
	case errors.As(err, &cf):
		t.state = stateFaulted
		s.taskRun.Add(1)
		s.faults[t.device+":task_"+t.id] = s.faultDoc(t, "cwmp."+strconv.Itoa(cf.Code), cf.String, cwmpDetail(cf))
		s.log.Info("task faulted", "device", t.device, "task", t.id, "code", cf.Code)
		return true
	case errors.As(err, &sf):
		t.state = stateFaulted
		s.taskRun.Add(1)
		s.faults[t.device+":task_"+t.id] = s.faultDoc(t, sf.code, sf.message, obj{{"message", sf.message}})
		return true
	case errors.Is(err, acs.ErrConnectionRequest):
		t.state = statePending
		st.crFails++
		s.log.Info("device is offline", "device", t.device, "task", t.id, "err", err)
		return false
	default:
		// The session broke (or the task was cancelled): the task stays
		// queued for the device's next session, as in GenieACS.
		t.state = statePending
		if t.ctx.Err() == nil {
			s.log.Warn("task not processed", "device", t.device, "task", t.id, "err", err)
		}
		return false
	}
}

func cwmpDetail(f *cwmp.Fault) obj {
	var spv any
	if len(f.SetParameterValuesFaults) > 0 {
		list := make([]any, len(f.SetParameterValuesFaults))
		for i, p := range f.SetParameterValuesFaults {
			list[i] = obj{{"parameterName", p.ParameterName}, {"faultCode", strconv.Itoa(p.FaultCode)}, {"faultString", p.FaultString}}
		}
		spv = list
	}
	return obj{{"faultCode", strconv.Itoa(f.Code)}, {"faultString", f.String}, {"setParameterValuesFault", spv}}
}

// faultDoc is GenieACS's fault of t's channel.
func (s *Server) faultDoc(t *task, code, message string, detail obj) obj {
	return obj{{"_id", t.device + ":task_" + t.id}, {"device", t.device}, {"channel", "task_" + t.id},
		{"timestamp", s.opt.Now()}, {"code", code}, {"message", message}, {"detail", detail},
		{"retries", 0}, {"provisions", string(marshal(provisions(t)))}}
}

// provisions is how GenieACS turns a task into provisions (the fault's
// provisions member holds them as JSON text).
func provisions(t *task) []any {
	var out []any
	switch t.name {
	case taskGPV:
		for _, n := range t.names {
			out = append(out, []any{"refresh", n})
		}
	case taskSPV:
		for _, p := range t.values {
			out = append(out, []any{"value", p.Name, typedValue(p.Value, p.Type)})
		}
	case taskRefresh:
		out = append(out, []any{"refresh", t.objectName})
	case taskAddObject:
		out = append(out, []any{"instances", t.objectName, "+1"})
	case taskDeleteObject:
		out = append(out, []any{"instances", t.objectName, "-1"})
	case taskReboot:
		out = append(out, []any{"reboot"})
	case taskFactoryReset:
		out = append(out, []any{"reset"})
	case taskDownload:
		out = append(out, []any{"download", t.fileType, t.file, t.targetFileName})
	}
	return out
}

// execute runs t on the device through the ACS and records what it read
// in the device's cache.
func (s *Server) execute(st *devState, t *task) error {
	ctx, id := t.ctx, t.device
	switch t.name {
	case taskGPV:
		vals, err := s.acs.GetParameterValues(ctx, id, t.names...)
		if err != nil {
			return err
		}
		now := s.opt.Now()
		s.mu.Lock()
		for _, v := range vals {
			st.tree.setValue(v.Name, v.Value, v.Type, now)
		}
		s.mu.Unlock()
	case taskSPV:
		if err := s.acs.SetParameterValues(ctx, id, t.values, ""); err != nil {
			return err
		}
		now := s.opt.Now()
		s.mu.Lock()
		for _, v := range t.values {
			st.tree.setValue(v.Name, v.Value, v.Type, now)
		}
		s.mu.Unlock()
	case taskRefresh:
		return s.refresh(st, t)
	case taskAddObject:
		n, err := s.acs.AddObject(ctx, id, t.objectName+".", "")
		if err != nil {
			return err
		}
		now := s.opt.Now()
		s.mu.Lock()
		parent := st.tree.at(t.objectName, false)
		parent.object, parent.ts = true, now
		if parent.writable == 0 {
			parent.writable = 1
		}
		inst := parent.child(strconv.FormatUint(uint64(n), 10), false)
		inst.object, inst.writable = true, 1
		s.mu.Unlock()
	case taskDeleteObject:
		if err := s.acs.DeleteObject(ctx, id, t.objectName+".", ""); err != nil {
			return err
		}
		s.mu.Lock()
		st.tree.remove(t.objectName)
		if i := strings.LastIndex(t.objectName, "."); i > 0 {
			if p := st.tree.find(t.objectName[:i]); p != nil {
				p.ts = time.Time{}
			}
		}
		s.mu.Unlock()
	case taskReboot:
		return s.acs.Reboot(ctx, id, t.id)
	case taskFactoryReset:
		return s.acs.FactoryReset(ctx, id)
	case taskDownload:
		return s.download(st, t)
	}
	return nil
}

// refresh runs a refreshObject task: GetParameterNames of the object
// (everything below it), then GetParameterValues of it; what the device
// no longer has is dropped from the cache.
func (s *Server) refresh(st *devState, t *task) error {
	path := t.objectName
	if path != "" {
		path += "."
	}
	infos, err := s.acs.GetParameterNames(t.ctx, t.device, path, false)
	if err != nil {
		return err
	}
	vals, err := s.acs.GetParameterValues(t.ctx, t.device, path)
	if err != nil {
		return err
	}
	now := s.opt.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(infos))
	for _, in := range infos {
		seen[strings.TrimSuffix(in.Name, ".")] = true
	}
	root := st.tree
	if t.objectName != "" {
		root = st.tree.at(t.objectName, false)
		root.object = true
	}
	prune(root, t.objectName, seen)
	for _, in := range infos {
		name := strings.TrimSuffix(in.Name, ".")
		if name == "" {
			continue
		}
		if strings.HasSuffix(in.Name, ".") {
			n := st.tree.at(name, false)
			n.object, n.ts, n.writable = true, now, writable(in.Writable)
			continue
		}
		l := st.tree.at(name, true)
		l.writable = writable(in.Writable)
	}
	for _, v := range vals {
		st.tree.setValue(v.Name, v.Value, v.Type, now)
	}
	if t.objectName != "" {
		root.ts = now
	}
	return nil
}

// prune drops the nodes below n (at path) that the device did not list.
func prune(n *pnode, path string, seen map[string]bool) {
	for k, c := range n.kids {
		p := k
		if path != "" {
			p = path + "." + k
		}
		if !seen[p] {
			delete(n.kids, k)
			continue
		}
		prune(c, p, seen)
	}
}

// download runs a download task: the Download RPC with a URL of nbisim's
// file store, the Downloads.<n> record GenieACS keeps, and (in the
// background) the TransferComplete that completes the record or faults
// the task's channel.
func (s *Server) download(st *devState, t *task) error {
	s.mu.Lock()
	f := s.files[t.file]
	s.mu.Unlock()
	if f == nil {
		return &simFault{code: "download", message: "File not found: " + t.file}
	}
	ft := t.fileType
	if ft == "" {
		ft = f.meta[0]
	}
	resp, err := s.acs.Download(t.ctx, t.device, cwmp.Download{CommandKey: t.id, FileType: ft, URL: s.fileURL(t.host, t.file),
		FileSize: uint32(len(f.data)), TargetFileName: t.targetFileName})
	if err != nil {
		return err
	}
	now := s.opt.Now()
	started := isoTime(now)
	s.mu.Lock()
	dl := st.tree.at("Downloads", false)
	dl.object, dl.writable = true, 1
	inst := 1
	for k := range dl.kids {
		if n, err := strconv.Atoi(k); err == nil && n >= inst {
			inst = n + 1
		}
	}
	pre := "Downloads." + strconv.Itoa(inst)
	o := st.tree.at(pre, false)
	o.object, o.writable, o.ts = true, 1, now
	for _, p := range [][3]string{{"Download", started, "xsd:dateTime"}, {"FileName", t.file, "xsd:string"},
		{"FileType", ft, "xsd:string"}, {"TargetFileName", t.targetFileName, "xsd:string"}} {
		st.tree.setValue(pre+"."+p[0], p[1], p[2], now)
		st.tree.find(pre + "." + p[0]).writable = 1
	}
	s.mu.Unlock()
	complete := func(tc cwmp.TransferComplete) {
		now := s.opt.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range [][3]string{{"LastDownload", started, "xsd:dateTime"}, {"LastFileName", t.file, "xsd:string"},
			{"LastFileType", ft, "xsd:string"}, {"LastTargetFileName", t.targetFileName, "xsd:string"},
			{"StartTime", isoTime(tc.StartTime), "xsd:dateTime"}, {"CompleteTime", isoTime(tc.CompleteTime), "xsd:dateTime"}} {
			st.tree.setValue(pre+"."+p[0], p[1], p[2], now)
			st.tree.find(pre + "." + p[0]).writable = -1
		}
	}
	if resp.Status == 0 {
		complete(cwmp.TransferComplete{StartTime: resp.StartTime, CompleteTime: resp.CompleteTime})
		return nil
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.opt.TransferTimeout)
		defer cancel()
		tc, err := s.acs.WaitTransferComplete(ctx, t.device, t.id)
		var cf *cwmp.Fault
		switch {
		case err == nil:
			complete(tc)
		case errors.As(err, &cf):
			s.mu.Lock()
			s.faults[t.device+":task_"+t.id] = s.faultDoc(t, "cwmp."+strconv.Itoa(cf.Code), cf.String, cwmpDetail(cf))
			st.broadcast()
			s.mu.Unlock()
		default:
			s.log.Warn("no TransferComplete for a download", "device", t.device, "task", t.id, "err", err)
		}
	}()
	return nil
}
