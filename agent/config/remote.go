package config

import (
	"fmt"
	"os"
	"time"

	"fieldagent/agent/secret"
)

// Kinds of ACS (acs.kind).
const (
	// ACSEmbedded is fieldagent's own ACS (tr069/acs) on acs.listen.
	ACSEmbedded = "embedded"
	// ACSGenieACS is the operator's GenieACS, reached through its
	// northbound API (NBI) at acs.nbi_url.
	ACSGenieACS = "genieacs"
)

// DefaultRemoteTimeout bounds each request to a remote serve.
const DefaultRemoteTimeout = 30 * time.Second

// Remote configures the CLI's use of a remote `fieldagent serve` (the
// --server flag): a remote engineer's commands go to its API instead of
// the local store and ACS.
type Remote struct {
	// Server is the serve API's base URL, e.g. https://support.example:7550.
	// Empty means local.
	Server string `yaml:"server"`
	// Token is the engineer's bearer token (fieldagent serve token new).
	Token secret.Secret `yaml:"token"`
	// CAFile, if set, is a PEM file of the CA that signed serve's
	// certificate (in addition to the system's).
	CAFile string `yaml:"ca_file"`
	// Timeout bounds each request (not the following of a job).
	Timeout time.Duration `yaml:"timeout"`
}

func (r Remote) validate() error {
	if r.Server == "" {
		return nil
	}
	if err := checkURL(r.Server); err != nil {
		return fmt.Errorf("%w: remote.server (--server): %v", ErrInvalid, err)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("%w: remote.timeout: must not be negative, got %s", ErrInvalid, r.Timeout)
	}
	if r.CAFile != "" {
		if _, err := os.Stat(r.CAFile); err != nil {
			return fmt.Errorf("%w: remote.ca_file: %v", ErrInvalid, err)
		}
	}
	return nil
}

func (a ACS) validateKind() error {
	switch a.Kind {
	case "", ACSEmbedded:
		return nil
	case ACSGenieACS:
		if a.NBIURL == "" {
			return fmt.Errorf("%w: acs.nbi_url: required with acs.kind: genieacs (GenieACS's NBI, e.g. http://genieacs.example:7557)", ErrInvalid)
		}
		if err := checkURL(a.NBIURL); err != nil {
			return fmt.Errorf("%w: acs.nbi_url: %v", ErrInvalid, err)
		}
		if a.NBITimeout < 0 {
			return fmt.Errorf("%w: acs.nbi_timeout: must not be negative, got %s", ErrInvalid, a.NBITimeout)
		}
		return nil
	default:
		return fmt.Errorf("%w: acs.kind: %q is not one of embedded, genieacs", ErrInvalid, a.Kind)
	}
}
