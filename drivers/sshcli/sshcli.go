// Package sshcli is the SSH transport for devices managed over a CLI. It
// dials with golang.org/x/crypto/ssh, checks the host key against an
// OpenSSH known_hosts file (never skipping the check), and runs one command
// per exec channel with Run.
//
// Host keys: a host that is not in KnownHostsFile is refused with
// ErrUnknownHost and its SHA256 fingerprint, to be checked out of band and
// accepted with --trust-on-first-use (Config.TrustOnFirstUse), which records
// the key. A host whose key differs from the recorded one is always refused
// with ErrHostKeyChanged: a replaced device and an attacker look the same,
// and only a person who knows which it is may edit known_hosts.
//
// The interactive CLI layer is Channel: it runs on a Transport (Open,
// Close, Read, Write) — a ShellTransport from Client.Shell (a PTY shell on
// the checked connection), or a Recorded session in tests — and knows the
// device's prompts, privilege levels, pager, error lines and commit from a
// data-driven platform definition (package platform, e.g. "xt2"). Run stays
// the way to execute a single non-interactive command.
package sshcli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"fieldagent/agent/secret"
)

// Sentinel errors. Errors returned by this package wrap one of them or a
// context or network error; check with errors.Is.
var (
	// ErrUnknownHost means the host has no key in KnownHostsFile and
	// TrustOnFirstUse is off. The message carries the SHA256 fingerprint to
	// verify before re-running with --trust-on-first-use.
	ErrUnknownHost = errors.New("ssh host key is unknown")
	// ErrHostKeyChanged means the host presented a key different from the
	// one recorded in KnownHostsFile (or a revoked key). It is refused even
	// with TrustOnFirstUse.
	ErrHostKeyChanged = errors.New("ssh host key has changed")
	// ErrAuth means the server rejected every credential offered.
	ErrAuth = errors.New("ssh authentication failed")
	// ErrCommandFailed means a command ran and exited with a non-zero
	// status (or without one), and the error also wraps *ssh.ExitError or
	// *ssh.ExitMissingError; or, on a Channel, that the device printed an
	// error line, which the message quotes.
	ErrCommandFailed = errors.New("ssh command failed")
	// ErrInvalidConfig means the Config cannot be used; the message names
	// the field to fix.
	ErrInvalidConfig = errors.New("invalid ssh config")
	// ErrClosed means the Client or Channel was used after Close.
	ErrClosed = errors.New("ssh client closed")

	// Errors of the interactive Channel.

	// ErrNoPrompt means the device's output did not end in a prompt of any
	// privilege level of the platform; the message quotes the last line.
	ErrNoPrompt = errors.New("no CLI prompt found")
	// ErrPrivilege means a privilege level could not be reached.
	ErrPrivilege = errors.New("cannot reach privilege level")
	// ErrConfirmation means a command asked a [Y/N] question that
	// SendCommand does not answer; it was declined. Use SendConfirmed.
	ErrConfirmation = errors.New("command asked for confirmation")
	// ErrUnsupported means the platform has no such operation (for
	// example no two-stage commit).
	ErrUnsupported = errors.New("not supported by the platform")
	// ErrOutOfSync means an earlier command timed out or the stream broke,
	// so the channel no longer knows where the device's output stands;
	// close it and open a new one.
	ErrOutOfSync = errors.New("CLI channel out of sync")
)

// DefaultTimeout bounds dial and handshake when Config.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Config says where a device is and how to log in to it.
type Config struct {
	// Addr is the device's "host:port"; a bare host means port 22.
	Addr string
	// User is the login name; required.
	User string
	// Password is offered as "password" and as "keyboard-interactive"
	// authentication (many network devices only offer the latter). Empty
	// means no password.
	Password secret.Secret
	// PrivateKey is an unencrypted PEM/OpenSSH private key, offered before
	// the password. Nil means no key. At least one of Password and
	// PrivateKey is required.
	PrivateKey []byte
	// KnownHostsFile is the OpenSSH known_hosts file that holds the host
	// keys to trust; required. It may be missing when TrustOnFirstUse is set.
	KnownHostsFile string
	// TrustOnFirstUse records the key of a host that has no entry in
	// KnownHostsFile (creating the file with mode 0600) instead of failing.
	// It never accepts a key that differs from a recorded one.
	TrustOnFirstUse bool
	// Timeout bounds TCP dial plus SSH handshake and authentication; zero
	// means DefaultTimeout. The context deadline caps it.
	Timeout time.Duration
	// Logger receives debug and info records; nil discards.
	Logger *slog.Logger
}

