package sshcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers/sshcli/platform"
)

// DefaultCommandTimeout bounds one command when ChannelConfig.CommandTimeout
// is zero.
const DefaultCommandTimeout = 30 * time.Second

// DefaultPromptWait is how long Open waits for a prompt before it sends a
// newline, when ChannelConfig.PromptWait is zero.
const DefaultPromptWait = 2 * time.Second

// ChannelConfig configures a Channel.
type ChannelConfig struct {
	// Platform is the CLI dialect; required (see platform.Get).
	Platform *platform.Platform
	// CommandTimeout bounds each command (and each step of Open); zero
	// means DefaultCommandTimeout. The context deadline caps it.
	CommandTimeout time.Duration
	// PromptWait is how long Open waits for a prompt before sending a
	// newline; zero means DefaultPromptWait.
	PromptWait time.Duration
	// Transcript, if not nil, receives the session as the device printed
	// it (with echoed input), line by line, with the platform's secret
	// patterns and Secrets masked as "******".
	Transcript io.Writer
	// Secrets are masked wherever they appear in the transcript and in
	// error messages, in addition to the platform's patterns.
	Secrets []secret.Secret
	// Logger receives debug records; nil discards. Commands are logged
	// masked.
	Logger *slog.Logger
}

// Response is the result of one command.
type Response struct {
	// Command is the command as sent.
	Command string
	// Output is what the command printed, without the echo of the command,
	// pager prompts and the final prompt; lines end in "\n".
	Output string
	// Prompt is the prompt after the command, e.g. "[XT2-Dialer1]".
	Prompt string
	// Level is the privilege level of Prompt.
	Level string
	// Elapsed is the time from sending the command to its prompt.
	Elapsed time.Duration
	// Failed reports that a line of Output matched an error pattern.
	Failed bool
	// ErrorLine is that line, e.g. "Error: Unrecognized command found at
	// '^' position."; empty when Failed is false.
	ErrorLine string
}

// Channel is an interactive CLI session on a Transport: it finds prompts,
// knows the privilege level, answers the pager and detects errors. Its
// methods may be called from several goroutines; they run one at a time.
type Channel struct {
	t    Transport
	p    *platform.Platform
	cfg  ChannelConfig
	log  *slog.Logger
	ansi *regexp.Regexp

	mu      sync.Mutex
	buf     []byte // output read and not yet consumed
	pending bool   // a read request is outstanding
	reqs    chan struct{}
	results chan readResult
	closed  bool
	broken  error
	prompt  string
	level   *platform.Level
	tpart   []byte // transcript: bytes of an unfinished line

	closeOnce sync.Once
}

type readResult struct {
	b   []byte
	err error
}

