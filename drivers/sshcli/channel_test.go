package sshcli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"fieldagent/agent/secret"
	"fieldagent/drivers/sshcli/platform"
)

var update = flag.Bool("update", false, "re-record testdata/<case>-{in,out}.txt from a real sshd running testdata/xt2cli.py")

const testSecret = "S3cret-Pw9"

// goldenCase runs against a recorded session: the device's output is
// testdata/<name>-out.txt and what the channel must send is -in.txt.
type goldenCase struct {
	name  string
	setup func(p *platform.Platform) // adjusts the platform before Open
	run   func(t *testing.T, ctx context.Context, ch *Channel, transcript *bytes.Buffer)
}

var goldenCases = []goldenCase{
	{
		name: "prompt",
		run: func(t *testing.T, ctx context.Context, ch *Channel, _ *bytes.Buffer) {
			if p, l := ch.Prompt(); p != "<XT2>" || l != "user" {
				t.Errorf("Prompt = %q, %q; want <XT2>, user", p, l)
			}
		},
	},
	{
		name: "display-version",
		run: func(t *testing.T, ctx context.Context, ch *Channel, _ *bytes.Buffer) {
			r, err := ch.SendCommand(ctx, "display version")
			if err != nil {
				t.Fatalf("SendCommand: %v", err)
			}
			want := "XT-2 Business Router, Software Version V300R001C10SPC200\nSerial Number: XT2A1B2C3D4\nUptime is 0 weeks, 0 days, 1 hour, 5 minutes\n"
			if r.Output != want {
				t.Errorf("Output = %q, want %q (echo stripped, prompt removed)", r.Output, want)
			}
			if r.Prompt != "<XT2>" || r.Level != "user" || r.Failed {
				t.Errorf("Response = %+v", r)
			}
		},
	},
	{
		name:  "paging",
		setup: func(p *platform.Platform) { p.PagingOff = "" },
		run: func(t *testing.T, ctx context.Context, ch *Channel, _ *bytes.Buffer) {
			r, err := ch.SendCommand(ctx, "display current-configuration")
			if err != nil {
				t.Fatalf("SendCommand: %v", err)
			}
			lines := strings.Split(strings.TrimSuffix(r.Output, "\n"), "\n")
			if len(lines) != 60 {
				t.Errorf("got %d lines, want 60 (3 pages):\n%s", len(lines), r.Output)
			}
			if lines[0] != "#" || lines[1] != "sysname XT2" || lines[len(lines)-1] != "return" {
				t.Errorf("first/last lines = %q %q ... %q", lines[0], lines[1], lines[len(lines)-1])
			}
			for i, l := range lines {
				if strings.Contains(l, "More") || strings.ContainsRune(l, '\r') {
					t.Errorf("line %d = %q still has the pager", i, l)
				}
			}
		},
	},
	{
		name: "error",
		run: func(t *testing.T, ctx context.Context, ch *Channel, _ *bytes.Buffer) {
			r, err := ch.SendCommand(ctx, "display foo")
			if !errors.Is(err, ErrCommandFailed) {
				t.Fatalf("error = %v, want ErrCommandFailed", err)
			}
			const line = "Error: Unrecognized command found at '^' position."
			if !r.Failed || r.ErrorLine != line || !strings.Contains(err.Error(), line) {
				t.Errorf("Failed=%v ErrorLine=%q err=%v", r.Failed, r.ErrorLine, err)
			}
			// The channel is still in sync.
			if r, err := ch.SendCommand(ctx, "display version"); err != nil || !strings.HasPrefix(r.Output, "XT-2 Business Router") {
				t.Errorf("next command = %q, %v", r.Output, err)
			}
		},
	},
	{
		name: "save",
		run: func(t *testing.T, ctx context.Context, ch *Channel, _ *bytes.Buffer) {
			r, err := ch.Save(ctx)
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			if !strings.Contains(r.Output, "Info: Save the configuration successfully.") || r.Prompt != "<XT2>" {
				t.Errorf("Save = %+v", r)
			}
		},
	},
	{
		name: "save-declined",
		run: func(t *testing.T, ctx context.Context, ch *Channel, _ *bytes.Buffer) {
			_, err := ch.SendCommand(ctx, "save")
			if !errors.Is(err, ErrConfirmation) || !strings.Contains(err.Error(), "[Y/N]:") {
				t.Fatalf("SendCommand(save) = %v, want ErrConfirmation quoting the question", err)
			}
			if p, _ := ch.Prompt(); p != "<XT2>" {
				t.Errorf("prompt after declining = %q", p)
			}
		},
	},
	{
		name: "config-commit",
		run: func(t *testing.T, ctx context.Context, ch *Channel, transcript *bytes.Buffer) {
			rs, err := ch.SendConfig(ctx, []string{
				"interface Dialer1",
				"dialer user u1",
				"ppp chap password cipher " + testSecret,
				"ppp pap local-user u1 password cipher " + testSecret,
			})
			if err != nil || len(rs) != 4 {
				t.Fatalf("SendConfig = %d responses, %v", len(rs), err)
			}
			if rs[0].Prompt != "[XT2-Dialer1]" || rs[0].Level != "view" {
				t.Errorf("after interface: %q %q", rs[0].Prompt, rs[0].Level)
			}
			if p, l := ch.Prompt(); p != "<XT2>" || l != "user" {
				t.Errorf("after SendConfig: %q %q, want back in user view", p, l)
			}
			r, err := ch.Commit(ctx)
			if err != nil || !strings.Contains(r.Output, "Commit succeeded") {
				t.Fatalf("Commit = %+v, %v", r, err)
			}
			r, err = ch.SendCommand(ctx, "display current-configuration")
			if err != nil || !strings.Contains(r.Output, "dialer user u1") {
				t.Errorf("running config after commit = %q, %v", r.Output, err)
			}
			ts := transcript.String()
			if strings.Contains(ts, testSecret) {
				t.Errorf("transcript contains the secret:\n%s", ts)
			}
			for _, want := range []string{"ppp chap password cipher ******", "password cipher ******", "[XT2-Dialer1]", "Info: Commit succeeded."} {
				if !strings.Contains(ts, want) {
					t.Errorf("transcript lacks %q:\n%s", want, ts)
				}
			}
		},
	},
	{
		name: "config-error",
		run: func(t *testing.T, ctx context.Context, ch *Channel, _ *bytes.Buffer) {
			rs, err := ch.SendConfig(ctx, []string{"interface Dialer1", "frobnicate " + testSecret, "dialer user u2"})
			if !errors.Is(err, ErrCommandFailed) || len(rs) != 2 {
				t.Fatalf("SendConfig = %d responses, %v; want 2 and ErrCommandFailed", len(rs), err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error contains the secret: %v", err)
			}
			if p, _ := ch.Prompt(); p != "<XT2>" {
				t.Errorf("after a failed SendConfig the prompt is %q, want <XT2>", p)
			}
			r, err := ch.Abort(ctx)
			if err != nil || !strings.Contains(r.Output, "discarded") {
				t.Errorf("Abort = %+v, %v", r, err)
			}
		},
	},
	{
		name: "privilege",
		run: func(t *testing.T, ctx context.Context, ch *Channel, _ *bytes.Buffer) {
			if err := ch.AcquirePriv(ctx, "system"); err != nil {
				t.Fatalf("AcquirePriv(system): %v", err)
			}
			if p, l := ch.Prompt(); p != "[XT2]" || l != "system" {
				t.Errorf("Prompt = %q %q", p, l)
			}
			if r, err := ch.SendCommand(ctx, "interface GigabitEthernet0/0/1"); err != nil || r.Prompt != "[XT2-GigabitEthernet0/0/1]" || r.Level != "view" {
				t.Errorf("interface view: %+v, %v", r, err)
			}
			if err := ch.AcquirePriv(ctx, "view"); err != nil {
				t.Errorf("AcquirePriv(view) when already there: %v", err)
			}
			if err := ch.AcquirePriv(ctx, "system"); err != nil {
				t.Fatalf("AcquirePriv(system) from view: %v", err)
			}
			if err := ch.AcquirePriv(ctx, "user"); err != nil {
				t.Fatalf("AcquirePriv(user): %v", err)
			}
			if err := ch.AcquirePriv(ctx, "view"); !errors.Is(err, ErrPrivilege) {
				t.Errorf("AcquirePriv(view) from user = %v, want ErrPrivilege", err)
			}
			if p, _ := ch.Prompt(); p != "<XT2>" {
				t.Errorf("Prompt = %q", p)
			}
		},
	},
}

func channelConfig(t *testing.T, setup func(*platform.Platform), transcript io.Writer) ChannelConfig {
	t.Helper()
	p, err := platform.Get("xt2")
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(p)
	}
	return ChannelConfig{Platform: p, Transcript: transcript, Secrets: []secret.Secret{secret.New(testSecret)}, CommandTimeout: 10 * time.Second}
}

