package datamodel

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvalid loads every testdata/invalid-*.yaml and compares the error
// with the file's first line, "# error: <exact error>".
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid models: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# error: ")
			if !ok {
				t.Fatalf("first line %q is not \"# error: ...\"", first)
			}
			_, err = Load(bytes.NewReader(data))
			if err == nil {
				t.Fatal("loaded an invalid model")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if err.Error() != want {
				t.Errorf("error\n got: %s\nwant: %s", err, want)
			}
		})
	}
}

func TestBuiltin(t *testing.T) {
	names := BuiltinNames()
	if strings.Join(names, ",") != E8Gateway+","+STBTR135 {
		t.Fatalf("built-in models = %v", names)
	}
	e8, err := Builtin(E8Gateway)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"InternetGatewayDevice.DeviceInfo.SerialNumber",
		"InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
		"InternetGatewayDevice.WANDevice.1.WANCommonInterfaceConfig.WANAccessType",
		"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.3.X_CT-COM_ServiceList",
		"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.{i}.WANPPPConnection.{i}.X_CT-COM_LanInterface",
		"InternetGatewayDevice.LANDevice.1.WLANConfiguration.2.SSID",
		"InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.4.Status",
		"InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.DHCPServerEnable",
		"InternetGatewayDevice.X_CT-COM_UserInfo.Result",
		"InternetGatewayDevice.WANDevice.1.X_CT-COM_EponInterfaceConfig.RXPower",
		"InternetGatewayDevice.WANDevice.1.X_CT-COM_GponInterfaceConfig.TXPower",
		"InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries",
		"InternetGatewayDevice.LANDevice.1.Hosts.Host.{i}.LeaseTimeRemaining",
		"InternetGatewayDevice.DownloadDiagnostics.TestBytesReceivedUnderFullLoading",
		"InternetGatewayDevice.DownloadDiagnostics.PerConnectionResult.2.TCPOpenResponseTime",
		"InternetGatewayDevice.UploadDiagnostics.TestFileLength",
		"InternetGatewayDevice.IPPingDiagnostics.AverageResponseTimeDetailed",
		"InternetGatewayDevice.TraceRouteDiagnostics.RouteHops.{i}.HopRTTimes",
	} {
		if p, _ := e8.Param(path); p == nil {
			t.Errorf("e8 model lacks %s", path)
		}
	}
	p, o := e8.Param("InternetGatewayDevice.DeviceInfo.UpTime")
	if p == nil || p.ActiveNotify != ActiveCanDeny || p.Type != UnsignedInt || o.Path != "InternetGatewayDevice.DeviceInfo." {
		t.Errorf("UpTime = %+v in %+v", p, o)
	}
	if p, _ := e8.Param("InternetGatewayDevice.DeviceInfo.NoSuch"); p != nil {
		t.Error("found a parameter that does not exist")
	}
	if g, ok := e8.Generic("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection."); !ok || g != "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.{i}.WANPPPConnection." {
		t.Errorf("Generic table = %q, %v", g, ok)
	}
	if g, ok := e8.Generic("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.2.WANPPPConnection.7.Enable"); !ok || g != "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.{i}.WANPPPConnection.{i}.Enable" {
		t.Errorf("Generic param = %q, %v", g, ok)
	}
	stb, err := Builtin(STBTR135)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"Device.STBService.1.Enable", "Device.STBService.1.Components.FrontEnd.1.IP.IGMP.Enable",
		"Device.X_CTC_IPTV.ServiceInfo.UserID", "Device.X_CTC_IPTV.ServiceInfo.UserIDPassword", "Device.X_CTC_IPTV.STBID",
	} {
		if p, _ := stb.Param(path); p == nil {
			t.Errorf("STB model lacks %s", path)
		}
	}
	if _, err := Builtin("nope"); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Builtin(nope) = %v", err)
	}
}

