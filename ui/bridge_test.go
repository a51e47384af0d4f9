package ui

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"porthole/core/registry"
)

// testThread stands in for the Fyne thread: the bridge posts to it and the
// test goroutine runs what was posted, as the driver's event loop would.
// With a capacity of 0 a post blocks until the test runs it, which is how
// a test holds the bridge still.
type testThread struct {
	ch    chan func()
	views []*connView // every view the bridge delivered, in order
}

func newTestThread(capacity int) *testThread {
	return &testThread{ch: make(chan func(), capacity)}
}

func (tt *testThread) post(fn func()) { tt.ch <- fn }

// runUntil runs posted functions until cond holds; it fails the test after
// a deadline.
func (tt *testThread) runUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case fn := <-tt.ch:
			fn()
		case <-deadline.C:
			t.Fatalf("no %s within 10 s", what)
		}
	}
}

// drain runs whatever is queued now, without waiting.
func (tt *testThread) drain() int {
	n := 0
	for {
		select {
		case fn := <-tt.ch:
			fn()
			n++
		default:
			return n
		}
	}
}

// last is the last view delivered, or nil.
func (tt *testThread) last() *connView {
	if len(tt.views) == 0 {
		return nil
	}
	return tt.views[len(tt.views)-1]
}

// checkLeaks fails the test if it leaves a goroutine behind. It is called
// first, so its cleanup runs last, after the bridge and the registry have
// been stopped. Goroutines that were already there are not the test's:
// Fyne starts one for its function queue at package initialisation.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// newTestRegistry makes a real registry closed at the end of the test; with
// stats 0 there is no stats tick during the test.
func newTestRegistry(t testing.TB, stats time.Duration, subscriberMax int) *registry.Registry {
	t.Helper()
	if stats == 0 {
		stats = time.Hour
	}
	reg := registry.New(registry.Options{StatsInterval: stats, SubscriberMax: subscriberMax, History: 50})
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("closing the registry: %v", err)
		}
	})
	return reg
}

// startBridge runs a bridge on reg that delivers to tt; it is stopped at
// the end of the test, and no goroutine may be left then.
func startBridge(t testing.TB, reg *registry.Registry, tt *testThread) *bridge {
	t.Helper()
	b := newBridge(reg, 50, tt.post, func(v *connView) { tt.views = append(tt.views, v) })
	t.Cleanup(func() { stopBridge(b, tt) })
	b.Start()
	return b
}

// stopBridge stops b while running what it posts: a post blocked on a
// full testThread must not keep Stop from returning.
func stopBridge(b *bridge, tt *testThread) {
	done := make(chan struct{})
	go func() { b.Stop(); close(done) }()
	for {
		select {
		case <-done:
			return
		case fn := <-tt.ch:
			fn()
		}
	}
}

// testConn is a connection registered the way the inbound side does it:
// the abort hook only records the reason, and the owner finishes.
type testConn struct {
	conn    *registry.Conn
	finish  func(error)
	aborted chan error // capacity 1
}

func register(reg *registry.Registry, target string, proto registry.Proto, route registry.Route) *testConn {
	tc := &testConn{aborted: make(chan error, 1)}
	tc.conn, tc.finish = reg.Register(registry.Meta{
		Proto: proto, Client: "127.0.0.1:50000", Target: target, Route: route,
	}, func(reason error) {
		select {
		case tc.aborted <- reason:
		default:
		}
	})
	return tc
}

// finishAll finishes every connection as their owner would, without an
// error: for a test's deferred end.
func finishAll(conns ...*testConn) {
	for _, c := range conns {
		c.finish(nil)
	}
}

func liveCount(v *connView) int   { return v.all[tabActive] }
func closedCount(v *connView) int { return v.all[tabClosed] }

func hosts(rows []*connRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.host
	}
	return out
}

func TestBridgeSnapshotThenEvents(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	a := register(reg, "alpha.example:443", registry.ProtoConnect, registry.RouteDirect)
	b := register(reg, "beta.example:80", registry.ProtoHTTP, registry.RouteDirect)
	tt := newTestThread(8)
	startBridge(t, reg, tt)
	tt.runUntil(t, "snapshot view", func() bool { return tt.last() != nil && liveCount(tt.last()) == 2 })

	a.conn.Established("10.0.0.1:443")
	a.conn.AddDown(12345)
	refused := errors.New("connection refused")
	b.finish(refused)
	c := register(reg, "gamma.example:22", registry.ProtoSOCKS5, registry.RouteTunnel)
	tt.runUntil(t, "events applied", func() bool {
		v := tt.last()
		return liveCount(v) == 2 && closedCount(v) == 1 && v.totals.Opened == 3
	})
	v := tt.last()
	closed := v.rows[tabClosed][0]
	if closed.host != "beta.example" || !errors.Is(closed.Err, refused) || closed.State != registry.StateClosed {
		t.Fatalf("closed row %+v", closed)
	}
	for _, r := range v.rows[tabActive] {
		if r.ID == a.conn.ID() && (r.State != registry.StateOpen || r.Remote != "10.0.0.1:443") {
			t.Fatalf("established row %+v", r)
		}
	}
	a.finish(nil)
	c.finish(nil)
}

