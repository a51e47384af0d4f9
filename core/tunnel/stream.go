package tunnel

import (
	"context"
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
	opened    chan struct{} // made by the first WaitOpen, closed at the answer (openedLocked); guarded by mu
	rd, wd    deadline
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
		readWake: make(chan struct{}, 1), writeWake: make(chan struct{}, 1),
		window: s.cfg.Window, avail: int64(s.cfg.Window), credit: credit,
	}
}

// ID is the stream's id: the registry's id of the connection.
func (st *Stream) ID() xid.ID { return st.id }

// Target is the host:port the stream was opened to.
func (st *Stream) Target() string { return st.target }

// Session is the session that carries the stream.
func (st *Stream) Session() *Session { return st.sess }

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// WaitOpen waits for the exit's answer to OPEN: nil for OPEN_OK, the
// failure (an *OpenError) for OPEN_FAIL, or why the wait ended.
func (st *Stream) WaitOpen(ctx context.Context) error {
	st.mu.Lock()
	if st.openDone {
		defer st.mu.Unlock()
		return st.openErr
	}
	if st.opened == nil {
		st.opened = make(chan struct{})
	}
	opened := st.opened
	st.mu.Unlock()
	select {
	case <-opened:
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.openErr
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-st.sess.done:
		return st.sess.Err()
	}
}

// openedLocked records the exit's answer (OPEN_OK, or the failure in
// openErr) and wakes WaitOpen. The channel exists only while someone waits:
// a stream that is never waited for, or was answered, holds none.
func (st *Stream) openedLocked() {
	st.openDone = true
	if st.opened != nil {
		close(st.opened)
		st.opened = nil
	}
}

// Accept (exit side) answers the stream's OPEN with OPEN_OK.
// It is answered once: a second Accept, or one after the stream was reset,
// sends nothing.
func (st *Stream) Accept() { st.AcceptFrom("") }

// AcceptFrom is Accept telling the client which address the exit connected
// to (the target's resolved IP and port), for its inspector; an address
// that cannot be sent is left out.
func (st *Stream) AcceptFrom(remote string) {
	if checkRemote([]byte(remote)) != nil {
		remote = ""
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err == nil && !st.answered {
		st.answered = true
		// An answer to the peer's OPEN: capped, and sent before our own
		// control frames, so nothing of this stream's overtakes it.
		st.sess.answer(Frame{Type: TypeOpenOK, Stream: st.id, Window: st.sess.cfg.Window, Target: remote})
	}
}

// Refuse (exit side) answers the stream's OPEN with OPEN_FAIL and ends it;
// after Accept it resets the stream instead.
func (st *Stream) Refuse(code Code, reason string) {
	reason = clampReason(reason)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err != nil {
		return
	}
	if st.answered {
		st.resetLocked(code, reason, &OpenError{Code: code, Reason: reason}, resetOwn)
		return
	}
	st.answered = true
	st.rstOut = true // the OPEN_FAIL is this stream's last frame
	st.sess.answer(Frame{Type: TypeOpenFail, Stream: st.id, Code: code, Reason: reason})
	st.resetLocked(code, reason, &OpenError{Code: code, Reason: reason}, resetQuiet)
}

// Read and WaitRead block on readWake, which holds one token, and on the
// read deadline's channel, which is nil until a deadline is set. A wait
// that took the token and then returns hands it on (wake), whatever it
// returns with: the news it brought (a deadline set, data with the end of
// the stream behind it) may be for the Reads blocked beside it too, which
// look again. Only returning waiters hand it on, so it cannot circle, and
// a stale token costs a waiter one more look.
func (st *Stream) Read(p []byte) (int, error) {
	took := false
	for {
		st.mu.Lock()
		if isClosed(st.rd.wait()) && !st.closed {
			st.mu.Unlock()
			wake(st.readWake) // a deadline set in the past: every waiter's news
			return 0, os.ErrDeadlineExceeded
		}
		if st.in.len() > 0 {
			n := st.in.read(p)
			more := st.in.len() > 0
			st.unchargeLocked(int64(n))
			st.consumedLocked(int64(n))
			st.mu.Unlock()
			if more || took {
				wake(st.readWake) // another Read may take the rest, or the news
			}
			return n, nil
		}
		end := st.endLocked()
		st.mu.Unlock()
		if end != nil {
			wake(st.readWake)
			return 0, end
		}
		if len(p) == 0 {
			return 0, nil
		}
		select {
		case <-st.readWake:
			took = true
		case <-st.rd.wait():
			wake(st.readWake)
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// endLocked is what a Read with nothing unread returns: net.ErrClosed
// after Close, the failure of a reset stream, io.EOF after the peer's FIN,
// or nil while the stream is open.
func (st *Stream) endLocked() error {
	switch {
	case st.closed:
		return net.ErrClosed
	case st.err != nil:
		return st.err
	case st.finRecv:
		return io.EOF
	}
	return nil
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
		dl := st.rd.wait()
		if dl == nil {
			// No deadline: a plain receive, whose frames are half a
			// select's on the stack of an idle relay's wait (a deadline
			// set meanwhile wakes readWake, and the loop fetches it).
			<-st.readWake
			continue
		}
		select {
		case <-st.readWake:
		case <-dl:
			wake(st.readWake) // the token this wait took may have been the deadline's news
			return os.ErrDeadlineExceeded
		}
	}
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
