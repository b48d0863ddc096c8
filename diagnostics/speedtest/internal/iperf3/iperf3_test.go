package iperf3

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    float64
		wantErr string
	}{
		{"receiver figure", `{"end":{"sum_sent":{"bits_per_second":99e6},"sum_received":{"bits_per_second":95.5e6}}}`, 95.5, ""},
		{"iperf3 error", `{"error":"unable to connect to server: Connection refused"}`, 0, "Connection refused"},
		{"no figure", `{"end":{}}`, 0, "no end.sum_received"},
		{"not JSON", `iperf3: error`, 0, "iperf3 JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
