package snmp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"

	"fieldagent/agent/secret"
)

func TestTargetValidation(t *testing.T) {
	good3 := Target{Addr: "192.0.2.1:161", Version: V3, User: "u", AuthKey: secret.New("authkey12"), PrivKey: secret.New("privkey12")}
	tests := []struct {
		name    string
		mod     func(t *Target)
		base    Target
		wantErr string // substring; "" means valid
	}{
		{"v2c ok", nil, Target{Addr: "192.0.2.1:161", Version: V2c, Community: secret.New("c")}, ""},
		{"bare host gets port 161", nil, Target{Addr: "192.0.2.1", Version: V2c, Community: secret.New("c")}, ""},
		{"bare ipv6", nil, Target{Addr: "2001:db8::1", Version: V2c, Community: secret.New("c")}, ""},
		{"v3 ok with defaults", nil, good3, ""},
		{"v3 dashed names", func(t *Target) { t.AuthProtocol, t.PrivProtocol = "sha-512", "aes-256" }, good3, ""},
		{"empty addr", func(t *Target) { t.Addr = "" }, good3, "address is empty"},
		{"bad port", func(t *Target) { t.Addr = "h:99999" }, good3, "not host:port"},
		{"zero version", func(t *Target) { t.Version = 0 }, good3, "use V2c or V3"},
		{"v2c no community", nil, Target{Addr: "h:161", Version: V2c}, "needs a community"},
		{"v3 no user", func(t *Target) { t.User = "" }, good3, "needs a user"},
		{"v3 short auth key", func(t *Target) { t.AuthKey = secret.New("short") }, good3, "auth key must be at least 8"},
		{"v3 short priv key", func(t *Target) { t.PrivKey = secret.New("short") }, good3, "priv key must be at least 8"},
		{"v3 unknown auth", func(t *Target) { t.AuthProtocol = "SHA3" }, good3, `auth protocol "SHA3"`},
		{"v3 unknown priv", func(t *Target) { t.PrivProtocol = "3DES" }, good3, `priv protocol "3DES"`},
		{"negative retries", func(t *Target) { t.Retries = -1 }, good3, "retries -1"},
		{"negative timeout", func(t *Target) { t.Timeout = -1 }, good3, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.base
			if tc.mod != nil {
				tc.mod(&tg)
			}
			g, err := tg.session()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("session: %v", err)
				}
				if g.Timeout != DefaultTimeout || g.Port == 0 {
					t.Errorf("defaults not applied: timeout %s port %d", g.Timeout, g.Port)
				}
				return
			}
			if !errors.Is(err, ErrInvalidTarget) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("session error = %v, want ErrInvalidTarget containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "authkey12") || strings.Contains(err.Error(), "privkey12") {
				t.Errorf("error reveals a key: %v", err)
			}
		})
	}
}

func TestDialInvalidTarget(t *testing.T) {
	_, err := Dial(context.Background(), Target{Addr: "127.0.0.1:161"}, nil)
	if !errors.Is(err, ErrInvalidTarget) {
		t.Fatalf("Dial error = %v, want ErrInvalidTarget", err)
	}
}

