package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// dialFunc opens a connection that reaches the origin.
type dialFunc func() (net.Conn, error)

const dialTimeout = 10 * time.Second

func directDialer(origin string) dialFunc {
	return func() (net.Conn, error) {
		return net.DialTimeout("tcp", origin, dialTimeout)
	}
}

// connectDialer reaches target through an HTTP proxy with CONNECT.
func connectDialer(proxy, target string) dialFunc {
	return func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", proxy, dialTimeout)
		if err != nil {
			return nil, fmt.Errorf("dial proxy %s: %w", proxy, err)
		}
		c.SetDeadline(time.Now().Add(dialTimeout))
		_, err = fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("write CONNECT: %w", err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("read CONNECT response: %w", err)
		}
		// A 200 to CONNECT has no body; the bytes after it are the tunnel,
		// so the body is neither read nor closed (closing would not read).
		if resp.StatusCode != http.StatusOK {
			c.Close()
			return nil, fmt.Errorf("CONNECT %s: %s", target, resp.Status)
		}
		c.SetDeadline(time.Time{})
		if br.Buffered() > 0 {
			// Bytes that arrived with the response belong to the tunnel.
			return &readerConn{Conn: c, r: io.MultiReader(br, c)}, nil
		}
		return c, nil
	}
}

// readerConn is a net.Conn whose first bytes come from a buffer.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
