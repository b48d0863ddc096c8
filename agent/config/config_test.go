package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadInvalid(t *testing.T) {
	cases := []struct {
		file string
		want string // substring of the error: key and file must be named
	}{
		{"invalid-unknown-key.yaml", "field order_sytem not found"},
		{"invalid-log-level.yaml", `log_level: "loud" is not one of debug, info, warn, error`},
		{"invalid-duration.yaml", "workflow.wan_timeout (line 2): cannot unmarshal !!str `soon` into time.Duration"},
		{"invalid-url.yaml", `order_system.url: "ftp://orders.example/" must start with http:// or https://`},
		{"invalid-visit-limit.yaml", "workflow.visit_limit_repair: must not be negative"},
		{"invalid-iptv-vlan.yaml", "iptv.vlan: is 5000; a VLAN is 1–4094"},
		{"invalid-xt2-snmp.yaml", `xt2.snmp_version: is "v1"; want v2c or v3`},
		{"invalid-secret-env.yaml", "order_system.token: secret reference cannot be resolved: environment variable FIELDAGENT_TEST_UNSET_TOKEN is not set"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			_, err := Load(path, true, nil)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q\nwant it to contain %q and the file %q", err, tc.want, path)
			}
		})
	}
}

func TestLoadLayers(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"FA_TEST_CR_PASS=cr-secret-1",
		"FIELDAGENT_WORKFLOW_LOID_TIMEOUT=7s",
		"FIELDAGENT_ORDER_SYSTEM_TOKEN=file:" + pwFile,
		"PATH=/usr/bin",
	}
	t.Setenv("FA_TEST_CR_PASS", "cr-secret-1")
	cfg, err := Load(filepath.Join("testdata", "valid.yaml"), true, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "debug" || cfg.Technician != "t-042" {
		t.Errorf("file values not applied: %+v", cfg)
	}
	if cfg.Workflow.WANTimeout != 45*time.Second {
		t.Errorf("wan_timeout = %s, want 45s from the file", cfg.Workflow.WANTimeout)
	}
	if cfg.Workflow.LOIDTimeout != 7*time.Second {
		t.Errorf("loid_timeout = %s, want 7s from the environment", cfg.Workflow.LOIDTimeout)
	}
	if cfg.Workflow.InformTimeout != Default().Workflow.InformTimeout {
		t.Errorf("inform_timeout = %s, want the default", cfg.Workflow.InformTimeout)
	}
	if got := cfg.OrderSystem.Token.Reveal(); got != "from-file" {
		t.Errorf("token = %q, want the env var's file: reference resolved over the inline file value", got)
	}
	if got := cfg.ACS.ConnectionRequestPassword.Reveal(); got != "cr-secret-1" {
		t.Errorf("cr password = %q, want env: reference resolved", got)
	}
	// Flags come last.
	if err := cfg.Set("output", "json"); err != nil {
		t.Fatal(err)
	}
	if cfg.Output != "json" {
		t.Errorf("Set did not apply")
	}
	if err := cfg.Set("output", "xml"); err != nil {
		t.Fatal(err) // Set only parses; Validate checks
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "output") {
		t.Errorf("Validate after bad Set = %v, want an error naming output", err)
	}
	// Secrets never print.
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "from-file") || strings.Contains(s, "cr-secret-1") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func TestLoadEnvUnknown(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false, []string{"FIELDAGENT_ORDER_SYSTEM_URLL=x"})
	if err == nil || !strings.Contains(err.Error(), "FIELDAGENT_ORDER_SYSTEM_URLL") {
		t.Fatalf("err = %v, want it to name the unknown variable", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.yaml")
	if _, err := Load(path, false, nil); err != nil {
		t.Errorf("missing default file: %v, want defaults", err)
	}
	if _, err := Load(path, true, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing explicit file: %v, want ErrNotExist", err)
	}
}

func TestEnvNameCoversEveryKey(t *testing.T) {
	seen := map[string]string{}
	for _, k := range Keys() {
		n := EnvName(k)
		if prev, ok := seen[n]; ok {
			t.Errorf("keys %s and %s share the variable %s", prev, k, n)
		}
		seen[n] = k
	}
	if _, ok := seen["FIELDAGENT_ACS_LISTEN"]; !ok {
		t.Errorf("FIELDAGENT_ACS_LISTEN missing from %v", seen)
	}
}
