package iptv

import (
	"math"
	"testing"
	"time"
)

const (
	dgram = 7 * 188 // bytes of TS per datagram
	rate  = 500_000 // bytes per second (4 Mbit/s)
)

// period is the time one datagram takes at rate.
var period = time.Duration(float64(dgram) / rate * float64(time.Second))

// cbr makes n evenly spaced arrivals starting at start.
func cbr(start time.Duration, n int) []arrival {
	a := make([]arrival, n)
	for i := range a {
		a[i] = arrival{at: start + time.Duration(i)*period, bytes: dgram}
	}
	return a
}

func near(got, want, tol time.Duration) bool { return got >= want-tol && got <= want+tol }

func TestMDIConstantRate(t *testing.T) {
	total := 3 * time.Second
	n := int(total/period) + 1 // every arrival due before the window's end
	ivs := mdiIntervals(cbr(0, n), rate, time.Second, total)
	if len(ivs) != 3 {
		t.Fatalf("%d intervals, want 3", len(ivs))
	}
	for k, iv := range ivs {
		// A perfectly paced stream needs one datagram of buffer.
		if !near(iv.DF, period, time.Microsecond) {
			t.Errorf("interval %d: DF %s, want %s", k, iv.DF, period)
		}
		if iv.MLR != 0 || iv.Lost != 0 {
			t.Errorf("interval %d: MLR %v lost %d", k, iv.MLR, iv.Lost)
		}
		if iv.Start != time.Duration(k)*time.Second || iv.Length != time.Second {
			t.Errorf("interval %d: start %s length %s", k, iv.Start, iv.Length)
		}
	}
	if sum := ivs[0].Datagrams + ivs[1].Datagrams + ivs[2].Datagrams; sum != n {
		t.Errorf("intervals hold %d datagrams, want %d", sum, n)
	}
}

func TestMDIBursts(t *testing.T) {
	// Datagrams arrive in bursts of 10 at once, every 10 periods: the
	// buffer must hold a whole burst.
	var arr []arrival
	for b := range 100 {
		for range 10 {
			arr = append(arr, arrival{at: time.Duration(b*10) * period, bytes: dgram})
		}
	}
	total := time.Duration(1000) * period
	ivs := mdiIntervals(arr, rate, time.Second, total)
	for k, iv := range ivs {
		if !near(iv.DF, 10*period, time.Microsecond) {
			t.Errorf("interval %d: DF %s, want %s", k, iv.DF, 10*period)
		}
	}
}

func TestMDIStall(t *testing.T) {
	// 300 ms with nothing, then the missed datagrams at once (a router
	// queue releasing): DF of that interval is the stall plus a datagram.
	arr := cbr(0, int(200*time.Millisecond/period))
	resume := 500 * time.Millisecond
	missed := int((resume - 200*time.Millisecond) / period)
	for range missed {
		arr = append(arr, arrival{at: resume, bytes: dgram})
	}
	rest := cbr(resume+period, int((1500*time.Millisecond)/period))
	arr = append(arr, rest...)
	total := 2 * time.Second
	ivs := mdiIntervals(arr, rate, time.Second, total)
	if len(ivs) != 2 {
		t.Fatalf("%d intervals", len(ivs))
	}
	if want := 300 * time.Millisecond; ivs[0].DF < want || ivs[0].DF > want+2*period {
		t.Errorf("stall interval DF %s, want about %s", ivs[0].DF, want)
	}
	if ivs[1].DF > 2*period {
		t.Errorf("steady interval DF %s, want about %s", ivs[1].DF, period)
	}
}

func TestMDIEmptyInterval(t *testing.T) {
	// The stream stops after 1 s of a 3 s window: the silent intervals
	// drain the buffer for their whole length.
	arr := cbr(0, int(time.Second/period))
	ivs := mdiIntervals(arr, rate, time.Second, 3*time.Second)
	if len(ivs) != 3 {
		t.Fatalf("%d intervals", len(ivs))
	}
	for k := 1; k < 3; k++ {
		if ivs[k].Datagrams != 0 || !near(ivs[k].DF, time.Second, time.Millisecond) {
			t.Errorf("silent interval %d: %d datagrams DF %s, want 0 and 1s", k, ivs[k].Datagrams, ivs[k].DF)
		}
	}
}

