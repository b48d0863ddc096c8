package iptv

import (
	"errors"
	"testing"

	"fieldagent/diagnostics"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    string // Target.String(); "" for an error
		ssm     bool
		wantErr string
	}{
		{in: "239.253.1.1:5140", want: "239.253.1.1:5140"},
		{in: "10.0.0.1@232.1.1.1:5000", want: "10.0.0.1@232.1.1.1:5000", ssm: true},
		{in: "127.0.0.1@239.3.1.1:1234", want: "127.0.0.1@239.3.1.1:1234", ssm: true},
		{in: "igmp://239.253.1.1:5140", want: "239.253.1.1:5140"},
		{in: "RTP://239.253.1.1:5140", want: "239.253.1.1:5140"},
		{in: "udp://@239.1.1.1:1234", want: "239.1.1.1:1234"},
		{in: "udp://10.1.1.1@239.1.1.1:1234", want: "10.1.1.1@239.1.1.1:1234", ssm: true},
		{in: "", wantErr: `iptv target "": want group:port such as 239.253.1.1:5140: invalid probe target`},
		{in: "239.1.1.1", wantErr: `iptv target "239.1.1.1": want group:port such as 239.253.1.1:5140: invalid probe target`},
		{in: "239.1.1.1:", wantErr: `iptv target "239.1.1.1:": want group:port such as 239.253.1.1:5140: invalid probe target`},
		{in: "239.1.1.1:0", wantErr: `iptv target "239.1.1.1:0": port "0" is not 1..65535: invalid probe target`},
		{in: "239.1.1.1:70000", wantErr: `iptv target "239.1.1.1:70000": port "70000" is not 1..65535: invalid probe target`},
		{in: "239.1.1.1:http", wantErr: `iptv target "239.1.1.1:http": port "http" is not 1..65535: invalid probe target`},
		{in: "192.168.1.1:5000", wantErr: `iptv target "192.168.1.1:5000": group "192.168.1.1" is not an IPv4 multicast address (224.0.0.0/4): invalid probe target`},
		{in: "itv.example:5000", wantErr: `iptv target "itv.example:5000": group "itv.example" is not an IPv4 multicast address (224.0.0.0/4): invalid probe target`},
		{in: "[ff0e::1]:5000", wantErr: `iptv target "[ff0e::1]:5000": group "[ff0e::1]" is not an IPv4 multicast address (224.0.0.0/4): invalid probe target`},
		{in: "224.0.0.1:5000", wantErr: `iptv target "224.0.0.1:5000": group 224.0.0.1 is in the local control block 224.0.0.0/24, not a channel: invalid probe target`},
		{in: "239.1.1.1@239.1.1.2:5000", wantErr: `iptv target "239.1.1.1@239.1.1.2:5000": source "239.1.1.1" is not a unicast IPv4 address: invalid probe target`},
		{in: "0.0.0.0@239.1.1.2:5000", wantErr: `iptv target "0.0.0.0@239.1.1.2:5000": source "0.0.0.0" is not a unicast IPv4 address: invalid probe target`},
		{in: "fe80::1@239.1.1.2:5000", wantErr: `iptv target "fe80::1@239.1.1.2:5000": source "fe80::1" is not a unicast IPv4 address: invalid probe target`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if tc.wantErr != "" {
				if !errors.Is(err, diagnostics.ErrInvalidTarget) || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want || got.SSM() != tc.ssm {
				t.Errorf("got %s (ssm %v), want %s (ssm %v)", got, got.SSM(), tc.want, tc.ssm)
			}
			again, err := ParseTarget(got.String())
			if err != nil || again != got {
				t.Errorf("String() does not parse back: %v %v", again, err)
			}
		})
	}
}
