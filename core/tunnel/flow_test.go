package tunnel

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"
)

// delayLink is a loopback TCP relay to target that holds every byte for
// delay in each direction: a long link, so that the session measures a
// real round trip and auto-tuning sees a window-limited stream.
type delayLink struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newDelayLink(t testing.TB, target string, delay time.Duration) *delayLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &delayLink{ln: ln}
	l.wg.Go(func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return // closed
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, a, b)
			l.mu.Unlock()
			l.wg.Go(func() { delayCopy(b, a, delay) })
			l.wg.Go(func() { delayCopy(a, b, delay) })
		}
	})
	t.Cleanup(l.close)
	return l
}

func (l *delayLink) addr() string { return l.ln.Addr().String() }

func (l *delayLink) close() {
	l.ln.Close()
	l.mu.Lock()
	for _, c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// delayCopy copies src to dst, each read written delay after it arrived;
// it ends when either side fails or closes.
func delayCopy(dst, src net.Conn, delay time.Duration) {
	type piece struct {
		b   []byte
		due time.Time
	}
	q := make(chan piece, 1024) // bounds what the link holds
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(q)
		for {
			b := make([]byte, 64<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- piece{b[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	})
	for p := range q {
		time.Sleep(time.Until(p.due))
		if _, err := dst.Write(p.b); err != nil {
			src.Close() // the reader ends, and with it the queue
			for range q {
			}
			break
		}
	}
	dst.Close()
	wg.Wait()
}

// delayedPair is sessionPair over a delayLink.
func delayedPair(t testing.TB, cfg Config, delay time.Duration) (client, exit *Session, opened <-chan *Stream) {
	return sessionPairVia(t, cfg, true, func(exitAddr string) (string, func()) {
		link := newDelayLink(t, exitAddr, delay)
		return link.addr(), link.close
	})
}

// bulkDownload has the exit send n bytes on a new stream, and the client
// read them as fast as it can; it returns the client's stream.
func bulkDownload(t *testing.T, client *Session, opened <-chan *Stream, n int) *Stream {
	t.Helper()
	st, err := client.Open(xid.New(), "bulk:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	peer := <-opened
	wrote := make(chan error, 1)
	go func() {
		buf := make([]byte, 128<<10)
		var err error
		for sent := 0; sent < n && err == nil; sent += len(buf) {
			_, err = peer.Write(buf[:min(len(buf), n-sent)])
		}
		if err == nil {
			err = peer.CloseWrite()
		}
		wrote <- err
	}()
	got, err := io.Copy(io.Discard, st)
	if err != nil || got != int64(n) {
		t.Fatalf("read %d of %d: %v", got, n, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	return st
}

func windowOf(st *Stream) uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.window
}

// TestWindowGrowsOverADelayedLink: over a link with a real round trip
// (measured by the session's own PING), a fast reader's window grows
// beyond the first window, and never beyond MaxWindow.
func TestWindowGrowsOverADelayedLink(t *testing.T) {
	client, _, opened := delayedPair(t, Config{MaxWindow: 2 << 20}, 10*time.Millisecond)
	st := bulkDownload(t, client, opened, 24<<20)
	defer st.Close()
	if w := windowOf(st); w <= DefaultWindow || w > 2<<20 {
		t.Fatalf("window %d after 24 MiB over a delayed link, want above %d and at most %d", w, DefaultWindow, 2<<20)
	}
}

// TestWindowGrowthLeavesBudgetForNewStreams: growth never takes the last
// quarter of the session budget, so streams that grew as far as the budget
// lets them still leave room to open more, and growth goes back to the
// budget when they end.
func TestWindowGrowthLeavesBudgetForNewStreams(t *testing.T) {
	const budget = 4 << 20
	client, _, opened := sessionPair(t, Config{Budget: budget, MaxWindow: 32 << 20, fixedRTT: time.Second})
	var streams []*Stream
	for range 3 {
		st := bulkDownload(t, client, opened, 16<<20)
		streams = append(streams, st)
		if left := client.budget.Load(); left < budget/4 {
			t.Fatalf("budget left %d after growth, want at least a quarter of %d", left, budget)
		}
	}
	grown := int64(0)
	for _, st := range streams {
		grown += int64(windowOf(st)) - DefaultWindow
	}
	if grown == 0 || grown > budget*3/4 {
		t.Fatalf("windows grew by %d in all, want some and at most %d", grown, budget*3/4)
	}
	st, err := client.Open(xid.New(), "more:1", nil)
	if err != nil {
		t.Fatalf("Open beside grown streams: %v", err)
	}
	st.Close()
	for _, st := range streams {
		st.Close()
	}
	if left := client.budget.Load(); left != budget {
		t.Fatalf("budget %d after every stream ended, want %d", left, budget)
	}
}

// TestWindowUpdateThreshold: credit goes back in sixteenths of a grown
// window, and in quarters of the first one (never a WINDOW per DATA).
func TestWindowUpdateThreshold(t *testing.T) {
	for _, c := range []struct {
		window uint32
		want   int64
	}{
		{DefaultWindow, DefaultWindow / 4},
		{1 << 20, DefaultWindow / 4},
		{16 << 20, 1 << 20},
		{32 << 20, 2 << 20},
	} {
		st := &Stream{window: c.window}
		if got := st.updateThresholdLocked(); got != c.want {
			t.Errorf("window %d: WINDOW after %d read bytes, want %d", c.window, got, c.want)
		}
	}
}
