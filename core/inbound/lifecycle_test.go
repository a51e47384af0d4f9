package inbound_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"porthole/core/inbound"
	"porthole/core/registry"
)

// Lifecycle: Stop with live connections, and closing from the registry
// (the inspector's "close" and "close all") while bytes flow.
//
// These tests are not parallel, so they can check for leaked goroutines
// themselves, against what was running when they began.

func verifyNoLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// reader drains a connection in the background, says when it has read
// `after` bytes, and reports the total and the error that ended it.
type reader struct {
	reached chan struct{}
	done    chan readResult
}

type readResult struct {
	n   int64
	err error
}

func startReader(r io.Reader, after int64) *reader {
	rd := &reader{reached: make(chan struct{}), done: make(chan readResult, 1)}
	go func() {
		buf := make([]byte, 32<<10)
		var total int64
		for {
			n, err := r.Read(buf)
			total += int64(n)
			if total >= after && rd.reached != nil {
				close(rd.reached)
				after = 1 << 62
			}
			if err != nil {
				rd.done <- readResult{total, err}
				return
			}
		}
	}()
	return rd
}

// ended waits for the reader to end and checks it ended because the proxy
// closed the connection, not because of its deadline.
func (rd *reader) ended(t *testing.T, what string) int64 {
	t.Helper()
	res := await(t, what+" to end", rd.done)
	var ne net.Error
	if errors.As(res.err, &ne) && ne.Timeout() {
		t.Fatalf("%s: not closed by the proxy: %v", what, res.err)
	}
	return res.n
}

