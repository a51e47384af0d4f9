// Package relay copies bytes between a client and a target connection in
// both directions, with half-close and live byte counting.
package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"porthole/core/tunnel"
)

// BufferSize is the size of one direction's copy buffer: large enough
// that a bulk transfer moves in few system calls (and that one Write to a
// tunnel stream hands the session's writer four DATA frames, which it sends
// with one write). A buffer is held only while bytes flow (see copyHalf):
// an idle connection holds none.
const BufferSize = 128 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

// GetBuffer borrows a copy buffer; PutBuffer gives it back.
func GetBuffer() *[]byte  { return bufPool.Get().(*[]byte) }
func PutBuffer(b *[]byte) { bufPool.Put(b) }

// Counter receives byte counts as they are delivered. *registry.Conn is one.
type Counter interface {
	AddUp(n int64)
	AddDown(n int64)
}

// waitIdle waits, reading nothing, until src has something for a read
// (bytes, its end, an error) or cannot be waited on any more (closed, a
// deadline). It is the first wait of Relay's own direction, made before
// copyHalf: a connection that never carries a byte that way waits here,
// with only small frames above the poller's (Relay's, waitIdle's and the
// wait's own), so its goroutine keeps the smallest stack (2 KiB on Linux)
// instead of growing to 4 KiB for copyHalf's frames it never runs.
// Everything it could see is still there for copyHalf, which reports it:
// a wait that ends early costs nothing but the saving.
func waitIdle(src net.Conn) {
	switch c := src.(type) {
	case readWaiter:
		_ = c.WaitRead() // its error is the stream's state: Read meets it again
	case syscall.Conn:
		waitIdleSocket(c)
	}
}

// closeWriter is a connection that can half-close (TCP, tunnel streams).
type closeWriter interface {
	CloseWrite() error
}

// readWaiter is a connection that can wait for readability without a
// buffer (tunnel streams); sockets are peeked at instead.
type readWaiter interface {
	WaitRead() error
}

// Relay copies client→target (counted as up) and target→client (down) until
// both directions have ended, then returns. A clean end of one direction (EOF)
// becomes CloseWrite on the other side, so the other direction goes on
// (half-close); a failure in either direction aborts both connections —
// TCP with a reset, tunnel streams with an RST carrying the failure — so
// neither end mistakes a cut transfer for a complete one. Bytes are passed
// on as they arrive; what a tunnel stream received goes on from the
// buffers it arrived in (Stream.WriteUnreadTo), not through a copy buffer.
//
// One direction runs on the caller's goroutine; the other (a side) has a
// goroutine only while bytes flow when its source is a socket (see side):
// an idle connection costs one goroutine. That direction is client→target
// when the client is a socket, else target→client. The caller's direction
// waits for its first byte before anything else (waitIdle), with only
// small frames above the poller's: a caller that keeps its own frames
// small keeps the smallest stack for a connection that carries nothing
// that way. Relay sets and clears
// that socket's read deadline itself: the connections' deadlines are not
// the caller's to use while it runs. To end a relay early, close both
// connections (or reset a tunnel stream): closing a parked socket alone
// wakes nothing.
//
// Relay does not close the connections when both ended cleanly: they belong
// to the caller. The returned error is the first failure, nil if both
// directions ended with EOF; recognise expected endings with Expected.
func Relay(client, target net.Conn, c Counter) error {
	// One allocation for the whole relay: it lives as long as the
	// connection, and an idle one should hold little.
	r := &relayRun{client: client, target: target}
	s := &r.side
	s.r, s.dst, s.src, s.count = r, target, client, c.AddUp
	ownDst, ownSrc, ownCount := client, target, c.AddDown
	if !socketSource(client) && socketSource(target) {
		s.dst, s.src, s.count = client, target, c.AddDown
		ownDst, ownSrc, ownCount = target, client, c.AddUp
	}
	s.start()
	waitIdle(ownSrc)
	if err := copyHalf(ownDst, ownSrc, ownCount, nil, &r.own); err != nil {
		r.abort(err)
	}
	s.join()
	return r.first
}

// relayRun is one relay's state.
type relayRun struct {
	client, target net.Conn
	closer         sync.Once
	first          error       // the failure that aborted the relay
	own            spliceState // the caller's direction's
	side           side
}

// abort ends both connections as a failure, once: the other direction
// fails next because of this close (with net.ErrClosed), and the reason
// is this first failure.
func (r *relayRun) abort(err error) {
	r.closer.Do(func() {
		r.first = err
		abortConn(r.client, err)
		abortConn(r.target, err)
	})
}