// addr returns Addr with the default port added when it has none.
func (cfg Config) addr() string {
	if _, _, err := net.SplitHostPort(cfg.Addr); err == nil {
		return cfg.Addr
	}
	return net.JoinHostPort(strings.Trim(cfg.Addr, "[]"), "22")
}

func (cfg Config) validate() error {
	switch {
	case cfg.Addr == "":
		return fmt.Errorf("%w: address is empty", ErrInvalidConfig)
	case cfg.User == "":
		return fmt.Errorf("%w: user is empty", ErrInvalidConfig)
	case cfg.KnownHostsFile == "":
		return fmt.Errorf("%w: known_hosts file is required (host keys are always checked)", ErrInvalidConfig)
	case cfg.Password.IsZero() && len(cfg.PrivateKey) == 0:
		return fmt.Errorf("%w: give a password or a private key", ErrInvalidConfig)
	case cfg.Timeout < 0:
		return fmt.Errorf("%w: timeout %s is negative", ErrInvalidConfig, cfg.Timeout)
	}
	return nil
}

// authMethods builds the methods to offer, key first.
func (cfg Config) authMethods() ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if len(cfg.PrivateKey) > 0 {
		signer, err := ssh.ParsePrivateKey(cfg.PrivateKey)
		if err != nil {
			var pm *ssh.PassphraseMissingError
			if errors.As(err, &pm) {
				return nil, fmt.Errorf("%w: the private key is encrypted; give an unencrypted key", ErrInvalidConfig)
			}
			// The parse error does not contain key material.
			return nil, fmt.Errorf("%w: private key: %w", ErrInvalidConfig, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if !cfg.Password.IsZero() {
		pw := cfg.Password
		methods = append(methods,
			ssh.PasswordCallback(func() (string, error) { return pw.Reveal(), nil }),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				// Answer the password prompt; anything else (OTP, banner
				// questions) is not ours to answer.
				answers := make([]string, len(questions))
				for i, q := range questions {
					if echos[i] || !strings.Contains(strings.ToLower(q), "password") {
						return nil, fmt.Errorf("keyboard-interactive question %q is not a password prompt", q)
					}
					answers[i] = pw.Reveal()
				}
				return answers, nil
			}),
		)
	}
	return methods, nil
}

// Client is an authenticated SSH connection to one device. Its methods may
// be called from several goroutines; each Run opens its own channel.
type Client struct {
	addr string
	log  *slog.Logger
	conn *ssh.Client

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// Dial connects to cfg.Addr, checks the host key against cfg.KnownHostsFile
// and authenticates. Errors wrap ErrInvalidConfig, ErrUnknownHost (with the
// key's SHA256 fingerprint), ErrHostKeyChanged, ErrAuth, a context error, or
// the network error of the dial.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	methods, err := cfg.authMethods()
	if err != nil {
		return nil, err
	}
	addr := cfg.addr()
	hk := &hostKeyChecker{file: cfg.KnownHostsFile, tofu: cfg.TrustOnFirstUse, log: log}
	algos, err := hk.knownAlgorithms(addr)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, dialError(ctx, addr, err)
	}
	// The handshake reads and writes nc: bound it by the deadline and
	// abort it when ctx is cancelled.
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              methods,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: algos,
	})
	if !stop() || err != nil {
		_ = nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, handshakeError(ctx, addr, cfg.User, hk, err)
	}
	_ = nc.SetDeadline(time.Time{})
	log.Debug("ssh connected", "addr", addr, "user", cfg.User, "server_version", string(sc.ServerVersion()))
	return &Client{
		addr: addr,
		log:  log,
		conn: ssh.NewClient(sc, chans, reqs),
		done: make(chan struct{}),
	}, nil
}

