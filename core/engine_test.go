package core_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/core"
)

// TestEngineRestart holds Engine to its documented life: Start after Stop
// serves again with the same registry; Start after Close is ErrClosed; Stop
// and Close are idempotent.
func TestEngineRestart(t *testing.T) {
	others := goleak.IgnoreCurrent()
	eng, err := core.New(core.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	reg := eng.Registry()

	for run := range 2 {
		if err := eng.Start(); err != nil {
			t.Fatalf("run %d: Start: %v", run, err)
		}
		if err := eng.Start(); !errors.Is(err, core.ErrRunning) {
			t.Errorf("run %d: Start of a running engine: %v, want ErrRunning", run, err)
		}
		if eng.Registry() != reg {
			t.Errorf("run %d: the registry changed", run)
		}
		socksHello(t, eng.Addr())
		if err := eng.Stop(); err != nil {
			t.Errorf("run %d: Stop: %v", run, err)
		}
		if err := eng.Stop(); err != nil {
			t.Errorf("run %d: second Stop: %v", run, err)
		}
		if a := eng.Addr(); a != nil {
			t.Errorf("run %d: Addr after Stop: %v", run, a)
		}
	}

	if err := eng.Start(); err != nil {
		t.Fatalf("Start before Close: %v", err)
	}
	if err := eng.Close(); err != nil {
		t.Errorf("Close of a running engine: %v", err)
	}
	if err := eng.Start(); !errors.Is(err, core.ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
	if a := eng.Addr(); a != nil {
		t.Errorf("Addr after Close: %v", a)
	}
	if err := eng.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := eng.Stop(); err != nil {
		t.Errorf("Stop after Close: %v", err)
	}
	goleak.VerifyNone(t, others)
}

// socksHello checks that a real SOCKS5 client is answered at addr: the
// greeting offering no authentication is accepted.
func socksHello(t *testing.T, addr net.Addr) {
	t.Helper()
	if addr == nil {
		t.Fatal("no address while running")
	}
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }() // the engine's Stop ends it either way
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("SOCKS5 greeting at %s: %v", addr, err)
	}
	if !bytes.Equal(got, []byte{5, 0}) {
		t.Fatalf("SOCKS5 greeting at %s answered % x, want 05 00", addr, got)
	}
}
