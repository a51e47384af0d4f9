package core_test

// The seed's verification made real: many clients opening and closing
// proxied connections as fast as they can, ending them every way a
// connection can end, while a subscription watches the registry. See the
// race-fix report in shared/seed and DESIGN.md, "Lifecycle rules".

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/xid"
	"go.uber.org/goleak"

	"porthole/core"
	"porthole/core/inbound"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/relay"
)

const (
	// lcCycleTimeout bounds one client cycle (every read and write of it)
	// and every wait for an event. Generous: a noisy 2-core machine under
	// the race detector is slow, but nothing here should take seconds.
	lcCycleTimeout = 30 * time.Second
	// lcDrainTimeout bounds the waits at the end of a test.
	lcDrainTimeout = 60 * time.Second

	// lcBlackhole is a host the test's tunnel dialer never connects to:
	// port 1 dials until the dial is cancelled, port 2 times out by itself
	// after a few milliseconds. Loopback cannot hang a TCP handshake; this
	// is how the test gets a connection that is still dialling.
	lcBlackhole        = "blackhole.invalid"
	lcBlackholeForever = lcBlackhole + ":1"
	lcBlackholeTimeout = lcBlackhole + ":2"
)

// ---------------------------------------------------------------------
// Captured log records.

// lcLogs keeps every record the engine logs, at every level.
type lcLogs struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   [][]slog.Attr // the logger's own attributes (With) per record
}

type lcHandler struct {
	logs  *lcLogs
	attrs []slog.Attr
}

func newCapturedLogger() (*slog.Logger, *lcLogs) {
	logs := &lcLogs{}
	return slog.New(&lcHandler{logs: logs}), logs
}

func (h *lcHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lcHandler) Handle(_ context.Context, r slog.Record) error {
	h.logs.mu.Lock()
	h.logs.records = append(h.logs.records, r.Clone())
	h.logs.attrs = append(h.logs.attrs, h.attrs)
	h.logs.mu.Unlock()
	return nil
}

func (h *lcHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lcHandler{logs: h.logs, attrs: append(slices.Clip(h.attrs), as...)}
}

// WithGroup: groups do not matter to what the test checks.
func (h *lcHandler) WithGroup(string) slog.Handler { return h }

func (l *lcLogs) format(i int) string {
	r := l.records[i]
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Message)
	for _, a := range l.attrs[i] {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	return b.String()
}

// check fails the test for every record at ERROR or above and logs how many
// records each level had.
func (l *lcLogs) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[slog.Level]int{}
	for i, r := range l.records {
		counts[r.Level]++
		if r.Level >= slog.LevelError {
			t.Errorf("ERROR log record: %s", l.format(i))
		}
	}
	t.Logf("log records: debug=%d info=%d warn=%d error=%d",
		counts[slog.LevelDebug], counts[slog.LevelInfo], counts[slog.LevelWarn], counts[slog.LevelError])
	infos := map[string]int{}
	for _, r := range l.records {
		if r.Level == slog.LevelInfo {
			infos[r.Message]++
		}
	}
	t.Logf("info messages: %v", infos)

	for i, r := range l.records {
		if r.Level == slog.LevelWarn {
			t.Logf("WARN log record: %s", l.format(i))
		}
	}
}

// ---------------------------------------------------------------------
// The origin server: one listener per behaviour.

// lcPattern is the byte stream the origin sends and the streaming clients
// write: byte i of a stream is lcPattern[i%len(lcPattern)].
var lcPattern = func() []byte {
	b := make([]byte, 64<<10+7) // not a power of two: misplaced chunks show
	r := rand.New(rand.NewChaCha8([32]byte{'p', 'o', 'r', 't', 'h', 'o', 'l', 'e'}))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// writePattern writes n bytes of the pattern stream starting at offset off.
func writePattern(w io.Writer, off, n int64) (int64, error) {
	var done int64
	for done < n {
		at := int((off + done) % int64(len(lcPattern)))
		chunk := lcPattern[at:]
		if int64(len(chunk)) > n-done {
			chunk = chunk[:n-done]
		}
		k, err := w.Write(chunk)
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// isPattern reports whether b is the pattern stream from offset off.
func isPattern(b []byte, off int64) bool {
	for len(b) > 0 {
		at := int(off % int64(len(lcPattern)))
		n := min(len(b), len(lcPattern)-at)
		if !bytes.Equal(b[:n], lcPattern[at:at+n]) {
			return false
		}
		b, off = b[n:], off+int64(n)
	}
	return true
}

type lcOrigin struct {
	echo  string // copies back what it reads until EOF, then closes
	send  string // reads a 4-byte big-endian n, sends n pattern bytes, closes
	reset string // reads a 4-byte n, reads n more bytes, then resets (linger 0)
	hang  string // reads and discards, never writes
	meet  string // reads an 8-byte token, answers one byte, then closes when the test says

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	lns      []net.Listener
	conns    map[net.Conn]struct{}
	meetings map[uint64]*lcMeeting
}

// lcMeeting lets a client and the origin close their ends at the same time.
type lcMeeting struct {
	now chan struct{} // closed by the client: both ends close
	rst bool          // the origin resets instead of closing
}

func newOrigin(t *testing.T) *lcOrigin {
	t.Helper()
	o := &lcOrigin{
		done:     make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
		meetings: make(map[uint64]*lcMeeting),
	}
	t.Cleanup(o.close)
	for _, s := range []struct {
		addr *string
		h    func(*net.TCPConn)
	}{
		{&o.echo, o.serveEcho},
		{&o.send, o.serveSend},
		{&o.reset, o.serveReset},
		{&o.hang, o.serveHang},
		{&o.meet, o.serveMeet},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("origin listen: %v", err)
		}
		*s.addr = ln.Addr().String()
		o.mu.Lock()
		o.lns = append(o.lns, ln)
		o.mu.Unlock()
		o.wg.Add(1)
		go o.accept(ln, s.h)
	}
	return o
}

func (o *lcOrigin) accept(ln net.Listener, h func(*net.TCPConn)) {
	defer o.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by close()
		}
		o.mu.Lock()
		select {
		case <-o.done:
			o.mu.Unlock()
			_ = c.Close()
			return
		default:
		}
		o.conns[c] = struct{}{}
		o.wg.Add(1)
		o.mu.Unlock()
		go func() {
			defer o.wg.Done()
			defer func() {
				o.mu.Lock()
				delete(o.conns, c)
				o.mu.Unlock()
				_ = c.Close()
			}()
			h(c.(*net.TCPConn))
		}()
	}
}

