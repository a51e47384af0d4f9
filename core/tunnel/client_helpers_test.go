package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/xid"
)

// exitMode is what a testExit does with an upgraded WebSocket.
type exitMode int

const (
	exitEcho   exitMode = iota // an exit session whose streams echo
	exitSilent                 // hold the WebSocket; never read or write
	exitReader                 // read and discard every message; never write
)

// testExit is an exit on a real loopback listener that can be killed
// abruptly and started again on the same address.
type testExit struct {
	t    *testing.T
	acc  *Acceptor
	mode exitMode
	cfg  Config

	mu       sync.Mutex
	addr     string
	down     bool
	srv      *http.Server
	served   chan struct{} // closed when srv.Serve returned
	sessions map[*Session]*websocket.Conn
	held     []*websocket.Conn // exitSilent, exitReader
	attempts []time.Time       // every upgrade request, refused ones too
	handlers sync.WaitGroup    // handlers and exitReader's readers
	up       chan *Session     // every exit session, as it starts
}

// newTestExit starts an exit for token on a fresh loopback port.
func newTestExit(t *testing.T, token string, mode exitMode) *testExit {
	e := newStoppedExit(t, token, mode)
	e.start("127.0.0.1:0")
	return e
}

// newStoppedExit makes an exit that is not listening yet; start it.
func newStoppedExit(t *testing.T, token string, mode exitMode) *testExit {
	t.Helper()
	a, err := NewAcceptor(token)
	if err != nil {
		t.Fatal(err)
	}
	e := &testExit{
		t: t, acc: a, mode: mode, down: true,
		cfg:      Config{Logger: testLogger(t)},
		sessions: map[*Session]*websocket.Conn{},
		up:       make(chan *Session, 64),
	}
	t.Cleanup(e.kill)
	return e
}

// start listens on addr ("host:0" for a fresh port) and serves. Listening
// again on the address of a killed exit is retried briefly: a socket of
// the old one may still hold the port for a moment.
func (e *testExit) start(addr string) {
	e.t.Helper()
	var ln net.Listener
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; ; i++ {
		var err error
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || i >= 300 || time.Now().After(deadline) {
			e.t.Fatalf("exit: listen on %s: %v", addr, err)
		}
		// Nothing to wait on but the kernel letting go of the port.
		<-time.After(10 * time.Millisecond)
	}
	srv := &http.Server{Handler: http.HandlerFunc(e.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	e.mu.Lock()
	e.addr, e.down, e.srv, e.served = ln.Addr().String(), false, srv, served
	e.mu.Unlock()
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			e.t.Errorf("exit: serve: %v", err)
		}
	}()
}

// url is the exit's WebSocket URL.
func (e *testExit) url() string { return "ws://" + e.address() + "/porthole" }

// address is where the exit listens, or listened last.
func (e *testExit) address() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

func (e *testExit) serveHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.attempts = append(e.attempts, time.Now())
	if e.down {
		// Accepted just as the exit was killed: a dead exit upgrades nothing.
		e.mu.Unlock()
		http.Error(w, "exit going down", http.StatusServiceUnavailable)
		return
	}
	e.handlers.Add(1)
	e.mu.Unlock()
	defer e.handlers.Done()

	ws, err := e.acc.Accept(w, r)
	if err != nil {
		return // refused; the attempt is counted
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		_ = ws.Close() // killed meanwhile
		return
	}
	switch e.mode {
	case exitEcho:
		cfg := e.cfg
		cfg.OnOpen = echoOnOpen
		s := NewSession(ws, false, cfg)
		e.sessions[s] = ws
		select {
		case e.up <- s:
		default: // nobody is counting this many
		}
	case exitSilent:
		e.held = append(e.held, ws)
	case exitReader:
		e.held = append(e.held, ws)
		e.handlers.Add(1)
		go func() {
			defer e.handlers.Done()
			// Ends when the socket does: the client gives up, or kill.
			for range 1 << 20 {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
			}
		}()
	}
}

// echoOnOpen accepts a stream and echoes it until EOF or its end.
func echoOnOpen(_ context.Context, st *Stream, _ string) {
	st.Accept()
	defer func() { _ = st.Close() }() // always nil
	if _, err := io.Copy(st, st); err != nil {
		return // the stream or its session ended; the client side checks how
	}
	_ = st.CloseWrite() // the client checks it got everything
}

