package inbound

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/rs/xid"

	"porthole/core/outbound"
	"porthole/core/procinfo"
	"porthole/core/registry"
	"porthole/core/relay"
	"porthole/core/rules"
)

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// clientConn is one accepted client connection and everything it owns. Its
// handler goroutine is the owner: it alone reads, writes and finishes;
// other goroutines end it only through abort (the registry's hook) or
// Server.Close, which cancel ctx and close the sockets. The one exception
// is the setup goroutine's work after the answer (setUp): the program
// lookup, and for an early dial the record's Established; handle waits
// for it (c.setup) before it finishes that record.
type clientConn struct {
	s        *Server
	raw      net.Conn
	id       xid.ID // the first proxied connection's id; logs carry it
	limiter  headerLimiter
	br       *bufio.Reader
	ctx      context.Context
	cancel   context.CancelCauseFunc
	socks    sockets
	rejected bool // over the connection limit: answer with an error, proxy nothing
	tracked  bool // Server.track took it: end untracks it
	// relayNext is a CONNECT or SOCKS upstream to relay after serve.
	relayNext *upstream
	// proc is the lookup of the client's program, started on accept;
	// every record of this connection gets its result. nil when off.
	proc *procinfo.Future

	// setup counts the setup (setUp), run on a warm goroutine of the
	// server's: handle waits for it before its end.
	setup sync.WaitGroup

	// HTTP forwarding state (absolute-URI requests).
	up     *httpUpstream
	out    *responseWriter // made at the first forwarded response
	idUsed bool            // id went to a record already; the next one gets its own
}

// handle serves one accepted connection on its own goroutine, which
// lives as long as the connection: for a proxied one, it is the relay's.
// handle itself is kept small, with the setting up (begin, setUpAndWait)
// and the tearing down (end) in functions of their own: an idle relay
// waits with handle's frame above it, and a goroutine that stays within
// 2 KiB of stack keeps the smallest one (see relay.Relay).
func (s *Server) handle(raw net.Conn, overloaded bool) {
	c := s.begin(raw, overloaded)
	if c == nil {
		return
	}
	defer c.end()
	// A CONNECT or SOCKS connection is relayed here, on this goroutine,
	// whose stack stayed small: parsing, authentication and the dial grew
	// the warm setup goroutine's, which goes back to the server's pool for
	// the next connection. An idle proxied connection so keeps a small
	// stack instead of one grown to 8 KiB.
	if u := c.setUpAndWait(); u != nil {
		err := c.relay(u)
		if u.early {
			// The setup goroutine settles the record (setUp); the relay
			// ended, so the exit has answered or the stream is gone, and
			// the wait is short. The record is finished after it.
			c.setup.Wait()
		}
		c.closeUpstream(u, err)
	}
	if c.up != nil {
		c.closeUpstream(c.up.upstream, nil)
	}
}

