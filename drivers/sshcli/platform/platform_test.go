package platform

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuiltins(t *testing.T) {
	if got := strings.Join(Names(), ","); got != "vrp,xt2" {
		t.Fatalf("Names = %s, want vrp,xt2", got)
	}
	for _, name := range Names() {
		if _, err := Get(name); err != nil {
			t.Errorf("Get(%q): %v", name, err)
		}
	}
	if _, err := Get("ios"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "vrp, xt2") {
		t.Errorf("Get(ios) = %v, want ErrUnknown listing the platforms", err)
	}
}

func TestXT2Levels(t *testing.T) {
	p, err := Get("xt2")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ prompt, want string }{
		{"<XT2>", "user"},
		{"<branch-7.a>", "user"},
		{"[XT2]", "system"},
		{"[XT2-Dialer1]", "view"},
		{"[XT2-GigabitEthernet0/0/1]", "view"},
		{"[XT2-ip-pool-lan]", "view"},
		{"[XT2-acl-adv-3000]", "view"},
		{"XT2#", ""},
		{"  ---- More ----", ""},
	}
	for _, tc := range tests {
		got := ""
		if l := p.LevelOf(tc.prompt); l != nil {
			got = l.Name
		}
		if got != tc.want {
			t.Errorf("LevelOf(%q) = %q, want %q", tc.prompt, got, tc.want)
		}
	}
}

func TestErrorLineAndMask(t *testing.T) {
	p, err := Get("xt2")
	if err != nil {
		t.Fatal(err)
	}
	out := "display foo\n              ^\nError: Unrecognized command found at '^' position.\n"
	if line, ok := p.ErrorLine(out); !ok || line != "Error: Unrecognized command found at '^' position." {
		t.Errorf("ErrorLine = %q, %v", line, ok)
	}
	if line, ok := p.ErrorLine("Warning: The password is weak.\nInfo: done\n"); ok {
		t.Errorf("Warning line reported as error %q", line)
	}
	for in, want := range map[string]string{
		"ppp chap password cipher S3cr3t!":                   "ppp chap password cipher ******",
		"ppp pap local-user u1 password cipher S3cr3t! next": "ppp pap local-user u1 password cipher ****** next",
		"local-user admin password simple abc":               "local-user admin password simple ******",
		"display version":                                    "display version",
	} {
		if got := p.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInvalid(t *testing.T) {
	want := map[string]string{
		"invalid-no-name.yaml":          "invalid platform definition: name: is empty",
		"invalid-no-levels.yaml":        "invalid platform definition: privilege_levels: give at least one level",
		"invalid-bad-prompt.yaml":       "invalid platform definition: privilege_levels[0].pattern: error parsing regexp: missing closing ): `^<(\\w+>$`",
		"invalid-unknown-previous.yaml": `invalid platform definition: privilege_levels[0].previous: "user" is not a level defined before "system"`,
		"invalid-duplicate-level.yaml":  `invalid platform definition: privilege_levels[1].name: "user" is defined twice`,
		"invalid-default-level.yaml":    `invalid platform definition: default_level: "enable" is not a privilege level`,
		"invalid-pager-answer.yaml":     "invalid platform definition: pager.answer: is empty (the key that shows the next page, e.g. ' ')",
		"invalid-secret-group.yaml":     `invalid platform definition: secret_patterns[0]: "cipher \\S+" has 0 capturing groups, want exactly 1 (the secret)`,
		"invalid-error-pattern.yaml":    "invalid platform definition: error_patterns[1]: error parsing regexp: missing closing ]: `[unclosed`",
		"invalid-unknown-field.yaml":    "invalid platform definition: yaml: unmarshal errors:\n  line 2: field prompt not found in type platform.Platform",
		"invalid-commit.yaml":           "invalid platform definition: commit.command: is empty but commit.success is set",
	}
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	if len(files) != len(want) {
		t.Errorf("%d invalid files, %d expected errors", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load = %v, want ErrInvalid", err)
			}
			if w := f + ": " + want[filepath.Base(f)]; err.Error() != w {
				t.Errorf("error =\n%s\nwant\n%s", err, w)
			}
		})
	}
}

func TestLoadBuiltinFile(t *testing.T) {
	dir := t.TempDir()
	data, _ := builtin.ReadFile("platforms/xt2.yaml")
	f := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(f)
	if err != nil || p.Name != "xt2" || p.Commit.Command != "commit" {
		t.Fatalf("Load = %+v, %v", p, err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	files = append(files, "platforms/xt2.yaml", "platforms/vrp.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			data, _ = builtin.ReadFile(name)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		_ = p.Mask("password cipher x")
		_, _ = p.ErrorLine("Error: x")
		_ = p.LevelOf("<X>")
	})
}
