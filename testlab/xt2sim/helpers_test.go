package xt2sim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"fieldagent/agent/secret"
	"fieldagent/testlab/bbms"
	"fieldagent/testlab/operator"
)

// Lab credentials of the tests.
const (
	testUser     = "admin"
	testPassword = "Admin@123"
	pppUser      = "biz0755001"
	pppPassword  = "ppp-Secret-9"
	customerID   = "88001234"
	community    = "lab-community"
	v3User       = "fieldagent"
	v3Auth       = "auth-pass-123"
	v3Priv       = "priv-pass-456"
)

// lab is a router with its operator side.
type lab struct {
	r    *Router
	op   *operator.Server
	bbms *bbms.Server
}

// startLab starts a BRAS, a BBMS and a router wired to them; edit, if
// set, changes the router's config first.
func startLab(t *testing.T, edit func(*Config)) *lab {
	t.Helper()
	op := operator.New(secret.New("op-token"), nil)
	op.AddPPPoEAccount(pppUser, secret.New(pppPassword))
	opSrv := httptest.NewServer(op)
	t.Cleanup(opSrv.Close)
	bb := bbms.New(secret.New("bbms-token"), nil)
	bb.AddCustomer(customerID)
	bbSrv := httptest.NewServer(bb)
	t.Cleanup(bbSrv.Close)

	cfg := Config{
		Serial:        "XT2A1B2C3D4",
		Users:         map[string]secret.Secret{testUser: secret.New(testPassword)},
		SNMPCommunity: secret.New(community),
		SNMPv3User:    v3User,
		SNMPv3AuthKey: secret.New(v3Auth),
		SNMPv3PrivKey: secret.New(v3Priv),
		BRASURL:       opSrv.URL, BRASToken: secret.New("op-token"),
		BBMSURL: bbSrv.URL, BBMSToken: secret.New("bbms-token"),
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return &lab{r: r, op: op, bbms: bb}
}

// syncBuffer collects a session's output.
type syncBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	cond chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	select {
	case b.cond <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// term is an interactive CLI session with a PTY, driven by a test.
type term struct {
	t      *testing.T
	client *ssh.Client
	sess   *ssh.Session
	stdin  io.WriteCloser
	out    *syncBuffer
	mark   int
	done   chan struct{}
}

func dialTerm(t *testing.T, r *Router) *term {
	t.Helper()
	cc := &ssh.ClientConfig{
		User:            testUser,
		Auth:            []ssh.AuthMethod{ssh.Password(testPassword)},
		HostKeyCallback: ssh.FixedHostKey(r.HostKey()),
	}
	client, err := ssh.Dial("tcp", r.SSHAddr(), cc)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("vt100", 24, 80, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{cond: make(chan struct{}, 1)}
	sess.Stdout = out
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, client: client, sess: sess, stdin: stdin, out: out, done: make(chan struct{})}
	go func() { _ = sess.Wait(); close(tm.done) }()
	t.Cleanup(func() { _ = client.Close() })
	tm.expect("<XT2>")
	return tm
}

// send types s.
func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.stdin, s); err != nil {
		tm.t.Fatalf("send %q: %v", s, err)
	}
}

// expect waits until the output after the mark contains want, moves the
// mark past it and returns what came before it (from the old mark).
func (tm *term) expect(want string) string {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(tm.t.Context(), 10*time.Second)
	defer cancel()
	for {
		s := tm.out.String()
		if i := strings.Index(s[tm.mark:], want); i >= 0 {
			got := s[tm.mark : tm.mark+i]
			tm.mark += i + len(want)
			return got
		}
		select {
		case <-tm.out.cond:
		case <-tm.done:
			s := tm.out.String()
			if strings.Contains(s[tm.mark:], want) {
				continue
			}
			tm.t.Fatalf("session ended without %q; output after mark:\n%q", want, s[tm.mark:])
		case <-ctx.Done():
			tm.t.Fatalf("no %q in output after mark:\n%q", want, tm.out.String()[tm.mark:])
		}
	}
}

// cmd types line + Enter and returns the output up to the prompt.
func (tm *term) cmd(line, prompt string) string {
	tm.t.Helper()
	tm.send(line + "\r")
	tm.expect(line + "\r\n")
	return tm.expect(prompt)
}

// newKey returns an ed25519 signer for client logins.
func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
