// Package inbound is the local proxy front: one listener that speaks HTTP
// (CONNECT and absolute-URI forwarding), SOCKS5 and SOCKS4/4a, told apart by
// the first byte. Every proxied connection is registered in the registry and
// routed by the outbound router.
package inbound

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"porthole/core/outbound"
	"porthole/core/procinfo"
	"porthole/core/registry"
	"porthole/core/relay"
	"porthole/core/warm"
)

// Defaults for Config's zero values.
const (
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultKeepAliveIdle  = 2 * time.Minute
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxConns       = 8192
)

// The warm setup goroutines: enough idle ones for a browser's burst of
// connections, kept for a few seconds of quiet (each holds the stack a
// setup grew, some kilobytes).
const (
	setupWorkers    = 8
	setupWorkerIdle = 5 * time.Second
)

// Config is what a Server needs.
type Config struct {
	Registry *registry.Registry // required
	Router   *outbound.Router   // required
	Logger   *slog.Logger       // nil: slog.Default()
	Auth     *Auth              // nil: no authentication

	HeaderTimeout  time.Duration // to read a request header (and a SOCKS handshake)
	KeepAliveIdle  time.Duration // to wait for the next request on an HTTP keep-alive connection
	MaxHeaderBytes int           // request header size limit
	MaxConns       int           // concurrent client connections; past it clients get an error

	// Status, if set, adds a line to the status page (the tunnel's state).
	Status func() string

	// NoProcessLookup turns off finding the program behind each local
	// client connection (registry.Process); it is on by default, and off
	// only to measure what it costs.
	NoProcessLookup bool
}

// Server accepts client connections and proxies them.
//
// Concurrency: Serve may be called for several listeners; Close may be
// called from any goroutine, is idempotent, and returns when every goroutine
// the server started (accept loops, connection handlers and the warm setup
// goroutines) has ended.
type Server struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // cancelled with ErrStopped by Close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	active atomic.Int64 // client connections being handled

	// procs looks up each connection's program beside its setup; nil
	// when NoProcessLookup.
	procs    *procinfo.Async
	resolver *procinfo.Resolver

	// releaseParker gives back the relays' shared epoll set (relay.Hold),
	// held from New to Close so that connections opened one at a time do
	// not make and close one each.
	releaseParker func()

	// setups runs each connection's setup (clientConn.setUp) on a warm
	// goroutine; closed after the handlers, which wait for their setups.
	setups *warm.Pool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*clientConn]struct{} // being handled: Close closes their sockets
	closed    bool
}

// New returns a server; it does nothing until Serve.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.KeepAliveIdle <= 0 {
		cfg.KeepAliveIdle = DefaultKeepAliveIdle
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*clientConn]struct{}),

		releaseParker: relay.Hold(),
		setups:        warm.New(setupWorkers, setupWorkerIdle),
	}
	if !cfg.NoProcessLookup {
		s.resolver = procinfo.New()
		s.procs = procinfo.NewAsync(s.resolver, 0, 0)
	}
	return s
}

// ProcessStats counts the program lookups so far (zero when off).
func (s *Server) ProcessStats() procinfo.Stats {
	if s.resolver == nil {
		return procinfo.Stats{}
	}
	return s.resolver.Stats()
}

// Serve accepts connections on ln until Close; it then returns
// ErrServerClosed. The server owns ln from here on and closes it.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var backoff time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait a little and go
			// on, as net/http does, instead of spinning or giving up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		n := s.active.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.active.Add(-1)
			s.handle(raw, n > int64(s.cfg.MaxConns))
		}()
	}
}

// track adds a handled connection to the ones Close must end; false once
// the server is closed (the caller closes its sockets itself).
func (s *Server) track(c *clientConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *clientConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// Close stops accepting, closes every client connection with ErrStopped as
// the reason, and waits for all handlers to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		// Every connection's ctx at once, before any socket closes: a
		// connection that ends while the others are being closed still
		// reads ErrStopped as its reason.
		s.cancel(ErrStopped)
		for ln := range s.listeners {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("closing listener", "addr", ln.Addr(), "err", err)
			}
		}
		for c := range s.conns {
			c.socks.close() // unblocks its handler; it untracks itself
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.setups.Close()  // after the handlers: no setup starts any more
	s.releaseParker() // after the handlers: no relay parks any more
	// After the handlers: none starts a lookup any more.
	if s.procs != nil {
		if err := s.procs.Close(); err != nil {
			return err
		}
		return s.resolver.Close()
	}
	return nil
}