func TestChannelGolden(t *testing.T) {
	var s *sshd
	if *update {
		s = startXT2SSHD(t)
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxFor(t)
			inFile := filepath.Join("testdata", tc.name+"-in.txt")
			outFile := filepath.Join("testdata", tc.name+"-out.txt")
			var transcript bytes.Buffer
			var tr Transport
			var rec *Recorder
			var replay *Recorded
			if *update {
				cfg := s.config()
				cfg.TrustOnFirstUse = true
				cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
				c, err := Dial(ctx, cfg)
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				rec = NewRecorder(c.Shell(PTY{}))
				tr = rec
			} else {
				var err error
				if replay, err = LoadRecorded(outFile); err != nil {
					t.Fatalf("%v (record it with go test -run TestChannelGolden -update)", err)
				}
				tr = replay
			}
			ch, err := NewChannel(tr, channelConfig(t, tc.setup, &transcript))
			if err != nil {
				t.Fatal(err)
			}
			if err := ch.Open(ctx); err != nil {
				t.Fatalf("Open: %v", err)
			}
			tc.run(t, ctx, ch, &transcript)
			if *update {
				_ = ch.Close()
				out, in := rec.Recording()
				if err := os.WriteFile(outFile, out, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(inFile, in, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(inFile)
			if err != nil {
				t.Fatal(err)
			}
			if got := replay.Written(); !bytes.Equal(got, want) {
				t.Errorf("sent %q\nwant %q (from %s)", got, want, inFile)
			}
			_ = ch.Close()
		})
	}
}

// fakeDevice is a Transport that prints nothing until it receives a
// newline, then a prompt; it models a device whose banner came before we
// connected.
type fakeDevice struct {
	mu     sync.Mutex
	out    chan []byte
	closed chan struct{}
	once   sync.Once
	wrote  bytes.Buffer
}

func newFakeDevice() *fakeDevice {
	return &fakeDevice{out: make(chan []byte, 16), closed: make(chan struct{})}
}

func (f *fakeDevice) Open(context.Context) error { return nil }
func (f *fakeDevice) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeDevice) Read(p []byte) (int, error) {
	select {
	case b := <-f.out:
		return copy(p, b), nil
	case <-f.closed:
		return 0, io.EOF
	}
}