func TestBridgeSortsAndFilters(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	targets := []struct {
		target string
		proto  registry.Proto
		route  registry.Route
	}{
		{"delta.example:443", registry.ProtoConnect, registry.RouteTunnel},
		{"alpha.example:80", registry.ProtoHTTP, registry.RouteDirect},
		{"charlie.example:1080", registry.ProtoSOCKS5, registry.RouteTunnel},
		{"bravo.example:443", registry.ProtoSOCKS5, registry.RouteBypass},
	}
	var conns []*testConn
	for i, x := range targets {
		c := register(reg, x.target, x.proto, x.route)
		c.conn.AddUp(int64(1000 * (i + 1)))
		conns = append(conns, c)
	}
	conns[1].finish(errors.New("Connection RESET by peer"))
	tt := newTestThread(8)
	b := startBridge(t, reg, tt)
	tt.runUntil(t, "snapshot view", func() bool { return tt.last() != nil && liveCount(tt.last()) == 3 })

	check := func(name string, q viewQuery, tb tab, want ...string) {
		t.Helper()
		b.SetQuery(q)
		tt.runUntil(t, name, func() bool { return tt.last().query == q })
		if got := hosts(tt.last().rows[tb]); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: rows %v, want %v", name, got, want)
		}
	}
	q := defaultQuery()
	q.sort[tabActive] = sortSpec{col: colHost}
	check("host ascending", q, tabActive, "bravo.example", "charlie.example", "delta.example")
	q.sort[tabActive] = q.sort[tabActive].toggled(colHost)
	check("host descending", q, tabActive, "delta.example", "charlie.example", "bravo.example")
	q.sort[tabActive] = q.sort[tabActive].toggled(colUp) // figures start biggest first
	check("bytes up", q, tabActive, "bravo.example", "charlie.example", "delta.example")
	q.sort[tabActive] = sortSpec{col: colPort}
	check("port numerically", q, tabActive, "delta.example", "bravo.example", "charlie.example")
	q.filter = "route:tunnel"
	check("route:tunnel", q, tabActive, "delta.example", "charlie.example")
	q.filter = "proto:socks5 -route:bypass"
	check("proto and negation", q, tabActive, "charlie.example")
	q.filter = "PORT:443"
	check("port", q, tabActive, "delta.example", "bravo.example")
	q.filter = "reset"
	check("error substring ignores case", q, tabClosed, "alpha.example")
	q.filter = "state:closed"
	check("state:closed on Active", q, tabActive)
	check("state:closed on Closed", q, tabClosed, "alpha.example")
	q.filter = conns[2].conn.ID().String()[12:]
	check("id substring", q, tabActive, "charlie.example")
	if v := tt.last(); v.all[tabActive] != 3 {
		t.Fatalf("unfiltered count %d, want 3", v.all[tabActive])
	}
	for _, c := range conns {
		c.finish(nil)
	}
}

func TestBridgeCoalescesRedraws(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	tt := newTestThread(8)
	start := time.Now()
	b := startBridge(t, reg, tt)
	const n = 2000
	for i := range n {
		c := register(reg, fmt.Sprintf("host%d.example:443", i), registry.ProtoConnect, registry.RouteDirect)
		if i%2 == 0 {
			c.finish(nil)
		}
	}
	tt.runUntil(t, "all events", func() bool {
		v := tt.last()
		return v != nil && v.totals.Opened == n && liveCount(v) == n/2
	})
	views := b.views.Load()
	elapsed := time.Since(start) // after the count: every view counted was posted within it
	// Views are at least redrawInterval apart, so however the events
	// arrived there cannot be more than one per interval (plus the first).
	if limit := int64(elapsed/redrawInterval) + 1; views > limit {
		t.Fatalf("%d views in %v for %d events: more than one per %v", views, elapsed, b.events.Load(), redrawInterval)
	}
	if got := b.events.Load(); got < int64(n+n/2) {
		t.Fatalf("%d events applied, want %d", got, n+n/2)
	}
	if v := tt.last(); closedCount(v) != 50 {
		t.Fatalf("%d closed rows, want the history size 50", closedCount(v))
	}
	t.Logf("%d events in %v drawn as %d views", b.events.Load(), elapsed, views)
}

