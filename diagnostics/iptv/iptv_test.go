package iptv

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fieldagent/diagnostics"
	"fieldagent/diagnostics/iptv/mpegts"
)

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"negative duration", Options{Duration: -time.Second}, "iptv duration -1s outside 0..10m0s: invalid probe options"},
		{"duration too long", Options{Duration: time.Hour}, "iptv duration 1h0m0s outside 0..10m0s: invalid probe options"},
		{"negative join timeout", Options{JoinTimeout: -1}, "iptv join timeout -1ns is negative: invalid probe options"},
		{"interval too short", Options{Interval: time.Millisecond}, "iptv mdi interval 1ms below 10ms: invalid probe options"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Measure(t.Context(), "239.1.1.1:5000", tc.opts)
			if !errors.Is(err, diagnostics.ErrInvalidOptions) || err.Error() != tc.want {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMeasureRefusesBeforeJoining(t *testing.T) {
	if _, err := Measure(t.Context(), "10.0.0.1:5000", Options{}); !errors.Is(err, diagnostics.ErrInvalidTarget) {
		t.Errorf("unicast target: err = %v, want ErrInvalidTarget", err)
	}
	_, err := Measure(t.Context(), "239.1.1.1:5000", Options{Interface: "fa-nonexistent0"})
	if !errors.Is(err, diagnostics.ErrInvalidOptions) || !strings.Contains(err.Error(), `interface "fa-nonexistent0" not found (have `) {
		t.Errorf("unknown interface: err = %v", err)
	}
}

func TestProbeInvalidTarget(t *testing.T) {
	rs, err := Probe(Options{})(t.Context(), "not-a-group", prometheus.NewRegistry(), nil)
	if !errors.Is(err, diagnostics.ErrInvalidTarget) || rs != nil {
		t.Errorf("readings %v err %v, want none and ErrInvalidTarget", rs, err)
	}
}

// stream makes n datagrams of a synthetic channel at bitrate, optionally
// dropping every dropEvery-th TS packet and wrapping in RTP.
func stream(t *testing.T, bitrate, n, dropEvery int, rtp bool) [][]byte {
	t.Helper()
	w, err := mpegts.NewWriter(mpegts.WriterConfig{Bitrate: bitrate})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	k := 0
	for i := range n {
		var d []byte
		if rtp {
			d = []byte{0x80, rtpPayloadMP2T, byte(i >> 8), byte(i), 0, 0, 0, 0, 1, 2, 3, 4}
		}
		for kept := 0; kept < 7; {
			pkt := w.Next(nil)
			k++
			if dropEvery > 0 && k%dropEvery == 0 {
				continue
			}
			d = append(d, pkt...)
			kept++
		}
		out = append(out, d)
	}
	return out
}

func newTestReceiver() *receiver {
	return &receiver{opts: Options{}.withDefaults(), an: mpegts.NewAnalyzer(), target: Target{Port: 5000}}
}

func TestReceiverCleanStream(t *testing.T) {
	const bitrate = 4_000_000
	window := 2 * time.Second
	per := time.Duration(float64(7*188*8) / bitrate * float64(time.Second))
	r := newTestReceiver()
	for i, d := range stream(t, bitrate, int(window/per)+1, 0, false) {
		r.datagram(d, time.Duration(i)*per)
	}
	rep, err := r.finish(window)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.PAT || !rep.PMT || !rep.PCR || rep.PCRPID != mpegts.DefaultVideoPID {
		t.Errorf("PAT %v PMT %v PCR %v on %#x", rep.PAT, rep.PMT, rep.PCR, rep.PCRPID)
	}
	if rep.CCErrors != 0 || rep.MLR != 0 || rep.BadDatagrams != 0 || rep.RTP || rep.Encapsulation != "udp" {
		t.Errorf("clean stream: %+v", rep)
	}
	if !rep.NominalFromPCR || rep.NominalBitrate < bitrate*0.999 || rep.NominalBitrate > bitrate*1.001 {
		t.Errorf("nominal %v from PCR %v, want %d from PCR", rep.NominalBitrate, rep.NominalFromPCR, bitrate)
	}
	if rep.Bitrate < bitrate*0.99 || rep.Bitrate > bitrate*1.01 {
		t.Errorf("bitrate %v, want %d", rep.Bitrate, bitrate)
	}
	if rep.DF < per-time.Microsecond || rep.DF > per+50*time.Microsecond || len(rep.Intervals) != 2 {
		t.Errorf("DF %s over %d intervals, want %s (one datagram) over 2", rep.DF, len(rep.Intervals), per)
	}
}

func TestReceiverLossAndRTP(t *testing.T) {
	const bitrate = 2_000_000
	per := time.Duration(float64(7*188*8) / bitrate * float64(time.Second))
	r := newTestReceiver()
	ds := stream(t, bitrate, 1000, 50, true) // 2 % of TS packets dropped
	ds = append(ds[:500], ds[502:]...)       // and two RTP packets
	for i, d := range ds {
		r.datagram(d, time.Duration(i)*per)
	}
	window := time.Duration(len(ds)) * per
	rep, err := r.finish(window)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.RTP || rep.Encapsulation != "rtp" || rep.RTPLost != 2 || rep.RTPLate != 0 {
		t.Errorf("rtp %v %q lost %d late %d, want rtp, 2 lost", rep.RTP, rep.Encapsulation, rep.RTPLost, rep.RTPLate)
	}
	// 1000×7 kept of 7000×50/49 generated: 142 dropped, plus 14 in the two
	// lost RTP packets; gaps of up to 15 per PID are counted exactly.
	wantLost := 142.0 + 14
	if float64(rep.LostPackets) < wantLost*0.95 || float64(rep.LostPackets) > wantLost*1.05 {
		t.Errorf("lost %d TS packets, want about %.0f", rep.LostPackets, wantLost)
	}
	if mlr := float64(rep.LostPackets) / window.Seconds(); rep.MLR != mlr || rep.MLRMax < mlr {
		t.Errorf("MLR %v max %v, want %v", rep.MLR, rep.MLRMax, mlr)
	}
	// The PCRs still give the sent rate: losses are counted in.
	if !rep.NominalFromPCR || rep.NominalBitrate < bitrate*0.99 || rep.NominalBitrate > bitrate*1.01 {
		t.Errorf("nominal %v (from PCR %v), want %d", rep.NominalBitrate, rep.NominalFromPCR, bitrate)
	}
	rs := Readings(rep)
	if v, ok := reading(rs, "iptv_rtp_lost"); !ok || v != 2 {
		t.Errorf("iptv_rtp_lost %v (present %v), want 2", v, ok)
	}
}

func TestReceiverNotMPEGTS(t *testing.T) {
	r := newTestReceiver()
	for i, d := range [][]byte{
		[]byte("M-SEARCH * HTTP/1.1\r\n"),
		make([]byte, 1316), // zeros: no sync byte
		{0x80, 33, 0, 1},   // RTP too short
		append([]byte{0x80, 33, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 188)...), // RTP, no TS
		append([]byte{0x47}, make([]byte, 186)...),                                   // 187 bytes
	} {
		r.datagram(d, time.Duration(i)*time.Millisecond)
	}
	rep, err := r.finish(time.Second)
	if !errors.Is(err, ErrNotMPEGTS) || rep.Datagrams != 5 || rep.BadDatagrams != 5 || rep.Packets != 0 {
		t.Errorf("err %v datagrams %d bad %d packets %d, want ErrNotMPEGTS and 5 bad of 5", err, rep.Datagrams, rep.BadDatagrams, rep.Packets)
	}
}

func TestReceiverIncompleteStream(t *testing.T) {
	// Video packets only: no PAT, no PMT, and no PCR either.
	r := newTestReceiver()
	var cc uint8
	for i := range 100 {
		var d []byte
		for range 7 {
			var err error
			d, err = mpegts.Packet{PID: 0x100, CC: cc, Payload: make([]byte, 184)}.Append(d)
			if err != nil {
				t.Fatal(err)
			}
			cc = (cc + 1) & 0xF
		}
		r.datagram(d, time.Duration(i)*time.Millisecond)
	}
	rep, err := r.finish(100 * time.Millisecond)
	if !errors.Is(err, ErrIncompleteStream) || !strings.Contains(err.Error(), "no PAT, no PMT, no PCR") {
		t.Errorf("err = %v, want ErrIncompleteStream naming all three", err)
	}
	if rep.PAT || rep.PMT || rep.PCR || rep.Packets != 700 || rep.CCErrors != 0 {
		t.Errorf("report %+v", rep)
	}
	if rep.NominalFromPCR || rep.NominalBitrate != rep.Bitrate || rep.Bitrate == 0 {
		t.Errorf("without PCR the drain rate must be the measured %v, got %v", rep.Bitrate, rep.NominalBitrate)
	}
	rs := Readings(rep)
	for _, name := range []string{"iptv_pat", "iptv_pmt", "iptv_pcr"} {
		if v, ok := reading(rs, name); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, v, ok)
		}
	}
}