func (f *fakeDevice) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.wrote.Write(p)
	f.mu.Unlock()
	switch s := string(p); {
	case s == "\n":
		f.out <- []byte("\r\n<XT2>")
	case strings.HasPrefix(s, "screen-length"):
		f.out <- []byte(strings.TrimSuffix(s, "\n") + "\r\nInfo: ok.\r\n<XT2>")
	}
	return len(p), nil
}

func TestChannelOpenSendsNewline(t *testing.T) {
	dev := newFakeDevice()
	cfg := channelConfig(t, nil, nil)
	cfg.PromptWait = 50 * time.Millisecond
	ch, err := NewChannel(dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Open(ctxFor(t)); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if p, l := ch.Prompt(); p != "<XT2>" || l != "user" {
		t.Errorf("Prompt = %q %q", p, l)
	}
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if got := dev.wrote.String(); got != "\nscreen-length 0 temporary\n" {
		t.Errorf("sent %q", got)
	}
}

func TestChannelTimeoutThenOutOfSync(t *testing.T) {
	dev := newFakeDevice()
	cfg := channelConfig(t, nil, nil)
	cfg.PromptWait = time.Millisecond
	cfg.CommandTimeout = 50 * time.Millisecond
	ch, err := NewChannel(dev, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Open(ctxFor(t)); err != nil {
		t.Fatalf("Open: %v", err)
	}
	// The fake device never answers "hang".
	if _, err := ch.SendCommand(ctxFor(t), "hang"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendCommand(hang) = %v, want DeadlineExceeded", err)
	}
	if _, err := ch.SendCommand(ctxFor(t), "display version"); !errors.Is(err, ErrOutOfSync) {
		t.Errorf("next SendCommand = %v, want ErrOutOfSync", err)
	}
}

func TestChannelNoPrompt(t *testing.T) {
	cfg := channelConfig(t, nil, nil)
	ch, err := NewChannel(NewRecorded([]byte("login: ")), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	err = ch.Open(ctxFor(t))
	if !errors.Is(err, ErrNoPrompt) || !errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "login:") {
		t.Errorf("Open = %v, want EOF naming the last output", err)
	}
}

func TestNewChannelInvalid(t *testing.T) {
	p, _ := platform.Get("xt2")
	for _, tc := range []struct {
		name string
		tr   Transport
		cfg  ChannelConfig
		want string
	}{
		{"no transport", nil, ChannelConfig{Platform: p}, "invalid ssh config: transport is nil"},
		{"no platform", NewRecorded(nil), ChannelConfig{}, "invalid ssh config: platform is required (see platform.Get)"},
		{"negative timeout", NewRecorded(nil), ChannelConfig{Platform: p, CommandTimeout: -time.Second}, "invalid ssh config: command timeout -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewChannel(tc.tr, tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) || err.Error() != tc.want {
				t.Errorf("NewChannel = %v, want %q", err, tc.want)
			}
		})
	}
}