// socketSource reports whether c is read as a socket (the side can park
// on it), not as a tunnel stream.
func socketSource(c net.Conn) bool {
	_, sock := c.(syscall.Conn)
	_, stream := c.(readWaiter)
	return sock && !stream
}

// unreadWriter is a connection that writes what it has received straight
// to another (tunnel streams: no copy through a relay buffer).
type unreadWriter interface {
	WaitRead() error
	WriteUnreadTo(w io.Writer) (n int64, werr, rerr error)
}

// aborter is a connection that can end with a reset and a reason (tunnel
// streams).
type aborter interface {
	Abort(cause error)
}

// abortConn ends c as a failure: a reset, not a clean close. Errors are
// irrelevant here: the point is to unblock the other direction and tell the
// peer, and the caller closes again anyway.
func abortConn(c net.Conn, cause error) {
	switch c := c.(type) {
	case aborter:
		c.Abort(cause)
	case *net.TCPConn:
		_ = c.SetLinger(0) // close sends RST
		_ = c.Close()
	case interface{ Reset() error }: // a TLS proxy connection: no close_notify
		_ = c.Reset()
	default:
		_ = c.Close()
	}
}

// copyHalf copies src to dst until src ends, then half-closes dst. It
// holds a pooled buffer only while bytes flow: once a read comes back short
// (the socket is drained) the buffer goes back to the pool and the next wait
// happens without one. With s (the side's run), the waits may park it: it
// returns errParked, having moved everything that was readable.
func copyHalf(dst, src net.Conn, count func(int64), s *side, q *spliceState) error {
	if s != nil && !s.slot.parkable() {
		s = nil
	}
	if handled, eof, err := spliceHalf(dst, src, count, s, q); handled {
		if err != nil || !eof {
			return err
		}
		return closeWrite(dst)
	}
	if uw, ok := src.(unreadWriter); ok && s == nil {
		return drainHalf(dst, uw, count)
	}
	readable := newPeeker(src)
	rw, _ := src.(readWaiter)
	var bp *[]byte
	defer func() {
		if bp != nil {
			PutBuffer(bp)
		}
	}()
	for {
		if bp == nil {
			var err error
			switch {
			case rw != nil:
				err = rw.WaitRead()
			case s != nil && readable != nil:
				err = s.await(readable.poll)
			default:
				err = readable.wait()
			}
			if err != nil {
				return err
			}
			bp = GetBuffer()
		}
		buf := *bp
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			if w > 0 {
				count(int64(w))
				if s != nil {
					s.moved = true
				}
			}
			if werr != nil {
				return werr
			}
		}
		if errors.Is(rerr, io.EOF) {
			return closeWrite(dst)
		}
		if rerr != nil {
			return rerr
		}
		if n < len(buf) {
			PutBuffer(bp)
			bp = nil
		}
	}
}

// drainHalf is copyHalf from a tunnel stream: what it received goes to
// dst from the buffers it arrived in, and no copy buffer is held at all.
func drainHalf(dst net.Conn, src unreadWriter, count func(int64)) error {
	for {
		if err := src.WaitRead(); err != nil {
			return err
		}
		n, werr, rerr := src.WriteUnreadTo(dst)
		if n > 0 {
			count(n)
		}
		switch {
		case werr != nil:
			return werr
		case errors.Is(rerr, io.EOF):
			return closeWrite(dst)
		case rerr != nil:
			return rerr
		}
	}
}

// closeWrite passes the end of src's stream on to dst: a half-close where
// dst has one, else a close.
func closeWrite(dst net.Conn) error {
	if cw, ok := dst.(closeWriter); ok {
		// Passing on the end of the stream to a peer that is gone already
		// (it reset or shut down) is not a failure of this direction:
		// everything was handed over, and the other direction reports the
		// peer's reset if it matters.
		if err := cw.CloseWrite(); err != nil && !peerGone(err) {
			return err
		}
		return nil
	}
	return dst.Close()
}

// Expected reports whether err is an ordinary way for a connection to end:
// the peer went away or reset, or we closed it ourselves, or the tunnel
// carrying it ended (the tunnel client reports that once, not per stream).
// Such endings are logged at DEBUG, never as errors.
func Expected(err error) bool {
	var reset *tunnel.ResetError
	if errors.As(err, &reset) && (reset.Code == tunnel.CodeProtocol || reset.Code == tunnel.CodeFlowControl) {
		return false // the peer says this end broke the protocol: for a person to look at
	}
	return err == nil ||
		errors.Is(err, tunnel.ErrReset) ||
		errors.Is(err, tunnel.ErrTunnelLost) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		peerGone(err)
}