func TestReadings(t *testing.T) {
	rep := Report{JoinLatency: 12 * time.Millisecond, Packets: 1000, CCErrors: 3, MLR: 1.5, DF: 4500 * time.Microsecond,
		Bitrate: 8_250_000, PAT: true, PMT: true, PCR: false}
	rs := Readings(rep)
	want := []diagnostics.Reading{
		{Name: "iptv_join_ms", Value: 12, Unit: "ms"},
		{Name: "iptv_packets", Value: 1000},
		{Name: "iptv_cc_errors", Value: 3},
		{Name: "iptv_mlr", Value: 1.5, Unit: "packets/s"},
		{Name: "iptv_df_ms", Value: 4.5, Unit: "ms"},
		{Name: "iptv_bitrate_mbps", Value: 8.25, Unit: "Mbit/s"},
		{Name: "iptv_pat", Value: 1},
		{Name: "iptv_pmt", Value: 1},
		{Name: "iptv_pcr", Value: 0},
	}
	if !slices.Equal(rs, want) {
		t.Errorf("Readings =\n%v\nwant\n%v", rs, want)
	}
	rep.RTP, rep.RTPLost = true, 4
	if rs := Readings(rep); len(rs) != len(want)+1 || rs[len(rs)-1] != (diagnostics.Reading{Name: "iptv_rtp_lost", Value: 4}) {
		t.Errorf("RTP readings end with %v", rs[len(rs)-1])
	}
}

func TestCutShortNamesTheDeadline(t *testing.T) {
	r := newTestReceiver()
	for i, d := range stream(t, 1_000_000, 50, 0, false) {
		r.datagram(d, time.Duration(i)*10*time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	rep, err := r.cutShort(ctx, time.Now().Add(-500*time.Millisecond))
	if !errors.Is(err, diagnostics.ErrTimeout) || rep.Packets != 350 || !strings.Contains(err.Error(), "cut short after 0.5 s of 5s") {
		t.Errorf("err %v packets %d, want ErrTimeout with 350 packets", err, rep.Packets)
	}
	if _, err := newTestReceiver().cutShort(ctx, time.Time{}); !errors.Is(err, diagnostics.ErrTimeout) || !errors.Is(err, ErrNoPackets) {
		t.Errorf("nothing received: err %v, want ErrNoPackets and ErrTimeout", err)
	}
}

func reading(rs []diagnostics.Reading, name string) (float64, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r.Value, true
		}
	}
	return 0, false
}
