package cwmp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2024, 3, 1, 8, 15, 30, 0, time.UTC)

func roundTripCases() []struct {
	name string
	env  *Envelope
} {
	pv := []ParameterValueStruct{
		{Name: "InternetGatewayDevice.DeviceInfo.SoftwareVersion", Value: "V1 <&> \"'", Type: "xsd:string"},
		{Name: "InternetGatewayDevice.DeviceInfo.UpTime", Value: "42", Type: "xsd:unsignedInt"},
		{Name: "InternetGatewayDevice.X_CT-COM_UserInfo.UserName", Value: "中文", Type: "xsd:string"},
		{Name: "Device.X_CT-COM_Config.Blob", Value: "PGE+MTwvYT4=\nPGI+MjwvYj4=", Type: "xsd:base64"},
		{Name: "Device.Optical.Interface.1.SN", Value: "48575443a1b2c3d4", Type: "xsd:hexBinary"},
		{Name: "Device.Time.CurrentLocalTime", Value: "2024-03-01T08:15:30+08:00", Type: "xsd:dateTime"},
	}
	return []struct {
		name string
		env  *Envelope
	}{
		{"Inform", &Envelope{Namespace: NS10, ID: "1", Body: &Inform{
			DeviceId: DeviceIdStruct{"Huawei", "00E0FC", "HG8245H", "SN1"},
			Event:    []EventStruct{{"0 BOOTSTRAP", ""}, {"M Reboot", "key 1"}}, MaxEnvelopes: 1,
			CurrentTime: t0, RetryCount: 3, ParameterList: pv}}},
		{"InformResponse", &Envelope{Namespace: NS12, ID: "1", Body: &InformResponse{MaxEnvelopes: 1}}},
		{"GetRPCMethods", &Envelope{Namespace: NS11, ID: "x", Body: &GetRPCMethods{}}},
		{"GetRPCMethodsResponse", &Envelope{Namespace: NS10, Body: &GetRPCMethodsResponse{MethodList: []string{"Inform", "TransferComplete"}}}},
		{"GetParameterValues", &Envelope{Namespace: NS13, ID: "a", HoldRequests: true, Body: &GetParameterValues{ParameterNames: []string{"Device.", "Device.DeviceInfo.UpTime"}}}},
		{"GetParameterValuesResponse", &Envelope{Namespace: NS14, Body: &GetParameterValuesResponse{ParameterList: pv}}},
		{"SetParameterValues", &Envelope{Namespace: NS10, Body: &SetParameterValues{ParameterList: pv, ParameterKey: "k1"}}},
		{"SetParameterValuesResponse", &Envelope{Namespace: NS10, Body: &SetParameterValuesResponse{Status: 1}}},
		{"GetParameterNames", &Envelope{Namespace: NS10, Body: &GetParameterNames{ParameterPath: "InternetGatewayDevice.", NextLevel: true}}},
		{"GetParameterNamesResponse", &Envelope{Namespace: NS10, Body: &GetParameterNamesResponse{ParameterList: []ParameterInfoStruct{{"A.", false}, {"A.B", true}}}}},
		{"AddObject", &Envelope{Namespace: NS10, Body: &AddObject{ObjectName: "A.B.", ParameterKey: "k"}}},
		{"AddObjectResponse", &Envelope{Namespace: NS10, Body: &AddObjectResponse{InstanceNumber: 4294967295, Status: 0}}},
		{"DeleteObject", &Envelope{Namespace: NS10, Body: &DeleteObject{ObjectName: "A.B.2.", ParameterKey: "k"}}},
		{"DeleteObjectResponse", &Envelope{Namespace: NS10, Body: &DeleteObjectResponse{Status: 1}}},
		{"Reboot", &Envelope{Namespace: NS10, NoMoreRequests: true, Body: &Reboot{CommandKey: "rb"}}},
		{"RebootResponse", &Envelope{Namespace: NS10, Body: &RebootResponse{}}},
		{"FactoryReset", &Envelope{Namespace: NS10, Body: &FactoryReset{}}},
		{"FactoryResetResponse", &Envelope{Namespace: NS10, Body: &FactoryResetResponse{}}},
		{"Download", &Envelope{Namespace: NS10, Body: &Download{CommandKey: "fw", FileType: "1 Firmware Upgrade Image",
			URL: "http://h/f?a=1&b=2", Username: "u", Password: "p", FileSize: 1234, TargetFileName: "f.bin",
			DelaySeconds: 5, SuccessURL: "http://s", FailureURL: "http://f"}}},
		{"DownloadResponse", &Envelope{Namespace: NS10, Body: &DownloadResponse{Status: 0, StartTime: t0, CompleteTime: t0.Add(time.Minute)}}},
		{"TransferComplete", &Envelope{Namespace: NS10, Body: &TransferComplete{CommandKey: "fw", FaultStruct: FaultStruct{9010, "bad"}, StartTime: t0}}},
		{"TransferCompleteResponse", &Envelope{Namespace: NS10, Body: &TransferCompleteResponse{}}},
		{"Fault", &Envelope{Namespace: NS12, ID: "f", Body: &Fault{Code: 9003, String: "Invalid arguments",
			SetParameterValuesFaults: []SetParameterValuesFault{{"A.B", 9008, "read only"}, {"A.C", 9007, ""}}}}},
		{"Unknown", &Envelope{Namespace: NS10, Body: &Unknown{Name: "X_CT-COM_Bind"}}},
		{"Inform CWMP 1.4 headers", &Envelope{Namespace: NS12, ID: "14", SessionTimeout: 120, SupportedCWMPVersions: "1.0,1.1,1.2,1.3,1.4",
			Body: &Inform{DeviceId: DeviceIdStruct{"Huawei", "00259E", "HN8145X6", "SN2"}, Event: []EventStruct{{"6 CONNECTION REQUEST", ""}},
				MaxEnvelopes: 1, CurrentTime: t0.In(time.FixedZone("", 8*3600)), ParameterList: pv[:1]}}},
		{"InformResponse UseCWMPVersion", &Envelope{Namespace: NS12, ID: "14", UseCWMPVersion: "1.4", Body: &InformResponse{MaxEnvelopes: 1}}},
		{"SetParameterAttributes", &Envelope{Namespace: NS13, ID: "spa", Body: &SetParameterAttributes{ParameterList: []SetParameterAttributesStruct{
			{Name: "A.B", NotificationChange: true, Notification: 2},
			{Name: "A.C.", AccessListChange: true, AccessList: []string{"Subscriber"}},
			{Name: "A.D", NotificationChange: true, Notification: 6, AccessListChange: true, AccessList: []string{"Subscriber", "X_CT-COM_Local"}},
		}}}},
		{"SetParameterAttributesResponse", &Envelope{Namespace: NS13, Body: &SetParameterAttributesResponse{}}},
		{"GetParameterAttributes", &Envelope{Namespace: NS10, Body: &GetParameterAttributes{ParameterNames: []string{"InternetGatewayDevice.LANDevice.", "A.B"}}}},
		{"GetParameterAttributesResponse", &Envelope{Namespace: NS14, Body: &GetParameterAttributesResponse{ParameterList: []ParameterAttributeStruct{
			{Name: "A.B", Notification: 1, AccessList: []string{"Subscriber"}}, {Name: "A.C", Notification: 0}}}}},
		{"Upload", &Envelope{Namespace: NS11, Body: &Upload{CommandKey: "up", FileType: "2 Vendor Log File", URL: "http://h/u?a=1&b=<2>",
			Username: "u", Password: "p", DelaySeconds: 30}}},
		{"UploadResponse", &Envelope{Namespace: NS11, Body: &UploadResponse{Status: 1}}},
		{"UploadResponse done", &Envelope{Namespace: NS11, Body: &UploadResponse{Status: 0, StartTime: t0, CompleteTime: t0.Add(2 * time.Second)}}},
		{"ScheduleInform", &Envelope{Namespace: NS10, Body: &ScheduleInform{DelaySeconds: 300, CommandKey: "si"}}},
		{"ScheduleInformResponse", &Envelope{Namespace: NS10, Body: &ScheduleInformResponse{}}},
		{"GetQueuedTransfers", &Envelope{Namespace: NS10, Body: &GetQueuedTransfers{}}},
		{"GetQueuedTransfersResponse", &Envelope{Namespace: NS10, Body: &GetQueuedTransfersResponse{TransferList: []QueuedTransferStruct{{"a", 1}, {"b", 3}}}}},
		{"GetAllQueuedTransfers", &Envelope{Namespace: NS12, Body: &GetAllQueuedTransfers{}}},
		{"GetAllQueuedTransfersResponse", &Envelope{Namespace: NS12, Body: &GetAllQueuedTransfersResponse{TransferList: []AllQueuedTransferStruct{
			{CommandKey: "fw", State: 2, IsDownload: true, FileType: "1 Firmware Upgrade Image", FileSize: 1 << 24, TargetFileName: "f.bin"},
			{State: 1, FileType: "X 00259E Log"}}}}},
		{"CancelTransfer", &Envelope{Namespace: NS12, Body: &CancelTransfer{CommandKey: "fw"}}},
		{"CancelTransferResponse", &Envelope{Namespace: NS12, Body: &CancelTransferResponse{}}},
		{"ScheduleDownload", &Envelope{Namespace: NS14, Body: &ScheduleDownload{CommandKey: "sd", FileType: "1 Firmware Upgrade Image",
			URL: "https://h/f", Username: "u", Password: "p", FileSize: 99, TargetFileName: "f.bin", TimeWindowList: []TimeWindowStruct{
				{WindowStart: 0, WindowEnd: 3600, WindowMode: "1 At Any Time", MaxRetries: -1},
				{WindowStart: 7200, WindowEnd: 10800, WindowMode: "4 Confirmation Needed", UserMessage: "升级?", MaxRetries: 2}}}}},
		{"ScheduleDownloadResponse", &Envelope{Namespace: NS14, Body: &ScheduleDownloadResponse{}}},
		{"AutonomousTransferComplete", &Envelope{Namespace: NS12, Body: &AutonomousTransferComplete{AnnounceURL: "udp://239.1.1.1:5000",
			TransferURL: "http://h/f.bin", IsDownload: true, FileType: "1 Firmware Upgrade Image", FileSize: 7, TargetFileName: "f.bin",
			FaultStruct: FaultStruct{9018, "file corrupted"}, StartTime: t0, CompleteTime: t0.Add(time.Minute)}}},
		{"AutonomousTransferCompleteResponse", &Envelope{Namespace: NS12, Body: &AutonomousTransferCompleteResponse{}}},
		{"RequestDownload", &Envelope{Namespace: NS11, Body: &RequestDownload{FileType: "1 Firmware Upgrade Image",
			FileTypeArg: []ArgStruct{{"Version", "V2"}, {"Note", " spaced & <escaped> "}}}}},
		{"RequestDownloadResponse", &Envelope{Namespace: NS11, Body: &RequestDownloadResponse{}}},
		{"Fault ACS", &Envelope{Namespace: NS14, Body: &Fault{Code: FaultACSVersionIncompatible, String: "ACS version incompatible"}}},
		{"EmptyBody", &Envelope{Namespace: NS11, ID: "e"}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Encode(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(got, tc.env) {
				t.Fatalf("round trip mismatch:\n got %#v\nwant %#v\n%s", got, tc.env, data)
			}
			if tc.env.Body != nil && tc.env.Body.MethodName() != got.Body.MethodName() {
				t.Fatalf("method %s != %s", got.Body.MethodName(), tc.env.Body.MethodName())
			}
		})
	}
}

