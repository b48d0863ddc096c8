// Package nbisim is a simulated GenieACS northbound interface (the NBI,
// GenieACS 1.3's port-7557 REST API) in front of the embedded ACS of
// tr069/acs: the devices are the ones that informed the *acs.Server, and
// every task runs on the device over real CWMP through the acs.Server's
// methods. With it the GenieACS client (tr069/genieacs), and through it the
// e8 and iTV drivers, TR-143 diagnostics and `diag run`, are tested end to
// end against simulated gateways:
//
//	genieacs client → HTTP → nbisim → acs.Server → CWMP → e8sim gateway
//
// It speaks GenieACS's wire protocol as the recordings in
// tr069/genieacs/testdata/nbi show it: raw status lines with GenieACS's
// reason phrases ("202 Task faulted", "202 Device is offline", "202 Task
// queued but not processed"), a GenieACS-Version header on every answer,
// the lower-case total header of lists, plain-text error bodies without
// Content-Type, lists streamed as "[\n" + items joined by ",\n" + "\n]",
// device documents with _id, _deviceId, _registered, _lastInform,
// _lastBoot, _lastBootstrap, _tags and the parameter tree of
// {_value,_type,_timestamp,_writable} leaves, tasks and faults shaped like
// GenieACS's (24-hex ObjectIds, ISO 8601 timestamps with milliseconds).
//
// Routes: GET/HEAD /devices/ (query, projection, sort, skip, limit),
// POST /devices/<id>/tasks[?connection_request[&timeout=N]],
// POST/DELETE /devices/<id>/tags/<tag>, GET/HEAD /tasks/,
// DELETE /tasks/<id>, GET/HEAD /faults/, DELETE /faults/<id>,
// GET/HEAD /files/, PUT/DELETE /files/<name>, GET/HEAD /presets/ and
// /provisions/ (always empty). The files a download task names are served
// to the device from /fs/<name> on the same listener (GenieACS serves
// them from genieacs-fs, port 7567), or from Options.FileURL.
//
// Where it departs from GenieACS: a device document holds what the
// Informs and the tasks fetched (GenieACS also discovers the data model in
// the first session; there are no presets, provisions or virtual
// parameters); Inform parameters are typed xsd:string unless a task read
// their type (the ACS keeps no types of Inform parameters); the query
// language is a subset (equality, $in, $ne, $eq, $regex, $gt/$gte/$lt/$lte,
// $and, $or), anything else is 400; a faulted task blocks the device's
// later tasks until the fault or the task is deleted (no retries); with
// timeout=0 the answer is "Task queued but not processed" even for a
// device that is offline; a connection request with no task (which the
// ACS cannot send alone) is a session reading ConnectionRequestURL, and
// 504 "Device is offline" when it fails.
package nbisim

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fieldagent/tr069/acs"
	"fieldagent/tr069/cwmp"
)

// DefaultVersion is the GenieACS-Version header nbisim sends: GenieACS's
// version with "nbisim" as the build metadata.
const DefaultVersion = "1.3.0-dev+nbisim"

// ACS is what nbisim needs of the embedded ACS (*acs.Server has it).
type ACS interface {
	Devices() []acs.Device
	Device(id string) (acs.Device, bool)
	GetParameterValues(ctx context.Context, deviceID string, names ...string) ([]cwmp.ParameterValueStruct, error)
	SetParameterValues(ctx context.Context, deviceID string, params []cwmp.ParameterValueStruct, key string) error
	GetParameterNames(ctx context.Context, deviceID, path string, nextLevel bool) ([]cwmp.ParameterInfoStruct, error)
	AddObject(ctx context.Context, deviceID, objectName, key string) (uint32, error)
	DeleteObject(ctx context.Context, deviceID, objectName, key string) error
	Reboot(ctx context.Context, deviceID, commandKey string) error
	FactoryReset(ctx context.Context, deviceID string) error
	Download(ctx context.Context, deviceID string, d cwmp.Download) (cwmp.DownloadResponse, error)
	WaitTransferComplete(ctx context.Context, deviceID, commandKey string) (cwmp.TransferComplete, error)
	WaitInform(ctx context.Context, deviceID, eventCode string, after time.Time) (acs.Device, error)
}