// begin makes raw's clientConn and what it owns; nil when the server is
// so far past its limit that raw is only closed. What begin took, end
// gives back.
func (s *Server) begin(raw net.Conn, overloaded bool) *clientConn {
	if overloaded && s.active.Load() > 2*int64(s.cfg.MaxConns) {
		// Far past the limit even the error reply would cost too much.
		_ = raw.Close() // nothing to tell a client we cannot afford to read
		return nil
	}
	c := &clientConn{
		s:        s,
		raw:      raw,
		id:       xid.New(),
		limiter:  headerLimiter{r: raw},
		rejected: overloaded,
	}
	if !overloaded {
		// Started once the client has its answer (setUp, exchange), beside
		// the relay: it never delays the dial, the answer nor the first
		// bytes, and a connection that never gets a record costs none.
		c.proc = s.procs.Prepare(raw.LocalAddr(), raw.RemoteAddr())
	}
	c.ctx, c.cancel = context.WithCancelCause(s.ctx)
	c.socks.add(raw)
	if c.tracked = s.track(c); !c.tracked {
		c.socks.close() // the server stopped: ctx says so already
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(&c.limiter)
	return c
}

// setUpAndWait runs the setup (setUp) and waits for its answer: the
// upstream to relay, if it left one. A connection that was not proxied
// is logged here.
func (c *clientConn) setUpAndWait() *upstream {
	if err := <-c.setUp(); err != nil {
		c.logEnd(err)
	}
	u := c.relayNext
	c.relayNext = nil
	return u
}

// end gives back what begin took, in this order: the setup goroutine may
// still be looking the program up, and the lookup wants the client's
// socket still open, so it is waited for first; the program's lookup is
// told the end last, once the sockets are closed: the program's fd is
// free, and the cache tries it first for the program's next connection.
func (c *clientConn) end() {
	c.setup.Wait()
	c.releaseReader()
	c.socks.close()
	if c.tracked {
		c.s.untrack(c)
	}
	c.cancel(nil)
	c.proc.End() // nil (attribution off, over the limit): nothing
}

// abort ends the connection from outside its handler (the registry's hook:
// closed by the user, idle): the cause first, so the handler reports it as
// the reason, then the sockets, so every read, write and dial on them
// returns. It neither blocks nor calls back into the registry, as the hook
// must not. (A context.AfterFunc on ctx did this before, at about 500 bytes
// per connection: a closed-channel, a child context and its map.)
func (c *clientConn) abort(cause error) {
	c.cancel(cause)
	c.socks.close()
}

// setUp runs serve on another goroutine: the deep work of setting a
// connection up grows a stack that the long wait of the relay after it
// does not need, and a goroutine keeps the largest stack it grew. That
// goroutine is a warm one of the server's (s.setups), which kept the stack
// the last setup grew, so the stack is not grown again each time. The
// returned channel gives serve's error; handle waits for it, and for the
// setup's end (c.setup) before its own, so no setup outlives the
// connection's handler (the warm goroutine does, idle, until the server's
// Close). Nothing holds the channel once it is read.
//
// When serve left a connection to relay (relayAfterSetup), the setup
// goes on to start the program lookup while handle already relays: the
// client has its answer, and its first bytes need not wait for the lookup.
// If the client was answered before the exit (an early dial), it then
// waits for the exit's answer and marks the record established with it.
func (c *clientConn) setUp() <-chan error {
	done := make(chan error, 1)
	c.setup.Add(1)
	started := false
	defer func() {
		if !started {
			c.setup.Done() // Go panicked: end's Wait must not hang on it
		}
	}()
	c.s.setups.Go(func() {
		defer c.setup.Done()
		err := c.serve()
		// Read before the send: after it, c belongs to handle again.
		u := c.relayNext
		done <- err
		if u == nil {
			return
		}
		c.proc.Start() // c.proc is set before setUp and never changes
		if u.early {
			u.settle(c.ctx) // u's record and dialed conn never change
		}
	})
	started = true
	return done
}

// relayAfterSetup leaves u, connected and answered, to be relayed once
// the setup (serve) has returned; see handle and setUp.
func (c *clientConn) relayAfterSetup(u *upstream) {
	c.relayNext = u
}

func (c *clientConn) serve() error {
	c.limiter.limit(c.s.cfg.MaxHeaderBytes)
	if err := c.raw.SetReadDeadline(time.Now().Add(c.s.cfg.HeaderTimeout)); err != nil {
		return err
	}
	first, err := c.br.Peek(1)
	if err != nil {
		return err
	}
	switch first[0] {
	case socks5Version:
		return c.handshakeTimeout(c.serveSOCKS5())
	case socks4Version:
		return c.handshakeTimeout(c.serveSOCKS4())
	default:
		return c.serveHTTP()
	}
}

// handshakeTimeout turns a SOCKS handshake cut off by the header timeout
// into bad input (logged at INFO, like HTTP's 408), not an expected ending.
// After the handshake the SOCKS handlers return nil, so only it gets here.
func (c *clientConn) handshakeTimeout(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// Not wrapping err: a deadline error counts as an expected ending.
		return fmt.Errorf("%w: SOCKS handshake not complete in %v", ErrBadRequest, c.s.cfg.HeaderTimeout)
	}
	return err
}

// releaseReader gives the request reader back to the pool once no more
// requests will be read (a relay holds no buffer while idle).
func (c *clientConn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
}