// ctxError returns the context error that explains err: ctx.Err(), or
// context.DeadlineExceeded for an I/O timeout caused by the deadline that
// Dial copied from ctx onto the socket (it can fire a moment before ctx
// reports it).
func ctxError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func dialError(ctx context.Context, addr string, err error) error {
	if cerr := ctxError(ctx, err); cerr != nil {
		return fmt.Errorf("ssh dial %s: %w", addr, cerr)
	}
	return fmt.Errorf("ssh dial %s: %w (check the address, the port and that sshd runs)", addr, err)
}

func handshakeError(ctx context.Context, addr, user string, hk *hostKeyChecker, err error) error {
	if hkErr := hk.failure(); hkErr != nil {
		return hkErr
	}
	if cerr := ctxError(ctx, err); cerr != nil {
		return fmt.Errorf("ssh handshake with %s: %w (no complete SSH handshake in time)", addr, cerr)
	}
	// x/crypto/ssh has no typed error for this; its message has been
	// stable for years and TestDialErrors pins it.
	if hk.accepted() && strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("ssh %s: %w for user %q: %w (check the user name, the password or key, and that the server allows this method)",
			addr, ErrAuth, user, err)
	}
	return fmt.Errorf("ssh handshake with %s: %w", addr, err)
}

// Close closes the connection; Run calls in flight return an error. It is
// safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.closeErr = c.conn.Close()
		c.log.Debug("ssh closed", "addr", c.addr)
	})
	return c.closeErr
}

// lockedBuffer merges stdout and stderr, which the session copies from two
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Run executes cmd on an exec channel and returns what it wrote to stdout
// and stderr, interleaved as it arrived. A non-zero exit returns the output
// together with an error wrapping ErrCommandFailed and *ssh.ExitError. When
// ctx ends first, Run closes the channel (sending SIGKILL first, which many
// devices ignore) and returns the output so far with the context error.
// Errors and logs name only the command's first word, because device
// commands may carry credentials.
func (c *Client) Run(ctx context.Context, cmd string) (string, error) {
	select {
	case <-c.done:
		return "", ErrClosed
	default:
	}
	name := commandName(cmd)
	out := &lockedBuffer{}
	type result struct {
		sess *ssh.Session
		err  error
	}
	started := make(chan result, 1)
	finished := make(chan error, 1)
	go func() {
		// NewSession blocks until the server answers the channel open; it
		// runs here so that ctx can end Run before that.
		sess, err := c.conn.NewSession()
		if err == nil {
			sess.Stdout, sess.Stderr = out, out
			if err = sess.Start(cmd); err != nil {
				_ = sess.Close()
			}
		}
		started <- result{sess, err}
		if err == nil {
			finished <- sess.Wait()
		}
	}()

	var sess *ssh.Session
	select {
	case r := <-started:
		if r.err != nil {
			return "", c.runError(ctx, name, fmt.Errorf("open session: %w", r.err))
		}
		sess = r.sess
	case <-ctx.Done():
		go func() { // close the session if it opens after all
			if r := <-started; r.err == nil {
				_ = r.sess.Close()
			}
		}()
		return "", c.runError(ctx, name, ctx.Err())
	case <-c.done:
		return "", ErrClosed
	}
	defer sess.Close()

	select {
	case err := <-finished:
		if err != nil {
			return out.String(), c.runError(ctx, name, err)
		}
		c.log.Debug("ssh command done", "addr", c.addr, "command", name, "bytes", len(out.String()))
		return out.String(), nil
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		return out.String(), c.runError(ctx, name, ctx.Err())
	case <-c.done:
		return out.String(), ErrClosed
	}
}

func (c *Client) runError(ctx context.Context, name string, err error) error {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(err, &exitErr):
		err = fmt.Errorf("ssh %s: command %q: %w: exit status %d: %w", c.addr, name, ErrCommandFailed, exitErr.ExitStatus(), err)
	case errors.As(err, &missing):
		err = fmt.Errorf("ssh %s: command %q: %w: the server closed the channel without an exit status: %w", c.addr, name, ErrCommandFailed, err)
	case ctx.Err() != nil:
		err = fmt.Errorf("ssh %s: command %q: %w", c.addr, name, ctx.Err())
	default:
		select {
		case <-c.done:
			return ErrClosed
		default:
		}
		err = fmt.Errorf("ssh %s: command %q: %w", c.addr, name, err)
	}
	c.log.Debug("ssh command failed", "addr", c.addr, "command", name, "err", err)
	return err
}

