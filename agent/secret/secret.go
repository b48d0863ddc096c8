// Package secret holds credentials (PPPoE, LOID, device and API passwords) in a
// type that never prints its value: String, GoString, LogValue, MarshalJSON and
// MarshalYAML all give "******". Only Reveal returns the value, and only code
// that hands the credential to a device or a server calls it.
//
// A Secret can be written in a config file in three forms:
//
//	password: s3cret            # inline
//	password: env:PPPOE_PASS    # from an environment variable
//	password: file:/etc/fa/pw   # from a file (trailing newline trimmed)
//
// Resolve turns the env: and file: forms into the value.
package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Redacted is what every printing method of Secret returns.
const Redacted = "******"

// ErrUnresolved is returned by Resolve when an env: or file: reference cannot be read.
var ErrUnresolved = errors.New("secret reference cannot be resolved")

// Secret is a credential. The zero value is the empty secret.
type Secret struct {
	v string
}

// New returns a Secret holding v as it is (no env:/file: resolution).
func New(v string) Secret { return Secret{v: v} }

// Parse returns the Secret that the config form s names: "env:NAME" reads the
// environment variable NAME, "file:/path" reads the file (one trailing newline
// trimmed), anything else is the value itself. The error names the reference
// but never a value.
func Parse(s string) (Secret, error) {
	switch {
	case strings.HasPrefix(s, "env:"):
		name := strings.TrimPrefix(s, "env:")
		v, ok := os.LookupEnv(name)
		if !ok {
			return Secret{}, fmt.Errorf("%w: environment variable %s is not set", ErrUnresolved, name)
		}
		return Secret{v: v}, nil
	case strings.HasPrefix(s, "file:"):
		path := strings.TrimPrefix(s, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return Secret{}, fmt.Errorf("%w: %w", ErrUnresolved, err)
		}
		return Secret{v: strings.TrimRight(string(b), "\r\n")}, nil
	}
	return Secret{v: s}, nil
}

// Reveal returns the credential itself. Call it only to hand the value to a
// device or a server, never to print it.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// Equal reports whether two secrets hold the same value.
func (s Secret) Equal(o Secret) bool { return s.v == o.v }

// String returns "******" (or "" for an empty secret, so that a missing
// credential is visible as missing).
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return "secret.Secret(" + s.String() + ")" }

// Format makes every fmt verb print the redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// LogValue makes slog print the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the redacted form, so a Secret in any JSON output or
// report is masked. Code that must send the value (to the device, to the
// order system) uses Reveal.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a plain JSON string as the value. A redacted value
// ("******") reads as the empty secret, so a report read back never pretends
// to hold a credential.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret must be a JSON string: %w", err)
	}
	if v == Redacted {
		v = ""
	}
	s.v = v
	return nil
}

// MarshalText writes the redacted form (used by encoders that prefer text).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalYAML stores the scalar as written, without resolving env: or
// file: forms; config.Load resolves them with Parse so that an error can name
// the key. It implements the yaml "obsolete" unmarshaler interface, so this
// package needs no YAML import.
func (s *Secret) UnmarshalYAML(unmarshal func(any) error) error {
	var v string
	if err := unmarshal(&v); err != nil {
		return errors.New("secret must be a string")
	}
	s.v = v
	return nil
}

// MarshalYAML writes the redacted form.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Hint shows enough of an account name (a PPPoE or IPTV user name) for a
// log reader to tell accounts apart, and no more: its first two and last
// two characters and its length, e.g. "ad…45 (13)". Names of 6 characters
// or fewer show only their length.
func Hint(name string) string {
	r := []rune(name)
	if len(r) <= 6 {
		return fmt.Sprintf("… (%d)", len(r))
	}
	return fmt.Sprintf("%s…%s (%d)", string(r[:2]), string(r[len(r)-2:]), len(r))
}
