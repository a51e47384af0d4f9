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
// while the connection idles.
//
// Concurrency: Go may be called from any goroutine, also during and after
// Close. A piece is never queued: it runs at once on an idle worker or on
// a new goroutine. Close stops the idle workers and waits for every
// goroutine the pool started, including those still running a piece.
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
	idle   int  // workers waiting on work
	closed bool // Close was called: no worker waits any more

	wg      sync.WaitGroup
	started atomic.Int64 // goroutines started, for the tests
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
	select {
	case p.work <- f:
		return
	default:
	}
	p.wg.Add(1)
	p.started.Add(1)
	go p.worker(f)
}

func (p *Pool) worker(f func()) {
	defer p.wg.Done()
	var timer *time.Timer
	for {
		f()
		f = nil // nothing the piece held stays reachable while idle
		if !p.park() {
			return
		}
		if timer == nil {
			timer = time.NewTimer(p.idleFor)
		} else {
			timer.Reset(p.idleFor)
		}
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

// Close stops the idle workers and waits for all the pool's goroutines.
// Pieces given to Go after Close still run, each on a goroutine of its
// own that Close (if still waiting) waits for too. Idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.quit)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
