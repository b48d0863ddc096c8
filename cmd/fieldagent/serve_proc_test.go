//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/term"

	"fieldagent/agent/server/auth"
)

// serveChildEnv, when set, makes TestServeChild run `fieldagent serve` as
// the main program does: serveProc starts the test binary this way, so a
// test can SIGKILL a real serve process and measure its memory.
const serveChildEnv = "FA_TEST_SERVE_CHILD" // not FIELDAGENT_: config refuses unknown ones

func TestServeChild(t *testing.T) {
	if os.Getenv(serveChildEnv) != "1" {
		t.Skip("run by serveProc")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	f := &Factory{
		IO:  &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, ErrIsTerminal: term.IsTerminal(int(os.Stderr.Fd()))},
		Env: os.Environ(), Now: time.Now, Build: BuildInfo{Version: "test"},
	}
	root := newRootCmd(f)
	root.SetArgs([]string{"serve"})
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
	}
	os.Exit(exitCode(err))
}

// serveSite is a config for serve processes: a store, tokens, and the
// environment every process of the site gets.
type serveSite struct {
	dir    string
	env    []string
	tokens map[auth.Role]string
}

// newServeSite writes a config with a read and a diagnose token.
func newServeSite(tb testing.TB, extra string) *serveSite {
	tb.Helper()
	s := &serveSite{dir: tb.TempDir(), tokens: map[auth.Role]string{}}
	var lines []string
	for _, role := range []auth.Role{auth.RoleRead, auth.RoleDiagnose} {
		plain, hash := auth.NewToken()
		s.tokens[role] = plain.Reveal()
		lines = append(lines, "    - {name: "+string(role)+"-engineer, hash: \""+hash+"\", role: "+string(role)+"}")
	}
	cfg := "store: " + filepath.Join(s.dir, "serve.db") + "\nserve:\n  rate: 100000\n  burst: 100000\n  tokens:\n" + strings.Join(lines, "\n") + "\n" + extra
	path := filepath.Join(s.dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	s.env = []string{"FIELDAGENT_CONFIG=" + path, "FIELDAGENT_ACS_LISTEN=127.0.0.1:0", "FIELDAGENT_SERVE_API_LISTEN=127.0.0.1:0",
		"FIELDAGENT_ACS_CONNECTION_REQUEST_PASSWORD=cr-pass-proc", "FIELDAGENT_LOG_FORMAT=json", "FIELDAGENT_LOG_LEVEL=info"}
	return s
}

// serveProc is a running serve process.
type serveProc struct {
	cmd      *exec.Cmd
	acs, api string // base URLs
	mu       sync.Mutex
	logs     strings.Builder
	done     chan struct{}
}

// start runs serve in a new process and waits for its listeners.
func (s *serveSite) start(tb testing.TB) *serveProc {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$")
	cmd.Env = append(append(os.Environ(), serveChildEnv+"=1"), s.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil {
				switch rec.Msg {
				case "ACS listening":
					p.acs = strings.TrimSuffix(rec.URL, "/")
				case "remote-support API listening":
					p.api = strings.TrimSuffix(rec.URL, "/api/v1/")
				}
				if p.acs != "" && p.api != "" {
					once.Do(func() { close(ready) })
				}
			}
			p.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	tb.Cleanup(func() { p.kill() })
	select {
	case <-ready:
	case <-p.done:
		tb.Fatalf("serve exited before listening:\n%s", p.log())
	case <-time.After(30 * time.Second):
		tb.Fatalf("serve did not listen within 30 s:\n%s", p.log())
	}
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// kill SIGKILLs the process and waits for it.
func (p *serveProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func (p *serveProc) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
}

// get calls the API with a token and decodes the JSON answer into out.
func (p *serveProc) get(tb testing.TB, token, path string, out any) int {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}