// close stops the listeners, closes every origin connection and waits for
// the origin's goroutines. Idempotent.
func (o *lcOrigin) close() {
	o.closeOnce.Do(func() {
		o.mu.Lock()
		close(o.done)
		for _, ln := range o.lns {
			_ = ln.Close()
		}
		for c := range o.conns {
			_ = c.Close()
		}
		o.mu.Unlock()
	})
	o.wg.Wait()
}

func (o *lcOrigin) serveEcho(c *net.TCPConn) {
	buf := make([]byte, 32<<10)
	// Plain reader and writer: no splice of a socket onto itself.
	_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
}

func (o *lcOrigin) serveSend(c *net.TCPConn) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	_, _ = writePattern(c, 0, int64(binary.BigEndian.Uint32(hdr[:])))
}

func (o *lcOrigin) serveReset(c *net.TCPConn) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:]))); err != nil {
		return
	}
	_ = c.SetLinger(0) // the deferred Close sends a reset
}

func (o *lcOrigin) serveHang(c *net.TCPConn) {
	_, _ = io.Copy(io.Discard, c)
}

func (o *lcOrigin) serveMeet(c *net.TCPConn) {
	var tok [8]byte
	if _, err := io.ReadFull(c, tok[:]); err != nil {
		return
	}
	o.mu.Lock()
	m := o.meetings[binary.BigEndian.Uint64(tok[:])]
	o.mu.Unlock()
	if m == nil {
		return
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return
	}
	select {
	case <-m.now:
	case <-o.done:
	}
	if m.rst {
		_ = c.SetLinger(0)
	}
}

func (o *lcOrigin) addMeeting(tok uint64, m *lcMeeting) {
	o.mu.Lock()
	o.meetings[tok] = m
	o.mu.Unlock()
}

func (o *lcOrigin) removeMeeting(tok uint64) {
	o.mu.Lock()
	delete(o.meetings, tok)
	o.mu.Unlock()
}

// ---------------------------------------------------------------------
// The tunnel dialer: the blackhole host never connects.

type lcBlackholeDialer struct{}

var errUnexpectedTunnelTarget = errors.New("test tunnel dialer: unexpected target")

func (lcBlackholeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch addr {
	case lcBlackholeForever:
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	case lcBlackholeTimeout:
		t := time.NewTimer(rand.N(5 * time.Millisecond))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		case <-t.C:
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.ErrDeadlineExceeded}
		}
	}
	return nil, fmt.Errorf("%w %s", errUnexpectedTunnelTarget, addr)
}

// newLifecycleEngine starts an engine on a free loopback port. It runs in
// tunnel mode only so that the blackhole host has a dialer that hangs:
// loopback targets match the bypass list and take the real direct dialer.
func newLifecycleEngine(t *testing.T, logger *slog.Logger) *core.Engine {
	t.Helper()
	eng, err := core.New(core.Config{
		Listen: "127.0.0.1:0",
		Mode:   outbound.ModeTunnel,
		Bypass: []string{"127.0.0.0/8"},
		Tunnel: lcBlackholeDialer{},
		Logger: logger,
	})
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	if err := eng.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { closeEngine(t, eng) })
	return eng
}

// closeEngine closes the engine and fails (with every goroutine's stack) if
// that does not return in time.
func closeEngine(t *testing.T, eng *core.Engine) {
	t.Helper()
	if !within(lcDrainTimeout, func() {
		if err := eng.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
	}) {
		t.Fatalf("engine Close did not return within %v\n%s", lcDrainTimeout, goroutineDump())
	}
}

// within runs f and reports whether it returned within d. If it did not,
// f's goroutine is left running (the test is failing anyway).
func within(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func goroutineDump() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// ---------------------------------------------------------------------
// The registry as the subscription sees it.

type lcEvents struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced after every batch
	lastSeq  uint64
	opened   map[xid.ID]registry.Info
	closed   map[xid.ID]registry.Info
	byClient map[string][]xid.ID // Opened ids by client address, in order
	claimed  map[xid.ID]bool
	problems []string
	ended    bool
	err      error // why the subscription ended
	done     chan struct{}
}

// watchRegistry subscribes and reads the subscription until it ends. The
// registry must be empty: every later connection is seen from its Opened.
func watchRegistry(t *testing.T, reg *registry.Registry) *lcEvents {
	t.Helper()
	snap, sub := reg.Subscribe()
	if len(snap.Live) != 0 {
		t.Fatalf("registry has %d live connections before the test", len(snap.Live))
	}
	e := &lcEvents{
		changed:  make(chan struct{}),
		lastSeq:  snap.Seq,
		opened:   make(map[xid.ID]registry.Info),
		closed:   make(map[xid.ID]registry.Info),
		byClient: make(map[string][]xid.ID),
		claimed:  make(map[xid.ID]bool),
		done:     make(chan struct{}),
	}
	for _, info := range snap.Closed {
		e.opened[info.ID], e.closed[info.ID] = info, info
	}
	go e.run(sub)
	t.Cleanup(func() {
		sub.Close()
		<-e.done
	})
	return e
}

func (e *lcEvents) problem(format string, args ...any) {
	if len(e.problems) < 50 {
		e.problems = append(e.problems, fmt.Sprintf(format, args...))
	}
}

func (e *lcEvents) run(sub *registry.Subscription) {
	defer close(e.done)
	for batch := range sub.C {
		e.mu.Lock()
		for _, ev := range batch {
			e.apply(ev)
		}
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
	}
	e.mu.Lock()
	e.ended, e.err = true, sub.Err()
	close(e.changed)
	e.mu.Unlock()
}