// NewChannel returns a Channel on t; nothing is sent until Open. It returns
// ErrInvalidConfig when cfg has no Platform or a negative timeout.
func NewChannel(t Transport, cfg ChannelConfig) (*Channel, error) {
	switch {
	case t == nil:
		return nil, fmt.Errorf("%w: transport is nil", ErrInvalidConfig)
	case cfg.Platform == nil:
		return nil, fmt.Errorf("%w: platform is required (see platform.Get)", ErrInvalidConfig)
	case cfg.CommandTimeout < 0:
		return nil, fmt.Errorf("%w: command timeout %s is negative", ErrInvalidConfig, cfg.CommandTimeout)
	case cfg.PromptWait < 0:
		return nil, fmt.Errorf("%w: prompt wait %s is negative", ErrInvalidConfig, cfg.PromptWait)
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.PromptWait == 0 {
		cfg.PromptWait = DefaultPromptWait
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Channel{
		t: t, p: cfg.Platform, cfg: cfg, log: log,
		ansi:    regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`),
		reqs:    make(chan struct{}),
		results: make(chan readResult, 1),
	}, nil
}

// Open opens the transport, finds the prompt (sending a newline when none
// comes within PromptWait), and turns paging off when the platform can.
// Errors wrap ErrNoPrompt, a context error or the transport's error.
func (c *Channel) Open(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if err := c.t.Open(ctx); err != nil {
		return err
	}
	go c.reader()

	wctx, cancel := context.WithTimeout(ctx, c.cfg.PromptWait)
	_, err := c.readUntil(wctx, "", false)
	cancel()
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		c.log.Debug("cli no prompt yet, sending a newline")
		if err = c.write("\n"); err == nil {
			cctx, cancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
			_, err = c.readUntil(cctx, "", false)
			cancel()
		}
	}
	if err != nil {
		return c.fail(fmt.Errorf("cli open: %w: %w", ErrNoPrompt, err))
	}
	c.flushTranscript()
	c.log.Debug("cli prompt found", "prompt", c.prompt, "level", c.level.Name)
	if c.p.PagingOff != "" {
		r, err := c.send(ctx, c.p.PagingOff, false)
		if err != nil && !r.Failed {
			return err
		}
		if r.Failed {
			c.log.Debug("cli paging-off refused; answering the pager instead", "error_line", r.ErrorLine)
		}
	}
	return nil
}

// reader performs one Transport.Read per request, so that a read blocked
// past a deadline is not lost: its result serves the next request.
func (c *Channel) reader() {
	buf := make([]byte, 4096)
	for range c.reqs {
		n, err := c.t.Read(buf)
		c.results <- readResult{bytes.Clone(buf[:n]), err}
	}
}

func (c *Channel) read(ctx context.Context) ([]byte, error) {
	if !c.pending {
		select {
		case c.reqs <- struct{}{}:
			c.pending = true
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case r := <-c.results:
		c.pending = false
		return r.b, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Channel) write(s string) error {
	if _, err := c.t.Write([]byte(s)); err != nil {
		return fmt.Errorf("cli write: %w", err)
	}
	return nil
}

// fail marks the channel out of sync after err.
func (c *Channel) fail(err error) error {
	if c.broken == nil {
		c.broken = err
	}
	return err
}

// lastLine returns the text the terminal shows on the last line of b.
func (c *Channel) lastLine(b []byte) string {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	if i := bytes.LastIndexByte(b, '\r'); i >= 0 {
		b = b[i+1:]
	}
	return strings.TrimRight(c.ansi.ReplaceAllString(string(b), ""), " ")
}

// readUntil reads until the output ends in a prompt (answering the pager)
// that follows echo, the command as the device echoes it,
// or, when confirm is set, in the platform's confirmation question, which
// it reports with errConfirm. It returns the output consumed, prompt
// included, and sets c.prompt and c.level.
func (c *Channel) readUntil(ctx context.Context, echo string, confirm bool) (out string, err error) {
	pagerFrom := 0
	echo = strings.TrimSpace(echo)
	echoSeen, from := echo == "", 0
	for {
		if !echoSeen {
			// A prompt counts only after the echo of the command: an
			// earlier one is left over (e.g. from Open's newline).
			echoSeen = bytes.Contains(c.buf[max(0, from-len(echo)):], []byte(echo))
			from = len(c.buf)
		}
		if len(c.buf) > 0 && echoSeen {
			// Look only at the end of the output, so that a long line
			// read piece by piece does not cost quadratic time.
			win := c.buf[max(0, len(c.buf)-tailWindow):]
			winStart := len(c.buf) - len(win)
			nl := bytes.LastIndexByte(win, '\n')
			if nl >= 0 || winStart == 0 {
				if last, l := c.trailingPrompt(c.lastLine(win)); l != nil {
					out, c.buf = string(c.buf), nil
					c.prompt, c.level = last, l
					return out, nil
				}
			}
			lineStart := max(winStart+nl+1, pagerFrom)
			tail := c.buf[lineStart:]
			if re := c.p.Pager.Regexp(); re != nil && re.Match(tail) {
				pagerFrom = len(c.buf)
				if err := c.write(c.p.Pager.Answer); err != nil {
					return string(c.buf), err
				}
			} else if re := c.p.Confirm.Regexp(); confirm && re != nil && re.Match(tail) {
				out, c.buf = string(c.buf), nil
				return out, errConfirm
			}
		}
		b, err := c.read(ctx)
		c.buf = append(c.buf, b...)
		c.transcript(b)
		if err != nil {
			if len(c.buf) > 0 && ctx.Err() == nil {
				err = fmt.Errorf("%w (last output %q)", err, c.mask(c.lastLine(c.buf)))
			}
			return "", err
		}
	}
}

// trailingPrompt returns the prompt that last is, or ends in when a
// newline typed ahead (Open's, sent before a slow CLI had printed its
// first prompt) made the CLI print its prompt twice on one line:
// "<XT2><XT2>". Only whole prompts are stripped from the front, so an
// output line that merely ends in something prompt-like is not taken.
func (c *Channel) trailingPrompt(last string) (string, *platform.Level) {
	for {
		if l := c.p.LevelOf(last); l != nil {
			return last, l
		}
		cut := -1
		for i := 1; i < len(last) && cut < 0; i++ {
			if (last[i] == '<' || last[i] == '[') && c.p.LevelOf(last[:i]) != nil {
				cut = i
			}
		}
		if cut < 0 {
			return last, nil
		}
		last = last[cut:]
	}
}

// tailWindow is how much of the end of the output readUntil examines for a
// prompt, pager or question; longer lines are not prompts.
const tailWindow = 512

// errConfirm is readUntil's signal that a confirmation question is showing.
var errConfirm = errors.New("confirmation question")

// clean turns raw terminal output into lines: it drops escape sequences
// and pager prompts, applies carriage returns, removes the echo of cmd
// (first line) and the prompt (last line).
func (c *Channel) clean(raw, cmd string) string {
	raw = c.ansi.ReplaceAllString(raw, "")
	if re := c.p.Pager.Regexp(); re != nil {
		raw = re.ReplaceAllString(raw, "")
	}
	lines := strings.Split(raw, "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, "\r")
		if j := strings.LastIndexByte(l, '\r'); j >= 0 {
			l = l[j+1:]
		}
		lines[i] = strings.TrimRight(l, " ")
	}
	lines = lines[:len(lines)-1] // the prompt
	// The echo is the first line that ends in the command; lines before it
	// are left over from an earlier prompt.
	echo := strings.TrimSpace(cmd)
	if i := slices.IndexFunc(lines, func(l string) bool { return echo != "" && strings.HasSuffix(strings.TrimSpace(l), echo) }); i >= 0 {
		lines = lines[i+1:]
	} else if cmd != "" {
		c.log.Debug("cli echo not found", "command", c.mask(commandName(cmd)))
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// send writes cmd and reads its response. With confirm, a [Y/N] question
// is answered with the platform's answer; without, it is declined and
// ErrConfirmation returned.
func (c *Channel) send(ctx context.Context, cmd string, confirm bool) (Response, error) {
	r := Response{Command: cmd}
	if c.closed {
		return r, ErrClosed
	}
	if c.broken != nil {
		return r, fmt.Errorf("%w: %w", ErrOutOfSync, c.broken)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
	defer cancel()
	start := time.Now()
	if err := c.write(cmd + "\n"); err != nil {
		return r, c.fail(err)
	}
	raw, err := c.readUntil(ctx, cmd, c.p.Confirm.Regexp() != nil)
	if errors.Is(err, errConfirm) {
		question := c.lastLine([]byte(raw))
		answer := "n"
		if confirm {
			answer = c.p.Confirm.Answer
		}
		if err = c.write(answer + "\n"); err == nil {
			var rest string
			rest, err = c.readUntil(ctx, "", false)
			raw += rest
		}
		if err == nil && !confirm {
			err = fmt.Errorf("cli command %q: %w %q: declined; use SendConfirmed", c.mask(cmd), ErrConfirmation, question)
			r.Output = c.clean(raw, cmd)
			r.Prompt, r.Level = c.prompt, c.level.Name
			c.flushTranscript()
			return r, err
		}
	}
	c.flushTranscript()
	r.Elapsed = time.Since(start)
	if err != nil {
		return r, c.fail(fmt.Errorf("cli command %q: %w", c.mask(cmd), err))
	}
	r.Output = c.clean(raw, cmd)
	r.Prompt, r.Level = c.prompt, c.level.Name
	if line, ok := c.p.ErrorLine(r.Output); ok {
		r.Failed, r.ErrorLine = true, line
		err := fmt.Errorf("cli command %q at %s: %w: device said %q", c.mask(cmd), r.Prompt, ErrCommandFailed, c.mask(line))
		c.log.Debug("cli command failed", "command", c.mask(cmd), "error_line", c.mask(line))
		return r, err
	}
	c.log.Debug("cli command done", "command", c.mask(commandName(cmd)), "prompt", r.Prompt, "bytes", len(r.Output))
	return r, nil
}

// SendCommand sends cmd at the current privilege level and returns its
// output once the prompt is back. Output with an error line returns the
// Response (Failed set) and an error wrapping ErrCommandFailed that quotes
// the line. A [Y/N] question is declined (ErrConfirmation). A timeout
// (CommandTimeout or ctx) leaves the channel out of sync: later calls
// return ErrOutOfSync.
func (c *Channel) SendCommand(ctx context.Context, cmd string) (Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.send(ctx, cmd, false)
}

// SendConfirmed is SendCommand for a command that asks a [Y/N] question,
// which it answers with the platform's answer (yes).
func (c *Channel) SendConfirmed(ctx context.Context, cmd string) (Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.send(ctx, cmd, true)
}

// SendCommands sends cmds in order and stops at the first error.
func (c *Channel) SendCommands(ctx context.Context, cmds []string) ([]Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rs []Response
	for _, cmd := range cmds {
		r, err := c.send(ctx, cmd, false)
		rs = append(rs, r)
		if err != nil {
			return rs, err
		}
	}
	return rs, nil
}

// SendConfig enters the platform's configuration level, sends lines in
// order, stops at the first error, and returns to the default level (also
// after an error). On a platform with two-stage commit the lines are only
// in the candidate configuration until Commit.
func (c *Channel) SendConfig(ctx context.Context, lines []string) ([]Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	level := c.p.ConfigLevel
	if level == "" {
		level = c.p.DefaultLevel
	}
	if err := c.acquire(ctx, level); err != nil {
		return nil, err
	}
	var rs []Response
	var sendErr error
	for _, line := range lines {
		r, err := c.send(ctx, line, false)
		rs = append(rs, r)
		if err != nil {
			sendErr = err
			break
		}
	}
	if c.broken != nil {
		return rs, sendErr
	}
	if err := c.acquire(ctx, c.p.DefaultLevel); err != nil && sendErr == nil {
		return rs, err
	}
	return rs, sendErr
}

// Commit applies the candidate configuration (from the configuration
// level) and returns to the default level. It returns ErrUnsupported when
// the platform has no commit, and ErrCommandFailed when the device prints
// an error or not the platform's success line.
func (c *Channel) Commit(ctx context.Context) (Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p.Commit.Command == "" {
		return Response{}, fmt.Errorf("cli commit on platform %s: %w", c.p.Name, ErrUnsupported)
	}
	r, err := c.atConfig(ctx, c.p.Commit.Command)
	if err == nil {
		if re := c.p.Commit.Regexp(); re != nil && !re.MatchString(r.Output) {
			r.Failed = true
			err = fmt.Errorf("cli commit: %w: no line matching %q in the output %q", ErrCommandFailed, c.p.Commit.Success, c.mask(r.Output))
		}
	}
	return r, err
}

// Abort discards the candidate configuration and returns to the default
// level; ErrUnsupported when the platform has no abort command.
func (c *Channel) Abort(ctx context.Context) (Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p.AbortCommand == "" {
		return Response{}, fmt.Errorf("cli abort on platform %s: %w", c.p.Name, ErrUnsupported)
	}
	return c.atConfig(ctx, c.p.AbortCommand)
}

func (c *Channel) atConfig(ctx context.Context, cmd string) (Response, error) {
	level := c.p.ConfigLevel
	if level == "" {
		level = c.p.DefaultLevel
	}
	if err := c.acquire(ctx, level); err != nil {
		return Response{}, err
	}
	r, err := c.send(ctx, cmd, false)
	if c.broken != nil {
		return r, err
	}
	if aerr := c.acquire(ctx, c.p.DefaultLevel); aerr != nil && err == nil {
		err = aerr
	}
	return r, err
}

// Save writes the running configuration to the startup configuration from
// the default level, answering the [Y/N] question; ErrUnsupported when the
// platform has no save command.
func (c *Channel) Save(ctx context.Context) (Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p.SaveCommand == "" {
		return Response{}, fmt.Errorf("cli save on platform %s: %w", c.p.Name, ErrUnsupported)
	}
	if err := c.acquire(ctx, c.p.DefaultLevel); err != nil {
		return Response{}, err
	}
	return c.send(ctx, c.p.SaveCommand, true)
}

// AcquirePriv moves to the privilege level called name, leaving and
// entering levels with the platform's commands. Levels without an escalate
// command (interface views) cannot be acquired: enter them with a command
// such as "interface NAME". Errors wrap ErrPrivilege or those of
// SendCommand.
func (c *Channel) AcquirePriv(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acquire(ctx, name)
}

func (c *Channel) acquire(ctx context.Context, name string) error {
	if c.closed {
		return ErrClosed
	}
	if c.level == nil {
		return fmt.Errorf("cli: %w %q: the channel is not open", ErrPrivilege, name)
	}
	target := c.p.Level(name)
	if target == nil {
		return fmt.Errorf("cli: %w %q: platform %s has no such level", ErrPrivilege, name, c.p.Name)
	}
	// Check the way up before moving, so that an unreachable level does
	// not leave the channel half-way.
	for l := target; l != nil && l.Name != c.level.Name && !c.isAncestor(l, c.level); l = c.p.Level(l.Previous) {
		if l.Escalate == "" && l.Previous != "" {
			return fmt.Errorf("cli: %w %q: level %s has no escalate command (enter it with a command of its own)", ErrPrivilege, name, l.Name)
		}
	}
	for range 2 * len(c.p.Levels) {
		if c.level.Name == target.Name {
			return nil
		}
		var cmd string
		if c.isAncestor(c.level, target) {
			next := target
			for next.Previous != c.level.Name {
				next = c.p.Level(next.Previous)
			}
			if next.Escalate == "" {
				return fmt.Errorf("cli: %w %q: level %s has no escalate command (enter it with a command of its own)", ErrPrivilege, name, next.Name)
			}
			cmd = next.Escalate
		} else if c.p.ReturnCommand != "" && target.Previous == "" {
			cmd = c.p.ReturnCommand
		} else if c.level.Deescalate != "" {
			cmd = c.level.Deescalate
		} else {
			return fmt.Errorf("cli: %w %q from %s: no deescalate command", ErrPrivilege, name, c.level.Name)
		}
		if _, err := c.send(ctx, cmd, false); err != nil {
			return fmt.Errorf("cli: %w %q: %w", ErrPrivilege, name, err)
		}
	}
	return fmt.Errorf("cli: %w %q: still at %s (%s)", ErrPrivilege, name, c.level.Name, c.prompt)
}

// isAncestor reports whether a is below b on b's chain of Previous levels.
func (c *Channel) isAncestor(a, b *platform.Level) bool {
	for l := c.p.Level(b.Previous); l != nil; l = c.p.Level(l.Previous) {
		if l.Name == a.Name {
			return true
		}
	}
	return false
}

// Prompt returns the current prompt and privilege level name; empty before
// Open.
func (c *Channel) Prompt() (prompt, level string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.level == nil {
		return "", ""
	}
	return c.prompt, c.level.Name
}

// Close closes the transport, which ends any command in flight. It is safe
// to call more than once.
func (c *Channel) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.t.Close()
		c.mu.Lock()
		c.closed = true
		close(c.reqs)
		c.flushTranscript()
		c.mu.Unlock()
	})
	return err
}

// mask hides secrets in s.
func (c *Channel) mask(s string) string {
	s = c.p.Mask(s)
	for _, sec := range c.cfg.Secrets {
		if v := sec.Reveal(); v != "" {
			s = strings.ReplaceAll(s, v, "******")
		}
	}
	return s
}

// transcript buffers b and writes its complete lines, masked.
func (c *Channel) transcript(b []byte) {
	if c.cfg.Transcript == nil {
		return
	}
	c.tpart = append(c.tpart, b...)
	i := bytes.LastIndexByte(c.tpart, '\n')
	if i < 0 {
		return
	}
	c.writeTranscript(c.tpart[:i+1])
	c.tpart = append(c.tpart[:0], c.tpart[i+1:]...)
}

// flushTranscript writes the unfinished line (a prompt), masked.
func (c *Channel) flushTranscript() {
	if c.cfg.Transcript == nil || len(c.tpart) == 0 {
		return
	}
	c.writeTranscript(c.tpart)
	c.tpart = c.tpart[:0]
}

func (c *Channel) writeTranscript(b []byte) {
	// Apply carriage returns as a terminal would (the pager is erased
	// with "\r" + spaces + "\r").
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, "\r")
		if j := strings.LastIndexByte(l, '\r'); j >= 0 {
			l = l[j+1:]
		}
		lines[i] = l
	}
	s := strings.Join(lines, "\n")
	if _, err := io.WriteString(c.cfg.Transcript, c.mask(s)); err != nil {
		c.log.Debug("cli transcript write failed", "err", err)
	}
}
