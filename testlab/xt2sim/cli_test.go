package xt2sim

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"fieldagent/agent/secret"
)

func TestPromptsPerView(t *testing.T) {
	l := startLab(t, nil)
	tm := dialTerm(t, l.r)
	steps := []struct{ line, prompt, want string }{
		{"system-view", "[XT2]", "Enter system view, return user view with return command.\r\n"},
		{"interface Dialer1", "[XT2-Dialer1]", ""},
		{"quit", "[XT2]", ""},
		{"interface GigabitEthernet0/0/1", "[XT2-GigabitEthernet0/0/1]", ""},
		{"quit", "[XT2]", ""},
		{"ip pool lan", "[XT2-ip-pool-lan]", ""},
		{"return", "<XT2>", ""},
		{"system-view", "[XT2]", ""},
		{"acl number 3000", "[XT2-acl-adv-3000]", ""},
		{"return", "<XT2>", ""},
	}
	for _, s := range steps {
		got := tm.cmd(s.line, s.prompt)
		if s.want != "" && got != s.want {
			t.Errorf("%s: output %q, want %q", s.line, got, s.want)
		}
	}
}

func TestEchoAndEditing(t *testing.T) {
	l := startLab(t, nil)
	tm := dialTerm(t, l.r)
	// A typo corrected with backspace, and "\n" instead of "\r".
	tm.send("display bbmx\x7fs binding\n")
	tm.expect("display bbmx\b \bs binding\r\n")
	if got := tm.expect("<XT2>"); got != "BBMS binding: unbound\r\n" {
		t.Fatalf("output %q", got)
	}
	// "\r\n" counts as one Enter: one prompt, not two.
	tm.send("display bbms binding\r\n")
	tm.expect("<XT2>")
	tm.send("display bbms binding\r")
	got := tm.expect("<XT2>")
	if strings.Contains(got, "<XT2>") || !strings.HasPrefix(got, "display bbms binding\r\n") {
		t.Fatalf("output %q", got)
	}
}

