//go:build linux

package inbound_test

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// blackholeAddr returns a loopback address where a TCP dial neither
// connects nor is refused: a socket listening with backlog 0 whose accept
// queue is full and never drained. Linux drops further SYNs, so a dial
// hangs until its timeout. It skips the test when the kernel completes
// handshakes all the same.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, port := boundSocket(t)
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	// Fill the accept queue until a dial hangs.
	for range 8 {
		c, err := net.DialTimeout("tcp4", addr, 250*time.Millisecond)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return addr
		}
		if err != nil {
			t.Skipf("cannot make a dial hang: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Skip("the kernel completes handshakes on a full backlog-0 listener; cannot make a dial hang")
	return ""
}

// closedPort is a loopback port where a dial is refused, and stays so for
// the test: a socket bound to it that does not listen holds it, so no other
// test's listener can take it meanwhile.
func closedPort(t testing.TB) uint16 {
	t.Helper()
	_, port := boundSocket(t)
	return port
}

// boundSocket is a TCP socket bound to a free loopback port, closed when
// the test ends; it neither listens nor connects.
func boundSocket(t testing.TB) (fd int, port uint16) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	return fd, uint16(sa.(*syscall.SockaddrInet4).Port)
}
