//go:build linux || darwin || freebsd || netbsd || openbsd

package relay

import (
	"errors"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// peeker waits until a socket has something to read (bytes, EOF or an
// error) without holding a buffer: an idle connection then costs no copy
// buffer at all. It peeks one byte with MSG_PEEK|MSG_DONTWAIT from inside
// the runtime poller's RawRead, so it waits exactly as a Read would,
// honours deadlines and is unblocked by Close. One peeker serves one
// direction, so waiting allocates nothing.
type peeker struct {
	conn net.Conn
	rc   syscall.RawConn
	fn   func(fd uintptr) bool // p.peek, bound once
	err  error                 // the socket error the last peek consumed
	try  bool                  // poll(false): do not wait
	none bool                  // the last try found nothing to read
}

// newPeeker returns nil for connections that are not pollable sockets;
// their Read does the waiting.
func newPeeker(c net.Conn) *peeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{conn: c, rc: rc}
	p.fn = p.peek
	return p
}

func (p *peeker) peek(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			if p.try {
				p.none = true
				return true
			}
			return false // nothing yet: the poller waits for readability
		}
		// Data or EOF: Read reports it. A socket error (a reset) is
		// consumed by the peek, so it must be reported from here.
		p.err = err
		return true
	}
}

func (p *peeker) wait() error {
	_, err := p.poll(true)
	return err
}

// poll is wait as side.await takes it: without block it reports whether
// the socket is readable now instead of waiting.
func (p *peeker) poll(block bool) (bool, error) {
	if p == nil {
		return true, nil
	}
	p.err, p.try, p.none = nil, !block, false
	if err := p.rc.Read(p.fn); err != nil {
		return false, err
	}
	if p.none {
		return false, nil
	}
	return true, p.readErr()
}

func (p *peeker) readErr() error {
	if p.err != nil {
		return &net.OpError{Op: "read", Net: "tcp", Source: p.conn.LocalAddr(), Addr: p.conn.RemoteAddr(), Err: os.NewSyscallError("recvfrom", p.err)}
	}
	return nil
}

// waitIdleSocket is waitIdle for a socket: it waits in the runtime
// poller until readable says so.
func waitIdleSocket(c syscall.Conn) {
	rc, err := c.SyscallConn()
	if err == nil {
		_ = rc.Read(readable) // closed or past a deadline: so is copyHalf's wait
	}
}

// readable reports whether fd would not block a read, without reading:
// poll(2) with a zero timeout, which also sees an end and an error, and
// consumes neither (a peek would consume a pending error).
func readable(fd uintptr) bool {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		// An error of poll itself (ENOMEM): let copyHalf's wait deal.
		return err != nil || n > 0
	}
}
