package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadInvalidServe(t *testing.T) {
	cases := []struct {
		file, want string
	}{
		{"invalid-serve-concurrency.yaml", "serve.concurrency: is 0; want at least 1"},
		{"invalid-serve-token-hash.yaml", `serve.tokens[0].hash: does not start with "sha256:"`},
		{"invalid-serve-token-role.yaml", `serve.tokens[0].role: "admin" is not one of read, diagnose, configure`},
		{"invalid-serve-tls.yaml", "serve.tls_cert: tls_cert and tls_key go together"},
		{"invalid-serve-listen.yaml", "serve.api_listen:"},
		{"invalid-serve-rate.yaml", "serve.rate: is -1"},
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
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "fa_this-is-a-plain-token") {
				t.Errorf("error %q quotes the pasted token", err)
			}
		})
	}
}

func TestServeDefaultsAndTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	yaml := `serve:
  rate: 2.5
  tokens:
    - name: alice
      hash: sha256:` + strings.Repeat("ab", 32) + `
      role: diagnose
    - name: bob
      hash: sha256:` + strings.Repeat("cd", 32) + `
      role: read
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, true, []string{"FIELDAGENT_SERVE_BURST=7", "FIELDAGENT_SERVE_CONCURRENCY=5"})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Serve
	if s.APIListen != DefaultServeAPIListen || s.Concurrency != 5 || s.Rate != 2.5 || s.Burst != 7 || s.ShutdownTimeout != 30*time.Second {
		t.Errorf("serve = %+v", s)
	}
	if len(s.Tokens) != 2 || s.Tokens[0].Name != "alice" || s.Tokens[0].Role != "diagnose" || s.Tokens[1].Role != "read" {
		t.Errorf("tokens = %+v", s.Tokens)
	}

	dup := cfg
	dup.Serve.Tokens = []ServeToken{s.Tokens[0], s.Tokens[0]}
	if err := dup.Validate(); err == nil || !strings.Contains(err.Error(), `serve.tokens[1].name: "alice" is already`) {
		t.Errorf("duplicate name: %v", err)
	}
}
