//go:build linux

package mcast_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"fieldagent/diagnostics/iptv/mpegts"
	"fieldagent/testlab/mcast"
	"fieldagent/testlab/mcast/mcasttest"
)

var scenarios = mcasttest.Scenarios{
	"receive": receiveScenario,
	"stop":    stopScenario,
}

func TestMain(m *testing.M) { scenarios.Main(m) }

// sourceConfig is the JSON-safe part of mcast.Config a scenario takes.
type sourceConfig struct {
	Group    string
	Port     int
	Bitrate  int
	RTP      bool
	LossRate float64
	Jitter   time.Duration
	Seed     uint64
}

func (c sourceConfig) config(iface string) mcast.Config {
	return mcast.Config{Group: c.Group, Port: c.Port, Interface: iface, Bitrate: c.Bitrate, RTP: c.RTP,
		LossRate: c.LossRate, Jitter: c.Jitter, Seed: c.Seed}
}

type receiveIn struct {
	Source    sourceConfig
	Datagrams int
}

// receiveOut is what a plain receiver (no iptv package) saw.
type receiveOut struct {
	Datagrams   int
	Sizes       map[int]int // datagram size → count
	TTLs        map[int]int
	Seconds     float64 // first to last datagram
	Bytes       int     // TS bytes after the first datagram
	Summary     mpegts.Summary
	RTPVersion2 bool
	RTPPayload  map[int]int
	RTPSeqGaps  int
	RTPTSBad    int // timestamps not advancing by the datagram's length in 90 kHz ticks
	Sent        mcast.Stats
	Target      string
	// RcvbufErrors is the namespace's UDP receive-buffer drop count (only
	// meaningful inside a namespace; -1 when unknown).
	RcvbufErrors int
}

// receive joins group:port on iface, calls onJoined and reads n datagrams
// of a stream at bitrate. Arrival times are the kernel's (SO_TIMESTAMPNS)
// and the buffer is forced large, so a busy machine that is slow to read
// neither loses datagrams nor skews the rate.
func receive(ctx context.Context, iface, group string, port, bitrate, n int, onJoined func() error) (*receiveOut, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			for _, o := range [][3]int{
				{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1},
				{unix.IPPROTO_IP, unix.IP_RECVTTL, 1},
			} {
				if serr == nil {
					serr = unix.SetsockoptInt(int(fd), o[0], o[1], o[2])
				}
			}
			// Forcing past rmem_max needs root; otherwise take what is allowed.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("%s:%d", group, port))
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	defer c.Close()
	if err := ipv4.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: net.ParseIP(group)}); err != nil {
		return nil, err
	}
	if err := onJoined(); err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	if err := c.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	got := &receiveOut{Sizes: map[int]int{}, TTLs: map[int]int{}, RTPPayload: map[int]int{}, RTPVersion2: true}
	a := mpegts.NewAnalyzer()
	// 7 packets at the stream's bitrate, in 90 kHz ticks.
	tsStep := float64(mcast.PacketsPerDatagram*mpegts.PacketSize*8*90000) / float64(bitrate)
	buf := make([]byte, 2048)
	oob := make([]byte, 256)
	var first time.Time
	var lastSeq uint16
	var lastTS uint32
	for i := range n {
		k, oobn, _, _, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			return nil, fmt.Errorf("datagram %d: %w", i, err)
		}
		at, ttl, err := stampAndTTL(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("datagram %d: %w", i, err)
		}
		if i == 0 {
			first = at
		}
		got.Datagrams++
		got.Sizes[k]++
		got.TTLs[ttl]++
		ts := buf[:k]
		if k%mpegts.PacketSize == 12 { // RTP
			got.RTPVersion2 = got.RTPVersion2 && ts[0] == 0x80
			got.RTPPayload[int(ts[1])]++
			seq := uint16(ts[2])<<8 | uint16(ts[3])
			stamp := uint32(ts[4])<<24 | uint32(ts[5])<<16 | uint32(ts[6])<<8 | uint32(ts[7])
			if i > 0 && seq != lastSeq+1 {
				got.RTPSeqGaps++
			}
			if d := float64(stamp - lastTS); i > 0 && math.Abs(d-tsStep) > 1.5 {
				got.RTPTSBad++
			}
			lastSeq, lastTS = seq, stamp
			ts = ts[12:]
		}
		if i > 0 {
			got.Bytes += len(ts)
			got.Seconds = at.Sub(first).Seconds()
		}
		for len(ts) >= mpegts.PacketSize {
			_ = a.Feed(ts[:mpegts.PacketSize])
			ts = ts[mpegts.PacketSize:]
		}
	}
	got.Summary = a.Summary()
	return got, nil
}

