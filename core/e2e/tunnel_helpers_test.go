package e2e

// The surroundings of the tunnel-mode end-to-end tests (tunnel_test.go):
// an exit server as porthole-exit runs it (exit.Server behind a real
// http.Server on loopback), an engine in tunnel mode connected to it, the
// origins the traffic goes to, and the clients a user would run: curl,
// net/http with a proxy URL, golang.org/x/net/proxy for SOCKS5, and the
// hand-written clients of lifecycle_clients_test.go where a test needs a
// byte-exact answer (status codes, SOCKS reply codes).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"
	"go.uber.org/goleak"
	"golang.org/x/net/proxy"

	"porthole/core"
	"porthole/core/exit"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/rules"
	"porthole/core/tunnel"
	"porthole/internal/connecttest"
	"porthole/internal/freeport"
	"porthole/internal/origin"
)

const (
	// e2eTimeout bounds every wait, every client's I/O and every child
	// process; nothing here should take more than a few seconds.
	e2eTimeout = 30 * time.Second
	// e2ePoll is the step of the few waits that have no event to wait on
	// (the tunnel's state, a child process's port).
	e2ePoll  = 2 * time.Millisecond
	e2eToken = "e2e-secret-token"
	e2ePath  = "/porthole"
)

// ---- The exit server ----

// e2eExit is an exit server: exit.Server on e2ePath behind an http.Server
// listening on loopback, logging into its own captured log.
type e2eExit struct {
	srv    *exit.Server
	hs     *http.Server
	addr   string // host:port it listens on
	logs   *lcLogs
	served chan error

	once sync.Once
	err  error
}

// startExit starts an exit on addr ("127.0.0.1:0" for a free port, or the
// address of an exit that was killed, to restart it). AllowPrivate lets it
// reach the test's origins on loopback.
func startExit(t *testing.T, addr string, allowPrivate bool) *e2eExit {
	t.Helper()
	return startExitWith(t, addr, exit.Config{AllowPrivate: allowPrivate})
}

// startExitWith is startExit with cfg (its token and logger are the test's).
func startExitWith(t *testing.T, addr string, cfg exit.Config) *e2eExit {
	t.Helper()
	logger, logs := newCapturedLogger()
	cfg.Token, cfg.Logger = e2eToken, logger
	srv, err := exit.New(cfg)
	if err != nil {
		t.Fatalf("exit.New: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = srv.Close() // always nil
		t.Fatalf("exit: listen on %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(e2ePath, srv)
	x := &e2eExit{
		srv: srv,
		hs: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: e2eTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		},
		addr:   ln.Addr().String(),
		logs:   logs,
		served: make(chan error, 1),
	}
	go func() { x.served <- x.hs.Serve(ln) }()
	t.Cleanup(func() { returnsWithin(t, "exit kill", x.kill) })
	return x
}

func (x *e2eExit) url() string { return "ws://" + x.addr + e2ePath }

// kill stops the exit as porthole-exit does: the http.Server first (its
// listener; the hijacked WebSockets are not its own), then every session.
// Idempotent.
func (x *e2eExit) kill() error {
	x.once.Do(func() {
		err := x.hs.Close()
		serr := <-x.served
		if errors.Is(serr, http.ErrServerClosed) {
			serr = nil
		}
		x.err = errors.Join(err, serr, x.srv.Close())
	})
	return x.err
}

// streamIDs are the stream ids the exit logged when it began dialling a
// stream's target: the registry ids of the connections it carried.
func (x *e2eExit) streamIDs() map[string]bool {
	return x.logs.withAttr("dialing", "stream")
}

// withAttr collects the values of the attribute key (of the record or of
// its logger) of every record with message msg.
func (l *lcLogs) withAttr(msg, key string) map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	vals := map[string]bool{}
	for i, r := range l.records {
		if r.Message != msg {
			continue
		}
		for _, a := range l.attrs[i] {
			if a.Key == key {
				vals[a.Value.String()] = true
			}
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				vals[a.Value.String()] = true
			}
			return true
		})
	}
	return vals
}

// countAt counts the records at exactly level whose attributes (of the
// record or its logger) include key=value.
func (l *lcLogs) countAt(level slog.Level, key, value string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i, r := range l.records {
		if r.Level != level {
			continue
		}
		found := false
		for _, a := range l.attrs[i] {
			found = found || a.Key == key && a.Value.String() == value
		}
		r.Attrs(func(a slog.Attr) bool {
			found = found || a.Key == key && a.Value.String() == value
			return true
		})
		if found {
			n++
		}
	}
	return n
}

// ---- The engine in tunnel mode ----

