package inbound_test

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"testing"

	"porthole/core"
	"porthole/core/inbound"
	"porthole/core/registry"
)

// TestMaxConnsAnswersInProtocol: past the connection limit, a client gets a
// clear error in its own protocol (HTTP 503, SOCKS5 general failure, SOCKS4
// rejection), logged once; the connections already in use are not
// disturbed, and once one of them ends the next client is served.
func TestMaxConnsAnswersInProtocol(t *testing.T) {
	v := newEnv(t, func(c *core.Config) { c.MaxConns = 2 })
	v.noisy = true
	echo := newTCPOrigin(t, "tcp4", echoHandler)
	target := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), echo.port()).String()

	a := v.connect(t, target, nil)
	b := v.connect(t, target, nil)
	v.events.establishedOf(t, 2, func(info registry.Info) bool { return info.Target == target })

	// HTTP: 503 with a one-line reason.
	c := v.dial(t)
	if _, err := io.WriteString(c, "GET http://"+target+"/ HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	code, _, err := readHead(bufio.NewReader(c))
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("over the limit: status %d, %v; want 503", code, err)
	}
	c.Close()

	// SOCKS5: general failure.
	s5, rep := v.socks5Raw(t, socks5ConnectIPv4([4]byte{127, 0, 0, 1}, echo.port()))
	if rep != 0x01 {
		t.Fatalf("SOCKS5 over the limit: reply %#x, want 0x01", rep)
	}
	s5.Close()

	// The two tunnels in use still work.
	for _, conn := range []*bufConn{a, b} {
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if err := conn.SetReadDeadline(deadline()); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
			t.Fatalf("a tunnel in use was disturbed: %q %v", got, err)
		}
	}
	v.logs.waitConnRecords(t, 2, slog.LevelInfo)
	n := 0
	for _, r := range v.logs.connRecords(slog.LevelInfo) {
		if errors.Is(r.errAttr(), inbound.ErrTooManyConns) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d records about the limit, want one per refused client:\n%v", n, v.logs.all())
	}

	// Once a tunnel ends, a new client is served. The handler leaves the
	// count just after the Closed event, so a client arriving in between
	// may still be refused: a bounded number of tries, each a round trip.
	a.Close()
	v.events.closedOf(t, 1, func(info registry.Info) bool { return info.Target == target })
	for try := 0; ; try++ {
		c := v.dial(t)
		if _, err := io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		code, _, err := readHead(bufio.NewReader(c))
		c.Close()
		if err == nil && code == http.StatusOK {
			break
		}
		if try == 100 || code != http.StatusServiceUnavailable {
			t.Fatalf("after a tunnel ended: status %d, %v", code, err)
		}
	}
	b.Close()
}
