package tunnel

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"porthole/internal/randbytes"

	"github.com/rs/xid"

	"porthole/internal/chantest"
)

// echoExit makes the exit side echo every stream back and then half-close.
func echoExit(opened <-chan *Stream, done <-chan struct{}) {
	for {
		select {
		case st := <-opened:
			go func() {
				defer st.Close()
				if _, err := io.Copy(st, st); err != nil {
					return
				}
				_ = st.CloseWrite() // the client checks it got everything
			}()
		case <-done:
			return
		}
	}
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestManyStreamsNoLossNoStall: concurrent streams of random sizes echo
// through the tunnel with matching checksums, while one stream's reader
// takes nothing: its peer is held back by flow control (the bytes buffered
// for it stay within its window) and the others are not stalled.
func TestManyStreamsNoLossNoStall(t *testing.T) {
	client, _, opened := sessionPair(t, Config{})
	stop := make(chan struct{})
	defer close(stop)
	go echoExit(opened, stop)

	// The slow stream: 4 MiB written, nothing read until the others end.
	slow, err := client.Open(xid.New(), "slow:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	slowData := make([]byte, 4<<20)
	for i := range slowData {
		slowData[i] = byte(i * 7)
	}
	slowWritten := writeAndFIN(slow, slowData)

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			data := randbytes.New(uint64(i), 1+r.IntN(2<<20))
			st, err := client.Open(xid.New(), "echo:1", data[:min(len(data), 1000)])
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			go func() {
				if _, err := st.Write(data[min(len(data), 1000):]); err != nil {
					errs <- err
					return
				}
				if err := st.CloseWrite(); err != nil {
					errs <- err
				}
			}()
			got, err := io.ReadAll(st)
			if err != nil {
				errs <- err
				return
			}
			if sum(got) != sum(data) {
				errs <- errors.New("checksum mismatch")
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	chantest.Within(t, 60*time.Second, "the streams beside a slow reader", finished)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	slow.mu.Lock()
	buffered, window := slow.in.len(), slow.window
	slow.mu.Unlock()
	if buffered > int(window) {
		t.Fatalf("%d bytes buffered for a reader that reads nothing, window %d", buffered, window)
	}
	got, err := io.ReadAll(slow)
	if err != nil || sum(got) != sum(slowData) {
		t.Fatalf("slow stream: %d bytes, %v", len(got), err)
	}
	if err := <-slowWritten; err != nil {
		t.Fatal(err)
	}
	slow.Close()
}

func TestOpenRefused(t *testing.T) {
	client, _, opened := sessionPairAnswering(t, Config{}, false)
	st, err := client.Open(xid.New(), "refused:1", []byte("early bytes are dropped"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	(<-opened).Refuse(CodeRefused, "connection refused")
	var oe *OpenError
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.WaitOpen(ctx); !errors.As(err, &oe) || oe.Code != CodeRefused || oe.Reason != "connection refused" {
		t.Fatalf("WaitOpen = %v, want an OpenError with code refused", err)
	}
	if _, err := st.Read(make([]byte, 1)); !errors.As(err, &oe) {
		t.Fatalf("Read after OPEN_FAIL = %v", err)
	}
	if _, err := st.Write([]byte("more")); !errors.As(err, &oe) {
		t.Fatalf("Write after OPEN_FAIL = %v", err)
	}
}

func TestSessionEndEndsStreamsWithTunnelLost(t *testing.T) {
	client, exit, st, peer := openStream(t, Config{}, "x:1")
	readErr := make(chan error, 1)
	go func() {
		_, err := st.Read(make([]byte, 10)) // blocked when the session dies
		readErr <- err
	}()
	exit.Close()
	if err := chantest.Within(t, 10*time.Second, "the end of a blocked Read at its session's", readErr); !errors.Is(err, ErrTunnelLost) {
		t.Fatalf("blocked Read ended with %v, want ErrTunnelLost", err)
	}
	chantest.Within(t, 10*time.Second, "the client session's end after the exit went away", client.Done())
	if !errors.Is(client.Err(), ErrTunnelLost) {
		t.Fatalf("client session ended with %v", client.Err())
	}
	if _, err := client.Open(xid.New(), "x:2", nil); !errors.Is(err, ErrTunnelLost) {
		t.Fatalf("Open on a dead session: %v", err)
	}
	if _, err := peer.Write([]byte("x")); err == nil {
		t.Fatal("write on a stream of a closed session succeeded")
	}
}

// TestWindowAutoTune: with a round trip long compared to how fast the
// reader drains (forced here by setting the measured RTT), the receive
// window doubles up to MaxWindow, and the budget is charged for the growth.
func TestWindowAutoTune(t *testing.T) {
	client, _, st, peer := openStream(t, Config{MaxWindow: 4 << 20, fixedRTT: time.Second}, "bulk:1")
	go func() {
		defer peer.Close()
		buf := make([]byte, 1<<20)
		for range 32 {
			if _, err := peer.Write(buf); err != nil {
				return
			}
		}
		_ = peer.CloseWrite() // the reader sees EOF
	}()
	n, err := io.Copy(io.Discard, st)
	if err != nil || n != 32<<20 {
		t.Fatalf("read %d, %v", n, err)
	}
	st.mu.Lock()
	w := st.window
	st.mu.Unlock()
	if w != 4<<20 {
		t.Fatalf("window %d after a fast reader with a long RTT, want the max %d", w, 4<<20)
	}
	// Everything was read: the stream is charged for its growth alone.
	used := client.cfg.Budget - client.budget.Load()
	if used != int64(w)-DefaultWindow {
		t.Fatalf("budget charged %d, want the window's growth %d", used, int64(w)-DefaultWindow)
	}
	st.Close()
	if used := client.cfg.Budget - client.budget.Load(); used != 0 {
		t.Fatalf("budget still charged %d after the stream ended", used)
	}
}

// TestIdleStreamsCostNoBudget: the budget is charged for bytes held unread,
// not for windows granted, so many idle streams fit in a budget of one
// window; once unread bytes fill it, new streams are refused, and reading
// them gives the room back.
func TestIdleStreamsCostNoBudget(t *testing.T) {
	client, _, opened := sessionPair(t, Config{Budget: DefaultWindow})
	var streams []*Stream
	for i := range 40 {
		st, err := client.Open(xid.New(), "idle:1", nil)
		if err != nil {
			t.Fatalf("idle stream %d: %v", i, err)
		}
		streams = append(streams, st)
		<-opened
	}
	// The exit's side of the first stream was accepted; fill its window.
	st, err := client.Open(xid.New(), "fill:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	peer := <-opened
	if _, err := peer.Write(make([]byte, DefaultWindow)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for client.budget.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // no event marks bytes arriving unread
	}
	var oe *OpenError
	if _, err := client.Open(xid.New(), "more:1", nil); !errors.As(err, &oe) || oe.Code != CodeOverloaded {
		t.Fatalf("Open with the budget full of unread bytes: %v, want OPEN refused as overloaded", err)
	}
	if _, err := io.ReadFull(st, make([]byte, DefaultWindow)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Open(xid.New(), "again:1", nil); err != nil {
		t.Fatalf("Open after the unread bytes were read: %v", err)
	}
	for _, s := range append(streams, st) {
		s.Close()
	}
}
