package inbound_test

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
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"porthole/core"
	"porthole/core/inbound"
	"porthole/core/registry"
	"porthole/internal/chantest"
	"porthole/internal/origin"
	"porthole/internal/socks5test"
)

// waitTimeout bounds every wait in these tests: long enough for a loaded
// machine under -race, short enough that a hang fails instead of stalling.
const waitTimeout = 20 * time.Second

// ---------------------------------------------------------------------------
// Log capture

// logRecord is one captured slog record with its attributes flattened.
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]slog.Value
}

func (r logRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Msg)
	for k, v := range r.Attrs {
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	return b.String()
}

// errAttr is the record's "err" attribute as an error, or nil.
func (r logRecord) errAttr() error {
	v, ok := r.Attrs["err"]
	if !ok || v.Kind() != slog.KindAny {
		return nil
	}
	err, _ := v.Any().(error)
	return err
}

// logStore keeps every record a test's engine logs, and fails the test on
// any record at ERROR: nothing a proxy sees in these tests deserves one.
type logStore struct {
	t       testing.TB
	mu      sync.Mutex
	records []logRecord
	changed chan struct{} // closed and replaced on every record
}

func newLogStore(t testing.TB) *logStore { return &logStore{t: t, changed: make(chan struct{})} }

func (s *logStore) logger() *slog.Logger { return slog.New(&captureHandler{store: s}) }

func (s *logStore) add(r logRecord) {
	s.mu.Lock()
	s.records = append(s.records, r)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if r.Level >= slog.LevelError {
		s.t.Errorf("ERROR log record: %s", r)
	}
}

func (s *logStore) all() []logRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]logRecord(nil), s.records...)
}

// waitConnRecords waits, at most waitTimeout, until n records about
// connections at level min or above have been logged. A handler may log
// after its client got the answer; stopping the engine before that would
// turn the record into "proxy stopped".
func (s *logStore) waitConnRecords(t testing.TB, n int, min slog.Level) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		recs := s.connRecords(min)
		if len(recs) >= n {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("timed out waiting for %d %s+ records about connections; have:\n%s", n, min, recordList(recs))
		}
	}
}

// connRecords are the records at level min or above that carry a "conn"
// attribute, that is, that are about one client connection (the engine's
// own "listening"/"stopped" lines have none).
func (s *logStore) connRecords(min slog.Level) []logRecord {
	var out []logRecord
	for _, r := range s.all() {
		if _, ok := r.Attrs["conn"]; ok && r.Level >= min {
			out = append(out, r)
		}
	}
	return out
}

type captureHandler struct {
	store *logStore
	attrs []slog.Attr
	group string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: make(map[string]slog.Value)}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.Resolve()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[h.group+a.Key] = a.Value.Resolve()
		return true
	})
	h.store.add(rec)
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &captureHandler{store: h.store, group: h.group}
	n.attrs = append(append(n.attrs, h.attrs...), prefixed(h.group, as)...)
	return n
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	return &captureHandler{store: h.store, attrs: h.attrs, group: h.group + name + "."}
}

func prefixed(group string, as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: group + a.Key, Value: a.Value}
	}
	return out
}

// ---------------------------------------------------------------------------
// Registry events

// eventLog collects every registry event from a subscription taken before
// the engine starts.
type eventLog struct {
	mu      sync.Mutex
	events  []registry.Event
	changed chan struct{} // closed and replaced on every batch
	ended   bool
}

func watchRegistry(t testing.TB, reg *registry.Registry) (*eventLog, func()) {
	l := &eventLog{changed: make(chan struct{})}
	_, sub := reg.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for batch := range sub.C {
			l.mu.Lock()
			l.events = append(l.events, batch...)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
		l.mu.Lock()
		l.ended = true
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}()
	return l, func() {
		sub.Close()
		<-done
		if err := sub.Err(); err != nil {
			t.Errorf("registry subscription ended with %v", err)
		}
	}
}

func (l *eventLog) snapshot() []registry.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]registry.Event(nil), l.events...)
}

// waitFor waits, at most waitTimeout, until cond holds for the events so
// far, and returns them; it fails the test otherwise.
func (l *eventLog) waitFor(t testing.TB, what string, cond func([]registry.Event) bool) []registry.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		evs := append([]registry.Event(nil), l.events...)
		changed, ended := l.changed, l.ended
		l.mu.Unlock()
		if cond(evs) {
			return evs
		}
		if ended {
			t.Fatalf("registry subscription ended while waiting for %s", what)
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("timed out waiting for %s; events: %s", what, describeEvents(evs))
		}
	}
}

