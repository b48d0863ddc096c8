package sshcli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"fieldagent/agent/secret"
)

// testServer is an in-process x/crypto/ssh server on 127.0.0.1 that runs
// three fake commands on exec channels: "echo ARGS", "false" and "hang".
type testServer struct {
	addr string
	wg   sync.WaitGroup
}

func newSigner(t *testing.T, kind string) ssh.Signer {
	t.Helper()
	var key any
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	default:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startTestServer(t *testing.T, cfg *ssh.ServerConfig, hostKeys ...ssh.Signer) *testServer {
	t.Helper()
	for _, k := range hostKeys {
		cfg.AddHostKey(k)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{addr: l.Addr().String()}
	var mu sync.Mutex
	var conns []net.Conn
	s.wg.Go(func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			s.wg.Go(func() { s.serve(nc, cfg) })
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *testServer) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	s.wg.Go(func() { ssh.DiscardRequests(reqs) })
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		s.wg.Go(func() { s.session(ch, chReqs) })
	}
}

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(false, nil)
			continue
		}
		n := binary.BigEndian.Uint32(req.Payload)
		cmd := string(req.Payload[4:][:min(int(n), len(req.Payload)-4)])
		_ = req.Reply(true, nil)
		var status uint32
		switch {
		case strings.HasPrefix(cmd, "echo "):
			_, _ = ch.Write([]byte(strings.TrimPrefix(cmd, "echo ") + "\n"))
		case cmd == "false":
			status = 1
		case cmd == "hang":
			for range reqs { // until the client closes the channel
			}
			return
		default:
			_, _ = ch.Stderr().Write([]byte(cmd + ": not found\n"))
			status = 127
		}
		_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
		return
	}
}

const testPassword = "s3cret-pass"

func passwordServerConfig() *ssh.ServerConfig {
	return &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if c.User() == "tech" && string(pw) == testPassword {
				return nil, nil
			}
			return nil, errors.New("denied")
		},
	}
}

func kbdServerConfig() *ssh.ServerConfig {
	return &ssh.ServerConfig{
		KeyboardInteractiveCallback: func(c ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := client(c.User(), "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if c.User() == "tech" && len(ans) == 1 && ans[0] == testPassword {
				return nil, nil
			}
			return nil, errors.New("denied")
		},
	}
}

func knownHostsWith(t *testing.T, addr string, keys ...ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, k) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPasswordAuthInProcess(t *testing.T) {
	host := newSigner(t, "ed25519")
	pwSrv := startTestServer(t, passwordServerConfig(), host)
	kbdSrv := startTestServer(t, kbdServerConfig(), host)

	tests := []struct {
		name     string
		addr     string
		user     string
		password string
		wantErr  error
	}{
		{"password", pwSrv.addr, "tech", testPassword, nil},
		{"keyboard-interactive", kbdSrv.addr, "tech", testPassword, nil},
		{"wrong password", pwSrv.addr, "tech", "nope-nope", ErrAuth},
		{"wrong user", pwSrv.addr, "admin", testPassword, ErrAuth},
		{"keyboard-interactive wrong password", kbdSrv.addr, "tech", "nope-nope", ErrAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{
				Addr: tc.addr, User: tc.user, Password: secret.New(tc.password),
				KnownHostsFile: knownHostsWith(t, tc.addr, host.PublicKey()),
			}
			c, err := Dial(ctxFor(t), cfg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Dial error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), tc.password) {
					t.Errorf("error %q reveals the password", err)
				}
				return
			}
			defer c.Close()
			out, err := c.Run(ctxFor(t), "echo hello")
			if err != nil || out != "hello\n" {
				t.Errorf("Run = %q, %v", out, err)
			}
		})
	}
}

