package inbound

// Fuzz targets for what the proxy parses from untrusted clients: the SOCKS5
// and SOCKS4/4a handshakes and the HTTP front's request reading under the
// header limit. Run one for longer with, for example:
//
//	go test -run '^$' -fuzz '^FuzzSOCKS5$' -fuzztime 60s ./core/inbound/
//
// Without -fuzz, `go test` runs the seeds below and testdata/fuzz.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"porthole/core/outbound"
)

var fzAuth = &Auth{Username: "user", Password: "pa:ss"}

// fzSOCKS5 builds a SOCKS5 handshake: greeting, optional RFC 1929
// sub-negotiation, then a request.
func fzSOCKS5(methods []byte, userpass []string, cmd, atyp byte, addr []byte, port uint16) []byte {
	b := []byte{5, byte(len(methods))}
	b = append(b, methods...)
	if userpass != nil {
		b = append(b, 1, byte(len(userpass[0])))
		b = append(b, userpass[0]...)
		b = append(b, byte(len(userpass[1])))
		b = append(b, userpass[1]...)
	}
	b = append(b, 5, cmd, 0, atyp)
	if atyp == socks5AtypDomain {
		b = append(b, byte(len(addr)))
	}
	b = append(b, addr...)
	return binary.BigEndian.AppendUint16(b, port)
}

// fzParseError: every failure is the input running out or one of the
// package's sentinels, so callers can tell bad input from a client leaving.
func fzParseError(t *testing.T, err error) {
	t.Helper()
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, ErrBadRequest), errors.Is(err, ErrAuthFailed), errors.Is(err, ErrUnsupportedCommand):
	default:
		t.Fatalf("unclassified parse error %T: %v", err, err)
	}
}

// fzTarget checks a parsed request: the target is one the dialer accepts,
// its parts agree with host and port, and the port is 1 to 65535.
func fzTarget(t *testing.T, req socksRequest) {
	t.Helper()
	host, port, err := outbound.SplitTarget(req.target)
	if err != nil {
		t.Fatalf("accepted target %q fails SplitTarget: %v", req.target, err)
	}
	if port < 1 || port != req.port || host != req.host {
		t.Fatalf("target %q splits into %q, %d; request says %q, %d", req.target, host, port, req.host, req.port)
	}
}

// fzSeeds adds every seed twice: with a proxy that wants no credentials,
// and with one that wants fzAuth's.
func fzSeeds(f *testing.F, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
}

// fzAuthIf is the proxy's credentials for a fuzz input: fzAuth when
// withAuth, none otherwise.
func fzAuthIf(withAuth bool) *Auth {
	if withAuth {
		return fzAuth
	}
	return nil
}

func FuzzSOCKS5(f *testing.F) {
	v4 := []byte{127, 0, 0, 1}
	v6 := netip.MustParseAddr("2001:db8::1").AsSlice()
	up := []string{"user", "pa:ss"}
	fzSeeds(f, [][]byte{
		fzSOCKS5([]byte{0}, nil, 1, 1, v4, 80),
		fzSOCKS5([]byte{0, 2}, nil, 1, 4, v6, 443),
		fzSOCKS5([]byte{0}, nil, 1, 3, []byte("example.com"), 8080),
		fzSOCKS5([]byte{0}, nil, 1, 3, []byte("example.com."), 1),
		fzSOCKS5([]byte{0}, nil, 1, 3, []byte("::1"), 65535),
		fzSOCKS5([]byte{0}, nil, 1, 3, []byte("fe80::1%eth0"), 22),
		fzSOCKS5([]byte{2}, up, 1, 1, v4, 80),
		fzSOCKS5([]byte{2}, []string{"user", "wrong"}, 1, 1, v4, 80),
		fzSOCKS5([]byte{2}, []string{"", ""}, 1, 1, v4, 80),
		fzSOCKS5([]byte{0}, nil, 1, 1, v4, 0),                  // port 0
		fzSOCKS5([]byte{0}, nil, 2, 1, v4, 80),                 // BIND
		fzSOCKS5([]byte{0}, nil, 3, 1, v4, 80),                 // UDP ASSOCIATE
		fzSOCKS5([]byte{0}, nil, 1, 9, nil, 80),                // bad address type
		fzSOCKS5([]byte{0}, nil, 1, 3, nil, 80),                // empty name
		fzSOCKS5([]byte{0}, nil, 1, 3, []byte("a b\x00c"), 80), // junk name
		fzSOCKS5([]byte{0}, nil, 1, 3, bytes.Repeat([]byte("a"), 255), 80),
		fzSOCKS5(nil, nil, 1, 1, v4, 80),                // no methods
		fzSOCKS5([]byte{1, 3, 0x80}, nil, 1, 1, v4, 80), // none acceptable
		{5, 1},
		{5},
		{},
		{5, 255},
	})
	f.Fuzz(func(t *testing.T, data []byte, withAuth bool) {
		auth := fzAuthIf(withAuth)
		var w bytes.Buffer
		req, err := readSOCKS5(bufio.NewReader(bytes.NewReader(data)), &w, auth)
		fzSOCKS5Replies(t, w.Bytes(), auth != nil, err)
		if err != nil {
			fzParseError(t, err)
			return
		}
		fzTarget(t, req)
	})
}

