package inbound

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"

	"porthole/core/outbound"
	"porthole/core/registry"
)

// SOCKS5 (RFC 1928) and its username/password method (RFC 1929).
const (
	socks5Version    = 0x05
	socks5AuthNone   = 0x00
	socks5AuthPasswd = 0x02
	socks5NoMethod   = 0xFF
	socks5CmdConnect = 0x01
	socks5AtypIPv4   = 0x01
	socks5AtypDomain = 0x03
	socks5AtypIPv6   = 0x04
	passwdVersion    = 0x01

	repSucceeded        = 0x00
	repGeneralFailure   = 0x01
	repNotAllowed       = 0x02
	repNetUnreachable   = 0x03
	repHostUnreachable  = 0x04
	repRefused          = 0x05
	repTTLExpired       = 0x06
	repCmdNotSupported  = 0x07
	repAtypNotSupported = 0x08
)

// socksRequest is a parsed CONNECT request.
type socksRequest struct {
	host   string // name or IP literal, no brackets
	port   uint16
	target string // host:port
}

// readSOCKS5 runs the SOCKS5 handshake up to the request: method
// negotiation, authentication when auth is set, and the request itself. It
// answers protocol errors itself (no acceptable method, bad credentials,
// unsupported command or address type); the caller answers the CONNECT.
func readSOCKS5(br *bufio.Reader, w io.Writer, auth *Auth) (socksRequest, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return socksRequest{}, err
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return socksRequest{}, err
	}
	want := byte(socks5AuthNone)
	if auth != nil {
		want = socks5AuthPasswd
	}
	if !contains(methods, want) {
		if _, err := w.Write([]byte{socks5Version, socks5NoMethod}); err != nil {
			return socksRequest{}, err
		}
		if auth != nil {
			return socksRequest{}, fmt.Errorf("socks5: client offered no username/password method: %w", ErrAuthFailed)
		}
		return socksRequest{}, fmt.Errorf("socks5: client offered no method we support: %w", ErrBadRequest)
	}
	if _, err := w.Write([]byte{socks5Version, want}); err != nil {
		return socksRequest{}, err
	}
	if auth != nil {
		if err := readSOCKS5Password(br, w, auth); err != nil {
			return socksRequest{}, err
		}
	}
	return readSOCKS5Request(br, w)
}

func readSOCKS5Password(br *bufio.Reader, w io.Writer, auth *Auth) error {
	ver, err := br.ReadByte()
	if err != nil {
		return err
	}
	if ver != passwdVersion {
		return fmt.Errorf("socks5: username/password version %d: %w", ver, ErrBadRequest)
	}
	user, err := readLenPrefixed(br)
	if err != nil {
		return err
	}
	pass, err := readLenPrefixed(br)
	if err != nil {
		return err
	}
	if !auth.check(user, pass) {
		if _, err := w.Write([]byte{passwdVersion, 0x01}); err != nil {
			return err
		}
		return fmt.Errorf("socks5: wrong username or password for %q: %w", user, ErrAuthFailed)
	}
	_, err = w.Write([]byte{passwdVersion, 0x00})
	return err
}

func readSOCKS5Request(br *bufio.Reader, w io.Writer) (socksRequest, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return socksRequest{}, err
	}
	if hdr[0] != socks5Version {
		return socksRequest{}, fmt.Errorf("socks5: request version %d: %w", hdr[0], ErrBadRequest)
	}
	var host string
	switch hdr[3] {
	case socks5AtypIPv4, socks5AtypIPv6:
		n := 4
		if hdr[3] == socks5AtypIPv6 {
			n = 16
		}
		ip := make([]byte, n)
		if _, err := io.ReadFull(br, ip); err != nil {
			return socksRequest{}, err
		}
		a, _ := netip.AddrFromSlice(ip) // ok is always true: ip is 4 or 16 bytes
		host = a.String()
	case socks5AtypDomain:
		name, err := readLenPrefixed(br)
		if err != nil {
			return socksRequest{}, err
		}
		host = name
	default:
		if err := writeSOCKS5Reply(w, repAtypNotSupported, nil); err != nil {
			return socksRequest{}, err
		}
		return socksRequest{}, fmt.Errorf("socks5: address type %d: %w", hdr[3], ErrBadRequest)
	}
	var pb [2]byte
	if _, err := io.ReadFull(br, pb[:]); err != nil {
		return socksRequest{}, err
	}
	port := binary.BigEndian.Uint16(pb[:])
	if hdr[1] != socks5CmdConnect {
		if err := writeSOCKS5Reply(w, repCmdNotSupported, nil); err != nil {
			return socksRequest{}, err
		}
		return socksRequest{}, fmt.Errorf("socks5: command %d (only CONNECT is supported): %w", hdr[1], ErrUnsupportedCommand)
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if _, _, err := outbound.SplitTarget(target); err != nil {
		if werr := writeSOCKS5Reply(w, repGeneralFailure, nil); werr != nil {
			return socksRequest{}, werr
		}
		return socksRequest{}, fmt.Errorf("socks5: %w: %w", ErrBadRequest, err)
	}
	return socksRequest{host: host, port: port, target: target}, nil
}

// readLenPrefixed reads a one-byte length and that many bytes (1 to 255).
func readLenPrefixed(br *bufio.Reader) (string, error) {
	n, err := br.ReadByte()
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// writeSOCKS5Reply answers a request; bound is the address we connected
// from, or nil (0.0.0.0:0) when there is none or it is not an IP.
func writeSOCKS5Reply(w io.Writer, rep byte, bound net.Addr) error {
	buf := make([]byte, 0, 22)
	buf = append(buf, socks5Version, rep, 0x00)
	ip, port := netip.IPv4Unspecified(), uint16(0)
	if ta, ok := bound.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		ip, port = ap.Addr().Unmap(), ap.Port()
	}
	if ip.Is4() {
		buf = append(buf, socks5AtypIPv4)
	} else {
		buf = append(buf, socks5AtypIPv6)
	}
	buf = append(buf, ip.AsSlice()...)
	buf = binary.BigEndian.AppendUint16(buf, port)
	_, err := w.Write(buf)
	return err
}

// socks5Reply is the reply code for a dial failure.
func socks5Reply(err error) byte {
	var up *outbound.SOCKS5ReplyError
	if errors.As(err, &up) {
		return up.Code // an upstream SOCKS5 proxy's answer, passed on
	}
	switch outbound.Classify(err) {
	case outbound.FailRefused:
		return repRefused
	case outbound.FailUnreachable, outbound.FailNotFound, outbound.FailTimeout:
		return repHostUnreachable
	case outbound.FailDenied:
		return repNotAllowed
	}
	return repGeneralFailure
}

func (c *clientConn) serveSOCKS5() error {
	req, err := readSOCKS5(c.br, c.raw, c.s.cfg.Auth)
	if err != nil {
		return err
	}
	return c.serveSOCKS(registry.ProtoSOCKS5, req, func(err error, bound net.Addr) error {
		switch {
		case err == nil:
			return writeSOCKS5Reply(c.raw, repSucceeded, bound)
		case errors.Is(err, ErrTooManyConns):
			return writeSOCKS5Reply(c.raw, repGeneralFailure, nil)
		}
		return writeSOCKS5Reply(c.raw, socks5Reply(err), nil)
	})
}

func contains(b []byte, x byte) bool {
	for _, v := range b {
		if v == x {
			return true
		}
	}
	return false
}
