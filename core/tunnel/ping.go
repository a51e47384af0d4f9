package tunnel

import (
	"context"
	"time"
)

// pingWaiters are the callers of Ping waiting for one PONG. A PING's
// time is its only id, so the session keeps one on-demand PING in flight
// (pingOut, its time; 0 when none) and every caller shares its answer:
// any PONG echoing a time at or after pingOut is a round trip that began
// after the first waiter asked, so it answers them all, whether it is
// the on-demand PING's or a keepalive's. Guarded by Session.mu.
type pingWaiters struct {
	out     uint64
	waiters []chan time.Duration // each buffered 1: delivery never blocks
}

// Ping measures the round trip now: it sends a PING (or joins the one in
// flight) and returns when its PONG arrives, ctx ends, or the session
// does. The measure also becomes RTT's, as the keepalive's do. Safe from
// any goroutine; it does not change the keepalive's schedule.
func (s *Session) Ping(ctx context.Context) (time.Duration, error) {
	ch := make(chan time.Duration, 1)
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return 0, err
	}
	s.ping.waiters = append(s.ping.waiters, ch)
	out := uint64(0)
	if s.ping.out == 0 {
		out = uint64(max(time.Since(s.start), 1))
		s.ping.out = out
	}
	s.mu.Unlock()
	if out != 0 {
		s.control(Frame{Type: TypePing, Time: out}) // as the keepalive's
	}
	select {
	case d := <-ch:
		return d, nil
	case <-s.done:
		return 0, s.Err()
	case <-ctx.Done():
		s.leavePing(ch)
		return 0, context.Cause(ctx)
	}
}

// leavePing removes a waiter that gave up; the last one to leave cancels
// the PING in flight, so the next caller sends a fresh one instead of
// waiting on a PONG that may never come.
func (s *Session) leavePing(ch chan time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.ping.waiters
	for i, c := range w {
		if c == ch {
			s.ping.waiters = append(w[:i:i], w[i+1:]...)
			break
		}
	}
	if len(s.ping.waiters) == 0 {
		s.ping.out = 0
	}
}

// ponged answers the waiters a PONG echoing sent answers (see
// pingWaiters); rtt is its round trip.
func (s *Session) ponged(sent uint64, rtt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ping.out == 0 || sent < s.ping.out {
		return
	}
	for _, c := range s.ping.waiters {
		c <- rtt
	}
	s.ping.waiters, s.ping.out = nil, 0
}