func describeEvents(evs []registry.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.Kind == registry.KindStats {
			continue
		}
		fmt.Fprintf(&b, "\n  %s %s %s client=%s target=%s up=%d down=%d err=%v",
			ev.Kind, ev.Conn.ID, ev.Conn.Proto, ev.Conn.Client, ev.Conn.Target, ev.Conn.Up, ev.Conn.Down, ev.Conn.Err)
	}
	return b.String()
}

func eventsOf(evs []registry.Event, kind registry.Kind, match func(registry.Info) bool) []registry.Info {
	var out []registry.Info
	for _, ev := range evs {
		if ev.Kind == kind && (match == nil || match(ev.Conn)) {
			out = append(out, ev.Conn)
		}
	}
	return out
}

func byClient(addr string) func(registry.Info) bool {
	return func(i registry.Info) bool { return i.Client == addr }
}

// closedOf waits for the Closed events of the connections match selects,
// n of them, and returns them.
func (l *eventLog) closedOf(t testing.TB, n int, match func(registry.Info) bool) []registry.Info {
	t.Helper()
	evs := l.waitFor(t, fmt.Sprintf("%d Closed event(s)", n), func(evs []registry.Event) bool {
		return len(eventsOf(evs, registry.KindClosed, match)) >= n
	})
	return eventsOf(evs, registry.KindClosed, match)
}

// establishedOf waits for n Established events matching and returns them.
func (l *eventLog) establishedOf(t testing.TB, n int, match func(registry.Info) bool) []registry.Info {
	t.Helper()
	evs := l.waitFor(t, fmt.Sprintf("%d Established event(s)", n), func(evs []registry.Event) bool {
		return len(eventsOf(evs, registry.KindEstablished, match)) >= n
	})
	return eventsOf(evs, registry.KindEstablished, match)
}

// ---------------------------------------------------------------------------
// The proxy under test

type env struct {
	t      *testing.T
	e      *core.Engine
	addr   string // the proxy's host:port
	auth   *inbound.Auth
	logs   *logStore
	events *eventLog
	origin *httptest.Server // plain HTTP origin serving originMux
	noisy  bool             // the test sends bad input: INFO records are expected
}

// newEnv starts an engine on a free loopback port with a capturing logger
// and an origin server. At cleanup it stops the engine and checks the
// registry's books: every Opened has exactly one Closed, nothing is live.
func newEnv(t *testing.T, mod func(*core.Config)) *env {
	t.Helper()
	logs := newLogStore(t)
	cfg := core.Config{Listen: "127.0.0.1:0", Logger: logs.logger()}
	if mod != nil {
		mod(&cfg)
	}
	e, err := core.New(cfg)
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	events, unwatch := watchRegistry(t, e.Registry())
	v := &env{t: t, e: e, auth: cfg.Auth, logs: logs, events: events}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
	})
	t.Cleanup(unwatch)
	t.Cleanup(v.checkBooks)
	t.Cleanup(v.stop)
	if err := e.Start(); err != nil {
		t.Fatalf("engine Start: %v", err)
	}
	v.addr = e.Addr().String()
	v.origin = newOrigin(t, "tcp4", originMux())
	return v
}

// stop stops the engine (Stop is idempotent) and fails the test if Stop
// does not return in bounded time.
func (v *env) stop() {
	done := make(chan error, 1)
	go func() { done <- v.e.Stop() }()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			v.t.Errorf("engine Stop: %v", err)
		}
	case <-timer.C:
		v.t.Errorf("engine Stop did not return within %v", waitTimeout)
		<-done // goleak would report it anyway; do not leave it behind
	}
}

