// Package warm runs short pieces of deep work (a connection's setup, a
// dial) on goroutines that are kept for the next piece, so the stack one
// piece grew serves the next one instead of being grown again.
//
// Why: a goroutine starts with a small stack and copies it each time it
// doubles; a connection's setup (an HTTP parser, the dialer, the program
// lookup) grows it three or four times. Run on a fresh goroutine per
// connection, those copies were about 5 % of a proxy's CPU under a
// connection storm. The long-lived goroutine that relays the connection
// afterwards must not do this work itself: it would keep the grown stack
// while the connection idles. (The runtime halves a parked goroutine's
// stack at a GC when it uses under a quarter of it, so a worker idle
// across GCs regrows some of it; one copy instead of several.)
//
// Concurrency: Go may be called from any goroutine until Close is called;
// a Go after that is a bug of the caller's, and panics. A piece is never
// queued: it runs at once on an idle worker or on a new goroutine. Close
// stops the idle workers and waits for every goroutine the pool started,
// including those still running a piece; it is idempotent.
package warm

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool keeps up to maxIdle idle workers for idleFor each.
type Pool struct {
	maxIdle int
	idleFor time.Duration

	work chan func() // unbuffered: a send succeeds only to an idle worker
	quit chan struct{}

	mu     sync.Mutex
	idle   int  // workers counted idle (between park and unpark)
	closed bool // Close was called: Go panics, and no worker parks again

	wg      sync.WaitGroup // the workers; Add only under mu while !closed
	started atomic.Int64   // workers started, for the tests
	live    atomic.Int64   // workers not yet ended, for the tests
}

// New returns a pool that keeps at most maxIdle idle workers, each for at
// most idleFor after its last piece.
func New(maxIdle int, idleFor time.Duration) *Pool {
	return &Pool{
		maxIdle: maxIdle,
		idleFor: idleFor,
		work:    make(chan func()),
		quit:    make(chan struct{}),
	}
}

// Go runs f on an idle worker, or on a new goroutine if none is idle.
func (p *Pool) Go(f func()) {
	if f == nil {
		panic("warm: Go(nil)") // a nil piece would read as "end" to a worker
	}
	select {
	case p.work <- f:
		return
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		panic("warm: Go after Close")
	}
	p.wg.Add(1) // under mu, before closed: never concurrent with Close's Wait at 0
	p.mu.Unlock()
	p.started.Add(1)
	p.live.Add(1)
	go p.worker(f)
}

func (p *Pool) worker(f func()) {
	defer p.wg.Done()
	defer p.live.Add(-1)
	var timer *time.Timer
	for {
		f()
		if !p.park() {
			if timer != nil {
				timer.Stop()
			}
			return
		}
		if timer == nil {
			timer = time.NewTimer(p.idleFor)
		} else {
			timer.Reset(p.idleFor)
		}
		// Nothing the piece referenced stays reachable while idle: without
		// this, f would be live across the select (read after it).
		f = nil
		select {
		case f = <-p.work:
		case <-timer.C:
		case <-p.quit:
		}
		p.unpark()
		if f == nil {
			timer.Stop()
			return
		}
	}
}

// park counts the caller as idle, unless the pool has enough idle
// workers or is closed.
func (p *Pool) park() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.idle >= p.maxIdle {
		return false
	}
	p.idle++
	return true
}

func (p *Pool) unpark() {
	p.mu.Lock()
	p.idle--
	p.mu.Unlock()
}

// Close stops the idle workers and waits for all the pool's goroutines,
// those still running a piece too. Idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.quit)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
