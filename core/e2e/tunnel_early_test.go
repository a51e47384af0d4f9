package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/tunnel"
	"porthole/internal/chantest"
	"porthole/internal/origin"
)

// TestTunnelAnswersEarly follows one target through its life, over CONNECT
// and over SOCKS5. Its first connection is answered once the exit has
// opened it; the next ones before the exit answers (their first bytes
// travel behind the OPEN), and the inspector still gets the address the
// exit connected to. When the target stops listening, the next client has
// its answer already: it is reset, and its record ends with the exit's
// refusal, logged once. The target is then forgotten: the client after
// that gets the refusal in its own protocol (502, SOCKS reply 5).
//
// The target is asked by name ("localhost"), so the remote address in a
// record (127.0.0.1) can only have come from the exit's OPEN_OK.
func TestTunnelAnswersEarly(t *testing.T) {
	for _, p := range []lcProto{lcConnect, lcSOCKS5} {
		t.Run(p.String(), func(t *testing.T) {
			v := newE2E(t, e2eOptions{})
			// Two targets: one for a client that sends its first bytes
			// with its request, one for a client that sends them after
			// the answer; each refusal makes its target forgotten.
			ln1, target1 := earlyTarget(t)
			ln2, target2 := earlyTarget(t)
			for _, what := range []string{"first (waits for the exit)", "second (answered early)", "third (answered early)"} {
				echoVia(t, v, p, target1, ln1.Addr().String(), what)
				echoVia(t, v, p, target2, ln2.Addr().String(), what)
			}

			// The targets go away; the exit's dials to them are refused.
			for _, ln := range []net.Listener{ln1, ln2} {
				if err := ln.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for _, pipelined := range []bool{true, false} {
				what, target := "first bytes after the answer", target2
				if pipelined {
					what, target = "first bytes with the request", target1
				}
				before := v.ev.known()
				c, werr, rerr := lostEarly(v.proxy(), p, target, pipelined)
				if c == nil {
					t.Fatalf("%s: %v; want it answered before the exit's refusal", what, rerr)
				}
				// The reset is reported once, to the first call that meets
				// it: the read, or a write after the answer.
				if !errors.Is(rerr, syscall.ECONNRESET) && !(errors.Is(werr, syscall.ECONNRESET) && errors.Is(rerr, io.EOF)) {
					t.Errorf("%s: client's write %v, read %v; want a reset", what, werr, rerr)
				}
				infos, err := v.ev.newClosed(before, 1)
				if err != nil {
					t.Fatal(err)
				}
				info := infos[0]
				var oe *tunnel.OpenError
				if !errors.As(info.Err, &oe) || oe.Code != tunnel.CodeRefused {
					t.Errorf("%s: record ended with %v, want an OpenError %s", what, info.Err, tunnel.CodeRefused)
				}
				if !info.Established.IsZero() {
					t.Errorf("%s: record established at %v, want never", what, info.Established)
				}
				// Logged after the record's end: wait for it, bounded.
				n := 0
				for deadline := time.Now().Add(e2eTimeout); n == 0 && time.Now().Before(deadline); time.Sleep(e2ePoll) {
					n = v.logs.countAt(slog.LevelInfo, "conn", info.ID.String())
				}
				if n != 1 {
					t.Errorf("%s: %d INFO records about %s, want 1", what, n, info.ID)
				}
			}
			// Forgotten: the refusal comes in the client's protocol again.
			before := v.ev.known()
			c, err := openTunnel(v.proxy(), p, target1)
			if c != nil {
				_ = c.conn.Close()
			}
			if !errors.Is(err, errRefused) {
				t.Errorf("once forgotten: %v, want the proxy's refusal", err)
			}
			var oe *tunnel.OpenError
			if infos, err := v.ev.newClosed(before, 1); err != nil {
				t.Error(err)
			} else if !errors.As(infos[0].Err, &oe) || oe.Code != tunnel.CodeRefused {
				t.Errorf("once forgotten: record ended with %v, want an OpenError %s", infos[0].Err, tunnel.CodeRefused)
			}
			v.finish(t)
		})
	}
}

// earlyTarget is an echo origin on loopback, named "localhost:PORT", and
// its listener: closing it makes the exit's dials to it refused.
func earlyTarget(t *testing.T) (net.Listener, string) {
	t.Helper()
	srv := origin.New()
	t.Cleanup(func() { _ = srv.Close() }) // closing twice says nothing here
	ln, err := srv.Listen("tcp", func(c *net.TCPConn) {
		if c.SetDeadline(time.Now().Add(e2eTimeout)) == nil {
			_, _ = io.Copy(c, c)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ln, net.JoinHostPort("localhost", port)
}

// echoVia opens a connection to target over p, checks an echo through it
// and its record: ended cleanly, established with remote, bytes counted.
func echoVia(t *testing.T, v *e2eEnv, p lcProto, target, remote, what string) {
	t.Helper()
	before := v.ev.known()
	c, err := openTunnel(v.proxy(), p, target)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	payload := []byte("early data: " + what)
	if err := echoCheck(c.conn, c.br, payload, c.conn.CloseWrite); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	_ = c.conn.Close() // the record says how it ended
	infos, err := v.ev.newClosed(before, 1)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	info := infos[0]
	if info.Err != nil || info.Established.IsZero() || info.Remote != remote {
		t.Errorf("%s: record ended %v, established %v, remote %q; want nil, set, %q",
			what, info.Err, info.Established, info.Remote, remote)
	}
	if info.Up != int64(len(payload)) || info.Down != int64(len(payload)) {
		t.Errorf("%s: record counted %d up, %d down; want %d each", what, info.Up, info.Down, len(payload))
	}
}

// TestTunnelAnswersEarlyOnlyWithoutFailover: with several exits, a
// connection is answered early only where no other exit would be tried
// (a manual pick here; a rule naming the exit too): under an automatic
// policy it waits for the exit's answer, so a lost exit's connection could
// go on to the next. Seen through a refused target the exit opened
// before: answered early, the client gets its 200 and then a reset;
// waited for, the 502 at once.
func TestTunnelAnswersEarlyOnlyWithoutFailover(t *testing.T) {
	for _, tc := range []struct {
		policy outbound.Policy
		early  bool
	}{
		{outbound.PolicyFailover, false},
		{outbound.PolicyManual, true},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			leakCheck(t)
			xa, xb := startExit(t, "127.0.0.1:0", true), startExit(t, "127.0.0.1:0", true)
			v := newExitsEnv(t, tc.policy, portholeExit("a", xa.url(), e2eToken), portholeExit("b", xb.url(), e2eToken))
			waitExits(t, v, "all up", allUp)
			ln, target := earlyTarget(t)
			echoVia(t, v, lcConnect, target, ln.Addr().String(), "first")
			echoVia(t, v, lcConnect, target, ln.Addr().String(), "second")
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			c, err := openTunnel(v.proxy(), lcConnect, target)
			if c != nil {
				defer c.conn.Close()
			}
			switch {
			case tc.early && err != nil:
				t.Errorf("%s: %v; want the answer before the exit's refusal", tc.policy, err)
			case tc.early:
				if _, err := c.br.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("%s: read after the early answer: %v, want a reset", tc.policy, err)
				}
			case !errors.Is(err, errRefused):
				t.Errorf("%s: %v; want the exit's refusal (502): the connection waits for the exit", tc.policy, err)
			}
			closeEngine(t, v.eng)
		})
	}
}

// lostEarly asks the proxy for target over p and reads its answer; after
// it, or with the request when pipelined, it sends a few bytes, then reads
// one. It returns the client (nil, with the error in rerr, if there was no
// success answer), the error of the write after the answer (nil when
// pipelined) and of the read.
func lostEarly(proxy string, p lcProto, target string, pipelined bool) (c *lcClient, werr, rerr error) {
	c, err := dialProxy(proxy, p)
	if err != nil {
		return nil, nil, err
	}
	defer c.conn.Close()
	first := []byte("lost")
	var req []byte
	if p == lcConnect {
		req = fmt.Appendf(nil, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	} else {
		if _, err := c.conn.Write([]byte{5, 1, 0}); err != nil {
			return nil, nil, err
		}
		var m [2]byte
		if _, err := io.ReadFull(c.br, m[:]); err != nil || m != [2]byte{5, 0} {
			return nil, nil, fmt.Errorf("socks5 method reply %x: %v", m, err)
		}
		req = socks5Request(target)
	}
	if pipelined {
		req = append(req, first...) // one write: the proxy reads them together
	}
	if _, err := c.conn.Write(req); err != nil {
		return nil, nil, err
	}
	if err := c.reply(); err != nil {
		return nil, nil, err
	}
	if !pipelined {
		_, werr = c.conn.Write(first)
	}
	_, rerr = c.br.ReadByte()
	return c, werr, rerr
}

// gateDialer is an exit's dialer with a gate: while held, a dial waits
// (until the gate opens or its context ends) before it dials, and the
// exit's answer to the OPEN waits with it.
type gateDialer struct {
	d       outbound.Dialer
	held    atomic.Bool
	open    chan struct{} // closed to let held dials go
	waiting chan struct{} // a token for each dial the gate held
	dropped chan struct{} // a token for each held dial called off
}

func (g *gateDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if g.held.Load() {
		select {
		case g.waiting <- struct{}{}:
		default:
		}
		select {
		case <-g.open:
		case <-ctx.Done():
			select {
			case g.dropped <- struct{}{}:
			default:
			}
			return nil, context.Cause(ctx)
		}
	}
	return g.d.DialContext(ctx, network, addr)
}

// TestTunnelEarlyClosedWhileTheExitDials: a connection answered early,
// whose exit is still dialling, closed by hand in the inspector. The
// record ends once, closed by the user and never established; the client's
// connection ends; the exit's dial is called off; nothing is left waiting
// for the exit's answer (the leak check at the end).
func TestTunnelEarlyClosedWhileTheExitDials(t *testing.T) {
	g := &gateDialer{d: &outbound.Guarded{AllowPrivate: true}, open: make(chan struct{}),
		waiting: make(chan struct{}, 16), dropped: make(chan struct{}, 16)}
	v := newE2E(t, e2eOptions{exitDialer: g})
	ln, target := earlyTarget(t)
	echoVia(t, v, lcConnect, target, ln.Addr().String(), "the exit opens it")

	g.held.Store(true)
	c, err := openTunnel(v.proxy(), lcConnect, target)
	if err != nil {
		t.Fatalf("with the exit's dial held: %v; want the early answer", err)
	}
	defer c.conn.Close()
	id, err := v.ev.claim(c.laddr, target)
	if err != nil {
		t.Fatal(err)
	}
	chantest.Within(t, e2eTimeout, "the exit's held dial", g.waiting)
	if info, ok := v.reg.Get(id); !ok || info.State != registry.StateConnecting {
		t.Errorf("while the exit dials: record %v, %s; want live, connecting", ok, info.State)
	}
	if !v.reg.CloseConn(id) {
		t.Fatal("CloseConn found no live connection")
	}
	if _, err := c.br.ReadByte(); err == nil || timedOut(err) {
		t.Errorf("client after the close: read %v, want the connection ended", err)
	}
	info, err := v.ev.closedInfo(id)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(info.Err, registry.ErrClosedByUser) || !info.Established.IsZero() {
		t.Errorf("record ended with %v, established %v; want closed by the user, never established", info.Err, info.Established)
	}
	chantest.Within(t, e2eTimeout, "the exit's held dial called off", g.dropped)
	close(g.open)
	v.finish(t)
}