// Options configures a Server. Zero values give the documented defaults.
type Options struct {
	// Version is the GenieACS-Version header; "" is DefaultVersion.
	Version string
	// TaskLatency is added before every task runs on the device (GenieACS's
	// own overhead, for benchmarks); 0 adds nothing.
	TaskLatency time.Duration
	// TaskTimeout is how long a POST with connection_request but no
	// timeout waits for the task; 0 means 3s.
	TaskTimeout time.Duration
	// FileURL, if set, is the base URL devices fetch the file store from
	// (a server of FileHandler); "" serves it from /fs/ on the NBI's own
	// address (the Host of the POST that created the download task).
	FileURL string
	// IdleTimeout closes a keep-alive connection idle this long; 0 means
	// 2 minutes.
	IdleTimeout time.Duration
	// TransferTimeout bounds the wait for a download's TransferComplete;
	// 0 means 10 minutes.
	TransferTimeout time.Duration
	// Logger, if nil, discards.
	Logger *slog.Logger
	// Now, if nil, is time.Now. It stamps tasks, faults, files and the
	// values tasks read; Inform times come from the ACS.
	Now func() time.Time
}

// Server is the simulated NBI: an http.Handler (see ServeHTTP) that can
// also Serve a listener itself. Create it with New; safe for concurrent
// use; Close it when done.
type Server struct {
	acs ACS
	opt Options
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // runners and transfer waits
	connWG sync.WaitGroup

	seq     atomic.Uint32
	idRand  [5]byte
	taskRun atomic.Int64

	mu        sync.Mutex
	closed    bool
	devs      map[string]*devState
	tasks     map[string]*task
	faults    map[string]obj
	files     map[string]*file
	conns     map[net.Conn]struct{}
	listeners map[net.Listener]struct{}
}

// devState is nbisim's record of one device: its parameter cache, tags,
// stored tasks and the runner that executes them.
type devState struct {
	id   string
	tree *pnode
	// informMerged is the LastInform whose parameters are in tree.
	informMerged            time.Time
	lastBoot, lastBootstrap time.Time
	tags                    []string
	// queue holds the stored tasks in order (pending, running or faulted).
	queue []*task
	// running is true while a runner goroutine serves the device.
	running bool
	// wantSession asks the runner to start a session (a POST with
	// connection_request).
	wantSession bool
	kick        chan struct{} // buffered 1
	// changed is closed and replaced whenever a task of the device changes
	// state or a connection request fails.
	changed chan struct{}
	// crFails counts failed connection requests.
	crFails uint64
}

type file struct {
	name     string
	data     []byte
	meta     [4]string // fileType, oui, productClass, version
	uploaded time.Time
}

// New returns a Server for the devices a manages.
func New(a ACS, o Options) *Server {
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.TaskTimeout <= 0 {
		o.TaskTimeout = 3 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.TransferTimeout <= 0 {
		o.TransferTimeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{acs: a, opt: o, log: o.Logger, ctx: ctx, cancel: cancel,
		devs: map[string]*devState{}, tasks: map[string]*task{}, faults: map[string]obj{},
		files: map[string]*file{}, conns: map[net.Conn]struct{}{}, listeners: map[net.Listener]struct{}{}}
	_, _ = rand.Read(s.idRand[:])
	var c [4]byte
	_, _ = rand.Read(c[:])
	s.seq.Store(binary.BigEndian.Uint32(c[:]) & 0xffffff)
	return s
}

// Close stops the runners (tasks still stored are dropped), closes the
// listeners given to Serve and every connection nbisim serves, and waits
// for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.connWG.Wait()
	s.wg.Wait()
	return nil
}

// TasksRun returns how many tasks nbisim has run on devices (done or
// faulted).
func (s *Server) TasksRun() int64 { return s.taskRun.Load() }

// newObjectID returns a MongoDB ObjectId: 4 bytes of seconds, 5 random
// bytes fixed per Server, a 3-byte counter; 24 hex digits.
func (s *Server) newObjectID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(s.opt.Now().Unix()))
	copy(b[4:9], s.idRand[:])
	n := s.seq.Add(1)
	b[9], b[10], b[11] = byte(n>>16), byte(n>>8), byte(n)
	return hex.EncodeToString(b[:])
}

// dev returns the record of id, creating it. Caller holds s.mu.
func (s *Server) dev(id string) *devState {
	st := s.devs[id]
	if st == nil {
		st = &devState{id: id, tree: &pnode{object: true}, kick: make(chan struct{}, 1), changed: make(chan struct{})}
		s.devs[id] = st
	}
	return st
}

