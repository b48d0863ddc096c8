package cwmp

import (
	"fmt"
	"testing"
)

// inform50 returns a realistic e8 Inform (China Telecom X_CT-COM gateway)
// carrying 50 parameters, as a CPE sends it on BOOT.
func inform50() []byte {
	params := make([]ParameterValueStruct, 0, 50)
	fixed := []ParameterValueStruct{
		{"InternetGatewayDevice.DeviceSummary", "InternetGatewayDevice:1.4[](Baseline:1, EthernetLAN:1, WiFiLAN:1, Time:1, IPPing:1)", "xsd:string"},
		{"InternetGatewayDevice.DeviceInfo.SpecVersion", "1.0", "xsd:string"},
		{"InternetGatewayDevice.DeviceInfo.HardwareVersion", "HG6201M.A", "xsd:string"},
		{"InternetGatewayDevice.DeviceInfo.SoftwareVersion", "RP2816", "xsd:string"},
		{"InternetGatewayDevice.DeviceInfo.ProvisioningCode", "", "xsd:string"},
		{"InternetGatewayDevice.DeviceInfo.UpTime", "86400", "xsd:unsignedInt"},
		{"InternetGatewayDevice.ManagementServer.ConnectionRequestURL", "http://100.64.12.34:7547/tr069", "xsd:string"},
		{"InternetGatewayDevice.ManagementServer.ParameterKey", "", "xsd:string"},
		{"InternetGatewayDevice.ManagementServer.PeriodicInformEnable", "1", "xsd:boolean"},
		{"InternetGatewayDevice.ManagementServer.PeriodicInformInterval", "43200", "xsd:unsignedInt"},
		{"InternetGatewayDevice.X_CT-COM_UserInfo.UserName", "ad0571123456", "xsd:string"},
		{"InternetGatewayDevice.X_CT-COM_UserInfo.UserId", "0571123456789", "xsd:string"},
		{"InternetGatewayDevice.X_CT-COM_UserInfo.Status", "0", "xsd:unsignedInt"},
		{"InternetGatewayDevice.X_CT-COM_UserInfo.Result", "1", "xsd:unsignedInt"},
		{"InternetGatewayDevice.X_CT-COM_ServiceList", "INTERNET,TR069,VOIP,IPTV", "xsd:string"},
	}
	params = append(params, fixed...)
	for i := 1; len(params) < 50; i++ {
		base := fmt.Sprintf("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.%d.WANPPPConnection.1.", i)
		params = append(params,
			ParameterValueStruct{base + "ExternalIPAddress", fmt.Sprintf("100.64.%d.%d", i, 2*i), "xsd:string"},
			ParameterValueStruct{base + "ConnectionStatus", "Connected", "xsd:string"},
			ParameterValueStruct{base + "X_CT-COM_LanInterface", "InternetGatewayDevice.LANDevice.1.LANEthernetInterfaceConfig.1,InternetGatewayDevice.LANDevice.1.WLANConfiguration.1", "xsd:string"},
			ParameterValueStruct{base + "Enable", "true", "xsd:boolean"},
			ParameterValueStruct{base + "Uptime", fmt.Sprint(1000 * i), "xsd:unsignedInt"},
		)
	}
	env := &Envelope{Namespace: NS10, ID: "1234567", Body: &Inform{
		DeviceId:      DeviceIdStruct{"FiberHome", "001A2B", "HG6201M", "FHTT12345678"},
		Event:         []EventStruct{{"1 BOOT", ""}, {"X CT-COM BIND", ""}},
		MaxEnvelopes:  1,
		CurrentTime:   t0,
		ParameterList: params[:50],
	}}
	data, err := Encode(env)
	if err != nil {
		panic(err)
	}
	return data
}

func BenchmarkDecodeInform50(b *testing.B) {
	data := inform50()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(env.Body.(*Inform).ParameterList); n != 50 {
			b.Fatalf("%d parameters", n)
		}
	}
}

func BenchmarkEncodeGetParameterValuesResponse50(b *testing.B) {
	env, err := Decode(inform50())
	if err != nil {
		b.Fatal(err)
	}
	resp := &Envelope{Namespace: NS12, ID: env.ID, Body: &GetParameterValuesResponse{ParameterList: env.Body.(*Inform).ParameterList}}
	data, err := Encode(resp)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(resp); err != nil {
			b.Fatal(err)
		}
	}
}
