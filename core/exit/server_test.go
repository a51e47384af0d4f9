package exit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/xid"

	"porthole/core/outbound"
	"porthole/core/tunnel"
	"porthole/internal/chantest"
	"porthole/internal/dnstest"
	"porthole/internal/freeport"
	"porthole/internal/logcapture"
	"porthole/internal/origin"
	"porthole/internal/randbytes"
)

const testToken = "exit-test-token"

// wait bounds every wait for something the system under test should do
// promptly; the tests never sleep to synchronise.
const wait = 15 * time.Second

var discard = slog.New(slog.DiscardHandler)

// ---------------------------------------------------------------------------
// The exit's log, captured as structured records.

// logSink receives a test server's JSON log: slog writes each record with
// one Write, so each Write is one line, and every Write wakes whoever waits
// for a record, so tests wait for log records without polling.
type logSink struct{ *logcapture.Sink }

func newLogSink() *logSink { return &logSink{logcapture.NewSink()} }

// record is one decoded log record: "level", "msg" and the attributes,
// those given by Logger.With included.
type record map[string]any

func (r record) str(key string) string {
	s, _ := r[key].(string)
	return s
}

func (r record) num(key string) (float64, bool) {
	f, ok := r[key].(float64)
	return f, ok
}

// snapshot decodes the records so far and returns the channel closed at
// the next one.
func (l *logSink) snapshot(t *testing.T) ([]record, <-chan struct{}) {
	t.Helper()
	data, changed := l.Snapshot()
	return decode(t, data), changed
}

