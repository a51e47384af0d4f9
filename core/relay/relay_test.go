package relay_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/core/relay"
	"porthole/internal/chantest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type counter struct{ up, down atomic.Int64 }

func (c *counter) AddUp(n int64)   { c.up.Add(n) }
func (c *counter) AddDown(n int64) { c.down.Add(n) }

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { d.Close(); r.c.Close() })
	return d.(*net.TCPConn), r.c.(*net.TCPConn)
}

// setup: client ⇄ [cRelay | relay | tRelay] ⇄ target, with Relay running
// between the two relay-side ends.
func setup(t *testing.T) (client, target *net.TCPConn, cnt *counter, done <-chan error) {
	client, cRelay := tcpPair(t)
	tRelay, target := tcpPair(t)
	cnt = &counter{}
	ch := make(chan error, 1)
	go func() { ch <- relay.Relay(cRelay, tRelay, cnt) }()
	return client, target, cnt, ch
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	return chantest.Within(t, 10*time.Second, "the relay's end", done)
}

// sendAndFIN writes b to c and half-closes it, on a goroutine of its
// own (the other side reads meanwhile); a failure fails t.
func sendAndFIN(t *testing.T, c *net.TCPConn, b []byte) {
	go func() {
		if _, err := c.Write(b); err != nil {
			t.Error(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Error(err)
		}
	}()
}

// readAllIs reads c to its EOF and fails t unless that is exactly want.
func readAllIs(t *testing.T, c *net.TCPConn, want []byte) {
	t.Helper()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s got %d bytes, want %d", c.LocalAddr(), len(got), len(want))
	}
}

func TestRelayHalfCloseAndCounts(t *testing.T) {
	client, target, cnt, done := setup(t)
	req := bytes.Repeat([]byte("q"), 100_000)
	resp := bytes.Repeat([]byte("r"), 3_000_000)

	// Half-close: the client has said everything but still listens.
	sendAndFIN(t, client, req)
	readAllIs(t, target, req) // ends only because the FIN was passed on
	sendAndFIN(t, target, resp)
	readAllIs(t, client, resp)
	if err := waitDone(t, done); err != nil {
		t.Fatalf("clean relay returned %v", err)
	}
	if cnt.up.Load() != int64(len(req)) || cnt.down.Load() != int64(len(resp)) {
		t.Fatalf("counted up %d down %d, want %d %d", cnt.up.Load(), cnt.down.Load(), len(req), len(resp))
	}
}

func TestRelayTricklePassesBytesAsTheyArrive(t *testing.T) {
	client, target, _, done := setup(t)
	buf := make([]byte, 16)
	for i := range 5 {
		msg := []byte{byte('a' + i)}
		if _, err := target.Write(msg); err != nil {
			t.Fatal(err)
		}
		// The target sends nothing more until the client has this byte:
		// a relay that held bytes back would deadlock here.
		if err := client.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := client.Read(buf)
		if err != nil || n != 1 || buf[0] != msg[0] {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, msg)
		}
	}
	client.Close()
	target.Close()
	waitDone(t, done)
}

func TestRelayResetEndsBothSides(t *testing.T) {
	client, target, _, done := setup(t)
	if err := target.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	target.Close() // RST towards the relay
	err := waitDone(t, done)
	if !relay.Expected(err) {
		t.Fatalf("a peer reset should be an expected ending, got %v", err)
	}
	if err := client.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("client still open after the target reset")
	}
}

func TestExpected(t *testing.T) {
	for _, err := range []error{nil, io.EOF, net.ErrClosed, io.ErrClosedPipe} {
		if !relay.Expected(err) {
			t.Errorf("Expected(%v) = false", err)
		}
	}
	if relay.Expected(errors.New("disk on fire")) {
		t.Error("an unknown error is not an expected ending")
	}
}

// BenchmarkRelayThroughput pushes 64 KiB writes through a relay between
// real sockets. Run with -benchmem: the copy path must not allocate per
// read or write (the buffers come from a pool), so allocs/op stays 0.
func BenchmarkRelayThroughput(b *testing.B) {
	client, cRelay := tcpPair(b)
	tRelay, target := tcpPair(b)
	cnt := &counter{}
	done := make(chan error, 1)
	go func() { done <- relay.Relay(cRelay, tRelay, cnt) }()
	go func() { _, _ = io.Copy(io.Discard, target) }()
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := client.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	client.Close()
	target.Close()
	<-done
}

// BenchmarkRelayPingPong sends 512-byte messages there and back: every read
// is short, so each one goes through the wait for readability. With
// -benchmem, allocs/op must stay 0.
func BenchmarkRelayPingPong(b *testing.B) {
	client, cRelay := tcpPair(b)
	tRelay, target := tcpPair(b)
	done := make(chan error, 1)
	go func() { done <- relay.Relay(cRelay, tRelay, &counter{}) }()
	echoed := make(chan error, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := io.ReadFull(target, buf); err != nil {
				echoed <- nil
				return
			}
			if _, err := target.Write(buf); err != nil {
				echoed <- err
				return
			}
		}
	}()
	msg, back := make([]byte, 512), make([]byte, 512)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, back); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	client.Close()
	target.Close()
	<-done
	if err := <-echoed; err != nil {
		b.Fatal(err)
	}
}

// Byte counters are live: each trickled byte is counted once delivered,
// long before the connection ends (the inspector's speed column), and a
// bulk transfer's count is exact at the end.
func TestRelayCountsLiveWhileTrickling(t *testing.T) {
	client, target, cnt, done := setup(t)
	buf := make([]byte, 16)
	for i := range 5 {
		if _, err := target.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
		if err := client.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf[:1]); err != nil {
			t.Fatal(err)
		}
		// Delivered, so counted right after the write returned: wait for
		// it a bounded while.
		want := int64(i + 1)
		for range 1000 {
			if cnt.down.Load() == want {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if got := cnt.down.Load(); got != want {
			t.Fatalf("after %d trickled bytes the counter says %d", want, got)
		}
	}
	bulk := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	sendAndFIN(t, target, bulk)
	if err := client.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	readAllIs(t, client, bulk)
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, done); err != nil {
		t.Fatalf("clean relay returned %v", err)
	}
	if got, want := cnt.down.Load(), int64(5+len(bulk)); got != want {
		t.Fatalf("counted down %d, want %d", got, want)
	}
}
