package relay_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"porthole/core/relay"
)

// waitParked waits, a bounded while, until n directions are parked.
func waitParked(t *testing.T, n int) {
	t.Helper()
	for range 2000 {
		if relay.ParkedNow() == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d directions parked, want %d", relay.ParkedNow(), n)
}

// An idle connection's client→target direction waits without a goroutine
// (parked); bytes that arrive later wake it, in both directions and again
// after each pause, half-close still passes on, and the counts are exact.
func TestRelayParkedDirectionCarriesBytesLater(t *testing.T) {
	defer relay.SetParkAfter(0)()
	client, target, cnt, done := setup(t)
	waitParked(t, 1)
	buf := make([]byte, 64)
	var up, down int64
	for i := range 3 {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 100*(i+1))
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(target, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("target read %q, %v", got, err)
		}
		up += int64(len(msg))
		if _, err := target.Write(msg[:10]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf[:10]); err != nil {
			t.Fatal(err)
		}
		down += 10
		waitParked(t, 1) // idle again: parked again
	}
	// The client half-closes while parked: the FIN wakes it and is passed on.
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(target); err != nil || len(rest) != 0 {
		t.Fatalf("target read %d bytes more, %v; want EOF", len(rest), err)
	}
	resp := bytes.Repeat([]byte("r"), 3_000_000)
	sendAndFIN(t, target, resp)
	readAllIs(t, client, resp)
	if err := waitDone(t, done); err != nil {
		t.Fatalf("clean relay returned %v", err)
	}
	down += int64(len(resp))
	if cnt.up.Load() != up || cnt.down.Load() != down {
		t.Fatalf("counted up %d down %d, want %d %d", cnt.up.Load(), cnt.down.Load(), up, down)
	}
	if n := relay.ParkedNow(); n != 0 {
		t.Fatalf("%d directions still parked after the relay ended", n)
	}
}

// A reset of the parked side's peer wakes it and aborts both sides.
func TestRelayParkedDirectionReset(t *testing.T) {
	defer relay.SetParkAfter(0)()
	client, target, _, done := setup(t)
	waitParked(t, 1)
	if err := client.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	client.Close() // RST towards the parked direction's socket
	if err := waitDone(t, done); !relay.Expected(err) || err == nil {
		t.Fatalf("relay returned %v, want the reset", err)
	}
	if err := target.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := target.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Fatalf("target read %v, want a reset", err)
	}
}

// After a transfer the direction lingers on its goroutine, then parks;
// many idle relays park at once and all wake for their bytes.
func TestRelayManyIdleRelaysPark(t *testing.T) {
	const n = 50
	type conn struct {
		client, target *net.TCPConn
		cnt            *counter
		done           <-chan error
	}
	conns := make([]conn, n)
	for i := range conns {
		c, tg, cnt, d := setup(t)
		conns[i] = conn{c, tg, cnt, d}
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	waitParked(t, n)
	for i, c := range conns {
		msg := []byte{byte(i)}
		if _, err := c.client.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 6)
		if _, err := io.ReadFull(c.target, got); err != nil || got[5] != byte(i) {
			t.Fatalf("relay %d: target read %q, %v", i, got, err)
		}
		c.client.Close()
		c.target.Close()
	}
	for i, c := range conns {
		waitDone(t, c.done)
		if got := c.cnt.up.Load(); got != 6 {
			t.Fatalf("relay %d counted up %d, want 6", i, got)
		}
	}
}
