package connecttest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// fakeProxy answers every CONNECT on a loopback listener with answer (or
// closes when answer is "") and records the request lines.
func fakeProxy(t *testing.T, answer string) (addr string, requests func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				mu.Lock()
				seen = append(seen, req.Method+" "+req.Host)
				mu.Unlock()
				_, _ = io.WriteString(c, answer)
			}
			_ = c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestDial(t *testing.T) {
	addr, requests := fakeProxy(t, "HTTP/1.1 200 Connection established\r\n\r\nhello")
	c, br, resp, err := Dial(addr, "example.test:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if got, err := io.ReadAll(br); err != nil || string(got) != "hello" {
		t.Fatalf("after the answer: %q, %v; want hello", got, err)
	}
	if got := requests(); len(got) != 1 || got[0] != "CONNECT example.test:443" {
		t.Fatalf("the proxy saw %q", got)
	}
}

func TestDialRefusedAndBroken(t *testing.T) {
	addr, _ := fakeProxy(t, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
	c, _, resp, err := Dial(addr, "blocked.test:443")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403 passed back", resp.StatusCode)
	}

	addr, _ = fakeProxy(t, "")
	if c, _, _, err := Dial(addr, "example.test:443"); err == nil {
		c.Close()
		t.Fatal("a proxy that hung up without an answer: no error")
	}
}
