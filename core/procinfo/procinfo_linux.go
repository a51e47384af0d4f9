package procinfo

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"porthole/core/registry"
)

// Linux: the kernel's exact socket lookup (sock_diag) gives the client
// socket's inode and owner uid; /proc/<pid>/fd says which process holds
// that inode (procfs_linux.go).

const (
	// diagTimeout bounds the wait for the kernel's answer; it answers in
	// microseconds, so this only matters if something is very wrong.
	diagTimeout = time.Second
	// diagReads bounds the datagrams read for one answer (stale answers of
	// timed-out requests are skipped).
	diagReads = 8
	// diagPool is how many netlink sockets are kept for reuse.
	diagPool = 8
)

type linuxResolver struct {
	r     *Resolver
	seq   atomic.Uint32
	procs *procTable

	mu     sync.Mutex
	idle   []*diagSock
	closed bool
}

func newOSResolver(r *Resolver) osResolver {
	return &linuxResolver{r: r, procs: newProcTable(r)}
}

func (l *linuxResolver) lookup(local, remote netip.AddrPort) *registry.Process {
	// The client's socket: its local end is our remote, its peer our local.
	q := diagQuery{src: remote, dst: local}
	ans, err := l.diag(q)
	if err != nil && !errors.Is(err, errNoSocket) {
		// diag closed the socket that failed: ask once more on another,
		// so that one socket in a bad state costs no attribution.
		ans, err = l.diag(q)
	}
	switch {
	case errors.Is(err, errNoSocket):
		return unknown(ReasonExited, -1) // gone before we asked
	case err != nil:
		return unknown(ReasonFailed, -1)
	case ans.inode == 0:
		// No file refers to the socket: its last holder closed it or exited.
		return unknown(ReasonExited, int(ans.uid))
	}
	key := connKey{local, remote}
	p, done := l.procs.findCached(key, uint64(ans.inode), int(ans.uid))
	if p != nil {
		return p
	}
	// Before a scan of every process (milliseconds): a client that closed
	// the socket already (a late lookup) has exited from it.
	if again, err := l.diag(q); errors.Is(err, errNoSocket) || (err == nil && again.inode != ans.inode) {
		return unknown(ReasonExited, int(ans.uid))
	}
	p, why := l.procs.scan(key, uint64(ans.inode), int(ans.uid), done)
	if p != nil {
		return p
	}
	if why == ReasonNotFound {
		// Nobody we can see holds it: if it is gone now, its owner exited
		// between the two steps.
		if again, err := l.diag(q); errors.Is(err, errNoSocket) || (err == nil && again.inode != ans.inode) {
			why = ReasonExited
		}
	}
	return unknown(why, int(ans.uid))
}

// quick is lookup from the cache alone, on the caller's goroutine: the
// kernel's answer and the remembered fds of the cached processes. ok is
// false when that does not settle it (a full lookup does).
func (l *linuxResolver) quick(local, remote netip.AddrPort, since uint64) (*registry.Process, bool) {
	if l.procs.empty() {
		return nil, false // nothing cached: the first lookup of all scans
	}
	ans, err := l.diag(diagQuery{src: remote, dst: local})
	switch {
	case errors.Is(err, errNoSocket):
		return unknown(ReasonExited, -1), true
	case err != nil:
		return nil, false // the full lookup asks again
	case ans.inode == 0:
		return unknown(ReasonExited, int(ans.uid)), true
	}
	if p := l.procs.quick(connKey{local, remote}, uint64(ans.inode), int(ans.uid), since); p != nil {
		return p, true
	}
	return nil, false
}

// ended: the connection local<-remote, looked up before, has ended.
func (l *linuxResolver) ended(local, remote netip.AddrPort) {
	l.procs.ended(connKey{local, remote})
}

// diag asks the kernel about q's socket and checks the answer. Every
// query goes through it, so it is where a failure is counted
// (Stats.Errors, LastError).
func (l *linuxResolver) diag(q diagQuery) (diagAnswer, error) {
	s, err := l.get()
	if err != nil {
		l.r.failed(err)
		return diagAnswer{}, err
	}
	q.seq = l.seq.Add(1)
	ans, err := s.ask(q)
	if err != nil && !errors.Is(err, errNoSocket) {
		s.close() // in an unknown state: do not reuse it
		l.r.failed(err)
		return ans, err
	}
	l.put(s)
	return ans, err
}

func (l *linuxResolver) get() (*diagSock, error) {
	l.mu.Lock()
	if n := len(l.idle); n > 0 {
		s := l.idle[n-1]
		l.idle = l.idle[:n-1]
		l.mu.Unlock()
		return s, nil
	}
	l.mu.Unlock()
	return openDiagSock()
}

func (l *linuxResolver) put(s *diagSock) {
	l.mu.Lock()
	if !l.closed && len(l.idle) < diagPool {
		l.idle = append(l.idle, s)
		s = nil
	}
	l.mu.Unlock()
	if s != nil {
		s.close()
	}
}

func (l *linuxResolver) close() error {
	l.mu.Lock()
	idle := l.idle
	l.idle, l.closed = nil, true
	l.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
	l.procs.close()
	return nil
}

// diagSock is one NETLINK_SOCK_DIAG socket, used by one lookup at a time.
type diagSock struct {
	fd     int
	portID uint32
	buf    []byte
	req    []byte // the request being sent, reused
}

func openDiagSock() (*diagSock, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	s := &diagSock{fd: fd, buf: make([]byte, 8192)}
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		s.close()
		return nil, fmt.Errorf("sock_diag timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		s.close()
		return nil, fmt.Errorf("sock_diag bind: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("sock_diag getsockname: %w", err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		s.close()
		return nil, errors.New("sock_diag: not a netlink address")
	}
	s.portID = nl.Pid
	// Connected to the kernel (port id 0), the socket takes datagrams from
	// the kernel only (the kernel refuses other senders): plain read and
	// write then suffice, with no address to allocate and check per answer.
	if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		s.close()
		return nil, fmt.Errorf("sock_diag connect: %w", err)
	}
	return s, nil
}

func (s *diagSock) close() {
	_ = unix.Close(s.fd) // nothing was written through it that could be lost
}

func (s *diagSock) ask(q diagQuery) (diagAnswer, error) {
	s.req = q.appendRequest(s.req[:0])
	if _, err := unix.Write(s.fd, s.req); err != nil {
		return diagAnswer{}, fmt.Errorf("sock_diag send: %w", err)
	}
	for range diagReads {
		n, err := unix.Read(s.fd, s.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return diagAnswer{}, fmt.Errorf("sock_diag receive: %w", err)
		}
		ans, done, err := parseDiagAnswer(s.buf[:n], q, s.portID)
		if done || err != nil {
			return ans, err
		}
	}
	return diagAnswer{}, fmt.Errorf("%w: no answer in %d datagrams", errForged, diagReads)
}