// broadcast wakes the waiters of st. Caller holds s.mu.
func (st *devState) broadcast() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// handle routes one request.
func (s *Server) handle(r *http.Request, body []byte) *response {
	segs := splitPath(r.URL)
	if segs == nil {
		return plain(http.StatusBadRequest, "", "Error: malformed path")
	}
	method := r.Method
	listing := method == http.MethodGet || method == http.MethodHead
	n := len(segs)
	switch {
	case n == 0:
		return empty(http.StatusNotFound, "")
	case segs[0] == "devices" && n == 1 && listing:
		return s.listDevices(r)
	case segs[0] == "devices" && n == 3 && segs[2] == "tasks" && method == http.MethodPost:
		return s.postTask(r, segs[1], body)
	case segs[0] == "devices" && n == 4 && segs[2] == "tags" && (method == http.MethodPost || method == http.MethodDelete):
		return s.tag(segs[1], segs[3], method == http.MethodPost)
	case segs[0] == "tasks" && n == 1 && listing:
		return s.listTasks(r)
	case segs[0] == "tasks" && n == 2 && method == http.MethodDelete:
		return s.deleteTask(segs[1])
	case segs[0] == "faults" && n == 1 && listing:
		return s.listFaults(r)
	case segs[0] == "faults" && n == 2 && method == http.MethodDelete:
		return s.deleteFault(segs[1])
	case segs[0] == "files" && n == 1 && listing:
		return s.listFiles(r)
	case segs[0] == "files" && n == 2 && method == http.MethodPut:
		return s.putFile(r, segs[1], body)
	case segs[0] == "files" && n == 2 && method == http.MethodDelete:
		return s.deleteFile(segs[1])
	case (segs[0] == "presets" || segs[0] == "provisions") && n == 1 && listing:
		if _, _, err := parseFilter(r.URL.Query().Get("query")); err != nil {
			return badQuery(err)
		}
		return listResponse(nil, 0)
	case segs[0] == "fs" && n == 2 && listing:
		return s.serveFile(r, segs[1])
	}
	switch segs[0] {
	case "devices", "tasks", "faults", "files", "presets", "provisions":
		return empty(http.StatusMethodNotAllowed, "")
	}
	return empty(http.StatusNotFound, "")
}

// splitPath returns the unescaped segments of the path, without the
// empty trailing one ("/devices/" is ["devices"]); nil when a segment
// does not unescape.
func splitPath(u *url.URL) []string {
	p := strings.Trim(u.EscapedPath(), "/")
	if p == "" {
		return []string{}
	}
	raw := strings.Split(p, "/")
	out := make([]string, len(raw))
	for i, r := range raw {
		s, err := url.PathUnescape(r)
		if err != nil {
			return nil
		}
		out[i] = s
	}
	return out
}

func badQuery(err error) *response {
	return plain(http.StatusBadRequest, "", err.Error())
}

// listArgs are the query, projection, sort, skip and limit of a GET.
type listArgs struct {
	filter      pred
	id          string
	projection  []string
	sort        []sortKey
	skip, limit int
}

func parseList(r *http.Request) (listArgs, error) {
	q := r.URL.Query()
	var a listArgs
	var err error
	if a.filter, a.id, err = parseFilter(q.Get("query")); err != nil {
		return a, err
	}
	if a.sort, err = parseSort(q.Get("sort")); err != nil {
		return a, err
	}
	a.projection = parseProjection(q.Get("projection"))
	for _, f := range []struct {
		name string
		dst  *int
	}{{"skip", &a.skip}, {"limit", &a.limit}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return a, qerr("%s must be a non-negative integer, not %q", f.name, v)
			}
			*f.dst = n
		}
	}
	return a, nil
}

// listDevices answers GET/HEAD /devices/.
func (s *Server) listDevices(r *http.Request) *response {
	a, err := parseList(r)
	if err != nil {
		return badQuery(err)
	}
	var devs []acs.Device
	if a.id != "" {
		if d, ok := s.acs.Device(a.id); ok {
			devs = []acs.Device{d}
		}
	} else {
		devs = s.acs.Devices()
	}
	docs := make([]any, 0, len(devs))
	s.mu.Lock()
	for _, d := range devs {
		st := s.dev(d.ID)
		mergeInform(d, st)
		docs = append(docs, deviceDoc(d, st))
	}
	s.mu.Unlock()
	return s.list(r, docs, a, func(d any) any { return project(d.(map[string]any), a.projection) })
}

// list filters, sorts, pages and encodes docs.
func (s *Server) list(r *http.Request, docs []any, a listArgs, proj func(any) any) *response {
	matched := docs[:0]
	for _, d := range docs {
		if a.filter(d) {
			matched = append(matched, d)
		}
	}
	sortDocs(matched, a.sort)
	total := len(matched)
	if r.Method == http.MethodHead {
		resp := listResponse(nil, total)
		resp.body = nil
		return resp
	}
	page := window(matched, a.skip, a.limit)
	items := make([][]byte, len(page))
	for i, d := range page {
		items[i] = marshal(proj(d))
	}
	return listResponse(items, total)
}

