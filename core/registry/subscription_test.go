package registry

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"

	"porthole/internal/chantest"
)

// mirror is a subscriber's view of the registry rebuilt from a snapshot and
// the events that follow it.
type mirror struct {
	seq     uint64
	live    map[xid.ID]Info
	closed  []Info
	history int
}

func newMirror(s Snapshot, history int) *mirror {
	m := &mirror{seq: s.Seq, live: map[xid.ID]Info{}, closed: append([]Info(nil), s.Closed...), history: history}
	for _, info := range s.Live {
		m.live[info.ID] = info
	}
	return m
}

func (m *mirror) apply(ev Event) error {
	if ev.Seq != m.seq+1 {
		return fmt.Errorf("event seq %d after %d: gap or repeat", ev.Seq, m.seq)
	}
	m.seq = ev.Seq
	id := ev.Conn.ID
	switch ev.Kind {
	case KindOpened:
		if _, ok := m.live[id]; ok {
			return fmt.Errorf("seq %d: opened %v twice", ev.Seq, id)
		}
		if ev.Conn.State != StateConnecting {
			return fmt.Errorf("seq %d: opened in state %v", ev.Seq, ev.Conn.State)
		}
		m.live[id] = ev.Conn
	case KindEstablished:
		if old, ok := m.live[id]; !ok || old.State != StateConnecting {
			return fmt.Errorf("seq %d: established %v, not connecting in the mirror (%v)", ev.Seq, id, ok)
		}
		m.live[id] = ev.Conn
	case KindClosed:
		if _, ok := m.live[id]; !ok {
			return fmt.Errorf("seq %d: closed %v, not live in the mirror", ev.Seq, id)
		}
		delete(m.live, id)
		m.closed = append(m.closed, ev.Conn)
		if len(m.closed) > m.history {
			m.closed = m.closed[len(m.closed)-m.history:]
		}
	case KindStats:
		if ev.Stats == nil {
			return fmt.Errorf("seq %d: stats event without stats", ev.Seq)
		}
	default:
		return fmt.Errorf("seq %d: kind %v", ev.Seq, ev.Kind)
	}
	return nil
}

// matches compares the mirror with a snapshot taken at the same sequence.
func (m *mirror) matches(s Snapshot) error {
	if m.seq != s.Seq {
		return fmt.Errorf("mirror at seq %d, snapshot at %d", m.seq, s.Seq)
	}
	if len(m.live) != len(s.Live) {
		return fmt.Errorf("mirror has %d live, snapshot %d", len(m.live), len(s.Live))
	}
	for _, want := range s.Live {
		got, ok := m.live[want.ID]
		if !ok || got.State != want.State || got.Remote != want.Remote || !got.Start.Equal(want.Start) {
			return fmt.Errorf("live %v: mirror %+v, snapshot %+v", want.ID, got, want)
		}
	}
	if len(m.closed) != len(s.Closed) {
		return fmt.Errorf("mirror has %d closed, snapshot %d", len(m.closed), len(s.Closed))
	}
	for i, want := range s.Closed {
		got := m.closed[i]
		if got.ID != want.ID || got.Up != want.Up || got.Down != want.Down || !errors.Is(got.Err, want.Err) {
			return fmt.Errorf("closed[%d]: mirror %+v, snapshot %+v", i, got, want)
		}
	}
	return nil
}

