package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsPair is a client and a server wsConn over a real WebSocket on
// loopback. (golang.org/x/net/nettest.TestConn does not fit: it expects a
// connection to stay usable after a deadline expired mid-operation, which
// gorilla's permanent errors rule out; the multiplexers set no deadlines.)
func wsPair(t *testing.T) (client, server *wsConn) {
	t.Helper()
	ln := loopbackListener(t)
	accepted := make(chan *wsConn, 1)
	up := websocket.Upgrader{ReadBufferSize: wsBufferSize, WriteBufferSize: wsBufferSize}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		accepted <- newWSConn(ws)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	d := websocket.Dialer{ReadBufferSize: wsBufferSize, WriteBufferSize: wsBufferSize}
	ws, resp, err := d.Dial("ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client = newWSConn(ws)
	select {
	case server = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no server side")
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// TestWSConnCarriesAByteStream writes uneven pieces (empty, tiny, larger
// than the buffers) each way and reads them back with another size: the
// bytes arrive complete and in order, message boundaries invisible.
func TestWSConnCarriesAByteStream(t *testing.T) {
	client, server := wsPair(t)
	data := make([]byte, 3<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"up", client, server}, {"down", server, client}} {
		sent := make(chan error, 1)
		go func() {
			pieces := rand.New(rand.NewPCG(3, 4))
			rest := data
			for len(rest) > 0 {
				n := min(len(rest), []int{0, 1, 7, 1000, 70 << 10, 200 << 10}[pieces.IntN(6)])
				if _, err := dir.from.Write(rest[:n]); err != nil {
					sent <- err
					return
				}
				rest = rest[n:]
			}
			sent <- nil
		}()
		got := make([]byte, 0, len(data))
		buf := make([]byte, 33<<10)
		for len(got) < len(data) {
			n, err := dir.to.Read(buf[:min(len(buf), len(data)-len(got))])
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("%s: read after %d bytes: %v", dir.name, len(got), err)
			}
		}
		if err := <-sent; err != nil {
			t.Fatalf("%s: write: %v", dir.name, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: bytes differ", dir.name)
		}
	}
}

// TestWSConnConcurrentWritesStayWhole: each Write is one message, so
// writes from several goroutines interleave only between writes.
func TestWSConnConcurrentWritesStayWhole(t *testing.T) {
	client, server := wsPair(t)
	const writers, writes, size = 8, 50, 4096
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			b := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range writes {
				if _, err := client.Write(b); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	buf := make([]byte, size)
	for range writers * writes {
		if _, err := io.ReadFull(server, buf); err != nil {
			t.Fatal(err)
		}
		if bytes.Count(buf, buf[:1]) != size {
			t.Fatalf("a write was split: %q…", buf[:16])
		}
	}
	wg.Wait()
}

// TestWSConnCloseEndsTheStream: the peer reads io.EOF after the data,
// Close can be called again, and I/O on the closed side fails.
func TestWSConnCloseEndsTheStream(t *testing.T) {
	client, server := wsPair(t)
	if _, err := client.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	first := client.Close()
	if err := client.Close(); !errors.Is(err, first) {
		t.Fatalf("second Close: %v, first: %v", err, first)
	}
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "last" {
		t.Fatalf("ReadAll: %q, %v", got, err)
	}
	if n, err := server.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("Read after the end: %d, %v; want io.EOF again", n, err)
	}
	if _, err := client.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestWSConnDeadline: an expired read deadline is a timeout, as net.Conn
// promises.
func TestWSConnDeadline(t *testing.T) {
	_, server := wsPair(t)
	if err := server.SetDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := server.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline: %v, want a timeout", err)
	}
	if server.LocalAddr() == nil || server.RemoteAddr() == nil {
		t.Fatal("no addresses")
	}
}
