package outbound

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"porthole/internal/freeport"
	"porthole/internal/origin"
	"porthole/internal/upstreamtest"
)

// The upstream exits against real proxies: tinyproxy and microsocks,
// started by the test on loopback (skipped where they are not installed).

const upTimeout = 20 * time.Second

// upstreamGroup starts a group of one upstream exit.
func upstreamGroup(t *testing.T, kind Kind, url, user, pass string) *Group {
	t.Helper()
	return startGroup(t, GroupConfig{
		Exits: []ExitConfig{{Name: "up", Kind: kind, Upstream: UpstreamConfig{
			URL: url, Username: user, Password: pass,
			ProbeInterval: 200 * time.Millisecond, MinBackoff: 300 * time.Millisecond, MaxBackoff: 2 * time.Second,
		}}},
		DialTimeout: 5 * time.Second,
	})
}

// startGroup makes and starts a group of cfg, closed when the test ends.
func startGroup(t *testing.T, cfg GroupConfig) *Group {
	t.Helper()
	g, err := NewGroup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	})
	return g
}

// carryingGroup is upstreamGroup once its exit is up and has carried an
// echo through to the echo server at echo.
func carryingGroup(t *testing.T, echo string, kind Kind, url, user, pass string) *Group {
	t.Helper()
	g := upstreamGroup(t, kind, url, user, pass)
	waitState(t, g, "up", ExitUp)
	echoThrough(t, g, echo)
	return g
}

// waitState waits for the exit's state through the group's watch.
func waitState(t *testing.T, g *Group, name string, want ExitState) ExitStatus {
	t.Helper()
	snap, w := g.Subscribe()
	defer w.Close()
	deadline := time.After(upTimeout)
	for range 10000 {
		for _, s := range snap.Exits {
			if s.Name == name && s.State == want {
				return s
			}
		}
		select {
		case st, ok := <-w.C:
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			snap = st
		case <-deadline:
			t.Fatalf("exit %s not %s within %v: %+v", name, want, upTimeout, snap.Exits)
		}
	}
	t.Fatal("too many states")
	return ExitStatus{}
}

func echoThrough(t *testing.T, g *Group, target string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), upTimeout)
	defer cancel()
	c, err := g.DialContext(ctx, "tcp", target)
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	defer c.Close()
	if n, ok := c.(ExitNamer); !ok || n.ExitName() != "up" {
		t.Errorf("the connection does not name its exit: %T", c)
	}
	msg := make([]byte, 100<<10)
	if _, err := rand.Read(msg); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		errc <- err
	}()
	got := make([]byte, len(msg))
	if err := c.SetReadDeadline(time.Now().Add(upTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the echo differs")
	}
}

func dialErr(t *testing.T, g *Group, target string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), upTimeout)
	defer cancel()
	c, err := g.DialContext(ctx, "tcp", target)
	if err == nil {
		_ = c.Close()
		t.Fatalf("dial %s went through", target)
	}
	return err
}

func TestUpstreamHTTPProxy(t *testing.T) {
	echo := origin.Echo(t)
	p := upstreamtest.Tinyproxy(t, "", "")
	g := upstreamGroup(t, KindHTTP, p.URL, "", "")
	if st := waitState(t, g, "up", ExitUp); st.Latency <= 0 {
		t.Errorf("a healthy proxy without a latency: %+v", st)
	}
	echoThrough(t, g, echo)

	// A target that refuses: the proxy's answer, not the exit's failure.
	err := dialErr(t, g, freeport.Loopback(t))
	var he *UpstreamHTTPError
	if !errors.As(err, &he) || errors.Is(err, ErrExitDown) {
		t.Errorf("refused target: %v (%T), want an *UpstreamHTTPError", err, err)
	}
	if st := g.State().Exits[0]; st.State != ExitUp {
		t.Errorf("a refused target took the exit down: %v", st)
	}
}

func TestUpstreamHTTPProxyAuth(t *testing.T) {
	echo := origin.Echo(t)
	p := upstreamtest.Tinyproxy(t, "alice", "s3cret")
	carryingGroup(t, echo, KindHTTP, p.URL, "alice", "s3cret")

	// Credentials in the URL count too.
	carryingGroup(t, echo, KindHTTP, "http://alice:s3cret@"+p.Addr, "", "")

	checkRefusedCredentials(t, KindHTTP, "http://", p.Addr, "alice", "wrong", echo)
}

