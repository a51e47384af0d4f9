package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

// The written pair loads as a TLS key pair, and the certificate verifies
// for its address against its own pool.
func TestNew(t *testing.T) {
	c := New(t, "testcert", net.IPv4(127, 0, 0, 1))
	dir := t.TempDir()
	if _, err := tls.LoadX509KeyPair(c.WriteCert(t, dir), c.WriteKey(t, dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cert.Verify(x509.VerifyOptions{Roots: c.Pool(), DNSName: "127.0.0.1"}); err != nil {
		t.Error(err)
	}
}
