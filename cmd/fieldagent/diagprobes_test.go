package main

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"fieldagent/diagnostics/speedtest"
)

// dnsServer answers A queries for www.example.cn on loopback and NXDOMAIN
// for everything else.
func dnsServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Name == "www.example.cn." {
			rr, _ := dns.NewRR("www.example.cn. 60 IN A 198.51.100.7")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDiagDNSPrintsAnswers(t *testing.T) {
	addr := dnsServer(t)
	f, out, _, _ := newTestFactory(t)
	if err := execute(t, f, "diag", "dns", addr, "--name", "www.example.cn"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PASS", "dns_lookup_ms", "198.51.100.7"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	f, out, _, _ = newTestFactory(t)
	err := execute(t, f, "diag", "dns", addr, "--name", "nosuch.example.cn", "--output", "json")
	if exitCode(err) != exitCheckFailed {
		t.Fatalf("NXDOMAIN: exit %d (%v), want 1", exitCode(err), err)
	}
	var res struct {
		Success bool   `json:"success"`
		Err     string `json:"error"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Success || !strings.Contains(res.Err, "NXDOMAIN") {
		t.Errorf("json %s (%v), want a failure naming NXDOMAIN", out, err)
	}
}

func TestDiagTraceLoopback(t *testing.T) {
	f, out, _, _ := newTestFactory(t)
	start := time.Now()
	if err := execute(t, f, "diag", "trace", "127.0.0.1", "--output", "json"); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Hops []struct {
			TTL     int    `json:"ttl"`
			Addr    string `json:"addr"`
			Reached bool   `json:"reached"`
		} `json:"hops"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Hops) != 1 || res.Hops[0].Addr != "127.0.0.1" || !res.Hops[0].Reached {
		t.Errorf("hops %+v, want one hop reaching 127.0.0.1", res.Hops)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("a one-hop trace took %v", time.Since(start))
	}
}

// diag speed shows its live figure only on a terminal.
func TestDiagSpeedProgressOnTerminal(t *testing.T) {
	speed := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	defer speed.Close()
	for _, term := range []bool{true, false} {
		f, out, errOut, _ := newTestFactory(t)
		f.IO.ErrIsTerminal = term
		if err := execute(t, f, "diag", "speed", speed.URL+"/", "--duration", "600ms"); err != nil {
			t.Fatal(err)
		}
		live := strings.Contains(errOut.String(), "\r  download")
		if live != term {
			t.Errorf("terminal=%v: live progress %v:\n%q", term, live, errOut.String())
		}
		if !strings.Contains(out.String(), "download_mbps") {
			t.Errorf("no result on stdout:\n%s", out)
		}
	}
}

// diag speed --protocol ndt7 measures against the speed server's ndt7
// endpoints; an unknown protocol is a usage error.
func TestDiagSpeedNDT7(t *testing.T) {
	speed := httptest.NewServer(speedtest.NewServer(speedtest.ServerOptions{}))
	defer speed.Close()
	f, out, _, _ := newTestFactory(t)
	if err := execute(t, f, "diag", "speed", speed.URL+"/", "--protocol", "ndt7", "--upload", "--duration", "500ms", "--output", "json"); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Probe    string `json:"probe"`
		Readings []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
		} `json:"readings"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	up := 0.0
	for _, r := range res.Readings {
		if r.Name == "upload_mbps" {
			up = r.Value
		}
	}
	if res.Probe != "ndt7_upload" || up <= 0 {
		t.Errorf("probe %q upload %v Mbit/s", res.Probe, up)
	}
	g, _, _, _ := newTestFactory(t)
	if err := execute(t, g, "diag", "speed", speed.URL+"/", "--protocol", "ookla"); exitCode(err) != exitUsage {
		t.Errorf("--protocol ookla: exit %d (%v)", exitCode(err), err)
	}
}
