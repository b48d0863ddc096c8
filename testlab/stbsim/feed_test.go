package stbsim

import (
	"strconv"
	"testing"
	"time"

	"fieldagent/tr069/cpe"
)

// TestFeed: the counters grow at the channel's rate only while the box is
// authenticated and the feed delivers, and lost packets count as
// discontinuities.
func TestFeed(t *testing.T) {
	b, err := New(Config{ACSURL: "http://127.0.0.1:1/", Serial: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	count := func(name string) int { n, _ := strconv.Atoi(b.tree.Value(mainStrm + name)); return n }
	delivered, loss := true, 0.0
	var groups []string
	b.SetFeed(func(g string) (bool, float64) { groups = append(groups, g); return delivered, loss })
	t0 := time.Now()
	b.stream.last = t0

	b.advance(t0.Add(time.Second))
	if n := count("MPEG2TSStats.TSPacketsReceived"); n != 0 {
		t.Fatalf("an unauthenticated box received %d TS packets", n)
	}
	_ = b.tree.SetValue(svcInfo+"UserStatus", UserStatusAuthenticated)
	b.tree.Set(cpe.Param{Name: igmp + "ClientGroup.1.GroupAddress", Value: "239.3.1.1"})

	b.advance(t0.Add(2 * time.Second))
	ts, rtp := count("MPEG2TSStats.TSPacketsReceived"), count("RTPStats.PacketsReceived")
	if ts < 2650 || ts > 2670 || rtp != ts/tsPacketsPerRTP {
		t.Errorf("one second delivered %d TS, %d RTP packets, want about 2660 and a seventh", ts, rtp)
	}
	if len(groups) != 1 || groups[0] != "239.3.1.1" {
		t.Errorf("feed asked for %v, want the tuned group", groups)
	}

	delivered = false
	b.advance(t0.Add(3 * time.Second))
	if n := count("MPEG2TSStats.TSPacketsReceived"); n != ts {
		t.Errorf("nothing delivered, yet the count moved from %d to %d", ts, n)
	}

	delivered, loss = true, 0.1
	b.advance(t0.Add(4 * time.Second))
	got, disc := count("MPEG2TSStats.TSPacketsReceived")-ts, count("MPEG2TSStats.TSPacketsDiscontinuityCounter")
	if disc < 260 || disc > 272 || got+disc < 2650 || got+disc > 2670 {
		t.Errorf("10%% loss over a second: %d received, %d discontinuities", got, disc)
	}

	b.SetFeed(nil)
	b.advance(t0.Add(10 * time.Second))
	if n := count("MPEG2TSStats.TSPacketsReceived") - ts; n != got {
		t.Errorf("without a feed the count moved by %d", n-got)
	}
}
