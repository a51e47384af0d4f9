package tunnel

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// How a stream ends: half-closed, closed, reset or expired, and the budget
// it gives back.

// CloseWrite sends FIN: no more data from this side. Reading goes on.
func (st *Stream) CloseWrite() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return net.ErrClosed
	}
	if st.err != nil {
		return st.err
	}
	if st.finSent {
		return nil
	}
	st.finSent = true
	st.sess.control(Frame{Type: TypeFin, Stream: st.id})
	st.sess.forgetIfDoneLocked(st)
	wake(st.writeWake) // a Write still waiting for credit ends: no DATA after FIN
	return nil
}

// Close ends the stream as closing a TCP socket does: with unread data it
// resets the stream (RST canceled); otherwise it sends FIN if not sent yet,
// and DATA the peer still sends is answered with RST. Local calls return
// net.ErrClosed from then on. Idempotent. Reset aborts instead.
func (st *Stream) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil
	}
	st.closed = true
	if st.err != nil {
		st.dropLocked() // what a peer's RST left readable
	} else {
		if st.in.len() > 0 {
			st.resetLocked(CodeCanceled, "closed with unread data", net.ErrClosed, resetOwn)
		} else {
			if !st.finSent {
				st.finSent = true
				st.sess.control(Frame{Type: TypeFin, Stream: st.id})
			}
			// Nothing more will be buffered here (DATA is answered with
			// RST): the window's growth goes back to the budget now, not
			// when the peer's FIN comes, which may be never.
			st.unchargeAllLocked()
			st.sess.forgetIfDoneLocked(st)
		}
	}
	wake(st.readWake)
	wake(st.writeWake)
	return nil
}

// Reset aborts the stream: RST canceled to the peer, nothing more sent or
// delivered. For a connection closed by the user or by a failure.
func (st *Stream) Reset() error {
	st.Abort(nil)
	return nil
}

// Abort is Reset telling the peer why: the reason of the RST is cause's
// text (a relay passes on the target's reset this way, so the other end
// does not mistake a failure for a clean end).
func (st *Stream) Abort(cause error) {
	reason := abortReason(cause)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closed = true
	st.resetLocked(CodeCanceled, reason, net.ErrClosed, resetOwn)
	st.dropLocked()
}

// abortReason says why a relay gave up, without the addresses a socket
// error names (the exit's internal ones among them).
func abortReason(cause error) string {
	var opErr *net.OpError
	switch {
	case cause == nil:
		return "reset"
	case errors.As(cause, &opErr) && opErr.Err != nil:
		return clampReason(opErr.Op + ": " + opErr.Err.Error())
	}
	return clampReason(cause.Error())
}

// ExpireOpen resets the stream with a timeout unless the exit has answered
// its OPEN within d: a caller that writes before it reads (and so does not
// wait in WaitOpen) still gets an answer in bounded time.
func (st *Stream) ExpireOpen(d time.Duration) {
	t := time.AfterFunc(d, func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		if !st.openDone {
			st.resetLocked(CodeCanceled, "no answer to OPEN",
				&OpenError{Code: CodeTimeout, Reason: fmt.Sprintf("no answer from the exit within %v", d)}, resetOwn)
		}
	})
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.openDone {
		t.Stop()
		return
	}
	st.stopOpenTimerLocked() // an earlier ExpireOpen's
	st.openTimer = t
}

// resetHow says how a stream ends: which frame it sends, and what becomes of
// the bytes it holds unread.
type resetHow uint8

const (
	resetQuiet  resetHow = iota // no frame: the peer ended it (OPEN_FAIL) or the session did
	resetByPeer                 // the peer's RST: no frame; bytes already here stay readable, as TCP's
	resetOwn                    // our RST, queued with our control frames
	resetAnswer                 // an RST the peer's bad frame provoked: queued as a capped answer
)

// resetLocked ends the stream with err, sending RST code where how says
// (at most once, and not for a stream both sides already finished), and
// releases its buffers and budget.
func (st *Stream) resetLocked(code Code, reason string, err error, how resetHow) {
	if st.err != nil {
		return
	}
	st.err = err
	if (how == resetOwn || how == resetAnswer) && !st.rstOut && !(st.finSent && st.finRecv) {
		st.rstOut = true
		f := Frame{Type: TypeRst, Stream: st.id, Code: code, Reason: reason}
		if how == resetAnswer {
			st.sess.answer(f)
		} else {
			st.sess.control(f)
		}
	}
	if how == resetByPeer {
		st.unchargeGrowthLocked() // the unread bytes stay charged until read or closed
	} else {
		st.dropLocked()
	}
	st.sess.forget(st)
	if st.cancel != nil {
		st.cancel()
	}
	if !st.openDone {
		st.openErr = err
		st.openedLocked()
	}
	st.stopOpenTimerLocked()
	wake(st.readWake)
	wake(st.writeWake)
}

// The session budget bounds what a session's streams buffer: each stream is
// charged for the bytes it holds unread and for its window's growth beyond
// the first window, and gives both back as they are read or when it ends.
// An idle stream costs nothing, so a session can hold many; while the
// budget is spent, new streams are refused and windows stop growing. (A
// peer that fills every first window at once can exceed it by at most
// MaxStreams first windows.)

func (st *Stream) chargeLocked(n int64) {
	st.charged += n
	st.sess.budget.Add(-n)
}

func (st *Stream) unchargeLocked(n int64) {
	n = min(n, st.charged)
	st.charged -= n
	st.sess.release(n)
}

func (st *Stream) unchargeAllLocked() { st.unchargeLocked(st.charged) }

// unchargeGrowthLocked gives back all but the bytes still unread: a
// finished stream grows no more, but what it holds is still memory.
func (st *Stream) unchargeGrowthLocked() { st.unchargeLocked(st.charged - int64(st.in.len())) }

// dropLocked discards the unread bytes and gives back everything charged.
func (st *Stream) dropLocked() {
	st.in.reset()
	st.unchargeAllLocked()
}
