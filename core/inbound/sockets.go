package inbound

import (
	"net"
	"sync"
)

// sockets is the set of sockets one client connection owns: the client's and
// its current upstream. close closes all of them, now and any added later;
// it is idempotent and is what clientConn.abort and Server.Close call, so a
// blocked read or a dial in progress ends at once.
type sockets struct {
	mu      sync.Mutex
	closed  bool
	conns   []net.Conn
	pending func() // cancels the step under way (clientConn.stepCtx), if any
}

// pend keeps cancel for close to call, ending the step under way; false,
// keeping nothing, if the set is already closed (the caller cancels the
// step itself).
func (s *sockets) pend(cancel func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.pending = cancel
	return true
}

func (s *sockets) unpend() {
	s.mu.Lock()
	s.pending = nil
	s.mu.Unlock()
}

// add tracks c; if the set is already closed it closes c and reports false.
func (s *sockets) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close() // aborted while dialling: nobody will use c
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

// remove closes c and forgets it (an upstream replaced by another).
func (s *sockets) remove(c net.Conn) {
	s.mu.Lock()
	for i, x := range s.conns {
		if x == c {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	_ = c.Close() // its errors say nothing once we are done with it
}

func (s *sockets) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.pending != nil {
		s.pending() // a dial under way ends at once
		s.pending = nil
	}
	for _, c := range s.conns {
		abort(c)
	}
	s.conns = nil
}

// abort closes c to unblock whoever uses it. A tunnel stream is reset, not
// closed: close is an abort here (user, idle timeout, stop), and a FIN
// would tell the target the upload ended cleanly.
func abort(c net.Conn) {
	if r, ok := c.(interface{ Reset() error }); ok {
		_ = r.Reset() // always nil for streams
		return
	}
	_ = c.Close() // closing to unblock; the error is of no use
}
