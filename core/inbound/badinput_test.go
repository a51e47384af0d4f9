package inbound_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"porthole/core"
	"porthole/core/inbound"
)

// Bad input never hangs a client, never disturbs the next connection, and
// is logged exactly once, at INFO or WARN.

type badCase struct {
	name    string
	cfg     func(*core.Config)
	run     func(t *testing.T, v *env) // sends the bad input, checks what the client sees
	quiet   bool                       // no INFO/WARN record expected (else exactly one)
	wantErr error                      // the record's err wraps it, when set
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	short := func(c *core.Config) { c.HeaderTimeout = 300 * time.Millisecond }
	dialTimeout := func(c *core.Config) { c.DialTimeout = 300 * time.Millisecond }
	cases := []badCase{
		// Unreachable and slow targets.
		{name: "connect-refused", wantErr: syscall.ECONNREFUSED, run: func(t *testing.T, v *env) {
			target := "127.0.0.1:" + strconv.Itoa(int(closedPort(t)))
			v.expectHTTPError(t, "CONNECT", "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n", http.StatusBadGateway, "connection refused")
		}},
		{name: "forward-refused", wantErr: syscall.ECONNREFUSED, run: func(t *testing.T, v *env) {
			target := "127.0.0.1:" + strconv.Itoa(int(closedPort(t)))
			v.expectHTTPError(t, "GET", "GET http://"+target+"/x HTTP/1.1\r\nHost: "+target+"\r\n\r\n", http.StatusBadGateway, "connection refused")
		}},
		{name: "socks5-refused", wantErr: syscall.ECONNREFUSED, run: func(t *testing.T, v *env) {
			c, rep := v.socks5Raw(t, socks5ConnectIPv4([4]byte{127, 0, 0, 1}, closedPort(t)))
			expectReply(t, rep, 0x05)
			expectClosed(t, c)
		}},
		{name: "socks4-refused", wantErr: syscall.ECONNREFUSED, run: func(t *testing.T, v *env) {
			c, rep := v.socks4(t, 0x01, [4]byte{127, 0, 0, 1}, closedPort(t), "")
			expectReply(t, rep, 0x5B)
			expectClosed(t, c)
		}},
		{name: "connect-dial-timeout", cfg: dialTimeout, run: func(t *testing.T, v *env) {
			target := blackholeAddr(t)
			v.expectHTTPError(t, "CONNECT", "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n", http.StatusGatewayTimeout, "timeout")
		}},
		{name: "forward-dial-timeout", cfg: dialTimeout, run: func(t *testing.T, v *env) {
			target := blackholeAddr(t)
			v.expectHTTPError(t, "GET", "GET http://"+target+"/ HTTP/1.1\r\nHost: "+target+"\r\n\r\n", http.StatusGatewayTimeout, "timeout")
		}},
		{name: "socks5-dial-timeout", cfg: dialTimeout, run: func(t *testing.T, v *env) {
			_, p, _ := net.SplitHostPort(blackholeAddr(t))
			port, _ := strconv.Atoi(p)
			c, rep := v.socks5Raw(t, socks5ConnectIPv4([4]byte{127, 0, 0, 1}, uint16(port)))
			expectReply(t, rep, 0x04)
			expectClosed(t, c)
		}},

		// Garbage on the HTTP front.
		{name: "tls-client-hello", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			v.expectHTTPError(t, "GET", string(clientHello(t)), http.StatusBadRequest, "malformed")
		}},
		{name: "tls-handshake", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			// A client that thinks the proxy speaks TLS fails at once.
			raw := v.dial(t)
			c := tls.Client(raw, &tls.Config{ServerName: "example.com"})
			if err := c.Handshake(); err == nil {
				t.Fatal("TLS handshake with the proxy succeeded")
			} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("TLS handshake hung: %v", err)
			}
			expectClosed(t, raw)
		}},
		{name: "tls-prefix-junk", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			junk := append([]byte("\x16\x03\x01"), bytes.ReplaceAll(pattern[:200], []byte("\n"), nil)...)
			v.expectHTTPError(t, "GET", string(junk)+"\r\n\r\n", http.StatusBadRequest, "malformed")
		}},
		{name: "binary-junk", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			junk := make([]byte, 256)
			for i := range junk {
				junk[i] = byte(i)
			}
			v.expectHTTPError(t, "GET", string(junk), http.StatusBadRequest, "malformed")
		}},
		{name: "oversized-header", wantErr: inbound.ErrHeaderTooLarge, run: func(t *testing.T, v *env) {
			big := "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Big: " + strings.Repeat("a", inbound.DefaultMaxHeaderBytes+1024) + "\r\n\r\n"
			v.expectHTTPError(t, "GET", big, http.StatusRequestHeaderFieldsTooLarge, "too large")
		}},
		{name: "oversized-header-configured", cfg: func(c *core.Config) { c.MaxHeaderBytes = 4096 }, wantErr: inbound.ErrHeaderTooLarge, run: func(t *testing.T, v *env) {
			big := "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n"
			v.expectHTTPError(t, "CONNECT", big, http.StatusRequestHeaderFieldsTooLarge, "too large")
		}},
		{name: "half-sent-header-mid-line", cfg: short, wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			target := v.origin.Listener.Addr().String()
			v.expectHTTPError(t, "GET", "GET http://"+target+"/hello HTTP/1.1\r\nHost: "+target+"\r\nX-Partial", http.StatusRequestTimeout, "timed out")
		}},
		{name: "half-sent-header-whole-lines", cfg: short, wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			target := v.origin.Listener.Addr().String()
			v.expectHTTPError(t, "GET", "GET http://"+target+"/hello HTTP/1.1\r\nHost: "+target+"\r\n", http.StatusRequestTimeout, "timed out")
		}},
		{name: "half-sent-request-line", cfg: short, wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			v.expectHTTPError(t, "CONNECT", "CONNECT 127.0.0.1:1 HT", http.StatusRequestTimeout, "timed out")
		}},
		{name: "silent-client", cfg: short, quiet: true, run: func(t *testing.T, v *env) {
			// Connected and said nothing: a browser's speculative
			// preconnect looks like this. Closed after the header
			// timeout, without an INFO line.
			expectClosed(t, v.dial(t))
		}},

		// Malformed CONNECT targets and forward URLs.
		{name: "connect-space-in-host", wantErr: inbound.ErrBadRequest, run: connectBad("bad host:80")},
		{name: "connect-empty-label", wantErr: inbound.ErrBadRequest, run: connectBad("bad..host:80")},
		{name: "connect-port-0", wantErr: inbound.ErrBadRequest, run: connectBad("localhost:0")},
		{name: "connect-port-99999", wantErr: inbound.ErrBadRequest, run: connectBad("localhost:99999")},
		{name: "connect-no-port", wantErr: inbound.ErrBadRequest, run: connectBad("localhost")},
		{name: "connect-open-bracket", wantErr: inbound.ErrBadRequest, run: connectBad("[::1")},
		{name: "connect-path", wantErr: inbound.ErrBadRequest, run: connectBad("/index.html")},
		{name: "forward-https-url", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			v.expectHTTPError(t, "GET", "GET https://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n", http.StatusBadRequest, "CONNECT")
		}},
		{name: "forward-port-0", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			v.expectHTTPError(t, "GET", "GET http://localhost:0/ HTTP/1.1\r\nHost: localhost:0\r\n\r\n", http.StatusBadRequest, "port")
		}},

		// SOCKS5 requests we cannot or will not serve.
		{name: "socks5-bind", wantErr: inbound.ErrUnsupportedCommand, run: socks5Replies(socks5Command(0x02, [4]byte{127, 0, 0, 1}, 80), 0x07)},
		{name: "socks5-udp-associate", wantErr: inbound.ErrUnsupportedCommand, run: socks5Replies(socks5Command(0x03, [4]byte{0, 0, 0, 0}, 0), 0x07)},
		{name: "socks5-unknown-atyp", wantErr: inbound.ErrBadRequest, run: socks5Replies([]byte{0x05, 0x01, 0x00, 0x02, 1, 2, 3, 4, 0, 80}, 0x08)},
		{name: "socks5-port-0", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			c, rep := v.socks5Raw(t, socks5ConnectIPv4([4]byte{127, 0, 0, 1}, 0))
			if rep == 0x00 {
				t.Fatal("SOCKS5 CONNECT to port 0 succeeded")
			}
			expectClosed(t, c)
		}},
		{name: "socks5-domain-port-0", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			req := append([]byte{0x05, 0x01, 0x00, 0x03, 9}, "localhost\x00\x00"...)
			c, rep := v.socks5Raw(t, req)
			if rep == 0x00 {
				t.Fatal("SOCKS5 CONNECT to port 0 succeeded")
			}
			expectClosed(t, c)
		}},
		{name: "socks5-no-acceptable-method", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			c := v.dial(t)
			if _, err := c.Write([]byte{0x05, 0x01, 0x80}); err != nil {
				t.Fatal(err)
			}
			var m [2]byte
			if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{0x05, 0xFF} {
				t.Fatalf("method reply % x, %v; want 05 ff", m, err)
			}
			expectClosed(t, c)
		}},
		{name: "socks5-bad-request-version", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			req := socks5ConnectIPv4([4]byte{127, 0, 0, 1}, 80)
			req[0] = 0x04
			c := v.dial(t)
			if _, err := c.Write(append([]byte{0x05, 0x01, 0x00}, req...)); err != nil {
				t.Fatal(err)
			}
			var m [2]byte
			if _, err := io.ReadFull(c, m[:]); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
		}},
		{name: "socks4-half-sent-request", cfg: short, wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			c := v.dial(t)
			if _, err := c.Write([]byte{0x04, 0x01, 0, 80, 127}); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
		}},
		{name: "socks5-half-sent-greeting", cfg: short, wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			c := v.dial(t)
			if _, err := c.Write([]byte{0x05, 0x02, 0x00}); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
		}},
		{name: "socks5-half-sent-request", cfg: short, wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			c := v.dial(t)
			if _, err := c.Write([]byte{0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127}); err != nil {
				t.Fatal(err)
			}
			var m [2]byte
			if _, err := io.ReadFull(c, m[:]); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
		}},

		// SOCKS4.
		{name: "socks4-bind", wantErr: inbound.ErrUnsupportedCommand, run: socks4Rejected(0x02, [4]byte{127, 0, 0, 1}, 80)},
		{name: "socks4-zero-address", wantErr: inbound.ErrBadRequest, run: socks4Rejected(0x01, [4]byte{0, 0, 0, 0}, 80)},
		{name: "socks4-port-0", wantErr: inbound.ErrBadRequest, run: socks4Rejected(0x01, [4]byte{127, 0, 0, 1}, 0)},
		{name: "socks4-endless-user-id", wantErr: inbound.ErrBadRequest, run: func(t *testing.T, v *env) {
			c := v.dial(t)
			req := append([]byte{0x04, 0x01, 0, 80, 127, 0, 0, 1}, bytes.Repeat([]byte("u"), 300)...)
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, tc.cfg)
			v.noisy = true // checked below, exactly
			tc.run(t, v)
			v.checkHealthy(t)
			want := 1
			if tc.quiet {
				want = 0
			}
			v.logs.waitConnRecords(t, want, slog.LevelInfo)
			v.stop() // every handler has finished: no record comes later
			recs := v.logs.connRecords(slog.LevelInfo)
			if len(recs) != want {
				t.Fatalf("%d INFO+ records about connections, want %d:\n%s", len(recs), want, recordList(recs))
			}
			for _, r := range recs {
				if r.Level != slog.LevelInfo && r.Level != slog.LevelWarn {
					t.Errorf("logged at %s: %s", r.Level, r)
				}
				if tc.wantErr != nil && !errors.Is(r.errAttr(), tc.wantErr) {
					t.Errorf("record's err %v does not wrap %v: %s", r.errAttr(), tc.wantErr, r)
				}
			}
		})
	}
}

