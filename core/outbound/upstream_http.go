package outbound

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// probeTarget is what the HTTP probe asks a CONNECT to: the discard port
// of the proxy's own loopback, so the probe needs no DNS and reaches
// nothing outside the proxy's machine. Any answer but 407 (or 401) says
// the proxy is alive and takes our credentials.
const probeTarget = "127.0.0.1:9"

// connectRequest is the CONNECT request for target, with Basic
// credentials when configured.
func (x *upstreamExit) connectRequest(target string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if x.cfg.Username != "" {
		cred := base64.StdEncoding.EncodeToString([]byte(x.cfg.Username + ":" + x.cfg.Password))
		fmt.Fprintf(&b, "Proxy-Authorization: Basic %s\r\n", cred)
	}
	b.WriteString("\r\n")
	return b.String()
}

// readConnectAnswer reads the proxy's answer to a CONNECT. The body of a
// refusal is not read: the connection is closed after one.
func readConnectAnswer(br *bufio.Reader) error {
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return &exitFailure{err: fmt.Errorf("%w: reading the CONNECT answer: %w", ErrUpstreamProtocol, err)}
	}
	if res.StatusCode/100 == 2 {
		return nil
	}
	// 407 is the standard answer; some proxies (tinyproxy) answer a
	// CONNECT with bad credentials 401.
	if res.StatusCode == http.StatusProxyAuthRequired || res.StatusCode == http.StatusUnauthorized {
		return &exitFailure{err: ErrUpstreamAuth, auth: true}
	}
	return &UpstreamHTTPError{StatusCode: res.StatusCode, Status: res.Status}
}

// httpConnect asks the proxy for a tunnel to target. Every connection is
// a CONNECT, plain HTTP requests included: the proxy then never sees the
// request itself, and the same path carries everything.
func (x *upstreamExit) httpConnect(ctx context.Context, c net.Conn, target string) (net.Conn, error) {
	if _, _, err := SplitTarget(target); err != nil {
		return nil, err
	}
	var br *bufio.Reader
	err := withDeadline(ctx, c, func() error {
		if _, err := io.WriteString(c, x.connectRequest(target)); err != nil {
			return &exitFailure{err: fmt.Errorf("writing to the proxy: %w", err)}
		}
		br = bufio.NewReaderSize(c, 1024)
		return readConnectAnswer(br)
	})
	if err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		// The target spoke first and its bytes came with the answer.
		return &bufferedConn{Conn: c, br: br}, nil
	}
	return c, nil
}

// httpProbe is a CONNECT to probeTarget: only 407 or 401 (or no HTTP
// answer) counts against the proxy.
func (x *upstreamExit) httpProbe(c net.Conn) error {
	if _, err := io.WriteString(c, x.connectRequest(probeTarget)); err != nil {
		return err
	}
	err := readConnectAnswer(bufio.NewReaderSize(c, 1024))
	if _, refused := err.(*UpstreamHTTPError); refused {
		return nil // alive, and past the credentials
	}
	return err
}

// bufferedConn is a proxy connection whose first bytes from the target
// were read with the proxy's answer: they are returned first.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) {
	if b.br != nil {
		if b.br.Buffered() > 0 {
			return b.br.Read(p)
		}
		b.br = nil
	}
	return b.Conn.Read(p)
}

// CloseWrite half-closes the proxy connection (relay's half-close).
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return b.Conn.Close()
}