// apply checks one event against what came before; e.mu is held.
func (e *lcEvents) apply(ev registry.Event) {
	if ev.Seq != e.lastSeq+1 {
		e.problem("event %d (%s) follows event %d", ev.Seq, ev.Kind, e.lastSeq)
	}
	e.lastSeq = ev.Seq
	id := ev.Conn.ID
	switch ev.Kind {
	case registry.KindOpened:
		if _, dup := e.opened[id]; dup {
			e.problem("second Opened for %s", id)
			return
		}
		if ev.Conn.State != registry.StateConnecting {
			e.problem("Opened %s in state %s", id, ev.Conn.State)
		}
		e.opened[id] = ev.Conn
		e.byClient[ev.Conn.Client] = append(e.byClient[ev.Conn.Client], id)
	case registry.KindEstablished:
		if _, ok := e.opened[id]; !ok {
			e.problem("Established without Opened: %s", id)
		}
		if _, ok := e.closed[id]; ok {
			e.problem("Established after Closed: %s", id)
		}
		if ev.Conn.State != registry.StateOpen {
			e.problem("Established %s in state %s", id, ev.Conn.State)
		}
	case registry.KindClosed:
		if _, ok := e.opened[id]; !ok {
			e.problem("Closed without Opened: %s (%s → %s)", id, ev.Conn.Client, ev.Conn.Target)
		}
		if _, dup := e.closed[id]; dup {
			e.problem("second Closed for %s (%v, then %v)", id, e.closed[id].Err, ev.Conn.Err)
			return
		}
		if ev.Conn.State != registry.StateClosed || ev.Conn.End.IsZero() {
			e.problem("Closed %s in state %s, end %v", id, ev.Conn.State, ev.Conn.End)
		}
		if ev.Conn.Up < 0 || ev.Conn.Down < 0 {
			e.problem("Closed %s with negative counts %d/%d", id, ev.Conn.Up, ev.Conn.Down)
		}
		e.closed[id] = ev.Conn
	case registry.KindStats:
		if ev.Stats == nil {
			e.problem("Stats event %d without stats", ev.Seq)
		}
	default:
		e.problem("event %d of unknown kind %s", ev.Seq, ev.Kind)
	}
}

// wait calls cond (with e.mu held) after every batch until it is true, the
// subscription ends, or d passes.
func (e *lcEvents) wait(d time.Duration, cond func() bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		e.mu.Lock()
		ok, ended, ch := cond(), e.ended, e.changed
		e.mu.Unlock()
		if ok {
			return true
		}
		if ended {
			return false
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
}

// claim waits for the Opened event of the connection a client at laddr
// asked for target and returns its id; each id is claimed once.
func (e *lcEvents) claim(laddr, target string) (xid.ID, error) {
	var id xid.ID
	ok := e.wait(lcCycleTimeout, func() bool {
		ids := e.byClient[laddr]
		for i := len(ids) - 1; i >= 0; i-- {
			if !e.claimed[ids[i]] && e.opened[ids[i]].Target == target {
				id = ids[i]
				e.claimed[id] = true
				return true
			}
		}
		return false
	})
	if !ok {
		return id, fmt.Errorf("no Opened event for client %s → %s within %v", laddr, target, lcCycleTimeout)
	}
	return id, nil
}

// closedInfo waits for id's Closed event.
func (e *lcEvents) closedInfo(id xid.ID) (registry.Info, error) {
	var info registry.Info
	ok := e.wait(lcCycleTimeout, func() bool {
		var ok bool
		info, ok = e.closed[id]
		return ok
	})
	if !ok {
		return info, fmt.Errorf("connection %s has no Closed event %v after its client finished", id, lcCycleTimeout)
	}
	return info, nil
}

// settle finds the record of a client's connection and waits for it to be
// closed: every connection that got as far as the registry must end.
func (e *lcEvents) settle(laddr, target string) (registry.Info, error) {
	id, err := e.claim(laddr, target)
	if err != nil {
		return registry.Info{}, err
	}
	return e.closedInfo(id)
}

// counts returns the numbers of Opened and Closed events so far.
func (e *lcEvents) counts() (opened, closed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.opened), len(e.closed)
}

// drained waits until every Opened connection has its Closed event.
func (e *lcEvents) drained(d time.Duration) bool {
	return e.wait(d, func() bool { return len(e.closed) == len(e.opened) })
}

// check fails the test for every inconsistency seen in the stream, and for
// connections opened and never closed.
func (e *lcEvents) check(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.problems {
		t.Errorf("event stream: %s", p)
	}
	n := 0
	for id, info := range e.opened {
		if _, ok := e.closed[id]; !ok {
			if n++; n <= 20 {
				t.Errorf("connection %s (%s %s → %s) opened and never closed", id, info.Proto, info.Client, info.Target)
			}
		}
	}
	if n > 20 {
		t.Errorf("... %d connections opened and never closed in all", n)
	}
	bad := 0
	for id, info := range e.closed {
		if !expectedReason(info.Err) {
			if bad++; bad <= 10 {
				t.Errorf("connection %s (%s → %s) closed with an unexpected reason: %v", id, info.Client, info.Target, info.Err)
			}
		}
	}
	if e.ended && e.err != nil && !errors.Is(e.err, registry.ErrClosed) {
		t.Errorf("subscription ended early: %v", e.err)
	}
}

// expectedReason: every way the test ends connections is an expected
// ending (the logs must say DEBUG, not ERROR): clean, closed by the user,
// stopped, the blackhole's dial timeout, or the peer going away.
func expectedReason(err error) bool {
	return err == nil || errors.Is(err, registry.ErrClosedByUser) || errors.Is(err, inbound.ErrStopped) ||
		errors.Is(err, os.ErrDeadlineExceeded) || relay.Expected(err)
}