// logEnd logs how a client connection that was not proxied ended: bad
// input at INFO, once; expected endings (client went away, we stopped) at
// DEBUG.
func (c *clientConn) logEnd(err error) {
	err = c.reason(err)
	switch {
	case errors.Is(err, ErrStopped), errors.Is(err, registry.ErrClosedByUser), errors.Is(err, registry.ErrIdle), relay.Expected(err):
		logConn(c.s.log, c.id, slog.LevelDebug, "client connection ended", "client", c.raw.RemoteAddr(), "err", err)
	default:
		logConn(c.s.log, c.id, slog.LevelInfo, "client connection refused", "client", c.raw.RemoteAddr(), "err", err)
	}
}

// reason prefers the cause of an abort (closed by user, proxy stopped, idle)
// over the I/O error it provoked.
func (c *clientConn) reason(err error) error {
	if cause := context.Cause(c.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// upstream is one proxied connection: the registry record and the socket to
// the target.
type upstream struct {
	rec    *registry.Conn
	finish func(error)
	conn   net.Conn
	dialed net.Conn // conn as the router's dialer gave it (conn may be its Bare socket)
	target string
	log    *slog.Logger // the server's; lines carry the record's id (logAt)
	// early: the dial returned before the exit answered (outbound.Early),
	// and the record is established once it has (settle).
	early bool
}

// settle waits for the exit's answer to an early dial and marks the
// record established with the address the exit connected to. A refusal
// marks nothing: the relay meets it, resets the client and finishes the
// record with it.
func (u *upstream) settle(ctx context.Context) {
	if remote, err := outbound.Settle(ctx, u.dialed); err == nil {
		u.rec.Established(remote)
	}
}

// dial registers a connection to target and dials it on the route the
// router picks. On failure the record is already finished with the error.
func (c *clientConn) dial(id xid.ID, proto registry.Proto, target, host string) (*upstream, error) {
	ctx, done := c.stepCtx()
	defer done()
	dec := c.decide(ctx, proto, target, host)
	route := dec.Route
	rec, finish := c.s.cfg.Registry.Register(registry.Meta{
		ID: id, Proto: proto, Client: c.raw.RemoteAddr().String(), Target: target, Route: route, Rule: dec.Rule,
	}, c.abort)
	c.proc.Attach(rec)
	u := &upstream{rec: rec, finish: finish, target: target, log: c.s.log}
	if route == registry.RouteReject {
		// Logged here, once; the caller answers in the client's protocol.
		err := fmt.Errorf("%w %s", outbound.ErrRejected, dec.Rule)
		c.proc.Start() // which program was refused is worth knowing too
		finish(err)
		u.logAt(slog.LevelInfo, "rejected", "proto", proto, "target", target, "rule", dec.Rule.String())
		return nil, err
	}
	u.logAt(slog.LevelDebug, "dialing", "proto", proto, "target", target, "route", route)
	// Plain HTTP forwarding writes its request first: through the tunnel
	// it travels right behind the OPEN, and a refusal comes back as the
	// response's read error (see exchange).
	// CONNECT and SOCKS may be answered before the exit answers, for a
	// target it opened recently: a late refusal resets the client.
	ctx = outbound.WithDialInfo(ctx, outbound.DialInfo{
		ID: rec.ID(), SpeaksFirst: proto == registry.ProtoHTTP, AnswerEarly: proto != registry.ProtoHTTP, Exit: dec.Exit,
	})
	conn, err := c.s.cfg.Router.Dialer(route).DialContext(ctx, "tcp", target)
	u.dialed = conn
	if en, ok := conn.(outbound.ExitNamer); ok && err == nil {
		rec.SetExit(en.ExitName()) // before Established: its event carries it
		conn = outbound.Bare(conn)
	}
	if err == nil && !c.socks.add(conn) {
		err = net.ErrClosed
	}
	if err != nil {
		err = c.reason(err)
		c.proc.Start() // who tried to connect is worth knowing too
		finish(err)
		switch fail := outbound.Classify(err); {
		case fail == outbound.FailCanceled, errors.Is(err, ErrStopped), errors.Is(err, registry.ErrClosedByUser):
			u.logAt(slog.LevelDebug, "dial aborted", "target", target, "err", err)
		case fail == outbound.FailTunnelDown, errors.Is(err, outbound.ErrExitDown):
			// The tunnel client (or the exit's probe) logs the outage
			// once; not once per connection.
			u.logAt(slog.LevelDebug, "dial failed: tunnel down", "target", target, "err", err)
		default:
			u.logAt(slog.LevelInfo, "dial failed", "target", target, "route", route, "err", err)
		}
		return nil, err
	}
	u.conn = conn
	if u.early = outbound.Early(u.dialed); !u.early {
		rec.Established(conn.RemoteAddr().String())
	}
	return u, nil
}

// decide asks the router where target goes. An app rule may wait for the
// program lookup started on accept (bounded by the rule set; the proxy
// stopping or the client's abort ends it too).
func (c *clientConn) decide(ctx context.Context, proto registry.Proto, target, host string) outbound.Decision {
	q := rules.Query{Host: host, Inbound: proto}
	if _, p, err := net.SplitHostPort(target); err == nil {
		if n, err := strconv.ParseUint(p, 10, 16); err == nil {
			q.Port = uint16(n)
		}
	}
	if c.proc != nil {
		q.Program = c.proc
	}
	return c.s.cfg.Router.Decide(ctx, &q)
}

// stepCtx is the context of one step of setting up an upstream (the
// routing decision and the dial): it ends with the connection's cause when
// the connection is aborted or the server stops, and done releases it. It
// is not a child of ctx, which would then hold a map of its children
// (about 300 bytes, with its Done channel) for the connection's whole life,
// though each dial's children are gone when it returns.
func (c *clientConn) stepCtx() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(c.ctx))
	abort := func() { cancel(context.Cause(c.ctx)) }
	if !c.socks.pend(abort) {
		abort() // aborted already: c.ctx has its cause (abort cancels it first)
	}
	return ctx, func() {
		c.socks.unpend()
		cancel(nil)
	}
}