// tag answers POST/DELETE /devices/<id>/tags/<tag>.
func (s *Server) tag(id, tag string, add bool) *response {
	if _, ok := s.acs.Device(id); !ok {
		return plain(http.StatusNotFound, "", "No such device")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dev(id)
	i := sort.SearchStrings(st.tags, tag)
	has := i < len(st.tags) && st.tags[i] == tag
	switch {
	case add && !has:
		st.tags = append(st.tags[:i], append([]string{tag}, st.tags[i:]...)...)
	case !add && has:
		st.tags = append(st.tags[:i], st.tags[i+1:]...)
	}
	return empty(http.StatusOK, "")
}

// listFaults answers GET/HEAD /faults/.
func (s *Server) listFaults(r *http.Request) *response {
	a, err := parseList(r)
	if err != nil {
		return badQuery(err)
	}
	s.mu.Lock()
	ids := make([]string, 0, len(s.faults))
	for id := range s.faults {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	docs := make([]any, len(ids))
	for i, id := range ids {
		docs[i] = s.faults[id]
	}
	s.mu.Unlock()
	return s.list(r, docs, a, func(d any) any { return projectObj(d.(obj), a.projection) })
}

// deleteFault answers DELETE /faults/<id>: a task's fault goes with its
// task, which unblocks the device.
func (s *Server) deleteFault(id string) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.faults[id]
	if !ok {
		return plain(http.StatusNotFound, "", "Fault not found")
	}
	delete(s.faults, id)
	dev, _ := f.get("device")
	ch, _ := f.get("channel")
	if name, ok := ch.(string); ok {
		if tid, ok := strings.CutPrefix(name, "task_"); ok {
			if t := s.tasks[tid]; t != nil {
				s.dropTask(t)
			}
		}
	}
	if d, ok := dev.(string); ok {
		if st := s.devs[d]; st != nil {
			st.poke()
			st.broadcast()
		}
	}
	return empty(http.StatusOK, "")
}

// poke wakes st's runner. Caller holds s.mu.
func (st *devState) poke() {
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// ---- files ----

func (s *Server) putFile(r *http.Request, name string, body []byte) *response {
	if name == "" {
		return plain(http.StatusBadRequest, "", "Error: no file name")
	}
	h := r.Header
	get := func(k string) string {
		if v, ok := h[k]; ok && len(v) > 0 {
			return v[0]
		}
		return h.Get(k)
	}
	f := &file{name: name, data: body, uploaded: s.opt.Now(),
		meta: [4]string{get("fileType"), get("oui"), get("productClass"), get("version")}}
	s.mu.Lock()
	s.files[name] = f
	s.mu.Unlock()
	return empty(http.StatusCreated, "")
}

func (s *Server) deleteFile(name string) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[name]; !ok {
		return plain(http.StatusNotFound, "", "File not found")
	}
	delete(s.files, name)
	return empty(http.StatusOK, "")
}

func (f *file) doc() obj {
	return obj{{"_id", f.name}, {"length", len(f.data)}, {"chunkSize", 261120}, {"uploadDate", f.uploaded},
		{"filename", f.name}, {"metadata", obj{{"fileType", f.meta[0]}, {"oui", f.meta[1]}, {"productClass", f.meta[2]}, {"version", f.meta[3]}}}}
}

func (s *Server) listFiles(r *http.Request) *response {
	a, err := parseList(r)
	if err != nil {
		return badQuery(err)
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.files))
	for n := range s.files {
		names = append(names, n)
	}
	sort.Strings(names)
	docs := make([]any, len(names))
	for i, n := range names {
		docs[i] = s.files[n].doc()
	}
	s.mu.Unlock()
	return s.list(r, docs, a, func(d any) any { return projectObj(d.(obj), a.projection) })
}

// serveFile answers GET/HEAD /fs/<name>: the file's bytes, for the CPE.
func (s *Server) serveFile(r *http.Request, name string) *response {
	s.mu.Lock()
	f := s.files[name]
	s.mu.Unlock()
	if f == nil {
		return plain(http.StatusNotFound, "", "File not found")
	}
	s.log.Info("serving file", "file", name, "remote", r.RemoteAddr)
	resp := &response{status: http.StatusOK, body: f.data}
	resp.set("Content-Type", "application/octet-stream")
	if r.Method == http.MethodHead {
		resp.set("Content-Length", strconv.Itoa(len(f.data)))
	}
	return resp
}

// FileHandler serves the file store as genieacs-fs does (GET /<name>),
// for Options.FileURL.
func (s *Server) FileHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/"))
		s.mu.Lock()
		f := s.files[name]
		s.mu.Unlock()
		if err != nil || f == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(f.data)
		}
	})
}

// fileURL is where the device fetches file name.
func (s *Server) fileURL(host, name string) string {
	if s.opt.FileURL != "" {
		return strings.TrimRight(s.opt.FileURL, "/") + "/" + url.PathEscape(name)
	}
	return "http://" + host + "/fs/" + url.PathEscape(name)
}
