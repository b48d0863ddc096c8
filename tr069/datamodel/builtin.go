package datamodel

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed models/*.yaml
var builtinFS embed.FS

// Names of the built-in models.
const (
	// E8Gateway is a TR-098 China Telecom e8 gateway with X_CT-COM extensions.
	E8Gateway = "e8-gateway"
	// STBTR135 is a TR-135 iTV set-top box with X_CTC_IPTV extensions.
	STBTR135 = "stb-tr135"
)

// BuiltinNames lists the built-in models, sorted.
func BuiltinNames() []string {
	entries, _ := fs.ReadDir(builtinFS, "models")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}

// Builtin parses the built-in model name (E8Gateway, STBTR135) afresh:
// the caller may change the result. An unknown name gives ErrUnknownModel.
func Builtin(name string) (*Model, error) {
	f, err := builtinFS.Open("models/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: %q (have %s)", ErrUnknownModel, name, strings.Join(BuiltinNames(), ", "))
	}
	defer f.Close()
	m, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("datamodel: built-in model %s: %w", name, err)
	}
	return m, nil
}
