package relay

import (
	"io"
	"net"
	"testing"
)

// Between two TCP sockets the copy runs in the kernel; anything else
// (tunnel streams, pipes) is left to the user-space copy.
func TestSpliceHalfTakesTCPOnly(t *testing.T) {
	a, b := pair(t)
	c, d := pair(t)

	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if handled, _, _ := spliceHalf(p1, b, func(int64) {}, nil, &spliceState{}); handled {
		t.Fatal("spliceHalf took a pipe destination")
	}

	// a's FIN: the kernel path reports EOF, having moved the queued bytes.
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := a.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var moved int64
	handled, eof, err := spliceHalf(c, b, func(n int64) { moved += n }, nil, &spliceState{})
	if !handled || !eof || err != nil || moved != 5 {
		t.Fatalf("spliceHalf: handled %v eof %v err %v moved %d; want true true nil 5", handled, eof, err, moved)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(d, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// pair returns both ends of a loopback TCP connection, closed at cleanup.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, ok := <-acc
	if !ok {
		a.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}