func TestWeak(t *testing.T) {
	tests := []struct {
		name string
		t    Target
		want bool
	}{
		{"v3 defaults", Target{Version: V3}, false},
		{"v3 SHA256 AES", Target{Version: V3, AuthProtocol: SHA256, PrivProtocol: AES}, false},
		{"v3 SHA512 AES256", Target{Version: V3, AuthProtocol: SHA512, PrivProtocol: AES256}, false},
		{"v3 SHA AES", Target{Version: V3, AuthProtocol: SHA, PrivProtocol: AES}, false},
		{"v3 MD5", Target{Version: V3, AuthProtocol: MD5, PrivProtocol: AES}, true},
		{"v3 md5 lower case", Target{Version: V3, AuthProtocol: "md5"}, true},
		{"v3 DES", Target{Version: V3, AuthProtocol: SHA256, PrivProtocol: DES}, true},
		{"v2c", Target{Version: V2c}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.t.Weak(); got != tc.want {
				t.Errorf("Weak() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFromPDUAndString(t *testing.T) {
	tests := []struct {
		name     string
		pdu      gosnmp.SnmpPDU
		wantType string
		wantRaw  any
		wantStr  string
		wantU64  uint64
		wantOK   bool
	}{
		{"octet string text", gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.OctetString, Value: []byte("router-1")}, "OctetString", []byte("router-1"), "router-1", 0, false},
		{"octet string trailing NUL", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.OctetString, Value: []byte("abc\x00")}, "OctetString", []byte("abc\x00"), "abc", 0, false},
		{"octet string MAC", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.OctetString, Value: []byte{0x00, 0x1a, 0x2b, 0xff, 0x10, 0x01}}, "OctetString", []byte{0x00, 0x1a, 0x2b, 0xff, 0x10, 0x01}, "00:1a:2b:ff:10:01", 0, false},
		{"integer negative", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.Integer, Value: -5}, "Integer", int64(-5), "-5", 0, false},
		{"integer positive", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.Integer, Value: 7}, "Integer", int64(7), "7", 7, true},
		{"counter32", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.Counter32, Value: uint(4294967295)}, "Counter32", uint32(math.MaxUint32), "4294967295", math.MaxUint32, true},
		{"gauge32", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.Gauge32, Value: uint(1000)}, "Gauge32", uint32(1000), "1000", 1000, true},
		{"timeticks", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.TimeTicks, Value: uint32(12345)}, "TimeTicks", uint32(12345), "12345", 12345, true},
		{"counter64", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.Counter64, Value: uint64(math.MaxUint64)}, "Counter64", uint64(math.MaxUint64), "18446744073709551615", math.MaxUint64, true},
		{"oid without dot", gosnmp.SnmpPDU{Name: "1.3.6", Type: gosnmp.ObjectIdentifier, Value: "1.3.6.1.4.1.8072"}, "ObjectIdentifier", ".1.3.6.1.4.1.8072", ".1.3.6.1.4.1.8072", 0, false},
		{"ip address", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.IPAddress, Value: "192.0.2.7"}, "IPAddress", "192.0.2.7", "192.0.2.7", 0, false},
		{"no such object", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.NoSuchObject}, "NoSuchObject", nil, "NoSuchObject", 0, false},
		{"no such instance", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.NoSuchInstance}, "NoSuchInstance", nil, "NoSuchInstance", 0, false},
		{"opaque float", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.OpaqueFloat, Value: float32(1.5)}, "OpaqueFloat", float32(1.5), "1.5", 0, false},
		{"unknown type", gosnmp.SnmpPDU{Name: ".1.3", Type: gosnmp.Asn1BER(0x99)}, "Type(0x99)", nil, "Type(0x99)", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := fromPDU(tc.pdu)
			if v.Type != tc.wantType {
				t.Errorf("Type = %q, want %q", v.Type, tc.wantType)
			}
			if fmt.Sprintf("%T %v", v.Raw, v.Raw) != fmt.Sprintf("%T %v", tc.wantRaw, tc.wantRaw) {
				t.Errorf("Raw = %T %v, want %T %v", v.Raw, v.Raw, tc.wantRaw, tc.wantRaw)
			}
			if got := v.String(); got != tc.wantStr {
				t.Errorf("String() = %q, want %q", got, tc.wantStr)
			}
			n, ok := v.Uint64()
			if n != tc.wantU64 || ok != tc.wantOK {
				t.Errorf("Uint64() = %d, %v, want %d, %v", n, ok, tc.wantU64, tc.wantOK)
			}
			if !strings.HasPrefix(v.OID, ".") {
				t.Errorf("OID %q has no leading dot", v.OID)
			}
		})
	}
}

func TestParseOID(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.5.0", false},
		{".1.3.6.1", ".1.3.6.1", false},
		{".1.3.06", ".1.3.6", false},
		{".1.3.4294967295", ".1.3.4294967295", false},
		{"", "", true},
		{".", "", true},
		{"1", "", true},
		{"1..3", "", true},
		{"1.3.", "", true},
		{"1.3.4294967296", "", true},
		{"1.3.-1", "", true},
		{"1.3.+1", "", true},
		{"3.1", "", true},
		{"1.40", "", true},
		{"sysName.0", "", true},
		{"1.3.6.1 ", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			arcs, err := parseOID(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseOID(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if err == nil && formatOID(arcs) != tc.want {
				t.Errorf("parseOID(%q) = %s, want %s", tc.in, formatOID(arcs), tc.want)
			}
		})
	}
}

