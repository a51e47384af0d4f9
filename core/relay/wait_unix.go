//go:build linux || darwin || freebsd || netbsd || openbsd

package relay

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// waitReadable blocks until c has something to read (bytes, EOF or an
// error) without holding a buffer: an idle connection then costs no copy
// buffer at all. It peeks one byte with MSG_PEEK|MSG_DONTWAIT from inside the
// runtime poller's RawRead, so it waits exactly as a Read would, honours
// deadlines and is unblocked by Close. Connections that are not sockets
// return at once and their Read does the waiting.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil // not a pollable socket: let Read wait
	}
	var peekErr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				return false // nothing yet: the poller waits for readability
			}
			// Data or EOF: Read reports it. A socket error (a reset) is
			// consumed by the peek, so it must be reported from here.
			peekErr = err
			return true
		}
	})
	if err != nil {
		return err
	}
	if peekErr != nil {
		return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("recvfrom", peekErr)}
	}
	return nil
}
