package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"porthole/core/registry"
	"porthole/internal/dnstest"
)

func TestBypassMatch(t *testing.T) {
	b, err := ParseBypass(append(DefaultBypass, "Example.COM", ".corp.test", "<local>", "fd00::/8", "192.0.2.7"))
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true, "[::1]": true,
		"10.1.2.3": true, "172.16.0.1": true, "172.32.0.1": false, "192.168.1.1": true, "192.0.2.7": true, "192.0.2.8": false,
		"printer.local": true, "local": true, "example.com": true, "www.example.com": false,
		"a.corp.test": true, "corp.test": true, "xcorp.test": false, "intranet": true,
		"fd12::1": true, "2001:db8::1": false, "::ffff:10.0.0.1": true, "example.org": false,
	} {
		if got := b.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
	var none *Bypass
	if none.Match("localhost") {
		t.Error("a nil bypass list matches nothing")
	}
}

func TestParseBypassNamesTheBadEntry(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "exa mple.com", "*.", "foo/bar", "-bad-.com", strings.Repeat("a", 64) + ".com"} {
		_, err := ParseBypass([]string{"localhost", bad})
		if err == nil {
			t.Errorf("ParseBypass accepted %q", bad)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("error %q does not name the entry %q", err, bad)
		}
	}
}

func TestSplitTarget(t *testing.T) {
	good := map[string]string{"example.com:443": "example.com", "[::1]:80": "::1", "10.0.0.1:65535": "10.0.0.1", "a_b.example:1": "a_b.example"}
	for target, wantHost := range good {
		host, _, err := SplitTarget(target)
		if err != nil || host != wantHost {
			t.Errorf("SplitTarget(%q) = %q, %v", target, host, err)
		}
	}
	for _, bad := range []string{"example.com", "example.com:0", "example.com:65536", "example.com:-1", "example.com:http", ":80", "bad host:80", "[::1:80", "exa\x00mple.com:80", "example.com:080808"} {
		if _, _, err := SplitTarget(bad); err == nil {
			t.Errorf("SplitTarget(%q) accepted", bad)
		}
	}
}

func TestRouter(t *testing.T) {
	b, err := ParseBypass(DefaultBypass)
	if err != nil {
		t.Fatal(err)
	}
	direct, tunnel := NewDirect(0, nil), NewDirect(0, nil)
	if _, err := NewRouter(ModeTunnel, b, direct, nil); !errors.Is(err, ErrNoTunnel) {
		t.Fatalf("tunnel mode without a tunnel: %v", err)
	}
	r, err := NewRouter(ModeTunnel, b, direct, tunnel)
	if err != nil {
		t.Fatal(err)
	}
	if r.Route("example.com") != registry.RouteTunnel || r.Dialer(registry.RouteTunnel) != tunnel {
		t.Error("example.com should go through the tunnel")
	}
	if r.Route("192.168.1.1") != registry.RouteBypass || r.Dialer(registry.RouteBypass) != direct {
		t.Error("192.168.1.1 should bypass the tunnel")
	}
	d, err := NewRouter(ModeDirect, b, direct, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Route("example.com") != registry.RouteDirect {
		t.Error("direct mode routes everything direct")
	}
	if _, err := ParseMode("sideways"); err == nil {
		t.Error("ParseMode accepted a bad mode")
	}
}

func TestClassifyRealDialErrors(t *testing.T) {
	// A closed loopback port: the kernel answers with a reset at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = NewDirect(2*time.Second, nil).DialContext(context.Background(), "tcp", addr)
	if got := Classify(err); got != FailRefused {
		t.Errorf("dial to a closed port: Classify(%v) = %v, want refused", err, got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = NewDirect(2*time.Second, nil).DialContext(ctx, "tcp", addr)
	if got := Classify(err); got != FailCanceled {
		t.Errorf("cancelled dial: Classify(%v) = %v, want canceled", err, got)
	}

	// The .invalid TLD never resolves (RFC 6761); a resolver that answers
	// from a loopback UDP server keeps this test off the network.
	_, err = NewDirect(2*time.Second, loopbackResolver(t)).DialContext(context.Background(), "tcp", "nothing.invalid:80")
	if got := Classify(err); got != FailNotFound && got != FailTimeout {
		t.Errorf("unresolvable name: Classify(%v) = %v, want host not found", err, got)
	}
	if Classify(fmt.Errorf("exit said: %w", ErrDenied)) != FailDenied {
		t.Error("ErrDenied is a policy refusal")
	}
}

// loopbackResolver is a Go resolver whose DNS server, on a loopback UDP
// socket, answers every query with NXDOMAIN.
func loopbackResolver(t *testing.T) *net.Resolver {
	return dnstest.Resolver(t, func(q []byte) []byte { return dnstest.Reply(q, dnstest.RcodeNXDomain, nil) })
}

func TestPAC(t *testing.T) {
	b, err := ParseBypass([]string{"localhost", "*.local", "10.0.0.0/8", "<local>"})
	if err != nil {
		t.Fatal(err)
	}
	pac := b.PAC("127.0.0.1:8088")
	for _, want := range []string{`host == "localhost"`, `dnsDomainIs(host, ".local")`, `isInNet(host, "10.0.0.0", "255.0.0.0")`, "isPlainHostName(host)", `"PROXY 127.0.0.1:8088; DIRECT"`} {
		if !strings.Contains(pac, want) {
			t.Errorf("PAC lacks %s:\n%s", want, pac)
		}
	}
}