// TestSubscribeContinuesExactly subscribes again and again while several
// goroutines register, establish and finish connections: every
// subscription's snapshot plus its events must rebuild exactly the state a
// later Snapshot shows, with no event missing or repeated.
func TestSubscribeContinuesExactly(t *testing.T) {
	const (
		workers = 4
		phases  = 8
		cycles  = 150 // per worker per phase
		history = 64  // small, so the ring wraps many times
	)
	r := newRegistry(t, Options{StatsInterval: quiet, History: history, SubscriberMax: 1 << 20})

	type reader struct {
		sub    *Subscription
		target chan Snapshot
		result chan error
	}
	startReader := func() reader {
		snap, sub := r.Subscribe()
		rd := reader{sub: sub, target: make(chan Snapshot, 1), result: make(chan error, 1)}
		go func() {
			m := newMirror(snap, history)
			var target *Snapshot
			deadline := time.After(waitLimit)
			for target == nil || m.seq < target.Seq {
				select {
				case batch, ok := <-sub.C:
					if !ok {
						rd.result <- fmt.Errorf("subscription ended: %v", sub.Err())
						return
					}
					for _, ev := range batch {
						if err := m.apply(ev); err != nil {
							rd.result <- err
							return
						}
					}
				case s := <-rd.target:
					target = &s
				case <-deadline:
					rd.result <- fmt.Errorf("mirror stuck at seq %d", m.seq)
					return
				}
			}
			rd.result <- m.matches(*target)
		}()
		return rd
	}

	var readers []reader
	kept := make([][]func(error), workers) // connections each worker leaves open across phases
	for range phases {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				<-start
				for _, f := range kept[w] {
					f(nil)
				}
				kept[w] = kept[w][:0]
				for i := range cycles {
					c, finish := r.Register(testMeta, nil)
					if i%3 != 0 {
						c.Established(fmt.Sprintf("192.0.2.%d:443", w))
					}
					c.AddUp(int64(i))
					switch {
					case i%5 == 0:
						kept[w] = append(kept[w], finish)
					case i%7 == 0:
						finish(fmt.Errorf("worker %d cycle %d", w, i))
					default:
						finish(nil)
					}
				}
			})
		}
		close(start)
		readers = append(readers, startReader()) // while the workers run
		wg.Wait()
		readers = append(readers, startReader()) // between phases
	}

	final := r.Snapshot()
	if len(final.Live) != workers*((cycles+4)/5) {
		t.Fatalf("%d live at the end, want %d", len(final.Live), workers*((cycles+4)/5))
	}
	for _, rd := range readers {
		rd.target <- final
	}
	for i, rd := range readers {
		if err := chantest.Within(t, waitLimit, fmt.Sprintf("subscription %d's result", i), rd.result); err != nil {
			t.Errorf("subscription %d: %v", i, err)
		}
		rd.sub.Close()
	}
	for _, fs := range kept {
		for _, f := range fs {
			f(nil)
		}
	}
}

// TestSlowSubscriberDropped: a subscriber that does not read is dropped with
// ErrFellBehind; Register never waits for it, and nothing keeps growing.
func TestSlowSubscriberDropped(t *testing.T) {
	const max = 8
	r := newRegistry(t, Options{StatsInterval: quiet, SubscriberMax: max})
	snap, slow := r.Subscribe()
	defer slow.Close()

	const n = 5000
	var finishes []func(error)
	done := make(chan struct{})
	go func() { // nobody reads slow.C meanwhile
		defer close(done)
		for range n {
			_, f := r.Register(testMeta, nil)
			finishes = append(finishes, f)
		}
	}()
	chantest.Within(t, waitLimit, "Register beside a subscriber that does not read", done)

	evs := drainClosed(t, slow)
	if !errors.Is(slow.Err(), ErrFellBehind) {
		t.Fatalf("Err = %v, want ErrFellBehind", slow.Err())
	}
	// At most what the pump held plus the queue's bound got through, and what
	// did is the exact continuation of the snapshot.
	if len(evs) > 2*max {
		t.Fatalf("%d events delivered to a dropped subscriber", len(evs))
	}
	for i, ev := range evs {
		if ev.Seq != snap.Seq+1+uint64(i) {
			t.Fatalf("event %d seq %d, want %d", i, ev.Seq, snap.Seq+1+uint64(i))
		}
	}
	r.mu.Lock()
	_, still := r.subs[slow]
	r.mu.Unlock()
	slow.mu.Lock()
	queued := len(slow.pending)
	slow.mu.Unlock()
	if still || queued != 0 {
		t.Fatalf("dropped subscriber still registered (%v) or holding %d events", still, queued)
	}

	// The reader resubscribes and gets everything from a fresh snapshot.
	snap2, sub2 := r.Subscribe()
	defer sub2.Close()
	if len(snap2.Live) != n || snap2.Seq != snap.Seq+n {
		t.Fatalf("resubscribed snapshot: %d live at seq %d", len(snap2.Live), snap2.Seq)
	}
	var buf []Event
	for i, f := range finishes { // in step with the reader: never more than one queued
		f(nil)
		ev := next(t, sub2, 1, &buf)[0]
		if ev.Seq != snap2.Seq+1+uint64(i) || ev.Kind != KindClosed {
			t.Fatalf("event %v seq %d, want closed seq %d", ev.Kind, ev.Seq, snap2.Seq+1+uint64(i))
		}
	}
	if slow.Err() == nil || !errors.Is(slow.Err(), ErrFellBehind) {
		t.Fatalf("Err changed to %v", slow.Err())
	}
}

