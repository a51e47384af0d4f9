package inbound

import (
	"net"

	"porthole/core/registry"
)

// socksAnswer writes a SOCKS reply: granted when err is nil (bound is the
// upstream's local address), else refused because of err (ErrTooManyConns
// when over MaxConns, or the dial's error).
type socksAnswer func(err error, bound net.Addr) error

// serveSOCKS is what SOCKS4 and SOCKS5 do with a parsed CONNECT: refuse it
// when over MaxConns, dial, answer, then relay. Only the replies differ.
func (c *clientConn) serveSOCKS(proto registry.Proto, req socksRequest, answer socksAnswer) error {
	if c.rejected {
		if err := answer(ErrTooManyConns, nil); err != nil {
			return err
		}
		return ErrTooManyConns
	}
	u, err := c.dial(c.id, proto, req.target, req.host)
	if err != nil {
		// dial logged it; the reply may fail if the client left: nothing
		// more to say then.
		_ = answer(err, nil)
		return nil
	}
	if err := answer(nil, u.conn.LocalAddr()); err != nil {
		c.closeUpstream(u, err)
		return nil
	}
	c.relayAfterSetup(u)
	return nil
}