func TestRunInProcess(t *testing.T) {
	host := newSigner(t, "ed25519")
	srv := startTestServer(t, passwordServerConfig(), host)
	c, err := Dial(ctxFor(t), Config{
		Addr: srv.addr, User: "tech", Password: secret.New(testPassword),
		KnownHostsFile: knownHostsWith(t, srv.addr, host.PublicKey()),
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()

	cancelled := func(t *testing.T) context.Context {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		t.Cleanup(cancel)
		return ctx
	}
	tests := []struct {
		name    string
		cmd     string
		ctx     func(t *testing.T) context.Context
		wantOut string
		wantErr error
	}{
		{"echo", "echo a b", ctxFor, "a b\n", nil},
		{"false", "false", ctxFor, "", ErrCommandFailed},
		{"unknown command on stderr", "show secret-password", ctxFor, "show secret-password: not found\n", ErrCommandFailed},
		{"cancelled", "hang", cancelled, "", context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Run(tc.ctx(t), tc.cmd)
			if out != tc.wantOut {
				t.Errorf("output = %q, want %q", out, tc.wantOut)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret-password") {
				t.Errorf("error %q contains the command's arguments", err)
			}
		})
	}
}

// A server with two host keys must be asked for the type we recorded,
// or its other key would look like a changed key.
func TestKnownKeyTypeIsNegotiated(t *testing.T) {
	rsaKey, edKey := newSigner(t, "rsa"), newSigner(t, "ed25519")
	srv := startTestServer(t, passwordServerConfig(), edKey, rsaKey)
	for _, known := range []ssh.Signer{rsaKey, edKey} {
		t.Run(known.PublicKey().Type(), func(t *testing.T) {
			c, err := Dial(ctxFor(t), Config{
				Addr: srv.addr, User: "tech", Password: secret.New(testPassword),
				KnownHostsFile: knownHostsWith(t, srv.addr, known.PublicKey()),
			})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			_ = c.Close()
		})
	}
}

func TestDialContextDeadline(t *testing.T) {
	// A listener that accepts and never speaks: only the deadline ends Dial.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		nc, err := l.Accept()
		if err == nil {
			defer nc.Close()
			buf := make([]byte, 1024)
			for {
				if _, err := nc.Read(buf); err != nil {
					return
				}
			}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, Config{
		Addr: l.Addr().String(), User: "tech", Password: secret.New("x"),
		KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), Timeout: time.Minute,
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial error = %v, want context.DeadlineExceeded", err)
	}
	_ = l.Close()
}

func TestConfigValidation(t *testing.T) {
	good := Config{Addr: "192.0.2.1:22", User: "u", Password: secret.New("p"), KnownHostsFile: "/tmp/kh"}
	tests := []struct {
		name    string
		mod     func(c *Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"no addr", func(c *Config) { c.Addr = "" }, "address is empty"},
		{"no user", func(c *Config) { c.User = "" }, "user is empty"},
		{"no known_hosts", func(c *Config) { c.KnownHostsFile = "" }, "known_hosts file is required"},
		{"no credential", func(c *Config) { c.Password = secret.Secret{} }, "password or a private key"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "negative"},
		{"garbage key", func(c *Config) { c.PrivateKey = []byte("not a key") }, "private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			err := cfg.validate()
			if err == nil {
				_, err = cfg.authMethods()
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("error = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want ErrInvalidConfig containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1:2222", "192.0.2.1:2222"},
		{"192.0.2.1", "192.0.2.1:22"},
		{"2001:db8::1", "[2001:db8::1]:22"},
		{"[2001:db8::1]:830", "[2001:db8::1]:830"},
		{"router.example", "router.example:22"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := (Config{Addr: tc.in}).addr(); got != tc.want {
				t.Errorf("addr() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAppendKnownHost(t *testing.T) {
	key := newSigner(t, "ed25519").PublicKey()
	tests := []struct {
		name     string
		existing *string // nil: no file
		host     string
		wantPre  string
	}{
		{"new file in new dir", nil, "127.0.0.1:2222", "[127.0.0.1]:2222 "},
		{"port 22 is bare", nil, "192.0.2.1:22", "192.0.2.1 "},
		{"file without final newline", ptr("other ssh-ed25519 AAAA"), "192.0.2.1:22", "other ssh-ed25519 AAAA\n192.0.2.1 "},
		{"file with final newline", ptr("other ssh-ed25519 AAAA\n"), "192.0.2.1:22", "other ssh-ed25519 AAAA\n192.0.2.1 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "known_hosts")
			if tc.existing != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(*tc.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := appendKnownHost(path, tc.host, key); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), tc.wantPre) || !strings.HasSuffix(string(data), "\n") {
				t.Errorf("file = %q, want prefix %q", data, tc.wantPre)
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode = %o, want 600", st.Mode().Perm())
			}
			// What we wrote is what knownhosts reads back.
			cb, err := knownhosts.New(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := cb(tc.host, tcpAddr(tc.host), key); err != nil {
				t.Errorf("recorded key not accepted: %v", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestCommandName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"false", "false"},
		{"  show   run ", "show …"},
		{"set password hunter2", "set …"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := commandName(tc.in); got != tc.want {
				t.Errorf("commandName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