// checkRefusedCredentials: an exit of kind whose proxy (at addr, behind
// a relay that counts connections) refuses user and pass is known to:
// it is ExitAuthFailed, and there is no retry storm: connections fail at
// once and do not reach the proxy; the probe retries with a backoff.
func checkRefusedCredentials(t *testing.T, kind Kind, scheme, addr, user, pass, echo string) {
	t.Helper()
	counter := countingRelay(t, addr)
	bad := upstreamGroup(t, kind, scheme+counter.addr, user, pass)
	st := waitState(t, bad, "up", ExitAuthFailed)
	if !errors.Is(st.Err, ErrUpstreamAuth) {
		t.Errorf("credentials %q %q: auth failed state with %v", user, pass, st.Err)
	}
	before := counter.n.Load()
	for range 50 {
		err := dialErr(t, bad, echo)
		if !errors.Is(err, ErrExitDown) || !errors.Is(err, ErrUpstreamAuth) || Classify(err) != FailUpstreamAuth {
			t.Fatalf("credentials %q %q: %v, want the exit down for its credentials", user, pass, err)
		}
	}
	if n := counter.n.Load() - before; n > 3 {
		t.Errorf("credentials %q %q: 50 dials made %d connections to the proxy", user, pass, n)
	}
}

func TestUpstreamSOCKS5Proxy(t *testing.T) {
	echo := origin.Echo(t)
	p := upstreamtest.Microsocks(t, "", "")
	g := carryingGroup(t, echo, KindSOCKS5, p.URL, "", "")
	// By name: the proxy resolves it.
	_, port, _ := net.SplitHostPort(echo)
	echoThrough(t, g, net.JoinHostPort("localhost", port))

	err := dialErr(t, g, freeport.Loopback(t))
	var se *SOCKS5ReplyError
	if !errors.As(err, &se) || se.Code != 0x05 || Classify(err) != FailRefused {
		t.Errorf("refused target: %v, want SOCKS5 reply 0x05", err)
	}
}

func TestUpstreamSOCKS5ProxyAuth(t *testing.T) {
	echo := origin.Echo(t)
	p := upstreamtest.Microsocks(t, "bob", "pw")
	carryingGroup(t, echo, KindSOCKS5, p.URL, "bob", "pw")

	for _, creds := range [][2]string{{"bob", "nope"}, {"", ""}} {
		checkRefusedCredentials(t, KindSOCKS5, "socks5://", p.Addr, creds[0], creds[1], echo)
	}
}

// TestUpstreamDown: a proxy that is not there fails fast, naming the
// exit; when it comes up the probe finds it.
func TestUpstreamDown(t *testing.T) {
	echo := origin.Echo(t)
	p := upstreamtest.Microsocks(t, "", "")
	g := upstreamGroup(t, KindSOCKS5, p.URL, "", "")
	waitState(t, g, "up", ExitUp)
	p.Kill(t)
	err := dialErr(t, g, echo)
	var de *ExitDownError
	if !errors.As(err, &de) || de.Name != "up" || Classify(err) != FailTunnelDown {
		t.Fatalf("dial with the proxy killed: %v, want the exit down", err)
	}
	t.Logf("answer: %v", err)
	st := waitState(t, g, "up", ExitDown)
	if st.Retry.IsZero() || st.Err == nil {
		t.Errorf("down without a reason or a retry: %+v", st)
	}
	began := time.Now()
	if err := dialErr(t, g, echo); !errors.Is(err, ErrExitDown) {
		t.Errorf("second dial: %v", err)
	}
	t.Logf("failing dial answered in %v", time.Since(began))
	p.Start(t)
	waitState(t, g, "up", ExitUp)
	echoThrough(t, g, echo)
}

// serveRelay relays every connection ln accepts to the address to, until
// the test ends: then ln and every connection are closed and its
// goroutines waited for. accepted, if not nil, is told of each accept.
func serveRelay(t *testing.T, ln net.Listener, to string, accepted func()) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if accepted != nil {
				accepted()
			}
			u, err := net.Dial("tcp", to)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(u, c); _ = u.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, u); _ = c.Close() }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// relayCount is a loopback TCP relay in front of a proxy that counts the
// connections it accepts.
type relayCount struct {
	addr string
	n    atomic.Int64
}

func countingRelay(t *testing.T, to string) *relayCount {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relayCount{addr: ln.Addr().String()}
	serveRelay(t, ln, to, func() { r.n.Add(1) })
	return r
}

// A dial the caller gives up on while the upstream exit connects to its
// proxy (the client closed by the user, idle, the proxy stopping: a cause
// of its own, not context.Canceled) says nothing about the proxy: the exit
// stays up. Only the exit's own timeout or a refused connect puts it down.
func TestUpstreamCallerAbortKeepsExitUp(t *testing.T) {
	echo := origin.Echo(t)
	p := upstreamtest.Microsocks(t, "", "")
	g := carryingGroup(t, echo, KindSOCKS5, p.URL, "", "")
	x := g.members[0]
	errAbort := errors.New("closed by the user")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errAbort) // before the connect: it fails at once, as an abort during it would
	if c, err := x.DialContext(ctx, "tcp", echo); err == nil {
		_ = c.Close()
		t.Fatal("an aborted dial went through")
	}
	if st := x.status(); st.State != ExitUp {
		t.Fatalf("the exit after a caller's abort: %+v, want up", st)
	}
	echoThrough(t, g, echo)
}
