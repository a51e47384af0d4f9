package ui

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"porthole/core/registry"
)

// redrawInterval is the shortest time between two views: at most ten
// redraws a second, however fast the registry changes.
const redrawInterval = 100 * time.Millisecond

// bridge turns the registry's subscription (a snapshot, then batches of
// events) into views for the inspector's tables.
//
// It runs only between Start and Stop, which the inspector calls when its
// window is shown and hidden: while hidden there is no subscription and no
// goroutine, so no work at all; Start takes a fresh snapshot. While it
// runs, one goroutine drains the subscription into a connModel, and at most
// every redrawInterval, only once the Fyne thread has applied the previous
// view, builds a new view (filtered and sorted off the Fyne thread) and
// posts it. A subscription that fell behind is replaced by a new one and
// the model rebuilt from its snapshot.
//
// Concurrency: Start, Stop and SetQuery are safe from any goroutine (the
// inspector calls them on the Fyne thread); Stop waits for the goroutine,
// which never waits for the Fyne thread, so calling Stop there is safe.
// post must not block for long (fyne.Do queues); onView runs inside the
// posted function, on the Fyne thread.
type bridge struct {
	reg        *registry.Registry
	historyCap int
	interval   time.Duration
	post       func(func())
	onView     func(*connView)

	mu    sync.Mutex
	query viewQuery
	run   *bridgeRun // nil while stopped
	gen   uint64

	// events counts the events applied to a model, and views the views
	// posted: the tests check that neither moves while hidden.
	events atomic.Int64
	views  atomic.Int64
}

// bridgeRun is one Start..Stop period.
type bridgeRun struct {
	gen     uint64
	stop    chan struct{} // closed by Stop
	done    chan struct{} // closed when the goroutine has ended
	wake    chan struct{} // capacity 1: the query changed
	applied chan struct{} // capacity 1: the Fyne thread applied the last view
}

func newBridge(reg *registry.Registry, historyCap int, post func(func()), onView func(*connView)) *bridge {
	return &bridge{
		reg: reg, historyCap: historyCap, interval: redrawInterval,
		post: post, onView: onView, query: defaultQuery(),
	}
}

// Start subscribes and starts the goroutine; it does nothing if running.
// The subscription is taken before Start returns, so every event after
// that reaches the model.
func (b *bridge) Start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run != nil {
		return
	}
	b.gen++
	run := &bridgeRun{
		gen:     b.gen,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		applied: make(chan struct{}, 1),
	}
	b.run = run
	snap, sub := b.reg.Subscribe()
	go b.loop(run, snap, sub)
}

// Stop ends the subscription and waits for the goroutine. Idempotent.
func (b *bridge) Stop() {
	b.mu.Lock()
	run := b.run
	b.run = nil
	b.mu.Unlock()
	if run == nil {
		return
	}
	close(run.stop)
	<-run.done
}

// running reports whether the bridge is between Start and Stop.
func (b *bridge) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.run != nil
}

// SetQuery changes what the views show (filter, order, pause); the next
// view answers it.
func (b *bridge) SetQuery(q viewQuery) {
	b.mu.Lock()
	b.query = q
	run := b.run
	b.mu.Unlock()
	if run != nil {
		select {
		case run.wake <- struct{}{}:
		default:
		}
	}
}

func (b *bridge) currentQuery() viewQuery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.query
}

// current reports whether gen is the running generation: a view posted by
// a run that has since stopped must not be applied.
func (b *bridge) current(gen uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.run != nil && b.run.gen == gen
}

// loopState is what the goroutine keeps between two views.
type loopState struct {
	model *connModel
	// shown is what the last view was built from; while paused it is
	// not replaced, which is what freezes the view.
	shown        *rowBase
	stale        bool // the model changed since shown was taken
	unshown      int  // events received since shown was taken
	resubscribes int
	last         *connView // the last view built, from lastBase
	lastBase     *rowBase
}

