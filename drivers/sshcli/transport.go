package sshcli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Transport is the byte stream under a Channel: an interactive SSH shell
// (ShellTransport) or a recorded session (Recorded) in tests. It is the
// subset of a connection that Channel uses. Read may block until data
// arrives; Close must unblock it.
type Transport interface {
	Open(ctx context.Context) error
	Close() error
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
}

// PTY is the pseudo-terminal requested for an interactive shell.
type PTY struct {
	// Term is the terminal type; empty means "vt100".
	Term string
	// Width is the terminal width in columns; zero means 511, wide enough
	// that devices do not wrap long commands.
	Width int
	// Height is the terminal height in rows; zero means 24.
	Height int
}

// ShellTransport is an interactive shell channel (with a PTY) on a Client.
// Host keys were checked by Dial, so the channel inherits those checks.
type ShellTransport struct {
	client *Client
	pty    PTY

	mu   sync.Mutex
	sess *ssh.Session
	in   io.WriteCloser
	out  io.Reader
}

// Shell returns a transport that opens an interactive shell with pty on c.
// Nothing is sent until Open.
func (c *Client) Shell(pty PTY) *ShellTransport {
	if pty.Term == "" {
		pty.Term = "vt100"
	}
	if pty.Width == 0 {
		pty.Width = 511
	}
	if pty.Height == 0 {
		pty.Height = 24
	}
	return &ShellTransport{client: c, pty: pty}
}

// Open opens a session channel, requests the PTY and starts the shell. It
// returns ErrClosed when the Client is closed, or the context error.
func (s *ShellTransport) Open(ctx context.Context) error {
	select {
	case <-s.client.done:
		return ErrClosed
	default:
	}
	type result struct {
		sess *ssh.Session
		in   io.WriteCloser
		out  io.Reader
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		r.sess, r.err = s.client.conn.NewSession()
		if r.err == nil {
			r.err = s.start(r.sess, &r.in, &r.out)
			if r.err != nil {
				_ = r.sess.Close()
			}
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("ssh %s: open shell: %w", s.client.addr, r.err)
		}
		s.mu.Lock()
		s.sess, s.in, s.out = r.sess, r.in, r.out
		s.mu.Unlock()
		return nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.sess != nil {
				_ = r.sess.Close()
			}
		}()
		return fmt.Errorf("ssh %s: open shell: %w", s.client.addr, ctx.Err())
	}
}

func (s *ShellTransport) start(sess *ssh.Session, in *io.WriteCloser, out *io.Reader) error {
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := sess.RequestPty(s.pty.Term, s.pty.Height, s.pty.Width, modes); err != nil {
		return fmt.Errorf("request pty: %w", err)
	}
	var err error
	if *in, err = sess.StdinPipe(); err != nil {
		return err
	}
	if *out, err = sess.StdoutPipe(); err != nil {
		return err
	}
	return sess.Shell()
}

// Read reads what the device printed; io.EOF when the shell ended.
func (s *ShellTransport) Read(p []byte) (int, error) {
	s.mu.Lock()
	out := s.out
	s.mu.Unlock()
	if out == nil {
		return 0, fmt.Errorf("ssh shell: read before Open: %w", ErrClosed)
	}
	return out.Read(p)
}

// Write sends p to the shell's input.
func (s *ShellTransport) Write(p []byte) (int, error) {
	s.mu.Lock()
	in := s.in
	s.mu.Unlock()
	if in == nil {
		return 0, fmt.Errorf("ssh shell: write before Open: %w", ErrClosed)
	}
	return in.Write(p)
}

// Close closes the shell channel (not the Client). It is safe to call more
// than once and before Open.
func (s *ShellTransport) Close() error {
	s.mu.Lock()
	sess := s.sess
	s.sess = nil
	s.mu.Unlock()
	if sess == nil {
		return nil
	}
	if err := sess.Close(); err != nil && err != io.EOF {
		return err
	}
	return nil
}

// Recorded is a Transport that replays a device's recorded output byte by
// byte and records what was written to it, for unit tests of the channel.
// Read returns io.EOF when the recording is exhausted.
type Recorded struct {
	mu      sync.Mutex
	out     []byte
	pos     int
	written bytes.Buffer
	closed  bool
}

// NewRecorded returns a Recorded that replays output.
func NewRecorded(output []byte) *Recorded { return &Recorded{out: output} }

// LoadRecorded returns a Recorded that replays the contents of file.
func LoadRecorded(file string) (*Recorded, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load recorded session: %w", err)
	}
	return NewRecorded(data), nil
}

// Open does nothing; it returns the context error if ctx is done.
func (r *Recorded) Open(ctx context.Context) error { return ctx.Err() }

// Close ends the replay: later Reads return io.EOF.
func (r *Recorded) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

// Read returns the next recorded byte.
func (r *Recorded) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.pos >= len(r.out) {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.out[r.pos]
	r.pos++
	return 1, nil
}

// Write records p.
func (r *Recorded) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, io.ErrClosedPipe
	}
	return r.written.Write(p)
}

// Written returns everything written so far.
func (r *Recorded) Written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.written.Bytes())
}

// Recorder wraps a live Transport and keeps a copy of everything read from
// and written to it, to make the files that Recorded replays.
type Recorder struct {
	Transport
	mu        sync.Mutex
	read, put bytes.Buffer
}

// NewRecorder returns a Recorder around t.
func NewRecorder(t Transport) *Recorder { return &Recorder{Transport: t} }

// Read reads from the wrapped transport and records the bytes.
func (r *Recorder) Read(p []byte) (int, error) {
	n, err := r.Transport.Read(p)
	r.mu.Lock()
	r.read.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

// Write writes to the wrapped transport and records the bytes.
func (r *Recorder) Write(p []byte) (int, error) {
	n, err := r.Transport.Write(p)
	r.mu.Lock()
	r.put.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

// Recording returns what was read (the device's output) and what was
// written so far.
func (r *Recorder) Recording() (output, input []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.read.Bytes()), bytes.Clone(r.put.Bytes())
}
