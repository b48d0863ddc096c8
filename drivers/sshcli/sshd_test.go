package sshcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshd is a running OpenSSH server for one test.
type sshd struct {
	addr       string // 127.0.0.1:port
	user       string
	clientKey  []byte // PEM of a key in authorized_keys
	hostPub    ssh.PublicKey
	otherKey   []byte // PEM of a key that is not authorized
	otherHost  ssh.PublicKey
	knownHosts string // path of an empty (not yet created) known_hosts
}

// keygen runs ssh-keygen for an ed25519 key without passphrase at path.
func keygen(t *testing.T, path string) (private []byte, public ssh.PublicKey) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fieldagent-test", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	private, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	public, _, _, _, err = ssh.ParseAuthorizedKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	return private, public
}

// startSSHD runs /usr/sbin/sshd -D on 127.0.0.1 with a private config,
// host key and authorized_keys in t.TempDir(), waits until its port accepts
// and kills it at cleanup.
func startSSHD(t *testing.T) *sshd {
	t.Helper()
	return startSSHDWith(t, "")
}

// startSSHDWith is startSSHD with extra lines appended to sshd_config
// (for example a ForceCommand).
func startSSHDWith(t *testing.T, extraConfig string) *sshd {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
		if _, statErr := os.Stat(bin); statErr != nil {
			t.Skip("sshd not installed: run `make test-deps`")
		}
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed: run `make test-deps`")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory; Debian creates it from
		// the service unit, which tests do not run.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("create /run/sshd: %v", err)
		}
	}
	dir := t.TempDir()
	s := &sshd{user: u.Username, knownHosts: filepath.Join(dir, "client", "known_hosts")}
	_, s.hostPub = keygen(t, filepath.Join(dir, "hostkey"))
	_, s.otherHost = keygen(t, filepath.Join(dir, "otherhostkey"))
	var clientPub ssh.PublicKey
	s.clientKey, clientPub = keygen(t, filepath.Join(dir, "clientkey"))
	s.otherKey, _ = keygen(t, filepath.Join(dir, "otherkey"))
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "sshd_config")
	confText := fmt.Sprintf(`ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
PermitRootLogin yes
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
%s`, filepath.Join(dir, "hostkey"), authorized, extraConfig)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}

	var lastErr error
	for range 3 { // the port can be taken between choosing and binding it
		addr, err := runSSHD(t, bin, conf)
		if err == nil {
			s.addr = addr
			return s
		}
		lastErr = err
	}
	t.Fatalf("start sshd: %v", lastErr)
	return nil
}

func runSSHD(t *testing.T, bin, conf string) (string, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	out := &lockedBuffer{}
	cmd := exec.Command(bin, "-D", "-e", "-f", conf, "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second // do not wait for pipes held by leftover children
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		// Kill the whole process group: a forked child (sshd's per-connection
		// process) would otherwise outlive the test and hold the output pipe.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("sshd exited early:\n%s", out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("sshd did not listen on %s: %w\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("sshd output:\n%s", out.String())
		}
	})
	return addr, nil
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (s *sshd) config() Config {
	return Config{Addr: s.addr, User: s.user, PrivateKey: s.clientKey, KnownHostsFile: s.knownHosts, Timeout: 10 * time.Second}
}

