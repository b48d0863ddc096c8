package mpegts

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestWriterConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  WriterConfig
		want string
	}{
		{"no bitrate", WriterConfig{}, "bitrate 0 bit/s below 100000: invalid mpeg-ts writer config"},
		{"pmt pid reserved", WriterConfig{Bitrate: 1e6, PMTPID: 0x0001}, "pmt pid 0x0001 outside 0x0010..0x1ffe: invalid mpeg-ts writer config"},
		{"video pid null", WriterConfig{Bitrate: 1e6, VideoPID: PIDNull}, "video pid 0x1fff outside 0x0010..0x1ffe: invalid mpeg-ts writer config"},
		{"same pids", WriterConfig{Bitrate: 1e6, VideoPID: 0x1000}, "video pid and pmt pid are both 0x1000: invalid mpeg-ts writer config"},
		{"pcr interval too long", WriterConfig{Bitrate: 1e6, PCRInterval: 101 * time.Millisecond}, "pcr interval 101ms outside 0..100ms: invalid mpeg-ts writer config"},
		{"psi interval negative", WriterConfig{Bitrate: 1e6, PSIInterval: -1}, "psi interval -1ns outside 0..10s: invalid mpeg-ts writer config"},
		{"initial pcr too large", WriterConfig{Bitrate: 1e6, InitialPCR: PCRWrap}, "initial pcr 2576980377600 not below 2576980377600: invalid mpeg-ts writer config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewWriter(tc.cfg)
			if !errors.Is(err, ErrWriterConfig) || err.Error() != tc.want {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestWriterStream(t *testing.T) {
	for _, bitrate := range []int{MinWriterBitrate, 3_750_000, 8_000_000, 19_392_658} {
		cfg := WriterConfig{Bitrate: bitrate, InitialPCR: PCRWrap - 5*PCRClockHz} // wraps after 5 s
		w, err := NewWriter(cfg)
		if err != nil {
			t.Fatal(err)
		}
		seconds := 12.0
		n := int(seconds * float64(bitrate) / (PacketSize * 8))
		a := NewAnalyzer()
		var (
			lastPCR, lastPSI  int = -1, -1
			maxPCRGap, maxPSI int
			pcrCount          int
		)
		for i := range n {
			b := w.Next(nil)
			if err := a.Feed(b); err != nil {
				t.Fatalf("%d bit/s packet %d: %v", bitrate, i, err)
			}
			p, _ := ParsePacket(b)
			if p.Adaptation.HasPCR {
				// The PCR is the packet's due time on the constant-rate schedule.
				want := float64(cfg.InitialPCR) + float64(i)*PacketSize*8*PCRClockHz/float64(bitrate)
				want = math.Mod(want, float64(PCRWrap))
				if got := float64(p.Adaptation.PCR); math.Abs(got-want) > 1 {
					t.Fatalf("%d bit/s packet %d: PCR %v, want %v", bitrate, i, got, want)
				}
				if lastPCR >= 0 {
					maxPCRGap = max(maxPCRGap, i-lastPCR)
				}
				lastPCR = i
				pcrCount++
			}
			if p.PID == PIDPAT {
				if lastPSI >= 0 {
					maxPSI = max(maxPSI, i-lastPSI)
				}
				lastPSI = i
			}
		}
		s := a.Summary()
		if s.CCErrors != 0 || s.CRCErrors != 0 || s.SectionErrors != 0 || s.Invalid != 0 {
			t.Errorf("%d bit/s: errors in the synthetic stream: %+v", bitrate, s)
		}
		if s.PAT == nil || len(s.PMTs) != 1 || s.PMTs[0].PCRPID != DefaultVideoPID || s.PMTs[0].Streams[0].Type != DefaultStreamType {
			t.Errorf("%d bit/s: tables PAT %+v PMTs %+v", bitrate, s.PAT, s.PMTs)
		}
		if s.PCRPID != DefaultVideoPID || s.PCRs < uint64(pcrCount)-2 {
			t.Errorf("%d bit/s: PCR PID %#x with %d PCRs, want %#x with ~%d", bitrate, s.PCRPID, s.PCRs, DefaultVideoPID, pcrCount)
		}
		if rel := math.Abs(s.PCRBitrate-float64(bitrate)) / float64(bitrate); rel > 1e-6 {
			t.Errorf("%d bit/s: PCR bitrate %.1f", bitrate, s.PCRBitrate)
		}
		perSecond := float64(bitrate) / (PacketSize * 8)
		// Intervals in packets, allowing for the PSI pair that can delay a PCR.
		if limit := int(perSecond*DefaultPCRInterval.Seconds()) + 3; maxPCRGap > limit {
			t.Errorf("%d bit/s: %d packets between PCRs, want ≤ %d", bitrate, maxPCRGap, limit)
		}
		if limit := int(perSecond*DefaultPSIInterval.Seconds()) + 3; maxPSI > limit {
			t.Errorf("%d bit/s: %d packets between PATs, want ≤ %d", bitrate, maxPSI, limit)
		}
		if got := w.Written(); got != uint64(n) {
			t.Errorf("Written = %d, want %d", got, n)
		}
		if due := w.Due().Seconds(); math.Abs(due-float64(n)/perSecond) > 1e-6 {
			t.Errorf("Due = %.6f s after %d packets, want %.6f", due, n, float64(n)/perSecond)
		}
	}
}

func TestWriterLossShowsInCCAndKeepsPCRBitrate(t *testing.T) {
	w, err := NewWriter(WriterConfig{Bitrate: 4_000_000})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAnalyzer()
	dropped := 0
	for i := range 20000 {
		b := w.Next(nil)
		if i%97 == 50 { // about 1% lost, never 16 in a row on one PID
			dropped++
			continue
		}
		if err := a.Feed(b); err != nil {
			t.Fatal(err)
		}
	}
	s := a.Summary()
	if s.Lost != uint64(dropped) || s.CCErrors != uint64(dropped) {
		t.Errorf("lost %d cc errors %d, want %d each", s.Lost, s.CCErrors, dropped)
	}
	if rel := math.Abs(s.PCRBitrate-4e6) / 4e6; rel > 1e-3 {
		t.Errorf("PCR bitrate %.0f with losses, want 4000000 (lost packets counted)", s.PCRBitrate)
	}
}

func BenchmarkAnalyzer(b *testing.B) {
	w, err := NewWriter(WriterConfig{Bitrate: 8_000_000})
	if err != nil {
		b.Fatal(err)
	}
	pkts := make([][]byte, 4096)
	for i := range pkts {
		pkts[i] = w.Next(nil)
	}
	a := NewAnalyzer()
	b.SetBytes(PacketSize)
	for i := 0; b.Loop(); i++ {
		if err := a.Feed(pkts[i%len(pkts)]); err != nil {
			b.Fatal(err)
		}
	}
}