type e2eOptions struct {
	denyPrivate bool          // the exit refuses loopback targets (porthole-exit without --allow-private)
	dialTimeout time.Duration // core.Config.DialTimeout; 0: the default
	// front, if set, puts something in front of the exit (a reverse
	// proxy) and returns the URL the engine connects to.
	front func(t *testing.T, exitAddr string) string
	// exitDialer, if set, is how the exit reaches targets (loopback
	// allowed unless denyPrivate).
	exitDialer outbound.Dialer
	// mode is the engine's mode (default tunnel); rules its rule set.
	mode  outbound.Mode
	rules *rules.Set
}

// e2eEnv is one tunnel-mode test's world.
type e2eEnv struct {
	exits  []*e2eExit // every exit started; the last is the current one
	eng    *core.Engine
	reg    *registry.Registry
	ev     *lcEvents
	logs   *lcLogs // the engine's
	origin *lcOrigin
	raw    *e2eOrigins
	web    *httptest.Server // plain HTTP origin (e2eMux)
	tls    *httptest.Server // HTTPS origin (e2eMux)
	caFile string           // the HTTPS origin's certificate, PEM, for curl --cacert
	mode   outbound.Mode
}

// newOriginsEnv is an environment of the origins only: the echo and raw
// origins, a web server over HTTP and over TLS, and a CA file that
// trusts the latter.
func newOriginsEnv(t *testing.T) *e2eEnv {
	t.Helper()
	v := &e2eEnv{origin: newOrigin(t), raw: newE2EOrigins(t)}
	v.web = httptest.NewServer(e2eMux())
	t.Cleanup(v.web.Close)
	v.tls = httptest.NewTLSServer(e2eMux())
	t.Cleanup(v.tls.Close)
	v.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(v.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.tls.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

// newE2E starts the origins, an exit and an engine in tunnel mode that
// connects to it, and waits until the tunnel is up.
func newE2E(t *testing.T, opts e2eOptions) *e2eEnv {
	t.Helper()
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() {
		if !t.Failed() {
			goleak.VerifyNone(t)
		}
	})
	v := newOriginsEnv(t)

	x := startExitWith(t, "127.0.0.1:0", exit.Config{AllowPrivate: !opts.denyPrivate, Dialer: opts.exitDialer})
	v.exits = append(v.exits, x)
	exitURL := x.url()
	if opts.front != nil {
		exitURL = opts.front(t, x.addr)
	}

	logger, logs := newCapturedLogger()
	v.mode = opts.mode
	if v.mode == "" {
		v.mode = outbound.ModeTunnel
	}
	eng := startEngine(t, core.Config{
		Listen: "127.0.0.1:0",
		Mode:   v.mode,
		Rules:  opts.rules,
		Bypass: []string{}, // nothing goes direct, loopback included
		Exit: &tunnel.ClientConfig{
			URL: exitURL, Token: e2eToken,
			// Quick reconnects: a test waits for them.
			MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		},
		DialTimeout: opts.dialTimeout,
		Logger:      logger,
	})
	v.eng, v.reg, v.logs = eng, eng.Registry(), logs
	v.ev = watchRegistry(t, v.reg)
	v.waitTunnel(t, "connected", func(st tunnel.Status) bool { return st.State == tunnel.StateConnected })
	return v
}

func (v *e2eEnv) proxy() string { return v.eng.Addr().String() }

func (v *e2eEnv) exit() *e2eExit { return v.exits[len(v.exits)-1] }

// waitTunnel polls the engine's tunnel status until cond holds: the
// client's change channel is not the engine's to give out.
func (v *e2eEnv) waitTunnel(t *testing.T, what string, cond func(tunnel.Status) bool) tunnel.Status {
	t.Helper()
	var st tunnel.Status
	if !poll(func() bool {
		var ok bool
		if st, ok = v.eng.TunnelStatus(); !ok {
			return true // reported below
		}
		return cond(st)
	}) {
		t.Fatalf("tunnel not %s within %v: state %s, err %v", what, e2eTimeout, st.State, st.Err)
	}
	if _, ok := v.eng.TunnelStatus(); !ok {
		t.Fatalf("the engine has no tunnel")
	}
	return st
}

// poll calls cond every e2ePoll until it holds (true) or e2eTimeout
// passes (false). Only for conditions no event announces.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(e2eTimeout)
	tick := time.NewTicker(e2ePoll)
	defer tick.Stop()
	for range int(e2eTimeout/e2ePoll) + 1 {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return cond()
}

// pollUntil fails the test unless cond holds within e2eTimeout.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !poll(cond) {
		t.Fatalf("%s: not within %v", what, e2eTimeout)
	}
}

