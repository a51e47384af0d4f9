package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// origin is the loopback TCP server the benchmark talks to, directly or
// through the proxy. Each connection sends one command line:
//
//	DOWN <n>  server sends n bytes, then closes its write side
//	UP <n>    server reads n bytes, then replies "OK\n"
//	ECHO      server echoes everything until EOF
//	IDLE      server holds the connection open until the client closes it
//	STAT      server replies how many connections are in IDLE, then closes
//
// Close closes the listener and every open connection and waits for all
// handler goroutines.
type origin struct {
	tcpServer
	idle atomic.Int64 // connections currently in IDLE
}

// chunk is the payload source for DOWN and the client's UP writes.
var chunk = make([]byte, 256<<10)

// commandTimeout bounds how long a new connection may take to send its line.
const commandTimeout = 30 * time.Second

func startOrigin() (*origin, error) { return startOriginAt("127.0.0.1:0") }

func startOriginAt(addr string) (*origin, error) {
	o := &origin{}
	if err := o.listen(addr, o.serve); err != nil {
		return nil, fmt.Errorf("origin: listen: %w", err)
	}
	return o, nil
}

func (o *origin) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	c.SetReadDeadline(time.Now().Add(commandTimeout))
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch cmd {
	case "DOWN":
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 {
			return
		}
		// A client that goes away (EOF or reset) ends the download: a
		// tunnel that passes on only a half-close (FIN, as smux and yamux
		// do) must not leave an endless DOWN pumping into a dropped stream
		// and burning CPU under the figures measured after it.
		gone := make(chan struct{})
		go func() {
			defer close(gone)
			io.Copy(io.Discard, r) // until the client closes
			c.Close()
		}()
		if writeN(c, n) == nil {
			closeWrite(c)
		}
		<-gone
	case "UP":
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 {
			return
		}
		if _, err := io.CopyN(io.Discard, r, n); err != nil {
			return
		}
		if _, err := io.WriteString(c, "OK\n"); err != nil {
			return
		}
		closeWrite(c)
		io.Copy(io.Discard, r)
	case "ECHO":
		io.Copy(c, r)
		closeWrite(c)
	case "IDLE":
		o.idle.Add(1)
		io.Copy(io.Discard, r)
		o.idle.Add(-1)
	case "STAT":
		fmt.Fprintf(c, "%d\n", o.idle.Load())
	}
}

// writeN writes n bytes of chunk to w.
func writeN(w io.Writer, n int64) error {
	for n > 0 {
		b := chunk
		if int64(len(b)) > n {
			b = b[:n]
		}
		m, err := w.Write(b)
		n -= int64(m)
		if err != nil {
			return err
		}
	}
	return nil
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

func (o *origin) Close() error {
	_, err := o.close()
	return err
}

// httpOrigin is a loopback HTTP server answering every request with a
// short "ok\n", one request per connection, for the setup-latency figures
// of client-speaks-first traffic.
type httpOrigin struct {
	srv    *http.Server
	ln     net.Listener
	served chan error
}

const httpBody = "ok\n"

func startHTTPOrigin() (*httpOrigin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("http origin: listen: %w", err)
	}
	h := &httpOrigin{
		ln: ln,
		srv: &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, httpBody) // a client that left needs no answer
			}),
			ReadHeaderTimeout: commandTimeout,
		},
		served: make(chan error, 1),
	}
	h.srv.SetKeepAlivesEnabled(false)
	go func() { h.served <- h.srv.Serve(ln) }()
	return h, nil
}

func (h *httpOrigin) addr() string { return h.ln.Addr().String() }

// Close closes the listener and every connection and waits for Serve.
func (h *httpOrigin) Close() error {
	err := h.srv.Close()
	if serr := <-h.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
