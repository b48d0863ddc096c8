package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/testlab/netsite"
)

// A running lab leaves its files in a directory of its own under the
// per-user runtime directory: <runtime>/labs/<name>/ holds state.json (the
// control API's URL and token, for `lab fault`), config.yaml (a fieldagent
// config that reaches the lab), known_hosts (the XT-2's host key) and the
// lab's store. lab up removes the directory on exit; lab clean removes those
// of labs that died without.

const (
	labStateFile   = "state.json"
	labConfigFile  = "config.yaml"
	labKnownHosts  = "known_hosts"
	labStoreFile   = "fieldagent.db"
	defaultLabName = "lab"
)

// labNameRE is what --name accepts: the instance names a network-namespace
// site (testlab/netsite) accepts too, so that one name covers both.
var labNameRE = regexp.MustCompile(`^[a-z0-9]{1,` + strconv.Itoa(netsite.MaxInstanceLen) + `}$`)

func checkLabName(name string) error {
	if !labNameRE.MatchString(name) {
		return &usageError{fmt.Errorf("--name %q: want 1 to %d lowercase letters and digits", name, netsite.MaxInstanceLen)}
	}
	return nil
}

// labState is what lab up writes for lab fault and lab clean (0600).
type labState struct {
	Name       string        `json:"name"`
	PID        int           `json:"pid"`
	Scenario   string        `json:"scenario"`
	ControlURL string        `json:"control_url"`
	Token      secret.Secret `json:"-"`
	ConfigPath string        `json:"config_path"`
	Started    time.Time     `json:"started"`
}

// labStateFileJSON is labState on disk, the token in clear (the file is
// 0600 in a 0700 directory of the user's).
type labStateFileJSON struct {
	labState
	Token string `json:"token"`
}

// envValue returns the value of key in env (os.Environ form).
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if s, ok := strings.CutPrefix(kv, key+"="); ok {
			v = s
		}
	}
	return v
}

// labRuntimeDir returns the per-user directory of lab state:
// $XDG_RUNTIME_DIR/fieldagent, else <temp>/fieldagent-<uid>. With create it
// makes it (0700) and, in either case, refuses one that another user owns
// or others can enter (a shared /tmp).
func labRuntimeDir(env []string, create bool) (string, error) {
	var dir string
	if x := envValue(env, "XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		dir = filepath.Join(x, "fieldagent")
	} else {
		tmp := envValue(env, "TMPDIR")
		if tmp == "" || !filepath.IsAbs(tmp) {
			tmp = os.TempDir()
		}
		dir = filepath.Join(tmp, fmt.Sprintf("fieldagent-%d", os.Getuid()))
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("lab state directory: %w", err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return dir, err
	}
	if err := checkPrivateDir(dir, fi); err != nil {
		return "", err
	}
	return dir, nil
}

// labDir returns the directory of lab name.
func labDir(runtimeDir, name string) string { return filepath.Join(runtimeDir, "labs", name) }

// writeLabState writes st to dir/state.json (0600), atomically.
func writeLabState(dir string, st labState) (string, error) {
	b, err := json.MarshalIndent(labStateFileJSON{labState: st, Token: st.Token.Reveal()}, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, labStateFile)
	return p, writeFileAtomic(p, append(b, '\n'))
}

// writeFileAtomic writes b to p with mode 0600 through a temporary file in
// the same directory.
func writeFileAtomic(p string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// errNoLab means no state file: no lab of that name runs.
var errNoLab = errors.New("no lab running")

// readLabState reads the state of lab name.
func readLabState(env []string, name string) (labState, string, error) {
	rt, err := labRuntimeDir(env, false)
	if errors.Is(err, fs.ErrNotExist) {
		return labState{}, "", fmt.Errorf("%w named %q (no %s): start one with fieldagent lab up", errNoLab, name, rt)
	}
	if err != nil {
		return labState{}, "", err
	}
	p := filepath.Join(labDir(rt, name), labStateFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return labState{}, p, fmt.Errorf("%w named %q: start one with fieldagent lab up", errNoLab, name)
	}
	if err != nil {
		return labState{}, p, err
	}
	var f labStateFileJSON
	if err := json.Unmarshal(b, &f); err != nil || f.ControlURL == "" || f.Token == "" {
		return labState{}, p, fmt.Errorf("%w named %q: its state file %s is damaged (fieldagent lab clean removes it): start one with fieldagent lab up", errNoLab, name, p)
	}
	st := f.labState
	st.Token = secret.New(f.Token)
	return st, p, nil
}

// labAlive reports whether the lab of st answers its control API.
func labAlive(ctx context.Context, st labState) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := (&labClient{BaseURL: st.ControlURL, Token: st.Token}).List(ctx)
	return err == nil
}

// cleanNetns removes the network namespaces a netsite lab of this name left
// behind, when namespaces can be used here at all. lab up runs its sites on
// loopback today; once it runs them in namespaces (testlab/netsite, with the
// lab's name as Instance), this is what removes a crashed one's.
func cleanNetns(ctx context.Context, name string) ([]string, error) {
	if netsite.Available() != nil {
		return nil, nil
	}
	return netsite.Clean(ctx, netsite.NamePrefix+name+"-")
}
