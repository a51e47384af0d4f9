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
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// The two processes of a reference tunnel, started by the harness as
// `bench refserver -mux NAME -listen ADDR` and
// `bench refclient -mux NAME -listen ADDR -server ws://ADDR/`. Each logs
// a ready line and runs until SIGINT or SIGTERM (or, for the client,
// until its session ends: it does not reconnect).

// refExitGrace is how long a reference process may take to stop.
const refExitGrace = 500 * time.Millisecond

const (
	refServerReady = "refserver listening"
	refClientReady = "refclient connected"
)

// refCommand runs a reference process given its arguments (after the
// subcommand name); it returns the process's exit code.
func refCommand(sub string, args []string) int {
	fs := flag.NewFlagSet(sub, flag.ContinueOnError)
	mux := fs.String("mux", muxYamux, "multiplexer: yamux or smux")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	server := fs.String("server", "", "refclient: the refserver's ws:// URL")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// yamux v0.1.2's streams spin in Read between their session's shutdown
	// and their forced close (Stream.Read loops on the closed shutdown
	// channel); with thousands open that takes seconds on 2 cores. The
	// process gets a short grace to send its close frame, then leaves.
	go func() {
		<-ctx.Done()
		time.Sleep(refExitGrace)
		os.Exit(0)
	}()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", sub, err)
		return 1
	}
	switch sub {
	case "refserver":
		err = runRefServer(ctx, ln, *mux)
	case "refclient":
		err = runRefClient(ctx, ln, *mux, *server)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", sub, err)
		return 1
	}
	return 0
}

// runRefServer accepts WebSocket sessions and serves their streams until
// ctx ends.
func runRefServer(ctx context.Context, ln net.Listener, mux string) error {
	up := websocket.Upgrader{ReadBufferSize: wsBufferSize, WriteBufferSize: wsBufferSize}
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return // Upgrade answered the client
			}
			conn := newWSConn(ws)
			defer conn.Close()
			sess, err := newMuxSession(mux, conn, false)
			if err != nil {
				fmt.Fprintln(os.Stderr, "refserver:", err)
				return
			}
			defer sess.Close()
			for {
				st, err := sess.accept()
				if err != nil {
					return // the session ended
				}
				go serveRefStream(st)
			}
		}),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "%s on %s (%s)\n", refServerReady, ln.Addr(), mux)
	select {
	case <-ctx.Done():
		// Close ends the listener; the hijacked WebSockets end with the
		// process.
		err := srv.Close()
		<-served
		return err
	case err := <-served:
		return err
	}
}

// serveRefStream reads a stream's target, dials it, answers and relays.
func serveRefStream(st net.Conn) {
	st.SetReadDeadline(time.Now().Add(dialTimeout))
	target, err := readRefHeader(st)
	if err != nil {
		st.Close()
		return
	}
	st.SetReadDeadline(time.Time{})
	c, err := net.DialTimeout("tcp", target, dialTimeout)
	if err != nil {
		_, _ = st.Write([]byte{refFailed}) // the stream is closed next either way
		st.Close()
		return
	}
	if _, err := st.Write([]byte{refOK}); err != nil {
		c.Close()
		st.Close()
		return
	}
	splice(st, st, c)
}

// runRefClient connects one session to the server, then serves HTTP
// CONNECT on ln, one stream per connection, until ctx ends or the
// session fails.
func runRefClient(ctx context.Context, ln net.Listener, mux, server string) error {
	d := websocket.Dialer{ReadBufferSize: wsBufferSize, WriteBufferSize: wsBufferSize, HandshakeTimeout: dialTimeout}
	ws, resp, err := d.DialContext(ctx, server, nil)
	if err != nil {
		ln.Close()
		return fmt.Errorf("dial %s: %w", server, err)
	}
	resp.Body.Close()
	conn := newWSConn(ws)
	sess, err := newMuxSession(mux, conn, true)
	if err != nil {
		conn.Close()
		ln.Close()
		return err
	}
	fmt.Fprintf(os.Stderr, "%s to %s (%s), CONNECT proxy on %s\n", refClientReady, server, mux, ln.Addr())
	err = acceptUntil(ctx, ln, func(c net.Conn) { go serveConnect(c, sess) })
	conn.Close() // the close frame first: the server sees a normal end
	sess.Close()
	return err
}

// serveConnect answers one HTTP CONNECT through a new stream of sess.
func serveConnect(c net.Conn, sess muxSession) {
	c.SetReadDeadline(time.Now().Add(dialTimeout))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		_, _ = io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		c.Close()
		return
	}
	st, err := openRefStream(sess, req.Host)
	if err != nil {
		_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		c.Close()
		return
	}
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		st.Close()
		c.Close()
		return
	}
	splice(c, br, st)
}

// openRefStream opens a stream to target and waits for the server's
// answer.
func openRefStream(sess muxSession, target string) (net.Conn, error) {
	st, err := sess.open()
	if err != nil {
		return nil, err
	}
	var status [1]byte
	if err = writeRefHeader(st, target); err == nil {
		st.SetReadDeadline(time.Now().Add(dialTimeout))
		_, err = io.ReadFull(st, status[:])
		st.SetReadDeadline(time.Time{})
	}
	if err == nil && status[0] != refOK {
		err = errRefFailed
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}