// close releases the upstream socket, then finishes its record, so the
// Closed event carries the final counts.
func (c *clientConn) closeUpstream(u *upstream, err error) {
	c.proc.Start() // if no answer was given (it was started then)
	c.socks.remove(u.conn)
	// A break of an upstream proxy exit that died reads "exit lost: NAME".
	err = c.reason(outbound.ExitLost(u.dialed, err))
	u.finish(err)
	switch {
	case err == nil, relay.Expected(err), errors.Is(err, ErrStopped), errors.Is(err, registry.ErrClosedByUser), errors.Is(err, registry.ErrIdle):
		u.logAt(slog.LevelDebug, "closed", "target", u.target, "up", u.rec.Up(), "down", u.rec.Down(), "err", err)
	default:
		u.logAt(slog.LevelInfo, "closed with error", "target", u.target, "up", u.rec.Up(), "down", u.rec.Down(), "err", err)
	}
}

// relay hands bytes the client sent early (already buffered) to the target,
// then copies both ways until both directions end.
func (c *clientConn) relay(u *upstream) error {
	if err := c.raw.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	c.limiter.lift()
	if n := c.br.Buffered(); n > 0 {
		early, err := c.br.Peek(n)
		if err != nil {
			return err
		}
		w, err := u.conn.Write(early)
		u.rec.AddUp(int64(w))
		if err != nil {
			c.resetOnClose() // a failure, as Relay ends one: not a clean end
			return err
		}
		if _, err := c.br.Discard(n); err != nil {
			return err
		}
	}
	c.releaseReader()
	return relay.Relay(c.raw, u.conn, u.rec)
}

// resetOnClose makes the client socket's close send a reset instead of a
// FIN, so that the client does not take a failed connection for one that
// ended cleanly (an early answer's refusal met before the relay began).
func (c *clientConn) resetOnClose() {
	if tc, ok := c.raw.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // at worst the client sees a FIN
	}
}

// logConn logs msg about connection id at level, with the id, and builds
// nothing when the level is off: a logger made With the id for each
// connection cost 2–3 % of a tunnelled connection's CPU, for lines that
// are at DEBUG but for failures.
func logConn(l *slog.Logger, id xid.ID, level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	l.Log(ctx, level, msg, append([]any{"conn", id.String()}, args...)...)
}

// logAt logs msg about u's connection (logConn).
func (u *upstream) logAt(level slog.Level, msg string, args ...any) {
	logConn(u.log, u.rec.ID(), level, msg, args...)
}