func TestSSHDTrustOnFirstUseThenKnown(t *testing.T) {
	s := startSSHD(t)
	cfg := s.config()
	cfg.TrustOnFirstUse = true
	c, err := Dial(ctxFor(t), cfg)
	if err != nil {
		t.Fatalf("Dial with TOFU: %v", err)
	}
	out, err := c.Run(ctxFor(t), "echo hello")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out != "hello\n" {
		t.Errorf("Run output = %q, want %q", out, "hello\n")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	st, err := os.Stat(s.knownHosts)
	if err != nil {
		t.Fatalf("known_hosts not written: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode = %o, want 600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(s.knownHosts)
	wantHost := "[127.0.0.1]:" + strings.TrimPrefix(s.addr, "127.0.0.1:")
	if !strings.HasPrefix(string(data), wantHost+" ") || !strings.Contains(string(data), string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(s.hostPub)))) {
		t.Errorf("known_hosts = %q, want a line for %s with the host key", data, wantHost)
	}

	// Now known: a plain Dial succeeds against the recorded key, and does
	// not add another line.
	cfg.TrustOnFirstUse = false
	c, err = Dial(ctxFor(t), cfg)
	if err != nil {
		t.Fatalf("second Dial: %v", err)
	}
	defer c.Close()
	if out, err := c.Run(ctxFor(t), "echo again"); err != nil || out != "again\n" {
		t.Errorf("Run = %q, %v", out, err)
	}
	after, _ := os.ReadFile(s.knownHosts)
	if !bytes.Equal(after, data) {
		t.Errorf("known_hosts changed on a known host: %q", after)
	}
}

func TestSSHDDialErrors(t *testing.T) {
	s := startSSHD(t)
	hostPattern := "[127.0.0.1]:" + strings.TrimPrefix(s.addr, "127.0.0.1:")
	otherLine := hostPattern + " " + string(ssh.MarshalAuthorizedKey(s.otherHost))
	goodLine := hostPattern + " " + string(ssh.MarshalAuthorizedKey(s.hostPub))

	tests := []struct {
		name       string
		knownHosts string // content written first; "" means no file
		tofu       bool
		key        []byte
		wantErr    error
		wantInMsg  []string
		fileAfter  string // expected content after; "-" means no file
	}{
		{
			name:      "unknown host without TOFU",
			wantErr:   ErrUnknownHost,
			wantInMsg: []string{"SHA256:", ssh.FingerprintSHA256(s.hostPub), "--trust-on-first-use"},
			fileAfter: "-",
		},
		{
			name:       "changed host key",
			knownHosts: otherLine,
			wantErr:    ErrHostKeyChanged,
			wantInMsg:  []string{ssh.FingerprintSHA256(s.hostPub), ssh.FingerprintSHA256(s.otherHost)},
			fileAfter:  otherLine,
		},
		{
			name:       "changed host key even with TOFU",
			knownHosts: otherLine,
			tofu:       true,
			wantErr:    ErrHostKeyChanged,
			fileAfter:  otherLine,
		},
		{
			name:       "revoked host key",
			knownHosts: "@revoked * " + string(ssh.MarshalAuthorizedKey(s.hostPub)),
			tofu:       true,
			wantErr:    ErrHostKeyChanged,
			wantInMsg:  []string{"revoked"},
		},
		{
			name:       "wrong client key",
			knownHosts: goodLine,
			key:        s.otherKey,
			wantErr:    ErrAuth,
			wantInMsg:  []string{s.user},
			fileAfter:  goodLine,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.config()
			cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
			if tc.knownHosts != "" {
				if err := os.WriteFile(cfg.KnownHostsFile, []byte(tc.knownHosts), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg.TrustOnFirstUse = tc.tofu
			if tc.key != nil {
				cfg.PrivateKey = tc.key
			}
			c, err := Dial(ctxFor(t), cfg)
			if err == nil {
				c.Close()
				t.Fatalf("Dial succeeded, want %v", tc.wantErr)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Dial error = %v, want %v", err, tc.wantErr)
			}
			for _, s := range tc.wantInMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			switch data, readErr := os.ReadFile(cfg.KnownHostsFile); {
			case tc.fileAfter == "-" && readErr == nil:
				t.Errorf("known_hosts was created: %q", data)
			case tc.fileAfter != "" && tc.fileAfter != "-" && string(data) != tc.fileAfter:
				t.Errorf("known_hosts = %q, want it unchanged %q", data, tc.fileAfter)
			}
		})
	}
}

func TestSSHDRun(t *testing.T) {
	s := startSSHD(t)
	cfg := s.config()
	cfg.TrustOnFirstUse = true
	c, err := Dial(ctxFor(t), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()

	tests := []struct {
		name       string
		cmd        string
		wantOut    string
		wantErr    error
		wantStatus int
	}{
		{"echo", "echo hello", "hello\n", nil, 0},
		{"stderr is included", "echo oops >&2", "oops\n", nil, 0},
		{"false", "false", "", ErrCommandFailed, 1},
		{"exit 3 with output", "echo partial; exit 3", "partial\n", ErrCommandFailed, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Run(ctxFor(t), tc.cmd)
			if out != tc.wantOut {
				t.Errorf("output = %q, want %q", out, tc.wantOut)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				var exitErr *ssh.ExitError
				if !errors.As(err, &exitErr) || exitErr.ExitStatus() != tc.wantStatus {
					t.Errorf("error %v does not carry exit status %d", err, tc.wantStatus)
				}
			}
		})
	}

	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := c.Run(ctx, "sleep 30")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want context.DeadlineExceeded", err)
		}
		// The connection is still usable.
		if out, err := c.Run(ctxFor(t), "echo still"); err != nil || out != "still\n" {
			t.Errorf("Run after a cancelled Run = %q, %v", out, err)
		}
	})
}

func TestSSHDCloseThenRun(t *testing.T) {
	s := startSSHD(t)
	cfg := s.config()
	cfg.TrustOnFirstUse = true
	c, err := Dial(ctxFor(t), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Run(ctxFor(t), "echo hi"); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	_ = c.Close() // second Close is harmless
}
