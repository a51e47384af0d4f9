// Package logcapture keeps what a program under test writes to its log
// (or any output) and lets the test wait for what it expects there,
// woken by each write instead of polling. Only tests import it.
package logcapture

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"
)

// maxRounds bounds Await's loop: one round per write.
const maxRounds = 100_000

// Sink is an io.Writer that keeps everything written to it. slog's text
// and JSON handlers write each record with one Write, so for a logger each
// Write is one line. Safe for concurrent use.
type Sink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced by every Write
}

// NewSink returns an empty Sink.
func NewSink() *Sink { return &Sink{changed: make(chan struct{})} }

// Write keeps p and wakes whoever waits.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.buf.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return n, err
}

// String is everything written so far.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Snapshot is a copy of everything written so far and a channel closed at
// the next Write.
func (s *Sink) Snapshot() ([]byte, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.buf.Bytes()), s.changed
}

// Await waits at most d until ok accepts everything written so far, and
// returns that; the test fails, naming what and quoting the output, if it
// never does.
func (s *Sink) Await(t testing.TB, d time.Duration, what string, ok func(data []byte) bool) []byte {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for range maxRounds {
		data, changed := s.Snapshot()
		if ok(data) {
			return data
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("no %s within %v; output:\n%s", what, d, s)
		}
	}
	t.Fatalf("no %s after %d writes", what, maxRounds)
	return nil
}
