package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rs/xid"
)

// Stream is one proxied connection inside a session: a net.Conn with
// deadlines and CloseWrite.
//
// Concurrency: one Read and one Write may run at once with everything else;
// all methods are safe from any goroutine. The session's reader delivers
// frames and its writer takes data under the stream's lock; neither ever
// waits for the application. Close is idempotent: it sends at most one FIN
// or RST.
type Stream struct {
	id     xid.ID
	sess   *Session
	target string

	readWake  chan struct{} // capacity 1: data, FIN, reset or close happened
	writeWake chan struct{} // capacity 1: credit arrived, the writer took data, reset or close
	opened    chan struct{} // closed at OPEN_OK or OPEN_FAIL (client side)
	rd, wd    *deadline
	wmu       sync.Mutex // one Write at a time: each hands its whole buffer to the writer

	mu sync.Mutex
	// Receive side.
	in       recvBuf // received, not yet read
	finRecv  bool
	window   uint32    // what the peer may have in flight to us
	charged  int64     // charged to the session budget: bytes buffered plus window growth
	avail    int64     // credit the peer still has
	unacked  int64     // read by the application since the last WINDOW
	cycleAt  time.Time // when the current window's worth of reading began
	cycled   int64     // bytes read since cycleAt
	openErr  error     // OPEN_FAIL, set once
	remote   string    // client side: the address the exit connected to, from OPEN_OK
	openDone bool
	answered bool // exit side: Accept or Refuse was called
	// Send side.
	credit  int64
	out     []byte // the caller's bytes the writer has yet to take
	queued  bool   // in the session's ready list
	finSent bool
	// Both.
	err       error // the stream is reset or closed: every call returns it
	closed    bool
	rstOut    bool
	cancel    context.CancelFunc // exit side: ends OnOpen's context at reset
	openTimer *time.Timer        // ExpireOpen's, stopped once the OPEN is answered
}

func newStream(s *Session, id xid.ID, target string, credit int64) *Stream {
	return &Stream{
		id: id, sess: s, target: target,
		readWake: make(chan struct{}, 1), writeWake: make(chan struct{}, 1), opened: make(chan struct{}),
		rd: newDeadline(), wd: newDeadline(),
		window: s.cfg.Window, avail: int64(s.cfg.Window), credit: credit,
	}
}

// ID is the stream's id: the registry's id of the connection.
func (st *Stream) ID() xid.ID { return st.id }

// Target is the host:port the stream was opened to.
func (st *Stream) Target() string { return st.target }

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// WaitOpen waits for the exit's answer to OPEN: nil for OPEN_OK, the
// failure (an *OpenError) for OPEN_FAIL, or why the wait ended.
func (st *Stream) WaitOpen(ctx context.Context) error {
	select {
	case <-st.opened:
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.openErr
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-st.sess.done:
		return st.sess.Err()
	}
}

