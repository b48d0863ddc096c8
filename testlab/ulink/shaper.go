package ulink

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// shaper is one direction of the link: it drops packets at the loss rate,
// paces them to the rate limit, holds them for the delay plus jitter and
// then hands them to deliver, in the order they were offered.
type shaper struct {
	delay, jitter time.Duration
	loss          float64
	rate          int64 // bit/s; 0 is unlimited
	limit         int   // most packets waiting
	deliver       func([]byte)
	c             *counters

	mu        sync.Mutex
	lossRNG   *rand.Rand
	jitterRNG *rand.Rand
	busyUntil time.Time // when the last accepted packet is fully serialized
	last      time.Time // departure of the last accepted packet
	queue     []packet  // departures never decrease along the queue
	wake      chan struct{}
}

// packet is a packet waiting in a shaper until at.
type packet struct {
	at   time.Time
	data []byte
}

// newShaper returns the shaper for direction dir (0 or 1) of a link with
// config cfg (defaults applied). Each direction draws loss and jitter from
// its own generators, so its losses depend only on its own packets.
func newShaper(cfg Config, dir uint64, c *counters, deliver func([]byte)) *shaper {
	return &shaper{
		delay:     cfg.Delay,
		jitter:    cfg.Jitter,
		loss:      cfg.Loss,
		rate:      cfg.Rate,
		limit:     cfg.QueueLen,
		deliver:   deliver,
		c:         c,
		lossRNG:   rand.New(rand.NewPCG(cfg.Seed, 2*dir)),
		jitterRNG: rand.New(rand.NewPCG(cfg.Seed, 2*dir+1)),
		wake:      make(chan struct{}, 1),
	}
}

// offer takes p (which the shaper keeps) into the link at the current time.
func (s *shaper) offer(p []byte) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loss > 0 && s.lossRNG.Float64() < s.loss {
		s.c.dropped.Add(1)
		return
	}
	if len(s.queue) >= s.limit {
		s.c.overflow.Add(1)
		return
	}
	sent := now
	if s.rate > 0 {
		if s.busyUntil.After(sent) {
			sent = s.busyUntil
		}
		sent = sent.Add(time.Duration(int64(len(p)) * 8 * int64(time.Second) / s.rate))
		s.busyUntil = sent
	}
	d := s.delay
	if s.jitter > 0 {
		d += time.Duration(s.jitterRNG.Int64N(2*int64(s.jitter)+1)) - s.jitter
		d = max(d, 0)
	}
	at := sent.Add(d)
	if at.Before(s.last) {
		at = s.last // jitter never reorders packets
	}
	s.last = at
	s.queue = append(s.queue, packet{at: at, data: p})
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run delivers queued packets at their departure times until ctx ends;
// packets still queued then are discarded.
func (s *shaper) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		head := s.queue[0]
		if wait := time.Until(head.at); wait > 0 {
			// Packets offered meanwhile leave no earlier than head.
			s.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
				continue
			}
		}
		s.queue[0] = packet{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		s.deliver(head.data)
	}
}
