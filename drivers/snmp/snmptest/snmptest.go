// Package snmptest starts a private net-snmp snmpd for tests: its own
// configuration and state directory, 127.0.0.1 and a free UDP port, a v2c
// community and a v3 authPriv user (SHA-256/AES), and any extra snmpd.conf
// lines (e.g. "pass" handlers that serve a device's private MIB). It is a
// test helper, like net/http/httptest: only tests import it.
package snmptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Options configure the agent. Zero fields take the defaults below.
type Options struct {
	Community string // default "fa-public"
	Location  string // default "Lab rack 7"
	Contact   string // default "noc@example.test"
	SysName   string // default "fa-test-agent"
	User      string // default "fa-user" (v3, SHA-256 + AES)
	AuthKey   string // default "authpass123"
	PrivKey   string // default "privpass123"
	// ReadWrite gives the community and the v3 user write access
	// (rwcommunity / rwuser) instead of read-only.
	ReadWrite bool
	// Extra lines are appended to snmpd.conf, e.g.
	// "pass .1.3.6.1.4.1.99999.2 /usr/bin/python3 /path/script.py".
	Extra []string
}

func (o Options) withDefaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Community, "fa-public")
	def(&o.Location, "Lab rack 7")
	def(&o.Contact, "noc@example.test")
	def(&o.SysName, "fa-test-agent")
	def(&o.User, "fa-user")
	def(&o.AuthKey, "authpass123")
	def(&o.PrivKey, "privpass123")
	return o
}

// Start runs snmpd, waits until it answers and stops it at cleanup. It
// returns the agent's "127.0.0.1:port". Without snmpd it skips the test.
func Start(t testing.TB, o Options) string {
	t.Helper()
	o = o.withDefaults()
	bin, err := exec.LookPath("snmpd")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/snmpd"); statErr != nil {
			t.Skip("snmpd not installed: run `make test-deps`")
		}
		bin = "/usr/sbin/snmpd"
	}
	// A port can be taken between choosing it and snmpd's bind: try again.
	var lastErr error
	for range 3 {
		addr, err := tryStart(t, bin, o)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatalf("start snmpd: %v", lastErr)
	return ""
}

// lockedBuffer collects the daemon's output for the failure message.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeUDPPort() (int, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

func tryStart(t testing.TB, bin string, o Options) (string, error) {
	dir := t.TempDir()
	persist := filepath.Join(dir, "persist")
	if err := os.Mkdir(persist, 0o700); err != nil {
		return "", err
	}
	conf := filepath.Join(dir, "snmpd.conf")
	// createUser is read from the main config by net-snmp 5.9; the
	// persistent directory (SNMP_PERSISTENT_DIR) keeps the agent's engine
	// ID and localized keys out of /var/lib/snmp.
	comm, user := "rocommunity", "rouser"
	if o.ReadWrite {
		comm, user = "rwcommunity", "rwuser"
	}
	text := fmt.Sprintf("%s %s 127.0.0.1\nsysLocation %s\nsysContact %s\nsysName %s\ncreateUser %s SHA-256 \"%s\" AES \"%s\"\n%s %s authpriv\n%s\n",
		comm, o.Community, o.Location, o.Contact, o.SysName, o.User, o.AuthKey, o.PrivKey, user, o.User, strings.Join(o.Extra, "\n"))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", err
	}
	port, err := freeUDPPort()
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	out := &lockedBuffer{}
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", conf, "-p", filepath.Join(dir, "snmpd.pid"), "udp:"+addr)
	cmd.Env = append(os.Environ(),
		"SNMP_PERSISTENT_DIR="+persist,
		"SNMPCONFPATH="+dir,
		"MIBS=", "MIBDIRS="+filepath.Join(dir, "no-mibs"), // no MIB loading noise
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second // do not wait for pipes held by leftover children
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		// Kill the whole process group, pass scripts included.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	// Poll until the agent answers sysName (bounded).
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: uint16(port), Community: o.Community, Version: gosnmp.Version2c, Timeout: 200 * time.Millisecond, Retries: 0}
	if err := g.Connect(); err != nil {
		stop()
		return "", err
	}
	defer g.Conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("snmpd exited early:\n%s", out.String())
		default:
		}
		if _, err := g.Get([]string{".1.3.6.1.2.1.1.5.0"}); err == nil {
			break
		} else if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("snmpd did not answer on %s: %w\n%s", addr, err, out.String())
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("snmpd output:\n%s", out.String())
		}
	})
	return addr, nil
}
