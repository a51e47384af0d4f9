package main

import (
	"errors"
	"net"
	"sync"
	"time"
)

// tcpServer is what the bench's loopback servers (the origin, the delay
// relay) share: an accept loop that serves each connection in its own
// goroutine, and the set of open connections, so that close can end them
// all and wait for every goroutine.
type tcpServer struct {
	ln    net.Listener
	serve func(net.Conn)
	wg    sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// listen listens on addr and serves every connection with serve.
func (s *tcpServer) listen(addr string, serve func(net.Conn)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln, s.serve, s.conns = ln, serve, map[net.Conn]struct{}{}
	s.wg.Add(1)
	go s.accept()
	return nil
}

func (s *tcpServer) addr() string { return s.ln.Addr().String() }

func (s *tcpServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary (e.g. EMFILE): back off briefly, stay up.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serve(c)
		}()
	}
}

// track adds c to the connections close ends; false once closed.
func (s *tcpServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (s *tcpServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// open is how many connections are open.
func (s *tcpServer) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// close closes the listener and every connection and waits for all the
// goroutines. first is false when it was closed before.
func (s *tcpServer) close() (first bool, err error) {
	err = s.ln.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, err
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return true, err
}
