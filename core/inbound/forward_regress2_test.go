package inbound_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"porthole/core"
)

// A target that answers before reading a large upload and closes: the
// response tells the client the connection ends (it cannot go on with an
// unread body behind the response), instead of promising keep-alive.
func TestRegressEarlyAnswerToUploadSaysClose(t *testing.T) {
	v := newEnv(t, nil)
	origin := newTCPOrigin(t, "tcp4", func(_ *tcpOrigin, c *net.TCPConn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig\n")
		_ = c.Close()
	})
	c := v.dial(t)
	defer c.Close()
	target := fmt.Sprintf("127.0.0.1:%d", origin.port())
	if _, err := fmt.Fprintf(c, "POST http://%s/up HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", target, target, 64<<20); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = c.Write(make([]byte, 1<<20)) }() // part of the body; the rest never comes
	if err := c.SetReadDeadline(deadline()); err != nil {
		t.Fatal(err)
	}
	code, h, err := readHead(bufio.NewReader(c))
	if err != nil || code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, %v; want 413", code, err)
	}
	if !strings.EqualFold(h.Get("Connection"), "close") {
		t.Fatalf("413 with an unread body behind it must say Connection: close; headers %v", h)
	}
}

// A target that closes without answering: the client's 502 comes after the
// record is closed, so nothing shows as live while the proxy lingers.
func TestRegressBadGatewayAfterRecordClosed(t *testing.T) {
	v := newEnv(t, nil)
	v.noisy = true
	origin := newTCPOrigin(t, "tcp4", func(_ *tcpOrigin, c *net.TCPConn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			_ = c.Close()
		}
	})
	c := v.dial(t)
	defer c.Close()
	target := fmt.Sprintf("127.0.0.1:%d", origin.port())
	if _, err := fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(deadline()); err != nil {
		t.Fatal(err)
	}
	code, _, err := readHead(bufio.NewReader(c))
	if err != nil || code != http.StatusBadGateway {
		t.Fatalf("status %d, %v; want 502", code, err)
	}
	if live := v.e.Registry().Snapshot().Live; len(live) != 0 {
		t.Fatalf("%d records still live when the 502 arrived: %+v", len(live), live)
	}
}

// A body to a proxy page that stops half-way gets 408, in HTTP.
func TestRegressPageBodyTimeoutAnswers408(t *testing.T) {
	v := newEnv(t, func(c *core.Config) { c.HeaderTimeout = 300e6 })
	v.noisy = true
	c := v.dial(t)
	defer c.Close()
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: proxy\r\nContent-Length: 10\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(deadline()); err != nil {
		t.Fatal(err)
	}
	code, _, err := readHead(bufio.NewReader(c))
	if err != nil || code != http.StatusRequestTimeout {
		t.Fatalf("status %d, %v; want 408", code, err)
	}
}
