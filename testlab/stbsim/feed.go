package stbsim

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"fieldagent/agent/secret"
	"fieldagent/tr069/cwmp"
)

// Feed says what the network delivers to the box's port for a multicast
// group: whether the stream arrives at all, and the share (0 ≤ lossRate < 1)
// of its TS packets lost on the way.
type Feed func(group string) (delivered bool, lossRate float64)

// The simulated channel: a standard-definition stream, seven TS packets to
// an RTP datagram.
const (
	streamBitrate   = 4_000_000
	tsPacketSize    = 188
	tsPacketsPerRTP = 7
)

// streamState is the part of the main stream the feed drives.
type streamState struct {
	mu    sync.Mutex
	feed  Feed
	last  time.Time
	carry float64 // fraction of a TS packet not yet counted
	sent  int     // TS packets the feed offered since it was set
}

// SetFeed connects the box's port to a network. From then on, while the box
// is authenticated and tuned to a channel, its MainStream counters grow by
// what f delivers of that channel at 4 Mbit/s (about 2660 TS packets and 380
// RTP packets a second): nothing while f says the stream does not arrive,
// and with lost TS packets counted as discontinuities. The counters are
// brought up to date whenever the ACS asks the box something, so two reads
// some time apart show what arrived in between. nil (the default) leaves
// the counters as authentication set them.
func (b *Box) SetFeed(f Feed) {
	st := &b.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	st.feed, st.last, st.carry = f, time.Now(), 0
}

// beforeRPC brings the stream counters up to date before the engine answers.
func (b *Box) beforeRPC(context.Context, cwmp.Message) error {
	b.advance(time.Now())
	return nil
}

// advance adds what the feed delivered since the last call.
func (b *Box) advance(now time.Time) {
	st := &b.stream
	st.mu.Lock()
	defer st.mu.Unlock()
	last := st.last
	st.last = now
	if st.feed == nil || last.IsZero() || !now.After(last) || b.tree.Value(svcInfo+"UserStatus") != UserStatusAuthenticated {
		return
	}
	group := b.tree.Value(igmp + "ClientGroup.1.GroupAddress")
	if group == "" {
		return
	}
	delivered, loss := st.feed(group)
	if !delivered {
		return
	}
	ts := now.Sub(last).Seconds()*streamBitrate/(tsPacketSize*8) + st.carry
	n := math.Floor(ts)
	st.carry = ts - n
	lost := int(math.Round(n * min(max(loss, 0), 1)))
	rtp := (st.sent+int(n))/tsPacketsPerRTP - st.sent/tsPacketsPerRTP
	st.sent += int(n)
	add(b, mainStrm+"MPEG2TSStats.TSPacketsReceived", int(n)-lost)
	add(b, mainStrm+"MPEG2TSStats.TSPacketsDiscontinuityCounter", lost)
	add(b, mainStrm+"RTPStats.PacketsReceived", rtp)
}

func add(b *Box, name string, n int) {
	if n == 0 {
		return
	}
	v, _ := strconv.Atoi(b.tree.Value(name))
	_ = b.tree.SetValue(name, strconv.Itoa(v+n))
}

// Account is the box's iTV service account (X_CTC_IPTV.ServiceInfo).
type Account struct {
	UserID   string
	Password secret.Secret
	// AuthURL is the EPG authentication URL the box logs in at.
	AuthURL string
}

// Account returns the account the box holds, its password included (the
// lab reads what the ACS cannot).
func (b *Box) Account() Account {
	return Account{
		UserID:   b.tree.Value(svcInfo + "UserID"),
		Password: secret.New(b.tree.Value(svcInfo + "UserIDPassword")),
		AuthURL:  b.tree.Value(svcInfo + "AuthURL"),
	}
}

// SetAccount writes the account into the box, as someone at its settings
// menu would, and when it has a user and an AuthURL authenticates with the
// EPG before returning (ServiceInfo.UserStatus then reads 1 or 2); without
// them the box is left unauthenticated (UserStatus 0). It fails only when
// ctx ends first.
func (b *Box) SetAccount(ctx context.Context, a Account) error {
	for _, kv := range [][2]string{
		{svcInfo + "UserID", a.UserID}, {svcInfo + "UserIDPassword", a.Password.Reveal()}, {svcInfo + "AuthURL", a.AuthURL},
	} {
		if err := b.tree.SetValue(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if a.UserID == "" || a.AuthURL == "" {
		_ = b.tree.SetValue(svcInfo+"UserStatus", UserStatusNone)
		return nil
	}
	_ = b.tree.SetValue(svcInfo+"UserStatus", UserStatusNone)
	b.authenticate(ctx)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stbsim: authentication cut short: %w", err)
	}
	return nil
}