// decode decodes JSON log lines.
func decode(t *testing.T, data []byte) []record {
	t.Helper()
	var recs []record
	for line := range bytes.Lines(data) {
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func (l *logSink) records(t *testing.T) []record {
	t.Helper()
	recs, _ := l.snapshot(t)
	return recs
}

// waitFor waits until the records satisfy ok, and returns them.
func (l *logSink) waitFor(t *testing.T, what string, ok func([]record) bool) []record {
	t.Helper()
	var recs []record
	l.Await(t, wait, what+" in the exit's log", func(data []byte) bool {
		recs = decode(t, data)
		return ok(recs)
	})
	return recs
}

// where returns the records for which all the given key/value pairs hold.
func where(recs []record, kv ...string) []record {
	var out []record
next:
	for _, r := range recs {
		for i := 0; i+1 < len(kv); i += 2 {
			if r.str(kv[i]) != kv[i+1] {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// count makes a waitFor condition: at least n records with kv.
func count(n int, kv ...string) func([]record) bool {
	return func(recs []record) bool { return len(where(recs, kv...)) >= n }
}

// ---------------------------------------------------------------------------
// The exit under test, behind a real http.Server on loopback.

type harness struct {
	srv  *Server
	url  string // ws://127.0.0.1:port/porthole
	logs *logSink
}

// startExit serves an exit with cfg (token testToken unless set, a DEBUG
// JSON log captured) on a loopback port. At cleanup it closes the exit and
// the HTTP server and fails the test if anything logged at WARN or ERROR.
func startExit(t *testing.T, cfg Config) *harness {
	t.Helper()
	logs := newLogSink()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/porthole", srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: wait}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	h := &harness{srv: srv, url: "ws://" + ln.Addr().String() + "/porthole", logs: logs}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
		if err := hs.Close(); err != nil {
			t.Errorf("http.Server.Close: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		for _, r := range logs.records(t) {
			if lvl := r.str("level"); lvl == "WARN" || lvl == "ERROR" {
				t.Errorf("the exit logged at %s: %v", lvl, r)
			}
		}
	})
	return h
}

// session opens a tunnel session to the exit, closed at cleanup.
func (h *harness) session(t *testing.T) *tunnel.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	ws, err := tunnel.Dial(ctx, h.url, testToken, tunnel.DialOptions{Timeout: wait})
	if err != nil {
		t.Fatalf("dialling the exit: %v", err)
	}
	sess := tunnel.NewSession(ws, true, tunnel.Config{Logger: discard})
	t.Cleanup(func() {
		if err := sess.Close(); err != nil {
			t.Errorf("Session.Close: %v", err)
		}
	})
	return sess
}

// upgrade is a raw WebSocket upgrade to url with header, for the answers
// tunnel.Dial does not show (status codes, Origin).
func upgrade(t *testing.T, url string, header http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: wait}
	ws, resp, err := d.DialContext(ctx, url, header)
	if resp != nil {
		if cerr := resp.Body.Close(); cerr != nil {
			t.Errorf("closing the upgrade's response body: %v", cerr)
		}
	}
	return ws, resp, err
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// open opens a stream to target and waits for the exit's answer; the
// stream is closed at cleanup.
func open(t *testing.T, sess *tunnel.Session, target string, early []byte) (*tunnel.Stream, error) {
	t.Helper()
	st, err := sess.Open(xid.New(), target, early)
	if err != nil {
		t.Fatalf("Session.Open(%q): %v", target, err)
	}
	t.Cleanup(func() { closeStream(t, st) })
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	return st, st.WaitOpen(ctx)
}

func closeStream(t *testing.T, st *tunnel.Stream) {
	if err := st.Close(); err != nil {
		t.Errorf("Stream.Close: %v", err)
	}
}

func mustOpen(t *testing.T, sess *tunnel.Session, target string) *tunnel.Stream {
	t.Helper()
	st, err := open(t, sess, target, nil)
	if err != nil {
		t.Fatalf("opening a stream to %s: %v", target, err)
	}
	return st
}

// refusal opens a stream to target and returns the exit's OPEN_FAIL,
// failing the test if the open did not fail that way.
func refusal(t *testing.T, sess *tunnel.Session, target string) *tunnel.OpenError {
	t.Helper()
	_, err := open(t, sess, target, nil)
	var oe *tunnel.OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("opening a stream to %q: %v, want an OPEN_FAIL (*tunnel.OpenError)", target, err)
	}
	return oe
}

// roundTrip sends msg on a stream to an echo target and reads it back.
func roundTrip(t *testing.T, st *tunnel.Stream, msg string) {
	t.Helper()
	if err := st.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(st, msg); err != nil {
		t.Fatalf("writing to stream %s: %v", st.ID(), err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(st, got); err != nil {
		t.Fatalf("reading from stream %s: %v", st.ID(), err)
	}
	if string(got) != msg {
		t.Fatalf("echo of %q is %q", msg, got)
	}
	if err := st.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// finish ends a stream to an echo target as a well-behaved client does:
// FIN, then read until the exit's FIN, then close.
func finish(t *testing.T, st *tunnel.Stream) {
	t.Helper()
	if err := st.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	rest, err := io.ReadAll(st)
	if err != nil {
		t.Fatalf("reading stream %s to its end: %v", st.ID(), err)
	}
	if len(rest) != 0 {
		t.Fatalf("%d unexpected bytes at the end of stream %s", len(rest), st.ID())
	}
	closeStream(t, st)
}

// ---------------------------------------------------------------------------
// Targets: real loopback TCP servers.

type target struct {
	addr     string
	accepted chan string // the remote address of every accepted connection, in order
}

// startTarget listens on addr and serves each connection with serve, which
// need not close it. At cleanup every connection is closed and every
// handler has returned.
func startTarget(t *testing.T, addr string, serve func(*net.TCPConn)) *target {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{addr: ln.Addr().String(), accepted: make(chan string, 256)}
	srv := origin.New()
	srv.Accepted = func(c net.Conn) {
		select {
		case tg.accepted <- c.RemoteAddr().String():
		default:
			t.Errorf("target %s: more than 256 connections", tg.addr)
		}
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing target %s: %v", tg.addr, err)
		}
	})
	if err := srv.Serve(ln, serve); err != nil {
		t.Fatal(err)
	}
	return tg
}

// dialsSoFar is how many connections reached the target before now: it
// connects once itself and counts the connections accepted before its own
// (the accept queue is in order, so a dial that completed earlier is counted).
func (tg *target) dialsSoFar(t *testing.T) int {
	t.Helper()
	c, err := net.Dial("tcp", tg.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mine := c.LocalAddr().String()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for n := 0; n < cap(tg.accepted)+1; n++ {
		select {
		case from := <-tg.accepted:
			if from == mine {
				return n
			}
		case <-timeout.C:
			t.Fatalf("target %s never accepted the test's own connection", tg.addr)
		}
	}
	t.Fatalf("target %s: the test's own connection was not among the accepted ones", tg.addr)
	return -1
}

// echo sends back what it reads, then half-closes.
func echo(c *net.TCPConn) {
	if _, err := io.Copy(c, c); err != nil {
		return // the stream was reset or the exit went away: nothing to echo to
	}
	_ = c.CloseWrite() // the client sees EOF or, if it left, nothing
}

// sinkReply is a half-close target: it reads an 8-byte reply length, then
// the upload until EOF, and only then answers with the upload's SHA-256
// followed by reply(length).
func sinkReply(c *net.TCPConn) {
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return // the client sees no answer and fails
	}
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return
	}
	if _, err := c.Write(h.Sum(nil)); err != nil {
		return
	}
	if _, err := c.Write(randbytes.New(replySeed, int(binary.BigEndian.Uint64(hdr[:])))); err != nil {
		return
	}
	_ = c.CloseWrite() // the client checks it got everything
}

const replySeed = 0xE817

// ---------------------------------------------------------------------------
// Data.

// TestStreamsCarryDataWithHalfClose: streams through a reconnecting
// tunnel.Client reach a loopback target (AllowPrivate), bytes arrive
// exactly (SHA-256 on both ends), and after the client's CloseWrite the
// target's whole answer still arrives, then EOF.
func TestStreamsCarryDataWithHalfClose(t *testing.T) {
	tg := startTarget(t, "127.0.0.1:0", sinkReply)
	h := startExit(t, Config{AllowPrivate: true})
	client, err := tunnel.NewClient(tunnel.ClientConfig{URL: h.url, Token: testToken, Timeout: wait, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := client.Close(); err != nil {
			t.Errorf("Client.Close: %v", err)
		}
	})

	const streams = 4
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			up := randbytes.New(uint64(i), 1<<20+1000*i)
			down := 1<<20 + 777*i
			var hdr [8]byte
			binary.BigEndian.PutUint64(hdr[:], uint64(down))
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			// The reply length travels as early data, in the OPEN.
			st, err := client.Open(ctx, xid.New(), tg.addr, hdr[:])
			if err != nil {
				t.Errorf("stream %d: Open: %v", i, err)
				return
			}
			defer func() {
				if err := st.Close(); err != nil {
					t.Errorf("stream %d: Close: %v", i, err)
				}
			}()
			if err := st.WaitOpen(ctx); err != nil {
				t.Errorf("stream %d: WaitOpen: %v", i, err)
				return
			}
			if err := st.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			if _, err := st.Write(up); err != nil {
				t.Errorf("stream %d: Write: %v", i, err)
				return
			}
			if err := st.CloseWrite(); err != nil {
				t.Errorf("stream %d: CloseWrite: %v", i, err)
				return
			}
			got, err := io.ReadAll(st) // nil error: it ended with EOF
			if err != nil {
				t.Errorf("stream %d: reading after CloseWrite: %v", i, err)
				return
			}
			sum := sha256.Sum256(up)
			if len(got) < len(sum) || !bytes.Equal(got[:len(sum)], sum[:]) {
				t.Errorf("stream %d: the target received other bytes than were sent (%d bytes back)", i, len(got))
				return
			}
			if want := sha256.Sum256(randbytes.New(replySeed, down)); len(got)-len(sum) != down || sha256.Sum256(got[len(sum):]) != want {
				t.Errorf("stream %d: received %d bytes of the reply, want %d, or other bytes", i, len(got)-len(sum), down)
			}
		}()
	}
	wg.Wait()
	if n := h.srv.Sessions(); n != 1 {
		t.Errorf("Sessions() = %d while one client is connected", n)
	}
}

// TestEchoWithEarlyData: early data in the OPEN and DATA sent before
// OPEN_OK reach the target first and in order; both directions flow at
// once.
func TestEchoWithEarlyData(t *testing.T) {
	tg := startTarget(t, "127.0.0.1:0", echo)
	h := startExit(t, Config{AllowPrivate: true})
	sess := h.session(t)
	early := []byte("early bytes, in the OPEN frame|")
	st, err := sess.Open(xid.New(), tg.addr, early)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStream(t, st) })
	if err := st.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	body := randbytes.New(7, 600<<10) // more than one default window: needs WINDOW frames both ways
	writeErr := make(chan error, 1)
	go func() {
		_, err := st.Write(body) // before OPEN_OK, within the default window, then on credit
		if err == nil {
			err = st.CloseWrite()
		}
		writeErr <- err
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if want := append(slices.Clone(early), body...); !bytes.Equal(got, want) {
		t.Fatalf("echo of %d bytes came back as %d bytes, or different ones", len(want), len(got))
	}
	if err := st.WaitOpen(t.Context()); err != nil {
		t.Fatalf("WaitOpen after a full echo: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Policy (PROTOCOL.md §8).

// TestPolicyDeniesInsideTargetsWithoutDialling: without AllowPrivate,
// loopback, private, link-local, unspecified and own addresses, and names
// resolving to them, get OPEN_FAIL denied, and nothing connects to them.
func TestPolicyDeniesInsideTargetsWithoutDialling(t *testing.T) {
	tg := startTarget(t, "127.0.0.1:0", echo)
	_, port, err := net.SplitHostPort(tg.addr)
	if err != nil {
		t.Fatal(err)
	}
	var tg6 *target // on [::1], where the machine has IPv6 loopback
	port6 := port
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		tg6 = startTarget(t, "[::1]:0", echo)
		if _, port6, err = net.SplitHostPort(tg6.addr); err != nil {
			t.Fatal(err)
		}
	}

	plain := startExit(t, Config{}) // the default dialer: outbound.Guarded, no private targets
	own := netip.MustParseAddr("203.0.113.7")
	rebinding := dnstest.Resolver(t, func(q []byte) []byte { return dnstest.Reply(q, 0, &[4]byte{127, 0, 0, 1}) })
	guarded := startExit(t, Config{Dialer: &outbound.Guarded{
		Resolver: rebinding,
		Timeout:  wait,
		Own:      func() ([]netip.Addr, error) { return []netip.Addr{own}, nil },
	}})
	plainSess, guardedSess := plain.session(t), guarded.session(t)

	for _, c := range []struct {
		sess   *tunnel.Session
		target string
	}{
		{plainSess, "127.0.0.1:" + port},
		{plainSess, "127.0.0.2:" + port},
		{plainSess, "[::1]:" + port6},
		{plainSess, "[::ffff:127.0.0.1]:" + port},
		{plainSess, "0.0.0.0:" + port},
		{plainSess, "10.1.2.3:" + port},
		{plainSess, "172.16.0.1:" + port},
		{plainSess, "192.168.1.1:" + port},
		{plainSess, "100.64.0.1:" + port},
		{plainSess, "169.254.169.254:80"},
		{plainSess, "[fe80::1]:" + port},
		{plainSess, "[fd00::1]:" + port},
		{plainSess, "localhost:" + port},
		{guardedSess, "rebind.example:" + port},  // DNS answers 127.0.0.1
		{guardedSess, own.String() + ":" + port}, // the exit's own address
	} {
		oe := refusal(t, c.sess, c.target)
		if oe.Code != tunnel.CodeDenied {
			t.Errorf("%s: OPEN_FAIL %v (%s), want %v", c.target, oe.Code, oe.Reason, tunnel.CodeDenied)
		}
	}
	if n := tg.dialsSoFar(t); n != 0 {
		t.Errorf("the refused opens reached the loopback target %d times", n)
	}
	if tg6 != nil {
		if n := tg6.dialsSoFar(t); n != 0 {
			t.Errorf("the refused opens reached the [::1] target %d times", n)
		}
	}
	// The sessions outlive their refusals.
	if n := plain.srv.Sessions() + guarded.srv.Sessions(); n != 2 {
		t.Errorf("%d sessions after the refusals, want 2", n)
	}
}

// ---------------------------------------------------------------------------
// Dial failures.

// TestDialFailuresGetTheirCodes: a refused port, a name that does not
// resolve, a DNS timeout and malformed targets each get OPEN_FAIL with
// their code, and the session carries on.
func TestDialFailuresGetTheirCodes(t *testing.T) {
	nxdomain := dnstest.Resolver(t, func(q []byte) []byte { return dnstest.Reply(q, dnstest.RcodeNXDomain, nil) })
	h := startExit(t, Config{Dialer: &outbound.Guarded{AllowPrivate: true, Resolver: nxdomain, Timeout: wait}})
	sess := h.session(t)
	for _, c := range []struct {
		target string
		want   tunnel.Code
	}{
		{freeport.Loopback(t), tunnel.CodeRefused},
		{"missing.example:80", tunnel.CodeNotFound},
		// Malformed targets are the client breaking the protocol.
		{"nohost", tunnel.CodeProtocol},
		{"host:99999", tunnel.CodeProtocol},
		{"host:0", tunnel.CodeProtocol},
		{"host:http", tunnel.CodeProtocol},
		{":80", tunnel.CodeProtocol},
		{"bad_host!:80", tunnel.CodeProtocol},
		{"[::1:80", tunnel.CodeProtocol},
		{strings.Repeat("a", 250) + ":80", tunnel.CodeProtocol}, // a label over 63 bytes
	} {
		if oe := refusal(t, sess, c.target); oe.Code != c.want {
			t.Errorf("%.40q: OPEN_FAIL %v (%s), want %v", c.target, oe.Code, oe.Reason, c.want)
		}
	}

	// A DNS server that never answers: the exit's dial timeout.
	silent := dnstest.Silent(t)
	slow := startExit(t, Config{Dialer: &outbound.Guarded{AllowPrivate: true, Resolver: silent, Timeout: 300 * time.Millisecond}})
	if oe := refusal(t, slow.session(t), "slow.example:80"); oe.Code != tunnel.CodeTimeout {
		t.Errorf("unanswered DNS: OPEN_FAIL %v (%s), want %v", oe.Code, oe.Reason, tunnel.CodeTimeout)
	}

	// None of it harmed the session.
	tg := startTarget(t, "127.0.0.1:0", echo)
	roundTrip(t, mustOpen(t, sess, tg.addr), "still working")
	if n := h.srv.Sessions(); n != 1 {
		t.Errorf("Sessions() = %d, want 1", n)
	}
}

func TestCodeFor(t *testing.T) {
	refused := func() error {
		c, err := net.Dial("tcp", freeport.Loopback(t))
		if err == nil {
			_ = c.Close() // someone took the port; the check below fails
			t.Fatal("dialling a closed port succeeded")
		}
		return err
	}()
	for _, c := range []struct {
		err  error
		want tunnel.Code
	}{
		{fmt.Errorf("%w: %w", errBadTarget, errors.New("no port")), tunnel.CodeProtocol},
		{fmt.Errorf("x: %w", outbound.ErrDenied), tunnel.CodeDenied},
		{refused, tunnel.CodeRefused},
		{&net.DNSError{Err: "no such host", Name: "x.example", IsNotFound: true}, tunnel.CodeNotFound},
		{&net.DNSError{Err: "timeout", Name: "x.example", IsTimeout: true}, tunnel.CodeTimeout},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), tunnel.CodeTimeout},
		{fmt.Errorf("dial: %w", context.Canceled), tunnel.CodeCanceled},
		{errors.New("something else"), tunnel.CodeOther},
	} {
		if got := CodeFor(c.err); got != c.want {
			t.Errorf("CodeFor(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// ---------------------------------------------------------------------------
// Caps.

func TestStreamCap(t *testing.T) {
	tg := startTarget(t, "127.0.0.1:0", echo)
	h := startExit(t, Config{AllowPrivate: true, Session: tunnel.Config{MaxStreams: 2}})
	sess := h.session(t)
	a, b := mustOpen(t, sess, tg.addr), mustOpen(t, sess, tg.addr)
	roundTrip(t, a, "a")
	roundTrip(t, b, "b")
	if oe := refusal(t, sess, tg.addr); oe.Code != tunnel.CodeOverloaded {
		t.Fatalf("a third stream: OPEN_FAIL %v (%s), want %v", oe.Code, oe.Reason, tunnel.CodeOverloaded)
	}
	if n := tg.dialsSoFar(t); n != 2 {
		t.Errorf("the target saw %d connections from the exit, want 2 (the refused stream must not dial)", n)
	}
	roundTrip(t, a, "a, unharmed")
	roundTrip(t, b, "b, unharmed")

	// An ended stream makes room for a new one.
	finish(t, a)
	h.logs.waitFor(t, "stream closed of "+a.ID().String(), count(1, "msg", "stream closed", "stream", a.ID().String()))
	roundTrip(t, mustOpen(t, sess, tg.addr), "c")
}

// TestSessionBudget: a session whose budget is spent refuses new streams
// with OPEN_FAIL overloaded until a stream gives its share back. The
// budget is one window, and a stream's early data, held while its target
// is being dialled, is charged to it.
func TestSessionBudget(t *testing.T) {
	tg := startTarget(t, "127.0.0.1:0", echo)
	d := newSlowDialer()
	h := startExit(t, Config{Dialer: d, Session: tunnel.Config{Budget: tunnel.DefaultWindow}})
	t.Cleanup(func() { close(d.quit) }) // runs before the exit's cleanup
	sess := h.session(t)
	holder, err := sess.Open(xid.New(), slowHost+":443", randbytes.New(1, 4096))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStream(t, holder) })
	await(t, "dial", d.started) // the OPEN and its early data are in
	if oe := refusal(t, sess, tg.addr); oe.Code != tunnel.CodeOverloaded {
		t.Fatalf("a stream past the budget: OPEN_FAIL %v (%s), want %v", oe.Code, oe.Reason, tunnel.CodeOverloaded)
	}
	if n := tg.dialsSoFar(t); n != 0 {
		t.Errorf("the refused stream reached the target (%d connections)", n)
	}
	if err := holder.Reset(); err != nil {
		t.Fatal(err)
	}
	h.logs.waitFor(t, "open abandoned", count(1, "msg", "open abandoned", "stream", holder.ID().String()))
	roundTrip(t, mustOpen(t, sess, tg.addr), "the budget came back")
}

// TestSessionCap: with MaxSessions 1, of several clients upgrading at once
// exactly one gets a session, which the exit then keeps; the others get
// 503. Once it ends, a new client gets in.
func TestSessionCap(t *testing.T) {
	tg := startTarget(t, "127.0.0.1:0", echo)
	h := startExit(t, Config{AllowPrivate: true, MaxSessions: 1})

	const clients = 4
	type result struct {
		ws     *websocket.Conn
		status int
		err    error
	}
	results := make(chan result, clients)
	start := make(chan struct{})
	for range clients {
		go func() {
			<-start
			ws, resp, err := upgrade(t, h.url, bearer(testToken), tunnel.Version)
			r := result{ws: ws, err: err}
			if resp != nil {
				r.status = resp.StatusCode
			}
			results <- r
		}()
	}
	close(start)
	var winners []*websocket.Conn
	for range clients {
		r := <-results
		switch {
		case r.err == nil:
			winners = append(winners, r.ws)
		case r.status != http.StatusServiceUnavailable:
			t.Errorf("an upgrade over the cap: status %d, %v; want 503", r.status, r.err)
		}
	}
	if len(winners) != 1 {
		for _, ws := range winners {
			_ = ws.Close() // the test has failed; only the goroutines matter now
		}
		t.Fatalf("%d of %d concurrent upgrades succeeded with MaxSessions 1, want exactly 1", len(winners), clients)
	}
	sess := tunnel.NewSession(winners[0], true, tunnel.Config{Logger: discard})
	t.Cleanup(func() { _ = sess.Close() }) // always nil; closed below unless the test failed
	roundTrip(t, mustOpen(t, sess, tg.addr), "the one session works")

	// While it lasts, another client gets 503 from tunnel.Dial too.
	_, err := tunnel.Dial(t.Context(), h.url, testToken, tunnel.DialOptions{Timeout: wait})
	if !errors.Is(err, websocket.ErrBadHandshake) || errors.Is(err, tunnel.ErrAuthFailed) {
		t.Errorf("a second session: %v, want a refused upgrade that is not an auth failure", err)
	}

	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	h.logs.waitFor(t, "session ended", count(1, "msg", "session ended"))
	roundTrip(t, mustOpen(t, h.session(t), tg.addr), "a new session after the first ended")
}

// ---------------------------------------------------------------------------
// The upgrade: token, Origin, version.

func TestUpgradeRefusals(t *testing.T) {
	h := startExit(t, Config{AllowPrivate: true})
	for _, token := range []string{"wrong", "", testToken + "x"} {
		_, err := tunnel.Dial(t.Context(), h.url, token, tunnel.DialOptions{Timeout: wait})
		if !errors.Is(err, tunnel.ErrAuthFailed) {
			t.Errorf("token %q: %v, want ErrAuthFailed", token, err)
		}
	}
	host := strings.TrimSuffix(strings.TrimPrefix(h.url, "ws://"), "/porthole")
	for _, c := range []struct {
		name   string
		header http.Header
		protos []string
		want   int
	}{
		{"no token", http.Header{}, []string{tunnel.Version}, http.StatusUnauthorized},
		{"basic auth", http.Header{"Authorization": {"Basic dGVzdDp0ZXN0"}}, []string{tunnel.Version}, http.StatusUnauthorized},
		{"wrong token", bearer("wrong"), []string{tunnel.Version}, http.StatusUnauthorized},
		{"foreign origin", http.Header{"Authorization": {"Bearer " + testToken}, "Origin": {"https://evil.example"}}, []string{tunnel.Version}, http.StatusForbidden},
		{"no version", bearer(testToken), nil, http.StatusBadRequest},
		{"other version", bearer(testToken), []string{"porthole.v0"}, http.StatusBadRequest},
	} {
		ws, resp, err := upgrade(t, h.url, c.header, c.protos...)
		if err == nil {
			_ = ws.Close() // the test has failed already
			t.Errorf("%s: upgraded", c.name)
			continue
		}
		if resp == nil || resp.StatusCode != c.want {
			t.Errorf("%s: %v (response %v), want status %d", c.name, err, resp, c.want)
			continue
		}
		if c.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without a Bearer challenge: %q", c.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	const refusals = 3 + 6
	h.logs.waitFor(t, "upgrade refused", count(refusals, "msg", "upgrade refused"))
	if n := len(where(h.logs.records(t), "msg", "session started")); n != 0 || h.srv.Sessions() != 0 {
		t.Fatalf("refused upgrades started %d sessions (Sessions() = %d)", n, h.srv.Sessions())
	}

	// The exit's own origin is welcome (a same-site page is the exit's own).
	ws, _, err := upgrade(t, h.url, http.Header{"Authorization": {"Bearer " + testToken}, "Origin": {"http://" + host}}, tunnel.Version)
	if err != nil {
		t.Fatalf("upgrade with the exit's own Origin: %v", err)
	}
	if ws.Subprotocol() != tunnel.Version {
		t.Errorf("the exit selected %q", ws.Subprotocol())
	}
	sess := tunnel.NewSession(ws, true, tunnel.Config{Logger: discard})
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	h.logs.waitFor(t, "session ended", count(1, "msg", "session ended"))
}

// ---------------------------------------------------------------------------
// Cancelled dials.

// slowDialer stands for a target that takes forever to answer: each dial
// reports its start, waits for its context, and reports how that ended.
type slowDialer struct {
	started chan string
	ended   chan error
	quit    chan struct{} // closed at cleanup: no dial outlives its test
	next    net.Dialer    // for targets not on slowHost
}

const slowHost = "slow.example"

func newSlowDialer() *slowDialer {
	return &slowDialer{started: make(chan string, 16), ended: make(chan error, 16), quit: make(chan struct{})}
}

// startExit serves an exit dialling with d. Should a dial outlive its
// context (the bug these tests look for), the test's cleanup lets it go
// before closing the exit, so a failing test fails instead of hanging.
func (d *slowDialer) startExit(t *testing.T) *harness {
	h := startExit(t, Config{Dialer: d})
	t.Cleanup(func() { close(d.quit) }) // runs before the exit's cleanup
	return h
}

func (d *slowDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, _, err := net.SplitHostPort(addr); err != nil || host != slowHost {
		return d.next.DialContext(ctx, network, addr)
	}
	select {
	case d.started <- addr:
	default:
	}
	select {
	case <-ctx.Done():
	case <-d.quit:
		return nil, fmt.Errorf("dialling %s: the test ended first", addr)
	}
	select {
	case d.ended <- context.Cause(ctx):
	default:
	}
	return nil, fmt.Errorf("dialling %s: %w", addr, ctx.Err())
}

// await returns the next value of ch, failing after wait.
func await[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	return chantest.Within(t, wait, what, ch)
}

// wantCanceled fails the test unless the dial in progress ends, canceled.
func (d *slowDialer) wantCanceled(t *testing.T) {
	t.Helper()
	if err := await(t, "end of the dial", d.ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("the dial ended with %v, want context.Canceled", err)
	}
}

func TestResetDuringDialCancelsTheDial(t *testing.T) {
	d := newSlowDialer()
	h := d.startExit(t)
	sess := h.session(t)
	st, err := sess.Open(xid.New(), slowHost+":443", []byte("early"))
	if err != nil {
		t.Fatal(err)
	}
	await(t, "dial", d.started)
	if err := st.Reset(); err != nil {
		t.Fatal(err)
	}
	d.wantCanceled(t)
	h.logs.waitFor(t, "open abandoned", count(1, "msg", "open abandoned", "stream", st.ID().String()))
	if h.srv.Sessions() != 1 {
		t.Errorf("the session ended with its stream")
	}
}

func TestClientLeavingDuringDialCancelsTheDial(t *testing.T) {
	d := newSlowDialer()
	h := d.startExit(t)
	sess := h.session(t)
	if _, err := sess.Open(xid.New(), slowHost+":443", nil); err != nil {
		t.Fatal(err)
	}
	await(t, "dial", d.started)
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	d.wantCanceled(t)
	h.logs.waitFor(t, "session ended", count(1, "msg", "session ended"))
}

// ---------------------------------------------------------------------------
// Close.

// TestCloseEndsEverySession: Close ends live sessions, streams relaying
// and streams dialling; the clients see the tunnel lost; Close returns
// only when every handler has returned, is idempotent and safe from
// several goroutines, and upgrades after it get 503.
func TestCloseEndsEverySession(t *testing.T) {
	tg := startTarget(t, "127.0.0.1:0", echo)
	d := newSlowDialer()
	h := d.startExit(t)
	s1, s2 := h.session(t), h.session(t)
	a, b := mustOpen(t, s1, tg.addr), mustOpen(t, s2, tg.addr)
	roundTrip(t, a, "a")
	roundTrip(t, b, "b")
	dialling, err := s1.Open(xid.New(), slowHost+":443", nil)
	if err != nil {
		t.Fatal(err)
	}
	await(t, "dial", d.started)
	h.logs.waitFor(t, "two sessions started", count(2, "msg", "session started"))

	readErrs := make(chan error, 2)
	for _, st := range []*tunnel.Stream{a, b} {
		go func() {
			_, err := io.Copy(io.Discard, st) // until the tunnel is lost
			readErrs <- err
		}()
	}

	closed := make(chan error, 2)
	for range 2 {
		go func() { closed <- h.srv.Close() }()
	}
	for range 2 {
		if err := await(t, "Close", closed); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// Returned: every handler has logged its end, every stream its.
		recs := h.logs.records(t)
		if n := len(where(recs, "msg", "session ended")); n != 2 {
			t.Errorf("Close returned with %d sessions logged as ended, want 2", n)
		}
		for _, st := range []*tunnel.Stream{a, b} {
			if len(where(recs, "msg", "stream closed", "stream", st.ID().String())) != 1 {
				t.Errorf("Close returned before stream %s's handler ended", st.ID())
			}
		}
		if len(where(recs, "msg", "open abandoned", "stream", dialling.ID().String())) != 1 {
			t.Errorf("Close returned before the dialling stream's handler ended")
		}
		if n := h.srv.Sessions(); n != 0 {
			t.Errorf("Sessions() = %d after Close", n)
		}
	}
	if err := await(t, "end of the dial", d.ended); !errors.Is(err, context.Canceled) {
		t.Errorf("the dial ended with %v, want context.Canceled", err)
	}
	for range 2 {
		if err := await(t, "end of a relaying stream", readErrs); !errors.Is(err, tunnel.ErrTunnelLost) {
			t.Errorf("a relaying stream ended with %v, want ErrTunnelLost", err)
		}
	}
	if err := dialling.WaitOpen(t.Context()); !errors.Is(err, tunnel.ErrTunnelLost) {
		t.Errorf("the dialling stream ended with %v, want ErrTunnelLost", err)
	}
	for _, s := range []*tunnel.Session{s1, s2} {
		await(t, "end of a client session", s.Done())
		if !errors.Is(s.Err(), tunnel.ErrTunnelLost) {
			t.Errorf("client session ended with %v, want ErrTunnelLost", s.Err())
		}
	}

	_, resp, err := upgrade(t, h.url, bearer(testToken), tunnel.Version)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("an upgrade after Close: %v (%v), want 503", err, resp)
	}
	if err := h.srv.Close(); err != nil {
		t.Errorf("a third Close: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Logs.

// TestLogs: each stream's records carry the client's stream id and the
// session's id, at DEBUG; each session logs one "session started" and one
// "session ended" at INFO; the counts in "stream closed" are the bytes.
func TestLogs(t *testing.T) {
	tg := startTarget(t, "127.0.0.1:0", sinkReply)
	h := startExit(t, Config{AllowPrivate: true})
	refused := freeport.Loopback(t)

	type sent struct {
		id       string
		up, down int
	}
	var opened [2][]sent // per client session
	var refusedIDs [2]string
	for i := range 2 {
		sess := h.session(t)
		for j := range 2 {
			const down = 5000
			var hdr [8]byte
			binary.BigEndian.PutUint64(hdr[:], down)
			up := randbytes.New(uint64(10*i+j), 3000)
			st, err := open(t, sess, tg.addr, hdr[:])
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetDeadline(time.Now().Add(wait)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(up); err != nil {
				t.Fatal(err)
			}
			if err := st.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(st)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != sha256.Size+down {
				t.Fatalf("%d bytes back, want %d", len(got), sha256.Size+down)
			}
			opened[i] = append(opened[i], sent{st.ID().String(), len(hdr) + len(up), len(got)})
		}
		st, err := open(t, sess, refused, nil)
		var oe *tunnel.OpenError
		if !errors.As(err, &oe) || oe.Code != tunnel.CodeRefused {
			t.Fatalf("a stream to a closed port: %v, want OPEN_FAIL refused", err)
		}
		refusedIDs[i] = st.ID().String()
		h.logs.waitFor(t, "open refused", count(1, "msg", "open refused", "stream", refusedIDs[i]))
		for _, s := range opened[i] {
			h.logs.waitFor(t, "stream closed of "+s.id, count(1, "msg", "stream closed", "stream", s.id))
		}
		if err := sess.Close(); err != nil {
			t.Fatal(err)
		}
		h.logs.waitFor(t, "session ended", count(i+1, "msg", "session ended"))
	}

	recs := h.logs.records(t)
	sessionOf := map[string]string{} // stream id → session id
	for _, r := range recs {
		if r.str("stream") == "" {
			continue
		}
		if r.str("level") != "DEBUG" {
			t.Errorf("a stream's record above DEBUG: %v", r)
		}
		sid := r.str("session")
		if _, err := xid.FromString(sid); err != nil {
			t.Errorf("stream record without a session xid: %v", r)
			continue
		}
		if prev, ok := sessionOf[r.str("stream")]; ok && prev != sid {
			t.Errorf("stream %s logged under sessions %s and %s", r.str("stream"), prev, sid)
		}
		sessionOf[r.str("stream")] = sid
	}
	var sids []string
	for i := range 2 {
		sid := sessionOf[opened[i][0].id]
		sids = append(sids, sid)
		if slices.Contains(sids[:i], sid) {
			t.Errorf("two client sessions logged under one session id %s", sid)
		}
		for _, s := range opened[i] {
			if sessionOf[s.id] != sid {
				t.Errorf("stream %s logged under session %q, its siblings under %q", s.id, sessionOf[s.id], sid)
			}
			if n := len(where(recs, "msg", "dialing", "stream", s.id, "session", sid, "target", tg.addr)); n != 1 {
				t.Errorf("stream %s: %d dialing records, want 1", s.id, n)
			}
			closed := where(recs, "msg", "stream closed", "stream", s.id, "session", sid)
			if len(closed) != 1 {
				t.Errorf("stream %s: %d stream closed records, want 1", s.id, len(closed))
				continue
			}
			up, _ := closed[0].num("up")
			down, _ := closed[0].num("down")
			if int(up) != s.up || int(down) != s.down {
				t.Errorf("stream %s logged up=%v down=%v, the client sent %d and received %d", s.id, up, down, s.up, s.down)
			}
		}
		if sessionOf[refusedIDs[i]] != sid {
			t.Errorf("refused stream %s logged under session %q, want %q", refusedIDs[i], sessionOf[refusedIDs[i]], sid)
		}
		if n := len(where(recs, "msg", "open refused", "stream", refusedIDs[i], "target", refused)); n != 1 {
			t.Errorf("refused stream %s: %d open refused records, want 1", refusedIDs[i], n)
		}
		for _, msg := range []string{"session started", "session ended"} {
			got := where(recs, "msg", msg, "session", sid)
			if len(got) != 1 || got[0].str("level") != "INFO" {
				t.Errorf("session %s: %d %q records (%v), want one at INFO", sid, len(got), msg, got)
			}
		}
		if ended := where(recs, "msg", "session ended", "session", sid); len(ended) == 1 {
			if n, _ := ended[0].num("streams"); n != 3 {
				t.Errorf("session %s ended with streams=%v, want 3", sid, n)
			}
		}
	}
	for _, msg := range []string{"session started", "session ended"} {
		if n := len(where(recs, "msg", msg)); n != 2 {
			t.Errorf("%d %q records for 2 sessions", n, msg)
		}
	}
	var info int
	for _, r := range recs {
		if r.str("level") == "INFO" {
			info++
		}
	}
	if info != 4 {
		t.Errorf("%d INFO records for 2 sessions, want 4 (one start and one end each)", info)
	}
}

// TestResetEndsRelayToStuckTarget: a target that neither reads nor writes
// holds the exit's relay in a write; the client's reset must still end it,
// so the stream's handler returns and Close does not hang (lifecycle rule 6).
func TestResetEndsRelayToStuckTarget(t *testing.T) {
	stuck := make(chan struct{})
	tg := startTarget(t, "127.0.0.1:0", func(c *net.TCPConn) {
		if err := c.SetReadBuffer(4096); err != nil {
			t.Error(err)
		}
		<-stuck // never reads, never writes
	})
	defer close(stuck)
	h := startExit(t, Config{AllowPrivate: true})
	sess := h.session(t)
	st := mustOpen(t, sess, tg.addr)
	// More than the target's socket buffers and the stream's window hold:
	// the exit's relay ends up blocked writing to the target.
	var progress atomic.Int64
	written := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for range 256 { // 16 MiB
			n, err := st.Write(chunk)
			progress.Add(int64(n))
			if err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	// No event says the relay is stuck: wait (bounded) until the writer
	// has made no progress for a while, then reset.
	last, still := int64(-1), 0
	for deadline := time.Now().Add(wait); still < 3 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if p := progress.Load(); p == last {
			still++
		} else {
			last, still = p, 0
		}
	}
	if err := st.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := <-written; err == nil {
		t.Fatal("a 16 MiB write to a stuck target completed")
	}
	h.logs.waitFor(t, "the stream's handler to end", count(1, "msg", "stream closed", "stream", st.ID().String()))
	closed := make(chan error, 1)
	go func() { closed <- h.srv.Close() }()
	if err := await(t, "Server.Close beside a relay to a stuck target", closed); err != nil {
		t.Fatal(err)
	}
}