// attemptsBefore counts the upgrade requests that arrived before t and
// returns their times.
func (e *testExit) attemptsBefore(t time.Time) []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []time.Time
	for _, a := range e.attempts {
		if a.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

func (e *testExit) numAttempts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.attempts)
}

// dropSessions ends every exit session abruptly (its TCP socket closed
// under it, no close frame first) and waits for them; the exit keeps
// listening. It returns how many there were.
func (e *testExit) dropSessions() int {
	e.mu.Lock()
	sessions, held := e.sessions, e.held
	e.sessions, e.held = map[*Session]*websocket.Conn{}, nil
	e.mu.Unlock()
	for s, ws := range sessions {
		_ = ws.NetConn().Close() // abrupt: the session finds out by reading
		_ = s.Close()            // waits for its goroutines
	}
	for _, ws := range held {
		_ = ws.NetConn().Close()
	}
	return len(sessions) + len(held)
}

// kill stops the exit abruptly: listener, sessions and sockets. Idempotent.
func (e *testExit) kill() {
	e.mu.Lock()
	srv, served, was := e.srv, e.served, e.down
	e.down, e.srv = true, nil
	e.mu.Unlock()
	if !was {
		if err := srv.Close(); err != nil {
			e.t.Errorf("exit: close: %v", err)
		}
		<-served
	}
	e.dropSessions()
	e.handlers.Wait()
}

// tcpRelay forwards TCP connections to target through its own sockets, so
// a test can cut them under a live WebSocket.
type tcpRelay struct {
	t        *testing.T
	ln       net.Listener
	target   string
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted int
	closed   bool
	wg       sync.WaitGroup
}

func newTCPRelay(t *testing.T, target string) *tcpRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpRelay{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.acceptLoop()
	t.Cleanup(r.close)
	return r
}

func (r *tcpRelay) url() string { return "ws://" + r.ln.Addr().String() + "/porthole" }

func (r *tcpRelay) acceptLoop() {
	defer r.wg.Done()
	for range 10_000 {
		down, err := r.ln.Accept()
		if err != nil {
			return // closed
		}
		up, err := net.DialTimeout("tcp", r.target, 5*time.Second)
		if err != nil {
			_ = down.Close() // the client sees a failed attempt
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			_ = down.Close()
			_ = up.Close()
			return
		}
		r.accepted++
		r.conns[down], r.conns[up] = struct{}{}, struct{}{}
		r.mu.Unlock()
		r.wg.Add(2)
		go r.copy(up, down)
		go r.copy(down, up)
	}
}

// copy forwards one direction; when it ends, both sockets are closed.
func (r *tcpRelay) copy(dst, src net.Conn) {
	defer r.wg.Done()
	_, _ = io.Copy(dst, src) // ends with the cut or with either end
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
	_ = dst.Close()
	_ = src.Close()
}

// cut closes every socket the relay holds and returns how many.
func (r *tcpRelay) cut() int {
	r.mu.Lock()
	conns := r.conns
	r.conns = map[net.Conn]struct{}{}
	r.mu.Unlock()
	for c := range conns {
		_ = c.Close() // the copiers end and close the rest
	}
	return len(conns)
}

func (r *tcpRelay) numAccepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

func (r *tcpRelay) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	if err := r.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		r.t.Errorf("relay: close: %v", err)
	}
	r.cut()
	r.wg.Wait()
}

// stallServer accepts TCP connections, reads the upgrade request and
// never answers, like an exit behind a proxy that hangs; requested reports
// each request read in full, so the client is then waiting for the answer.
type stallServer struct {
	ln        net.Listener
	mu        sync.Mutex
	conns     []net.Conn
	closed    bool
	requested chan struct{}
	wg        sync.WaitGroup
}

func newStallServer(t *testing.T) *stallServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stallServer{ln: ln, requested: make(chan struct{}, 64)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for range 10_000 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				_ = c.Close()
				return
			}
			s.conns = append(s.conns, c)
			s.wg.Add(1)
			s.mu.Unlock()
			go s.readRequest(c)
		}
	}()
	t.Cleanup(s.close)
	return s
}