func recordList(recs []logRecord) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString("  " + r.String() + "\n")
	}
	return b.String()
}

func connectBad(target string) func(t *testing.T, v *env) {
	return func(t *testing.T, v *env) {
		v.expectHTTPError(t, "CONNECT", "CONNECT "+target+" HTTP/1.1\r\nHost: example.com\r\n\r\n", http.StatusBadRequest, "")
	}
}

// socks5Replies sends the SOCKS5 request req (after the greeting) and
// expects the reply code rep, then the close.
func socks5Replies(req []byte, rep byte) func(t *testing.T, v *env) {
	return func(t *testing.T, v *env) {
		c, got := v.socks5Raw(t, req)
		expectReply(t, got, rep)
		expectClosed(t, c)
	}
}

// socks5Command is the SOCKS5 request of command cmd to ip:port.
func socks5Command(cmd byte, ip [4]byte, port uint16) []byte {
	req := socks5ConnectIPv4(ip, port)
	req[1] = cmd
	return req
}

// socks4Rejected sends the SOCKS4 request of command cmd to ip:port and
// expects the rejection (0x5B), then the close.
func socks4Rejected(cmd byte, ip [4]byte, port uint16) func(t *testing.T, v *env) {
	return func(t *testing.T, v *env) {
		c, rep := v.socks4(t, cmd, ip, port, "")
		expectReply(t, rep, 0x5B)
		expectClosed(t, c)
	}
}

