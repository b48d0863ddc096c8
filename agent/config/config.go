// Package config loads fieldagent's configuration: a YAML file, then
// FIELDAGENT_* environment variables, then command-line flags (the caller
// applies flags last). Every key is validated on load; an unknown key or a bad
// value is an error that names the key and where it came from.
//
// Credentials are secret.Secret values and may be written inline, as
// env:NAME or as file:/path.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"fieldagent/agent/secret"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that config reads.
const EnvPrefix = "FIELDAGENT_"

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Config is the whole configuration. The zero value is not valid; use
// Default and then Load.
type Config struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// Output is table or json.
	Output string `yaml:"output"`
	// Store is the path of the local SQLite store.
	Store string `yaml:"store"`
	// Technician is the technician's id in the order system.
	Technician string `yaml:"technician"`
	// OrderSystem is where orders come from and 报竣 reports go.
	OrderSystem OrderSystem `yaml:"order_system"`
	// ACS is the agent's embedded TR-069 ACS that gateways connect to.
	ACS ACS `yaml:"acs"`
	// Workflow holds the time limits of an order run.
	Workflow Workflow `yaml:"workflow"`
	// Diag configures the tests run after provisioning.
	Diag Diag `yaml:"diag"`
	// IPTV configures IPTV services (the gateway's IPTV WAN, the set-top
	// box's EPG login).
	IPTV IPTV `yaml:"iptv"`
	// XT2 says how to reach the customer's XT-2 business router.
	XT2 XT2 `yaml:"xt2"`
	// Serve configures `fieldagent serve`, the remote-support daemon.
	Serve Serve `yaml:"serve"`
	// Remote points the CLI at a remote `fieldagent serve` (--server).
	Remote Remote `yaml:"remote"`
}

// IPTV configures IPTV services.
type IPTV struct {
	// VLAN is the IPTV VLAN when the order gives none (default 85).
	VLAN int `yaml:"vlan"`
	// AuthURL and AuthURLBackup are the operator's EPG authentication
	// servers that set-top boxes log in to.
	AuthURL       string `yaml:"auth_url"`
	AuthURLBackup string `yaml:"auth_url_backup"`
}

// XT2 says how to reach an XT-2: its SSH CLI (host key checked against
// known_hosts) and its SNMP agent.
type XT2 struct {
	// Address is the router's SSH "host:port" (port 22 when omitted).
	Address  string        `yaml:"address"`
	Username string        `yaml:"username"`
	Password secret.Secret `yaml:"password"`
	// KnownHosts is the known_hosts file; empty means ~/.ssh/known_hosts.
	KnownHosts string `yaml:"known_hosts"`
	// TrustOnFirstUse records an unknown host key instead of refusing it
	// (a changed key is always refused).
	TrustOnFirstUse bool `yaml:"trust_on_first_use"`
	// SNMPAddress is the agent's "host:port"; empty means the SSH host,
	// port 161.
	SNMPAddress string `yaml:"snmp_address"`
	// SNMPVersion is v2c or v3 (default v3).
	SNMPVersion string `yaml:"snmp_version"`
	// SNMPCommunity is the v2c community.
	SNMPCommunity secret.Secret `yaml:"snmp_community"`
	// SNMPUser, SNMPAuthProtocol (SHA256 default), SNMPAuthKey,
	// SNMPPrivProtocol (AES default) and SNMPPrivKey are v3 authPriv.
	SNMPUser         string        `yaml:"snmp_user"`
	SNMPAuthProtocol string        `yaml:"snmp_auth_protocol"`
	SNMPAuthKey      secret.Secret `yaml:"snmp_auth_key"`
	SNMPPrivProtocol string        `yaml:"snmp_priv_protocol"`
	SNMPPrivKey      secret.Secret `yaml:"snmp_priv_key"`
}

// OrderSystem configures the order system client.
type OrderSystem struct {
	// URL is the base URL of the order system, e.g. https://orders.example/.
	URL string `yaml:"url"`
	// Token is the technician's bearer token.
	Token secret.Secret `yaml:"token"`
	// Timeout bounds each request.
	Timeout time.Duration `yaml:"timeout"`
}

