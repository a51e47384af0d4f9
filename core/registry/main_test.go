package registry

import (
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/internal/chantest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait in these tests: generous for a loaded 2-core
// machine under -race, yet a hang fails instead of timing the suite out.
const waitLimit = 20 * time.Second

// quiet is a stats interval no test reaches: the ticker never fires, so the
// event stream holds only what the test does.
const quiet = time.Hour

func newRegistry(t testing.TB, opts Options) *Registry {
	t.Helper()
	r := New(opts)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// fakeClock is an injectable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// hookRec is an owner's abort hook that records its calls. It never blocks
// and never calls the registry, as the contract asks.
type hookRec struct {
	mu      sync.Mutex
	reasons []error
	called  chan struct{} // closed at the first call
}

func newHook() *hookRec { return &hookRec{called: make(chan struct{})} }

func (h *hookRec) abort(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reasons = append(h.reasons, err)
	if len(h.reasons) == 1 {
		close(h.called)
	}
}

func (h *hookRec) calls() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.reasons...)
}

// hookedConn registers one connection, whose abort hook records its
// calls, in a registry that publishes no stats.
func hookedConn(t *testing.T) (*Registry, *Conn, func(error), *hookRec) {
	t.Helper()
	r := newRegistry(t, Options{StatsInterval: quiet})
	h := newHook()
	c, finish := r.Register(testMeta, h.abort)
	return r, c, finish, h
}

// wantReason fails the test unless c's record ended for want.
func wantReason(t *testing.T, r *Registry, c *Conn, want error) {
	t.Helper()
	if info, _ := r.Get(c.ID()); !errors.Is(info.Err, want) {
		t.Fatalf("reason %v, want %v", info.Err, want)
	}
}

// wait fails the test unless the hook is called within waitLimit.
func (h *hookRec) wait(t testing.TB) {
	t.Helper()
	chantest.Within(t, waitLimit, "the abort hook's call", h.called)
}

// next returns the next n events of sub, failing the test if the stream ends
// or stalls.
func next(t testing.TB, sub *Subscription, n int, pending *[]Event) []Event {
	t.Helper()
	deadline := time.After(waitLimit)
	for len(*pending) < n {
		select {
		case batch, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription ended early: %v", sub.Err())
			}
			*pending = append(*pending, batch...)
		case <-deadline:
			t.Fatalf("got %d events, want %d", len(*pending), n)
		}
	}
	out := (*pending)[:n:n]
	*pending = (*pending)[n:]
	return out
}

// until reads sub until an event satisfies stop, returning all events read
// up to and including it.
func until(t testing.TB, sub *Subscription, stop func(Event) bool) []Event {
	t.Helper()
	var out []Event
	readBatches(t, sub, func(batch []Event, ok bool) bool {
		if !ok {
			t.Fatalf("subscription ended early: %v", sub.Err())
		}
		for i, ev := range batch {
			if stop(ev) {
				out = append(out, batch[:i+1]...)
				return true
			}
		}
		out = append(out, batch...)
		return false
	}, func() { t.Fatalf("condition not reached after %d events", len(out)) })
	return out
}

// drainClosed waits for C to be closed, returning the events still
// delivered before it.
func drainClosed(t testing.TB, sub *Subscription) []Event {
	t.Helper()
	var out []Event
	readBatches(t, sub, func(batch []Event, ok bool) bool {
		out = append(out, batch...)
		return !ok
	}, func() { t.Fatal("subscription channel not closed") })
	return out
}

// readBatches hands each batch from sub.C (ok false once C is closed) to
// handle until it returns true; if that takes longer than waitLimit it
// calls timedOut, which must fail the test.
func readBatches(t testing.TB, sub *Subscription, handle func(batch []Event, ok bool) bool, timedOut func()) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case batch, ok := <-sub.C:
			if handle(batch, ok) {
				return
			}
		case <-deadline:
			timedOut()
			return
		}
	}
}

// liveLen reads the live map's size directly.
func liveLen(r *Registry) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}
