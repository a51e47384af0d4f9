package procinfo

import (
	"context"
	"net"
	"sync"

	"porthole/core/registry"
)

// Reasons of the lookups an Async did not run.
const (
	ReasonBusy    = "too many lookups at once"
	ReasonStopped = "proxy stopped"
)

// Defaults of NewAsync's zero arguments.
const (
	DefaultWorkers = 4
	DefaultQueue   = 1024
)

// Async runs lookups beside the work that must not wait for them, on at
// most a few goroutines of its own, and hands each result over through a
// Future.
//
// Concurrency: Start is safe from any goroutine and never blocks (a full
// queue answers ReasonBusy instead of waiting). Close is idempotent, safe
// from any goroutine, and returns when every goroutine Async started has
// ended; lookups still queued then complete with ReasonStopped, and a Start
// after Close completes at once the same way. Workers start with the first
// lookups, so an Async that is never used starts none.
type Async struct {
	r       *Resolver
	workers int
	queue   chan job
	stop    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	running int
	closed  bool
}

type job struct {
	local, remote net.Addr
	f             *Future
}

// NewAsync runs r's lookups on up to workers goroutines with up to queue
// waiting (0: the defaults).
func NewAsync(r *Resolver, workers, queue int) *Async {
	if workers <= 0 {
		workers = DefaultWorkers
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	return &Async{r: r, workers: workers, queue: make(chan job, queue), stop: make(chan struct{})}
}

// Start begins the lookup of an accepted connection's program (see
// Resolver.Lookup) and returns its Future. On a nil Async it returns nil,
// whose methods do nothing: attribution is off.
func (a *Async) Start(local, remote net.Addr) *Future {
	if a == nil {
		return nil
	}
	f := &Future{done: make(chan struct{})}
	l, lok := addrPort(local)
	rm, rok := addrPort(remote)
	switch {
	case !lok || !rok:
		f.complete(nil) // not TCP (a test's pipe): nothing to attribute
		return f
	case !IsLocalClient(l.Addr(), rm.Addr()):
		f.complete(unknown(ReasonRemote, -1)) // no lookup, no goroutine
		return f
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		f.complete(unknown(ReasonStopped, -1))
		return f
	}
	select {
	case a.queue <- job{local, remote, f}:
	default:
		a.mu.Unlock()
		f.complete(unknown(ReasonBusy, -1))
		return f
	}
	if a.running < a.workers {
		a.running++
		a.wg.Add(1)
		go a.work()
	}
	a.mu.Unlock()
	return f
}

func (a *Async) work() {
	defer a.wg.Done()
	for {
		// A stop wins over queued work: Close completes what is left.
		select {
		case <-a.stop:
			return
		default:
		}
		select {
		case j := <-a.queue:
			j.f.complete(a.r.Lookup(j.local, j.remote))
		case <-a.stop:
			return
		}
	}
}

// Close stops the workers (a lookup under way finishes first) and completes
// the queued lookups with ReasonStopped. Idempotent.
func (a *Async) Close() error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.stop)
	}
	a.mu.Unlock()
	a.wg.Wait()
	for {
		select {
		case j := <-a.queue:
			j.f.complete(unknown(ReasonStopped, -1))
		default:
			return nil
		}
	}
}

// Future is the result of one lookup, shared by every registry record of
// one client connection (a keep-alive HTTP connection has several).
//
// Concurrency: every method is safe from any goroutine. Attach never
// blocks; Wait blocks until the result is there or ctx ends. A nil Future
// (attribution off) has no result: Attach does nothing, Wait returns false.
type Future struct {
	done chan struct{}

	mu   sync.Mutex
	p    *registry.Process
	ok   bool
	recs []*registry.Conn // attached before the result came
}

// Attach gives rec the result: now if it is there, or the moment it comes.
// The record may have closed by then; Conn.SetProcess handles that.
func (f *Future) Attach(rec *registry.Conn) {
	if f == nil || rec == nil {
		return
	}
	f.mu.Lock()
	if !f.ok {
		f.recs = append(f.recs, rec)
		f.mu.Unlock()
		return
	}
	p := f.p
	f.mu.Unlock()
	rec.SetProcess(p)
}

// Wait returns the result, waiting for it until ctx ends (a caller that
// routes by program bounds the wait with a short deadline). ok is false
// when ctx ended first or attribution is off. The process is nil when
// there was nothing to look up (not a TCP connection).
func (f *Future) Wait(ctx context.Context) (p *registry.Process, ok bool) {
	if f == nil {
		return nil, false
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.p, true
}

// Result is the result if it is there, without waiting.
func (f *Future) Result() (*registry.Process, bool) {
	if f == nil {
		return nil, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.p, f.ok
}

func (f *Future) complete(p *registry.Process) {
	f.mu.Lock()
	if f.ok {
		f.mu.Unlock()
		return
	}
	f.p, f.ok = p, true
	recs := f.recs
	f.recs = nil
	close(f.done)
	f.mu.Unlock()
	for _, rec := range recs {
		rec.SetProcess(p) // outside f.mu: it takes the registry's lock
	}
}
