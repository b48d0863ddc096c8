package netnstest

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	name, err := newName()
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-s", "-c"} {
		m := leftoverName.FindStringSubmatch(name + suffix)
		if m == nil || m[1] != strconv.Itoa(os.Getpid()) {
			t.Errorf("%q: leftover pattern gives %q, want this pid", name+suffix, m)
		}
	}
	for _, other := range []string{"fa-lab-s", "fa-123-abcdef", "fa-123-abcdef-x", "xfa-1-abcdef-s", "fa-1-ABCDEF-s"} {
		if leftoverName.MatchString(other) {
			t.Errorf("%q matches the leftover pattern: cleanup could delete someone else's namespace", other)
		}
	}
	if !processAlive(os.Getpid()) {
		t.Error("processAlive(own pid) = false")
	}
}

func TestLinkShapesBothWays(t *testing.T) {
	skipUnlessShaped(t)
	l := NewLink(t, 20)
	for _, ns := range []Namespace{l.Server, l.Client} {
		out, err := ns.Command(t.Context(), "tc", "qdisc", "show", "dev", "veth0").CombinedOutput()
		if err != nil {
			t.Fatalf("tc in %s: %v: %s", ns, err, out)
		}
		if !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), "rate 20Mbit") {
			t.Errorf("%s veth0 qdisc %q, want tbf rate 20Mbit", ns, out)
		}
	}
	out, err := l.Client.Command(t.Context(), "ip", "-o", "addr", "show", "dev", "veth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ClientAddr.String()+"/24") {
		t.Errorf("client address: %q %v", out, err)
	}
}