// commandName returns the first word of cmd, for errors and logs.
func commandName(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return ""
	}
	if len(f) > 1 {
		return f[0] + " …"
	}
	return f[0]
}

// hostKeyChecker implements the known_hosts policy. check runs once per
// handshake, from the handshake goroutine; the mutex makes the result
// readable by Dial afterwards.
type hostKeyChecker struct {
	file string
	tofu bool
	log  *slog.Logger

	mu  sync.Mutex
	err error // why the key was refused
	ok  bool  // the key was accepted
}

func (h *hostKeyChecker) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *hostKeyChecker) accepted() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ok
}

// db reads the known_hosts file; a missing file is an empty one.
func (h *hostKeyChecker) db() (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(h.file)
	if errors.Is(err, fs.ErrNotExist) {
		return func(string, net.Addr, ssh.PublicKey) error {
			return &knownhosts.KeyError{}
		}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read known_hosts %s: %w", ErrInvalidConfig, h.file, err)
	}
	return cb, nil
}

// knownAlgorithms returns the host key algorithms to ask for so that the
// server presents a key of a type we have recorded for addr (as OpenSSH
// does); nil when addr has no recorded key. Without this a server with
// several host keys may offer another type and look "changed".
func (h *hostKeyChecker) knownAlgorithms(addr string) ([]string, error) {
	cb, err := h.db()
	if err != nil {
		return nil, err
	}
	probe, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pk, err := ssh.NewPublicKey(probe)
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, tcpAddr(addr), pk); !errors.As(err, &ke) {
		return nil, nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		for _, a := range algorithmsForKeyType(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos, nil
}

func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{t}
}

func tcpAddr(hostport string) net.Addr {
	host, port, _ := net.SplitHostPort(hostport)
	a, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port))
	if err != nil || a.IP == nil {
		return &net.TCPAddr{}
	}
	return a
}

// check is the ssh.HostKeyCallback.
func (h *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.decide(hostname, remote, key)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err, h.ok = err, err == nil
	return err
}

func (h *hostKeyChecker) decide(hostname string, remote net.Addr, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	cb, err := h.db()
	if err != nil {
		return err
	}
	err = cb(hostname, remote, key)
	if err == nil {
		h.log.Debug("ssh host key matches known_hosts", "host", hostname, "fingerprint", fp)
		return nil
	}
	var revoked *knownhosts.RevokedError
	if errors.As(err, &revoked) {
		return fmt.Errorf("ssh %s: %w: key %s %s is marked @revoked in %s: refusing to connect",
			hostname, ErrHostKeyChanged, key.Type(), fp, h.file)
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return fmt.Errorf("ssh %s: host key check: %w", hostname, err)
	}
	if len(ke.Want) > 0 {
		var known []string
		for _, k := range ke.Want {
			known = append(known, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		return fmt.Errorf("ssh %s: %w: it presented %s %s but %s records %s; "+
			"this is a replaced device or someone in the middle: find out which, and if the device was replaced "+
			"remove its line from %s and connect again (trust on first use never overrides a recorded key)",
			hostname, ErrHostKeyChanged, key.Type(), fp, h.file, strings.Join(known, ", "), h.file)
	}
	if !h.tofu {
		return fmt.Errorf("ssh %s: %w: it presented %s %s, which is not in %s; "+
			"verify this fingerprint with the device (console or label) and re-run with --trust-on-first-use to record it",
			hostname, ErrUnknownHost, key.Type(), fp, h.file)
	}
	if err := appendKnownHost(h.file, hostname, key); err != nil {
		return fmt.Errorf("ssh %s: record host key in %s: %w", hostname, h.file, err)
	}
	h.log.Info("ssh host key recorded on first use", "host", hostname, "key_type", key.Type(), "fingerprint", fp, "file", h.file)
	return nil
}

// appendKnownHost adds one line for hostname to file, creating it (0600)
// and its directory (0700) when missing.
func appendKnownHost(file, hostname string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	// Keep lines separate if the file does not end in a newline.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		} else if err != nil && !errors.Is(err, io.EOF) {
			_ = f.Close()
			return err
		}
	}
	if _, err := f.WriteString(line); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