// streamingPage writes without end until the client goes away.
func streamingPage(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	for r.Context().Err() == nil {
		if _, err := w.Write(pattern[:32<<10]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func TestStopWithLiveConnections(t *testing.T) {
	verifyNoLeaks(t)
	v := newEnv(t, nil)
	echo := newTCPOrigin(t, "tcp4", echoHandler)
	stream, streamErrs := streamOrigin(t, 4)
	arrived := make(chan struct{}, 1)
	held := newOrigin(t, "tcp4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		<-r.Context().Done() // answers only when the proxy hangs up
	}))
	type client struct {
		name       string
		conn       io.Reader
		local      string
		registered bool
	}
	var clients []client

	// A CONNECT tunnel, idle in the relay.
	c1 := v.connect(t, echo.addr, []byte("ping"))
	if _, err := io.ReadFull(c1, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	clients = append(clients, client{"connect", c1, c1.LocalAddr().String(), true})

	// A SOCKS5 tunnel with bytes flowing.
	c2 := v.socksTunnel(t, stream.addr)
	if _, err := io.ReadFull(c2, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	clients = append(clients, client{"socks5", c2, c2.LocalAddr().String(), true})

	// A SOCKS4 tunnel.
	c3, rep := v.socks4(t, 0x01, [4]byte{127, 0, 0, 1}, echo.port(), "")
	if rep != 0x5A {
		t.Fatalf("SOCKS4 reply %#x", rep)
	}
	clients = append(clients, client{"socks4", c3, c3.LocalAddr().String(), true})

	// A forwarded request waiting for its response.
	c4 := v.dial(t)
	if _, err := io.WriteString(c4, "GET "+held.URL+"/ HTTP/1.1\r\nHost: "+held.Listener.Addr().String()+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	await(t, "the held request at the origin", arrived)
	clients = append(clients, client{"forward-waiting", c4, c4.LocalAddr().String(), true})

	// A keep-alive connection idle between requests, its upstream kept.
	c5 := v.dial(t)
	br5 := bufio.NewReader(c5)
	if _, err := io.WriteString(c5, "GET "+v.origin.URL+"/hello HTTP/1.1\r\nHost: "+v.origin.Listener.Addr().String()+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "hello" {
		t.Fatalf("keep-alive response %q, %v", b, err)
	}
	clients = append(clients, client{"keep-alive-idle", br5, c5.LocalAddr().String(), true})

	// A half-sent header, and a SOCKS5 handshake stopped halfway: nothing
	// registered yet, but the proxy owns their sockets.
	c6 := v.dial(t)
	if _, err := io.WriteString(c6, "GET http://example.com/ HTTP/1.1\r\nHo"); err != nil {
		t.Fatal(err)
	}
	clients = append(clients, client{"half-header", c6, c6.LocalAddr().String(), false})
	c7 := v.dial(t)
	if _, err := c7.Write([]byte{0x05, 0x01, 0x00}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c7, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	clients = append(clients, client{"socks5-handshake", c7, c7.LocalAddr().String(), false})

	for _, c := range clients {
		if c.registered {
			v.events.establishedOf(t, 1, byClient(c.local))
		}
	}

	v.stop()

	for _, c := range clients {
		expectClosedNamed(t, c.name, c.conn)
	}
	if err := await(t, "the streaming origin's socket to end", streamErrs); err == nil {
		t.Error("streaming origin: no error")
	}
	for _, c := range clients {
		if !c.registered {
			continue
		}
		recs := v.events.closedOf(t, 1, byClient(c.local))
		if len(recs) != 1 {
			t.Errorf("%s: %d Closed events, want 1", c.name, len(recs))
		}
		if !errors.Is(recs[0].Err, inbound.ErrStopped) {
			t.Errorf("%s: close reason %v, want %v", c.name, recs[0].Err, inbound.ErrStopped)
		}
	}
	if n := len(v.e.Registry().Snapshot().Live); n != 0 {
		t.Errorf("%d live connections after Stop", n)
	}
	if v.e.Addr() != nil {
		t.Errorf("Addr %v after Stop, want nil", v.e.Addr())
	}

	// The engine starts again, on a new port here, and serves.
	if err := v.e.Start(); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	v.addr = v.e.Addr().String()
	v.checkHealthy(t)
}

func expectClosedNamed(t *testing.T, name string, r io.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: client connection not closed: %v", name, err)
	}
}

func TestCloseByID(t *testing.T) {
	verifyNoLeaks(t)
	v := newEnv(t, nil)
	stream, streamErrs := streamOrigin(t, 1)
	echo := newTCPOrigin(t, "tcp4", echoHandler)
	reg := v.e.Registry()

	bystander := v.connect(t, echo.addr, nil)
	c := v.connect(t, stream.addr, nil)
	rd := startReader(c, 1<<20)
	await(t, "1 MiB through the tunnel", rd.reached)
	id := v.events.establishedOf(t, 1, byClient(c.LocalAddr().String()))[0].ID

	if !reg.CloseConn(id) {
		t.Fatalf("CloseConn(%s) = false for a live connection", id)
	}
	read := rd.ended(t, "the client's read")
	if err := await(t, "the origin's socket to end", streamErrs); err == nil {
		t.Error("origin: write ended without error")
	}
	recs := v.events.closedOf(t, 1, func(i registry.Info) bool { return i.ID == id })
	if !errors.Is(recs[0].Err, registry.ErrClosedByUser) {
		t.Errorf("close reason %v, want %v", recs[0].Err, registry.ErrClosedByUser)
	}
	if recs[0].Down < read {
		t.Errorf("record says %d bytes down, the client read %d", recs[0].Down, read)
	}
	if reg.CloseConn(id) {
		t.Errorf("CloseConn(%s) = true for a closed connection", id)
	}

	// Nothing else was disturbed.
	if _, err := bystander.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("still here"))
	if _, err := io.ReadFull(bystander, got); err != nil || string(got) != "still here" {
		t.Fatalf("bystander echo %q, %v", got, err)
	}
	v.checkHealthy(t)

	_ = bystander.Close()
	v.stop()
	v.checkBooks() // and exactly one Closed for the id, not two
	if n := len(eventsOf(v.events.snapshot(), registry.KindClosed, func(i registry.Info) bool { return i.ID == id })); n != 1 {
		t.Errorf("%d Closed events for %s, want 1", n, id)
	}
}

func TestCloseAll(t *testing.T) {
	verifyNoLeaks(t)
	v := newEnv(t, nil)
	stream, streamErrs := streamOrigin(t, 3)
	page := newOrigin(t, "tcp4", http.HandlerFunc(streamingPage))
	reg := v.e.Registry()

	type flow struct {
		name  string
		local string
		rd    *reader
	}
	var flows []flow

	c1 := v.connect(t, stream.addr, nil)
	flows = append(flows, flow{"connect", c1.LocalAddr().String(), startReader(c1, 64<<10)})

	c2 := v.socksTunnel(t, stream.addr)
	flows = append(flows, flow{"socks5", c2.LocalAddr().String(), startReader(c2, 64<<10)})

	c3, rep := v.socks4(t, 0x01, [4]byte{127, 0, 0, 1}, stream.port(), "")
	if rep != 0x5A {
		t.Fatalf("SOCKS4 reply %#x", rep)
	}
	flows = append(flows, flow{"socks4", c3.LocalAddr().String(), startReader(c3, 64<<10)})

	c4 := v.dial(t)
	if _, err := io.WriteString(c4, "GET "+page.URL+"/ HTTP/1.1\r\nHost: "+page.Listener.Addr().String()+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	flows = append(flows, flow{"forward", c4.LocalAddr().String(), startReader(c4, 64<<10)})

	for _, f := range flows {
		await(t, f.name+" bytes flowing", f.rd.reached)
		v.events.establishedOf(t, 1, byClient(f.local))
	}
	if n := reg.CloseAll(); n != len(flows) {
		t.Errorf("CloseAll closed %d, want %d", n, len(flows))
	}
	for _, f := range flows {
		f.rd.ended(t, f.name)
	}
	for range 3 {
		await(t, "the origin sockets to end", streamErrs)
	}
	for _, f := range flows {
		recs := v.events.closedOf(t, 1, byClient(f.local))
		if !errors.Is(recs[0].Err, registry.ErrClosedByUser) {
			t.Errorf("%s: close reason %v, want %v", f.name, recs[0].Err, registry.ErrClosedByUser)
		}
	}
	if n := reg.CloseAll(); n != 0 {
		t.Errorf("second CloseAll closed %d, want 0", n)
	}
	v.checkHealthy(t)
	v.stop()
	v.checkBooks()
	for _, f := range flows {
		if n := len(eventsOf(v.events.snapshot(), registry.KindClosed, byClient(f.local))); n != 1 {
			t.Errorf("%s: %d Closed events, want 1", f.name, n)
		}
	}
}
