package tunnel

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/xid"
	"golang.org/x/net/nettest"
)

// sessionPair runs a client and an exit session over a real WebSocket on
// loopback; streams the client opens arrive on the returned channel,
// accepted (sessionPairAnswering with accept false leaves the answer to the
// test).
func sessionPair(t testing.TB, cfg Config) (client, exit *Session, opened <-chan *Stream) {
	return sessionPairAnswering(t, cfg, true)
}

// openStream opens one stream to target on a new session pair with cfg:
// the sessions, the client's stream and the exit's end of it.
func openStream(t testing.TB, cfg Config, target string) (client, exit *Session, st, peer *Stream) {
	t.Helper()
	client, exit, opened := sessionPair(t, cfg)
	st, err := client.Open(xid.New(), target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return client, exit, st, <-opened
}

// exitServer serves exit sessions with cfg, onOpen their streams' handler,
// on a loopback HTTP server; it sends each new session on the channel.
func exitServer(a *Acceptor, cfg Config, onOpen func(context.Context, *Stream, string)) (*httptest.Server, <-chan *Session) {
	exits := make(chan *Session, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := a.Accept(w, r)
		if err != nil {
			return
		}
		ecfg := cfg
		ecfg.OnOpen = onOpen
		exits <- NewSession(ws, false, ecfg)
	}))
	return srv, exits
}

func sessionPairAnswering(t testing.TB, cfg Config, accept bool) (client, exit *Session, opened <-chan *Stream) {
	return sessionPairVia(t, cfg, accept, nil)
}

// sessionPairVia is sessionPairAnswering with the client dialing the exit
// through hop, when not nil: hop gets the exit's address and returns the
// one to dial, and a stop that the cleanup runs after closing both
// sessions and before the exit's server, which waits for its connections.
func sessionPairVia(t testing.TB, cfg Config, accept bool, hop func(exitAddr string) (addr string, stop func())) (client, exit *Session, opened <-chan *Stream) {
	a, err := NewAcceptor("tok")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *Stream, 64)
	srv, exits := exitServer(a, cfg, func(_ context.Context, st *Stream, _ string) {
		if accept {
			st.Accept()
		}
		ch <- st
	})
	t.Cleanup(srv.Close)
	addr, stop := strings.TrimPrefix(srv.URL, "http://"), func() {}
	if hop != nil {
		addr, stop = hop(addr)
	}
	ws, err := Dial(context.Background(), "ws://"+addr, "tok", DialOptions{Timeout: 10 * time.Second})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	client = NewSession(ws, true, cfg)
	exit = <-exits
	t.Cleanup(func() {
		client.Close()
		exit.Close()
		stop()
	})
	return client, exit, ch
}

func TestStreamIsANetConn(t *testing.T) {
	client, _, opened := sessionPair(t, Config{})
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		st, err := client.Open(xid.New(), "example.com:80", nil)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := st.WaitOpen(context.Background()); err != nil {
			return nil, nil, nil, err
		}
		peer := <-opened
		return st, peer, func() { st.Close(); peer.Close() }, nil
	})
}