// reasons counts the close reasons by kind, for the test log.
func (e *lcEvents) reasons() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[string]int{}
	for _, info := range e.closed {
		switch err := info.Err; {
		case err == nil:
			m["clean"]++
		case errors.Is(err, registry.ErrClosedByUser):
			m["closed by user"]++
		case errors.Is(err, inbound.ErrStopped):
			m["stopped"]++
		case errors.Is(err, os.ErrDeadlineExceeded):
			m["dial timeout"]++
		case relay.Expected(err):
			m["peer went away"]++
		default:
			m["unexpected: "+err.Error()]++
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

// ---------------------------------------------------------------------
// Minimal clients: HTTP CONNECT and SOCKS5, written out by hand.

type lcProto int

const (
	lcConnect lcProto = iota
	lcSOCKS5
)

func (p lcProto) String() string {
	if p == lcConnect {
		return "CONNECT"
	}
	return "SOCKS5"
}

var (
	// errRefused: the proxy answered the request with a failure.
	errRefused = errors.New("proxy refused the request")
	// errNoReply: the connection ended before the proxy's answer.
	errNoReply = errors.New("no reply from the proxy")
)

// lcClient is one client connection through the proxy.
type lcClient struct {
	conn  *net.TCPConn
	br    *bufio.Reader // everything read after the handshake goes through it
	laddr string
	proto lcProto
}

// dialProxy connects to the proxy; every later read and write on the
// connection has lcCycleTimeout in all.
func dialProxy(proxy string, p lcProto) (*lcClient, error) {
	d := net.Dialer{Timeout: lcCycleTimeout}
	c, err := d.Dial("tcp", proxy)
	if err != nil {
		return nil, fmt.Errorf("dial proxy: %w", err)
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetDeadline(time.Now().Add(lcCycleTimeout)); err != nil {
		_ = tc.Close()
		return nil, err
	}
	return &lcClient{conn: tc, br: bufio.NewReader(tc), laddr: tc.LocalAddr().String(), proto: p}, nil
}

// request sends the whole request for target (for SOCKS5 after the method
// negotiation) without waiting for the answer.
func (c *lcClient) request(target string) error {
	if c.proto == lcConnect {
		_, err := fmt.Fprintf(c.conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		return err
	}
	if _, err := c.conn.Write([]byte{5, 1, 0}); err != nil {
		return err
	}
	var m [2]byte
	if _, err := io.ReadFull(c.br, m[:]); err != nil {
		return fmt.Errorf("socks5 method reply: %w", err)
	}
	if m != [2]byte{5, 0} {
		return fmt.Errorf("socks5 method reply %x", m)
	}
	_, err := c.conn.Write(socks5Request(target))
	return err
}

func socks5Request(target string) []byte {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		panic(err) // the test's own targets
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		panic(err)
	}
	req := []byte{5, 1, 0}
	if ip := net.ParseIP(host).To4(); ip != nil {
		req = append(req, 1)
		req = append(req, ip...)
	} else {
		req = append(req, 3, byte(len(host)))
		req = append(req, host...)
	}
	return binary.BigEndian.AppendUint16(req, uint16(n))
}

// reply reads the proxy's answer: nil for success, errRefused for a
// failure answer, errNoReply (wrapping the read error) if there was none.
func (c *lcClient) reply() error {
	if c.proto == lcConnect {
		resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return fmt.Errorf("%w: %w", errNoReply, err)
		}
		if resp.StatusCode != http.StatusOK {
			_ = resp.Body.Close() // a short error text with a length
			return fmt.Errorf("%w: %s", errRefused, resp.Status)
		}
		// A 200 to CONNECT has no body: the tunnel follows, read through
		// c.br. (Its Body would read the tunnel: leave it alone.)
		return nil
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return fmt.Errorf("%w: %w", errNoReply, err)
	}
	n := 0
	switch hdr[3] {
	case 1:
		n = 4 + 2
	case 4:
		n = 16 + 2
	default:
		return fmt.Errorf("socks5 reply %x: bad address type", hdr)
	}
	if _, err := io.ReadFull(c.br, make([]byte, n)); err != nil {
		return fmt.Errorf("%w: %w", errNoReply, err)
	}
	if hdr[0] != 5 || hdr[2] != 0 {
		return fmt.Errorf("socks5 reply %x: malformed", hdr)
	}
	if hdr[1] != 0 {
		return fmt.Errorf("%w: socks5 reply code %d", errRefused, hdr[1])
	}
	return nil
}

// abort closes with a reset instead of a FIN.
func (c *lcClient) abort() {
	_ = c.conn.SetLinger(0)
	_ = c.conn.Close()
}

// hangUp closes or resets, as rst says.
func (c *lcClient) hangUp(rst bool) {
	if rst {
		c.abort()
		return
	}
	_ = c.conn.Close()
}

// timedOut reports whether err is the client's own deadline: something
// hung, which is a failure whatever the scenario.
func timedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// streamWriter writes the pattern stream to w until it has written limit
// bytes or a write fails; then, if halfClose, it closes the write side.
type streamResult struct {
	n   int64
	err error
}

func startWriter(c *lcClient, payload []byte, halfClose bool) <-chan streamResult {
	ch := make(chan streamResult, 1)
	go func() {
		n, err := c.conn.Write(payload)
		if err == nil && halfClose {
			err = c.conn.CloseWrite()
		}
		ch <- streamResult{int64(n), err}
	}()
	return ch
}

func startPatternWriter(c *lcClient, limit int64) <-chan streamResult {
	ch := make(chan streamResult, 1)
	go func() {
		n, err := writePattern(c.conn, 0, limit)
		ch <- streamResult{n, err}
	}()
	return ch
}

// ---------------------------------------------------------------------
// The scenarios.

type lcRun struct {
	proxy  string
	reg    *registry.Registry
	origin *lcOrigin
	ev     *lcEvents

	exact      atomic.Int64 // completed transfers whose counts were checked exactly
	interrupts atomic.Int64 // transfers ended early by a CloseAll of another cycle
	closedByID atomic.Int64 // CloseConn calls that found their connection live
	perKind    [lcNumKinds]atomic.Int64
}

type lcKind int

const (
	lcNormal lcKind = iota
	lcTargetSendsAndCloses
	lcClientHangsUp
	lcTargetResets
	lcCloseByID
	lcCloseInHandshake
	lcCloseInDial
	lcBothClose
	lcCloseAllRace
	lcNumKinds
)

var lcKindNames = [lcNumKinds]string{
	"normal echo", "target sends and closes", "client hangs up", "target resets",
	"close by id", "close in handshake", "close in dial", "both ends close", "CloseAll race",
}

// lcWeights: how often each kind is picked, in parts of 100. CloseAll is
// rare: it ends every other cycle's connection too.
var lcWeights = [lcNumKinds]int{26, 10, 14, 10, 10, 12, 8, 8, 2}

func pickKind(r *rand.Rand) lcKind {
	n := r.IntN(100)
	for k, w := range lcWeights {
		if n < w {
			return lcKind(k)
		}
		n -= w
	}
	return lcNormal
}

func (x *lcRun) cycle(r *rand.Rand, k lcKind) error {
	p := lcProto(r.IntN(2))
	x.perKind[k].Add(1)
	switch k {
	case lcNormal:
		return x.normal(r, p)
	case lcTargetSendsAndCloses:
		return x.targetSendsAndCloses(r, p)
	case lcClientHangsUp:
		return x.clientHangsUp(r, p)
	case lcTargetResets:
		return x.targetResets(r, p)
	case lcCloseByID:
		return x.closeByID(p)
	case lcCloseInHandshake:
		return x.closeInHandshake(r, p)
	case lcCloseInDial:
		return x.closeInDial(r, p)
	case lcBothClose:
		return x.bothClose(r, p)
	case lcCloseAllRace:
		return x.closeAllRace(r, p)
	}
	return fmt.Errorf("unknown kind %d", k)
}

// open dials the proxy and asks for target. A failed or missing answer is
// returned as is: the caller decides whether it may happen.
func (x *lcRun) open(p lcProto, target string) (*lcClient, error) {
	c, err := dialProxy(x.proxy, p)
	if err != nil {
		return nil, err
	}
	if err := c.request(target); err != nil {
		_ = c.conn.Close()
		return nil, fmt.Errorf("request: %w", err)
	}
	return c, c.reply()
}

// interrupted checks a connection that ended before the client was done
// although nothing in its own scenario ends it: only a CloseAll from
// another cycle may do that, so its close reason must say "closed by user".
func (x *lcRun) interrupted(c *lcClient, target string, cause error) error {
	_ = c.conn.Close()
	if timedOut(cause) {
		return fmt.Errorf("%s to %s: client timed out: %w", c.proto, target, cause)
	}
	info, err := x.ev.settle(c.laddr, target)
	if err != nil {
		return fmt.Errorf("%s to %s ended early (%v); %w", c.proto, target, cause, err)
	}
	if !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s to %s ended early for the client (%v) with close reason %v; only a CloseAll may end it", c.proto, target, cause, info.Err)
	}
	x.interrupts.Add(1)
	return nil
}

// checkEcho checks what any echo connection must satisfy however it ended:
// the client received a prefix of what it sent, and the registry's counts
// lie between what was received and what was written.
func checkEcho(info registry.Info, written int64, got []byte, gotOff int64) error {
	recv := gotOff + int64(len(got))
	if !isPattern(got, gotOff) {
		return fmt.Errorf("connection %s: echoed bytes differ from those sent", info.ID)
	}
	if !(recv <= info.Down && info.Down <= info.Up && info.Up <= written) {
		return fmt.Errorf("connection %s: want received %d ≤ down %d ≤ up %d ≤ written %d", info.ID, recv, info.Down, info.Up, written)
	}
	return nil
}

// normal: echo a random payload, half-close, read everything back, compare
// checksums; the registry must have counted exactly those bytes.
func (x *lcRun) normal(r *rand.Rand, p lcProto) error {
	size := r.IntN(64 << 10)
	if r.IntN(10) == 0 {
		size = r.IntN(1 << 20)
	}
	target := x.origin.echo
	c, err := x.open(p, target)
	if err != nil {
		if c == nil {
			return err
		}
		return x.interrupted(c, target, err)
	}
	payload := make([]byte, size)
	off := r.Int64N(int64(len(lcPattern)))
	for i := range payload {
		payload[i] = lcPattern[(off+int64(i))%int64(len(lcPattern))]
	}
	wres := startWriter(c, payload, true)
	got, rerr := io.ReadAll(io.LimitReader(c.br, int64(size)+1))
	w := <-wres
	_ = c.conn.Close()
	if timedOut(rerr) || timedOut(w.err) {
		return fmt.Errorf("%s echo of %d bytes: client timed out: read %v, write %v", p, size, rerr, w.err)
	}
	if !isPattern(got, off) {
		return fmt.Errorf("%s echo of %d bytes: received bytes differ from those sent", p, size)
	}
	complete := rerr == nil && w.err == nil && len(got) == size && sha256.Sum256(got) == sha256.Sum256(payload)
	if !complete {
		if len(got) > size {
			return fmt.Errorf("%s echo: received %d bytes, sent %d", p, len(got), size)
		}
		return x.interrupted(c, target, fmt.Errorf("received %d of %d bytes: read %v, write %v", len(got), size, rerr, w.err))
	}
	info, err := x.ev.settle(c.laddr, target)
	if err != nil {
		return err
	}
	if info.Err != nil && !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s echo %s: clean transfer closed with reason %v", p, info.ID, info.Err)
	}
	if info.Up != int64(size) || info.Down != int64(size) {
		return fmt.Errorf("%s echo %s: registry counted up %d, down %d; the client sent and received %d", p, info.ID, info.Up, info.Down, size)
	}
	x.exact.Add(1)
	return nil
}

