package instance

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"porthole/internal/chantest"
)

// quiet is a logger for what the test does not look at.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// listenAt listens on the socket that stands for config path k, as
// something other than Porthole holding its name would.
func listenAt(t *testing.T, k string) net.Listener {
	t.Helper()
	addr, err := address(k)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// key is a config path no other test (or a running Porthole) uses.
func key(t *testing.T) string { return filepath.Join(t.TempDir(), "config.json") }

func mustAcquire(t *testing.T, k string) *Instance {
	t.Helper()
	inst, err := Acquire(k, quiet())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	t.Cleanup(func() {
		if err := inst.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return inst
}

// askRunning is a second start of the app k: Acquire finds the running
// instance (and asks it to show).
func askRunning(t *testing.T, k string) {
	t.Helper()
	if _, err := Acquire(k, quiet()); !errors.Is(err, ErrRunning) {
		t.Fatalf("Acquire of a running instance: %v, want ErrRunning", err)
	}
}

func waitShow(t *testing.T, inst *Instance) {
	t.Helper()
	chantest.Within(t, 5*time.Second, "the running instance asked to show", inst.Show())
}

func testSecondStartShowsTheFirst(t *testing.T) {
	k := key(t)
	first := mustAcquire(t, k)
	for range 3 {
		askRunning(t, k)
		waitShow(t, first)
	}
	// Another config file is another app.
	mustAcquire(t, key(t))
}

func TestSecondStartShowsTheFirst(t *testing.T) { testSecondStartShowsTheFirst(t) }

func TestRequestsCoalesce(t *testing.T) {
	k := key(t)
	first := mustAcquire(t, k)
	for range 5 {
		askRunning(t, k)
	}
	waitShow(t, first)
	select {
	case <-first.Show():
		t.Fatal("five requests nobody took yet should wait as one")
	default:
	}
}

func testAfterCloseTheNextStartRuns(t *testing.T) {
	k := key(t)
	first, err := Acquire(k, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	mustAcquire(t, k)
}

func TestAfterCloseTheNextStartRuns(t *testing.T) { testAfterCloseTheNextStartRuns(t) }

// Something that holds the name but does not speak the protocol is not
// taken for a running Porthole, and is not removed either.
func TestHolderThatDoesNotAnswer(t *testing.T) {
	k := key(t)
	ln := listenAt(t, k)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("nope\n"))
		_ = c.Close()
	}()
	_, err := Acquire(k, quiet())
	if err == nil || errors.Is(err, ErrRunning) {
		t.Fatalf("Acquire = %v, want an error that is not ErrRunning", err)
	}
	if !errors.Is(err, errNoAnswer) {
		t.Errorf("err = %v, want errNoAnswer", err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
}

// A request that is not "show" does nothing and the app keeps answering.
func TestGarbageRequestIsIgnored(t *testing.T) {
	k := key(t)
	first := mustAcquire(t, k)
	c, err := net.Dial("unix", first.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("rm -rf /\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Errorf("answer to garbage: %q, %v; want nothing", b, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.Show():
		t.Fatal("garbage asked to show")
	default:
	}
	askRunning(t, k)
	waitShow(t, first)
}
