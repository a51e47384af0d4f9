package main

import (
	"net"
	"testing"
)

// loopbackListener listens on a free loopback port for the test, closed
// when it ends (closing it earlier does no harm).
func loopbackListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