func TestBridgePauseFreezesTheView(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	first := register(reg, "first.example:443", registry.ProtoConnect, registry.RouteDirect)
	tt := newTestThread(8)
	b := startBridge(t, reg, tt)
	tt.runUntil(t, "snapshot view", func() bool { return tt.last() != nil && liveCount(tt.last()) == 1 })

	q := defaultQuery()
	q.paused = true
	b.SetQuery(q)
	tt.runUntil(t, "paused view", func() bool { return tt.last().query.paused })
	frozenAt := tt.last().at
	second := register(reg, "second.example:443", registry.ProtoSOCKS5, registry.RouteDirect)
	first.finish(nil)
	tt.runUntil(t, "the badge's count", func() bool { return tt.last().waiting == 2 })
	if v := tt.last(); liveCount(v) != 1 || closedCount(v) != 0 || !v.at.Equal(frozenAt) {
		t.Fatalf("paused view changed: %d live, %d closed, at %v (frozen at %v)", liveCount(v), closedCount(v), v.at, frozenAt)
	}
	// Sorting and filtering still work on the frozen rows.
	q.filter = "nothing-matches"
	b.SetQuery(q)
	tt.runUntil(t, "filtered paused view", func() bool { return tt.last().query == q })
	if v := tt.last(); len(v.rows[tabActive]) != 0 || v.all[tabActive] != 1 || v.waiting != 2 {
		t.Fatalf("filtered paused view: %d shown of %d, waiting %d", len(v.rows[tabActive]), v.all[tabActive], v.waiting)
	}

	q = defaultQuery()
	b.SetQuery(q)
	tt.runUntil(t, "resumed view", func() bool { return tt.last().query == q })
	v := tt.last()
	if liveCount(v) != 1 || closedCount(v) != 1 || v.waiting != 0 || v.rows[tabActive][0].ID != second.conn.ID() {
		t.Fatalf("resumed view: %d live, %d closed, waiting %d", liveCount(v), closedCount(v), v.waiting)
	}
	second.finish(nil)
}

func TestBridgeResubscribesWhenItFellBehind(t *testing.T) {
	checkLeaks(t)
	const max = 4
	reg := newTestRegistry(t, 0, max)
	// Capacity 0: the bridge's first post blocks until the test runs it,
	// and while it is blocked nobody drains the subscription.
	tt := newTestThread(0)
	b := startBridge(t, reg, tt)
	const n = 3*max + 1
	var conns []*testConn
	for i := range n {
		conns = append(conns, register(reg, fmt.Sprintf("h%02d.example:443", i), registry.ProtoConnect, registry.RouteDirect))
	}
	tt.runUntil(t, "a fresh snapshot", func() bool {
		v := tt.last()
		return v != nil && v.resubscribes >= 1 && liveCount(v) == n
	})
	// The new subscription carries on: later events still arrive.
	conns[0].finish(nil)
	tt.runUntil(t, "events after the resubscription", func() bool { return closedCount(tt.last()) == 1 })
	if !b.running() {
		t.Fatal("the bridge stopped instead of resubscribing")
	}
	for _, c := range conns[1:] {
		c.finish(nil)
	}
}

func TestBridgeDoesNoWorkWhileStopped(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 5*time.Millisecond, 0) // stats ticks too
	tt := newTestThread(8)
	b := startBridge(t, reg, tt)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil })
	b.Stop()
	if b.running() {
		t.Fatal("running after Stop")
	}
	// A view posted before Stop is not applied after it.
	applied := len(tt.views)
	tt.drain()
	if len(tt.views) != applied {
		t.Fatal("a stale view was applied after Stop")
	}
	events, views := b.events.Load(), b.views.Load()
	var conns []*testConn
	for i := range 100 {
		c := register(reg, fmt.Sprintf("hidden%d.example:443", i), registry.ProtoConnect, registry.RouteDirect)
		c.conn.AddUp(10)
		conns = append(conns, c)
	}
	for _, c := range conns[:50] {
		c.finish(nil)
	}
	// Let two stats ticks happen in the registry, seen by a probe of the
	// test's own: the hidden bridge must not see them either.
	_, probe := reg.Subscribe()
	defer probe.Close()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for ticks := 0; ticks < 2; {
		select {
		case batch, ok := <-probe.C:
			if !ok {
				t.Fatalf("probe subscription ended: %v", probe.Err())
			}
			for _, ev := range batch {
				if ev.Kind == registry.KindStats {
					ticks++
				}
			}
		case <-deadline.C:
			t.Fatal("no stats ticks within 10 s")
		}
	}
	if got := b.events.Load() - events; got != 0 {
		t.Fatalf("%d model updates while hidden, want 0", got)
	}
	if got := b.views.Load() - views; got != 0 {
		t.Fatalf("%d views while hidden, want 0", got)
	}
	if n := tt.drain(); n != 0 {
		t.Fatalf("%d posts while hidden", n)
	}

	b.Start()
	tt.runUntil(t, "fresh snapshot on show", func() bool {
		v := tt.last()
		return liveCount(v) == 50 && closedCount(v) == 50
	})
	for _, c := range conns[50:] {
		c.finish(nil)
	}
}
