package testlab_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the arrows pointing one way: libraries (agent,
// drivers, tr069, diagnostics) never import cmd or testlab; testlab never
// imports cmd. Tests may.
func TestImportDirection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not on PATH")
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "fieldagent/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	n := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		for _, imp := range p.Imports {
			lib := !strings.HasPrefix(p.ImportPath, "fieldagent/cmd") && !strings.HasPrefix(p.ImportPath, "fieldagent/testlab")
			switch {
			case strings.HasPrefix(imp, "fieldagent/cmd"):
				t.Errorf("%s imports %s: nothing imports a command", p.ImportPath, imp)
			case lib && strings.HasPrefix(imp, "fieldagent/testlab"):
				t.Errorf("%s imports %s: libraries never import testlab", p.ImportPath, imp)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("go list saw only %d packages", n)
	}
}
