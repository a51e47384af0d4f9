// Package freeport gives tests a loopback address nothing listens on:
// for a server that must be started on a known address, or a dial that
// must be refused. Only tests import it.
package freeport

import (
	"net"
	"testing"
)

// Loopback is "127.0.0.1:PORT" for a port that was free a moment ago (the
// kernel does not hand it out again at once).
func Loopback(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
