package xt2sim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestOpenSSHClient drives the CLI with a real OpenSSH client: key login,
// a forced PTY and the commands on stdin, as a technician's script would.
func TestOpenSSHClient(t *testing.T) {
	bin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("OpenSSH ssh is not installed: run `make test-deps` (apt-get install openssh-client)")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	l := startLab(t, func(c *Config) { c.AuthorizedKeys = []ssh.PublicKey{signer.PublicKey()} })
	host, port, _ := net.SplitHostPort(l.r.SSHAddr())
	args := []string{"-F", "/dev/null", "-tt", "-i", keyFile, "-p", port,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "ops@" + host}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(strings.Join([]string{
		"screen-length 0 temporary",
		"system-view",
		"interface Dialer1",
		"dialer user " + pppUser,
		"quit",
		"sysname BRANCH",
		"bogus",
		"commit",
		"display current-configuration",
		"return",
		"quit",
	}, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	for _, want := range []string{
		"<XT2>screen-length 0 temporary\r\nInfo: The configuration takes effect",
		"[XT2]interface Dialer1\r\n[XT2-Dialer1]dialer user " + pppUser + "\r\n[XT2-Dialer1]quit\r\n[XT2]",
		"[XT2]bogus\r\n     ^\r\nError: Unrecognized command found at '^' position.\r\n",
		"[XT2]commit\r\nInfo: Commit succeeded.\r\n[BRANCH]",
		"interface Dialer1\r\n dialer user " + pppUser + "\r\n",
		"[BRANCH]return\r\n<BRANCH>quit\r\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ssh session lacks %q:\n%s", want, out)
		}
	}

	// exec of a single command, as scripts use it.
	cmd = exec.CommandContext(ctx, bin, append(args, "display bbms binding")...)
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "BBMS binding: unbound\r\n") {
		t.Fatalf("ssh exec: %v\n%s", err, out)
	}
}
