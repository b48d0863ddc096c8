// Package xt2 drives the XT-2 business router (docs/xt2-cli.md) over its SSH
// CLI (drivers/sshcli, platform "xt2") and SNMP (drivers/snmp): identify,
// line test, routed internet over PPPoE, BBMS binding, status and save.
//
// Every change is a transaction on the router's two-stage commit: the
// running configuration is snapshotted, the lines go into the candidate,
// `commit` applies them, and the result is read back over the CLI and SNMP.
// A failure before the commit aborts the candidate (a lost session discards
// it on the router); a failure after it sends the `undo` lines computed from
// the snapshot and commits them. Either way the error is a
// *drivers.RestoreError that says whether the router is back as it was.
//
// Each change runs on its own shell session whose transcript masks the
// device and PPPoE passwords; a lost SSH connection is redialled (with the
// same host-key checks) to verify and restore.
package xt2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/drivers"
	"fieldagent/drivers/snmp"
	"fieldagent/drivers/sshcli"
	"fieldagent/drivers/sshcli/platform"
)

// Errors of this package; they sit beside the drivers sentinels that most
// errors wrap.
var (
	// ErrBBMS means BBMS did not confirm the router's binding; the message
	// quotes the router's last error and says what to check.
	ErrBBMS = errors.New("bbms binding failed")
	// ErrInvalidConfig means a Config or an InternetConfig cannot be used;
	// the message names the field.
	ErrInvalidConfig = errors.New("invalid xt2 config")
)

// SysObjectIDPrefix is the XT-2's sysObjectID (the testlab enterprise 99999).
const SysObjectIDPrefix = ".1.3.6.1.4.1.99999.1.2"

// Defaults applied to zero fields of Config.
const (
	DefaultVerifyTimeout  = 30 * time.Second
	DefaultPollInterval   = 500 * time.Millisecond
	DefaultRestoreTimeout = 60 * time.Second
)

// OIDs the driver reads.
const (
	oidSysDescr     = ".1.3.6.1.2.1.1.1.0"
	oidSysObjectID  = ".1.3.6.1.2.1.1.2.0"
	oidSysUpTime    = ".1.3.6.1.2.1.1.3.0"
	oidSysContact   = ".1.3.6.1.2.1.1.4.0"
	oidSysName      = ".1.3.6.1.2.1.1.5.0"
	oidSysLocation  = ".1.3.6.1.2.1.1.6.0"
	oidIfEntry      = ".1.3.6.1.2.1.2.2.1"
	oidIfXEntry     = ".1.3.6.1.2.1.31.1.1.1"
	oidIfOperStatus = ".1.3.6.1.2.1.2.2.1.8"
	oidIfHighSpeed  = ".1.3.6.1.2.1.31.1.1.1.15"
	oidPPPState     = ".1.3.6.1.4.1.99999.2.1.0"
	oidPPPLastError = ".1.3.6.1.4.1.99999.2.2.0"
	oidPPPAddress   = ".1.3.6.1.4.1.99999.2.3.0"
	oidBBMSBound    = ".1.3.6.1.4.1.99999.2.4.0"
	oidBBMSCustomer = ".1.3.6.1.4.1.99999.2.5.0"
)

// Config says how to reach one XT-2.
type Config struct {
	// SSH is the CLI login; its host key is checked against known_hosts
	// (a changed key is always refused).
	SSH sshcli.Config
	// SNMP is the agent (v2c or v3 authPriv); required.
	SNMP snmp.Target
	// Logger receives debug and info records; nil discards. Secrets are
	// never logged.
	Logger *slog.Logger
	// CommandTimeout bounds one CLI command; zero means
	// sshcli.DefaultCommandTimeout.
	CommandTimeout time.Duration
	// VerifyTimeout bounds waiting for PPP and BBMS after a commit; zero
	// means DefaultVerifyTimeout.
	VerifyTimeout time.Duration
	// PollInterval is the pause between state reads while verifying; zero
	// means DefaultPollInterval.
	PollInterval time.Duration
	// RestoreTimeout bounds a rollback, which runs even when the caller's
	// context has ended; zero means DefaultRestoreTimeout.
	RestoreTimeout time.Duration
	// Transcript, if not nil, receives every CLI session with passwords
	// masked as "******".
	Transcript io.Writer
}

// Driver is an open XT-2: an SSH connection with an interactive CLI
// channel, and an SNMP client. Its methods may be called from several
// goroutines; they run one at a time.
type Driver struct {
	cfg Config
	log *slog.Logger
	p   *platform.Platform

	mu     sync.Mutex
	client *sshcli.Client
	ch     *sshcli.Channel // the read channel; nil when it must be reopened
	snmp   *snmp.Client
}

