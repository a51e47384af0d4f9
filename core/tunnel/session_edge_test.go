package tunnel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/internal/chantest"
)

// Concurrent Writes on one stream all complete and every byte arrives once.
func TestConcurrentWrites(t *testing.T) {
	_, _, st, peer := openStream(t, Config{}, "w:1")
	got := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, peer) // the count is what is checked
		got <- n
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, err := st.Write(make([]byte, 100_000)); err != nil || n != 100_000 {
				t.Errorf("Write = %d, %v", n, err)
			}
		}()
	}
	wg.Wait()
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n := chantest.Within(t, 30*time.Second, "the end of the concurrent writes", got); n != 800_000 {
		t.Fatalf("peer got %d bytes, want 800000", n)
	}
	st.Close()
	peer.Close()
}

// A Write waiting for credit when CloseWrite comes ends with net.ErrClosed;
// no DATA follows the FIN (the peer would reset the stream).
func TestCloseWriteDuringWrite(t *testing.T) {
	_, _, st, peer := openStream(t, Config{}, "w:2") // reads nothing yet: the Write below runs out of credit
	wrote := make(chan error, 1)
	go func() {
		_, err := st.Write(make([]byte, 4<<20))
		wrote <- err
	}()
	// One byte arriving proves the Write is under way; it cannot finish:
	// 4 MiB is far beyond the window and the peer reads nothing more yet.
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the waiting Write ended with %v, want net.ErrClosed", err)
	}
	n, err := io.Copy(io.Discard, peer)
	if err != nil {
		t.Fatalf("peer read %d then %v: DATA after FIN?", n, err)
	}
	st.Close()
	peer.Close()
}

