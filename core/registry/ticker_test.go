package registry

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/rs/xid"
)

// statsOf returns the next Stats event of sub.
func statsOf(t *testing.T, sub *Subscription) *Stats {
	t.Helper()
	evs := until(t, sub, func(ev Event) bool { return ev.Kind == KindStats })
	return evs[len(evs)-1].Stats
}

func deltaOf(st *Stats, id xid.ID) (Delta, bool) {
	i := slices.IndexFunc(st.Deltas, func(d Delta) bool { return d.ID == id })
	if i < 0 {
		return Delta{}, false
	}
	return st.Deltas[i], true
}

// TestStatsTick drives tick by hand (the ticker never fires) with an
// injected clock, so every figure is exact.
func TestStatsTick(t *testing.T) {
	clk := newClock()
	r := newRegistry(t, Options{StatsInterval: quiet, Now: clk.Now})
	_, sub := r.Subscribe()
	defer sub.Close()

	a, finishA := r.Register(testMeta, nil)
	b, finishB := r.Register(testMeta, nil)
	c, finishC := r.Register(testMeta, nil)
	defer finishA(nil)
	defer finishC(nil)
	a.AddUp(100)
	b.AddDown(50)
	b.AddDown(25)

	at := clk.Advance(2 * time.Second)
	r.tick()
	st := statsOf(t, sub)
	if !st.At.Equal(at) || len(st.Deltas) != 2 {
		t.Fatalf("tick 1: at %v, %d deltas %+v", st.At, len(st.Deltas), st.Deltas)
	}
	if d, ok := deltaOf(st, a.ID()); !ok || d != (Delta{ID: a.ID(), Up: 100, DUp: 100}) {
		t.Fatalf("tick 1: delta of a %+v %v", d, ok)
	}
	if d, ok := deltaOf(st, b.ID()); !ok || d != (Delta{ID: b.ID(), Down: 75, DDown: 75}) {
		t.Fatalf("tick 1: delta of b %+v %v", d, ok)
	}
	if _, ok := deltaOf(st, c.ID()); ok {
		t.Fatal("tick 1: unchanged c has a delta")
	}
	want := Totals{Active: 3, Opened: 3, Up: 100, Down: 75, UpRate: 50, DownRate: 37.5}
	if st.Totals != want {
		t.Fatalf("tick 1: totals %+v, want %+v", st.Totals, want)
	}

	a.AddUp(5)
	a.AddDown(1)
	clk.Advance(time.Second)
	r.tick()
	st = statsOf(t, sub)
	if len(st.Deltas) != 1 || st.Deltas[0] != (Delta{ID: a.ID(), Up: 105, Down: 1, DUp: 5, DDown: 1}) {
		t.Fatalf("tick 2: deltas %+v", st.Deltas)
	}
	if st.Totals.UpRate != 5 || st.Totals.DownRate != 1 {
		t.Fatalf("tick 2: rates %v/%v", st.Totals.UpRate, st.Totals.DownRate)
	}

	clk.Advance(time.Second)
	r.tick()
	if st = statsOf(t, sub); len(st.Deltas) != 0 || st.Totals.UpRate != 0 || st.Totals.DownRate != 0 {
		t.Fatalf("tick 3, nothing moved: deltas %+v, rates %v/%v", st.Deltas, st.Totals.UpRate, st.Totals.DownRate)
	}

	// b closes with more bytes than the last tick saw: they count in the
	// totals, and a closed record has no delta.
	b.AddUp(10)
	finishB(nil)
	clk.Advance(time.Second)
	r.tick()
	st = statsOf(t, sub)
	if _, ok := deltaOf(st, b.ID()); ok {
		t.Fatal("closed b has a delta")
	}
	want = Totals{Active: 2, Opened: 3, Up: 115, Down: 76, UpRate: 10, DownRate: 0}
	if st.Totals != want {
		t.Fatalf("tick 4: totals %+v, want %+v", st.Totals, want)
	}
	if got := r.Totals(); got != want {
		t.Fatalf("Totals() = %+v, want %+v", got, want)
	}
}

// TestStatsTicker uses the real ticker: whatever the tick boundaries, the
// deltas of a connection add up to its counters, each delta is consistent
// with the previous one, and a connection that moves nothing never appears.
func TestStatsTicker(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: time.Millisecond})
	_, sub := r.Subscribe()
	defer sub.Close()
	a, finishA := r.Register(testMeta, nil)
	idle, finishIdle := r.Register(testMeta, nil)
	defer finishA(nil)
	defer finishIdle(nil)

	const rounds = 50
	var up, down int64
	var seenUp, seenDown int64
	for i := range rounds {
		a.AddUp(int64(i))
		a.AddDown(int64(2*i + 1))
		up += int64(i)
		down += int64(2*i + 1)
		for tick := 0; seenUp != up || seenDown != down; tick++ {
			if tick == 10000 {
				t.Fatalf("deltas stuck at %d/%d, want %d/%d", seenUp, seenDown, up, down)
			}
			st := statsOf(t, sub)
			if _, ok := deltaOf(st, idle.ID()); ok {
				t.Fatal("a connection that moved nothing has a delta")
			}
			d, ok := deltaOf(st, a.ID())
			if !ok {
				continue
			}
			if d.DUp == 0 && d.DDown == 0 {
				t.Fatalf("empty delta %+v", d)
			}
			if d.Up != seenUp+d.DUp || d.Down != seenDown+d.DDown || d.Up > up || d.Down > down {
				t.Fatalf("delta %+v after %d/%d seen, %d/%d added", d, seenUp, seenDown, up, down)
			}
			seenUp, seenDown = d.Up, d.Down
			if st.Totals.Up < d.Up || st.Totals.Down < d.Down || st.Totals.Active != 2 || st.Totals.Opened != 2 {
				t.Fatalf("totals %+v with delta %+v", st.Totals, d)
			}
		}
	}
}

