// Package logring keeps the last log records of the app in a ring and lets
// readers subscribe to them: the Logs window and the control API's /logs
// stream read the same records. The ring is an slog.Handler (Tee) put
// beside the one that writes stderr, so what goes to stderr is unchanged.
//
// It follows the registry's rule: a reader gets, atomically, the records
// kept so far and a channel that continues exactly after them; publishing
// never waits for a reader, and one that lets its queue fill is dropped
// with ErrFellBehind (it subscribes again for a fresh snapshot).
package logring

import (
	"errors"
	"log/slog"
	"sync"
	"time"
)

// DefaultSize is how many records a ring keeps unless told otherwise.
const DefaultSize = 5000

// DefaultSubscriberMax is how many records may wait for one subscriber
// before it is dropped.
const DefaultSubscriberMax = 4096

var (
	// ErrFellBehind ends a subscription whose reader did not keep up.
	ErrFellBehind = errors.New("log reader fell behind")
	// ErrClosed ends subscriptions when the ring is closed.
	ErrClosed = errors.New("log ring closed")
)

// Attr is one attribute of a record, its value as text. Keys of grouped
// attributes are joined with dots, as slog's text handler does.
type Attr struct {
	Key, Value string
}

// Record is one log record as kept: a value, safe to keep and share.
type Record struct {
	Seq     uint64 // increases by one per record kept
	Time    time.Time
	Level   slog.Level
	Message string
	Attrs   []Attr // shared between copies: never modify
}

// Options tune a Ring. Zero values take the defaults.
type Options struct {
	Size          int          // records kept; default DefaultSize
	Level         slog.Leveler // the least level kept; nil: slog.LevelInfo
	SubscriberMax int          // records queued for one reader; default DefaultSubscriberMax
}

// Ring is a fixed-size buffer of the newest records and the set of
// subscribers.
//
// Concurrency: every method is safe from any goroutine. One mutex guards
// the buffer and the subscribers; a record is kept and offered to every
// subscriber under it, so a snapshot taken under it is exactly continued
// by what the subscription delivers. The ring starts no goroutine.
type Ring struct {
	level slog.Leveler
	max   int

	mu     sync.Mutex
	buf    []Record
	next   int
	full   bool
	seq    uint64
	subs   map[*Subscription]struct{}
	closed bool
}

// New returns an empty ring.
func New(opts Options) *Ring {
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	if opts.Level == nil {
		opts.Level = slog.LevelInfo
	}
	if opts.SubscriberMax <= 0 {
		opts.SubscriberMax = DefaultSubscriberMax
	}
	return &Ring{
		level: opts.Level,
		max:   opts.SubscriberMax,
		buf:   make([]Record, opts.Size),
		subs:  make(map[*Subscription]struct{}),
	}
}

// Enabled reports whether the ring keeps records of level l.
func (r *Ring) Enabled(l slog.Level) bool { return l >= r.level.Level() }

// Add keeps rec (its Seq is set here) and offers it to every subscriber
// whose level it reaches. A closed ring still keeps records, for a Logs
// window opened during shutdown.
func (r *Ring) Add(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	rec.Seq = r.seq
	r.buf[r.next] = rec
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	for s := range r.subs {
		if rec.Level < s.level {
			continue
		}
		select {
		case s.ch <- rec:
		default:
			// Never wait for a reader: drop it, it resubscribes.
			delete(r.subs, s)
			s.endLocked(ErrFellBehind)
		}
	}
}

// Snapshot returns the records kept whose level is at least min, oldest
// first.
func (r *Ring) Snapshot(min slog.Level) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked(min)
}

func (r *Ring) snapshotLocked(min slog.Level) []Record {
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Record, 0, n)
	add := func(part []Record) {
		for _, rec := range part {
			if rec.Level >= min {
				out = append(out, rec)
			}
		}
	}
	if r.full {
		add(r.buf[r.next:])
	}
	add(r.buf[:r.next])
	return out
}

// Subscribe returns, atomically, the records kept whose level is at least
// min and a subscription delivering the ones of that level that follow.
// On a closed ring the subscription is returned already ended with
// ErrClosed.
func (r *Ring) Subscribe(min slog.Level) ([]Record, *Subscription) {
	s := &Subscription{ring: r, level: min, ch: make(chan Record, r.max)}
	s.C = s.ch
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := r.snapshotLocked(min)
	if r.closed {
		s.endLocked(ErrClosed)
		return snap, s
	}
	r.subs[s] = struct{}{}
	return snap, s
}

// Close ends every subscription with ErrClosed; later subscriptions start
// ended. Records are still kept. Close is idempotent.
func (r *Ring) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for s := range r.subs {
		delete(r.subs, s)
		s.endLocked(ErrClosed)
	}
}

// Subscription is a stream of records that continues exactly after the
// snapshot it came with.
//
// Concurrency: C is for one reader; Err and Close are safe from any
// goroutine, and Close is idempotent.
type Subscription struct {
	// C delivers the records in order. It is closed when the
	// subscription ends; Err then says why.
	C <-chan Record

	ring  *Ring
	level slog.Level
	ch    chan Record
	err   error // guarded by ring.mu
	ended bool  // guarded by ring.mu
}

// endLocked closes C once; the caller holds ring.mu.
func (s *Subscription) endLocked(err error) {
	if s.ended {
		return
	}
	s.ended, s.err = true, err
	close(s.ch)
}

// Err says why C was closed: ErrFellBehind, ErrClosed, or nil after Close.
func (s *Subscription) Err() error {
	s.ring.mu.Lock()
	defer s.ring.mu.Unlock()
	return s.err
}

// Close ends the subscription; records already queued may still be read
// from C before it closes.
func (s *Subscription) Close() {
	s.ring.mu.Lock()
	defer s.ring.mu.Unlock()
	delete(s.ring.subs, s)
	s.endLocked(nil)
}