// Open dials SSH (checking the host key), opens the CLI channel with the
// xt2 platform and the SNMP client. Errors wrap ErrInvalidConfig or those
// of sshcli (ErrHostKeyChanged, ErrUnknownHost, ErrAuth...) and snmp.
func Open(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.CommandTimeout < 0 || cfg.VerifyTimeout < 0 || cfg.PollInterval < 0 || cfg.RestoreTimeout < 0 {
		return nil, fmt.Errorf("%w: timeouts must not be negative", ErrInvalidConfig)
	}
	if cfg.VerifyTimeout == 0 {
		cfg.VerifyTimeout = DefaultVerifyTimeout
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RestoreTimeout == 0 {
		cfg.RestoreTimeout = DefaultRestoreTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := platform.Get("xt2")
	if err != nil {
		return nil, fmt.Errorf("xt2: load cli platform: %w", err)
	}
	d := &Driver{cfg: cfg, log: log, p: p}
	sc, err := snmp.Dial(ctx, cfg.SNMP, log)
	if err != nil {
		return nil, fmt.Errorf("xt2 %s: snmp: %w", cfg.SSH.Addr, err)
	}
	d.snmp = sc
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.mainChannel(ctx); err != nil {
		_ = sc.Close()
		return nil, err
	}
	log.Info("xt2: connected", "addr", cfg.SSH.Addr)
	return d, nil
}

// Close closes the CLI channel, the SSH connection and the SNMP client. It
// is safe to call more than once.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	if d.ch != nil {
		errs = append(errs, d.ch.Close())
		d.ch = nil
	}
	if d.client != nil {
		errs = append(errs, d.client.Close())
		d.client = nil
	}
	if d.snmp != nil {
		errs = append(errs, d.snmp.Close())
		d.snmp = nil
	}
	return errors.Join(errs...)
}

// dial (re)connects SSH. Callers hold d.mu.
func (d *Driver) dial(ctx context.Context) error {
	if d.ch != nil { // it runs on the old connection
		_ = d.ch.Close()
		d.ch = nil
	}
	if d.client != nil {
		_ = d.client.Close()
		d.client = nil
	}
	c, err := sshcli.Dial(ctx, d.cfg.SSH)
	if err != nil {
		return fmt.Errorf("xt2 %s: ssh: %w", d.cfg.SSH.Addr, err)
	}
	d.client = c
	return nil
}

// openChannel opens a new shell session with secrets masked, redialling
// the SSH connection once when it is gone. Callers hold d.mu.
func (d *Driver) openChannel(ctx context.Context, secrets ...secret.Secret) (*sshcli.Channel, error) {
	if d.client == nil {
		if err := d.dial(ctx); err != nil {
			return nil, err
		}
	}
	secs := append([]secret.Secret{d.cfg.SSH.Password}, secrets...)
	open := func() (*sshcli.Channel, error) {
		ch, err := sshcli.NewChannel(d.client.Shell(sshcli.PTY{}), sshcli.ChannelConfig{
			Platform:       d.p,
			CommandTimeout: d.cfg.CommandTimeout,
			Transcript:     d.cfg.Transcript,
			Secrets:        secs,
			Logger:         d.log,
		})
		if err != nil {
			return nil, err
		}
		if err := ch.Open(ctx); err != nil {
			_ = ch.Close()
			return nil, err
		}
		return ch, nil
	}
	ch, err := open()
	if err != nil && ctx.Err() == nil {
		d.log.Info("xt2: shell failed, redialling", "addr", d.cfg.SSH.Addr, "err", err)
		if derr := d.dial(ctx); derr != nil {
			return nil, derr
		}
		ch, err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("xt2 %s: open cli session: %w", d.cfg.SSH.Addr, err)
	}
	return ch, nil
}

// mainChannel returns the read channel, reopening it if it was lost.
// Callers hold d.mu.
func (d *Driver) mainChannel(ctx context.Context) (*sshcli.Channel, error) {
	if d.ch != nil {
		return d.ch, nil
	}
	ch, err := d.openChannel(ctx)
	if err != nil {
		return nil, err
	}
	d.ch = ch
	return ch, nil
}

// lost reports whether err means the session can no longer be used.
func lost(err error) bool {
	return err != nil && !errors.Is(err, sshcli.ErrCommandFailed) && !errors.Is(err, sshcli.ErrConfirmation)
}

// command runs one display command on the read channel. A session that
// broke is dropped so the next call opens a new one. Callers hold d.mu.
func (d *Driver) command(ctx context.Context, cmd string) (string, error) {
	ch, err := d.mainChannel(ctx)
	if err != nil {
		return "", err
	}
	r, err := ch.SendCommand(ctx, cmd)
	if lost(err) {
		_ = ch.Close()
		d.ch = nil
	}
	if err != nil {
		return r.Output, fmt.Errorf("xt2 %s: %s: %w", d.cfg.SSH.Addr, cmd, err)
	}
	return r.Output, nil
}

