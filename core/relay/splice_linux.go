package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// spliceHalf copies src to dst inside the kernel when both are TCP
// sockets (direct mode), the way io.Copy between two TCPConns does with
// splice(2), but in batches of exactly what is queued on src, so that
// every batch is counted as soon as it is delivered: the inspector's speed
// and totals stay live for a trickle as for a bulk transfer.
//
// Each batch is dst.ReadFrom over an io.LimitedReader of src, which the
// net package turns into splice through a pipe it borrows from its own
// pool and gives back at once. Between batches the connection holds no
// pipe and no buffer: waitQueued waits in the runtime poller.
//
// handled is false when the connections are not both TCP sockets (or the
// kernel will not splice them) and nothing was moved; the caller then
// copies in user space. On EOF it returns with eof true and the half-close
// left to the caller. With sd (a side's run) a wait may park the
// direction instead: err is then errParked.
func spliceHalf(dst, src net.Conn, count func(int64), sd *side, q *spliceState) (handled, eof bool, err error) {
	d, ok1 := dst.(*net.TCPConn)
	s, ok2 := src.(*net.TCPConn)
	if !ok1 || !ok2 {
		return false, false, nil
	}
	if q.rc == nil {
		if q.rc, err = s.SyscallConn(); err != nil {
			return false, false, nil
		}
		q.fn = q.poll
		q.ready = q.wait
	}
	// Once parked, another goroutine may own q: nothing of q is touched
	// after a wait returns errParked.
	q.lr.R = s
	moved := false
	for {
		var err error
		if sd != nil {
			err = sd.await(q.ready)
		} else {
			_, err = q.wait(true)
		}
		if errors.Is(err, errParked) {
			return true, false, err
		}
		if err != nil {
			return true, false, &net.OpError{Op: "read", Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: err}
		}
		n := q.queued
		if n == 0 {
			return true, true, nil // the peer's FIN
		}
		q.lr.N = int64(n)
		w, err := d.ReadFrom(&q.lr)
		if w > 0 {
			moved = true
			count(w)
			if sd != nil {
				sd.moved = true
			}
		}
		if err != nil {
			return true, false, err
		}
		if w == 0 {
			if !moved {
				// Bytes queued but none moved: this kernel does not
				// splice these sockets. Nothing was consumed; copy in
				// user space.
				return false, false, nil
			}
			return true, false, io.ErrNoProgress // never spin on a stuck socket
		}
	}
}

// spliceState is one direction's state between splice batches, kept
// with the direction so that waiting allocates nothing: an idle
// connection's wait then holds no garbage of its own.
type spliceState struct {
	rc     syscall.RawConn
	lr     io.LimitedReader
	fn     func(fd uintptr) bool          // q.poll, bound once
	ready  func(block bool) (bool, error) // q.wait, bound once
	queued int
	serr   error
	block  bool
}

// wait waits until src has bytes queued, or has ended, without holding a
// buffer, and leaves how many bytes are queued (SIOCINQ) in q.queued: 0
// means EOF. A socket error (a reset) is returned as a syscall error.
// Waiting happens inside the runtime poller's RawRead, so deadlines and
// Close unblock it as they do a Read. Without block it does not wait:
// ready false means nothing yet.
func (q *spliceState) wait(block bool) (ready bool, err error) {
	q.queued, q.serr, q.block = 0, nil, block
	if err := q.rc.Read(q.fn); err != nil {
		return false, err
	}
	return q.queued >= 0, q.serr
}

func (q *spliceState) poll(fd uintptr) bool {
	for {
		n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if err != nil {
			q.serr = os.NewSyscallError("ioctl", err)
			return true
		}
		if n > 0 {
			q.queued = n
			return true
		}
		// Nothing queued: empty, at EOF, or failed. A one-byte peek
		// tells which without consuming anything but a pending error.
		// syscall's Recvfrom, not x/sys/unix's: this one allocates
		// nothing (unix.Recvfrom allocated its sockaddr, about 560 bytes
		// of garbage per direct connection in a heap profile).
		var b [1]byte
		m, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			if !q.block {
				q.queued = -1
				return true
			}
			return false // empty: the poller waits for readability
		case err != nil:
			q.serr = os.NewSyscallError("recvfrom", err)
			return true
		case m == 0:
			return true // EOF
		}
		// A byte arrived between the two calls: count it again.
	}
}