// checkBooks runs after stop: every connection the registry saw opened was
// closed exactly once, and none is live; unless the test is noisy, nothing
// about a connection was logged above DEBUG.
func (v *env) checkBooks() {
	t := v.t
	if !v.noisy {
		if recs := v.logs.connRecords(slog.LevelInfo); len(recs) > 0 {
			t.Errorf("well-behaved clients, yet %d INFO+ records about connections:\n%s", len(recs), recordList(recs))
		}
	}
	var opened int
	evs := v.events.waitFor(t, "a Closed event for every Opened", func(evs []registry.Event) bool {
		opened = len(eventsOf(evs, registry.KindOpened, nil))
		return len(eventsOf(evs, registry.KindClosed, nil)) >= opened
	})
	closed := map[string]int{}
	for _, c := range eventsOf(evs, registry.KindClosed, nil) {
		closed[c.ID.String()]++
	}
	for _, o := range eventsOf(evs, registry.KindOpened, nil) {
		if n := closed[o.ID.String()]; n != 1 {
			t.Errorf("connection %s (%s %s): %d Closed events, want 1", o.ID, o.Proto, o.Target, n)
		}
	}
	if len(closed) != opened {
		t.Errorf("%d connections closed, %d opened", len(closed), opened)
	}
	if live := v.e.Registry().Snapshot().Live; len(live) != 0 {
		t.Errorf("%d connections still live after Stop", len(live))
	}
}

func (v *env) proxyURL() *url.URL {
	u := &url.URL{Scheme: "http", Host: v.addr}
	if v.auth != nil {
		u.User = url.UserPassword(v.auth.Username, v.auth.Password)
	}
	return u
}

// httpClient is a net/http client using the proxy as its HTTP proxy.
func (v *env) httpClient(t testing.TB) (*http.Client, *http.Transport) {
	tr := &http.Transport{Proxy: http.ProxyURL(v.proxyURL()), DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitTimeout}, tr
}

// socksDialer is golang.org/x/net/proxy's SOCKS5 client pointed at the proxy.
func (v *env) socksDialer(t testing.TB, auth *proxy.Auth) proxy.ContextDialer {
	t.Helper()
	if auth == nil && v.auth != nil {
		auth = &proxy.Auth{User: v.auth.Username, Password: v.auth.Password}
	}
	d, err := proxy.SOCKS5("tcp", v.addr, auth, &net.Dialer{Timeout: waitTimeout})
	if err != nil {
		t.Fatalf("proxy.SOCKS5: %v", err)
	}
	return d.(proxy.ContextDialer)
}