func TestValidNested(t *testing.T) {
	f, err := os.Open("testdata/valid-nested.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 4 || m.Root != "Device" || m.Name != "nested" {
		t.Fatalf("model = %+v", m)
	}
	b := m.Object("Device.A.{i}.B.{i}.")
	if b == nil || !b.MultiInstance() || !b.Writable || b.Instances != 1 || b.Table() != "Device.A.{i}.B." {
		t.Fatalf("B = %+v", b)
	}
	if k := b.Params[0]; k.Type != HexBinary || !k.Hidden || k.Limits.MaxLength != 4 || k.Default != "" {
		t.Fatalf("Key = %+v", k)
	}
	if en := m.Object("Device.A.{i}.").Params[0]; en.Default != "0" || en.Type != Boolean {
		t.Fatalf("Enable default = %+v", en)
	}
}

func TestCheckValue(t *testing.T) {
	one, ten := int64(1), int64(10)
	tests := []struct {
		typ    Type
		limits Limits
		v      string
		ok     bool
	}{
		{String, Limits{}, "anything", true},
		{String, Limits{MaxLength: 3}, "abcd", false},
		{String, Limits{Enum: []string{"a", "b"}}, "b", true},
		{String, Limits{Enum: []string{"a", "b"}}, "c", false},
		{Boolean, Limits{}, "true", true}, {Boolean, Limits{}, "2", false}, {Boolean, Limits{}, "", false},
		{Int, Limits{}, "-5", true}, {Int, Limits{}, "2147483648", false}, {Int, Limits{}, "x", false},
		{UnsignedInt, Limits{}, "4294967295", true}, {UnsignedInt, Limits{}, "-1", false},
		{UnsignedInt, Limits{Min: &one, Max: &ten}, "10", true},
		{UnsignedInt, Limits{Min: &one, Max: &ten}, "11", false},
		{UnsignedInt, Limits{Min: &one}, "0", false},
		{Long, Limits{}, "-9000000000", true},
		{UnsignedLong, Limits{}, "18446744073709551615", true},
		{DateTime, Limits{}, "2024-01-02T03:04:05Z", true}, {DateTime, Limits{}, "0001-01-01T00:00:00Z", true},
		{DateTime, Limits{}, "2024-01-02T03:04:05", true}, {DateTime, Limits{}, "yesterday", false},
		{Base64, Limits{}, "aGk=", true}, {Base64, Limits{}, "!!", false}, {Base64, Limits{MaxLength: 1}, "aGk=", false},
		{HexBinary, Limits{}, "0aFF", true}, {HexBinary, Limits{}, "abc", false}, {HexBinary, Limits{MaxLength: 1}, "0a0b", false},
	}
	for _, tc := range tests {
		err := CheckValue(tc.typ, tc.limits, tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("CheckValue(%s, %+v, %q) = %v, want ok=%v", tc.typ, tc.limits, tc.v, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadValue) {
			t.Errorf("error does not wrap ErrBadValue: %v", err)
		}
	}
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{"xsd:unsignedInt": UnsignedInt, "int": Int, "xsd:base64Binary": Base64, "hexBinary": HexBinary} {
		if got, ok := ParseType(in); !ok || got != want {
			t.Errorf("ParseType(%q) = %q, %v", in, got, ok)
		}
	}
	if _, ok := ParseType("xsd:float"); ok {
		t.Error("ParseType accepted float")
	}
	if String.XSD() != "xsd:string" || Type("").XSD() != "xsd:string" {
		t.Error("XSD of string")
	}
}

// FuzzLoad checks that Load never panics and that what it accepts is
// consistent: every object path ends in "." and starts with the root.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, name := range BuiltinNames() {
		data, err := builtinFS.ReadFile("models/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, o := range m.Objects {
			if !strings.HasSuffix(o.Path, ".") || !strings.HasPrefix(o.Path, m.Root+".") {
				t.Fatalf("accepted object path %q with root %q", o.Path, m.Root)
			}
			for _, p := range o.Params {
				if err := CheckValue(p.Type, p.Limits, p.Default); err != nil {
					t.Fatalf("accepted default of %s%s: %v", o.Path, p.Name, err)
				}
			}
		}
	})
}
