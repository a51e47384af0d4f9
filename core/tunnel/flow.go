package tunnel

import "time"

// Receive-side flow control: how a stream grants its peer credit as the
// application reads, and how its window grows (auto-tuning).
//
// The window bounds what the peer may have in flight to us, so one stream
// moves at most window ÷ round trip. A window that is too small for the
// link shows itself by being consumed quickly: when bytes read in an epoch
// (from one growth decision to the next) arrive at more than half a window
// per round trip, the window, not the reader or the link, is the limit, and
// it doubles. The decision is taken once half a window was read in the
// epoch, not a whole one, so the window can double about once per round
// trip, as a TCP sender's congestion window does in slow start. A slow
// reader never reaches the rate, and keeps its window.
//
// The round trip is the last PING's, queueing included, on purpose. Each
// stream grows as if it were alone, so four bulk downloads on a 2-core
// loopback grow to 4–8 MiB each, and 1–3 MB then waits in the client's
// socket ahead of an echo beside them. Tuning to the least recent PING
// instead (the path's round trip, as BBR's min_rtt), with growth only for
// a reader that found nothing unread, kept those windows at 1–2 MiB, but
// it cut one stream's loopback download by a third (two paired runs: 763
// and 790 MB/s before, 451 and 533 after; tunnel ÷ smux 1.49 and 1.53
// before, 0.89 and 1.29 after): under load, the credit's real round trip
// is the busy processes' turnaround, not the idle PING's. The echo's p99
// under bulk moved only from a median of 18 to 14.5 ms over six paired
// runs, about as much as bare TCP's own varied; most of it is the CPU's
// scheduling, not the queue.

// updateFraction: a WINDOW is sent once the application has read this
// fraction of the window since the last one (or a quarter of the first
// window, whichever is more). Credit granted late is in-flight room lost:
// on average half an increment sits read but not yet granted, so with
// quarter-window increments a window-limited stream moved only 7/8 of its
// window per round trip; a sixteenth keeps that loss at 1/32 for about one
// WINDOW per 2 MiB at the largest window.
const updateFraction = 16

// updateThresholdLocked is how many read bytes trigger a WINDOW.
func (st *Stream) updateThresholdLocked() int64 {
	return max(int64(st.window)/updateFraction, DefaultWindow/4)
}

// consumedLocked grants the peer credit for n bytes read, and grows the
// window when the stream is window-limited (see above) and the session
// budget has room for the growth.
func (st *Stream) consumedLocked(n int64) {
	st.unacked += n
	if st.unacked < st.updateThresholdLocked() || st.err != nil || st.finRecv {
		return
	}
	now := time.Now()
	inc := st.unacked
	if st.cycleAt.IsZero() {
		st.cycleAt = now // the first update starts the first epoch
	} else if st.cycled += inc; 2*st.cycled >= int64(st.window) {
		if st.windowLimitedLocked(now.Sub(st.cycleAt)) {
			inc += st.growLocked()
		}
		st.cycleAt, st.cycled = now, 0
	}
	st.unacked = 0
	st.avail += inc
	st.sess.control(Frame{Type: TypeWindow, Stream: st.id, Window: uint32(inc)})
}

// windowLimitedLocked says whether reading st.cycled bytes in elapsed was
// faster than half a window per round trip.
func (st *Stream) windowLimitedLocked(elapsed time.Duration) bool {
	rtt := st.sess.RTT()
	if rtt <= 0 || st.window >= st.sess.cfg.MaxWindow {
		return false
	}
	// cycled / elapsed > window / (2 rtt), without division.
	return float64(elapsed)*float64(st.window) < 2*float64(rtt)*float64(st.cycled)
}

// growLocked doubles the window (up to MaxWindow) if the session budget
// has room, and returns the growth, which the next WINDOW adds.
func (st *Stream) growLocked() int64 {
	grow := int64(min(st.window, st.sess.cfg.MaxWindow-st.window))
	if !st.sess.reserveGrowth(grow) {
		return 0
	}
	st.charged += grow
	st.window += uint32(grow)
	return grow
}
