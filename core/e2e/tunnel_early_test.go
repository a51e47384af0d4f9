package e2e

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"porthole/core/tunnel"
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
			target := net.JoinHostPort("localhost", port)

			for _, what := range []string{"first (waits for the exit)", "second (answered early)", "third (answered early)"} {
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
				if info.Err != nil || info.Established.IsZero() || info.Remote != ln.Addr().String() {
					t.Errorf("%s: record ended %v, established %v, remote %q; want nil, set, %q",
						what, info.Err, info.Established, info.Remote, ln.Addr())
				}
				if info.Up != int64(len(payload)) || info.Down != int64(len(payload)) {
					t.Errorf("%s: record counted %d up, %d down; want %d each", what, info.Up, info.Down, len(payload))
				}
			}

			// The target goes away; the exit's dial to it is refused.
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			before := v.ev.known()
			c, err := openTunnel(v.proxy(), p, target)
			if err != nil {
				t.Fatalf("after the target left: %v; want it answered before the exit's refusal", err)
			}
			_, _ = c.conn.Write([]byte("lost")) // may fail: the reset can be here already
			_, err = c.br.ReadByte()
			_ = c.conn.Close()
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("after the target left: client read %v, want a reset", err)
			}
			infos, err := v.ev.newClosed(before, 1)
			if err != nil {
				t.Fatal(err)
			}
			info := infos[0]
			var oe *tunnel.OpenError
			if !errors.As(info.Err, &oe) || oe.Code != tunnel.CodeRefused {
				t.Errorf("after the target left: record ended with %v, want an OpenError %s", info.Err, tunnel.CodeRefused)
			}
			if !info.Established.IsZero() {
				t.Errorf("after the target left: record established at %v, want never", info.Established)
			}
			if n := v.logs.countAt(slog.LevelInfo, "conn", info.ID.String()); n != 1 {
				t.Errorf("after the target left: %d INFO records about %s, want 1", n, info.ID)
			}

			// Forgotten: the refusal comes in the client's protocol again.
			before = v.ev.known()
			c, err = openTunnel(v.proxy(), p, target)
			if c != nil {
				_ = c.conn.Close()
			}
			if !errors.Is(err, errRefused) {
				t.Errorf("once forgotten: %v, want the proxy's refusal", err)
			}
			if infos, err := v.ev.newClosed(before, 1); err != nil {
				t.Error(err)
			} else if !errors.As(infos[0].Err, &oe) || oe.Code != tunnel.CodeRefused {
				t.Errorf("once forgotten: record ended with %v, want an OpenError %s", infos[0].Err, tunnel.CodeRefused)
			}
			v.finish(t)
		})
	}
}
