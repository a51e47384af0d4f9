// Package connecttest opens HTTP CONNECT tunnels through a proxy under
// test, the way a client does: the handshake the app's and the GUI's
// tests repeat before their own checks. Only tests import it.
package connecttest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Timeout bounds the dial and, as a deadline on the connection, the
// handshake. The deadline stays set when Dial returns: a test that holds
// the tunnel longer clears or moves it.
const Timeout = 10 * time.Second

// Dial opens a tunnel to target through the proxy at proxy and returns the
// connection, a reader holding what came after the answer (read the
// tunnel through it), and the answer, whatever its status. On an error the
// connection is closed.
func Dial(proxy, target string) (net.Conn, *bufio.Reader, *http.Response, error) {
	c, err := net.DialTimeout("tcp", proxy, Timeout)
	if err != nil {
		return nil, nil, nil, err
	}
	br, resp, err := handshake(c, target)
	if err != nil {
		_ = c.Close()
		return nil, nil, nil, err
	}
	return c, br, resp, nil
}

func handshake(c net.Conn, target string) (*bufio.Reader, *http.Response, error) {
	if err := c.SetDeadline(time.Now().Add(Timeout)); err != nil {
		return nil, nil, err
	}
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return nil, nil, fmt.Errorf("CONNECT %s through %s: %w", target, c.RemoteAddr(), err)
	}
	return br, resp, nil
}
