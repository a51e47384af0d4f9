// Package dnstest gives tests Go resolvers whose DNS server is on loopback
// and answers what the test decides, so that name lookups never leave the
// machine. Only tests import it.
package dnstest

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// RcodeNXDomain is the response code for "no such name" (RFC 1035).
const RcodeNXDomain = 3

// Resolver is a Go resolver whose every query goes to a DNS server on a
// loopback UDP socket answering each query (of at least a header's 12
// bytes) with answer(query); a nil answer is no answer. The server stops
// when t ends.
func Resolver(t testing.TB, answer func(query []byte) []byte) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		if err := pc.Close(); err != nil {
			t.Errorf("closing the DNS server: %v", err)
		}
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			if n < 12 {
				continue // not even a header
			}
			if resp := answer(buf[:n]); resp != nil {
				if _, err := pc.WriteTo(resp, from); err != nil {
					return
				}
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// Reply builds the answer to a one-question query: the response code
// rcode, and an A record with ip when ip is set and the question is for A
// (other questions get no record). It returns nil for anything else.
func Reply(q []byte, rcode byte, ip *[4]byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	resp := append([]byte(nil), q[:i+5]...)
	resp[2] |= 0x80        // a response
	resp[3] = 0x80 | rcode // recursion available
	binary.BigEndian.PutUint16(resp[6:], 0)
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	if ip != nil && qtype == 1 {
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		resp = append(resp, ip[:]...)
	}
	return resp
}

// Silent is a Go resolver whose DNS server never answers. Its connections
// are in-memory pipes, closed when t ends: the resolver goes on with a
// lookup its caller gave up on until its own timeout (seconds), and
// closing is what ends those lookups before a leak check.
func Silent(t testing.TB) *net.Resolver {
	t.Helper()
	var (
		mu     sync.Mutex
		ends   []net.Conn
		closed bool
		wg     sync.WaitGroup
	)
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		for _, c := range ends {
			_ = c.Close() // the resolver's Read on the other end returns
		}
		mu.Unlock()
		wg.Wait()
	})
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		theirs, ours := net.Pipe()
		ends = append(ends, ours)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, ours) // swallow the queries until closed
		}()
		return theirs, nil
	}}
}