func (st *Stream) Read(p []byte) (int, error) {
	for {
		st.mu.Lock()
		if isClosed(st.rd.wait()) && !st.closed {
			st.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		if st.in.len() > 0 {
			n := st.in.read(p)
			if st.in.len() > 0 {
				wake(st.readWake) // another Read may take the rest
			}
			st.unchargeLocked(int64(n))
			st.consumedLocked(int64(n))
			st.mu.Unlock()
			return n, nil
		}
		switch {
		case st.closed:
			st.mu.Unlock()
			return 0, net.ErrClosed
		case st.err != nil:
			err := st.err
			st.mu.Unlock()
			return 0, err
		case st.finRecv:
			st.mu.Unlock()
			return 0, io.EOF
		}
		st.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case <-st.readWake:
		case <-st.rd.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// WaitRead waits until a Read would not block (data, end of stream, an
// error), without reading: a relay then needs no copy buffer while a
// stream is idle. It returns os.ErrDeadlineExceeded at the read deadline.
func (st *Stream) WaitRead() error {
	for took := false; ; took = true {
		st.mu.Lock()
		ready := st.in.len() > 0 || st.closed || st.err != nil || st.finRecv
		st.mu.Unlock()
		if ready {
			if took {
				wake(st.readWake) // the news may be for a Read waiting too
			}
			return nil
		}
		select {
		case <-st.readWake:
		case <-st.rd.wait():
			return os.ErrDeadlineExceeded
		}
	}
}

// consumedLocked grants the peer credit for n bytes read, in increments of a
// quarter window, doubling the window (up to MaxWindow) when a whole window
// was consumed within two round trips: then the window, not the reader, is
// what limits the stream. A slow reader keeps its window.
func (st *Stream) consumedLocked(n int64) {
	st.unacked += n
	if st.unacked < int64(st.window/4) || st.err != nil || st.finRecv {
		return
	}
	now := time.Now()
	inc := st.unacked
	if st.cycleAt.IsZero() {
		st.cycleAt = now // the first update starts the first measured window
	} else if st.cycled += inc; st.cycled >= int64(st.window) {
		rtt := st.sess.RTT()
		if rtt > 0 && now.Sub(st.cycleAt) < 2*rtt && st.window < st.sess.cfg.MaxWindow {
			grow := min(st.window, st.sess.cfg.MaxWindow-st.window)
			if st.sess.reserve(int64(grow)) {
				st.charged += int64(grow)
				st.window += grow
				inc += int64(grow)
			}
		}
		st.cycleAt, st.cycled = now, 0
	}
	st.unacked = 0
	st.avail += inc
	st.sess.control(Frame{Type: TypeWindow, Stream: st.id, Window: uint32(inc)})
}

func (st *Stream) Write(p []byte) (int, error) {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.mu.Lock()
	if err := st.writableLocked(); err != nil {
		st.mu.Unlock()
		return 0, err
	}
	if len(p) == 0 {
		st.mu.Unlock()
		return 0, nil
	}
	st.out = p
	st.enqueueLocked()
	st.mu.Unlock()
	for {
		select {
		case <-st.writeWake:
		case <-st.wd.wait():
		}
		st.mu.Lock()
		left := len(st.out)
		var err error
		switch {
		case left == 0:
		case st.closed, st.finSent:
			err = net.ErrClosed
		case st.err != nil:
			err = st.err
		case isClosed(st.wd.wait()):
			err = os.ErrDeadlineExceeded
		default:
			st.mu.Unlock()
			continue
		}
		st.out = nil // the writer takes nothing more of p
		st.mu.Unlock()
		return len(p) - left, err
	}
}

func (st *Stream) writableLocked() error {
	switch {
	case st.closed:
		return net.ErrClosed
	case st.err != nil:
		return st.err
	case st.finSent:
		return net.ErrClosed
	case isClosed(st.wd.wait()):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// enqueueLocked puts the stream in the writer's round-robin when it has
// data and credit.
func (st *Stream) enqueueLocked() {
	if !st.queued && len(st.out) > 0 && st.credit > 0 {
		st.queued = true
		st.sess.markReady(st)
	}
}

// sendData is the writer's side: it adds the next DATA chunk, at most
// MaxData and the credit, to the writer's batch, and says whether the
// stream should stay in the round-robin. The chunk is copied from the
// caller's buffer straight into the batch while st.mu is held (Write may
// return, and its caller reuse the buffer, as soon as the chunk is taken);
// the network write happens later, without the stream's lock.
func (st *Stream) sendData(b *batch) (more bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.queued = false
	n := min(len(st.out), MaxData, int(st.credit))
	if n <= 0 || st.err != nil || st.closed || st.finSent {
		return false
	}
	start := b.begin(HeaderSize + n)
	f := Frame{Type: TypeData, Stream: st.id, Data: st.out[:n]}
	out, err := Append(b.buf, &f)
	if err != nil {
		panic(err) // cannot happen: n is within 1..MaxData and the id is set
	}
	b.buf = out
	b.finish(start)
	st.out = st.out[n:]
	st.credit -= int64(n)
	if len(st.out) == 0 {
		wake(st.writeWake)
	}
	st.queued = len(st.out) > 0 && st.credit > 0
	return st.queued
}

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
		st.openDone = true
		st.openErr = err
		close(st.opened)
	}
	st.stopOpenTimerLocked()
	wake(st.readWake)
	wake(st.writeWake)
}

// Deadlines, as net.Conn.
func (st *Stream) SetDeadline(t time.Time) error {
	st.rd.set(t)
	st.wd.set(t)
	wake(st.readWake)
	wake(st.writeWake)
	return nil
}

func (st *Stream) SetReadDeadline(t time.Time) error {
	st.rd.set(t)
	wake(st.readWake)
	return nil
}

func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.wd.set(t)
	wake(st.writeWake)
	return nil
}

// LocalAddr is the session's local address and the stream id.
func (st *Stream) LocalAddr() net.Addr { return streamAddr(st.sess.local + "#" + st.id.String()) }

// RemoteAddr is, on the client, the address the exit connected to once it
// said so in OPEN_OK, else the target as asked; on the exit, the target.
func (st *Stream) RemoteAddr() net.Addr {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.remote != "" {
		return streamAddr(st.remote)
	}
	return streamAddr(st.target)
}

// streamAddr is an address at the other end of a tunnel.
type streamAddr string

func (a streamAddr) Network() string { return "porthole" }
func (a streamAddr) String() string  { return string(a) }

func (st *Stream) stopOpenTimerLocked() {
	if st.openTimer != nil {
		st.openTimer.Stop()
		st.openTimer = nil
	}
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