// fzSOCKS5Replies checks what readSOCKS5 wrote: a 2-byte method selection,
// then (with a password) a 2-byte RFC 1929 status, then at most one 10- or
// 22-byte failure reply. On success the CONNECT reply is the caller's: no
// request reply may have been written.
func fzSOCKS5Replies(t *testing.T, out []byte, withAuth bool, err error) {
	t.Helper()
	if len(out) == 0 {
		if err == nil {
			t.Fatal("request accepted without a method selection reply")
		}
		return
	}
	if len(out) < 2 || out[0] != socks5Version {
		t.Fatalf("method selection reply % x", out)
	}
	want := byte(socks5AuthNone)
	if withAuth {
		want = socks5AuthPasswd
	}
	switch out[1] {
	case socks5NoMethod:
		if len(out) != 2 || err == nil {
			t.Fatalf("no acceptable method, then wrote % x, err %v", out[2:], err)
		}
		if withAuth && !errors.Is(err, ErrAuthFailed) || !withAuth && !errors.Is(err, ErrBadRequest) {
			t.Fatalf("no acceptable method: err %v", err)
		}
		return
	case want:
	default:
		t.Fatalf("selected method %#x (auth %v)", out[1], withAuth)
	}
	out = out[2:]
	if withAuth && len(out) > 0 {
		if len(out) < 2 || out[0] != passwdVersion || out[1] > 1 {
			t.Fatalf("password status reply % x", out)
		}
		if out[1] == 1 {
			if len(out) != 2 || !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("password refused, then wrote % x, err %v", out[2:], err)
			}
			return
		}
		out = out[2:]
	} else if withAuth && err == nil {
		t.Fatal("request accepted without a password status reply")
	}
	if len(out) == 0 {
		return
	}
	if err == nil {
		t.Fatalf("request accepted, yet a reply was written: % x", out)
	}
	var wantErr error
	switch {
	case len(out) == 10 && out[3] == socks5AtypIPv4, len(out) == 22 && out[3] == socks5AtypIPv6:
	default:
		t.Fatalf("request reply of %d bytes: % x", len(out), out)
	}
	if out[0] != socks5Version || out[2] != 0 {
		t.Fatalf("request reply % x", out)
	}
	switch out[1] {
	case repGeneralFailure, repAtypNotSupported:
		wantErr = ErrBadRequest
	case repCmdNotSupported:
		wantErr = ErrUnsupportedCommand
	default:
		t.Fatalf("request reply code %#x for a parse failure", out[1])
	}
	if !errors.Is(err, wantErr) {
		t.Fatalf("reply code %#x with err %v", out[1], err)
	}
}

