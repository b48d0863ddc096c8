package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"fieldagent/drivers"
	"fieldagent/testlab"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// device identify starts its own ACS, waits for the lab gateway's Inform,
// picks the e8 driver from what it informed and prints the identity.
func TestDeviceIdentify(t *testing.T) {
	f, out, errOut, _ := newTestFactory(t)
	if _, err := runWithLab(t, f, "device", "identify", "--output", "json"); err != nil {
		t.Fatalf("identify: %v\n%s", err, errOut)
	}
	var id drivers.Identity
	if err := json.Unmarshal(out.Bytes(), &id); err != nil {
		t.Fatalf("output is not one JSON identity: %v\n%s", err, out)
	}
	if id.Kind != drivers.KindE8 || id.Serial != testlab.SampleGatewaySN || id.Class != "e8-C" || id.Access != "gpon" {
		t.Errorf("identity %+v", id)
	}
}

// With nothing informing, identify fails with exit status 3 and says what
// to check.
func TestDeviceIdentifyNoInform(t *testing.T) {
	f, _, _, _ := newTestFactory(t)
	f.Env = append(f.Env, "FIELDAGENT_ACS_LISTEN="+freeAddr(t), "FIELDAGENT_WORKFLOW_INFORM_TIMEOUT=200ms")
	err := execute(t, f, "device", "identify")
	if code := exitCode(err); code != exitUnreachable {
		t.Fatalf("exit %d (%v), want %d", code, err, exitUnreachable)
	}
	if !strings.Contains(err.Error(), "no Inform within 200ms") || !strings.Contains(err.Error(), "ACS URL") {
		t.Errorf("error does not say what to check: %v", err)
	}
}