// finish closes the engine and the exits and checks what every tunnel test
// must satisfy: a consistent event stream with exactly one Closed per
// Opened, every record routed through the tunnel, every stream the exits
// dialled being a registry id, and no ERROR in any log.
func (v *e2eEnv) finish(t *testing.T) {
	t.Helper()
	closeEngine(t, v.eng)
	<-v.ev.done // the registry's Close ends the subscription
	v.ev.checkConsistent(t)
	registered := map[string]bool{}
	v.ev.mu.Lock()
	for id, info := range v.ev.opened {
		registered[id.String()] = true
		if v.mode == outbound.ModeTunnel && info.Route != registry.RouteTunnel {
			t.Errorf("connection %s (%s → %s) went %s, want %s", id, info.Proto, info.Target, info.Route, registry.RouteTunnel)
		}
	}
	v.ev.mu.Unlock()
	for i, x := range v.exits {
		returnsWithin(t, "exit kill", x.kill)
		for id := range x.streamIDs() {
			if !registered[id] {
				t.Errorf("exit %d dialled stream %s, which is none of the registry's %d ids", i, id, len(registered))
			}
		}
		t.Logf("exit %d:", i)
		x.logs.check(t)
	}
	t.Logf("engine:")
	v.logs.check(t)
}

// known is the set of connections opened so far.
func (e *lcEvents) known() map[xid.ID]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[xid.ID]bool, len(e.opened))
	for id := range e.opened {
		m[id] = true
	}
	return m
}

// newClosed waits until n connections not in before were opened and all of
// them closed, and returns their final records. More than n is an error.
func (e *lcEvents) newClosed(before map[xid.ID]bool, n int) ([]registry.Info, error) {
	var infos []registry.Info
	var opened int
	ok := e.wait(e2eTimeout, func() bool {
		infos, opened = infos[:0], 0
		for id := range e.opened {
			if before[id] {
				continue
			}
			opened++
			if info, ok := e.closed[id]; ok {
				infos = append(infos, info)
			}
		}
		return opened >= n && len(infos) == opened
	})
	if !ok {
		return nil, fmt.Errorf("want %d new connections opened and closed within %v; %d opened, %d closed", n, e2eTimeout, opened, len(infos))
	}
	if opened != n {
		return infos, fmt.Errorf("%d new connections, want %d", opened, n)
	}
	return infos, nil
}

// ---- Origins ----

// e2eOrigins are raw TCP origins the lifecycle origin lacks.
type e2eOrigins struct {
	sink     string // reads to EOF, answers sha256 (32 bytes) and the count (8), closes
	echoEOF  string // reads to EOF (at most e2eEchoEOFMax), then sends it all back, closes
	closedAt string // a loopback port nobody listens on
}

const e2eEchoEOFMax = 16 << 20

func newE2EOrigins(t *testing.T) *e2eOrigins {
	t.Helper()
	srv := origin.New()
	t.Cleanup(func() { _ = srv.Close() }) // a listener closed twice says nothing about the tunnel
	listen := func(h func(*net.TCPConn)) string {
		ln, err := srv.Listen("tcp", h)
		if err != nil {
			t.Fatal(err)
		}
		return ln.Addr().String()
	}
	return &e2eOrigins{
		sink:     listen(serveSink),
		echoEOF:  listen(serveEchoAfterEOF),
		closedAt: freeport.Loopback(t), // connecting to it is refused
	}
}

func serveSink(c *net.TCPConn) {
	if err := c.SetDeadline(time.Now().Add(e2eTimeout)); err != nil {
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return // the client sees no answer
	}
	_, _ = c.Write(binary.BigEndian.AppendUint64(h.Sum(nil), uint64(n)))
}

func serveEchoAfterEOF(c *net.TCPConn) {
	if err := c.SetDeadline(time.Now().Add(e2eTimeout)); err != nil {
		return
	}
	b, err := io.ReadAll(io.LimitReader(c, e2eEchoEOFMax))
	if err != nil {
		return
	}
	_, _ = c.Write(b)
}

// e2eMux is the HTTP origin: /hello, /bytes?n=N (N pattern bytes), POST
// /sum (the body's sha256 in hex, a space, its length).
func e2eMux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello")
	})
	m.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = writePattern(w, 0, n)
	})
	m.HandleFunc("POST /sum", origin.Sum)
	return m
}

// patternSum is the sha256 of n bytes of the pattern stream from offset off.
func patternSum(off, n int64) [32]byte {
	h := sha256.New()
	if _, err := writePattern(h, off, n); err != nil {
		panic(err) // a hash does not fail
	}
	return [32]byte(h.Sum(nil))
}

