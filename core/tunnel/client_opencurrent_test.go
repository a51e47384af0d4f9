package tunnel

import (
	"errors"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/internal/freeport"
)

// TestClientOpenCurrent: with a session it opens on it; without one
// (the exit down, the client reconnecting) it fails at once with
// ErrNoSession instead of waiting; after Close, ErrClientClosed.
func TestClientOpenCurrent(t *testing.T) {
	addr := freeport.Loopback(t)
	e := newStoppedExit(t, "tok", exitEcho)
	c := newTestClient(t, ClientConfig{URL: "ws://" + addr + "/porthole", Token: "tok", MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	waitStatus(t, c, 5*time.Second, "an attempt failed", func(st Status) bool { return st.Err != nil })
	for range 3 {
		if _, err := c.OpenCurrent(xid.New(), "echo:1", nil); !errors.Is(err, ErrNoSession) {
			t.Fatalf("OpenCurrent with the exit down: %v, want ErrNoSession", err)
		}
	}
	e.start(addr)
	waitStatus(t, c, 5*time.Second, "connected", func(st Status) bool { return st.State == StateConnected })
	st, err := c.OpenCurrent(xid.New(), "echo:1", []byte("early"))
	if err != nil {
		t.Fatal(err)
	}
	if err := echoOn(st, append([]byte("early"), make([]byte, 64<<10)...), len("early")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenCurrent(xid.New(), "echo:1", nil); !errors.Is(err, ErrClientClosed) {
		t.Errorf("OpenCurrent after Close: %v", err)
	}
}
