// Package platform holds CLI platform definitions as data: prompt patterns
// per privilege level, how to move between levels, paging, error,
// confirmation and commit patterns, and the patterns of secrets to mask in
// transcripts. Definitions are YAML files in the style of scrapligo's
// platforms; the built-in ones (xt2, vrp) are embedded, and Load reads one
// from a file.
package platform

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Sentinel errors; errors returned by this package wrap one of them.
var (
	// ErrInvalid means a platform definition is malformed; the message names
	// the field to fix.
	ErrInvalid = errors.New("invalid platform definition")
	// ErrUnknown means no built-in platform has the requested name; the
	// message lists the names there are.
	ErrUnknown = errors.New("unknown platform")
)

//go:embed platforms/*.yaml
var builtin embed.FS

// Level is one privilege level (a "view" on VRP-style CLIs).
type Level struct {
	// Name identifies the level, e.g. "user", "system".
	Name string `yaml:"name"`
	// Pattern matches the prompt of this level (the last line of output,
	// without trailing spaces); required.
	Pattern string `yaml:"pattern"`
	// Previous is the level that Escalate is sent from and Deescalate
	// returns to; empty for the lowest level.
	Previous string `yaml:"previous"`
	// Escalate is the command that enters this level from Previous; empty
	// means the level cannot be entered by a fixed command (interface views).
	Escalate string `yaml:"escalate"`
	// Deescalate is the command that leaves this level for Previous.
	Deescalate string `yaml:"deescalate"`

	re *regexp.Regexp
}

// Match reports whether prompt is a prompt of this level.
func (l *Level) Match(prompt string) bool { return l.re.MatchString(prompt) }

// Answered is a pattern the device prints and the text that answers it.
type Answered struct {
	// Pattern matches the device's output (unanchored).
	Pattern string `yaml:"pattern"`
	// Answer is written, without a newline, when Pattern is seen.
	Answer string `yaml:"answer"`

	re *regexp.Regexp
}

// Regexp returns the compiled Pattern; nil when Pattern is empty.
func (a *Answered) Regexp() *regexp.Regexp { return a.re }

// Commit says how to apply a candidate configuration.
type Commit struct {
	// Command applies the candidate configuration, e.g. "commit".
	Command string `yaml:"command"`
	// Success matches a line printed when the commit succeeded; empty means
	// "no error line" is success.
	Success string `yaml:"success"`

	re *regexp.Regexp
}

// Regexp returns the compiled Success pattern; nil when it is empty.
func (c *Commit) Regexp() *regexp.Regexp { return c.re }

// Platform is one CLI dialect. Build it with Get, Load or Parse, which
// compile and check every pattern; a zero Platform is not usable.
type Platform struct {
	// Name identifies the platform, e.g. "xt2".
	Name string `yaml:"name"`
	// Description is free text for people.
	Description string `yaml:"description"`
	// Levels are the privilege levels, lowest first.
	Levels []*Level `yaml:"privilege_levels"`
	// DefaultLevel is the level commands are sent from by default.
	DefaultLevel string `yaml:"default_level"`
	// ConfigLevel is the level configuration lines are sent from.
	ConfigLevel string `yaml:"config_level"`
	// ReturnCommand goes back to the lowest level from any level; empty
	// means leave level by level.
	ReturnCommand string `yaml:"return_command"`
	// PagingOff disables paging for the session; empty means none exists
	// (the Pager is answered instead).
	PagingOff string `yaml:"paging_off"`
	// Pager is the "more" prompt and the key that shows the next page.
	Pager Answered `yaml:"pager"`
	// ErrorPatterns match a line of output that means the command failed.
	ErrorPatterns []string `yaml:"error_patterns"`
	// Confirm is a yes/no question and the answer that proceeds.
	Confirm Answered `yaml:"confirm"`
	// Commit applies the candidate configuration; a zero Commit means the
	// platform has no two-stage commit.
	Commit Commit `yaml:"commit"`
	// AbortCommand discards the candidate configuration; empty means none.
	AbortCommand string `yaml:"abort_command"`
	// SaveCommand writes the running configuration to startup; empty means
	// none.
	SaveCommand string `yaml:"save_command"`
	// SecretPatterns each have one capturing group: the secret, replaced by
	// "******" in transcripts and error messages.
	SecretPatterns []string `yaml:"secret_patterns"`

	errors  []*regexp.Regexp
	secrets []*regexp.Regexp
}