// ACS configures the ACS: the embedded one, or the operator's GenieACS
// reached through its NBI.
type ACS struct {
	// Kind is "embedded" (the default) or "genieacs": the device, diag and
	// fleet commands then reach gateways through GenieACS's NBI.
	Kind string `yaml:"kind"`
	// NBIURL is GenieACS's northbound API, e.g. http://genieacs.example:7557.
	NBIURL string `yaml:"nbi_url"`
	// NBIUsername and NBIPassword, if the password is set, authenticate to
	// the NBI with HTTP Basic (GenieACS's NBI has none of its own; a reverse
	// proxy usually adds it).
	NBIUsername string        `yaml:"nbi_username"`
	NBIPassword secret.Secret `yaml:"nbi_password"`
	// NBITimeout is how long GenieACS waits for the device's session when
	// a task wakes it (the task's timeout=N) before answering that the
	// device is offline (0: 20s).
	NBITimeout time.Duration `yaml:"nbi_timeout"`
	// Listen is the address the ACS listens on for CWMP sessions.
	Listen string `yaml:"listen"`
	// ConnectionRequestUsername and ConnectionRequestPassword authenticate
	// connection requests to gateways.
	ConnectionRequestUsername string        `yaml:"connection_request_username"`
	ConnectionRequestPassword secret.Secret `yaml:"connection_request_password"`
	// CPEUsername and CPEPassword, when the password is set, are the shared
	// credentials CPEs must present (HTTP Digest; Basic only over HTTPS).
	CPEUsername string        `yaml:"cpe_username"`
	CPEPassword secret.Secret `yaml:"cpe_password"`
	// TLSCert and TLSKey, both set, make the ACS listen with HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// APIListen is where `acs serve` offers the device API.
	APIListen string `yaml:"api_listen"`
	// APIURL is where the `device` commands reach that API.
	APIURL string `yaml:"api_url"`
	// APIToken authenticates callers of the device API.
	APIToken secret.Secret `yaml:"api_token"`
	// FilesDir, if set, is served under /files/ on the ACS listener for
	// the Download RPC (firmware images, configuration files); each file
	// only to the device a download names, with one-time credentials.
	FilesDir string `yaml:"files_dir"`
	// FilesURL is how devices reach FilesDir, e.g.
	// http://192.0.2.10:7547/files/ (the laptop's address on the
	// customer's LAN).
	FilesURL string `yaml:"files_url"`
}

// Workflow configures an order run.
type Workflow struct {
	// InformTimeout is how long to wait for the gateway's first Inform.
	InformTimeout time.Duration `yaml:"inform_timeout"`
	// LOIDTimeout is how long to wait for LOID registration with ITMS.
	LOIDTimeout time.Duration `yaml:"loid_timeout"`
	// WANTimeout is how long to wait for the WAN to come up.
	WANTimeout time.Duration `yaml:"wan_timeout"`
	// StepTimeout bounds every single device operation.
	StepTimeout time.Duration `yaml:"step_timeout"`
	// VisitLimitE8 and VisitLimitXT2 are the operator's time limits for
	// installing and troubleshooting an e8 (20 min) or an XT-2 (15 min):
	// order run warns at 80% and the report records an overrun.
	VisitLimitE8  time.Duration `yaml:"visit_limit_e8"`
	VisitLimitXT2 time.Duration `yaml:"visit_limit_xt2"`
	// VisitLimitMove, VisitLimitRepair and VisitLimitRemoval, when set,
	// replace the device's limit for orders of that type (0: the
	// device's).
	VisitLimitMove    time.Duration `yaml:"visit_limit_move"`
	VisitLimitRepair  time.Duration `yaml:"visit_limit_repair"`
	VisitLimitRemoval time.Duration `yaml:"visit_limit_removal"`
}