func TestEncodeValueMessageAndDefaults(t *testing.T) {
	data, err := Encode(&Envelope{ID: "7", Body: GetParameterValuesResponse{ParameterList: []ParameterValueStruct{{Name: "A", Value: "1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`xmlns:cwmp="urn:dslforum-org:cwmp-1-0"`, `xmlns:soap-enc=`, `xmlns:xsd=`, `xmlns:xsi=`,
		`<cwmp:ID soap-env:mustUnderstand="1">7</cwmp:ID>`,
		`soap-enc:arrayType="cwmp:ParameterValueStruct[1]"`, `<Value xsi:type="xsd:string">1</Value>`,
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("encoding lacks %s:\n%s", want, data)
		}
	}
	tests := []struct {
		name string
		env  *Envelope
		want error
	}{
		{"bad namespace", &Envelope{Namespace: "urn:x", Body: &Reboot{}}, ErrNamespace},
		{"bad unknown name", &Envelope{Body: &Unknown{Name: "a b"}}, ErrUnsupported},
		{"nil envelope", nil, ErrUnsupported},
		{"nil pointer body", &Envelope{Body: (*Reboot)(nil)}, ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(tc.env); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeSamples(t *testing.T) {
	tests := []struct {
		file  string
		ns    string
		id    string
		check func(t *testing.T, m Message)
	}{
		{"huawei-inform-soapenv-cwmp10.xml", NS10, "1", func(t *testing.T, m Message) {
			in := m.(*Inform)
			if in.DeviceId.SerialNumber != "48575443A1B2C3D4" || len(in.Event) != 2 || in.Event[1].EventCode != "1 BOOT" {
				t.Errorf("inform = %+v", in)
			}
			if len(in.ParameterList) != 4 || in.ParameterList[3].Type != "xsd:boolean" || in.ParameterList[2].Value != "http://10.12.0.34:7547/cwmp" {
				t.Errorf("params = %+v", in.ParameterList)
			}
			if !in.CurrentTime.Equal(t0.Add(-8 * time.Hour)) {
				t.Errorf("time = %v", in.CurrentTime)
			}
		}},
		{"zte-inform-soapenv-cwmp12.xml", NS12, "ZTE-00001", func(t *testing.T, m Message) {
			in := m.(*Inform)
			if in.RetryCount != 2 || len(in.Event) != 1 || in.Event[0].EventCode != "2 PERIODIC" {
				t.Errorf("inform = %+v", in)
			}
			want := []ParameterValueStruct{
				{"InternetGatewayDevice.ManagementServer.ConnectionRequestURL", "http://100.64.1.2:58000/", "xsd:string"},
				{"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ExternalIPAddress", "100.64.1.2", "xsd:string"},
				{"InternetGatewayDevice.DeviceInfo.UpTime", "86400", "xsd:unsignedInt"},
			}
			if !reflect.DeepEqual(in.ParameterList, want) {
				t.Errorf("params = %+v", in.ParameterList)
			}
		}},
		{"fiberhome-inform-gbk.xml", NS10, "42", func(t *testing.T, m Message) {
			in := m.(*Inform)
			if in.DeviceId.Manufacturer != "烽火通信" || in.ParameterList[0].Value != "中国电信-客厅" {
				t.Errorf("inform = %+v", in)
			}
		}},
		{"inform-gb2312.xml", NS10, "42", func(t *testing.T, m Message) {
			in := m.(*Inform)
			if in.ParameterList[0].Value != "中国电信-客厅" || in.Event[0].EventCode != "6 CONNECTION REQUEST" {
				t.Errorf("inform = %+v", in)
			}
		}},
		{"fault-spv.xml", NS11, "acs-7", func(t *testing.T, m Message) {
			f := m.(*Fault)
			if f.Code != 9003 || len(f.SetParameterValuesFaults) != 2 || f.SetParameterValuesFaults[0].FaultCode != 9008 {
				t.Errorf("fault = %+v", f)
			}
			var err error = f
			if !strings.Contains(err.Error(), "cwmp fault 9003 (invalid arguments)") || !strings.Contains(err.Error(), "InternetGatewayDevice.DeviceInfo.SerialNumber 9008") {
				t.Errorf("Error() = %s", err)
			}
		}},
		{"gpvresponse-no-arraytype.xml", NS10, "acs-1", func(t *testing.T, m Message) {
			r := m.(*GetParameterValuesResponse)
			if len(r.ParameterList) != 2 || r.ParameterList[0].Value != "ChinaNet-ab12 & <home>" || r.ParameterList[1].Type != "xsd:string" {
				t.Errorf("resp = %+v", r)
			}
		}},
		{"gpn-request-cwmp14-default-ns.xml", NS14, "gpn-1", func(t *testing.T, m Message) {
			r := m.(*GetParameterNames)
			if r.ParameterPath != "Device.WiFi." || !r.NextLevel {
				t.Errorf("req = %+v", r)
			}
		}},
		{"gpnresponse-cwmp13.xml", NS13, "", func(t *testing.T, m Message) {
			r := m.(*GetParameterNamesResponse)
			want := []ParameterInfoStruct{{"Device.WiFi.SSID.", false}, {"Device.WiFi.SSID.1.SSID", true}, {"Device.WiFi.RadioNumberOfEntries", false}}
			if !reflect.DeepEqual(r.ParameterList, want) {
				t.Errorf("resp = %+v", r)
			}
		}},
		{"transfercomplete-cwmp11.xml", NS11, "tc-1", func(t *testing.T, m Message) {
			r := m.(*TransferComplete)
			if r.FaultStruct.FaultCode != 9016 || !r.CompleteTime.IsZero() || r.StartTime.IsZero() {
				t.Errorf("tc = %+v", r)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			env, err := Decode(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if env.Namespace != tc.ns || env.ID != tc.id {
				t.Fatalf("namespace %q id %q, want %q %q", env.Namespace, env.ID, tc.ns, tc.id)
			}
			tc.check(t, env.Body)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	many := `<Envelope><Body><GetParameterValues xmlns="urn:dslforum-org:cwmp-1-0"><ParameterNames>` +
		strings.Repeat("<string>x</string>", 11) + `</ParameterNames></GetParameterValues></Body></Envelope>`
	tests := []struct {
		name string
		dec  Decoder
		data string
		want error
	}{
		{"empty", Decoder{}, "  \n", ErrEmpty},
		{"not xml", Decoder{}, "hello", ErrMalformed},
		{"truncated", Decoder{}, `<Envelope><Body>`, ErrMalformed},
		{"no body", Decoder{}, `<Envelope/>`, ErrMalformed},
		{"wrong root", Decoder{}, `<html/>`, ErrMalformed},
		{"deep", Decoder{}, `<Envelope><Body>` + deep + `</Body></Envelope>`, ErrLimit},
		{"too many params", Decoder{MaxParameters: 10}, many, ErrLimit},
		{"too many elements", Decoder{MaxElements: 5}, many, ErrLimit},
		{"unknown namespace", Decoder{}, `<Envelope><Body><Inform xmlns="urn:other"/></Body></Envelope>`, ErrNamespace},
		{"bad int", Decoder{}, `<Envelope><Body><InformResponse xmlns="urn:dslforum-org:cwmp-1-0"><MaxEnvelopes>x</MaxEnvelopes></InformResponse></Body></Envelope>`, ErrMalformed},
		{"soap fault without detail", Decoder{}, `<Envelope><Body><Fault><faultstring>oops</faultstring></Fault></Body></Envelope>`, ErrMalformed},
		{"unknown charset", Decoder{}, `<?xml version="1.0" encoding="x-klingon"?><Envelope/>`, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.dec.Decode([]byte(tc.data))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeCharsetFallback(t *testing.T) {
	data := readTestdata(t, "fiberhome-inform-gbk.xml")
	i := bytes.Index(data, []byte("?>"))
	noDecl := data[i+2:]
	if _, err := Decode(noDecl); err == nil {
		t.Fatal("undeclared GBK decoded as UTF-8")
	}
	env, err := Decoder{Charset: "gbk"}.Decode(noDecl)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Body.(*Inform).DeviceId.Manufacturer; got != "烽火通信" {
		t.Fatalf("manufacturer = %q", got)
	}
}

func TestFaultError(t *testing.T) {
	tests := []struct {
		f    *Fault
		want string
	}{
		{&Fault{Code: 9007, String: "bad value"}, "cwmp fault 9007 (invalid parameter value): bad value"},
		{NewFault(FaultMethodNotSupported, ""), "cwmp fault 9000 (method not supported): method not supported"},
		{&Fault{Code: 9801}, "cwmp fault 9801 (vendor-specific)"},
		{&Fault{Code: 9003, String: "Invalid arguments", SetParameterValuesFaults: []SetParameterValuesFault{{"A.B", 9008, ""}}},
			"cwmp fault 9003 (invalid arguments): Invalid arguments; parameters: A.B 9008 (attempt to set a non-writable parameter)"},
		{&Fault{Code: 8005}, "cwmp fault 8005 (retry request)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.f.Error(); got != tc.want {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in   string
		want bool
		err  bool
	}{{"1", true, false}, {"true", true, false}, {" TRUE ", true, false}, {"0", false, false}, {"false", false, false}, {"yes", false, true}}
	for _, tc := range tests {
		got, err := ParseBool(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseBool(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// FuzzDecode checks that Decode never panics and that whatever it decodes
// encodes and decodes back to the same envelope.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, file := range files {
		f.Add(readTestdata(f, filepath.Base(file)))
	}
	for _, tc := range roundTripCases() {
		data, err := Encode(tc.env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Decode(data)
		if err != nil {
			return
		}
		out, err := Encode(env)
		if err != nil {
			t.Fatalf("re-encode of a decoded envelope failed: %v", err)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode failed: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(env, again) {
			t.Fatalf("not stable:\n first %#v\nsecond %#v\n%s", env, again, out)
		}
	})
}
