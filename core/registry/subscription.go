package registry

import "sync"

// Subscription is a stream of event batches that continues exactly after the
// snapshot it was created with.
//
// Concurrency: the registry appends to the pending queue under its lock
// without ever waiting; one pump goroutine hands the queue to C as a batch.
// A reader that lets the queue reach Options.SubscriberMax is dropped: its
// queue is discarded (memory stays bounded), C is closed and Err reports
// ErrFellBehind. Close is idempotent and waits for the pump.
type Subscription struct {
	// C delivers batches of events in order. It is closed when the
	// subscription ends; Err then says why.
	C <-chan []Event

	reg    *Registry
	out    chan []Event
	max    int
	notify chan struct{} // capacity 1: "pending is not empty"
	done   chan struct{} // closed by end: the pump must stop
	exited chan struct{} // closed by the pump when it has stopped

	mu      sync.Mutex
	pending []Event
	err     error
	ended   bool
}

// Subscribe returns, atomically, the current snapshot and a subscription
// whose first event is the one right after it. After the registry is
// closed, the subscription is returned already ended with ErrClosed.
func (r *Registry) Subscribe() (Snapshot, *Subscription) {
	s := &Subscription{
		reg:    r,
		out:    make(chan []Event),
		max:    r.opts.SubscriberMax,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	s.C = s.out
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := r.snapshotLocked()
	if r.closed {
		s.ended, s.err = true, ErrClosed
		close(s.done)
		close(s.out)
		close(s.exited)
		return snap, s
	}
	r.subs[s] = struct{}{}
	r.wg.Add(1)
	go s.pump()
	return snap, s
}

// offer queues ev without blocking; it reports false, having ended the
// subscription, when the reader fell behind. Called under the registry lock.
func (s *Subscription) offer(ev Event) bool {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return false
	}
	if len(s.pending) >= s.max {
		s.endLocked(ErrFellBehind)
		s.mu.Unlock()
		return false
	}
	s.pending = append(s.pending, ev)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return true
}

// end stops the pump and records why; the first reason wins.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(err)
}

func (s *Subscription) endLocked(err error) {
	if s.ended {
		return
	}
	s.ended, s.err, s.pending = true, err, nil
	close(s.done)
}

func (s *Subscription) pump() {
	defer s.reg.wg.Done()
	defer close(s.exited)
	defer close(s.out)
	for {
		select {
		case <-s.done:
			return
		case <-s.notify:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		select {
		case s.out <- batch:
		case <-s.done:
			return
		}
	}
}

// Err says why C was closed: ErrFellBehind, ErrClosed, or nil after Close.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription. It is idempotent and returns when the pump
// has stopped. A batch the pump was already handing over may still arrive
// on C before it closes; it is in order, like every other.
func (s *Subscription) Close() {
	s.reg.mu.Lock()
	delete(s.reg.subs, s)
	s.reg.mu.Unlock()
	s.end(nil)
	<-s.exited
}