// targetSendsAndCloses: the target sends n bytes and hangs up; the client
// reads them all, then closes. Counts are exact: 4 bytes up, n down.
func (x *lcRun) targetSendsAndCloses(r *rand.Rand, p lcProto) error {
	n := r.IntN(256 << 10)
	target := x.origin.send
	c, err := x.open(p, target)
	if err != nil {
		if c == nil {
			return err
		}
		return x.interrupted(c, target, err)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(n))
	if _, err := c.conn.Write(hdr[:]); err != nil {
		return x.interrupted(c, target, err)
	}
	got, rerr := io.ReadAll(io.LimitReader(c.br, int64(n)+1))
	_ = c.conn.Close()
	if !isPattern(got, 0) || len(got) > n {
		return fmt.Errorf("%s: target's %d bytes arrived wrong (%d bytes)", p, n, len(got))
	}
	if rerr != nil || len(got) != n {
		return x.interrupted(c, target, fmt.Errorf("received %d of %d bytes: %v", len(got), n, rerr))
	}
	info, err := x.ev.settle(c.laddr, target)
	if err != nil {
		return err
	}
	if info.Err != nil && !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s %s: target's clean close ended with reason %v", p, info.ID, info.Err)
	}
	if info.Up != 4 || info.Down != int64(n) {
		return fmt.Errorf("%s %s: registry counted up %d, down %d; want 4 and %d", p, info.ID, info.Up, info.Down, n)
	}
	x.exact.Add(1)
	return nil
}

// clientHangsUp: the client closes or resets while bytes flow both ways.
func (x *lcRun) clientHangsUp(r *rand.Rand, p lcProto) error {
	target := x.origin.echo
	c, err := x.open(p, target)
	if err != nil {
		if c == nil {
			return err
		}
		return x.interrupted(c, target, err)
	}
	limit := int64(256<<10 + r.IntN(768<<10))
	wres := startPatternWriter(c, limit)
	k := r.Int64N(limit / 2) // sometimes 0: hang up right after the handshake
	got := make([]byte, k)
	_, rerr := io.ReadFull(c.br, got)
	c.hangUp(r.IntN(2) == 0)
	w := <-wres
	if timedOut(rerr) || timedOut(w.err) {
		return fmt.Errorf("%s: client timed out: read %v, write %v", p, rerr, w.err)
	}
	info, err := x.ev.settle(c.laddr, target)
	if err != nil {
		return err
	}
	if rerr != nil && !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s %s: ended before the client hung up (%v), reason %v", p, info.ID, rerr, info.Err)
	}
	if rerr != nil {
		got = nil // how much arrived is unknown
	}
	return checkEcho(info, w.n, got, 0)
}

