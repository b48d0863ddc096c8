package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fieldagent/agent/config"
)

// IOStreams are the command's streams. Results go to Out, logs and progress
// to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrIsTerminal enables progress output on ErrOut.
	ErrIsTerminal bool
}

// BuildInfo is stamped into the binary at build time.
type BuildInfo struct {
	Version, Commit, Date string
}

// Factory holds the dependencies that commands share and tests swap.
type Factory struct {
	IO    *IOStreams
	Env   []string
	Now   func() time.Time
	Build BuildInfo

	// set by the root command's PersistentPreRunE
	cfg          *config.Config
	logger       *slog.Logger
	global       globalOptions
	logLevelFlag bool
}

// globalOptions are the root command's persistent flags.
type globalOptions struct {
	ConfigPath string
	LogLevel   string
	LogFormat  string
	Output     string
	Server     string
}

// Config returns the loaded configuration; valid after the root command's
// pre-run.
func (f *Factory) Config() *config.Config {
	if f.cfg == nil {
		c := config.Default()
		f.cfg = &c
	}
	return f.cfg
}

// Logger returns the process logger (stderr, level and format from config).
func (f *Factory) Logger() *slog.Logger {
	if f.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.logger
}

// load reads the configuration: file, then environment, then global flags.
func (f *Factory) load(flagChanged func(string) bool) error {
	path := f.global.ConfigPath
	explicit := flagChanged("config")
	if !explicit {
		for _, kv := range f.Env {
			if v, ok := strings.CutPrefix(kv, config.EnvPrefix+"CONFIG="); ok && v != "" {
				path, explicit = v, true
			}
		}
	}
	cfg, err := config.Load(path, explicit, f.Env)
	if err != nil {
		return &usageError{err}
	}
	f.logLevelFlag = flagChanged("log-level")
	for flag, key := range map[string]string{"log-level": "log_level", "log-format": "log_format", "output": "output", "server": "remote.server"} {
		if !flagChanged(flag) {
			continue
		}
		var v string
		switch flag {
		case "log-level":
			v = f.global.LogLevel
		case "log-format":
			v = f.global.LogFormat
		case "output":
			v = f.global.Output
		case "server":
			v = f.global.Server
		}
		if err := cfg.Set(key, v); err != nil {
			return &usageError{err}
		}
	}
	if err := cfg.Validate(); err != nil {
		return &usageError{fmt.Errorf("flags: %w", err)}
	}
	f.cfg = &cfg
	f.logger = newLogger(f.IO.ErrOut, cfg.LogLevel, cfg.LogFormat)
	return nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logLevelExplicit reports whether the log level was asked for on the
// command line or in the environment.
func (f *Factory) logLevelExplicit() bool {
	if f.logLevelFlag {
		return true
	}
	for _, kv := range f.Env {
		if _, ok := strings.CutPrefix(kv, config.EnvName("log_level")+"="); ok {
			return true
		}
	}
	return false
}

// jsonOutput reports whether results go out as JSON.
func (f *Factory) jsonOutput() bool { return f.Config().Output == "json" }

// writeJSON writes v as one indented JSON document to Out.
func (f *Factory) writeJSON(v any) error {
	enc := json.NewEncoder(f.IO.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ensureDir creates the parent directory of path (0700).
func ensureDir(path string) error {
	return os.MkdirAll(filepath.Dir(path), 0o700)
}