// A long reason with multi-byte characters is cut on a character boundary
// and still reaches the client.
func TestRefuseWithLongReason(t *testing.T) {
	client, _, opened := sessionPairAnswering(t, Config{}, false)
	st, err := client.Open(xid.New(), "r:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	(<-opened).Refuse(CodeDenied, strings.Repeat("a", MaxReason-1)+"é and more")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var oe *OpenError
	if err := st.WaitOpen(ctx); !errors.As(err, &oe) || oe.Code != CodeDenied || len(oe.Reason) > MaxReason {
		t.Fatalf("WaitOpen = %v", err)
	}
	if _, err := client.Open(xid.New(), "r:2", make([]byte, MaxData+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized early data: %v", err)
	}
}

// TestExpireOpen: a stream whose OPEN the exit never answers ends in
// bounded time with a timeout the proxy answers as 504, and the exit is
// told with an RST.
func TestExpireOpen(t *testing.T) {
	client, _, opened := sessionPairAnswering(t, Config{}, false)
	st, err := client.Open(xid.New(), "slow:1", []byte("GET / HTTP/1.1\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	peer := <-opened // the exit's side, never answered
	st.ExpireOpen(time.Hour)
	st.ExpireOpen(50 * time.Millisecond) // the later call wins
	var oe *OpenError
	if _, err := st.Read(make([]byte, 1)); !errors.As(err, &oe) || oe.Code != CodeTimeout {
		t.Fatalf("Read of an unanswered stream: %v, want an OpenError with CodeTimeout", err)
	}
	if _, err := io.ReadAll(peer); !errors.Is(err, ErrReset) {
		t.Fatalf("the exit's side: %v, want the client's RST", err)
	}
	peer.Accept() // too late: nothing is sent for a reset stream
	st.Close()
	peer.Close()
}

// TestPeerResetKeepsBufferedData: bytes that arrived before the peer's RST
// stay readable, as with TCP, and the reset comes after them; closing then
// gives the budget back.
func TestPeerResetKeepsBufferedData(t *testing.T) {
	client, _, st, peer := openStream(t, Config{}, "answer-then-reset:1")
	answer := bytes.Repeat([]byte("response "), 7000) // 63,000 bytes
	if _, err := peer.Write(answer); err != nil {
		t.Fatal(err)
	}
	peer.Abort(errors.New("target reset"))
	// The stream is forgotten by the session when the RST arrives; only
	// then read, so the bytes were buffered when the reset came.
	for deadline := time.Now().Add(10 * time.Second); client.NumStreams() > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // no event marks the RST's arrival
	}
	got, err := io.ReadAll(st)
	if !errors.Is(err, ErrReset) {
		t.Fatalf("after the data: %v, want the peer's reset", err)
	}
	if !bytes.Equal(got, answer) {
		t.Fatalf("read %d bytes before the reset, want the %d sent before it", len(got), len(answer))
	}
	st.Close()
	if used := client.cfg.Budget - client.budget.Load(); used != 0 {
		t.Fatalf("budget still charged %d after the stream was read and closed", used)
	}
}

// Reads (or WaitReads) blocked side by side on a stream that had no
// deadline (its channel is nil until one is set) all end: at a deadline
// set in the past, at one set in the future as it passes, and at the
// peer's data followed by its FIN. readWake holds one token, and each
// waiter that returns hands it on.
func TestBlockedReadsAllSeeDeadlineAndEnd(t *testing.T) {
	for _, waitFirst := range []bool{false, true} {
		name := "Read"
		if waitFirst {
			name = "WaitRead"
		}
		t.Run(name, func(t *testing.T) { blockedReadsAllEnd(t, waitFirst) })
	}
}

func blockedReadsAllEnd(t *testing.T, waitFirst bool) {
	_, _, st, peer := openStream(t, Config{}, "r:1")
	defer peer.Close()
	defer st.Close()
	const waiters = 12
	// round starts the waiters (each a Read, or a WaitRead then a Read),
	// runs end, and checks that every one returns, with ok.
	round := func(what string, end func(), ok func(n int, err error) bool) {
		t.Helper()
		type result struct {
			n   int
			err error
		}
		ended := make(chan result, waiters)
		for range waiters {
			go func() {
				if waitFirst {
					if err := st.WaitRead(); err != nil {
						ended <- result{0, err}
						return
					}
				}
				n, err := st.Read(make([]byte, 1))
				ended <- result{n, err}
			}()
		}
		time.Sleep(50 * time.Millisecond) // most of them are blocked by now; the check holds either way
		end()
		for range waiters {
			r := chantest.Within(t, 10*time.Second, what, ended)
			if !ok(r.n, r.err) {
				t.Fatalf("%s: a waiter returned %d, %v", what, r.n, r.err)
			}
		}
	}
	setDeadline := func(d time.Time) func() {
		return func() {
			if err := st.SetReadDeadline(d); err != nil {
				t.Fatal(err)
			}
		}
	}
	timedOut := func(n int, err error) bool { return n == 0 && errors.Is(err, os.ErrDeadlineExceeded) }
	round("the end of every blocked read at a past deadline", setDeadline(time.Now().Add(-time.Second)), timedOut)
	setDeadline(time.Time{})()
	round("the end of every blocked read at a future deadline", setDeadline(time.Now().Add(150*time.Millisecond)), timedOut)
	setDeadline(time.Time{})()
	// Three bytes and the FIN: three waiters get a byte each (a WaitRead
	// may see data another takes first, then the FIN), the others the end
	// of the stream; none is left blocked.
	got := 0
	round("the end of every blocked read at the peer's data and FIN", func() {
		if _, err := peer.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		if err := peer.CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}, func(n int, err error) bool {
		got += n
		return (n == 1 && err == nil) || (n == 0 && errors.Is(err, io.EOF))
	})
	if got != 3 {
		t.Fatalf("the waiters read %d bytes, want 3", got)
	}
}

// TestNothingBeforeOpenOK: an exit that sends DATA or FIN of a stream
// before answering its OPEN breaks the protocol: the client resets that
// stream (a client answered early waits for the exit's answer, which must
// come first) and the session goes on.
func TestNothingBeforeOpenOK(t *testing.T) {
	for _, send := range []struct {
		name string
		do   func(*Stream) error
	}{
		{"DATA", func(peer *Stream) error { _, err := peer.Write([]byte("too soon")); return err }},
		{"FIN", func(peer *Stream) error { return peer.CloseWrite() }},
	} {
		t.Run(send.name, func(t *testing.T) {
			client, _, opened := sessionPairAnswering(t, Config{}, false)
			st, err := client.Open(xid.New(), "early:1", nil)
			if err != nil {
				t.Fatal(err)
			}
			peer := <-opened // the exit's side, not answered
			if err := send.do(peer); err != nil {
				t.Fatal(err)
			}
			// Bounded: without the rule, nothing would ever answer the OPEN.
			if err := st.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(st); !errors.Is(err, ErrProtocol) {
				t.Errorf("client Read after %s before OPEN_OK: %v, want ErrProtocol", send.name, err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			var oe *OpenError
			if err := st.WaitOpen(ctx); !errors.Is(err, ErrProtocol) || errors.As(err, &oe) {
				t.Errorf("WaitOpen: %v, want ErrProtocol, not a refusal", err)
			}
			if err := peer.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(peer); !errors.Is(err, ErrReset) {
				t.Errorf("the exit's side: %v, want the client's RST", err)
			}
			st.Close()
			peer.Close()
			// The session is unharmed: another stream opens.
			st2, err := client.Open(xid.New(), "next:1", nil)
			if err != nil {
				t.Fatal(err)
			}
			peer2 := <-opened
			peer2.Accept()
			if err := st2.WaitOpen(t.Context()); err != nil {
				t.Errorf("the next stream: %v", err)
			}
			st2.Close()
			peer2.Close()
		})
	}
}