// startXT2SSHD starts sshd with ForceCommand running testdata/xt2cli.py.
func startXT2SSHD(t *testing.T) *sshd {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if py, err = exec.LookPath("python3"); err != nil {
			t.Skip("python3 not installed: run `make test-deps`")
		}
	}
	src, err := os.ReadFile(filepath.Join("testdata", "xt2cli.py"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "xt2cli.py")
	if err := os.WriteFile(script, src, 0o755); err != nil {
		t.Fatal(err)
	}
	return startSSHDWith(t, fmt.Sprintf("ForceCommand %s %s\n", py, script))
}

func TestSSHDChannel(t *testing.T) {
	s := startXT2SSHD(t)
	cfg := s.config()
	cfg.TrustOnFirstUse = true
	ctx := ctxFor(t)
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	var transcript bytes.Buffer
	ccfg := channelConfig(t, nil, &transcript)
	ccfg.Platform.PagingOff = "" // exercise the pager over a real PTY
	ch, err := NewChannel(c.Shell(PTY{}), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Open(ctx); err != nil {
		t.Fatalf("Open: %v\ntranscript so far: %q", err, transcript.String())
	}
	if p, l := ch.Prompt(); p != "<XT2>" || l != "user" {
		t.Errorf("Prompt = %q %q", p, l)
	}
	r, err := ch.SendCommand(ctx, "display current-configuration")
	if err != nil {
		t.Fatalf("display current-configuration: %v", err)
	}
	if n := strings.Count(r.Output, "\n"); n != 60 || strings.Contains(r.Output, "More") {
		t.Errorf("paged output has %d lines:\n%q", n, r.Output)
	}
	if _, err := ch.SendCommand(ctx, "display foo"); !errors.Is(err, ErrCommandFailed) || !strings.Contains(err.Error(), "Error: Unrecognized command found at '^' position.") {
		t.Errorf("unknown command = %v", err)
	}
	if _, err := ch.SendConfig(ctx, []string{"interface Dialer1", "ppp chap password cipher " + testSecret}); err != nil {
		t.Fatalf("SendConfig: %v", err)
	}
	if _, err := ch.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if r, err := ch.Save(ctx); err != nil || !strings.Contains(r.Output, "successfully") {
		t.Fatalf("Save = %+v, %v", r, err)
	}
	if strings.Contains(transcript.String(), testSecret) || !strings.Contains(transcript.String(), "cipher ******") {
		t.Errorf("transcript not masked:\n%s", transcript.String())
	}
}

// TestSSHDChannelChangedHostKey: the channel rides on a Client from Dial, so
// a changed host key never gets as far as a shell.
func TestSSHDChannelChangedHostKey(t *testing.T) {
	s := startXT2SSHD(t)
	cfg := s.config()
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	line := "[127.0.0.1]:" + strings.TrimPrefix(s.addr, "127.0.0.1:") + " " + string(ssh.MarshalAuthorizedKey(s.otherHost))
	if err := os.WriteFile(cfg.KnownHostsFile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.TrustOnFirstUse = true
	c, err := Dial(ctxFor(t), cfg)
	if err == nil {
		c.Close()
		t.Fatal("Dial with a changed host key succeeded")
	}
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("Dial = %v, want ErrHostKeyChanged", err)
	}
}

func TestChannelUnsupported(t *testing.T) {
	p, err := platform.Get("vrp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join("testdata", "prompt-out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := NewChannel(NewRecorded(out), ChannelConfig{Platform: p})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Open(ctxFor(t)); err != nil {
		t.Fatalf("Open: %v", err)
	}
	for name, op := range map[string]func(context.Context) (Response, error){"Commit": ch.Commit, "Abort": ch.Abort} {
		if _, err := op(ctxFor(t)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s on vrp = %v, want ErrUnsupported", name, err)
		}
	}
}

// FuzzChannelReplay feeds arbitrary device output to a channel: it must
// end (EOF or a prompt) without panicking, and never leak the secret
// into errors.
func FuzzChannelReplay(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*-out.txt"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("<XT2>\r\n  ---- More ----"))
	f.Add([]byte("<XT2>save\r\nAre you sure? [Y/N]:"))
	p, err := platform.Get("xt2")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var transcript bytes.Buffer
		ch, err := NewChannel(NewRecorded(data), ChannelConfig{
			Platform: p, Transcript: &transcript, PromptWait: 20 * time.Millisecond, CommandTimeout: 500 * time.Millisecond,
			Secrets: []secret.Secret{secret.New(testSecret)},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := ch.Open(ctx); err != nil {
			return
		}
		_, err = ch.SendCommand(ctx, "ppp chap password cipher "+testSecret)
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("error leaks the secret: %v", err)
		}
		_, _ = ch.Save(ctx)
	})
}

// TestChannelStalePrompt: a prompt left over (the device answered Open's
// newline late) must not be taken for the end of the next command.
func TestChannelStalePrompt(t *testing.T) {
	out := "Info: banner\r\n<XT2>\r\n<XT2>display version\r\nXT-2 Business Router\r\n<XT2>"
	ch, err := NewChannel(NewRecorded([]byte(out)), channelConfig(t, func(p *platform.Platform) { p.PagingOff = "" }, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Open(ctxFor(t)); err != nil {
		t.Fatalf("Open: %v", err)
	}
	r, err := ch.SendCommand(ctxFor(t), "display version")
	if err != nil || r.Output != "XT-2 Business Router\n" {
		t.Errorf("SendCommand = %q, %v; want the output after the echo", r.Output, err)
	}
}

// TestChannelTypeaheadPrompt: a CLI that starts slower than PromptWait gets
// Open's newline before its first prompt, and answers it with a second
// prompt on the same line; Open takes the last one.
func TestChannelTypeaheadPrompt(t *testing.T) {
	cfg := channelConfig(t, nil, nil)
	cfg.Platform.PagingOff = ""
	ch, err := NewChannel(NewRecorded([]byte("\r\n\r\nInfo: The max number of VTY users is 5.\r\n<XT2><XT2>")), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Open(ctxFor(t)); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if p, l := ch.Prompt(); p != "<XT2>" || l != "user" {
		t.Errorf("Prompt = %q %q, want <XT2> user", p, l)
	}
	// A line that only ends in something prompt-like is not a prompt.
	if p, l := ch.trailingPrompt("Description: <XT2>"); l != nil {
		t.Errorf("trailingPrompt took %q from an output line", p)
	}
	if p, l := ch.trailingPrompt("[XT2][XT2-GigabitEthernet0/0/1]"); l == nil || p != "[XT2-GigabitEthernet0/0/1]" {
		t.Errorf("trailingPrompt = %q %v, want the interface view", p, l)
	}
}