func (b *bridge) loop(run *bridgeRun, snap registry.Snapshot, sub *registry.Subscription) {
	defer close(run.done)
	defer func() { sub.Close() }() // sub is replaced on resubscription

	st := &loopState{model: newConnModel(b.historyCap), stale: true}
	st.model.reset(snap)
	dirty, inflight := true, false
	var lastPost time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	timerArmed := false

	for {
		if dirty && !inflight && !timerArmed {
			if wait := b.interval - time.Since(lastPost); wait > 0 {
				timer.Reset(wait)
				timerArmed = true
			} else {
				view := b.buildView(run.gen, st)
				lastPost = time.Now()
				dirty, inflight = false, true
				b.views.Add(1)
				b.post(func() { b.deliver(run, view) })
			}
		}
		select {
		case <-run.stop:
			return
		case <-timer.C:
			timerArmed = false
		case <-run.applied:
			inflight = false
		case <-run.wake:
			dirty = true
		case batch, ok := <-sub.C:
			if !ok {
				if !errors.Is(sub.Err(), registry.ErrFellBehind) {
					return // registry closed, or the subscription was closed
				}
				sub = b.resubscribe(sub, st)
				dirty = true
				continue
			}
			if !b.applyBatch(st, batch) {
				sub = b.resubscribe(sub, st)
			}
			dirty = true
		}
	}
}

// applyBatch advances the model; false means the stream had a gap.
func (b *bridge) applyBatch(st *loopState, batch []registry.Event) bool {
	for _, ev := range batch {
		if !st.model.apply(ev) {
			return false
		}
	}
	b.events.Add(int64(len(batch)))
	st.unshown += len(batch)
	st.stale = true
	return true
}

// resubscribe replaces a subscription that fell behind (or had a gap) with
// a new one and rebuilds the model from its snapshot.
func (b *bridge) resubscribe(old *registry.Subscription, st *loopState) *registry.Subscription {
	old.Close()
	snap, sub := b.reg.Subscribe()
	st.model.reset(snap)
	st.resubscribes++
	st.unshown++
	st.stale = true
	return sub
}

// buildView makes the next view: from the model's current rows, or while
// paused from the rows shown when the pause began. Rows are only filtered
// and sorted again when they or the query changed.
func (b *bridge) buildView(gen uint64, st *loopState) *connView {
	q := b.currentQuery()
	if st.shown == nil || (st.stale && !q.paused) {
		st.shown = st.model.base(time.Now())
		st.stale, st.unshown = false, 0
	}
	base := st.shown
	v := &connView{
		gen: gen, at: base.at, totals: base.totals, samples: base.samples,
		query: q, resubscribes: st.resubscribes,
	}
	if q.paused {
		v.waiting = st.unshown
	}
	f := parseFilter(q.filter)
	same := st.last != nil && st.lastBase == base && st.last.query.filter == q.filter
	for t := range numTabs {
		if same && st.last.query.sort[t] == q.sort[t] {
			v.rows[t], v.all[t] = st.last.rows[t], st.last.all[t]
			continue
		}
		rows := base.live
		if t == tabClosed {
			rows = base.closed
		}
		v.rows[t] = buildRows(rows, f, q.sort[t], base.at)
		v.all[t] = len(rows)
	}
	// The Apps view does not filter: it is sorted again only when its
	// rows or its order changed.
	if st.last != nil && st.lastBase == base && st.last.query.appSort == q.appSort {
		v.apps = st.last.apps
	} else {
		v.apps = sortApps(base.apps, q.appSort)
	}
	st.last, st.lastBase = v, base
	return v
}

// deliver runs on the Fyne thread.
func (b *bridge) deliver(run *bridgeRun, v *connView) {
	if !b.current(run.gen) {
		return
	}
	b.onView(v)
	select {
	case run.applied <- struct{}{}:
	default:
	}
}
