package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// The plain CONNECT proxy is the floor every figure of Porthole's direct
// mode is held against: the simplest proxy there is, which answers an HTTP
// CONNECT, dials the target and then io.Copy's both ways (Go turns a copy
// between two TCP sockets into splice(2) on Linux). It counts nothing,
// logs nothing and shows nothing. It runs as its own process,
// `bench plainconnect -listen ADDR`, so its CPU and memory are its own.

const plainReady = "plainconnect listening"

// plainCommand runs the plain proxy until SIGINT or SIGTERM.
func plainCommand(args []string) int {
	fs := flag.NewFlagSet("plainconnect", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plainconnect:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, plainReady, ln.Addr())
	if err := acceptUntil(ctx, ln, func(c net.Conn) { go servePlain(c.(*net.TCPConn)) }); err != nil {
		fmt.Fprintln(os.Stderr, "plainconnect:", err)
		return 1
	}
	return 0
}

// servePlain answers one CONNECT and copies both ways until both end.
func servePlain(c *net.TCPConn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(dialTimeout))
	br := bufio.NewReaderSize(c, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		_, _ = io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	t, err := net.DialTimeout("tcp", req.Host, dialTimeout)
	if err != nil {
		_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	target := t.(*net.TCPConn)
	defer target.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		if _, err := target.Write(early); err != nil {
			return
		}
	}
	var wg sync.WaitGroup
	one := func(dst, src *net.TCPConn) {
		if _, err := io.Copy(dst, src); err != nil {
			c.Close()
			target.Close()
			return
		}
		_ = dst.CloseWrite()
	}
	wg.Go(func() { one(target, c) })
	one(c, target)
	wg.Wait()
}

// startPlain starts the plain proxy process.
func startPlain() (*proc, error) { return startSelf("plainconnect", plainReady, "plainconnect") }
