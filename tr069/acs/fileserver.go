package acs

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/internal/httpauth"
)

// FileServer serves the files that Download RPCs point CPEs at (firmware
// images, configuration files), from a directory or from blobs added in
// memory. A file is served only to the devices registered for it, each
// with its own credentials (HTTP Digest; Basic over TLS, or over plain HTTP
// when AllowBasicWithoutTLS is set). It answers GET and HEAD with ranges.
// Mount it under a prefix with http.StripPrefix; request paths name files
// relative to it. Create it with NewFileServer; safe for concurrent use.
type FileServer struct {
	dir   string
	log   *slog.Logger
	ds    *httpauth.DigestServer
	realm string

	// AllowBasicWithoutTLS accepts Basic credentials on plain HTTP. Set it
	// before serving.
	AllowBasicWithoutTLS bool

	mu     sync.RWMutex
	blobs  map[string]blob
	grants map[string]map[string]grant // file name → username → grant
}

type blob struct {
	data []byte
	mod  time.Time
}

type grant struct {
	deviceID string
	pass     secret.Secret
}

// NewFileServer returns a FileServer for the files under dir (empty means
// blobs only; paths never escape dir). logger, if nil, discards.
func NewFileServer(dir string, logger *slog.Logger) *FileServer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ds := httpauth.NewDigestServer("fieldagent-files")
	ds.RequireQOP = true
	return &FileServer{
		dir: dir, log: logger, ds: ds, realm: "fieldagent-files",
		blobs: map[string]blob{}, grants: map[string]map[string]grant{},
	}
}

func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// AddBlob serves data as file name (replacing a blob of that name; a blob
// hides a file of the same name in the directory).
func (f *FileServer) AddBlob(name string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blobs[cleanName(name)] = blob{data: append([]byte(nil), data...), mod: time.Now()}
}

// Register allows deviceID to fetch file name with user and pass. An empty
// user makes the file public (no credentials; some CPEs cannot
// authenticate file transfers). Registering a user again replaces it.
func (f *FileServer) Register(name, deviceID, user string, pass secret.Secret) {
	name = cleanName(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.grants[name]
	if g == nil {
		g = map[string]grant{}
		f.grants[name] = g
	}
	g[user] = grant{deviceID: deviceID, pass: pass}
}

// Unregister withdraws deviceID's access to file name.
func (f *FileServer) Unregister(name, deviceID string) {
	name = cleanName(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	for user, g := range f.grants[name] {
		if g.deviceID == deviceID {
			delete(f.grants[name], user)
		}
	}
	if len(f.grants[name]) == 0 {
		delete(f.grants, name)
	}
}

// ServeHTTP serves a registered file to a device with valid credentials:
// 401 with a Digest challenge otherwise, 404 for a file nobody is
// registered for or that does not exist.
func (f *FileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "GET or HEAD only", http.StatusMethodNotAllowed)
		return
	}
	name := cleanName(r.URL.Path)
	f.mu.RLock()
	grants := f.grants[name]
	b, isBlob := f.blobs[name]
	public, isPublic := grants[""]
	f.mu.RUnlock()
	if len(grants) == 0 {
		http.NotFound(w, r)
		return
	}
	deviceID := public.deviceID
	if !isPublic {
		var ok bool
		if deviceID, ok = f.authenticate(w, r, name, grants); !ok {
			return
		}
	}
	f.log.Info("serving file", "file", name, "device", deviceID, "remote", r.RemoteAddr)
	if isBlob {
		http.ServeContent(w, r, name, b.mod, bytes.NewReader(b.data))
		return
	}
	if f.dir == "" {
		http.NotFound(w, r)
		return
	}
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		f.log.Error("file server directory cannot be opened", "dir", f.dir, "err", err)
		http.Error(w, "file store unavailable", http.StatusInternalServerError)
		return
	}
	defer root.Close()
	file, err := root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, st.ModTime(), file)
}

func (f *FileServer) authenticate(w http.ResponseWriter, r *http.Request, name string, grants map[string]grant) (string, bool) {
	basicOK := r.TLS != nil || f.AllowBasicWithoutTLS
	user, scheme := httpauth.Username(r)
	stale := false
	if scheme != "" {
		f.mu.RLock()
		g, known := grants[user]
		f.mu.RUnlock()
		switch {
		case !known:
		case scheme == "Digest":
			var ok bool
			if ok, stale = f.ds.Check(r, user, g.pass); ok {
				return g.deviceID, true
			}
		case scheme == "Basic" && basicOK:
			if httpauth.CheckBasic(r, user, g.pass) {
				return g.deviceID, true
			}
		}
		if !stale {
			f.log.Warn("file download authentication failed", "file", name, "remote", r.RemoteAddr, "username", user, "scheme", scheme)
		}
	}
	w.Header().Add("WWW-Authenticate", f.ds.Challenge(stale))
	if basicOK {
		w.Header().Add("WWW-Authenticate", `Basic realm="`+f.realm+`"`)
	}
	http.Error(w, "authentication required", http.StatusUnauthorized)
	return "", false
}
