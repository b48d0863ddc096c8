package ndt7

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func int64p(v int64) *int64 { return &v }

// messageCases are ParseMessage's table, and the fuzz target's seeds.
var messageCases = []struct {
	name    string
	in      string
	want    Message
	wantErr string // substring of the error; "" means success
}{
	{
		name: "server download measurement, M-Lab style with extra TCP_INFO fields",
		in: `{"AppInfo":{"ElapsedTime":250112,"NumBytes":3407872},` +
			`"BBRInfo":{"BW":11920000,"MinRTT":412,"PacingGain":256,"CwndGain":512,"ElapsedTime":250100},` +
			`"ConnectionInfo":{"Client":"192.0.2.7:50312","Server":"[2001:db8::1]:443","UUID":"ndt-x_1"},` +
			`"Origin":"server","Test":"download",` +
			`"TCPInfo":{"State":1,"CAState":0,"BusyTime":249000,"BytesAcked":3300000,"BytesReceived":412,` +
			`"BytesSent":3420000,"BytesRetrans":1448,"ElapsedTime":250100,"MinRTT":412,"RTT":9100,"RTTVar":800,` +
			`"RWndLimited":0,"SndBufLimited":1200,"TotalRetrans":1,"SndCwnd":88}}`,
		want: Message{
			AppInfo: &AppInfo{ElapsedTime: 250112, NumBytes: 3407872},
			BBRInfo: &BBRInfo{BW: 11920000, MinRTT: 412, PacingGain: 256, CwndGain: 512, ElapsedTime: 250100},
			ConnectionInfo: &ConnectionInfo{
				Client: "192.0.2.7:50312", Server: "[2001:db8::1]:443", UUID: "ndt-x_1",
			},
			Origin: OriginServer,
			Test:   TestDownload,
			TCPInfo: &TCPInfo{
				BusyTime: 249000, BytesAcked: 3300000, BytesReceived: 412, BytesSent: 3420000, BytesRetrans: 1448,
				ElapsedTime: 250100, MinRTT: 412, RTT: 9100, RTTVar: 800, SndBufLimited: 1200, TotalRetrans: int64p(1),
			},
		},
	},
	{
		name: "client upload measurement, AppInfo only",
		in:   `{"AppInfo":{"ElapsedTime":1000000,"NumBytes":1250000},"Origin":"client","Test":"upload"}`,
		want: Message{AppInfo: &AppInfo{ElapsedTime: 1000000, NumBytes: 1250000}, Origin: OriginClient, Test: TestUpload},
	},
	{name: "empty object", in: `{}`, want: Message{}},
	{
		name: "unknown fields are ignored",
		in:   `{"WSPingInfo":{"LastRTT":3,"MinRTT":2},"Future":[1,{"a":null}],"Origin":"server"}`,
		want: Message{Origin: OriginServer},
	},
	{name: "null objects are absent", in: `{"AppInfo":null,"TCPInfo":null,"BBRInfo":null}`, want: Message{}},
	{name: "surrounding whitespace", in: " \n{\"Test\":\"upload\"}\r\n", want: Message{Test: TestUpload}},
	{
		name: "TotalRetrans zero is present, not absent",
		in:   `{"TCPInfo":{"TotalRetrans":0}}`,
		want: Message{TCPInfo: &TCPInfo{TotalRetrans: int64p(0)}},
	},
	{name: "negative byte count", in: `{"AppInfo":{"ElapsedTime":1,"NumBytes":-1}}`, wantErr: "AppInfo.NumBytes is negative"},
	{name: "negative elapsed time", in: `{"AppInfo":{"ElapsedTime":-1,"NumBytes":1}}`, wantErr: "AppInfo.ElapsedTime is negative"},
	{name: "negative RTT", in: `{"TCPInfo":{"RTT":-5}}`, wantErr: "TCPInfo.RTT is negative"},
	{name: "negative retransmits", in: `{"TCPInfo":{"TotalRetrans":-2}}`, wantErr: "TCPInfo.TotalRetrans is negative"},
	{name: "negative BBR bandwidth", in: `{"BBRInfo":{"BW":-2}}`, wantErr: "BBRInfo.BW is negative"},
	{name: "number as string", in: `{"AppInfo":{"NumBytes":"12"}}`, wantErr: "cannot unmarshal string"},
	{name: "fractional count", in: `{"AppInfo":{"ElapsedTime":1.5}}`, wantErr: "cannot unmarshal number 1.5"},
	{name: "overflowing count", in: `{"AppInfo":{"NumBytes":1e30}}`, wantErr: "cannot unmarshal number"},
	{name: "object expected for AppInfo", in: `{"AppInfo":7}`, wantErr: "cannot unmarshal number"},
	{name: "array", in: `[1,2]`, wantErr: "not a JSON object"},
	{name: "JSON null", in: `null`, wantErr: "not a JSON object"},
	{name: "empty", in: ``, wantErr: "not a JSON object"},
	{name: "truncated", in: `{"AppInfo":`, wantErr: "unexpected end of JSON"},
	{name: "trailing garbage", in: `{} x`, wantErr: "invalid character"},
	{name: "too large", in: `{"Origin":"` + strings.Repeat("a", maxTextMessageSize) + `"}`, wantErr: "exceeds 65536"},
}

func TestParseMessage(t *testing.T) {
	for _, tc := range messageCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMessage([]byte(tc.in))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want ErrProtocol containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %s\nwant %s", dump(got), dump(tc.want))
			}
		})
	}
}

// TestMessageWireNames pins the JSON names to the spec's, which M-Lab
// clients and servers expect.
func TestMessageWireNames(t *testing.T) {
	b, err := json.Marshal(Message{
		AppInfo:        &AppInfo{ElapsedTime: 1, NumBytes: 2},
		ConnectionInfo: &ConnectionInfo{Client: "c", Server: "s"},
		Origin:         OriginServer, Test: TestUpload,
		TCPInfo: &TCPInfo{BytesReceived: 3, RTT: 4, MinRTT: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"AppInfo":{"ElapsedTime":1,"NumBytes":2},"ConnectionInfo":{"Client":"c","Server":"s"},` +
		`"Origin":"server","Test":"upload","TCPInfo":{"BytesReceived":3,"MinRTT":5,"RTT":4}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func dump(m Message) string {
	b, _ := json.Marshal(m)
	return string(b)
}