// socksTunnel is a SOCKS5 connection through the proxy to target (with
// golang.org/x/net/proxy), under the test's deadline and closed at cleanup.
func (v *env) socksTunnel(t testing.TB, target string) net.Conn {
	t.Helper()
	c, err := v.socksDialer(t, nil).DialContext(t.Context(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(deadline()); err != nil {
		t.Fatal(err)
	}
	return c
}

// socksHTTPClient sends plain HTTP over SOCKS5 connections.
func (v *env) socksHTTPClient(t testing.TB) *http.Client {
	d := v.socksDialer(t, nil)
	tr := &http.Transport{DialContext: d.DialContext, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitTimeout}
}

// checkHealthy proves the proxy still serves: one forwarded HTTP request and
// one over SOCKS5, each on a new connection.
func (v *env) checkHealthy(t testing.TB) {
	t.Helper()
	hc, tr := v.httpClient(t)
	tr.DisableKeepAlives = true
	getOK(t, hc, v.origin.URL+"/hello", "hello")
	sc := v.socksHTTPClient(t)
	sc.Transport.(*http.Transport).DisableKeepAlives = true
	getOK(t, sc, v.origin.URL+"/hello", "hello")
}

// dial opens a raw TCP connection to the proxy with a deadline that turns a
// hang into a failure.
func (v *env) dial(t testing.TB) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", v.addr, waitTimeout)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(deadline()); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

// ---------------------------------------------------------------------------
// Clients by hand

// bufConn reads through the reader that parsed the proxy's reply, so bytes
// that arrived with it are not lost, and still half-closes.
type bufConn struct {
	*net.TCPConn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// readHead reads a status line and header block without touching what
// follows (a CONNECT's relayed bytes).
func readHead(r *bufio.Reader) (code int, h textproto.MIMEHeader, err error) {
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, err
	}
	_, rest, ok := strings.Cut(line, " ")
	if !ok || len(rest) < 3 {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	code, err = strconv.Atoi(rest[:3])
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	h, err = tp.ReadMIMEHeader()
	return code, h, err
}

// connect opens a CONNECT tunnel by hand, sending early (the first bytes for
// the target) in the same write as the request.
func (v *env) connect(t testing.TB, target string, early []byte) *bufConn {
	t.Helper()
	c := v.dial(t)
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"
	if _, err := c.Write(append([]byte(req), early...)); err != nil {
		t.Fatalf("write CONNECT: %v", err)
	}
	br := bufio.NewReader(c)
	code, _, err := readHead(br)
	if err != nil {
		t.Fatalf("read CONNECT reply: %v", err)
	}
	if code != http.StatusOK {
		t.Fatalf("CONNECT %s: status %d", target, code)
	}
	return &bufConn{TCPConn: c, r: br}
}

// socks4 sends a SOCKS4 (host == "") or SOCKS4a request by hand and returns
// the connection and the reply code.
func (v *env) socks4(t testing.TB, cmd byte, ip [4]byte, port uint16, host string) (*bufConn, byte) {
	t.Helper()
	c := v.dial(t)
	req := []byte{0x04, cmd, byte(port >> 8), byte(port)}
	req = append(req, ip[:]...)
	req = append(req, "porthole-test\x00"...)
	if host != "" {
		req = append(req, host...)
		req = append(req, 0)
	}
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write SOCKS4 request: %v", err)
	}
	br := bufio.NewReader(c)
	var rep [8]byte
	if _, err := io.ReadFull(br, rep[:]); err != nil {
		t.Fatalf("read SOCKS4 reply: %v", err)
	}
	if rep[0] != 0x00 {
		t.Fatalf("SOCKS4 reply version %#x, want 0", rep[0])
	}
	return &bufConn{TCPConn: c, r: br}, rep[1]
}

// socks5Raw runs a no-auth SOCKS5 handshake by hand and sends the request
// bytes req (VER CMD RSV ATYP ADDR PORT); it returns the reply code.
func (v *env) socks5Raw(t testing.TB, req []byte) (*bufConn, byte) {
	t.Helper()
	c := v.dial(t)
	if _, err := c.Write([]byte{0x05, 0x01, 0x00}); err != nil {
		t.Fatalf("write SOCKS5 greeting: %v", err)
	}
	br := bufio.NewReader(c)
	var m [2]byte
	if _, err := io.ReadFull(br, m[:]); err != nil {
		t.Fatalf("read SOCKS5 method: %v", err)
	}
	if m != [2]byte{0x05, 0x00} {
		t.Fatalf("SOCKS5 method reply % x, want 05 00", m)
	}
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write SOCKS5 request: %v", err)
	}
	rep, err := socks5test.ReadReply(br)
	if err != nil {
		t.Fatalf("read SOCKS5 reply: %v", err)
	}
	if rep[0] != 0x05 {
		t.Fatalf("SOCKS5 reply version %#x", rep[0])
	}
	return &bufConn{TCPConn: c, r: br}, rep[1]
}

func socks5ConnectIPv4(ip [4]byte, port uint16) []byte {
	b := []byte{0x05, 0x01, 0x00, 0x01}
	b = append(b, ip[:]...)
	return binary.BigEndian.AppendUint16(b, port)
}

// expectClosed reads until the connection ends: EOF or a reset, never the
// deadline.
func expectClosed(t testing.TB, r io.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed by the proxy: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Origins

// newOrigin starts an HTTP origin on loopback (network "tcp4" or "tcp6").
func newOrigin(t testing.TB, network string, h http.Handler) *httptest.Server {
	t.Helper()
	addr := origin.LoopbackAddr(network)
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	s := httptest.NewUnstartedServer(h)
	_ = s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func hasIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// originMux is the standard origin: small fixed pages and an upload sink.
func originMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host)
	})
	// /sum answers the sha256 of the request body.
	mux.HandleFunc("/sum", origin.Sum)
	return mux
}

func getOK(t testing.TB, c *http.Client, url, want string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET %s: %d %q, want 200 %q", url, resp.StatusCode, body, want)
	}
	return resp
}

// tracedGet does a GET and reports whether it went over a reused client
// connection, and that connection's local address.
func tracedGet(t testing.TB, c *http.Client, method, url string, hdr http.Header) (resp *http.Response, body []byte, reused bool, local string) {
	t.Helper()
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		reused, local = i.Reused, i.Conn.LocalAddr().String()
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	body, err = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, body, reused, local
}

// tcpOrigin is a raw TCP origin running handle for every connection. At
// cleanup it closes the listener and the connections and waits for the
// handlers; done is closed first so handlers waiting on a test can leave.
type tcpOrigin struct {
	ln   net.Listener
	addr string
	done <-chan struct{}
}