// targetResets: the target resets the connection while the client writes.
// The client must see its connection end (not hang).
func (x *lcRun) targetResets(r *rand.Rand, p lcProto) error {
	target := x.origin.reset
	c, err := x.open(p, target)
	if err != nil {
		if c == nil {
			return err
		}
		return x.interrupted(c, target, err)
	}
	m := r.IntN(128 << 10)
	payload := make([]byte, 4+m+256<<10)
	binary.BigEndian.PutUint32(payload, uint32(m))
	wres := startWriter(c, payload, true)
	n, rerr := io.Copy(io.Discard, c.br)
	w := <-wres
	_ = c.conn.Close()
	if timedOut(rerr) || timedOut(w.err) {
		return fmt.Errorf("%s: target reset, client timed out: read %v, write %v", p, rerr, w.err)
	}
	if n != 0 {
		return fmt.Errorf("%s: the resetting target never writes, client read %d bytes", p, n)
	}
	_, err = x.ev.settle(c.laddr, target)
	return err
}

// closeByID: the test closes the connection through the registry while
// bytes flow both ways.
func (x *lcRun) closeByID(p lcProto) error {
	target := x.origin.echo
	c, err := x.open(p, target)
	if err != nil {
		if c == nil {
			return err
		}
		return x.interrupted(c, target, err)
	}
	id, err := x.ev.claim(c.laddr, target)
	if err != nil {
		_ = c.conn.Close()
		return err
	}
	wres := startPatternWriter(c, 64<<20)
	first := make([]byte, 16<<10)
	_, rerr := io.ReadFull(c.br, first)
	if rerr == nil {
		if x.reg.CloseConn(id) {
			x.closedByID.Add(1)
		}
	}
	rest, err2 := io.ReadAll(c.br) // ends when the proxy closes the connection
	_ = c.conn.Close()
	w := <-wres
	if timedOut(rerr) || timedOut(err2) || timedOut(w.err) {
		return fmt.Errorf("%s %s: closed by id, client timed out: read %v/%v, write %v", p, id, rerr, err2, w.err)
	}
	if w.n == 64<<20 {
		return fmt.Errorf("%s %s: the client could write 64 MiB after CloseConn", p, id)
	}
	info, err := x.ev.closedInfo(id)
	if err != nil {
		return err
	}
	if !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s %s: closed by id with reason %v", p, id, info.Err)
	}
	got := append(first, rest...) // what arrived, however the read ended
	if rerr != nil {
		got = nil // ReadFull failed: how much of first arrived is unknown
	}
	return checkEcho(info, w.n, got, 0)
}

// closeInHandshake: the client gives up before the proxy could answer:
// half a greeting, half a request, or a whole request it never waits for.
func (x *lcRun) closeInHandshake(r *rand.Rand, p lcProto) error {
	c, err := dialProxy(x.proxy, p)
	if err != nil {
		return err
	}
	target := x.origin.echo
	rst := r.IntN(2) == 0
	switch r.IntN(4) {
	case 0: // part of the first message
		var part []byte
		if p == lcConnect {
			line := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
			part = []byte(line[:1+r.IntN(len(line)-1)])
		} else {
			part = []byte{5, 1, 0}[:1+r.IntN(2)]
		}
		_, err = c.conn.Write(part)
	case 1: // SOCKS5: greeting done, half the request; CONNECT: nothing at all
		if p == lcSOCKS5 {
			if _, err = c.conn.Write([]byte{5, 1, 0}); err == nil {
				var m [2]byte
				if _, err = io.ReadFull(c.br, m[:]); err == nil {
					req := socks5Request(target)
					_, err = c.conn.Write(req[:1+r.IntN(len(req)-1)])
				}
			}
		}
	default: // the whole request, then a close (FIN) at once: the proxy
		// reads it, dials, and answers into a closed socket.
		if err := c.request(target); err != nil {
			_ = c.conn.Close()
			return fmt.Errorf("request: %w", err)
		}
		_ = c.conn.Close()
		_, err := x.ev.settle(c.laddr, target)
		return err
	}
	c.hangUp(rst)
	if timedOut(err) {
		return fmt.Errorf("%s: partial handshake: client timed out: %w", p, err)
	}
	return nil
}

// closeInDial: the proxy is dialling a target that does not answer. Either
// the test closes the connection by id (the dial is cancelled), or the
// client hangs up and the dial fails by itself.
func (x *lcRun) closeInDial(r *rand.Rand, p lcProto) error {
	byID := r.IntN(2) == 0
	target := lcBlackholeTimeout
	if byID {
		target = lcBlackholeForever
	}
	c, err := dialProxy(x.proxy, p)
	if err != nil {
		return err
	}
	if err := c.request(target); err != nil {
		_ = c.conn.Close()
		return fmt.Errorf("request: %w", err)
	}
	id, err := x.ev.claim(c.laddr, target)
	if err != nil {
		_ = c.conn.Close()
		return err
	}
	if !byID {
		c.hangUp(r.IntN(2) == 0)
		_, err := x.ev.closedInfo(id)
		return err
	}
	if x.reg.CloseConn(id) {
		x.closedByID.Add(1)
	}
	rerr := c.reply()
	_ = c.conn.Close()
	if !errors.Is(rerr, errRefused) && !errors.Is(rerr, errNoReply) {
		return fmt.Errorf("%s %s: closed during dial, reply: %v", p, id, rerr)
	}
	if timedOut(rerr) {
		return fmt.Errorf("%s %s: closed during dial, client timed out: %w", p, id, rerr)
	}
	info, err := x.ev.closedInfo(id)
	if err != nil {
		return err
	}
	if !errors.Is(info.Err, registry.ErrClosedByUser) {
		return fmt.Errorf("%s %s: closed during dial with reason %v", p, id, info.Err)
	}
	return nil
}

