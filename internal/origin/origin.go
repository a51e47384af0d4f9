// Package origin runs the loopback servers tests put behind the proxy or
// the tunnel: raw TCP listeners that run a handler per connection and stop
// cleanly, and the HTTP handler that answers a body's digest. Only tests
// import it.
package origin

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// Server runs a handler for every connection its listeners accept. Close
// stops the listeners, closes every connection and waits for every
// handler, so a test that closes it leaves no goroutine behind.
type Server struct {
	// Accepted, if set before the first Listen or Serve, is called with
	// every accepted connection from the accept loop, so in the order the
	// connections were accepted, before its handler starts.
	Accepted func(net.Conn)

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu     sync.Mutex
	closed bool
	lns    []net.Listener
	conns  map[net.Conn]struct{}
}

// New returns a Server with no listener yet.
func New() *Server {
	return &Server{done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
}

// LoopbackAddr is the loopback address with a kernel-chosen port for
// network: "[::1]:0" for "tcp6", "127.0.0.1:0" otherwise.
func LoopbackAddr(network string) string {
	if network == "tcp6" {
		return "[::1]:0"
	}
	return "127.0.0.1:0"
}

// Listen listens on LoopbackAddr(network) and serves h there; it returns
// the listener (its address is where clients go).
func (s *Server) Listen(network string, h func(*net.TCPConn)) (net.Listener, error) {
	ln, err := net.Listen(network, LoopbackAddr(network))
	if err != nil {
		return nil, err
	}
	if err := s.Serve(ln, h); err != nil {
		return nil, err
	}
	return ln, nil
}

// Serve runs h, in its own goroutine, for every connection ln accepts
// until Close; ln must be a TCP listener. The connection is closed when h
// returns. Serve on a closed Server closes ln and returns net.ErrClosed.
func (s *Server) Serve(ln net.Listener, h func(*net.TCPConn)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ln.Close() // nobody will serve it
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.wg.Add(1)
	go s.accept(ln, h)
	return nil
}

func (s *Server) accept(ln net.Listener, h func(*net.TCPConn)) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Close
		}
		s.mu.Lock()
		if s.closed {
			// Accepted after Close took the connection list: nobody
			// would close it.
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		if s.Accepted != nil {
			s.Accepted(c)
		}
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close() // the handler is done with it either way
			}()
			h(c.(*net.TCPConn))
		}()
	}
}

// Done is closed when Close begins: a handler waiting on the test selects
// on it to leave.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close stops the listeners, closes every connection and waits for the
// handlers. It returns the first error closing a listener (one closed by
// someone else). Idempotent: every call waits, later ones return nil.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		for _, ln := range s.lns {
			if e := ln.Close(); e != nil && err == nil { // ends its accept loop
				err = e
			}
		}
		for c := range s.conns {
			_ = c.Close() // unblocks its handler
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	return err
}

// Echo serves a TCP echo on loopback until the test ends and returns its
// host:port: a connection gets back what it sends, and is closed when its
// input ends.
func Echo(t testing.TB) string {
	t.Helper()
	srv := New()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing the echo server: %v", err)
		}
	})
	ln, err := srv.Listen("tcp", func(c *net.TCPConn) { _, _ = io.Copy(c, c) })
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String()
}

// Sum answers the SHA-256 of the request body in hex, a space, and the
// body's length: "<hex> <n>". A body that fails to read gets 400.
func Sum(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%x %d", h.Sum(nil), n)
}
