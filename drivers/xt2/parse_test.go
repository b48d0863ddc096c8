package xt2

import (
	"slices"
	"testing"
)

const runningFactory = "#\n sysname XT2\n#\ninterface GigabitEthernet0/0/0\n#\ninterface GigabitEthernet0/0/1\n ip address 192.168.1.1 255.255.255.0\n#\nreturn\n"

const runningDialer = "#\n sysname XT2\n bbms bind customer 1\n#\nacl number 3000\n rule 5 permit source 192.168.1.0 0.0.0.255\n#\n" +
	"interface GigabitEthernet0/0/0\n pppoe-client dial-bundle-number 1\n#\ninterface GigabitEthernet0/0/1\n ip address 192.168.1.1 255.255.255.0\n#\n" +
	"interface Dialer1\n dialer user u\n ppp chap password cipher %^%#abc%^%#\n#\nip route-static 0.0.0.0 0.0.0.0 Dialer1\n#\nreturn\n"

func TestRestoreLines(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after string
		want          []string
		wantErr       bool
	}{
		{"nothing changed", runningFactory, runningFactory, nil, false},
		{"added internet", runningFactory, runningDialer, []string{
			"undo bbms bind customer 1", "undo ip route-static 0.0.0.0 0.0.0.0 Dialer1",
			"undo acl number 3000",
			"interface GigabitEthernet0/0/0", "undo pppoe-client dial-bundle-number 1", "quit",
			"undo interface Dialer1",
		}, false},
		{"removed internet", runningDialer, runningFactory, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := restoreLines(parseConfig(tc.before), parseConfig(tc.after))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr {
				// The replaced password cannot come back; the rest does.
				if !slices.Contains(got, "dialer user u") || slices.ContainsFunc(got, func(l string) bool { return l == "ppp chap password cipher %^%#abc%^%#" }) {
					t.Errorf("lines = %q", got)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("lines =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestParsers(t *testing.T) {
	v := parseVersion("XT-2 Business Router, Software Version V300R001C10SPC200\nSerial Number: XT2A1B2C3D4\nBOARD TYPE:          XT-2 (4GE LAN, 1GE WAN)\n")
	if v != (version{Model: "XT-2", Software: "V300R001C10SPC200", Serial: "XT2A1B2C3D4", Board: "XT-2 (4GE LAN, 1GE WAN)"}) {
		t.Errorf("parseVersion = %+v", v)
	}
	i := parseInterface("GigabitEthernet0/0/0 current state : UP\nLine protocol current state : UP\nSpeed : 100,  Loopback: NONE\nDuplex: FULL,  Negotiation: ENABLE\n")
	if i != (ifDetail{State: "UP", Protocol: "UP", SpeedMbps: 100, Duplex: "FULL"}) {
		t.Errorf("parseInterface = %+v", i)
	}
	for _, tc := range []struct {
		out  string
		want pppoeSummary
	}{
		{"PPPoE Client Session:\nID   Bundle  Dialer  Intf      Client-MAC     Server-MAC     State\n1    1       1       GE0/0/0   00e0fc123450   00e0fc6543a1   UP\nLast error: none\n", pppoeSummary{State: "UP"}},
		{"ID   Bundle  Dialer  Intf      Client-MAC     Server-MAC     State\nLast error: 691 authentication failure\n", pppoeSummary{State: "IDLE", LastError: "691 authentication failure"}},
	} {
		if got := parsePPPoE(tc.out); got != tc.want {
			t.Errorf("parsePPPoE = %+v, want %+v", got, tc.want)
		}
	}
	if b := parseBBMS("BBMS binding: bound, customer 88001234, serial XT2A1B2C3D4\n"); b != (bbmsBinding{Bound: true, Customer: "88001234", Serial: "XT2A1B2C3D4"}) {
		t.Errorf("parseBBMS = %+v", b)
	}
	if b := parseBBMS("BBMS binding: unbound\nLast error: WAN is down: BBMS cannot be reached\n"); b.Bound || b.LastError == "" {
		t.Errorf("parseBBMS = %+v", b)
	}
	if m, w := masks(24); m != "255.255.255.0" || w != "0.0.0.255" {
		t.Errorf("masks(24) = %s %s", m, w)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(runningFactory)
	f.Add(runningDialer)
	f.Add(" x\nip route-static 1\n y\n#\n z")
	f.Fuzz(func(t *testing.T, s string) {
		c := parseConfig(s)
		if !c.equal(c) {
			t.Fatal("config not equal to itself")
		}
		if lines, _ := restoreLines(c, c); len(lines) != 0 {
			t.Fatalf("restore of an unchanged config sends %q", lines)
		}
		_ = parsePPPoE(s)
		_ = parseBBMS(s)
		_ = parseIfBrief(s)
		_ = parseVersion(s)
	})
}
