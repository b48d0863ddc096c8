package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const value = "hunter2-ppp"

func TestNeverPrints(t *testing.T) {
	s := New(value)
	type holder struct {
		Password Secret `json:"password"`
		Ptr      *Secret
	}
	h := holder{Password: s, Ptr: &s}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "pw", s, "holder", h)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "pw", s, "holder", h)
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		s.String(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", h, h, h), string(js), logs.String(),
	}
	for _, o := range outputs {
		if strings.Contains(o, value) {
			t.Errorf("secret printed: %s", o)
		}
	}
	if !strings.Contains(string(js), Redacted) {
		t.Errorf("JSON %s does not show the redaction", js)
	}
	if s.Reveal() != value {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FA_SECRET_TEST", "from-env")
	cases := []struct {
		in, want string
		err      bool
	}{
		{"inline", "inline", false},
		{"env:FA_SECRET_TEST", "from-env", false},
		{"file:" + file, "from-file", false},
		{"env:FA_SECRET_TEST_UNSET", "", true},
		{"file:" + filepath.Join(dir, "missing"), "", true},
	}
	for _, tc := range cases {
		s, err := Parse(tc.in)
		if tc.err {
			if !errors.Is(err, ErrUnresolved) {
				t.Errorf("Parse(%q) err = %v, want ErrUnresolved", tc.in, err)
			}
			continue
		}
		if err != nil || s.Reveal() != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, s.Reveal(), err, tc.want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var s Secret
	if err := json.Unmarshal([]byte(`"abc"`), &s); err != nil || s.Reveal() != "abc" {
		t.Fatalf("unmarshal = %q, %v", s.Reveal(), err)
	}
	if err := json.Unmarshal([]byte(`"******"`), &s); err != nil || !s.IsZero() {
		t.Errorf("a redacted value read back as %q, want empty", s.Reveal())
	}
	if err := json.Unmarshal([]byte(`12`), &s); err == nil {
		t.Error("a number was accepted as a secret")
	}
	if New("").String() != "" {
		t.Error("empty secret should print empty, so that a missing credential shows")
	}
}

func TestHint(t *testing.T) {
	for in, want := range map[string]string{
		"ad02158812345": "ad…45 (13)",
		"user":          "… (4)",
		"":              "… (0)",
		"张伟的宽带账号123":    "张伟…23 (10)",
	} {
		if got := Hint(in); got != want {
			t.Errorf("Hint(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Hint("ad02158812345"); strings.Contains(got, "0215881") {
		t.Errorf("Hint shows the middle of the name: %q", got)
	}
}
