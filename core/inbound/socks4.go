package inbound

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"

	"porthole/core/outbound"
	"porthole/core/registry"
)

// SOCKS4 and SOCKS4a (a name instead of an address, given as 0.0.0.x).
const (
	socks4Version    = 0x04
	socks4CmdConnect = 0x01
	socks4Granted    = 0x5A
	socks4Rejected   = 0x5B
	socks4MaxField   = 255
)

// readSOCKS4 parses a SOCKS4/4a request and answers protocol errors itself.
// SOCKS4 has no password, so with auth set every request is refused.
func readSOCKS4(br *bufio.Reader, w io.Writer, auth *Auth) (socksRequest, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return socksRequest{}, err
	}
	port := binary.BigEndian.Uint16(hdr[2:4])
	ip := netip.AddrFrom4([4]byte(hdr[4:8]))
	if _, err := readNulTerminated(br); err != nil { // user id, unused
		return socksRequest{}, err
	}
	host := ip.String()
	if b := ip.As4(); b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] != 0 {
		name, err := readNulTerminated(br)
		if err != nil {
			return socksRequest{}, err
		}
		host = name
	}
	reject := func(err error) (socksRequest, error) {
		if werr := writeSOCKS4Reply(w, socks4Rejected); werr != nil {
			return socksRequest{}, werr
		}
		return socksRequest{}, err
	}
	if hdr[1] != socks4CmdConnect {
		return reject(fmt.Errorf("socks4: command %d (only CONNECT is supported): %w", hdr[1], ErrUnsupportedCommand))
	}
	if auth != nil {
		return reject(fmt.Errorf("socks4 cannot authenticate; use SOCKS5 with a password: %w", ErrAuthFailed))
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if ip.IsUnspecified() {
		return reject(fmt.Errorf("socks4: destination 0.0.0.0: %w", ErrBadRequest))
	}
	if _, _, err := outbound.SplitTarget(target); err != nil {
		return reject(fmt.Errorf("socks4: %w: %w", ErrBadRequest, err))
	}
	return socksRequest{host: host, port: port, target: target}, nil
}

// readNulTerminated reads a field ending in NUL, at most socks4MaxField bytes.
func readNulTerminated(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		if c == 0 {
			return string(b), nil
		}
		if len(b) == socks4MaxField {
			return "", fmt.Errorf("socks4: field longer than %d bytes: %w", socks4MaxField, ErrBadRequest)
		}
		b = append(b, c)
	}
}

func writeSOCKS4Reply(w io.Writer, code byte) error {
	_, err := w.Write([]byte{0x00, code, 0, 0, 0, 0, 0, 0})
	return err
}

func (c *clientConn) serveSOCKS4() error {
	req, err := readSOCKS4(c.br, c.raw, c.s.cfg.Auth)
	if err != nil {
		return err
	}
	// SOCKS4 has one refusal whatever the reason, and no bound address.
	return c.serveSOCKS(registry.ProtoSOCKS4, req, func(err error, _ net.Addr) error {
		if err != nil {
			return writeSOCKS4Reply(c.raw, socks4Rejected)
		}
		return writeSOCKS4Reply(c.raw, socks4Granted)
	})
}