// readRequest reads up to the end of the request's header, then nothing.
func (s *stallServer) readRequest(c net.Conn) {
	defer s.wg.Done()
	var got []byte
	buf := make([]byte, 4096)
	for len(got) < 64<<10 { // a header is far smaller
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if bytes.Contains(got, []byte("\r\n\r\n")) {
			select {
			case s.requested <- struct{}{}:
			default:
			}
			return
		}
		if err != nil {
			return // closed before a whole request
		}
	}
}

func (s *stallServer) url() string { return "ws://" + s.ln.Addr().String() + "/porthole" }

// close stops listening and drops every held connection. Idempotent.
func (s *stallServer) close() {
	_ = s.ln.Close() // a second close is harmless
	s.mu.Lock()
	conns := s.conns
	s.conns, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	s.wg.Wait()
}

// newTestClient starts a client; the test's cleanup closes it and checks
// that nothing was logged at ERROR: every ending in these tests is expected.
func newTestClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// testLogger discards records but fails the test on one at ERROR or above:
// lifecycle rule 4 says expected endings are no errors.
func testLogger(t *testing.T) *slog.Logger {
	h := &errorCatcher{t: t}
	return slog.New(h)
}

type errorCatcher struct {
	t     *testing.T
	attrs []slog.Attr
}

func (h *errorCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (h *errorCatcher) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.t.Errorf("logged at %v: %s %v", r.Level, r.Message, h.attrs)
	}
	return nil
}
func (h *errorCatcher) WithAttrs(as []slog.Attr) slog.Handler {
	return &errorCatcher{t: h.t, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *errorCatcher) WithGroup(string) slog.Handler { return h }

// waitStatus waits on Client.Changed until ok accepts the status, and
// returns it; the test fails after d.
func waitStatus(t *testing.T, c *Client, d time.Duration, what string, ok func(Status) bool) Status {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for range 100_000 {
		changed := c.Changed()
		st := c.Status()
		if ok(st) {
			return st
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("waited %v for %s; status: %s", d, what, fmtStatus(st))
		}
	}
	t.Fatalf("too many state changes waiting for %s", what)
	return Status{}
}

func fmtStatus(s Status) string {
	return fmt.Sprintf("state %v, err %v, sessions %d, streams %d", s.State, s.Err, s.Sessions, s.Streams)
}

// openProbe is a context that tells when Client.Open starts waiting on it:
// Open looks at ctx.Done only when it has no session to open a stream on.
type openProbe struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newOpenProbe(ctx context.Context) *openProbe {
	return &openProbe{Context: ctx, waiting: make(chan struct{})}
}

func (p *openProbe) Done() <-chan struct{} {
	p.once.Do(func() { close(p.waiting) })
	return p.Context.Done()
}

// flow drives one echoed stream: it writes a seeded pseudo-random byte
// sequence until the stream fails and checks every byte that comes back
// against the same sequence, so a byte lost, duplicated or reordered
// before the end is caught.
type flow struct {
	st       *Stream
	progress chan struct{} // closed once threshold bytes came back intact
	end      chan flowEnd  // one value, when both directions have ended
}

type flowEnd struct {
	readErr, writeErr error
	againRead         error // a Read after the end: the ending sticks
	againWrite        error
	verified          int64
	mismatchAt        int64 // offset of the first wrong byte, -1 if none
}

func startFlow(st *Stream, seed uint64, threshold int64) *flow {
	f := &flow{st: st, progress: make(chan struct{}), end: make(chan flowEnd, 1)}
	key := [32]byte{}
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	wrote := make(chan error, 1)
	go func() {
		gen := rand.NewChaCha8(key)
		buf := make([]byte, 32<<10)
		// At most 2 GiB; the stream's deadline bounds the time.
		for range 1 << 16 {
			_, _ = gen.Read(buf) // never fails
			if _, err := st.Write(buf); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- errors.New("flow: wrote 2 GiB and the stream never ended")
	}()
	go func() {
		gen := rand.NewChaCha8(key)
		got, want := make([]byte, 64<<10), make([]byte, 64<<10)
		e := flowEnd{mismatchAt: -1}
		signalled := false
		for range 1 << 22 {
			n, err := st.Read(got)
			if n > 0 {
				_, _ = gen.Read(want[:n]) // never fails
				if e.mismatchAt < 0 && !bytes.Equal(got[:n], want[:n]) {
					e.mismatchAt = e.verified
				}
				if e.mismatchAt < 0 {
					e.verified += int64(n)
				}
				if !signalled && e.verified >= threshold {
					signalled = true
					close(f.progress)
				}
			}
			if err != nil {
				e.readErr = err
				break
			}
		}
		if e.readErr == nil {
			e.readErr = errors.New("flow: too many reads and the stream never ended")
		}
		e.writeErr = <-wrote
		_, e.againRead = st.Read(got)
		_, e.againWrite = st.Write([]byte("x"))
		f.end <- e
	}()
	return f
}

// startFlows opens n streams on c and starts a flow on each.
func startFlows(t *testing.T, c *Client, n int, threshold int64) []*flow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	flows := make([]*flow, n)
	for i := range n {
		st, err := c.Open(ctx, xid.New(), "echo:1", nil)
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { _ = st.Close() }) // ended already unless the test failed
		// A hang fails the test instead of blocking it.
		if err := st.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		flows[i] = startFlow(st, uint64(i+1), threshold)
	}
	return flows
}

