package warm

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a worker behind: Close stops and
// waits for every one.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *Pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.idle
}

// Pieces one after another run on the one goroutine the first started:
// that is the point of the pool.
func TestIdleWorkerRunsTheNextPiece(t *testing.T) {
	p := New(4, time.Minute)
	defer p.Close()
	for i := range 100 {
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
		// The worker parks after the piece returns; wait for that, or the
		// next Go would (rightly) start a second goroutine.
		waitFor(t, "the worker to park", func() bool { return p.idleCount() == 1 })
		if got := p.started.Load(); got != 1 {
			t.Fatalf("piece %d: %d goroutines started, want 1", i, got)
		}
	}
}

// Pieces that overlap each get a goroutine at once: none waits for
// another to finish.
func TestOverlappingPiecesRunAtOnce(t *testing.T) {
	p := New(2, time.Minute)
	defer p.Close()
	const n = 20
	release := make(chan struct{})
	var running sync.WaitGroup
	running.Add(n)
	for range n {
		p.Go(func() {
			running.Done()
			<-release
		})
	}
	running.Wait() // all n run together, or this blocks and the test times out
	close(release)
	// Only maxIdle stay; the others end.
	waitFor(t, "2 idle workers", func() bool { return p.idleCount() == 2 })
	if got := p.started.Load(); got != n {
		t.Errorf("%d goroutines started, want %d", got, n)
	}
}

// An idle worker ends after idleFor: a quiet proxy keeps no stacks.
func TestIdleWorkerEnds(t *testing.T) {
	p := New(4, 20*time.Millisecond)
	defer p.Close()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	waitFor(t, "the worker to park", func() bool { return p.idleCount() == 1 })
	waitFor(t, "the idle worker to end", func() bool { return p.idleCount() == 0 })
	done2 := make(chan struct{})
	p.Go(func() { close(done2) })
	<-done2
	if got := p.started.Load(); got != 2 {
		t.Errorf("%d goroutines started, want 2: the first ended while idle", got)
	}
}

// Close waits for a piece still running, ends the idle workers, and is
// idempotent; a piece given after Close still runs, and a second Close
// waits for it.
func TestCloseWaitsForEveryPiece(t *testing.T) {
	p := New(4, time.Minute)
	idleDone := make(chan struct{})
	p.Go(func() { close(idleDone) })
	<-idleDone
	waitFor(t, "the worker to park", func() bool { return p.idleCount() == 1 })

	var finished atomic.Bool
	started := make(chan struct{})
	p.Go(func() {
		close(started)
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
	})
	<-started
	p.Close()
	if !finished.Load() {
		t.Fatal("Close returned while a piece was running")
	}
	if n := p.idleCount(); n != 0 {
		t.Fatalf("%d workers idle after Close", n)
	}
	p.Close()

	var late atomic.Bool
	p.Go(func() { late.Store(true) })
	p.Close()
	if !late.Load() {
		t.Error("a piece given after Close did not run before the next Close returned")
	}
}

// Many pieces from many goroutines at once, under -race: each runs
// exactly once.
func TestConcurrentGo(t *testing.T) {
	p := New(8, time.Minute)
	const callers, each = 16, 200
	var ran atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			var mine sync.WaitGroup
			for range each {
				mine.Add(1)
				p.Go(func() {
					ran.Add(1)
					mine.Done()
				})
			}
			mine.Wait()
		})
	}
	wg.Wait()
	p.Close()
	if got := ran.Load(); got != callers*each {
		t.Errorf("%d pieces ran, want %d", got, callers*each)
	}
	if got := p.started.Load(); got >= callers*each {
		t.Errorf("%d goroutines for %d pieces: no worker was reused", got, callers*each)
	}
}
