//go:build unix

package core

import (
	"net"
	"syscall"
	"testing"
)

// TestListenKeepalive: a connection accepted on a loopback port has no TCP
// keepalive probes; one accepted on a port beyond loopback keeps them.
func TestListenKeepalive(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:0", false},
		{"[::1]:0", false},
		{"localhost:0", false},
		{"0.0.0.0:0", true},
	} {
		ln, err := listen(tc.addr)
		if err != nil {
			if tc.addr == "[::1]:0" {
				t.Logf("%s: %v (no IPv6 loopback here)", tc.addr, err)
				continue
			}
			t.Fatalf("listen %s: %v", tc.addr, err)
		}
		if got := acceptedKeepalive(t, ln); got != tc.want {
			t.Errorf("listen %s: accepted connection has keepalive %v, want %v", tc.addr, got, tc.want)
		}
		if err := ln.Close(); err != nil {
			t.Error(err)
		}
	}
}

// acceptedKeepalive dials ln, accepts, and reads SO_KEEPALIVE of the
// accepted socket.
func acceptedKeepalive(t *testing.T, ln net.Listener) bool {
	t.Helper()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	host := "127.0.0.1"
	if ip := ln.Addr().(*net.TCPAddr).IP; ip.To4() == nil && !ip.IsUnspecified() {
		host = "::1"
	}
	c, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close() }()
	raw, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v != 0
}

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8088": true, "127.9.9.9:1": true, "[::1]:8088": true, "localhost:8088": true,
		"0.0.0.0:8088": false, "[::]:8088": false, ":8088": false, "192.168.1.2:8088": false,
		"example.com:8088": false, "bad": false,
	} {
		if got := IsLoopbackAddr(addr); got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