func FuzzParseOID(f *testing.F) {
	for _, s := range []string{"1.3.6.1.2.1.1.5.0", ".1.3.6.1", "", ".", "1..3", "1.3.4294967296", "2.999.1", "1.3.-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		arcs, err := parseOID(s)
		if err != nil {
			return
		}
		// Canonical form parses back to the same arcs.
		back, err := parseOID(formatOID(arcs))
		if err != nil || compareOID(arcs, back) != 0 {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
		if !hasPrefix(arcs, arcs[:1]) {
			t.Fatalf("%q is not in its own first arc", s)
		}
	})
}

func TestCompareOID(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{".1.3.6.1.2", ".1.3.6.1.10", -1}, // numeric, not string, order
		{".1.3.6.1", ".1.3.6.1.0", -1},
		{".1.3.6.1.2", ".1.3.6.1.2", 0},
		{".1.3.6.2", ".1.3.6.1.9", 1},
	}
	for _, tc := range tests {
		t.Run(tc.a+" vs "+tc.b, func(t *testing.T) {
			a, _ := parseOID(tc.a)
			b, _ := parseOID(tc.b)
			if got := compareOID(a, b); got != tc.want {
				t.Errorf("compareOID = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	c := &Client{target: Target{Addr: "192.0.2.1:161"}}
	tests := []struct {
		name    string
		status  gosnmp.SNMPError
		want    error
		wantOID bool
	}{
		{"no error", gosnmp.NoError, nil, false},
		{"noAccess", gosnmp.NoAccess, ErrNoAccess, true},
		{"authorizationError", gosnmp.AuthorizationError, ErrNoAccess, true},
		{"noSuchName (v1 style)", gosnmp.NoSuchName, ErrNoSuchObject, true},
		{"genErr", gosnmp.GenErr, ErrAgent, true},
		{"tooBig", gosnmp.TooBig, ErrAgent, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := &gosnmp.SnmpPacket{Error: tc.status, ErrorIndex: 1}
			err := c.statusError("get", pkt, []string{".1.3.6.1.2.1.1.5.0"})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.wantOID && !strings.Contains(err.Error(), ".1.3.6.1.2.1.1.5.0") {
				t.Errorf("err %q does not name the OID", err)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	v2 := &Client{target: Target{Addr: "192.0.2.1:161", Version: V2c, Community: secret.New("topsecret")}}
	v3 := &Client{target: Target{Addr: "192.0.2.1:161", Version: V3, User: "fa", AuthKey: secret.New("authsecret"), PrivKey: secret.New("privsecret")}}
	tests := []struct {
		name string
		c    *Client
		ctx  context.Context
		err  error
		want []error
	}{
		{"max retries", v2, context.Background(), fmt.Errorf("request timeout: %w", gosnmp.ErrMaxRetriesExceeded), []error{ErrTimeout}},
		{"wrong digest", v3, context.Background(), gosnmp.ErrWrongDigest, []error{ErrAuth}},
		{"unknown user", v3, context.Background(), gosnmp.ErrUnknownUsername, []error{ErrAuth}},
		{"decryption", v3, context.Background(), gosnmp.ErrDecryption, []error{ErrAuth}},
		{"not authentic", v3, context.Background(), errors.New("incoming packet is not authentic, discarding"), []error{ErrAuth}},
		{"priv suspect", v3, context.Background(), privSuspectError{gosnmp.ErrMaxRetriesExceeded}, []error{ErrAuth}},
		{"deadline", v2, context.Background(), context.DeadlineExceeded, []error{ErrTimeout, context.DeadlineExceeded}},
		{"cancelled", v2, cancelled, errors.New("read: i/o timeout"), []error{context.Canceled}},
		{"closed", v2, context.Background(), ErrClosed, []error{ErrClosed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.classify(tc.ctx, "get", tc.err)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("classify = %v, want %v", err, w)
				}
			}
			for _, s := range []string{"topsecret", "authsecret", "privsecret"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q reveals a credential", err)
				}
			}
		})
	}
}
