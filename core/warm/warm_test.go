package warm

import (
	"runtime"
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

// Pieces one after another run on the goroutines already started: that
// is the point of the pool. (Not exactly one: a worker counted idle may
// not have reached its receive yet when the next Go looks, and then a
// second one starts, rightly.)
func TestIdleWorkerRunsTheNextPiece(t *testing.T) {
	p := New(4, time.Minute)
	defer p.Close()
	const pieces = 100
	for range pieces {
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
		waitFor(t, "a worker to park", func() bool { return p.idleCount() >= 1 })
	}
	if got := p.started.Load(); got > pieces/10 {
		t.Fatalf("%d goroutines started for %d pieces one after another: idle workers were not reused", got, pieces)
	}
}

// Pieces that overlap each get a goroutine at once: none waits for
// another to finish. Afterwards only maxIdle workers stay.
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
	if got := p.started.Load(); got != n {
		t.Errorf("%d goroutines started, want %d", got, n)
	}
	close(release)
	waitFor(t, "all but 2 workers to end", func() bool { return p.live.Load() == 2 })
	if got := p.idleCount(); got != 2 {
		t.Errorf("%d workers idle, want 2", got)
	}
}

// An idle worker ends after idleFor: a quiet proxy keeps no stacks.
func TestIdleWorkerEnds(t *testing.T) {
	p := New(4, 20*time.Millisecond)
	defer p.Close()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	waitFor(t, "the idle worker to end", func() bool { return p.live.Load() == 0 })
	done2 := make(chan struct{})
	p.Go(func() { close(done2) })
	<-done2
	if got := p.started.Load(); got != 2 {
		t.Errorf("%d goroutines started, want 2: the first ended while idle", got)
	}
}

// A worker idle holds nothing of the piece it ran: what the piece's
// closure referenced can be collected.
func TestIdleWorkerHoldsNoPiece(t *testing.T) {
	p := New(4, time.Minute)
	defer p.Close()
	collected := make(chan struct{})
	func() {
		big := new([1 << 16]byte)
		runtime.AddCleanup(big, func(ch chan struct{}) { close(ch) }, collected)
		done := make(chan struct{})
		p.Go(func() {
			big[0] = 1
			close(done)
		})
		<-done
	}()
	waitFor(t, "a worker to park", func() bool { return p.idleCount() == 1 })
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the piece's closure is still reachable from the idle worker")
		}
	}
}

// Close waits for a piece still running, ends the idle workers, and is
// idempotent; Go after Close panics instead of starting a goroutine no
// one waits for.
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
	if n := p.live.Load(); n != 0 {
		t.Fatalf("%d workers alive after Close", n)
	}
	p.Close()

	defer func() {
		if recover() == nil {
			t.Error("Go after Close did not panic")
		}
	}()
	p.Go(func() {})
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