// get reads OIDs over SNMP. Callers hold d.mu.
func (d *Driver) get(ctx context.Context, oids ...string) ([]snmp.Value, error) {
	if d.snmp == nil {
		return nil, fmt.Errorf("xt2 %s: snmp: %w", d.cfg.SNMP.Addr, snmp.ErrClosed)
	}
	v, err := d.snmp.Get(ctx, oids...)
	if err != nil {
		return nil, fmt.Errorf("xt2 %s: snmp get: %w", d.cfg.SNMP.Addr, err)
	}
	return v, nil
}

// Match is the registry match of the XT-2: its sysObjectID subtree and
// the first line of `display version`.
func Match() drivers.Match {
	return drivers.Match{
		SysObjectIDPrefix: SysObjectIDPrefix,
		DisplayVersion:    regexp.MustCompile(`(?m)^XT-2 Business Router, Software Version \S+`),
	}
}

// Entry is the registry entry of the XT-2 driver. configFor turns what
// the device reported (seen.Target is its host) into a Config — the
// credentials and known_hosts file live with the caller. The constructor
// returns a *Driver.
func Entry(configFor func(ctx context.Context, seen drivers.Seen) (Config, error)) drivers.Entry {
	return drivers.Entry{
		Name:  "xt2",
		Kind:  drivers.KindXT2,
		Match: Match(),
		New: func(ctx context.Context, seen drivers.Seen) (drivers.Identifier, error) {
			cfg, err := configFor(ctx, seen)
			if err != nil {
				return nil, err
			}
			return Open(ctx, cfg)
		},
	}
}

// Seen reads sysObjectID over SNMP and `display version` over the CLI, for
// a drivers.Registry lookup. A failing source leaves its field empty;
// the error is returned only when both fail.
func (d *Driver) Seen(ctx context.Context) (drivers.Seen, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := drivers.Seen{Target: d.cfg.SSH.Addr}
	vs, serr := d.get(ctx, oidSysObjectID)
	if serr == nil {
		seen.SysObjectID = vs[0].String()
	}
	out, cerr := d.command(ctx, "display version")
	if cerr == nil {
		seen.DisplayVersion = strings.TrimSpace(out)
	}
	if serr != nil && cerr != nil {
		return seen, errors.Join(serr, cerr)
	}
	return seen, nil
}

// Identify reads sysDescr and sysObjectID over SNMP and `display version`
// over the CLI. Both must answer; the error wraps drivers.ErrMismatch when
// the device is not an XT-2, naming what it reported.
func (d *Driver) Identify(ctx context.Context) (drivers.Identity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	vs, err := d.get(ctx, oidSysDescr, oidSysObjectID)
	if err != nil {
		return drivers.Identity{}, fmt.Errorf("identify: %w: check the SNMP community or v3 user and that the agent is enabled", err)
	}
	out, err := d.command(ctx, "display version")
	if err != nil {
		return drivers.Identity{}, fmt.Errorf("identify: %w", err)
	}
	v := parseVersion(out)
	id := drivers.Identity{
		Kind:     drivers.KindXT2,
		Vendor:   "fieldagent testlab",
		Model:    v.Model,
		Serial:   v.Serial,
		Firmware: v.Software,
		Hardware: v.Board,
	}
	seen := drivers.Seen{Target: d.cfg.SSH.Addr, SysObjectID: vs[1].String(), DisplayVersion: out}
	var reg drivers.Registry
	reg.Register(drivers.Entry{Name: "xt2", Kind: drivers.KindXT2, Match: Match()})
	if _, err := reg.Lookup(seen); err != nil || v.Serial == "" {
		return id, fmt.Errorf("%w: sysDescr %q, %s: this is not an XT-2, or its CLI output is not understood", drivers.ErrMismatch, vs[0].String(), seen)
	}
	if sw := softwareOf(vs[0].String()); sw != "" && sw != v.Software {
		return id, fmt.Errorf("%w: sysDescr says software %s, display version says %s: check that SNMP and SSH reach the same router", drivers.ErrMismatch, sw, v.Software)
	}
	return id, nil
}

// softwareOf returns the version word of sysDescr
// ("XT-2 Business Router V300R001C10SPC200").
func softwareOf(sysDescr string) string {
	f := strings.Fields(sysDescr)
	if len(f) == 0 || !strings.HasPrefix(f[len(f)-1], "V") {
		return ""
	}
	return f[len(f)-1]
}
