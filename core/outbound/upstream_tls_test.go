package outbound

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"porthole/internal/chantest"
	"porthole/internal/origin"
	"porthole/internal/upstreamtest"
)

// tlsFront puts TLS in front of a proxy (as stunnel or a TLS-speaking
// proxy would): it returns the front's address and the CA that trusts
// its certificate (httptest's, for 127.0.0.1).
func tlsFront(t *testing.T, to string) (string, *x509.CertPool) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert, ca := ts.TLS.Certificates[0], ts.Certificate()
	ts.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	serveRelay(t, ln, to, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return ln.Addr().String(), pool
}

// TestUpstreamHTTPSProxy: an https:// proxy URL speaks TLS to the proxy,
// trusting the given CA; without it the certificate is refused and the
// exit is down for that reason.
func TestUpstreamHTTPSProxy(t *testing.T) {
	echo := origin.Echo(t)
	p := upstreamtest.Tinyproxy(t, "alice", "pw")
	front, pool := tlsFront(t, p.Addr)
	g := startGroup(t, GroupConfig{Exits: []ExitConfig{{Name: "up", Kind: KindHTTP, Upstream: UpstreamConfig{
		URL: "https://" + front, Username: "alice", Password: "pw", TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}}})
	waitState(t, g, "up", ExitUp)
	echoThrough(t, g, echo)

	untrusted := upstreamGroup(t, KindHTTP, "https://"+front, "alice", "pw")
	st := waitState(t, untrusted, "up", ExitDown)
	var ue x509.UnknownAuthorityError
	if !errors.As(st.Err, &ue) {
		t.Errorf("an untrusted proxy certificate: %v", st.Err)
	}
}

// A TLS proxy connection's Reset (an abort: closed by the user, idle, the
// proxy stopping) closes the socket without writing a close_notify, which
// would tell the proxy the stream ended cleanly (and can block on a full
// send buffer), also when the CONNECT answer's extra bytes are buffered in
// front of it; Close still writes one. The proxy side counts the raw bytes
// that arrive after the handshake.
func TestNamedConnResetSendsNoCloseNotify(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert, ca := ts.TLS.Certificates[0], ts.Certificate()
	ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	server := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	type after struct {
		n   int64
		err error
	}
	for _, tc := range []struct {
		name     string
		buffered bool
		end      func(*namedConn) error
		alerts   bool
	}{
		{"Reset", false, (*namedConn).Reset, false},
		{"Reset, buffered", true, (*namedConn).Reset, false},
		{"Close", false, (*namedConn).Close, true},
	} {
		handshook := make(chan error, 1)
		rest := make(chan after, 1)
		go func() {
			raw, err := ln.Accept()
			if err != nil {
				handshook <- err
				return
			}
			defer raw.Close()
			handshook <- tls.Server(raw, server).Handshake()
			n, err := io.Copy(io.Discard, raw) // what the client sends after it
			rest <- after{n, err}
		}()
		raw, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err := conn.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := chantest.Within(t, 10*time.Second, "the proxy's handshake", handshook); err != nil {
			t.Fatal(err)
		}
		nc := &namedConn{Conn: conn}
		if tc.buffered {
			nc.Conn = &bufferedConn{Conn: conn}
		}
		if err := tc.end(nc); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// After Reset the proxy sees a reset (an error) with no bytes;
		// after Close, the alert and a clean end.
		got := chantest.Within(t, 10*time.Second, "the proxy's read after "+tc.name, rest)
		if (got.n > 0) != tc.alerts || (tc.alerts && got.err != nil) {
			t.Errorf("%s: the proxy read %d more bytes (%v); want an alert: %v", tc.name, got.n, got.err, tc.alerts)
		}
		_ = conn.Close() // after Reset the socket is closed already
	}
}