// closeAndSettle closes c, the client side of the connection from laddr
// to target, and returns the connection's record once the registry has
// closed it.
func (v *e2eEnv) closeAndSettle(t *testing.T, c io.Closer, laddr, target string) registry.Info {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := v.ev.settle(laddr, target)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// ---- Clients ----

// httpClient is net/http through the proxy as an HTTP proxy (plain
// forwarding for http://, CONNECT for https://, trusting the TLS origin).
// A caller that counts connections closes the idle ones first; the rest
// are closed at cleanup.
func (v *e2eEnv) httpClient(t *testing.T) (*http.Client, *http.Transport) {
	t.Helper()
	u, err := url.Parse("http://" + v.proxy())
	if err != nil {
		t.Fatal(err)
	}
	tr := v.tls.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(u)
	tr.MaxConnsPerHost = 0
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: e2eTimeout}, tr
}

// socksConn is a SOCKS5 connection made by golang.org/x/net/proxy (an
// independent client, which sends host names unresolved: socks5h). raw is
// its TCP connection, for CloseWrite.
type socksConn struct {
	net.Conn
	raw *net.TCPConn
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialFunc) Dial(network, addr string) (net.Conn, error) {
	return f(context.Background(), network, addr)
}

func (f dialFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

func dialSOCKS5(ctx context.Context, proxyAddr, target string) (*socksConn, error) {
	var raw *net.TCPConn
	fwd := dialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			raw = c.(*net.TCPConn)
		}
		return c, err
	})
	d, err := proxy.SOCKS5("tcp", proxyAddr, nil, fwd)
	if err != nil {
		return nil, err
	}
	c, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(e2eTimeout)); err != nil {
		_ = c.Close()
		return nil, err
	}
	return &socksConn{Conn: c, raw: raw}, nil
}

// connectStatus asks the proxy for a CONNECT to target and returns the
// status of the answer; the connection is closed.
func connectStatus(proxyAddr, target string) (laddr string, status int, err error) {
	c, _, resp, err := connecttest.Dial(proxyAddr, target)
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	laddr = c.LocalAddr().String()
	if resp.StatusCode != http.StatusOK {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return laddr, resp.StatusCode, err
		}
	}
	return laddr, resp.StatusCode, resp.Body.Close()
}

// socks5Code asks the proxy for a SOCKS5 CONNECT to target and returns the
// reply code; the connection is closed.
func socks5Code(proxyAddr, target string) (laddr string, code byte, err error) {
	c, err := startRequest(proxyAddr, lcSOCKS5, target)
	if err != nil {
		return "", 0, err
	}
	defer c.conn.Close()
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return c.laddr, 0, fmt.Errorf("socks5 reply: %w", err)
	}
	if hdr[0] != 5 || hdr[2] != 0 {
		return c.laddr, 0, fmt.Errorf("socks5 reply %x: malformed", hdr)
	}
	return c.laddr, hdr[1], nil
}

// echoCheck writes payload on w (concurrently), reads as many bytes from
// r and compares checksums. halfClose ends the write side when written.
func echoCheck(w io.Writer, r io.Reader, payload []byte, closeWrite func() error) error {
	written := make(chan error, 1)
	go func() {
		_, err := w.Write(payload)
		if err == nil && closeWrite != nil {
			err = closeWrite()
		}
		written <- err
	}()
	got := make([]byte, len(payload))
	_, rerr := io.ReadFull(r, got)
	werr := <-written
	if rerr != nil || werr != nil {
		return fmt.Errorf("echo of %d bytes: read %v, write %v", len(payload), rerr, werr)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		return fmt.Errorf("echo of %d bytes: checksums differ", len(payload))
	}
	return nil
}

// readSum reads a sink's answer: sha256 and count.
func readSum(r io.Reader) (sum [32]byte, n int64, err error) {
	var b [40]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return sum, 0, fmt.Errorf("sink's answer: %w", err)
	}
	copy(sum[:], b[:32])
	return sum, int64(binary.BigEndian.Uint64(b[32:])), nil
}

// sumLine formats what e2eMux's /sum answers for data.
func sumLine(sum [32]byte, n int64) string {
	return hex.EncodeToString(sum[:]) + " " + strconv.FormatInt(n, 10)
}

// bufferedConn reads through a bufio.Reader that may hold bytes already.
type bufferedConn struct {
	*net.TCPConn
	br *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// openConn opens a tunnel through the hand-written client (CONNECT or
// SOCKS5) and returns it as a connection with CloseWrite.
func openConn(proxyAddr string, p lcProto, target string) (bufferedConn, *lcClient, error) {
	c, err := openTunnel(proxyAddr, p, target)
	if err != nil {
		if c != nil {
			_ = c.conn.Close()
		}
		return bufferedConn{}, nil, fmt.Errorf("%s to %s: %w", p, target, err)
	}
	return bufferedConn{c.conn, c.br}, c, nil
}
