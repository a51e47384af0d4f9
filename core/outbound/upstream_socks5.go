package outbound

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
)

func socks5ReplyText(c byte) string {
	switch c {
	case 0x01:
		return "general failure"
	case 0x02:
		return "not allowed by its rules"
	case 0x03:
		return "network unreachable"
	case 0x04:
		return "host unreachable"
	case 0x05:
		return "connection refused"
	case 0x06:
		return "TTL expired"
	case 0x07:
		return "command not supported"
	case 0x08:
		return "address type not supported"
	}
	return "unknown code"
}

// socks5Failure is the kind of failure a reply code stands for.
func socks5Failure(c byte) Failure {
	switch c {
	case 0x02:
		return FailDenied
	case 0x03, 0x04:
		return FailUnreachable
	case 0x05:
		return FailRefused
	case 0x06:
		return FailTimeout
	}
	return FailOther
}

const (
	socksVersion   = 0x05
	socksNoAuth    = 0x00
	socksUserPass  = 0x02
	socksNoMethods = 0xFF
)

// socks5Greet offers our methods and authenticates (RFC 1929) if the
// proxy picks user/password. A refusal is the exit's auth failure.
func (x *upstreamExit) socks5Greet(c net.Conn) error {
	hello := []byte{socksVersion, 1, socksNoAuth}
	if x.cfg.Username != "" {
		hello = []byte{socksVersion, 2, socksNoAuth, socksUserPass}
	}
	if _, err := c.Write(hello); err != nil {
		return &exitFailure{err: fmt.Errorf("writing to the proxy: %w", err)}
	}
	var reply [2]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return &exitFailure{err: fmt.Errorf("%w: reading the method: %w", ErrUpstreamProtocol, err)}
	}
	if reply[0] != socksVersion {
		return &exitFailure{err: fmt.Errorf("%w: version %#02x", ErrUpstreamProtocol, reply[0])}
	}
	switch reply[1] {
	case socksNoAuth:
		return nil
	case socksUserPass:
		if x.cfg.Username == "" {
			return &exitFailure{err: fmt.Errorf("%w (it wants a username and password)", ErrUpstreamAuth), auth: true}
		}
	case socksNoMethods:
		return &exitFailure{err: fmt.Errorf("%w (no acceptable method)", ErrUpstreamAuth), auth: true}
	default:
		return &exitFailure{err: fmt.Errorf("%w: method %#02x", ErrUpstreamProtocol, reply[1])}
	}
	auth := make([]byte, 0, 3+len(x.cfg.Username)+len(x.cfg.Password))
	auth = append(auth, 0x01, byte(len(x.cfg.Username)))
	auth = append(auth, x.cfg.Username...)
	auth = append(auth, byte(len(x.cfg.Password)))
	auth = append(auth, x.cfg.Password...)
	if _, err := c.Write(auth); err != nil {
		return &exitFailure{err: fmt.Errorf("writing to the proxy: %w", err)}
	}
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return &exitFailure{err: fmt.Errorf("%w: reading the authentication answer: %w", ErrUpstreamProtocol, err)}
	}
	if reply[1] != 0x00 {
		return &exitFailure{err: ErrUpstreamAuth, auth: true}
	}
	return nil
}

// socks5Connect greets, authenticates and asks for target, sending names
// as names (the proxy resolves them: socks5h).
func (x *upstreamExit) socks5Connect(ctx context.Context, c net.Conn, target string) (net.Conn, error) {
	host, port, err := SplitTarget(target)
	if err != nil {
		return nil, err
	}
	req := []byte{socksVersion, 0x01, 0x00}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() || ip.Is4In6() {
			req = append(req, 0x01)
			a := ip.Unmap().As4()
			req = append(req, a[:]...)
		} else {
			req = append(req, 0x04)
			a := ip.As16()
			req = append(req, a[:]...)
		}
	} else {
		if len(host) > 255 {
			return nil, fmt.Errorf("host name %q: over 255 bytes", host)
		}
		req = append(req, 0x03, byte(len(host)))
		req = append(req, host...)
	}
	req = binary.BigEndian.AppendUint16(req, port)
	err = withDeadline(ctx, c, func() error {
		if err := x.socks5Greet(c); err != nil {
			return err
		}
		if _, err := c.Write(req); err != nil {
			return &exitFailure{err: fmt.Errorf("writing to the proxy: %w", err)}
		}
		return readSOCKS5Reply(c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// readSOCKS5Reply reads the reply to CONNECT whole (its bound address
// too, so the stream starts at the target's first byte).
func readSOCKS5Reply(c net.Conn) error {
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return &exitFailure{err: fmt.Errorf("%w: reading the reply: %w", ErrUpstreamProtocol, err)}
	}
	if head[0] != socksVersion {
		return &exitFailure{err: fmt.Errorf("%w: reply version %#02x", ErrUpstreamProtocol, head[0])}
	}
	if head[1] != 0x00 {
		// The connection is closed after a refusal: the rest of the
		// reply does not matter (some proxies do not send it).
		return &SOCKS5ReplyError{Code: head[1]}
	}
	var n int
	switch head[3] {
	case 0x01:
		n = 4
	case 0x04:
		n = 16
	case 0x03:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return &exitFailure{err: fmt.Errorf("%w: reading the reply: %w", ErrUpstreamProtocol, err)}
		}
		n = int(l[0])
	default:
		return &exitFailure{err: fmt.Errorf("%w: reply address type %#02x", ErrUpstreamProtocol, head[3])}
	}
	rest := make([]byte, n+2)
	if _, err := io.ReadFull(c, rest); err != nil {
		return &exitFailure{err: fmt.Errorf("%w: reading the reply: %w", ErrUpstreamProtocol, err)}
	}
	return nil
}

// socks5Probe greets and authenticates, and asks for nothing.
func (x *upstreamExit) socks5Probe(c net.Conn) error { return x.socks5Greet(c) }