// bothClose: client and target close (or reset) at the same moment.
func (x *lcRun) bothClose(r *rand.Rand, p lcProto) error {
	target := x.origin.meet
	c, err := x.open(p, target)
	if err != nil {
		if c == nil {
			return err
		}
		return x.interrupted(c, target, err)
	}
	tok := r.Uint64()
	m := &lcMeeting{now: make(chan struct{}), rst: r.IntN(2) == 0}
	x.origin.addMeeting(tok, m)
	defer x.origin.removeMeeting(tok)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], tok)
	if _, err := c.conn.Write(b[:]); err != nil {
		close(m.now)
		return x.interrupted(c, target, err)
	}
	if _, err := io.ReadFull(c.br, b[:1]); err != nil {
		close(m.now)
		return x.interrupted(c, target, err)
	}
	rst := r.IntN(2) == 0
	close(m.now)
	c.hangUp(rst)
	_, err = x.ev.settle(c.laddr, target)
	return err
}

// closeAllRace: CloseAll while this cycle's request is in flight (and
// whatever the other clients are doing).
func (x *lcRun) closeAllRace(r *rand.Rand, p lcProto) error {
	target := x.origin.echo
	if r.IntN(2) == 0 {
		target = lcBlackholeTimeout
	}
	c, err := dialProxy(x.proxy, p)
	if err != nil {
		return err
	}
	if err := c.request(target); err != nil {
		_ = c.conn.Close()
		return fmt.Errorf("request: %w", err)
	}
	x.reg.CloseAll()
	rerr := c.reply()
	_ = c.conn.Close()
	if timedOut(rerr) {
		return fmt.Errorf("%s: CloseAll race: client timed out: %w", p, rerr)
	}
	if rerr != nil && !errors.Is(rerr, errRefused) && !errors.Is(rerr, errNoReply) {
		return fmt.Errorf("%s: CloseAll race: %w", p, rerr)
	}
	_, err = x.ev.settle(c.laddr, target)
	return err
}

// ---------------------------------------------------------------------
// The tests.

func TestLifecycleOpenCloseLoop(t *testing.T) {
	cycles := 2000
	if testing.Short() {
		cycles = 500
	}
	const clients = 10
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d cycles, %d clients", seed, cycles, clients)

	logger, logs := newCapturedLogger()
	origin := newOrigin(t)
	eng := newLifecycleEngine(t, logger)
	reg := eng.Registry()
	ev := watchRegistry(t, reg)
	x := &lcRun{proxy: eng.Addr().String(), reg: reg, origin: origin, ev: ev}

	var (
		next     atomic.Int64
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failures.Load() < 10 {
				i := next.Add(1) - 1
				if i >= int64(cycles) {
					return
				}
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				k := pickKind(r)
				if err := x.cycle(r, k); err != nil {
					failures.Add(1)
					t.Errorf("cycle %d (%s): %v", i, lcKindNames[k], err)
				}
			}
		}()
	}
	if !within(lcDrainTimeout*3, wg.Wait) {
		t.Fatalf("clients did not finish\n%s", goroutineDump())
	}

	// Every connection the proxy saw ends, by events, not by waiting.
	if !ev.drained(lcDrainTimeout) {
		o, c := ev.counts()
		t.Errorf("after the clients finished: %d Opened, %d Closed within %v", o, c, lcDrainTimeout)
	}
	snap := reg.Snapshot()
	if len(snap.Live) != 0 || snap.Totals.Active != 0 {
		t.Errorf("live map not empty: %d live, Totals.Active %d", len(snap.Live), snap.Totals.Active)
		for i, info := range snap.Live {
			if i == 10 {
				break
			}
			t.Errorf("  live: %s %s %s → %s, state %s", info.ID, info.Proto, info.Client, info.Target, info.State)
		}
	}
	opened, closed := ev.counts()
	if snap.Totals.Opened != uint64(opened) {
		t.Errorf("Totals.Opened %d, Opened events %d", snap.Totals.Opened, opened)
	}
	var kinds strings.Builder
	for k := range lcNumKinds {
		fmt.Fprintf(&kinds, " %s=%d", lcKindNames[k], x.perKind[k].Load())
	}
	t.Logf("cycles:%s", kinds.String())
	t.Logf("connections: %d opened, %d closed (%s); exact transfers %d, interrupted by CloseAll %d, closed by id %d",
		opened, closed, ev.reasons(), x.exact.Load(), x.interrupts.Load(), x.closedByID.Load())
	if failures.Load() == 0 {
		if x.exact.Load() < int64(cycles)/10 {
			t.Errorf("only %d transfers completed with exact counts: the test proves little", x.exact.Load())
		}
		if x.closedByID.Load() == 0 {
			t.Errorf("no CloseConn found its connection live")
		}
	}

	closeEngine(t, eng)
	<-ev.done // the registry's Close ends the subscription
	ev.check(t)
	origin.close()
	logs.check(t)
	if !t.Failed() {
		goleak.VerifyNone(t)
	}
}

