package xt2sim

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestPingCommand(t *testing.T) {
	l := startLab(t, nil)
	tm := dialTerm(t, l.r)
	out := tm.cmd("ping -c 3 127.0.0.1", "<XT2>")
	for _, want := range []string{
		"  PING 127.0.0.1: 56  data bytes, press CTRL_C to break\r\n",
		"    Reply from 127.0.0.1: bytes=56 Sequence=3 ttl=64 time=",
		"  --- 127.0.0.1 ping statistics ---\r\n    3 packet(s) transmitted\r\n    3 packet(s) received\r\n    0.00% packet loss\r\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ping output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`round-trip min/avg/max = \d+/\d+/\d+ ms\r\n`).MatchString(out) {
		t.Errorf("no round-trip line:\n%s", out)
	}
	// Options in any order, abbreviated command, from system view.
	tm.cmd("system-view", "[XT2]")
	if out := tm.cmd("pi localhost -s 100 -c 1", "[XT2]"); !strings.Contains(out, "PING localhost: 100  data bytes") || !strings.Contains(out, "1 packet(s) received") {
		t.Errorf("ping from system view:\n%s", out)
	}
	tm.cmd("return", "<XT2>")

	for _, tc := range []struct{ line, want string }{
		{"ping no-such-host.invalid", "Error: The host name cannot be resolved.\r\n"},
		{"ping -c 0 127.0.0.1", "Error: Wrong parameter found at '^' position.\r\n"},
		{"ping -x 1 127.0.0.1", "Error: Wrong parameter found at '^' position.\r\n"},
		{"ping -c", "Error: Incomplete command found at '^' position.\r\n"},
		{"ping 127.0.0.1 127.0.0.2", "Error: Too many parameters found at '^' position.\r\n"},
	} {
		if out := tm.cmd(tc.line, "<XT2>"); !strings.HasSuffix(out, tc.want) {
			t.Errorf("%s: output %q, want it to end in %q", tc.line, out, tc.want)
		}
	}
}

func TestSpeedTestCommand(t *testing.T) {
	l := startLab(t, nil)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/file/200000" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(make([]byte, 200000))
	}))
	t.Cleanup(files.Close)
	tm := dialTerm(t, l.r)
	out := tm.cmd("speed-test download "+files.URL+"/file/200000 connections 2", "<XT2>")
	for _, want := range []string{
		"  Speed test: download " + files.URL + "/file/200000, 2 connection(s)\r\n",
		"  Bytes received: 400000\r\n",
		"  Result: success\r\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("speed test output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`  Throughput: \d+\.\d\d Mbit/s\r\n`).MatchString(out) {
		t.Errorf("no throughput line:\n%s", out)
	}
	for _, tc := range []struct{ line, want string }{
		{"speed-test download " + files.URL + "/nope", "  Result: failed (server answered HTTP 404 Not Found)\r\n"},
		{"speed-test download http://127.0.0.1:1/x", "  Result: failed (cannot connect to the server)\r\n"},
		{"speed-test download http://x.invalid/file/1", "Error: The host name cannot be resolved.\r\n"},
		{"speed-test download ftp://127.0.0.1/x", "Error: Only http:// and https:// URLs are supported.\r\n"},
		{"speed-test download " + files.URL + " connections 9", "Error: Wrong parameter found at '^' position.\r\n"},
		{"speed-test upload x", "Error: Unrecognized command found at '^' position.\r\n"},
	} {
		if out := tm.cmd(tc.line, "<XT2>"); !strings.HasSuffix(out, tc.want) {
			t.Errorf("%s: output %q, want it to end in %q", tc.line, out, tc.want)
		}
	}
}
