package mcast_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"fieldagent/testlab/mcast"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  mcast.Config
		want string
	}{
		{"no group", mcast.Config{Port: 5140}, `group "" is not an IPv4 multicast address: invalid multicast source config`},
		{"unicast group", mcast.Config{Group: "192.0.2.1", Port: 5140}, `group "192.0.2.1" is not an IPv4 multicast address: invalid multicast source config`},
		{"ipv6 group", mcast.Config{Group: "ff0e::1", Port: 5140}, `group "ff0e::1" is not an IPv4 multicast address: invalid multicast source config`},
		{"no port", mcast.Config{Group: "239.1.1.1"}, "port 0 outside 1..65535: invalid multicast source config"},
		{"port too large", mcast.Config{Group: "239.1.1.1", Port: 65536}, "port 65536 outside 1..65535: invalid multicast source config"},
		{"bitrate too low", mcast.Config{Group: "239.1.1.1", Port: 1, Bitrate: 1000}, "bitrate 1000 bit/s below 100000: invalid multicast source config"},
		{"loss rate 1", mcast.Config{Group: "239.1.1.1", Port: 1, LossRate: 1}, "loss rate 1 outside 0..1: invalid multicast source config"},
		{"loss rate negative", mcast.Config{Group: "239.1.1.1", Port: 1, LossRate: -0.1}, "loss rate -0.1 outside 0..1: invalid multicast source config"},
		{"loss rate NaN", mcast.Config{Group: "239.1.1.1", Port: 1, LossRate: math.NaN()}, "loss rate NaN outside 0..1: invalid multicast source config"},
		{"multicast source", mcast.Config{Group: "239.1.1.1", Port: 1, Source: "239.1.1.2"}, `source "239.1.1.2" is not a unicast IPv4 address: invalid multicast source config`},
		{"unspecified source", mcast.Config{Group: "239.1.1.1", Port: 1, Source: "0.0.0.0"}, `source "0.0.0.0" is not a unicast IPv4 address: invalid multicast source config`},
		{"jitter too large", mcast.Config{Group: "239.1.1.1", Port: 1, Jitter: 2 * time.Second}, "jitter 2s outside 0..1s: invalid multicast source config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := mcast.Start(t.Context(), tc.cfg)
			if err == nil {
				s.Stop()
			}
			if !errors.Is(err, mcast.ErrConfig) || err.Error() != tc.want {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestUnknownInterface(t *testing.T) {
	_, err := mcast.Start(t.Context(), mcast.Config{Group: "239.1.1.1", Port: 5140, Interface: "fa-nonexistent0"})
	if err == nil || errors.Is(err, mcast.ErrConfig) {
		t.Fatalf("err = %v, want the system's no-such-interface error", err)
	}
}