// waitProgress waits until every flow has moved threshold bytes both ways.
func waitProgress(t *testing.T, flows []*flow, d time.Duration) {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for i, f := range flows {
		select {
		case <-f.progress:
		case e := <-f.end:
			t.Fatalf("flow %d ended before the cut: read %v, write %v, %d bytes", i, e.readErr, e.writeErr, e.verified)
		case <-timeout.C:
			t.Fatalf("flow %d made no progress in %v", i, d)
		}
	}
}

// checkFlowsLost waits for every flow to end and checks that each ended
// with ErrTunnelLost in both directions, for good, with every byte that
// came back intact.
func checkFlowsLost(t *testing.T, flows []*flow, threshold int64, d time.Duration) {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for i, f := range flows {
		var e flowEnd
		select {
		case e = <-f.end:
		case <-timeout.C:
			t.Fatalf("flow %d did not end within %v of the loss", i, d)
		}
		for _, c := range []struct {
			what string
			err  error
		}{{"read", e.readErr}, {"write", e.writeErr}, {"read again", e.againRead}, {"write again", e.againWrite}} {
			if !errors.Is(c.err, ErrTunnelLost) {
				t.Errorf("flow %d: %s ended with %v, want ErrTunnelLost", i, c.what, c.err)
			}
		}
		if e.mismatchAt >= 0 {
			t.Errorf("flow %d: wrong byte at offset %d", i, e.mismatchAt)
		}
		if e.verified < threshold {
			t.Errorf("flow %d: only %d bytes verified", i, e.verified)
		}
		if err := f.st.Close(); err != nil {
			t.Errorf("flow %d: Close after the loss: %v", i, err)
		}
	}
}

// echoRoundTrip opens a stream on c, sends size seeded bytes, half-closes,
// and checks the echo's length and checksum.
func echoRoundTrip(ctx context.Context, c *Client, size int, seed byte) error {
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(data) // never fails
	st, err := c.Open(ctx, xid.New(), "echo:1", data[:min(size, 1000)])
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if err := echoOn(st, data, min(size, 1000)); err != nil {
		_ = st.Reset() // always nil; the echo's error is the news
		return err
	}
	return st.Close()
}

// writeAndFIN writes data on st and then half-closes it, in a goroutine
// of its own so that the test reads the answer meanwhile; the channel gets
// the first error, or nil.
func writeAndFIN(st *Stream, data []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := st.Write(data)
		if err == nil {
			err = st.CloseWrite()
		}
		done <- err
	}()
	return done
}

// echoOn sends data[sent:] on st, half-closes and checks the echo of data.
func echoOn(st *Stream, data []byte, sent int) error {
	if err := st.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	wrote := writeAndFIN(st, data[sent:])
	got, rerr := io.ReadAll(st)
	if err := <-wrote; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read after %d bytes: %w", len(got), rerr)
	}
	if sum(got) != sum(data) {
		return fmt.Errorf("echo: %d bytes back of %d, checksum differs", len(got), len(data))
	}
	return nil
}