func TestMDIRateMismatch(t *testing.T) {
	// Arrivals 10 % faster than the drain rate fill the buffer by 100 ms
	// worth of data per second.
	arr := make([]arrival, 0, 2000)
	fast := time.Duration(float64(period) / 1.1)
	for i := 0; time.Duration(i)*fast < 2*time.Second; i++ {
		arr = append(arr, arrival{at: time.Duration(i) * fast, bytes: dgram})
	}
	ivs := mdiIntervals(arr, rate, time.Second, 2*time.Second)
	for k, iv := range ivs {
		if want := 100*time.Millisecond + period; !near(iv.DF, want, 2*period) {
			t.Errorf("interval %d: DF %s, want about %s", k, iv.DF, want)
		}
	}
}

func TestMDILoss(t *testing.T) {
	arr := cbr(0, int(2*time.Second/period))
	// 5 packets lost in the first second, 20 in the second.
	arr[10].lost, arr[100].lost = 2, 3
	arr[len(arr)-5].lost = 20
	ivs := mdiIntervals(arr, rate, time.Second, 2*time.Second)
	if ivs[0].Lost != 5 || ivs[0].MLR != 5 || ivs[1].Lost != 20 || ivs[1].MLR != 20 {
		t.Errorf("intervals lost/MLR %d/%v and %d/%v, want 5/5 and 20/20", ivs[0].Lost, ivs[0].MLR, ivs[1].Lost, ivs[1].MLR)
	}
}

func TestMDIRemainderAndShortWindows(t *testing.T) {
	// 2.5 s: the last interval takes the half second left over.
	arr := cbr(0, int(2500*time.Millisecond/period))
	arr[len(arr)-1].lost = 3
	ivs := mdiIntervals(arr, rate, time.Second, 2500*time.Millisecond)
	if len(ivs) != 2 || ivs[1].Length != 1500*time.Millisecond {
		t.Fatalf("intervals %+v, want 2 with the last 1.5 s long", ivs)
	}
	if ivs[1].MLR != 2 {
		t.Errorf("last interval MLR %v, want 3 lost / 1.5 s", ivs[1].MLR)
	}
	// A window shorter than the interval is one interval.
	if ivs := mdiIntervals(cbr(0, 10), rate, time.Second, 100*time.Millisecond); len(ivs) != 1 || ivs[0].Length != 100*time.Millisecond {
		t.Errorf("short window: %+v", ivs)
	}
	// Arrivals stamped after the window's end (the last read) count in the last interval.
	late := append(cbr(0, 10), arrival{at: 200 * time.Millisecond, bytes: dgram})
	if ivs := mdiIntervals(late, rate, 100*time.Millisecond, 100*time.Millisecond); ivs[0].Datagrams != 11 {
		t.Errorf("late arrival not counted: %+v", ivs)
	}
	for _, tc := range []struct {
		name  string
		arr   []arrival
		rate  float64
		iv    time.Duration
		total time.Duration
	}{
		{"no arrivals", nil, rate, time.Second, time.Second},
		{"no rate", cbr(0, 3), 0, time.Second, time.Second},
		{"no interval", cbr(0, 3), rate, 0, time.Second},
		{"no window", cbr(0, 3), rate, time.Second, 0},
	} {
		if ivs := mdiIntervals(tc.arr, tc.rate, tc.iv, tc.total); ivs != nil {
			t.Errorf("%s: %+v, want nil", tc.name, ivs)
		}
	}
}

func TestAverageRate(t *testing.T) {
	tests := []struct {
		name  string
		arr   []arrival
		total time.Duration
		want  float64
	}{
		{"constant rate", cbr(0, 1000), 5 * time.Second, rate},
		{"offset start", cbr(time.Second, 100), 5 * time.Second, rate},
		{"single datagram", cbr(0, 1), time.Second, dgram},
		{"all at once", []arrival{{0, dgram, 0}, {0, dgram, 0}}, 2 * time.Second, dgram},
		{"nothing", nil, time.Second, 0},
		{"single datagram, no window", cbr(0, 1), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := averageRate(tc.arr, tc.total); math.Abs(got-tc.want) > tc.want*1e-6 {
				t.Errorf("averageRate = %v, want %v", got, tc.want)
			}
		})
	}
}