func TestErrors(t *testing.T) {
	l := startLab(t, nil)
	tm := dialTerm(t, l.r)
	tests := []struct {
		name, prompt, line string
		want               string
	}{
		{"unknown command", "<XT2>", "foo bar",
			"     ^\r\nError: Unrecognized command found at '^' position.\r\n"},
		{"unknown display", "<XT2>", "display foo",
			"             ^\r\nError: Unrecognized command found at '^' position.\r\n"},
		{"config command in user view", "<XT2>", "sysname X",
			"     ^\r\nError: Unrecognized command found at '^' position.\r\n"},
		{"enter system view", "[XT2]", "system-view", "Enter system view, return user view with return command.\r\n"},
		{"no such interface", "[XT2]", "interface GigabitEthernet0/0/9", "Error: The interface does not exist.\r\n"},
		{"not an interface name", "[XT2]", "interface Foo1",
			"               ^\r\nError: Wrong parameter found at '^' position.\r\n"},
		{"display of a missing interface", "[XT2]", "display interface Dialer7", "Error: The interface does not exist.\r\n"},
		{"wrong parameter", "[XT2]", "ip route-static 0.0.0.0 0.0.0.x Dialer1",
			"                             ^\r\nError: Wrong parameter found at '^' position.\r\n"},
		{"enter dialer", "[XT2-Dialer1]", "interface Dialer1", ""},
		{"incomplete", "[XT2-Dialer1]", "dialer user",
			"                        ^\r\nError: Incomplete command found at '^' position.\r\n"},
		{"too many", "[XT2-Dialer1]", "dialer user a b",
			"                           ^\r\nError: Too many parameters found at '^' position.\r\n"},
		{"undo of nothing", "[XT2-Dialer1]", "undo dialer user", "Error: The configuration does not exist.\r\n"},
		{"undo of a wrong parameter", "[XT2-Dialer1]", "undo dialer bundle x",
			"                                ^\r\nError: Wrong parameter found at '^' position.\r\n"},
		{"ambiguous abbreviation", "[XT2-Dialer1]", "d",
			"             ^\r\nError: Ambiguous command found at '^' position.\r\n"},
		{"abbreviated keywords", "[XT2-Dialer1]", "dia us abbrev", ""},
		{"abbreviated display", "[XT2-Dialer1]", "dis conf cand",
			"#\r\ninterface Dialer1\r\n dialer user abbrev\r\n#\r\n"},
		{"pool command in dialer view", "[XT2-Dialer1]", "gateway-list 192.168.1.1",
			"             ^\r\nError: Unrecognized command found at '^' position.\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tm.cmd(tc.line, tc.prompt); got != tc.want {
				t.Errorf("output\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	l := startLab(t, nil)
	tm := dialTerm(t, l.r)
	tm.send("display interface\r")
	first := tm.expect(morePrompt)
	if n := strings.Count(first, "\r\n"); n != pageLen+1 { // echo line + one page
		t.Fatalf("first page has %d lines, want %d:\n%s", n-1, pageLen, first)
	}
	tm.send(" ")
	tm.expect("\r" + strings.Repeat(" ", len(morePrompt)) + "\r")
	tm.expect(morePrompt)
	tm.send("q")
	tm.expect("\r" + strings.Repeat(" ", len(morePrompt)) + "\r")
	if got := tm.expect("<XT2>"); got != "" {
		t.Fatalf("output after q: %q", got)
	}

	got := tm.cmd("screen-length 0 temporary", "<XT2>")
	if got != "Info: The configuration takes effect on the current user terminal interface only.\r\n" {
		t.Fatalf("screen-length: %q", got)
	}
	all := tm.cmd("display interface", "<XT2>")
	if strings.Contains(all, "More") || !strings.Contains(all, "Dialer1 current state : DOWN") {
		t.Fatalf("unpaged output:\n%s", all)
	}
}

func TestCommitAbortSave(t *testing.T) {
	l := startLab(t, nil)
	tm := dialTerm(t, l.r)
	tm.cmd("system-view", "[XT2]")
	tm.cmd("sysname LAB", "[XT2]")
	if got := tm.cmd("display configuration candidate", "[XT2]"); !strings.Contains(got, " sysname LAB\r\n") {
		t.Fatalf("candidate:\n%s", got)
	}
	if strings.Contains(l.r.Running(), "sysname LAB") {
		t.Fatal("candidate leaked into running before commit")
	}
	if got := tm.cmd("abort", "[XT2]"); !strings.HasPrefix(got, "Info:") {
		t.Fatalf("abort: %q", got)
	}
	if got := tm.cmd("display configuration candidate", "[XT2]"); !strings.Contains(got, "no uncommitted") {
		t.Fatalf("candidate after abort:\n%s", got)
	}
	tm.cmd("sysname LAB", "[XT2]")
	if got := tm.cmd("commit", "[LAB]"); got != "Info: Commit succeeded.\r\n" {
		t.Fatalf("commit: %q", got)
	}
	if !strings.Contains(l.r.Running(), " sysname LAB") || strings.Contains(l.r.Startup(), "sysname LAB") {
		t.Fatalf("running:\n%s\nstartup:\n%s", l.r.Running(), l.r.Startup())
	}
	// undo removes the line, through the candidate too.
	tm.cmd("interface Dialer1", "[LAB-Dialer1]")
	tm.cmd("nat outbound 3000", "[LAB-Dialer1]")
	tm.cmd("commit", "[LAB-Dialer1]")
	if !strings.Contains(l.r.Running(), "interface Dialer1\n nat outbound 3000") {
		t.Fatalf("running:\n%s", l.r.Running())
	}
	tm.cmd("undo nat outbound", "[LAB-Dialer1]")
	if got := tm.cmd("display this", "[LAB-Dialer1]"); strings.Contains(got, "nat outbound") {
		t.Fatalf("display this after undo:\n%s", got)
	}
	tm.cmd("commit", "[LAB-Dialer1]")
	if strings.Contains(l.r.Running(), "nat outbound") {
		t.Fatalf("undo not committed:\n%s", l.r.Running())
	}
	tm.cmd("return", "<LAB>")

	tm.send("save\r")
	tm.expect("Are you sure to save the configuration? [Y/N]:")
	tm.send("n\r")
	tm.expect("<LAB>")
	if strings.Contains(l.r.Startup(), "sysname LAB") {
		t.Fatal("save answered n wrote the startup config")
	}
	tm.send("save\r")
	tm.expect("[Y/N]:")
	tm.send("y\r")
	if got := tm.expect("<LAB>"); !strings.Contains(got, "Info: Save the configuration successfully.") {
		t.Fatalf("save: %q", got)
	}
	if l.r.Startup() != l.r.Running() {
		t.Fatalf("startup differs from running after save:\n%s", l.r.Startup())
	}
}

func TestDroppedSessionDiscardsCandidate(t *testing.T) {
	l := startLab(t, nil)
	l.r.DropNextSessionAfter(3)
	tm := dialTerm(t, l.r)
	tm.cmd("system-view", "[XT2]")
	tm.cmd("interface Dialer1", "[XT2-Dialer1]")
	tm.send("dialer user " + pppUser + "\r")
	<-tm.done
	if strings.Contains(l.r.Running(), "Dialer1") {
		t.Fatalf("dropped session's candidate reached running:\n%s", l.r.Running())
	}
	// The fault fires once: the next session works, and starts with an
	// empty candidate.
	tm2 := dialTerm(t, l.r)
	tm2.cmd("system-view", "[XT2]")
	tm2.cmd("interface Dialer1", "[XT2-Dialer1]")
	tm2.cmd("dialer user x", "[XT2-Dialer1]")
	tm2.cmd("dialer bundle 1", "[XT2-Dialer1]")
	if got := tm2.cmd("display configuration candidate", "[XT2-Dialer1]"); got != "#\r\ninterface Dialer1\r\n dialer user x\r\n dialer bundle 1\r\n#\r\n" {
		t.Fatalf("candidate %q", got)
	}
}

func TestPublicKeyLoginAndExec(t *testing.T) {
	key := newKey(t)
	l := startLab(t, func(c *Config) { c.AuthorizedKeys = []ssh.PublicKey{key.PublicKey()} })
	cc := &ssh.ClientConfig{User: "ops", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}, HostKeyCallback: ssh.FixedHostKey(l.r.HostKey())}
	client, err := ssh.Dial("tcp", l.r.SSHAddr(), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("display version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"XT-2 Business Router, Software Version V300R001C10SPC200\r\n", "Serial Number: XT2A1B2C3D4\r\n", "Uptime is 0 weeks, 0 days, 0 hours, 0 minutes\r\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("display version lacks %q:\n%s", want, out)
		}
	}
	sess, err = client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Run("display nothing"); err == nil {
		t.Fatal("a failing exec command exited 0")
	}

	// A wrong password is refused.
	bad := &ssh.ClientConfig{User: testUser, Auth: []ssh.AuthMethod{ssh.Password("nope")}, HostKeyCallback: ssh.FixedHostKey(l.r.HostKey())}
	if c, err := ssh.Dial("tcp", l.r.SSHAddr(), bad); err == nil {
		c.Close()
		t.Fatal("wrong password accepted")
	}
}

func TestStartRejectsConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no logins", Config{}},
		{"bad speed", Config{Users: map[string]secret.Secret{"a": secret.New("b")}, WANLink: WANLink{Speed: 10}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Start(t.Context(), tc.cfg); err == nil {
				t.Fatal("Start accepted the config")
			}
		})
	}
}
