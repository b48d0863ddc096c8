package iptv

import (
	"math"
	"time"
)

// arrival is one datagram as the MDI sees it.
type arrival struct {
	// at is the arrival time relative to the first datagram.
	at time.Duration
	// bytes is how many MPEG-TS bytes it carried (RTP header excluded).
	bytes int
	// lost is how many TS packets the continuity counters say went missing
	// just before this datagram's packets.
	lost int
}

// Interval holds the RFC 4445 Media Delivery Index of one measurement
// interval.
type Interval struct {
	// Start is the interval's start relative to the first datagram.
	Start time.Duration
	// Length is the interval's length: Options.Interval, except the last
	// one, which also takes the remainder of the measurement.
	Length time.Duration
	// Datagrams and Bytes (MPEG-TS bytes) arrived within the interval.
	Datagrams int
	Bytes     int64
	// Lost is how many TS packets were lost (continuity counter gaps).
	Lost int64
	// DF is the Delay Factor: the spread of the virtual buffer over the
	// interval divided by the drain rate, i.e. how much time the receiver
	// must buffer to ride out the arrival jitter.
	DF time.Duration
	// MLR is the Media Loss Rate: lost TS packets per second.
	MLR float64
}

// mdiIntervals computes the MDI of arrivals over consecutive intervals of
// length iv from the first arrival to total, draining the virtual buffer at
// rate bytes per second (RFC 4445 section 4).
//
// The virtual buffer VB(t) is the bytes received before t minus rate×t; it
// is followed through the whole measurement (not restarted per interval),
// sampled before and after each arrival and at the interval boundaries, so
// an interval in which the stream stalls shows the stall. DF of an interval
// is (max VB − min VB) / rate over its samples. A remainder shorter than iv
// at the end is folded into the last interval. It returns nil when there
// are no arrivals or rate, iv or total is not positive.
func mdiIntervals(arrivals []arrival, rate float64, iv, total time.Duration) []Interval {
	if len(arrivals) == 0 || rate <= 0 || iv <= 0 || total <= 0 {
		return nil
	}
	n := max(1, int(total/iv))
	ivs := make([]Interval, n)
	for k := range ivs {
		ivs[k].Start = time.Duration(k) * iv
		ivs[k].Length = iv
	}
	ivs[n-1].Length = total - ivs[n-1].Start

	vb := func(received float64, t time.Duration) float64 { return received - rate*t.Seconds() }
	var received float64 // bytes received before the current instant
	i := 0
	for k := range ivs {
		end := ivs[k].Start + ivs[k].Length
		last := k == n-1
		lo := vb(received, ivs[k].Start)
		hi := lo
		for ; i < len(arrivals) && (arrivals[i].at < end || last); i++ {
			a := arrivals[i]
			pre := vb(received, a.at)
			received += float64(a.bytes)
			post := pre + float64(a.bytes)
			lo, hi = math.Min(lo, pre), math.Max(hi, post)
			ivs[k].Datagrams++
			ivs[k].Bytes += int64(a.bytes)
			ivs[k].Lost += int64(a.lost)
		}
		endAt := end
		if last {
			endAt = max(end, arrivals[len(arrivals)-1].at)
		}
		endVB := vb(received, endAt)
		lo, hi = math.Min(lo, endVB), math.Max(hi, endVB)
		ivs[k].DF = time.Duration((hi - lo) / rate * float64(time.Second))
		ivs[k].MLR = float64(ivs[k].Lost) / ivs[k].Length.Seconds()
	}
	return ivs
}

// averageRate is the mean arrival rate in bytes per second: the bytes after
// the first datagram over the time from the first to the last one. With a
// single datagram, or all at one instant, it is the bytes over total.
func averageRate(arrivals []arrival, total time.Duration) float64 {
	if len(arrivals) == 0 {
		return 0
	}
	span := arrivals[len(arrivals)-1].at - arrivals[0].at
	var bytes int64
	for _, a := range arrivals[1:] {
		bytes += int64(a.bytes)
	}
	if len(arrivals) < 2 || span <= 0 {
		if total <= 0 {
			return 0
		}
		return float64(bytes+int64(arrivals[0].bytes)) / total.Seconds()
	}
	return float64(bytes) / span.Seconds()
}
