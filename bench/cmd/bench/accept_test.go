package main

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// acceptUntil serves what comes, then returns nil with ln closed once ctx
// ends.
func TestAcceptUntilEndsWithContext(t *testing.T) {
	ln := loopbackListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan net.Conn, 1)
	done := make(chan error, 1)
	go func() { done <- acceptUntil(ctx, ln, func(c net.Conn) { served <- c }) }()

	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case s := <-served:
		s.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not handed to serve")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("acceptUntil after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acceptUntil did not return after cancel")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after acceptUntil: %v, want net.ErrClosed", err)
	}
}
