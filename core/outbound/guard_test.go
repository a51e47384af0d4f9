package outbound

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"porthole/internal/chantest"
	"porthole/internal/dnstest"
)

func TestBlocked(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "127.8.9.10": "loopback", "::1": "loopback",
		"10.1.2.3": "private", "172.16.5.4": "private", "192.168.1.1": "private", "fd00::1": "private",
		"100.64.1.1": "private", "::ffff:10.0.0.1": "private",
		"169.254.1.1": "link-local", "fe80::1": "link-local",
		"224.0.0.1": "multicast", "ff02::1": "multicast", "239.1.2.3": "multicast",
		"0.0.0.0": "unspecified", "::": "unspecified", "0.1.2.3": "this-network",
		// IPv4 behind NAT64 and 6to4 gateways.
		"64:ff9b::7f00:1": "loopback (embedded in 64:ff9b::7f00:1)", "64:ff9b::a00:1": "private (embedded in 64:ff9b::a00:1)",
		"2002:c0a8:101::1": "private (embedded in 2002:c0a8:101::1)", "64:ff9b::808:808": "", "2002:808:808::1": "",
		// Public addresses: only classified here, never dialled.
		"8.8.8.8": "", "1.1.1.1": "", "2606:4700::1111": "", "100.128.0.1": "", "172.32.0.1": "",
	} {
		if got := Blocked(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Blocked(%s) = %q, want %q", addr, got, want)
		}
	}
	own := []netip.Addr{netip.MustParseAddr("203.0.113.7")}
	if refusal(netip.MustParseAddr("203.0.113.7"), own) == "" {
		t.Error("the server's own address must be refused")
	}
	if refusal(netip.MustParseAddr("::ffff:203.0.113.7"), own) == "" {
		t.Error("the server's own address, IPv4-mapped, must be refused")
	}
	if refusal(netip.MustParseAddr("203.0.113.8"), own) != "" {
		t.Error("another public address is not refused")
	}
}

// countingListener is a loopback listener that reports whether anyone
// connected.
func countingListener(t *testing.T) (net.Listener, <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln, accepted
}

func TestGuardRefusesLoopbackBeforeDialling(t *testing.T) {
	ln, accepted := countingListener(t)
	g := &Guarded{Timeout: 5 * time.Second}
	_, err := g.DialContext(context.Background(), "tcp", ln.Addr().String())
	if !errors.Is(err, ErrDenied) || Classify(err) != FailDenied {
		t.Fatalf("dial to %s: %v, want ErrDenied", ln.Addr(), err)
	}
	// Allowed explicitly, the same target works: the listener is real.
	g.AllowPrivate = true
	c, err := g.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
	c.Close()
	chantest.Within(t, 10*time.Second, "the allowed dial", accepted)
	select {
	case <-accepted:
		t.Fatal("the refused dial reached the listener")
	default:
	}
}

// TestGuardRefusesNamesResolvingInside: a name whose DNS answer is a
// loopback address (DNS rebinding) is refused without connecting.
func TestGuardRefusesNamesResolvingInside(t *testing.T) {
	ln, accepted := countingListener(t)
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	g := &Guarded{Timeout: 5 * time.Second, Resolver: answeringResolver(t, [4]byte{127, 0, 0, 1})}
	_, err = g.DialContext(context.Background(), "tcp", net.JoinHostPort("rebind.example", port))
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("a name resolving to 127.0.0.1: %v, want ErrDenied", err)
	}
	select {
	case <-accepted:
		t.Fatal("the refused dial reached the listener")
	default:
	}
}

// answeringResolver is a Go resolver whose DNS server, on a loopback UDP
// socket, answers every A question with ip and every other with no record.
func answeringResolver(t *testing.T, ip [4]byte) *net.Resolver {
	return dnstest.Resolver(t, func(q []byte) []byte { return dnstest.Reply(q, 0, &ip) })
}
