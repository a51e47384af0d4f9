package tunnel

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

// drainAll calls WaitRead and WriteUnreadTo until the stream ends, as the
// relay does, writing into w; it returns the ending error and the most one
// call wrote.
func drainAll(st *Stream, w io.Writer) (most int64, err error) {
	for range 1 << 20 { // bounded; ends with the stream
		if err := st.WaitRead(); err != nil {
			return most, err
		}
		n, werr, rerr := st.WriteUnreadTo(w)
		most = max(most, n)
		switch {
		case werr != nil:
			return most, werr
		case rerr != nil:
			return most, rerr
		}
	}
	return most, errors.New("stream did not end")
}

// TestWriteUnreadTo: a stream drained into a writer delivers every byte in
// order, many windows' worth (so the taken bytes count as read for flow
// control), in pieces of at most drainMax, then the end; the session's
// budget is whole again afterwards.
func TestWriteUnreadTo(t *testing.T) {
	client, _, st, peer := openStream(t, Config{}, "drain:1")
	want := make([]byte, 9*DefaultWindow+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	sent := writeAndFIN(peer, want)
	var got bytes.Buffer
	most, err := drainAll(st, &got)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("drain ended with %v, want EOF", err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("drained %d bytes, want the %d sent, in order", got.Len(), len(want))
	}
	if most > drainMax {
		t.Errorf("one WriteUnreadTo wrote %d bytes, more than %d", most, drainMax)
	}
	if n, _, err := st.WriteUnreadTo(&got); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("after the end: %d, %v; want 0, EOF", n, err)
	}
	st.Close()
	peer.Close()
	if b := client.budget.Load(); b != client.cfg.Budget {
		t.Errorf("session budget %d after the stream, want %d", b, client.cfg.Budget)
	}
}

// TestWriteUnreadToEndings: nothing unread gives nothing while the stream
// is open, its deadline, its reset, or net.ErrClosed after Close; a
// failing writer's error comes back as werr.
func TestWriteUnreadToEndings(t *testing.T) {
	_, _, st, peer := openStream(t, Config{}, "drain:1")
	if n, werr, rerr := st.WriteUnreadTo(io.Discard); n != 0 || werr != nil || rerr != nil {
		t.Errorf("open, nothing unread: %d, %v, %v; want nothing", n, werr, rerr)
	}
	if err := st.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, rerr := st.WriteUnreadTo(io.Discard); !errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Errorf("past the deadline: %v", rerr)
	}
	if err := st.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Write([]byte("some bytes")); err != nil {
		t.Fatal(err)
	}
	if err := st.WaitRead(); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("writer broke")
	if _, werr, _ := st.WriteUnreadTo(failWriter{broken}); !errors.Is(werr, broken) {
		t.Errorf("failing writer: %v, want its error", werr)
	}
	if err := peer.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := drainAll(st, io.Discard); !errors.Is(err, ErrReset) {
		t.Errorf("after the peer's reset: %v, want ErrReset", err)
	}
	st.Close()
	if _, _, rerr := st.WriteUnreadTo(io.Discard); !errors.Is(rerr, net.ErrClosed) && !errors.Is(rerr, ErrReset) {
		t.Errorf("after Close: %v", rerr)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
