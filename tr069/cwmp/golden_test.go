package cwmp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the seed corpus in testdata/fuzz/FuzzDecode from testdata/*.xml")

func testdataFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata envelopes: %v", err)
	}
	return files
}

// TestGoldenRoundTrip decodes every testdata envelope, encodes it, decodes
// that again and expects the same Envelope, and expects Encode to be stable.
func TestGoldenRoundTrip(t *testing.T) {
	for _, file := range testdataFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			first, err := Decode(readTestdata(t, filepath.Base(file)))
			if err != nil {
				t.Fatal(err)
			}
			out, err := Encode(first)
			if err != nil {
				t.Fatal(err)
			}
			second, err := Decode(out)
			if err != nil {
				t.Fatalf("re-decode: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(first, second) {
				t.Fatalf("decode(encode(decode(x))) differs:\n first %#v\nsecond %#v\n%s", first, second, out)
			}
			again, err := Encode(second)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again) {
				t.Fatalf("encoding not stable:\n%s\n%s", out, again)
			}
		})
	}
}

// seedName is the fuzz corpus file for a testdata envelope.
func seedName(file string) string {
	return filepath.Join("testdata", "fuzz", "FuzzDecode", "seed-"+strings.TrimSuffix(filepath.Base(file), ".xml"))
}

// TestFuzzSeedCorpus keeps testdata/fuzz/FuzzDecode in step with
// testdata/*.xml: one "go test fuzz v1" file per envelope. Run with -update
// after adding an envelope.
func TestFuzzSeedCorpus(t *testing.T) {
	for _, file := range testdataFiles(t) {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", readTestdata(t, filepath.Base(file)))
		name := seedName(file)
		if *update {
			if err := os.WriteFile(name, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale (err %v): run go test ./tr069/cwmp -run TestFuzzSeedCorpus -update", name, err)
		}
	}
}

func TestDecodeNewSamples(t *testing.T) {
	cst := time.FixedZone("", 8*3600)
	tests := []struct {
		file  string
		check func(t *testing.T, env *Envelope)
	}{
		{"ct-e8-inform-bind-cwmp10.xml", func(t *testing.T, env *Envelope) {
			in := env.Body.(*Inform)
			if env.Namespace != NS10 || env.ID != "20240301081530" || len(in.Event) != 3 || in.Event[2].EventCode != "X CT-COM BIND" {
				t.Errorf("env %+v inform %+v", env, in)
			}
			if len(in.ParameterList) != 12 || in.ParameterList[8] != (ParameterValueStruct{"InternetGatewayDevice.X_CT-COM_UserInfo.UserName", "0571A1234567", "xsd:string"}) ||
				in.ParameterList[11].Value != "TR069,INTERNET" || in.ParameterList[6].Value != "" {
				t.Errorf("params %+v", in.ParameterList)
			}
			if !in.CurrentTime.Equal(time.Date(2024, 3, 1, 8, 15, 30, 0, cst)) {
				t.Errorf("time %v", in.CurrentTime)
			}
		}},
		{"tr181-device-inform-cwmp12.xml", func(t *testing.T, env *Envelope) {
			in := env.Body.(*Inform)
			if env.Namespace != NS12 || env.SessionTimeout != 60 || in.DeviceId.OUI != "A8D3F7" || len(in.Event) != 2 {
				t.Errorf("env %+v inform %+v", env, in)
			}
			if len(in.ParameterList) != 8 || in.ParameterList[6] != (ParameterValueStruct{"Device.WiFi.SSID.1.SSID", "ChinaNet-5G & guests", "xsd:string"}) {
				t.Errorf("params %+v", in.ParameterList)
			}
			if in.CurrentTime.Nanosecond() != 250e6 || in.CurrentTime.Location() != time.UTC {
				t.Errorf("time %v", in.CurrentTime)
			}
		}},
		{"stb-inform-stbbind-cwmp10.xml", func(t *testing.T, env *Envelope) {
			in := env.Body.(*Inform)
			if in.Event[1].EventCode != "X CT-COM STBBIND" || in.RetryCount != 1 || in.ParameterList[4].Value != "itv05711234567" {
				t.Errorf("inform %+v", in)
			}
		}},
		{"inform-supportedcwmpversions-cwmp14.xml", func(t *testing.T, env *Envelope) {
			in := env.Body.(*Inform)
			if env.Namespace != NS12 || env.SupportedCWMPVersions != "1.0,1.1,1.2,1.3,1.4" || env.SessionTimeout != 120 || env.UseCWMPVersion != "" {
				t.Errorf("env %+v", env)
			}
			if in.Event[1] != (EventStruct{"M Reboot", "reboot-2024-03-01"}) || in.CurrentTime.Nanosecond() != 123456000 {
				t.Errorf("inform %+v", in)
			}
		}},
		{"informresponse-usecwmpversion-cwmp12.xml", func(t *testing.T, env *Envelope) {
			if env.UseCWMPVersion != "1.4" || env.ID != "1001" || env.Body.(*InformResponse).MaxEnvelopes != 1 {
				t.Errorf("env %+v", env)
			}
		}},
		{"spa-accesslist-cwmp13.xml", func(t *testing.T, env *Envelope) {
			want := []SetParameterAttributesStruct{
				{Name: "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ExternalIPAddress", NotificationChange: true, Notification: 2},
				{Name: "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", NotificationChange: true, Notification: 1, AccessListChange: true, AccessList: []string{"Subscriber"}},
				{Name: "InternetGatewayDevice.X_CT-COM_UserInfo.", AccessListChange: true},
			}
			if got := env.Body.(*SetParameterAttributes).ParameterList; env.Namespace != NS13 || !env.HoldRequests || !reflect.DeepEqual(got, want) {
				t.Errorf("env %+v\n got %+v\nwant %+v", env, got, want)
			}
		}},
		{"gparesponse-cwmp14.xml", func(t *testing.T, env *Envelope) {
			want := []ParameterAttributeStruct{{"Device.WiFi.SSID.1.SSID", 1, []string{"Subscriber"}}, {"Device.IP.Interface.1.IPv4Address.1.IPAddress", 6, nil}}
			if got := env.Body.(*GetParameterAttributesResponse).ParameterList; env.Namespace != NS14 || !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v", got)
			}
		}},
		{"atc-cwmp12.xml", func(t *testing.T, env *Envelope) {
			want := &AutonomousTransferComplete{AnnounceURL: "udp://239.1.1.10:5000", TransferURL: "http://fw.example.net/e8/F450_V2.0.11.bin",
				IsDownload: true, FileType: "1 Firmware Upgrade Image", FileSize: 16777216,
				StartTime: time.Date(2024, 3, 1, 2, 0, 0, 0, time.UTC), CompleteTime: time.Date(2024, 3, 1, 2, 3, 41, 0, time.UTC)}
			if got := env.Body.(*AutonomousTransferComplete); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v", got)
			}
		}},
		{"fault-spv-soapenv-cwmp12.xml", func(t *testing.T, env *Envelope) {
			var f *Fault
			var err error = env.Body.(*Fault)
			if !errors.As(err, &f) || f.Code != FaultInvalidArguments || len(f.SetParameterValuesFaults) != 3 ||
				f.SetParameterValuesFaults[0].FaultCode != FaultInvalidParameterType || f.SetParameterValuesFaults[2].FaultString != "" {
				t.Errorf("fault %+v", f)
			}
			if !strings.Contains(err.Error(), "X_CT-COM_UserInfo.UserName 9008 (attempt to set a non-writable parameter)") {
				t.Errorf("Error() = %s", err)
			}
		}},
		{"scheduledownload-cwmp14-default-ns.xml", func(t *testing.T, env *Envelope) {
			sd := env.Body.(*ScheduleDownload)
			if env.Namespace != NS14 || sd.URL != "https://fw.example.net/e8/F450_V2.0.11.bin?token=a&b=2" || sd.Password != "fw-secret" || len(sd.TimeWindowList) != 2 {
				t.Fatalf("sd %+v", sd)
			}
			if sd.TimeWindowList[0] != (TimeWindowStruct{3600, 7200, "3 When Idle", "", -1}) || sd.TimeWindowList[1].UserMessage != "升级中，请勿断电" {
				t.Errorf("windows %+v", sd.TimeWindowList)
			}
		}},
		{"upload-cwmp11.xml", func(t *testing.T, env *Envelope) {
			want := &Upload{CommandKey: "cfg-backup", FileType: "1 Vendor Configuration File", URL: "http://acs.example.net:8080/upload/cfg", Username: "cpe", Password: "pw"}
			if got := env.Body.(*Upload); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v", got)
			}
		}},
		{"getallqueuedtransfersresponse-cwmp12.xml", func(t *testing.T, env *Envelope) {
			want := []AllQueuedTransferStruct{{"fw-night", 1, true, "1 Firmware Upgrade Image", 16777216, "F450_V2.0.11.bin"}, {"", 2, false, "2 Vendor Log File", 0, ""}}
			if got := env.Body.(*GetAllQueuedTransfersResponse).TransferList; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v", got)
			}
		}},
		{"getqueuedtransfersresponse-no-arraytype-cwmp10.xml", func(t *testing.T, env *Envelope) {
			want := []QueuedTransferStruct{{"fw-night", 1}, {"cfg-backup", 2}}
			if got := env.Body.(*GetQueuedTransfersResponse).TransferList; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v", got)
			}
		}},
		{"requestdownload-cwmp11.xml", func(t *testing.T, env *Envelope) {
			want := &RequestDownload{FileType: "1 Firmware Upgrade Image", FileTypeArg: []ArgStruct{{"Version", "V2.0.11"}, {"Reason", "user requested"}}}
			if got := env.Body.(*RequestDownload); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v", got)
			}
		}},
		{"scheduleinform-cwmp10.xml", func(t *testing.T, env *Envelope) {
			if got := env.Body.(*ScheduleInform); *got != (ScheduleInform{300, "after-bind"}) || env.NoMoreRequests {
				t.Errorf("got %+v", got)
			}
		}},
		{"gpvresponse-hexbinary-base64-cwmp13.xml", func(t *testing.T, env *Envelope) {
			pl := env.Body.(*GetParameterValuesResponse).ParameterList
			want := []ParameterValueStruct{
				{"Device.Optical.Interface.1.X_CT-COM_Vendor.SN", "48575443A1B2C3D4", "xsd:hexBinary"},
				{"Device.X_CT-COM_Config.Blob", "PGNvbmZpZz4KICA8YT4xPC9hPgo8L2NvbmZpZz4K", "xsd:base64"},
				{"Device.DeviceInfo.X_CT-COM_Cert", "TUlJQ2V6Q0NB\nZVNnQXdJQkFnSUI=", "xsd:base64"},
				{"Device.Time.CurrentLocalTime", "2024-03-01T08:15:30+08:00", "xsd:dateTime"},
			}
			if !reflect.DeepEqual(pl, want) {
				t.Fatalf("got %+v", pl)
			}
			for _, p := range pl {
				if err := ValidateValue(p.Type, p.Value); err != nil {
					t.Errorf("%s: %v", p.Name, err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			env, err := Decode(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, env)
		})
	}
}

func TestEncodeHeaders(t *testing.T) {
	tests := []struct {
		name string
		env  *Envelope
		want []string
		not  []string
	}{
		{"inform 1.4", &Envelope{Namespace: NS12, ID: "1", SessionTimeout: 90, SupportedCWMPVersions: "1.0,1.1,1.2,1.3,1.4", Body: &Inform{}},
			[]string{`<cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID>`,
				`<cwmp:SessionTimeout soap-env:mustUnderstand="0">90</cwmp:SessionTimeout>`,
				`<cwmp:SupportedCWMPVersions soap-env:mustUnderstand="0">1.0,1.1,1.2,1.3,1.4</cwmp:SupportedCWMPVersions>`},
			[]string{"UseCWMPVersion", "HoldRequests"}},
		{"inform response 1.4", &Envelope{Namespace: NS12, ID: "1", UseCWMPVersion: "1.4", HoldRequests: true, Body: &InformResponse{MaxEnvelopes: 1}},
			[]string{`<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">1.4</cwmp:UseCWMPVersion>`,
				`<cwmp:HoldRequests soap-env:mustUnderstand="1">1</cwmp:HoldRequests>`},
			[]string{"SessionTimeout", "SupportedCWMPVersions"}},
		{"only session timeout", &Envelope{Namespace: NS13, SessionTimeout: 30},
			[]string{`<soap-env:Header><cwmp:SessionTimeout soap-env:mustUnderstand="0">30</cwmp:SessionTimeout></soap-env:Header><soap-env:Body></soap-env:Body>`},
			[]string{"cwmp:ID"}},
		{"no headers", &Envelope{Namespace: NS10, Body: &GetRPCMethods{}}, nil, []string{"Header"}},
		{"client fault", &Envelope{Body: NewFault(FaultInvalidParameterName, "")}, []string{"<faultcode>Client</faultcode>", "<FaultString>invalid parameter name</FaultString>"}, nil},
		{"server fault", &Envelope{Body: NewFault(FaultDownloadFailure, "")}, []string{"<faultcode>Server</faultcode>"}, nil},
		{"ACS client fault", &Envelope{Body: NewFault(FaultACSInvalidArguments, "")}, []string{"<faultcode>Client</faultcode>"}, nil},
		{"ACS server fault", &Envelope{Body: NewFault(FaultACSVersionIncompatible, "")}, []string{"<faultcode>Server</faultcode>", "ACS version incompatible"}, nil},
		{"cancel not permitted", &Envelope{Body: NewFault(FaultCancelTransferNotPermitted, "")}, []string{"<faultcode>Client</faultcode>"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Encode(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !bytes.Contains(data, []byte(w)) {
					t.Errorf("lacks %s:\n%s", w, data)
				}
			}
			for _, w := range tc.not {
				if bytes.Contains(data, []byte(w)) {
					t.Errorf("has %s:\n%s", w, data)
				}
			}
		})
	}
}

func TestFaultMeaning(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{8000, "method not supported"},
		{8001, "request denied"},
		{8002, "internal error"},
		{8003, "invalid arguments"},
		{8004, "resources exceeded"},
		{8005, "retry request"},
		{8006, "ACS version incompatible"},
		{9000, "method not supported"},
		{9001, "request denied"},
		{9002, "internal error"},
		{9003, "invalid arguments"},
		{9004, "resources exceeded"},
		{9005, "invalid parameter name"},
		{9006, "invalid parameter type"},
		{9007, "invalid parameter value"},
		{9008, "attempt to set a non-writable parameter"},
		{9009, "notification request rejected"},
		{9010, "file transfer failure"},
		{9011, "upload failure"},
		{9012, "file transfer server authentication failure"},
		{9013, "unsupported protocol for file transfer"},
		{9014, "file transfer failure: unable to join multicast group"},
		{9015, "file transfer failure: unable to contact file server"},
		{9016, "file transfer failure: unable to access file"},
		{9017, "file transfer failure: unable to complete download"},
		{9018, "file transfer failure: file corrupted"},
		{9019, "file transfer failure: file authentication failure"},
		{9020, "file transfer failure: unable to complete download within specified time windows"},
		{9021, "cancelation of file transfer not permitted in current transfer state"},
		{8850, "vendor-specific"},
		{9850, "vendor-specific"},
		{8007, "unknown fault code"},
		{9900, "unknown fault code"},
		{0, "unknown fault code"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			if got := FaultMeaning(tc.code); got != tc.want {
				t.Errorf("FaultMeaning(%d) = %q, want %q", tc.code, got, tc.want)
			}
			want := fmt.Sprintf("cwmp fault %d (%s)", tc.code, tc.want)
			if got := (&Fault{Code: tc.code}).Error(); got != want {
				t.Errorf("Error() = %q, want %q", got, want)
			}
		})
	}
	// The constants carry the codes of the table.
	consts := map[int]int{FaultACSMethodNotSupported: 8000, FaultACSVersionIncompatible: 8006, FaultMethodNotSupported: 9000,
		FaultInvalidParameterValue: 9007, FaultDownloadFileAuthFailure: 9019, FaultTransferTimeWindowFailure: 9020,
		FaultCancelTransferNotPermitted: 9021}
	for got, want := range consts {
		if got != want {
			t.Errorf("constant %d, want %d", got, want)
		}
	}
}

func TestValidateValue(t *testing.T) {
	tests := []struct {
		typ, value string
		want       error
	}{
		{"xsd:string", "", nil},
		{"", "any text", nil},
		{"xsd:string", "\xff", ErrInvalidValue},
		{"xsd:int", "-2147483648", nil},
		{"xsd:int", " 42 ", nil},
		{"xsd:int", "2147483648", ErrInvalidValue},
		{"xsd:int", "", ErrInvalidValue},
		{"xsd:int", "1.5", ErrInvalidValue},
		{"xsd:unsignedInt", "4294967295", nil},
		{"xs:unsignedInt", "0", nil},
		{"xsd:unsignedInt", "-1", ErrInvalidValue},
		{"xsd:unsignedInt", "4294967296", ErrInvalidValue},
		{"xsd:long", "-9223372036854775808", nil},
		{"xsd:unsignedLong", "18446744073709551615", nil},
		{"xsd:unsignedLong", "x", ErrInvalidValue},
		{"xsd:boolean", "1", nil},
		{"xsd:boolean", "false", nil},
		{"boolean", "TRUE", nil},
		{"xsd:boolean", "yes", ErrInvalidValue},
		{"xsd:boolean", "", ErrInvalidValue},
		{"xsd:dateTime", "2024-03-01T08:15:30Z", nil},
		{"xsd:dateTime", "2024-03-01T08:15:30.5+08:00", nil},
		{"xsd:dateTime", "2024-03-01T08:15:30", nil},
		{"xsd:dateTime", "0001-01-01T00:00:00Z", nil},
		{"xsd:dateTime", "2024-03-01 08:15:30", ErrInvalidValue},
		{"xsd:dateTime", "2024-13-01T08:15:30Z", ErrInvalidValue},
		{"xsd:base64", "", nil},
		{"xsd:base64", "PGE+MTwvYT4=", nil},
		{"xsd:base64", "PGE+\nMTwv YT4=", nil},
		{"soapenc:base64", "PGE+MTwvYT4", ErrInvalidValue},
		{"xsd:base64Binary", "!!!!", ErrInvalidValue},
		{"xsd:hexBinary", "", nil},
		{"xsd:hexBinary", "48575443a1B2", nil},
		{"xsd:hexBinary", "485", ErrInvalidValue},
		{"xsd:hexBinary", "zz", ErrInvalidValue},
		{"xsd:float", "1.5", ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.typ+"="+tc.value, func(t *testing.T) {
			err := ValidateValue(tc.typ, tc.value)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("ValidateValue(%q, %q) = %v, want %v", tc.typ, tc.value, err, tc.want)
			}
		})
	}
}

// TestHostileInput feeds inputs built to exhaust a decoder: each must fail
// with ErrLimit, quickly and without a panic.
func TestHostileInput(t *testing.T) {
	const head = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Body>`
	const tail = `</soap:Body></soap:Envelope>`
	repeat := func(s string, n int) string { return strings.Repeat(s, n) }
	pvs := func(n int) string {
		return head + `<cwmp:GetParameterValuesResponse><ParameterList>` +
			repeat(`<ParameterValueStruct><Name>A.B</Name><Value>1</Value></ParameterValueStruct>`, n) +
			`</ParameterList></cwmp:GetParameterValuesResponse>` + tail
	}
	attrs := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, ` a%d="x"`, i)
		}
		return head + `<cwmp:Reboot` + b.String() + `/>` + tail
	}
	nsDecls := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, ` xmlns:p%d="urn:x%d"`, i, i)
		}
		return head + `<cwmp:Reboot` + b.String() + `/>` + tail
	}
	big := Decoder{MaxBytes: 64 << 20}
	tests := []struct {
		name string
		dec  Decoder
		data string
		why  string // in the error: which limit
	}{
		{"deep nesting", Decoder{}, head + repeat("<a>", 100000) + repeat("</a>", 100000) + tail, "nesting"},
		{"deep unclosed nesting", Decoder{}, head + repeat("<a>", 100000), "nesting"},
		{"deep nesting in a value", Decoder{}, head + `<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>A</Name><Value>` +
			repeat("<b>", 200) + repeat("</b>", 200) + `</Value></ParameterValueStruct></ParameterList></cwmp:SetParameterValues>` + tail, "nesting"},
		{"huge parameter count", Decoder{}, pvs(DefaultMaxParameters + 1), "array entries"},
		{"parameter count over a custom limit", Decoder{MaxParameters: 100}, pvs(101), "array entries"},
		{"many access list entries", Decoder{MaxParameters: 1000}, head + `<cwmp:SetParameterAttributes><ParameterList>` +
			repeat(`<SetParameterAttributesStruct><Name>A</Name><AccessList>`+repeat(`<string>Subscriber</string>`, 100)+`</AccessList></SetParameterAttributesStruct>`, 20) +
			`</ParameterList></cwmp:SetParameterAttributes>` + tail, "array entries"},
		{"many SPV faults", Decoder{MaxParameters: 10}, head + `<soap:Fault><detail><cwmp:Fault><FaultCode>9003</FaultCode>` +
			repeat(`<SetParameterValuesFault><ParameterName>A</ParameterName><FaultCode>9007</FaultCode></SetParameterValuesFault>`, 11) +
			`</cwmp:Fault></detail></soap:Fault>` + tail, "parameter faults"},
		{"many elements", Decoder{}, head + `<cwmp:Reboot>` + repeat("<x/>", DefaultMaxElements+1) + `</cwmp:Reboot>` + tail, "elements"},
		{"huge attribute list", big, attrs(200000), "attributes"},
		{"many namespace declarations", Decoder{}, nsDecls(DefaultMaxAttributes + 1), "attributes"},
		{"over MaxBytes", Decoder{}, pvs(20000), "bytes"},
		{"over a custom MaxBytes", Decoder{MaxBytes: 100}, pvs(1), "bytes"},
		{"huge header", big, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>` +
			repeat(`<cwmp:ID xmlns:cwmp="urn:dslforum-org:cwmp-1-0">1</cwmp:ID>`, DefaultMaxElements) + `</soap:Header><soap:Body/></soap:Envelope>`, "elements"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := tc.dec.Decode([]byte(tc.data))
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err = %v (env %v), want ErrLimit on %s", err, env, tc.why)
			}
		})
	}
	// At the limit is still fine.
	if _, err := (Decoder{MaxParameters: 100}).Decode([]byte(pvs(100))); err != nil {
		t.Errorf("100 parameters with MaxParameters 100: %v", err)
	}
	if _, err := Decode([]byte(attrs(DefaultMaxAttributes))); err != nil {
		t.Errorf("%d attributes: %v", DefaultMaxAttributes, err)
	}
}

// TestTextEscapeMatchesEncodingXML checks that the writer escapes text
// exactly as xml.EscapeText does.
func TestTextEscapeMatchesEncodingXML(t *testing.T) {
	for _, s := range []string{"", "plain", `a<b>&"c'`, "tab\tnl\ncr\r", "中文-客厅", "bad\xffutf8", "ctl\x00\x01\x1f", "\uFFFE\uFFFF", "\U0001F600", "end&"} {
		var want bytes.Buffer
		if err := xml.EscapeText(&want, []byte(s)); err != nil {
			t.Fatal(err)
		}
		var w writer
		w.text(s)
		if got := w.b.String(); got != want.String() {
			t.Errorf("text(%q) = %q, want %q", s, got, want.String())
		}
	}
}
