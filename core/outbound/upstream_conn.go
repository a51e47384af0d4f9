package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// The connections an upstream exit returns: they name their exit, and a
// break that was the exit's death reads "exit lost: NAME" (ExitLost).

// named wraps a proxy connection so that it names its exit.
func (x *upstreamExit) named(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &tcpConn{TCPConn: tc, x: x}
	}
	return &namedConn{Conn: c, x: x}
}

// tcpConn is a plain proxy connection naming its exit. Bare gives the
// socket back, so inbound relays socket to socket (splice on Linux).
type tcpConn struct {
	*net.TCPConn
	x *upstreamExit
}

func (c *tcpConn) ExitName() string           { return c.x.cfg.Name }
func (c *tcpConn) Bare() net.Conn             { return c.TCPConn }
func (c *tcpConn) exitLost(err error) error   { return c.x.lost(err) }
func (c *namedConn) exitLost(err error) error { return c.x.lost(err) }

// namedConn is a TLS or buffered proxy connection naming its exit.
type namedConn struct {
	net.Conn
	x *upstreamExit
}

func (c *namedConn) ExitName() string { return c.x.cfg.Name }

// CloseWrite half-closes (relay's half-close): TLS sends close_notify.
func (c *namedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Reset ends the connection as an abort (closed by the user, idle, the
// proxy stopping, a failed relay): the socket under TLS (and under the
// buffer of bytes that came with the CONNECT answer) closes at once with
// a reset, and no close_notify. A close_notify would tell the proxy the
// stream ended cleanly, and writing it can wait seconds on a full send
// buffer, where an abort must not block (it runs under the registry's
// lock).
func (c *namedConn) Reset() error {
	conn := c.Conn
	if b, ok := conn.(*bufferedConn); ok {
		conn = b.Conn
	}
	if n, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = n.NetConn()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // the close sends RST; its error changes nothing here
	}
	return conn.Close()
}

// Bare is the socket under a group's connection when relaying may use it
// directly (a plain proxy connection: after the handshake the bytes are
// the target's), else c itself. The exit's name is read before.
func Bare(c net.Conn) net.Conn {
	if b, ok := c.(interface{ Bare() net.Conn }); ok {
		return b.Bare()
	}
	return c
}

// ExitLost is how a connection the group dialed (c, before Bare) ended:
// err, or an *ExitLostError naming the exit when err is a break and the
// exit is down. The relay runs on the bare socket, so its caller asks
// here once the relay ended, rather than the wrapper on each read.
// A porthole exit's streams say so themselves.
func ExitLost(c net.Conn, err error) error {
	if l, ok := c.(interface{ exitLost(error) error }); ok && err != nil {
		return l.exitLost(err)
	}
	return err
}

// lostCheckTimeout bounds the look at the proxy after a break.
const lostCheckTimeout = 2 * time.Second

// lost maps a connection's break to "exit lost: NAME" when the proxy is
// down. A killed proxy resets its connections (an EOF says nothing: the
// target may have ended), but so may the target or the client: the
// exit's state decides, and when the exit is still thought up, a connect
// to the proxy (bounded, on loopback instant) tells; a failed one is a
// dial failure's report, so the group learns now and not at the next
// probe.
func (x *upstreamExit) lost(err error) error {
	if errors.Is(err, ErrExitLost) || !isBreak(err) {
		return err
	}
	switch x.status().State {
	case ExitDown, ExitAuthFailed:
		return &ExitLostError{Name: x.cfg.Name, Err: err}
	case ExitUp, ExitConnecting:
	default:
		return err // stopped: the proxy stopping ended it
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(lostCheckTimeout, x.cfg.Timeout))
	defer cancel()
	var d net.Dialer
	c, cerr := d.DialContext(ctx, "tcp", x.addr)
	if cerr == nil {
		_ = c.Close() // only asking whether the proxy listens
		return err
	}
	x.report(&exitFailure{err: fmt.Errorf("cannot reach the proxy %s: %w", x.addr, cerr)})
	return &ExitLostError{Name: x.cfg.Name, Err: err}
}

// isBreak says whether err is a connection torn down rather than ended.
func isBreak(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}