// TestStopDuringTraffic stops the engine while connections stream, dial and
// arrive, then starts it again.
func TestStopDuringTraffic(t *testing.T) {
	const (
		streams  = 12 // echo connections moving bytes both ways
		dialling = 4  // connections whose dial never finishes
		churners = 4  // clients opening connections (and keeping them) as fast as they can
		perChurn = 50
	)
	logger, logs := newCapturedLogger()
	origin := newOrigin(t)
	eng := newLifecycleEngine(t, logger)
	reg := eng.Registry()
	ev := watchRegistry(t, reg)
	proxy := eng.Addr().String()

	var (
		wg      sync.WaitGroup
		flowing sync.WaitGroup
		mu      sync.Mutex
		errs    []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i := range streams {
		wg.Add(1)
		flowing.Add(1)
		go func() {
			defer wg.Done()
			once := sync.OnceFunc(flowing.Done)
			defer once()
			c, err := x0open(proxy, lcProto(i%2), origin.echo)
			if err != nil {
				fail(fmt.Errorf("stream %d: %w", i, err))
				return
			}
			defer c.conn.Close()
			wres := startPatternWriter(c, 1<<30)
			buf := make([]byte, 32<<10)
			var got int64
			for range 1 << 20 { // bounded; ends when the proxy stops
				n, err := c.br.Read(buf)
				if !isPattern(buf[:n], got) {
					fail(fmt.Errorf("stream %d: wrong bytes at %d", i, got))
					break
				}
				got += int64(n)
				if got >= 64<<10 {
					once()
				}
				if err != nil {
					if timedOut(err) {
						fail(fmt.Errorf("stream %d: timed out: %w", i, err))
					}
					break
				}
			}
			_ = c.conn.Close()
			if w := <-wres; timedOut(w.err) {
				fail(fmt.Errorf("stream %d writer: %w", i, w.err))
			}
		}()
	}
	for i := range dialling {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialProxy(proxy, lcProto(i%2))
			if err != nil {
				fail(err)
				return
			}
			defer c.conn.Close()
			if err := c.request(lcBlackholeForever); err != nil {
				fail(fmt.Errorf("dialling %d: %w", i, err))
				return
			}
			if err := c.reply(); timedOut(err) || err == nil {
				fail(fmt.Errorf("dialling %d: reply after stop: %v", i, err))
			}
		}()
	}
	if !within(lcDrainTimeout, flowing.Wait) {
		t.Fatalf("streams did not start")
	}
	if !ev.wait(lcDrainTimeout, func() bool {
		n := 0
		for _, info := range ev.opened {
			if info.Target == lcBlackholeForever {
				n++
			}
		}
		return n == dialling
	}) {
		t.Fatalf("the dialling connections were not registered")
	}
	// Churners open connections to the silent target and keep them, while
	// Stop runs: some are refused, some are registered as Stop begins.
	start := make(chan struct{})
	var churnOK atomic.Int64
	for i := range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []*lcClient
			defer func() {
				for _, c := range held {
					_ = c.conn.Close()
				}
			}()
			<-start
			for range perChurn {
				c, err := x0open(proxy, lcProto(i%2), origin.hang)
				if c != nil {
					held = append(held, c)
				}
				if err != nil {
					if timedOut(err) {
						fail(fmt.Errorf("churner %d: %w", i, err))
					}
					return // the proxy stopped
				}
				churnOK.Add(1)
			}
		}()
	}
	close(start)
	if !ev.wait(lcDrainTimeout, func() bool {
		n := 0
		for _, info := range ev.opened {
			if info.Target == origin.hang {
				n++
			}
		}
		return n >= 2*churners
	}) {
		t.Fatalf("the churners got no connection through")
	}
	if !within(lcDrainTimeout, func() {
		if err := eng.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}) {
		t.Fatalf("Stop did not return within %v\n%s", lcDrainTimeout, goroutineDump())
	}
	// Stop returned: every handler is gone, so the registry has nothing live.
	if snap := reg.Snapshot(); len(snap.Live) != 0 || snap.Totals.Active != 0 {
		t.Errorf("after Stop: %d live connections, Totals.Active %d", len(snap.Live), snap.Totals.Active)
	}
	if eng.Addr() != nil {
		t.Errorf("Addr after Stop: %v", eng.Addr())
	}
	if err := eng.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if !within(lcDrainTimeout, wg.Wait) {
		t.Fatalf("clients did not end after Stop\n%s", goroutineDump())
	}
	for _, err := range errs {
		t.Error(err)
	}
	if !ev.drained(lcDrainTimeout) {
		o, c := ev.counts()
		t.Fatalf("after Stop: %d Opened, %d Closed events", o, c)
	}
	ev.mu.Lock()
	stoppedIDs := make([]xid.ID, 0, len(ev.closed))
	for id, info := range ev.closed {
		if !errors.Is(info.Err, inbound.ErrStopped) {
			t.Errorf("connection %s (%s → %s) closed with reason %v, want %v", id, info.Client, info.Target, info.Err, inbound.ErrStopped)
		}
		stoppedIDs = append(stoppedIDs, id)
	}
	ev.mu.Unlock()
	if len(stoppedIDs) < streams+dialling {
		t.Errorf("only %d connections closed by Stop", len(stoppedIDs))
	}
	t.Logf("stopped %d connections (%d churned in)", len(stoppedIDs), churnOK.Load())

	// Start again on the same engine: it serves, and the registry kept its
	// history.
	if err := eng.Start(); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := eng.Start(); !errors.Is(err, core.ErrRunning) {
		t.Errorf("second Start: %v, want ErrRunning", err)
	}
	x := &lcRun{proxy: eng.Addr().String(), reg: reg, origin: origin, ev: ev}
	for i := range 4 {
		r := rand.New(rand.NewPCG(uint64(i), 1))
		if err := x.normal(r, lcProto(i%2)); err != nil {
			t.Errorf("after restart: %v", err)
		}
	}
	if x.exact.Load() != 4 {
		t.Errorf("after restart: %d of 4 transfers complete", x.exact.Load())
	}
	snap := reg.Snapshot()
	kept := map[xid.ID]bool{}
	for _, info := range snap.Closed {
		kept[info.ID] = true
	}
	for _, id := range stoppedIDs {
		if !kept[id] {
			t.Errorf("history lost %s across Stop/Start", id)
			break
		}
	}
	if want := uint64(len(stoppedIDs) + 4); snap.Totals.Opened != want {
		t.Errorf("Totals.Opened %d, want %d", snap.Totals.Opened, want)
	}

	closeEngine(t, eng)
	<-ev.done
	ev.check(t)
	origin.close()
	logs.check(t)
	if !t.Failed() {
		goleak.VerifyNone(t)
	}
}

// x0open is open without a run: dial, ask, read the answer.
func x0open(proxy string, p lcProto, target string) (*lcClient, error) {
	return (&lcRun{proxy: proxy}).open(p, target)
}

// TestSecondEngineSamePort: a taken port is ErrPortInUse, and the message
// names the port.
func TestSecondEngineSamePort(t *testing.T) {
	logger, logs := newCapturedLogger()
	first, err := core.New(core.Config{Listen: "127.0.0.1:0", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeEngine(t, first) })
	addr := first.Addr().String()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}

	second, err := core.New(core.Config{Listen: addr, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeEngine(t, second) })
	err = second.Start()
	if !errors.Is(err, core.ErrPortInUse) {
		t.Fatalf("second engine on %s: %v, want ErrPortInUse", addr, err)
	}
	if !strings.Contains(err.Error(), port) {
		t.Errorf("error %q does not name port %s", err, port)
	}
	if second.Addr() != nil {
		t.Errorf("failed engine has an address: %v", second.Addr())
	}
	if err := second.Stop(); err != nil {
		t.Errorf("Stop of a never started engine: %v", err)
	}
	// The first engine is untouched.
	if first.Addr() == nil || first.Addr().String() != addr {
		t.Errorf("first engine's address changed: %v", first.Addr())
	}
	closeEngine(t, second)
	closeEngine(t, first)
	logs.check(t)
}
