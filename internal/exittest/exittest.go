// Package exittest serves an exit server (core/exit) on loopback for the
// tests that tunnel through one. Only tests import it.
package exittest

import (
	"net"
	"net/http"
	"testing"

	"porthole/core/exit"
)

// Serve runs an exit of cfg behind an http.Server on a free loopback port
// (every path is the tunnel's) and returns its host:port. When the test
// ends it stops as porthole-exit does: the http.Server first (its
// listener; the hijacked WebSockets are not its own), then every session.
// A cleanup the test registered before Serve runs after that.
func Serve(t testing.TB, cfg exit.Config) string {
	t.Helper()
	xs, err := exit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = xs.Close() // always nil
		t.Fatal(err)
	}
	hs := &http.Server{Handler: xs}
	served := make(chan struct{})
	go func() { defer close(served); _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		_ = hs.Close()
		<-served
		if err := xs.Close(); err != nil {
			t.Errorf("closing the exit: %v", err)
		}
	})
	return ln.Addr().String()
}
