// Package socks5test reads what a SOCKS5 proxy answers (RFC 1928), for
// tests that talk to the proxy byte by byte to see its exact reply codes.
// Only tests import it.
package socks5test

import (
	"errors"
	"fmt"
	"io"
)

// ErrAddressType is a reply whose bound address has a type other than
// IPv4 or IPv6 (a proxy has no reason to answer with a name).
var ErrAddressType = errors.New("socks5 reply: bad address type")

// ReadReply reads one reply to a request: its head (version, reply code,
// reserved byte, address type), which it returns, and the bound address
// and port after it, which it discards. A read error is returned as it
// came; an unknown address type is ErrAddressType.
func ReadReply(r io.Reader) (head [4]byte, err error) {
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return head, err
	}
	var n int
	switch head[3] {
	case 0x01:
		n = 4 + 2
	case 0x04:
		n = 16 + 2
	default:
		return head, fmt.Errorf("%w %#x", ErrAddressType, head[3])
	}
	if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
		return head, err
	}
	return head, nil
}
