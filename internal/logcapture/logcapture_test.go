package logcapture

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// A logger writing from other goroutines: Await wakes on the writes and
// returns once the record it waits for is there; every line is kept.
func TestSinkAwaitsWrites(t *testing.T) {
	s := NewSink()
	log := slog.New(slog.NewTextHandler(s, nil))
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("step", "n", i)
		}()
	}
	data := s.Await(t, 10*time.Second, "step 7", func(b []byte) bool { return bytes.Contains(b, []byte("n=7")) })
	if !bytes.Contains(data, []byte("n=7")) {
		t.Fatalf("Await returned %q without the record it waited for", data)
	}
	wg.Wait()
	if n := bytes.Count([]byte(s.String()), []byte("\n")); n != 10 {
		t.Errorf("%d lines kept, want 10:\n%s", n, s)
	}
}

// A Snapshot is a copy, and its channel closes at the next Write only.
func TestSinkSnapshot(t *testing.T) {
	s := NewSink()
	fmt.Fprint(s, "one")
	data, changed := s.Snapshot()
	data[0] = 'X'
	select {
	case <-changed:
		t.Fatal("changed is closed before any new Write")
	default:
	}
	fmt.Fprint(s, " two")
	select {
	case <-changed:
	default:
		t.Fatal("changed is still open after a Write")
	}
	if got := s.String(); got != "one two" {
		t.Errorf("String() = %q, want %q (the snapshot is a copy)", got, "one two")
	}
}