func FuzzSOCKS4(f *testing.F) {
	req := func(cmd byte, port uint16, ip [4]byte, user, name string) []byte {
		b := []byte{4, cmd}
		b = binary.BigEndian.AppendUint16(b, port)
		b = append(b, ip[:]...)
		b = append(append(b, user...), 0)
		if name != "" {
			b = append(append(b, name...), 0)
		}
		return b
	}
	fzSeeds(f, [][]byte{
		req(1, 80, [4]byte{127, 0, 0, 1}, "", ""),
		req(1, 443, [4]byte{192, 0, 2, 1}, "alice", ""),
		req(1, 80, [4]byte{0, 0, 0, 1}, "", "example.com"), // 4a
		req(1, 80, [4]byte{0, 0, 0, 1}, "bob", "::1"),
		req(1, 80, [4]byte{0, 0, 0, 1}, "", "0.0.0.0"),
		req(1, 80, [4]byte{0, 0, 0, 1}, "", "bad name"),
		req(1, 0, [4]byte{127, 0, 0, 1}, "", ""),  // port 0
		req(1, 80, [4]byte{0, 0, 0, 0}, "", ""),   // 0.0.0.0
		req(2, 80, [4]byte{127, 0, 0, 1}, "", ""), // BIND
		req(1, 80, [4]byte{127, 0, 0, 1}, string(bytes.Repeat([]byte("u"), 300)), ""),
		req(1, 80, [4]byte{0, 0, 0, 1}, "", string(bytes.Repeat([]byte("n"), 256))),
		{4, 1, 0, 80, 127, 0, 0, 1}, // no NUL
		{4},
		{},
	})
	f.Fuzz(func(t *testing.T, data []byte, withAuth bool) {
		auth := fzAuthIf(withAuth)
		var w bytes.Buffer
		req, err := readSOCKS4(bufio.NewReader(bytes.NewReader(data)), &w, auth)
		out := w.Bytes()
		if len(out) != 0 && (len(out) != 8 || !bytes.Equal(out, []byte{0, socks4Rejected, 0, 0, 0, 0, 0, 0})) {
			t.Fatalf("SOCKS4 wrote % x", out)
		}
		if err != nil {
			fzParseError(t, err)
			if len(out) == 8 && !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrUnsupportedCommand) {
				t.Fatalf("rejected with err %v", err)
			}
			return
		}
		if len(out) != 0 {
			t.Fatalf("request accepted, yet a rejection was written")
		}
		if auth != nil {
			t.Fatal("SOCKS4 accepted with a password configured")
		}
		fzTarget(t, req)
		if a, err := netip.ParseAddr(req.host); err == nil && a.IsUnspecified() && data[4]|data[5]|data[6]|data[7] == 0 {
			t.Fatalf("accepted destination %s", req.host)
		}
	})
}

// fzCountingReader counts the bytes that reach the header limiter's
// caller, i.e. that the limiter let through.
type fzCountingReader struct {
	r io.Reader
	n int
}

func (c *fzCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzHTTPRequest reads requests the way serveHTTP does: a bufio.Reader
// over the header limiter, the limit set before each request and lifted
// after it, several requests per connection.
func FuzzHTTPRequest(f *testing.F) {
	for _, s := range []string{
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n",
		"CONNECT 127.0.0.1:0 HTTP/1.1\r\n\r\n",
		"CONNECT example.com HTTP/1.1\r\n\r\n",
		"CONNECT http://example.com/ HTTP/1.1\r\n\r\n",
		"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\nGET http://example.org:8080/x HTTP/1.1\r\nHost: example.org\r\n\r\n",
		"GET http://example.com:/ HTTP/1.1\r\n\r\n",
		"GET http://[::1]/ HTTP/1.0\r\n\r\n",
		"POST http://example.com/up HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST http://example.com/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET https://example.com/ HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /pac HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nX: " + string(bytes.Repeat([]byte("y"), 5000)) + "\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nX: y\r\n", // cut off
		"\x16\x03\x01\x02\x00\x01",           // TLS hello to the HTTP port
		"",
	} {
		f.Add([]byte(s), uint16(8<<10-1))
		f.Add([]byte(s), uint16(64))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		n := int(limit)%(8<<10) + 1 // small enough for the fuzzer to cross it
		src := &fzCountingReader{r: bytes.NewReader(data)}
		lim := &headerLimiter{r: src}
		br := bufio.NewReaderSize(lim, 4096) // the size of conn.go's pool
		for range 4 {
			lim.limit(n)
			before := src.n
			req, err := http.ReadRequest(br)
			through := src.n - before
			if through > n {
				t.Fatalf("limit %d let %d bytes through", n, through)
			}
			if errors.Is(err, ErrHeaderTooLarge) && through != n {
				t.Fatalf("header too large after %d bytes, limit %d", through, n)
			}
			if err != nil {
				return
			}
			lim.lift()
			fzHTTPTarget(t, req)
			if _, err := io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20)); err != nil {
				return
			}
			_ = req.Body.Close()
		}
	})
}

// fzHTTPTarget derives the target the way serveConnect and forward do and
// checks that an accepted target is one the dialer can take.
func fzHTTPTarget(t *testing.T, req *http.Request) {
	t.Helper()
	var target string
	switch {
	case req.Method == http.MethodConnect:
		target = req.RequestURI
	case req.URL.IsAbs() && req.URL.Scheme == "http":
		target = req.URL.Host
		if req.URL.Port() == "" {
			target = net.JoinHostPort(req.URL.Hostname(), "80")
		}
	default:
		return
	}
	host, port, err := outbound.SplitTarget(target)
	if err != nil {
		return // refused with 400
	}
	if port < 1 || host == "" {
		t.Fatalf("target %q accepted as %q port %d", target, host, port)
	}
}
