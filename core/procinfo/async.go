package procinfo

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

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
// Concurrency: Start and Future.Start are safe from any goroutine and
// never block for long: they answer from the cache in a few system calls
// or queue the lookup for a worker (a full queue answers ReasonBusy
// instead of waiting). Close is idempotent, safe
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
// Resolver.Lookup) and returns its Future: Prepare and Future.Start. On a
// nil Async it returns nil, whose methods do nothing: attribution is off.
func (a *Async) Start(local, remote net.Addr) *Future {
	f := a.Prepare(local, remote)
	f.Start()
	return f
}

// Prepare returns the Future of the lookup of an accepted connection's
// program without starting it: its owner starts it (Future.Start) where
// the work costs the connection nothing, e.g. once it has answered the
// client and waits for the client's next bytes. Wait starts it too. nil on
// a nil Async (attribution off).
func (a *Async) Prepare(local, remote net.Addr) *Future {
	if a == nil {
		return nil
	}
	return &Future{a: a, local: local, remote: remote, since: a.r.Mark()}
}

// ended passes a Future's End on to the Resolver.
func (a *Async) ended(f *Future) {
	l, lok := addrPort(f.local)
	rm, rok := addrPort(f.remote)
	if lok && rok {
		a.r.Ended(l, rm)
	}
}

// run is Future.Start's work, once per Future.
func (a *Async) run(f *Future) {
	l, lok := addrPort(f.local)
	rm, rok := addrPort(f.remote)
	switch {
	case !lok || !rok:
		f.complete(nil) // not TCP (a test's pipe): nothing to attribute
		return
	case !IsLocalClient(l.Addr(), rm.Addr()):
		f.complete(unknown(ReasonRemote, -1)) // no lookup, no goroutine
		return
	}
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if !closed {
		// A program seen before costs a few system calls here, less than
		// waking a worker.
		if p, ok := a.r.QuickSince(l, rm, f.since); ok {
			f.complete(p)
			return
		}
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		f.complete(unknown(ReasonStopped, -1))
		return
	}
	select {
	case a.queue <- job{f.local, f.remote, f}:
	default:
		a.mu.Unlock()
		f.complete(unknown(ReasonBusy, -1))
		return
	}
	if a.running < a.workers {
		a.running++
		a.wg.Add(1)
		go a.work()
	}
	a.mu.Unlock()
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
// blocks; Start answers from the cache or hands the lookup to a worker;
// Wait starts the lookup if nobody did and blocks until the result is
// there or ctx ends. A nil Future (attribution off) has no result: Attach
// and Start do nothing, Wait returns false.
type Future struct {
	a             *Async
	local, remote net.Addr
	since         uint64 // the Resolver's mark at Prepare: the accept
	started       atomic.Bool
	ended         bool // the connection ended (guarded by mu)

	mu   sync.Mutex
	done chan struct{} // made by the first Wait, closed at the result: most are never waited for
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

// Start begins the lookup unless it has begun: on this goroutine when the
// cache answers (a few system calls), else on a worker. Idempotent.
func (f *Future) Start() {
	if f == nil || f.started.Swap(true) {
		return
	}
	f.a.run(f)
}

// End tells the lookup's Resolver that the connection has ended (its
// program's fd is free for the next one); the result stays. Idempotent.
func (f *Future) End() {
	if f == nil {
		return
	}
	f.mu.Lock()
	was, known := f.ended, f.ok && f.p.Known()
	f.ended = true
	f.mu.Unlock()
	if !was && known {
		f.a.ended(f)
	}
}

// Wait returns the result, starting the lookup if nobody has and waiting
// for it until ctx ends (a caller that
// routes by program bounds the wait with a short deadline). ok is false
// when ctx ended first or attribution is off. The process is nil when
// there was nothing to look up (not a TCP connection).
func (f *Future) Wait(ctx context.Context) (p *registry.Process, ok bool) {
	if f == nil {
		return nil, false
	}
	f.Start()
	f.mu.Lock()
	if f.ok {
		defer f.mu.Unlock()
		return f.p, true
	}
	if f.done == nil {
		f.done = make(chan struct{})
	}
	done := f.done
	f.mu.Unlock()
	select {
	case <-done:
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
	if f.done != nil {
		close(f.done)
	}
	ended := f.ended
	f.mu.Unlock()
	if ended && p.Known() {
		f.a.ended(f) // it ended before the answer came
	}
	for _, rec := range recs {
		rec.SetProcess(p) // outside f.mu: it takes the registry's lock
	}
}