func expectReply(t *testing.T, got, want byte) {
	t.Helper()
	if got != want {
		t.Fatalf("reply %#x, want %#x", got, want)
	}
}

// expectHTTPError sends raw bytes and expects an error response with the
// given code and a one-line plain-text body containing contains, then the
// connection closed.
func (v *env) expectHTTPError(t *testing.T, method, raw string, code int, contains string) {
	t.Helper()
	c := v.dial(t)
	wrote := make(chan error, 1)
	go func() { // the proxy may answer before reading everything
		_, err := io.WriteString(c, raw)
		wrote <- err
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the proxy's answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the error body: %v", err)
	}
	if resp.StatusCode != code {
		t.Fatalf("status %d %q, want %d", resp.StatusCode, body, code)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if s := string(body); strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || !strings.Contains(s, contains) {
		t.Errorf("body %q: want one line containing %q", s, contains)
	}
	expectClosed(t, br)
	_ = c.Close()
	await(t, "the client's write", wrote) // its error is moot: the proxy answered
}

// clientHello is what a TLS client sends first: a real one, from crypto/tls.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(a, &tls.Config{ServerName: "example.com"}).Handshake() // fails when b closes
	}()
	defer func() {
		_ = a.Close()
		_ = b.Close()
		<-done
	}()
	if err := b.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	var hdr [5]byte
	if _, err := io.ReadFull(b, hdr[:]); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 5+int(binary.BigEndian.Uint16(hdr[3:5])))
	copy(rec, hdr[:])
	if _, err := io.ReadFull(b, rec[5:]); err != nil {
		t.Fatal(err)
	}
	return rec
}
