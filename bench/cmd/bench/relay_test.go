package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer echoes every connection until EOF, then half-closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln := loopbackListener(t)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if _, err := io.Copy(c, c); err != nil {
					return
				}
				closeWrite(c)
			})
		}
	})
	return ln.Addr().String()
}

// TestRelayPreservesBytes sends pseudo-random data in uneven pieces through
// the relay to an echo server and checks that the same bytes come back, in
// order, followed by the half-close.
func TestRelayPreservesBytes(t *testing.T) {
	r, err := startDelayRelay(echoServer(t), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sent := make(chan error, 1)
	go func() {
		rest := data
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(200<<10))
			if _, err := c.Write(rest[:n]); err != nil {
				sent <- err
				return
			}
			rest = rest[n:]
		}
		sent <- c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back after %d bytes: %v", len(got), err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes back, want the %d sent, in order", len(got), len(data))
	}
}

// TestRelayCloseEndsConnections closes the relay under an idle connection:
// Close returns and the client sees its connection end.
func TestRelayCloseEndsConnections(t *testing.T) {
	r, err := startDelayRelay(echoServer(t), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); !errors.Is(err, errRelayClosed) {
		t.Fatalf("second Close: %v, want errRelayClosed", err)
	}
	if _, err := c.Read(b[:]); err == nil {
		t.Fatal("read after the relay closed: no error")
	}
}

func TestLineWatch(t *testing.T) {
	var out strings.Builder
	w := newLineWatch(&out, "[p] ", "ready now")
	for _, s := range []string{"first li", "ne\nsecond: rea", "dy no", "w here\nthird"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-w.seen:
	default:
		t.Fatal("marker split over writes not seen")
	}
	if want := "[p] first line\n[p] second: ready now here\n"; out.String() != want {
		t.Fatalf("out = %q, want %q", out.String(), want)
	}
}
