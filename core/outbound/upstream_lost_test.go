package outbound

import (
	"errors"
	"io"
	"net"
	"porthole/internal/origin"
	"testing"
	"time"
)

// TestUpstreamExitLost: a connection through a microsocks exit that is
// killed mid-transfer ends with "exit lost: one" (an *ExitLostError, as a
// porthole exit's streams do), and the group learns at once that the exit
// is down; an ending of the target's own stays what it was.
func TestUpstreamExitLost(t *testing.T) {
	echo := origin.Echo(t)
	g, p1, _ := twoSOCKS(t, PolicyFailover)
	c, err := g.DialContext(t.Context(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		read <- err
	}()
	chunk := make([]byte, 32<<10)
	if _, err := c.Write(chunk); err != nil {
		t.Fatal(err)
	}
	p1.Kill(t)
	var werr error
	for range 10000 { // until the write fails: the proxy's socket was reset
		if _, werr = c.Write(chunk); werr != nil {
			break
		}
	}
	if werr == nil {
		t.Fatal("writes through a killed proxy went on")
	}
	// What the inbound side asks once the relay ended, on the socket's
	// own error (the relay copies the bare socket).
	err = ExitLost(c, werr)
	var lost *ExitLostError
	if !errors.As(err, &lost) || lost.Name != "one" || !errors.Is(err, ErrExitLost) || err.Error() != "exit lost: one" {
		t.Fatalf("after the kill: %v (%T), from %v; want exit lost: one", err, err, werr)
	}
	waitState(t, g, "one", ExitDown)
	_ = c.Close() // ends the reader
	<-read

	// The target ending (EOF) is no exit's loss.
	c2, err := g.DialContext(t.Context(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := ExitLost(c2, io.EOF); err != io.EOF {
		t.Errorf("EOF through a live exit: %v", err)
	}
	if err := ExitLost(c2, net.ErrClosed); !errors.Is(err, net.ErrClosed) || errors.Is(err, ErrExitLost) {
		t.Errorf("a local close: %v", err)
	}
}
