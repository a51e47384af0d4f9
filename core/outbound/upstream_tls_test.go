package outbound

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"

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