// Diag configures the acceptance tests of an order run.
type Diag struct {
	// PingTarget is pinged after the WAN is up; empty means the speed server's host.
	PingTarget string `yaml:"ping_target"`
	// SpeedURL is the base URL of a fieldagent speed server.
	SpeedURL string `yaml:"speed_url"`
	// SpeedDuration is the length of the download test.
	SpeedDuration time.Duration `yaml:"speed_duration"`
	// Thresholds, if set, is a YAML file of verdict threshold overrides
	// (diagnostics/verdict Profile keys, e.g. optical.rx_min_dbm).
	Thresholds string `yaml:"thresholds"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		LogLevel:  "info",
		LogFormat: "text",
		Output:    "table",
		Store:     DefaultStorePath(),
		OrderSystem: OrderSystem{
			Timeout: 15 * time.Second,
		},
		ACS: ACS{
			Listen:                    ":7547",
			ConnectionRequestUsername: "fieldagent",
			APIListen:                 "127.0.0.1:7548",
			APIURL:                    "http://127.0.0.1:7548",
		},
		Workflow: Workflow{
			InformTimeout: 5 * time.Minute,
			LOIDTimeout:   2 * time.Minute,
			WANTimeout:    90 * time.Second,
			StepTimeout:   30 * time.Second,
			VisitLimitE8:  20 * time.Minute,
			VisitLimitXT2: 15 * time.Minute,
		},
		Diag: Diag{
			SpeedDuration: 10 * time.Second,
		},
		Serve: Serve{
			APIListen:       DefaultServeAPIListen,
			Concurrency:     DefaultServeConcurrency,
			ShutdownTimeout: DefaultServeShutdownTimeout,
		},
	}
}

// DefaultPath is $XDG_CONFIG_HOME/fieldagent/config.yaml (or
// ~/.config/fieldagent/config.yaml).
func DefaultPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "config.yaml"
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "fieldagent", "config.yaml")
}

// DefaultStorePath is $XDG_DATA_HOME/fieldagent/fieldagent.db (or
// ~/.local/share/fieldagent/fieldagent.db).
func DefaultStorePath() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "fieldagent.db"
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "fieldagent", "fieldagent.db")
}

// Load reads the file at path (a missing file is not an error when
// mustExist is false), then applies the environment env (as os.Environ
// gives it), resolves env:/file: credentials and validates.
func Load(path string, mustExist bool, env []string) (Config, error) {
	cfg := Default()
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := decodeYAML(b, &cfg); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist) && !mustExist:
	default:
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := applyEnv(&cfg, env); err != nil {
		return Config{}, fmt.Errorf("config environment: %w", err)
	}
	if err := resolveSecrets(&cfg); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func decodeYAML(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%w: %s", ErrInvalid, annotateKeys(b, te.Errors))
		}
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// annotateKeys puts the dotted key in front of each yaml error that names a
// line, so "line 2: cannot unmarshal ..." reads
// "workflow.wan_timeout (line 2): cannot unmarshal ...".
func annotateKeys(b []byte, errs []string) string {
	var root yaml.Node
	_ = yaml.Unmarshal(b, &root)
	keys := map[int]string{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if prefix != "" {
					k = prefix + "." + k
				}
				keys[n.Content[i].Line] = k
				keys[n.Content[i+1].Line] = k
				walk(n.Content[i+1], k)
			}
		}
	}
	walk(&root, "")
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		var line int
		if _, err := fmt.Sscanf(e, "line %d:", &line); err == nil {
			if k, ok := keys[line]; ok {
				_, rest, _ := strings.Cut(e, ":")
				e = fmt.Sprintf("%s (line %d):%s", k, line, rest)
			}
		}
		out = append(out, e)
	}
	return strings.Join(out, "; ")
}

// field is one leaf of Config with its dotted YAML key.
type field struct {
	key string
	v   reflect.Value
}

func leaves(v reflect.Value, prefix string) []field {
	var out []field
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		fv := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[secret.Secret]() {
			out = append(out, leaves(fv, key)...)
			continue
		}
		out = append(out, field{key: key, v: fv})
	}
	return out
}

// EnvName is the environment variable that sets the dotted key, e.g.
// order_system.url → FIELDAGENT_ORDER_SYSTEM_URL.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Keys lists every dotted configuration key.
func Keys() []string {
	cfg := Default()
	var keys []string
	for _, f := range leaves(reflect.ValueOf(&cfg).Elem(), "") {
		keys = append(keys, f.key)
	}
	return keys
}

// envIgnored are FIELDAGENT_ variables that are not configuration keys.
var envIgnored = []string{EnvPrefix + "CONFIG"}

func applyEnv(cfg *Config, env []string) error {
	byEnv := map[string]field{}
	for _, f := range leaves(reflect.ValueOf(cfg).Elem(), "") {
		byEnv[EnvName(f.key)] = f
	}
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || slices.Contains(envIgnored, name) {
			continue
		}
		f, ok := byEnv[name]
		if !ok {
			return fmt.Errorf("%w: unknown variable %s (known: FIELDAGENT_ + an upper-case key, e.g. FIELDAGENT_ORDER_SYSTEM_URL)", ErrInvalid, name)
		}
		if err := setString(f.v, val); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, name, err)
		}
	}
	return nil
}

// Set sets the dotted key to the string s, as a flag or env var would.
func (c *Config) Set(key, s string) error {
	for _, f := range leaves(reflect.ValueOf(c).Elem(), "") {
		if f.key == key {
			if err := setString(f.v, s); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrInvalid, key, err)
			}
			if sec, ok := f.v.Addr().Interface().(*secret.Secret); ok {
				r, err := secret.Parse(sec.Reveal())
				if err != nil {
					return fmt.Errorf("%w: %s: %w", ErrInvalid, key, err)
				}
				*sec = r
			}
			return nil
		}
	}
	return fmt.Errorf("%w: unknown key %s", ErrInvalid, key)
}

func setString(v reflect.Value, s string) error {
	switch p := v.Addr().Interface().(type) {
	case *string:
		*p = s
	case *secret.Secret:
		*p = secret.New(s)
	case *time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 30s, 2m)", s)
		}
		*p = d
	case *float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		*p = f
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		*p = b
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

func resolveSecrets(cfg *Config) error {
	for _, f := range leaves(reflect.ValueOf(cfg).Elem(), "") {
		sec, ok := f.v.Addr().Interface().(*secret.Secret)
		if !ok {
			continue
		}
		r, err := secret.Parse(sec.Reveal())
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, f.key, err)
		}
		*sec = r
	}
	return nil
}

// Validate checks every value and names the first bad key.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, key, fmt.Sprintf(format, args...))
	}
	oneOf := func(key, v string, allowed ...string) error {
		if !slices.Contains(allowed, v) {
			return bad(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
		}
		return nil
	}
	if err := oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error"); err != nil {
		return err
	}
	if err := oneOf("log_format", c.LogFormat, "text", "json"); err != nil {
		return err
	}
	if err := oneOf("output", c.Output, "table", "json"); err != nil {
		return err
	}
	if c.Store == "" {
		return bad("store", "must not be empty")
	}
	if c.OrderSystem.URL != "" {
		if err := checkURL(c.OrderSystem.URL); err != nil {
			return bad("order_system.url", "%v", err)
		}
	}
	if c.Diag.SpeedURL != "" {
		if err := checkURL(c.Diag.SpeedURL); err != nil {
			return bad("diag.speed_url", "%v", err)
		}
	}
	for key, d := range map[string]time.Duration{
		"order_system.timeout":     c.OrderSystem.Timeout,
		"workflow.inform_timeout":  c.Workflow.InformTimeout,
		"workflow.loid_timeout":    c.Workflow.LOIDTimeout,
		"workflow.wan_timeout":     c.Workflow.WANTimeout,
		"workflow.step_timeout":    c.Workflow.StepTimeout,
		"workflow.visit_limit_e8":  c.Workflow.VisitLimitE8,
		"workflow.visit_limit_xt2": c.Workflow.VisitLimitXT2,
		"diag.speed_duration":      c.Diag.SpeedDuration,
	} {
		if d <= 0 {
			return bad(key, "must be a positive duration, got %s", d)
		}
	}
	for key, d := range map[string]time.Duration{
		"workflow.visit_limit_move":    c.Workflow.VisitLimitMove,
		"workflow.visit_limit_repair":  c.Workflow.VisitLimitRepair,
		"workflow.visit_limit_removal": c.Workflow.VisitLimitRemoval,
	} {
		if d < 0 {
			return bad(key, "must not be negative (0 means the device's limit), got %s", d)
		}
	}
	if v := c.IPTV.VLAN; v < 0 || v > 4094 {
		return bad("iptv.vlan", "is %d; a VLAN is 1–4094 (0 for the default)", v)
	}
	switch c.XT2.SNMPVersion {
	case "", "v2c", "v3":
	default:
		return bad("xt2.snmp_version", "is %q; want v2c or v3", c.XT2.SNMPVersion)
	}
	if _, _, err := splitHostPort(c.ACS.Listen); err != nil {
		return bad("acs.listen", "%v", err)
	}
	if _, _, err := splitHostPort(c.ACS.APIListen); err != nil {
		return bad("acs.api_listen", "%v", err)
	}
	if err := checkURL(c.ACS.APIURL); err != nil {
		return bad("acs.api_url", "%v", err)
	}
	if c.ACS.FilesDir != "" {
		if err := checkURL(c.ACS.FilesURL); err != nil {
			return bad("acs.files_url", "%v (required with acs.files_dir: how devices reach the files)", err)
		}
	}
	if (c.ACS.TLSCert == "") != (c.ACS.TLSKey == "") {
		return bad("acs.tls_cert", "tls_cert and tls_key go together: set both for HTTPS, or neither")
	}
	if err := c.ACS.validateKind(); err != nil {
		return err
	}
	if err := c.Remote.validate(); err != nil {
		return err
	}
	return c.Serve.validate()
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	port, err := strconv.Atoi(s[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q has no valid port", s)
	}
	return s[:i], port, nil
}
