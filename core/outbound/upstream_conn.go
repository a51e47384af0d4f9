package outbound

import "net"

// The connections an upstream exit returns: they name their exit.

// named wraps a proxy connection so that it names its exit.
func (x *upstreamExit) named(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &tcpConn{TCPConn: tc, name: x.cfg.Name}
	}
	return &namedConn{Conn: c, name: x.cfg.Name}
}

// tcpConn is a plain proxy connection naming its exit. Bare gives the
// socket back, so inbound relays socket to socket (splice on Linux).
type tcpConn struct {
	*net.TCPConn
	name string
}

func (c *tcpConn) ExitName() string { return c.name }
func (c *tcpConn) Bare() net.Conn   { return c.TCPConn }

// namedConn is a TLS or buffered proxy connection naming its exit.
type namedConn struct {
	net.Conn
	name string
}

func (c *namedConn) ExitName() string { return c.name }

// CloseWrite half-closes (relay's half-close): TLS sends close_notify.
func (c *namedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
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