// Names returns the names of the built-in platforms, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(builtin, "platforms") // embedded: cannot fail
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Get returns a fresh copy of the built-in platform name. An unknown name
// returns an error wrapping ErrUnknown.
func Get(name string) (*Platform, error) {
	data, err := builtin.ReadFile(path.Join("platforms", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("%w %q: built-in platforms are %s", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	return Parse(data)
}

// Load reads a platform definition from a YAML file.
func Load(file string) (*Platform, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read platform file: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// Parse decodes and checks a YAML platform definition. Unknown fields are
// errors. Errors wrap ErrInvalid and name the field.
func Parse(data []byte) (*Platform, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Platform
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := p.compile(); err != nil {
		return nil, err
	}
	return &p, nil
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

func compile(field, pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, invalid(field, "%v", err)
	}
	return re, nil
}

func (p *Platform) compile() error {
	if p.Name == "" {
		return invalid("name", "is empty")
	}
	if len(p.Levels) == 0 {
		return invalid("privilege_levels", "give at least one level")
	}
	seen := map[string]bool{}
	for i, l := range p.Levels {
		field := fmt.Sprintf("privilege_levels[%d]", i)
		if l == nil || l.Name == "" {
			return invalid(field+".name", "is empty")
		}
		if seen[l.Name] {
			return invalid(field+".name", "%q is defined twice", l.Name)
		}
		if l.Pattern == "" {
			return invalid(field+".pattern", "is empty")
		}
		re, err := compile(field+".pattern", l.Pattern)
		if err != nil {
			return err
		}
		l.re = re
		if l.Previous != "" && !seen[l.Previous] {
			return invalid(field+".previous", "%q is not a level defined before %q", l.Previous, l.Name)
		}
		if l.Previous == "" && (l.Escalate != "" || l.Deescalate != "") {
			return invalid(field+".previous", "is empty but escalate/deescalate are set")
		}
		seen[l.Name] = true
	}
	if p.DefaultLevel == "" {
		p.DefaultLevel = p.Levels[0].Name
	}
	if !seen[p.DefaultLevel] {
		return invalid("default_level", "%q is not a privilege level", p.DefaultLevel)
	}
	if p.ConfigLevel != "" && !seen[p.ConfigLevel] {
		return invalid("config_level", "%q is not a privilege level", p.ConfigLevel)
	}
	var err error
	if p.Pager.Pattern != "" {
		if p.Pager.re, err = compile("pager.pattern", p.Pager.Pattern); err != nil {
			return err
		}
		if p.Pager.Answer == "" {
			return invalid("pager.answer", "is empty (the key that shows the next page, e.g. ' ')")
		}
	}
	if p.Confirm.Pattern != "" {
		if p.Confirm.re, err = compile("confirm.pattern", p.Confirm.Pattern); err != nil {
			return err
		}
		if p.Confirm.Answer == "" {
			return invalid("confirm.answer", "is empty (e.g. 'y')")
		}
	}
	if p.Commit.Success != "" {
		if p.Commit.Command == "" {
			return invalid("commit.command", "is empty but commit.success is set")
		}
		if p.Commit.re, err = compile("commit.success", p.Commit.Success); err != nil {
			return err
		}
	}
	p.errors = nil
	for i, s := range p.ErrorPatterns {
		re, err := compile(fmt.Sprintf("error_patterns[%d]", i), s)
		if err != nil {
			return err
		}
		p.errors = append(p.errors, re)
	}
	p.secrets = nil
	for i, s := range p.SecretPatterns {
		field := fmt.Sprintf("secret_patterns[%d]", i)
		re, err := compile(field, s)
		if err != nil {
			return err
		}
		if re.NumSubexp() != 1 {
			return invalid(field, "%q has %d capturing groups, want exactly 1 (the secret)", s, re.NumSubexp())
		}
		p.secrets = append(p.secrets, re)
	}
	return nil
}

// Level returns the level called name, or nil.
func (p *Platform) Level(name string) *Level {
	i := slices.IndexFunc(p.Levels, func(l *Level) bool { return l.Name == name })
	if i < 0 {
		return nil
	}
	return p.Levels[i]
}

// LevelOf returns the level whose pattern matches prompt, or nil. Later
// (higher) levels are tried first, as their prompts are more specific.
func (p *Platform) LevelOf(prompt string) *Level {
	for i := len(p.Levels) - 1; i >= 0; i-- {
		if p.Levels[i].Match(prompt) {
			return p.Levels[i]
		}
	}
	return nil
}

// ErrorLine returns the first line of output that matches an error
// pattern, and whether there is one.
func (p *Platform) ErrorLine(output string) (string, bool) {
	for line := range strings.SplitSeq(output, "\n") {
		line = strings.TrimRight(line, " \r")
		for _, re := range p.errors {
			if re.MatchString(line) {
				return line, true
			}
		}
	}
	return "", false
}

// Mask replaces every secret that a secret pattern finds in s with "******".
func (p *Platform) Mask(s string) string {
	for _, re := range p.secrets {
		s = maskGroup(re, s)
	}
	return s
}

// maskGroup replaces capturing group 1 of every match of re in s.
func maskGroup(re *regexp.Regexp, s string) string {
	idx := re.FindAllStringSubmatchIndex(s, -1)
	if idx == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range idx {
		if m[2] < 0 {
			continue
		}
		b.WriteString(s[last:m[2]])
		b.WriteString("******")
		last = m[3]
	}
	b.WriteString(s[last:])
	return b.String()
}
