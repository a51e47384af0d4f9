package e2e

// Minimal clients of the proxy, HTTP CONNECT and SOCKS5, written out by
// hand so that a test can stop at any byte of the handshake, and the
// goroutines that stream bytes through an open tunnel.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"porthole/internal/socks5test"
)

type lcProto int

const (
	lcConnect lcProto = iota
	lcSOCKS5
)

func (p lcProto) String() string {
	if p == lcConnect {
		return "CONNECT"
	}
	return "SOCKS5"
}

var (
	// errRefused: the proxy answered the request with a failure.
	errRefused = errors.New("proxy refused the request")
	// errNoReply: the connection ended before the proxy's answer.
	errNoReply = errors.New("no reply from the proxy")
)

// lcClient is one client connection through the proxy.
type lcClient struct {
	conn  *net.TCPConn
	br    *bufio.Reader // everything read after the handshake goes through it
	laddr string
	proto lcProto
}

// dialProxy connects to the proxy; every later read and write on the
// connection has lcCycleTimeout in all.
func dialProxy(proxy string, p lcProto) (*lcClient, error) {
	d := net.Dialer{Timeout: lcCycleTimeout}
	c, err := d.Dial("tcp", proxy)
	if err != nil {
		return nil, fmt.Errorf("dial proxy: %w", err)
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetDeadline(time.Now().Add(lcCycleTimeout)); err != nil {
		_ = tc.Close()
		return nil, err
	}
	return &lcClient{conn: tc, br: bufio.NewReader(tc), laddr: tc.LocalAddr().String(), proto: p}, nil
}

// request sends the whole request for target (for SOCKS5 after the method
// negotiation) without waiting for the answer.
func (c *lcClient) request(target string) error {
	if c.proto == lcConnect {
		_, err := fmt.Fprintf(c.conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		return err
	}
	if _, err := c.conn.Write([]byte{5, 1, 0}); err != nil {
		return err
	}
	var m [2]byte
	if _, err := io.ReadFull(c.br, m[:]); err != nil {
		return fmt.Errorf("socks5 method reply: %w", err)
	}
	if m != [2]byte{5, 0} {
		return fmt.Errorf("socks5 method reply %x", m)
	}
	_, err := c.conn.Write(socks5Request(target))
	return err
}

func socks5Request(target string) []byte {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		panic(err) // the test's own targets
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		panic(err)
	}
	req := []byte{5, 1, 0}
	if ip := net.ParseIP(host).To4(); ip != nil {
		req = append(req, 1)
		req = append(req, ip...)
	} else {
		req = append(req, 3, byte(len(host)))
		req = append(req, host...)
	}
	return binary.BigEndian.AppendUint16(req, uint16(n))
}

// reply reads the proxy's answer: nil for success, errRefused for a
// failure answer, errNoReply (wrapping the read error) if there was none.
func (c *lcClient) reply() error {
	if c.proto == lcConnect {
		resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return fmt.Errorf("%w: %w", errNoReply, err)
		}
		if resp.StatusCode != http.StatusOK {
			_ = resp.Body.Close() // a short error text with a length
			return fmt.Errorf("%w: %s", errRefused, resp.Status)
		}
		// A 200 to CONNECT has no body: the tunnel follows, read through
		// c.br. (Its Body would read the tunnel: leave it alone.)
		return nil
	}
	hdr, err := socks5test.ReadReply(c.br)
	if errors.Is(err, socks5test.ErrAddressType) {
		return fmt.Errorf("socks5 reply %x: %w", hdr, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errNoReply, err)
	}
	if hdr[0] != 5 || hdr[2] != 0 {
		return fmt.Errorf("socks5 reply %x: malformed", hdr)
	}
	if hdr[1] != 0 {
		return fmt.Errorf("%w: socks5 reply code %d", errRefused, hdr[1])
	}
	return nil
}

// startRequest dials the proxy and sends the request for target without
// waiting for the answer. If that fails, the connection is closed.
func startRequest(proxy string, p lcProto, target string) (*lcClient, error) {
	c, err := dialProxy(proxy, p)
	if err != nil {
		return nil, err
	}
	if err := c.request(target); err != nil {
		_ = c.conn.Close()
		return nil, fmt.Errorf("request: %w", err)
	}
	return c, nil
}

// openTunnel dials the proxy, asks for target and reads the answer. A failed
// or missing answer is returned as is, with the client: the caller decides
// whether it may happen.
func openTunnel(proxy string, p lcProto, target string) (*lcClient, error) {
	c, err := startRequest(proxy, p, target)
	if err != nil {
		return nil, err
	}
	return c, c.reply()
}

// abort closes with a reset instead of a FIN.
func (c *lcClient) abort() {
	_ = c.conn.SetLinger(0)
	_ = c.conn.Close()
}

// hangUp closes or resets, as rst says.
func (c *lcClient) hangUp(rst bool) {
	if rst {
		c.abort()
		return
	}
	_ = c.conn.Close()
}

// timedOut reports whether err is the client's own deadline: something
// hung, which is a failure whatever the scenario.
func timedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// streamResult is what a streaming goroutine wrote before it stopped, and
// why it stopped (nil if it wrote everything).
type streamResult struct {
	n   int64
	err error
}

// startWriter writes payload to the tunnel; then, if halfClose, it closes
// the write side.
func startWriter(c *lcClient, payload []byte, halfClose bool) <-chan streamResult {
	ch := make(chan streamResult, 1)
	go func() {
		n, err := c.conn.Write(payload)
		if err == nil && halfClose {
			err = c.conn.CloseWrite()
		}
		ch <- streamResult{int64(n), err}
	}()
	return ch
}

// startPatternWriter writes the pattern stream to the tunnel until it has
// written limit bytes or a write fails.
func startPatternWriter(c *lcClient, limit int64) <-chan streamResult {
	ch := make(chan streamResult, 1)
	go func() {
		n, err := writePattern(c.conn, 0, limit)
		ch <- streamResult{n, err}
	}()
	return ch
}