func newTCPOrigin(t testing.TB, network string, handle func(o *tcpOrigin, c *net.TCPConn)) *tcpOrigin {
	t.Helper()
	srv := origin.New()
	t.Cleanup(func() { _ = srv.Close() }) // a listener closed twice says nothing about the proxy
	o := &tcpOrigin{done: srv.Done()}
	ln, err := srv.Listen(network, func(c *net.TCPConn) { handle(o, c) })
	if err != nil {
		t.Skipf("cannot listen on %s: %v", origin.LoopbackAddr(network), err)
	}
	o.ln, o.addr = ln, ln.Addr().String()
	return o
}

func (o *tcpOrigin) port() uint16 {
	return uint16(o.ln.Addr().(*net.TCPAddr).Port)
}

// echoHandler echoes until EOF, then half-closes back.
func echoHandler(_ *tcpOrigin, c *net.TCPConn) {
	if _, err := io.Copy(c, c); err != nil {
		return
	}
	_ = c.CloseWrite()
}

// streamOrigin is an origin that writes without end until the connection
// breaks, and reports the error on the channel it returns, which holds n.
func streamOrigin(t testing.TB, n int) (*tcpOrigin, <-chan error) {
	errs := make(chan error, n)
	return newTCPOrigin(t, "tcp4", func(o *tcpOrigin, c *net.TCPConn) {
		var err error
		for err == nil {
			_, err = c.Write(pattern)
		}
		select {
		case errs <- err:
		case <-o.done:
		}
	}), errs
}

// ---------------------------------------------------------------------------
// Bulk transfers

// pattern is 1 MiB of random bytes, repeated to make large streams.
var pattern = func() []byte {
	b := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{'p', 'o', 'r', 't', 'h', 'o', 'l', 'e'})
	_, _ = r.Read(b)
	return b
}()

func writePattern(w io.Writer, n int64) error {
	for n > 0 {
		chunk := pattern[:min(n, int64(len(pattern)))]
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// bulkHandler serves a tiny protocol: 'D' + u64 n → n bytes then their
// sha256; 'U' + u64 n then n bytes → their sha256. EOF ends it.
func bulkHandler(_ *tcpOrigin, c *net.TCPConn) {
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		var hdr [9]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint64(hdr[1:]))
		h := sha256.New()
		switch hdr[0] {
		case 'D':
			if err := writePattern(io.MultiWriter(c, h), n); err != nil {
				return
			}
		case 'U':
			if _, err := io.CopyN(h, br, n); err != nil {
				return
			}
		default:
			return
		}
		if _, err := c.Write(h.Sum(nil)); err != nil {
			return
		}
	}
}

// bulkExchange downloads down bytes then uploads up bytes through c and
// checks that the sha256 computed at each end agrees. It returns the bytes
// it wrote and read.
func bulkExchange(t testing.TB, c io.ReadWriter, down, up int64) (wrote, read int64) {
	t.Helper()
	var hdr [9]byte
	hdr[0] = 'D'
	binary.BigEndian.PutUint64(hdr[1:], uint64(down))
	if _, err := c.Write(hdr[:]); err != nil {
		t.Fatalf("bulk: write download request: %v", err)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, c, down); err != nil {
		t.Fatalf("bulk: download: %v", err)
	}
	var sum [32]byte
	if _, err := io.ReadFull(c, sum[:]); err != nil {
		t.Fatalf("bulk: read origin's download sum: %v", err)
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("bulk: download of %d bytes: client sha256 %x, origin %x", down, h.Sum(nil), sum)
	}
	hdr[0] = 'U'
	binary.BigEndian.PutUint64(hdr[1:], uint64(up))
	if _, err := c.Write(hdr[:]); err != nil {
		t.Fatalf("bulk: write upload request: %v", err)
	}
	h.Reset()
	if err := writePattern(io.MultiWriter(c, h), up); err != nil {
		t.Fatalf("bulk: upload: %v", err)
	}
	if _, err := io.ReadFull(c, sum[:]); err != nil {
		t.Fatalf("bulk: read origin's upload sum: %v", err)
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("bulk: upload of %d bytes: client sha256 %x, origin %x", up, h.Sum(nil), sum)
	}
	return 9 + 9 + up, down + 32 + 32
}

// deadline is the deadline for a client connection in a test.
func deadline() time.Time { return time.Now().Add(waitTimeout) }

// await waits for a result from ch, at most waitTimeout.
func await[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	return chantest.Within(t, waitTimeout, what, ch)
}