// stampAndTTL finds the kernel timestamp and the IP TTL in a datagram's
// control messages.
func stampAndTTL(oob []byte) (time.Time, int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, 0, err
	}
	var at time.Time
	ttl := -1
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS:
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			at = time.Unix(int64(ts.Sec), int64(ts.Nsec))
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL && len(m.Data) >= 4:
			ttl = int(*(*int32)(unsafe.Pointer(&m.Data[0])))
		}
	}
	if at.IsZero() || ttl < 0 {
		return at, ttl, fmt.Errorf("control messages lack the timestamp or the ttl: %v", msgs)
	}
	return at, ttl, nil
}

// udpRcvbufErrors reads the UDP RcvbufErrors counter of this network
// namespace: datagrams the kernel dropped because a socket was full.
func udpRcvbufErrors() int {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.Atoi(f[i])
				return v
			}
		}
	}
	return -1
}

func receiveScenario(ctx context.Context, env mcasttest.Env, raw json.RawMessage) (any, error) {
	var in receiveIn
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var src *mcast.Source
	out, err := receive(ctx, env.Interface, in.Source.Group, in.Source.Port, in.Source.Bitrate, in.Datagrams, func() error {
		var err error
		src, err = mcast.Start(ctx, in.Source.config(env.Interface))
		return err
	})
	if src != nil {
		if serr := src.Stop(); serr != nil {
			return nil, fmt.Errorf("source: %w", serr)
		}
	}
	if err != nil {
		return nil, err
	}
	out.Sent, out.Target = src.Stats(), src.Target()
	out.RcvbufErrors = udpRcvbufErrors()
	return out, nil
}

type stopOut struct {
	AtStop, Later          mcast.Stats
	DoneAfterStop          bool
	StopAgain              string
	DoneAfterCancel        bool
	SentBeforeCancel       uint64
	SentAfterCancelSettled uint64
}

func stopScenario(ctx context.Context, env mcasttest.Env, _ json.RawMessage) (any, error) {
	var out stopOut
	cfg := mcast.Config{Group: "239.253.9.9", Port: 5999, Interface: env.Interface, Bitrate: 2_000_000}
	src, err := mcast.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond)
	if err := src.Stop(); err != nil {
		return nil, err
	}
	out.AtStop = src.Stats()
	select {
	case <-src.Done():
		out.DoneAfterStop = true
	default:
	}
	time.Sleep(100 * time.Millisecond)
	out.Later = src.Stats()
	if err := src.Stop(); err != nil {
		out.StopAgain = err.Error()
	}

	cctx, cancel := context.WithCancel(ctx)
	src2, err := mcast.Start(cctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	time.Sleep(100 * time.Millisecond)
	out.SentBeforeCancel = src2.Stats().Datagrams
	cancel()
	select {
	case <-src2.Done():
		out.DoneAfterCancel = true
	case <-time.After(5 * time.Second):
	}
	out.SentAfterCancelSettled = src2.Stats().Datagrams
	time.Sleep(50 * time.Millisecond)
	if n := src2.Stats().Datagrams; n != out.SentAfterCancelSettled {
		return nil, fmt.Errorf("source sent %d datagrams after its context ended", n-out.SentAfterCancelSettled)
	}
	return out, src2.Stop()
}

func TestSourceStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  sourceConfig
	}{
		{"raw udp", sourceConfig{Group: "239.253.1.1", Port: 5140, Bitrate: 4_000_000, Seed: 1}},
		{"rtp", sourceConfig{Group: "239.253.1.2", Port: 5142, Bitrate: 3_000_000, RTP: true, Seed: 2}},
		{"lossy", sourceConfig{Group: "239.253.1.3", Port: 5144, Bitrate: 4_000_000, LossRate: 0.02, Seed: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n = 1500 // about 4 s at 4 Mbit/s
			var got receiveOut
			scenarios.Run(t, "receive", receiveIn{Source: tc.src, Datagrams: n}, &got)

			size := mcast.PacketsPerDatagram * mpegts.PacketSize
			if tc.src.RTP {
				size += 12
			}
			if got.RcvbufErrors > 0 {
				t.Logf("the kernel dropped %d datagrams at the test's receiving socket (machine overloaded?)", got.RcvbufErrors)
			}
			if got.Sizes[size] != n {
				t.Errorf("datagram sizes %v, want all %d bytes", got.Sizes, size)
			}
			if len(got.TTLs) != 1 || got.TTLs[1] != n {
				t.Errorf("TTLs %v, want all 1", got.TTLs)
			}
			if wantTarget := fmt.Sprintf("%s:%d", tc.src.Group, tc.src.Port); got.Target != wantTarget {
				t.Errorf("Target() = %q, want %q", got.Target, wantTarget)
			}
			s := got.Summary
			if s.PAT == nil || len(s.PMTs) != 1 || s.PCRs == 0 || s.Invalid != 0 || s.CRCErrors != 0 {
				t.Errorf("stream: PAT %v PMTs %d PCRs %d invalid %d crc errors %d", s.PAT != nil, len(s.PMTs), s.PCRs, s.Invalid, s.CRCErrors)
			}
			// The rate on the wire is the configured one less the drops.
			rate := float64(got.Bytes) * 8 / got.Seconds
			want := float64(tc.src.Bitrate) * (1 - tc.src.LossRate)
			// A source the machine kept late stretches the window by as much.
			if tol := 0.03 + got.Sent.MaxLate.Seconds()/got.Seconds; math.Abs(rate-want)/want > tol {
				t.Errorf("received %.0f bit/s, want %.0f ±%.1f%% (%d bytes in %.3f s, sent %+v, cc errors %d, rcvbuf errors %d)", rate, want, tol*100, got.Bytes, got.Seconds, got.Sent, s.CCErrors, got.RcvbufErrors)
			}
			if rel := math.Abs(s.PCRBitrate-float64(tc.src.Bitrate)) / float64(tc.src.Bitrate); rel > 0.01 {
				t.Errorf("PCR bitrate %.0f, want %d: the PCRs must follow the configured rate", s.PCRBitrate, tc.src.Bitrate)
			}
			if got.Sent.Datagrams < uint64(n) || got.Sent.Packets != got.Sent.Datagrams*mcast.PacketsPerDatagram || got.Sent.WriteErrors != 0 {
				t.Errorf("source stats %+v for %d datagrams received", got.Sent, n)
			}
			if tc.src.LossRate == 0 {
				if s.CCErrors != 0 || got.Sent.Dropped != 0 {
					t.Errorf("clean stream: %d cc errors, %d dropped", s.CCErrors, got.Sent.Dropped)
				}
			} else {
				// Every drop the receiver saw is a continuity gap; the source
				// counts drops of datagrams sent after the receiver stopped too.
				wantLost := tc.src.LossRate * float64(n*mcast.PacketsPerDatagram)
				if float64(s.Lost) < wantLost*0.6 || float64(s.Lost) > wantLost*1.4 || s.Lost > got.Sent.Dropped {
					t.Errorf("lost %d (sent stats %+v), want about %.0f", s.Lost, got.Sent, wantLost)
				}
			}
			if tc.src.RTP {
				if !got.RTPVersion2 || got.RTPPayload[33] != n || got.RTPSeqGaps != 0 || got.RTPTSBad != 0 {
					t.Errorf("rtp: version 2 %v payload types %v seq gaps %d bad timestamps %d", got.RTPVersion2, got.RTPPayload, got.RTPSeqGaps, got.RTPTSBad)
				}
			}
		})
	}
}

func TestSourceStop(t *testing.T) {
	t.Parallel()
	var got stopOut
	scenarios.Run(t, "stop", nil, &got)
	if !got.DoneAfterStop {
		t.Error("Done not closed when Stop returned")
	}
	if got.AtStop.Datagrams == 0 {
		t.Error("nothing sent in 200 ms")
	}
	if got.Later != got.AtStop {
		t.Errorf("stats moved after Stop: %+v then %+v", got.AtStop, got.Later)
	}
	if got.StopAgain != "" {
		t.Errorf("second Stop: %s", got.StopAgain)
	}
	if !got.DoneAfterCancel || got.SentBeforeCancel == 0 {
		t.Errorf("cancelling Start's context: done %v, %d sent before", got.DoneAfterCancel, got.SentBeforeCancel)
	}
}
