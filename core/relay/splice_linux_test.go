package relay

import (
	"io"
	"net"
	"testing"
	"time"
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

// Looking at a socket (the peek that tells empty from EOF) allocates
// nothing, in the splice path and in the peeker: it happens on every wait
// of every direction.
func TestIdleWaitAllocatesNothing(t *testing.T) {
	ca, cb := pair(t)
	a, b := ca.(*net.TCPConn), cb.(*net.TCPConn)
	rc, err := a.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	q := &spliceState{rc: rc}
	q.fn = q.poll
	p := newPeeker(a)
	check := func(what string, f func() (bool, error)) {
		t.Helper()
		allocs := testing.AllocsPerRun(100, func() {
			ready, err := f()
			if ready || err != nil {
				t.Fatalf("%s on an idle socket: ready %v, err %v", what, ready, err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s on an idle socket: %.1f allocations, want 0", what, allocs)
		}
	}
	check("splice wait", func() (bool, error) { return q.wait(false) })
	check("peeker poll", func() (bool, error) { return p.poll(false) })

	// And the peek still tells bytes and EOF apart from empty.
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitReady := func(what string, f func() (bool, error)) {
		t.Helper()
		for range 1000 {
			if ready, err := f(); err != nil || ready {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("%s: never ready", what)
	}
	waitReady("peeker after a byte", func() (bool, error) { return p.poll(false) })
	if ready, err := q.wait(false); !ready || err != nil || q.queued != 1 {
		t.Fatalf("splice wait after a byte: ready %v, queued %d, err %v", ready, q.queued, err)
	}
	var buf [1]byte
	if _, err := io.ReadFull(a, buf[:]); err != nil {
		t.Fatal(err)
	}
	if err := b.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitReady("peeker after FIN", func() (bool, error) { return p.poll(false) })
	if ready, err := q.wait(false); !ready || err != nil || q.queued != 0 {
		t.Fatalf("splice wait after FIN: ready %v, queued %d (0 is EOF), err %v", ready, q.queued, err)
	}
	// Telling EOF from empty is the peek too: it allocates nothing either
	// (x/sys/unix.Recvfrom did, once per call).
	for what, f := range map[string]func() (bool, error){
		"splice wait at EOF": func() (bool, error) { return q.wait(false) },
		"peeker poll at EOF": func() (bool, error) { return p.poll(false) },
	} {
		if allocs := testing.AllocsPerRun(100, func() { _, _ = f() }); allocs != 0 {
			t.Errorf("%s: %.1f allocations, want 0", what, allocs)
		}
	}
}
