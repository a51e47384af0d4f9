package relay

import (
	"io"
	"net"

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
// pipe and no buffer: it waits with a one-byte peek, as copyHalf does.
//
// handled is false when the connections are not both TCP sockets; the
// caller then copies in user space. On EOF it returns with eof true and
// the half-close left to the caller.
func spliceHalf(dst, src net.Conn, count func(int64), readable *peeker) (handled, eof bool, err error) {
	d, ok1 := dst.(*net.TCPConn)
	s, ok2 := src.(*net.TCPConn)
	if !ok1 || !ok2 || readable == nil {
		return false, false, nil
	}
	rc, err := s.SyscallConn()
	if err != nil {
		return false, false, nil
	}
	lr := io.LimitedReader{R: s}
	for {
		n, err := queued(rc)
		if err != nil {
			return true, false, err
		}
		if n == 0 {
			if err := readable.wait(); err != nil {
				return true, false, err
			}
			if n, err = queued(rc); err != nil {
				return true, false, err
			}
			if n == 0 {
				// Readable with nothing queued: the peer's FIN.
				return true, true, nil
			}
		}
		lr.N = int64(n)
		w, err := d.ReadFrom(&lr)
		if w > 0 {
			count(w)
		}
		if err != nil {
			return true, false, err
		}
		if w == 0 {
			// Nothing moved although bytes were queued: the kernel took
			// another path (no splice); let the caller copy instead.
			return false, false, nil
		}
	}
}

// queued is how many bytes wait in the socket's receive queue (SIOCINQ).
func queued(rc interface {
	Control(func(fd uintptr)) error
}) (int, error) {
	var (
		n    int
		ierr error
	)
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return 0, err
	}
	return n, ierr
}
