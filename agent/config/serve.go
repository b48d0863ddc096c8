package config

import (
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"
)

// Defaults of the serve section.
const (
	DefaultServeAPIListen       = "127.0.0.1:7550"
	DefaultServeConcurrency     = 20
	DefaultServeShutdownTimeout = 30 * time.Second
)

// Serve configures `fieldagent serve`: the remote-support API next to the
// ACS (which listens on acs.listen).
type Serve struct {
	// APIListen is where the API, /metrics, /healthz and /readyz listen.
	APIListen string `yaml:"api_listen"`
	// Tokens are the API's callers. Each holds the hash of a token that
	// `fieldagent serve token new` made, never the token itself.
	Tokens []ServeToken `yaml:"tokens"`
	// Concurrency is how many devices the daemon diagnoses at once, across
	// all jobs (at least 1).
	Concurrency int `yaml:"concurrency"`
	// Rate and Burst limit each token's requests (per second, and how many
	// at once); 0 keeps the auth package's defaults.
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
	// TLSCert and TLSKey, both set, make the API listen with HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ShutdownTimeout bounds a graceful stop: running diagnoses that have
	// not finished by then are cancelled.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// ServeToken is one API caller: a name for the logs, the token's hash
// ("sha256:" and 64 hex digits) and its role (read, diagnose, configure).
type ServeToken struct {
	Name string `yaml:"name"`
	Hash string `yaml:"hash"`
	Role string `yaml:"role"`
}

// validate checks the serve section. Its errors never quote a hash: a
// plain token pasted there must not reach a log.
func (s *Serve) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: serve.%s: %s", ErrInvalid, key, fmt.Sprintf(format, args...))
	}
	if _, _, err := splitHostPort(s.APIListen); err != nil {
		return bad("api_listen", "%v", err)
	}
	if s.Concurrency < 1 {
		return bad("concurrency", "is %d; want at least 1 device at a time", s.Concurrency)
	}
	if s.Rate < 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
		return bad("rate", "is %v; want a positive number of requests per second, or 0 for the default", s.Rate)
	}
	if s.Burst < 0 {
		return bad("burst", "is %d; want a positive number of requests, or 0 for the default", s.Burst)
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return bad("tls_cert", "tls_cert and tls_key go together: set both for HTTPS, or neither")
	}
	if s.ShutdownTimeout <= 0 {
		return bad("shutdown_timeout", "must be a positive duration, got %s", s.ShutdownTimeout)
	}
	names := map[string]int{}
	for i, t := range s.Tokens {
		key := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			return bad(key+".name", "is empty: every token needs a name for the logs")
		}
		if j, dup := names[t.Name]; dup {
			return bad(key+".name", "%q is already the name of tokens[%d]", t.Name, j)
		}
		names[t.Name] = i
		hexPart, ok := strings.CutPrefix(t.Hash, "sha256:")
		if !ok {
			return bad(key+".hash", "does not start with \"sha256:\" (is it the token itself?): put the hash that `fieldagent serve token new` prints, never the token")
		}
		if b, err := hex.DecodeString(hexPart); err != nil || len(b) != 32 {
			return bad(key+".hash", "want \"sha256:\" and 64 hex digits, as `fieldagent serve token new` prints")
		}
		switch t.Role {
		case "read", "diagnose", "configure":
		default:
			return bad(key+".role", "%q is not one of read, diagnose, configure", t.Role)
		}
	}
	return nil
}
