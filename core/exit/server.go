// Package exit is the exit server's engine: it accepts tunnel sessions from
// Porthole clients over WebSocket and dials their streams' targets, subject
// to the exit's policy (no private or own addresses unless allowed).
package exit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/xid"

	"porthole/core/outbound"
	"porthole/core/relay"
	"porthole/core/tunnel"
	"porthole/core/warm"
)

var (
	// ErrClosed is the answer of a closed server to a new session.
	ErrClosed = errors.New("exit server closed")
	// errBadTarget is an OPEN's target that is not a valid host:port.
	errBadTarget = errors.New("bad target")
)

// Config configures a Server.
type Config struct {
	Token string // the bearer token clients must present; required
	// Dialer reaches targets; nil means an outbound.Guarded with
	// AllowPrivate and DialTimeout.
	Dialer       outbound.Dialer
	AllowPrivate bool
	DialTimeout  time.Duration // default outbound.DefaultDialTimeout
	// Session tunes each session: MaxStreams and Budget are the
	// per-session caps on streams and buffered bytes. OnOpen is set by
	// the server.
	Session tunnel.Config
	// MaxSessions caps concurrent sessions (clients); past it an upgrade
	// gets 503. Default 1024.
	MaxSessions int
	Logger      *slog.Logger
}

// Server is an http.Handler for the tunnel's WebSocket path.
//
// Concurrency: each session is served in the handler goroutine of its
// upgrade request, which creates it and alone closes it; Close asks every
// session to end and waits until all handlers returned, then for the warm
// dial goroutines (openApart) to end. Close is
// idempotent, and due once New has succeeded: New holds the relays' shared
// epoll set (relay.Hold), which Close gives back.
type Server struct {
	cfg Config
	acc *tunnel.Acceptor
	log *slog.Logger

	mu       sync.Mutex
	sessions map[*tunnel.Session]struct{}
	handlers int // handlers between enter and leave (upgrading or serving); at most MaxSessions
	closed   bool
	wg       sync.WaitGroup

	// releaseParker gives back the relays' shared epoll set (relay.Hold),
	// held from New to Close so that streams opened one at a time do not
	// make and close one each.
	releaseParker func()

	// dials runs each stream's dial and answer (openApart) on a warm goroutine;
	// closed after the handlers, whose streams wait for their dials.
	dials *warm.Pool
}

// The warm dial goroutines: enough idle ones for a client's burst of new
// streams, kept for a few seconds of quiet (each holds the stack a dial
// grew, some kilobytes).
const (
	dialWorkers    = 8
	dialWorkerIdle = 5 * time.Second
)

// New checks cfg and returns a server.
func New(cfg Config) (*Server, error) {
	acc, err := tunnel.NewAcceptor(cfg.Token)
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = outbound.DefaultDialTimeout
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &outbound.Guarded{AllowPrivate: cfg.AllowPrivate, Timeout: cfg.DialTimeout}
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{
		cfg: cfg, acc: acc, log: cfg.Logger, sessions: make(map[*tunnel.Session]struct{}),
		releaseParker: relay.Hold(),
		dials:         warm.New(dialWorkers, dialWorkerIdle),
	}, nil
}

// ServeHTTP upgrades a tunnel request and serves its session until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "porthole-exit: shutting down or at its session limit", http.StatusServiceUnavailable)
		s.log.Info("session refused", "client", r.RemoteAddr, "err", "closed or at the session limit")
		return
	}
	defer s.wg.Done()
	ws, err := s.acc.Accept(w, r)
	if err != nil {
		s.leave(nil)
		s.log.Info("upgrade refused", "client", r.RemoteAddr, "err", err)
		return
	}
	id := xid.New()
	log := s.log.With("session", id.String())
	cfg := s.cfg.Session
	cfg.Logger = log
	var streams atomic.Int64
	cfg.OnOpen = func(ctx context.Context, st *tunnel.Stream, target string) {
		streams.Add(1)
		s.serveStream(ctx, log, st, target)
	}
	sess := tunnel.NewSession(ws, false, cfg)
	if !s.track(sess) {
		s.leave(nil)
		_ = sess.Close() // Close raced the upgrade; always nil
		return
	}
	began := time.Now()
	log.Info("session started", "client", r.RemoteAddr, "forwarded_for", r.Header.Get("X-Forwarded-For"))
	<-sess.Done()
	_ = sess.Close() // always nil; waits for the stream handlers
	// Leave before logging the end: whoever reads it may reconnect at once.
	s.leave(sess)
	log.Info("session ended", "client", r.RemoteAddr, "lasted", time.Since(began).Round(time.Millisecond),
		"streams", streams.Load(), "err", sess.Err())
}

// enter admits one more handler unless closed or full. Handlers, not
// sessions, are counted: a session is tracked only after its upgrade, and
// counting those would let concurrent upgrades past the cap.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.handlers >= s.cfg.MaxSessions {
		return false
	}
	s.handlers++
	s.wg.Add(1)
	return true
}

// leave gives back the place enter took, forgetting sess if not nil.
func (s *Server) leave(sess *tunnel.Session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.handlers--
	s.mu.Unlock()
}