// TestSlowSubscriberBounded: while a subscriber that does not read is still
// attached, its queue never exceeds SubscriberMax.
func TestSlowSubscriberBounded(t *testing.T) {
	const max = 16
	r := newRegistry(t, Options{StatsInterval: quiet, SubscriberMax: max})
	_, sub := r.Subscribe()
	defer sub.Close()
	for i := range 10 * max {
		_, f := r.Register(testMeta, nil)
		f(nil)
		sub.mu.Lock()
		n, ended := len(sub.pending), sub.ended
		sub.mu.Unlock()
		if n > max {
			t.Fatalf("after %d events the queue holds %d > %d", 2*(i+1), n, max)
		}
		if ended {
			break
		}
	}
	drainClosed(t, sub)
	if !errors.Is(sub.Err(), ErrFellBehind) {
		t.Fatalf("Err = %v", sub.Err())
	}
}

func TestSubscriptionClose(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	_, sub := r.Subscribe()
	_, f := r.Register(testMeta, nil) // a batch waits in the pump, unread
	sub.Close()
	sub.Close() // idempotent
	drainClosed(t, sub)
	if err := sub.Err(); err != nil {
		t.Fatalf("Err after Close = %v, want nil", err)
	}
	r.mu.Lock()
	n := len(r.subs)
	r.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
	f(nil) // publishing after Close reaches nobody and does not panic
	_ = r.Close()
	sub.Close()
	if err := sub.Err(); err != nil {
		t.Fatalf("Err changed to %v by Registry.Close", err)
	}
}

func TestSubscriptionCloseConcurrent(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	_, sub := r.Subscribe()
	_, f := r.Register(testMeta, nil)
	defer f(nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(sub.Close)
	}
	wg.Go(func() { _ = r.Close() })
	wg.Wait()
	drainClosed(t, sub)
	if err := sub.Err(); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("Err = %v", err)
	}
}

func TestRegistryCloseEndsSubscriptions(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	_, a := r.Subscribe()
	_, b := r.Subscribe()
	c, finish := r.Register(testMeta, nil)
	var buf []Event
	next(t, a, 1, &buf) // a reads, b does not

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	for name, s := range map[string]*Subscription{"a": a, "b": b} {
		drainClosed(t, s)
		if !errors.Is(s.Err(), ErrClosed) {
			t.Fatalf("%s: Err = %v, want ErrClosed", name, s.Err())
		}
		s.Close()
		if !errors.Is(s.Err(), ErrClosed) {
			t.Fatalf("%s: Err after Close = %v", name, s.Err())
		}
	}

	// Records finished after Close are still kept.
	finish(nil)
	snap, late := r.Subscribe()
	select {
	case _, ok := <-late.C:
		if ok {
			t.Fatal("subscription after Close delivered a batch")
		}
	default:
		t.Fatal("subscription after Close is not ended")
	}
	if !errors.Is(late.Err(), ErrClosed) {
		t.Fatalf("late Err = %v", late.Err())
	}
	late.Close()
	if len(snap.Closed) != 1 || snap.Closed[0].ID != c.ID() {
		t.Fatalf("snapshot after Close: %+v", snap)
	}
}