// TestIdleTick checks which connections a tick finds idle, by hand and with
// an injected clock.
func TestIdleTick(t *testing.T) {
	clk := newClock()
	r := newRegistry(t, Options{StatsInterval: quiet, IdleTimeout: 10 * time.Second, Now: clk.Now})
	connecting, f1 := r.Register(testMeta, nil)
	idle, f2 := r.Register(testMeta, nil)
	busy, f3 := r.Register(testMeta, nil)
	defer f1(nil)
	defer f2(nil)
	defer f3(nil)
	idle.Established("192.0.2.1:443")
	busy.Established("192.0.2.2:443")

	for range 9 { // one byte a second keeps busy alive; idle is not idle long enough yet
		clk.Advance(time.Second)
		busy.AddDown(1)
		if got := r.tick(); len(got) != 0 {
			t.Fatalf("idle too early: %v", got)
		}
	}
	clk.Advance(time.Second)
	busy.AddUp(1)
	got := r.tick()
	if len(got) != 1 || got[0] != idle {
		t.Fatalf("idle after 10s: %d conns, want exactly the idle one", len(got))
	}

	// Bytes make it active again; silence makes it idle again.
	idle.AddDown(1)
	clk.Advance(time.Second)
	if got := r.tick(); len(got) != 0 {
		t.Fatalf("active again but idle: %d", len(got))
	}
	clk.Advance(10 * time.Second)
	got = r.tick()
	slices.SortFunc(got, func(a, b *Conn) int { return a.ID().Compare(b.ID()) })
	want := []*Conn{idle, busy}
	slices.SortFunc(want, func(a, b *Conn) int { return a.ID().Compare(b.ID()) })
	if !slices.Equal(got, want) {
		t.Fatalf("after 10 silent seconds: %d idle, want idle and busy (never the connecting one)", len(got))
	}
	_ = connecting
}

// TestIdleAbort runs the real ticker with an injected clock: an open
// connection idle past the timeout is aborted with ErrIdle, a connecting one
// is not.
func TestIdleAbort(t *testing.T) {
	clk := newClock()
	r := newRegistry(t, Options{StatsInterval: time.Millisecond, IdleTimeout: time.Minute, Now: clk.Now})
	_, sub := r.Subscribe()
	defer sub.Close()

	hc, ho := newHook(), newHook()
	_, finishConnecting := r.Register(testMeta, hc.abort)
	open, finishOpen := r.Register(testMeta, ho.abort)
	open.Established("192.0.2.1:443")
	defer finishConnecting(nil)

	now := clk.Advance(time.Minute)
	ho.wait(t)
	// The tick that aborted open judged connecting at the same moment; two
	// more Stats events mean that tick's aborts are all done.
	for range 2 {
		until(t, sub, func(ev Event) bool { return ev.Kind == KindStats && !ev.Stats.At.Before(now) })
	}
	if calls := hc.calls(); len(calls) != 0 {
		t.Fatalf("connecting connection aborted: %v", calls)
	}
	if calls := ho.calls(); len(calls) != 1 || !errors.Is(calls[0], ErrIdle) {
		t.Fatalf("idle hook calls %v, want one ErrIdle", calls)
	}

	finishOpen(net.ErrClosed) // the owner's relay saw its sockets closed
	evs := until(t, sub, func(ev Event) bool { return ev.Kind == KindClosed })
	if info := evs[len(evs)-1].Conn; info.ID != open.ID() || !errors.Is(info.Err, ErrIdle) {
		t.Fatalf("closed %v with %v, want ErrIdle", info.ID, info.Err)
	}
}

// TestIdleDisabled: without IdleTimeout nothing is ever idle.
func TestIdleDisabled(t *testing.T) {
	clk := newClock()
	r := newRegistry(t, Options{StatsInterval: quiet, Now: clk.Now})
	c, f := r.Register(testMeta, nil)
	defer f(nil)
	c.Established("192.0.2.1:443")
	clk.Advance(24 * time.Hour)
	if got := r.tick(); len(got) != 0 {
		t.Fatalf("%d idle with the timeout disabled", len(got))
	}
}

func TestDefaults(t *testing.T) {
	r := newRegistry(t, Options{})
	if r.opts.History != DefaultHistory || r.opts.StatsInterval != DefaultStatsInterval ||
		r.opts.SubscriberMax != DefaultSubscriberMax || r.opts.Now == nil || r.opts.IdleTimeout != 0 {
		t.Fatalf("defaults %+v", r.opts)
	}
}
