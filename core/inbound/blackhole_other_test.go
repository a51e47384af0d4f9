//go:build !linux

package inbound_test

import (
	"net"
	"testing"
)

// blackholeAddr needs Linux's behaviour on a full accept queue (drop the
// SYN); elsewhere the dial-timeout tests are skipped.
func blackholeAddr(t *testing.T) string {
	t.Skip("dial-timeout target is only built on Linux")
	return ""
}

// closedPort is a loopback port nobody listens on (a port another test
// could take meanwhile; Linux has a stricter version).
func closedPort(t testing.TB) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return uint16(p)
}