func (s *Server) track(sess *tunnel.Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

// Sessions is how many sessions are being served.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close ends every session (their streams end, clients see the tunnel
// lost), waits for their handlers and gives back the relays' epoll set.
// New upgrades get 503. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	sessions := make([]*tunnel.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		_ = sess.Close() // always nil
	}
	s.wg.Wait()
	s.dials.Close()   // idempotent; after the streams: no dial starts
	s.releaseParker() // idempotent
	return nil
}

// serveStream dials the stream's target, answers the OPEN and relays until
// both directions end. The stream id is the client's registry id: the
// client's inspector and this log show the same one. Its goroutine waits
// in the relay for as long as the stream is idle, so everything deep
// before the relay (the dial, the answer, their log lines) runs on a
// warm goroutine (openApart) and the closing line in a function of its
// own (logClosed): the goroutine never needs more than the smallest
// stack while the stream is idle (see relay.Relay).
func (s *Server) serveStream(ctx context.Context, log *slog.Logger, st *tunnel.Stream, target string) {
	conn := s.openApart(ctx, log, st, target)
	if conn == nil {
		return
	}
	// A reset stream or an ending session must end the relay even when the
	// target neither reads nor writes: closing the socket unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	var n counter
	err := relay.Relay(st, conn, &n)
	stop()
	// Both ended cleanly or one failed (and Relay closed both): close
	// either way, so neither is left half open.
	_ = conn.Close() // its error says nothing the relay did not
	_ = st.Close()   // idempotent; always nil
	logClosed(ctx, log, st, target, n, err)
}

// openApart is open on another goroutine, waited for. Dialling needs a
// deep stack (resolver, dialer, policy checks), and so does answering
// the OPEN, and a goroutine keeps the largest stack it ever grew: done in
// place, every idle stream's goroutine would hold kilobytes it needed
// only then. It runs on a warm goroutine (s.dials), whose stack the last
// one grew, and it is done before openApart returns, handing over the
// connection it made; the answer leaves from there, before the stream's
// goroutine is even woken.
func (s *Server) openApart(ctx context.Context, log *slog.Logger, st *tunnel.Stream, target string) net.Conn {
	done := make(chan net.Conn, 1)
	s.dials.Go(func() { done <- s.open(ctx, log, st, target) })
	return <-done
}

// open dials st's target and answers the OPEN: accepted, with the
// connection, or refused (nil, st closed).
func (s *Server) open(ctx context.Context, log *slog.Logger, st *tunnel.Stream, target string) net.Conn {
	// The stream's id goes with each record rather than through log.With,
	// which would build a handler per stream even when nothing is logged.
	id := slog.String("stream", st.ID().String())
	log.Debug("dialing", id, "target", target)
	conn, err := s.dial(ctx, target)
	if err != nil {
		abandoned := ctx.Err() != nil // the client reset the stream or left
		code := CodeFor(err)
		st.Refuse(code, refusalReason(err))
		_ = st.Close() // refused: nothing left to close but our handle
		if abandoned {
			log.Debug("open abandoned", id, "target", target, "err", err)
		} else {
			log.Debug("open refused", id, "target", target, "code", code, "err", err)
		}
		return nil
	}
	st.AcceptFrom(conn.RemoteAddr().String())
	return conn
}

// logClosed logs a relayed stream's end: at DEBUG when it ended as
// connections do, else at INFO.
func logClosed(ctx context.Context, log *slog.Logger, st *tunnel.Stream, target string, n counter, err error) {
	lvl := slog.LevelDebug
	if !relay.Expected(err) {
		lvl = slog.LevelInfo
	}
	log.Log(ctx, lvl, "stream closed", slog.String("stream", st.ID().String()), "target", target, "up", n.up, "down", n.down, "err", err)
}

// dial checks target's form and dials it.
func (s *Server) dial(ctx context.Context, target string) (net.Conn, error) {
	if _, _, err := outbound.SplitTarget(target); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadTarget, err)
	}
	return s.cfg.Dialer.DialContext(ctx, "tcp", target)
}

// refusalReason is what the client is told about a failed dial: the error,
// except that a DNS failure does not name the exit's resolver.
func refusalReason(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("lookup %s: %s", dnsErr.Name, dnsErr.Err)
	}
	return err.Error()
}

// CodeFor is the OPEN_FAIL code for a dial error (PROTOCOL.md §2).
func CodeFor(err error) tunnel.Code {
	if errors.Is(err, errBadTarget) {
		return tunnel.CodeProtocol
	}
	switch outbound.Classify(err) {
	case outbound.FailTimeout:
		return tunnel.CodeTimeout
	case outbound.FailRefused:
		return tunnel.CodeRefused
	case outbound.FailUnreachable:
		return tunnel.CodeUnreachable
	case outbound.FailNotFound:
		return tunnel.CodeNotFound
	case outbound.FailDenied:
		return tunnel.CodeDenied
	case outbound.FailCanceled:
		return tunnel.CodeCanceled
	}
	return tunnel.CodeOther
}

// counter counts a stream's bytes for its closing log line; the relay's
// two directions each write one field.
type counter struct{ up, down int64 }

func (c *counter) AddUp(n int64)   { c.up += n }
func (c *counter) AddDown(n int64) { c.down += n }
