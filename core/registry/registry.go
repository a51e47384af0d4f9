// Package registry is the single source of truth about proxied connections:
// who asked for what, how it is routed, how many bytes moved, and why it
// ended. The inbound side registers every connection; the UI and the tray
// read snapshots and subscribe to lifecycle events.
package registry

import (
	"slices"
	"sync"
	"time"

	"github.com/rs/xid"
)

// Options tune a Registry. Zero values take the defaults.
type Options struct {
	History       int           // closed connections kept; default 1,000
	StatsInterval time.Duration // Stats tick; default 1 s
	IdleTimeout   time.Duration // abort open connections idle this long; 0 disables
	SubscriberMax int           // events queued for one subscriber before it is dropped; default 10,000
	Now           func() time.Time
}

const (
	DefaultHistory       = 1000
	DefaultStatsInterval = time.Second
	DefaultSubscriberMax = 10000
)

// Registry holds the live connections, the recent closed ones, and the
// subscribers.
//
// Concurrency: all methods are safe from any goroutine. One mutex guards the
// live map, the history and the subscriber set; every event is published
// while it is held, so a snapshot taken under it is exactly continued by the
// events that follow. Publishing never blocks: a subscriber that cannot take
// more is dropped. Byte counters are atomics outside the lock.
type Registry struct {
	opts Options

	mu         sync.Mutex
	live       map[xid.ID]*Conn
	history    *history
	subs       map[*Subscription]struct{}
	seq        uint64
	opened     uint64
	closedUp   int64
	closedDown int64
	lastTick   time.Time
	lastUp     int64 // registry-wide totals at the last tick
	lastDown   int64
	upRate     float64
	downRate   float64
	closed     bool

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // the ticker and subscription pumps
}

// New starts a registry and its stats ticker. Close stops it.
func New(opts Options) *Registry {
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = DefaultStatsInterval
	}
	if opts.SubscriberMax <= 0 {
		opts.SubscriberMax = DefaultSubscriberMax
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Registry{
		opts:    opts,
		live:    make(map[xid.ID]*Conn),
		history: newHistory(opts.History),
		subs:    make(map[*Subscription]struct{}),
		stop:    make(chan struct{}),
	}
	r.lastTick = r.now()
	r.wg.Add(1)
	go r.tickLoop()
	return r
}

func (r *Registry) now() time.Time { return r.opts.Now() }

// Register records a new connection in state connecting and emits Opened.
// It uses m.ID unless that is zero or already live, then a new xid.
// abort is the owner's hook for CloseConn, CloseAll and the idle timeout: it
// must close the connection's sockets (or cancel its context) without
// blocking and without calling back into the registry (the finish func
// included): it runs with the registry's lock held, and never after finish.
//
// The returned finish func ends the record: it is idempotent and safe from
// any goroutine; the first call wins, moves the record to history and emits
// the one Closed event. Its err is the close reason (nil for a clean close)
// unless Abort gave one first. The owner must call it exactly when it has
// released the connection's sockets, so the final byte counts are exact.
func (r *Registry) Register(m Meta, abort func(error)) (*Conn, func(err error)) {
	if m.ID.IsZero() {
		m.ID = xid.New()
	}
	if m.Network == "" {
		m.Network = "tcp"
	}
	c := &Conn{reg: r, meta: m, abort: abort, state: StateConnecting}
	r.mu.Lock()
	if _, dup := r.live[m.ID]; dup {
		// Ids are unique among live connections; a caller that must keep
		// its own id (the tunnel's stream ids) checks its own map first.
		m.ID = xid.New()
		c.meta.ID = m.ID
	}
	c.start = r.now()
	r.live[m.ID] = c
	r.opened++
	r.publish(Event{Kind: KindOpened, Conn: c.infoLocked()})
	r.mu.Unlock()
	return c, c.finish
}

// CloseConn aborts one live connection with ErrClosedByUser. It reports
// whether the connection was live.
func (r *Registry) CloseConn(id xid.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.live[id]
	if ok {
		c.abortLocked(ErrClosedByUser)
	}
	return ok
}

// CloseAll aborts every live connection with ErrClosedByUser and returns how
// many it asked to close.
func (r *Registry) CloseAll() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.live {
		c.abortLocked(ErrClosedByUser)
	}
	return len(r.live)
}

// Get returns a copy of a live or recently closed connection.
func (r *Registry) Get(id xid.ID) (Info, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.live[id]; ok {
		return c.infoLocked(), true
	}
	return r.history.find(id)
}

// Snapshot is the state a subscription starts from.
type Snapshot struct {
	Seq    uint64 // the last event included; the stream continues at Seq+1
	Live   []Info // oldest first
	Closed []Info // oldest first, at most Options.History
	Totals Totals
}

// Snapshot returns the current state without subscribing.
func (r *Registry) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

func (r *Registry) snapshotLocked() Snapshot {
	live := make([]Info, 0, len(r.live))
	for _, c := range r.live {
		live = append(live, c.infoLocked())
	}
	slices.SortFunc(live, func(a, b Info) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return a.ID.Compare(b.ID)
	})
	return Snapshot{
		Seq:    r.seq,
		Live:   live,
		Closed: r.history.list(),
		Totals: r.totalsLocked(),
	}
}

// Totals returns the registry-wide counts; the rates are those of the last
// stats tick.
func (r *Registry) Totals() Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.totalsLocked()
}

func (r *Registry) totalsLocked() Totals {
	t := Totals{
		Active:   len(r.live),
		Opened:   r.opened,
		Up:       r.closedUp,
		Down:     r.closedDown,
		UpRate:   r.upRate,
		DownRate: r.downRate,
	}
	for _, c := range r.live {
		t.Up += c.up.Load()
		t.Down += c.down.Load()
	}
	return t
}

// publish stamps ev with the next sequence number and queues it for every
// subscriber. The caller holds r.mu.
func (r *Registry) publish(ev Event) {
	r.seq++
	ev.Seq = r.seq
	for s := range r.subs {
		if !s.offer(ev) {
			delete(r.subs, s)
		}
	}
}

// Close stops the ticker and ends every subscription with ErrClosed. Live
// connections are the owners' to close; records finished afterwards are
// still kept. Close is idempotent and returns when the registry's
// goroutines have ended.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		r.mu.Lock()
		r.closed = true
		for s := range r.subs {
			s.end(ErrClosed)
			delete(r.subs, s)
		}
		r.mu.Unlock()
	})
	r.wg.Wait()
	return nil
}
