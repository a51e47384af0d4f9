package registry

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/xid"
)

var testMeta = Meta{Proto: ProtoSOCKS5, Client: "127.0.0.1:50000", Target: "example.com:443", Route: RouteDirect}

func TestLifecycleEvents(t *testing.T) {
	clk := newClock()
	r := newRegistry(t, Options{StatsInterval: quiet, Now: clk.Now})
	snap, sub := r.Subscribe()
	defer sub.Close()
	var buf []Event

	start := clk.Now()
	c, finish := r.Register(testMeta, newHook().abort)
	if c.ID().IsZero() {
		t.Fatal("registry did not assign an id")
	}
	ev := next(t, sub, 1, &buf)[0]
	if ev.Kind != KindOpened || ev.Seq != snap.Seq+1 || ev.Conn.ID != c.ID() {
		t.Fatalf("first event %v seq %d id %v, want opened seq %d id %v", ev.Kind, ev.Seq, ev.Conn.ID, snap.Seq+1, c.ID())
	}
	if ev.Conn.State != StateConnecting || !ev.Conn.Start.Equal(start) || ev.Conn.Target != testMeta.Target ||
		ev.Conn.Proto != ProtoSOCKS5 || ev.Conn.Route != RouteDirect || ev.Conn.Client != testMeta.Client {
		t.Fatalf("opened info %+v", ev.Conn)
	}
	if info, ok := r.Get(c.ID()); !ok || info.State != StateConnecting {
		t.Fatalf("Get after Register: %+v %v", info, ok)
	}

	est := clk.Advance(1000)
	c.Established("93.184.216.34:443")
	c.Established("10.0.0.1:443") // ignored: only the first call counts
	c.AddUp(10)
	c.AddDown(20)
	end := clk.Advance(2000)
	finish(nil)
	finish(io.EOF) // ignored: the first call wins

	// A marker after everything: had Established or finish emitted twice,
	// the marker would not be the third event.
	marker, finishMarker := r.Register(testMeta, nil)
	defer finishMarker(nil)
	evs := next(t, sub, 3, &buf)
	if evs[0].Kind != KindEstablished || evs[0].Conn.State != StateOpen || evs[0].Conn.Remote != "93.184.216.34:443" ||
		!evs[0].Conn.Established.Equal(est) {
		t.Fatalf("established event %v %+v", evs[0].Kind, evs[0].Conn)
	}
	cl := evs[1]
	if cl.Kind != KindClosed || cl.Conn.ID != c.ID() || cl.Conn.State != StateClosed {
		t.Fatalf("closed event %v %+v", cl.Kind, cl.Conn)
	}
	if cl.Conn.Up != 10 || cl.Conn.Down != 20 || cl.Conn.Err != nil || !cl.Conn.End.Equal(end) ||
		cl.Conn.Remote != "93.184.216.34:443" || !cl.Conn.Established.Equal(est) {
		t.Fatalf("closed info %+v", cl.Conn)
	}
	if evs[2].Kind != KindOpened || evs[2].Conn.ID != marker.ID() {
		t.Fatalf("third event %v for %v, want the marker's opened", evs[2].Kind, evs[2].Conn.ID)
	}
	for i, ev := range evs {
		if ev.Seq != snap.Seq+2+uint64(i) {
			t.Fatalf("event %d seq %d, want %d", i, ev.Seq, snap.Seq+2+uint64(i))
		}
	}

	// Established after finish changes nothing and emits nothing.
	c.Established("10.0.0.2:443")
	if info, ok := r.Get(c.ID()); !ok || info.State != StateClosed || info.Remote != "93.184.216.34:443" || info.Up != 10 {
		t.Fatalf("Get after finish: %+v %v", info, ok)
	}
	if got := r.Snapshot(); len(got.Live) != 1 || got.Live[0].ID != marker.ID() || len(got.Closed) != 1 {
		t.Fatalf("snapshot live %d closed %d", len(got.Live), len(got.Closed))
	}
}

func TestRegisterKeepsGivenID(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	id := xid.New()
	m := testMeta
	m.ID = id
	c, finish := r.Register(m, nil)
	defer finish(nil)
	if c.ID() != id || c.Meta().ID != id {
		t.Fatalf("id %v, want %v", c.ID(), id)
	}
}

// TestFinishConcurrent races many finish calls and CloseConn calls on the
// same record: exactly one Closed event, the live map empty, and the
// reason consistent with who won.
func TestFinishConcurrent(t *testing.T) {
	const rounds, racers = 200, 8
	r := newRegistry(t, Options{StatsInterval: quiet, SubscriberMax: 1 << 20})
	_, sub := r.Subscribe()
	defer sub.Close()
	ownerErr := errors.New("owner error")

	type round struct {
		id       xid.ID
		hook     *hookRec
		userWon  bool // some CloseConn found it live
		up, down int64
	}
	rs := make([]round, rounds)
	for i := range rs {
		h := newHook()
		c, finish := r.Register(testMeta, h.abort)
		c.Established("192.0.2.1:443")
		c.AddUp(int64(i))
		c.AddDown(int64(2 * i))
		rs[i] = round{id: c.ID(), hook: h, up: int64(i), down: int64(2 * i)}

		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		for j := range racers {
			wg.Go(func() {
				<-start
				switch j % 3 {
				case 0:
					finish(fmt.Errorf("racer %d: %w", j, ownerErr))
				case 1:
					finish(nil)
				case 2:
					if r.CloseConn(rs[i].id) {
						mu.Lock()
						rs[i].userWon = true
						mu.Unlock()
					}
				}
			})
		}
		close(start)
		wg.Wait()
	}
	if n := liveLen(r); n != 0 {
		t.Fatalf("live map holds %d records", n)
	}

	closed := map[xid.ID][]Info{}
	evs := until(t, sub, func(ev Event) bool { return ev.Kind == KindClosed && ev.Conn.ID == rs[rounds-1].id })
	for _, ev := range evs {
		if ev.Kind == KindClosed {
			closed[ev.Conn.ID] = append(closed[ev.Conn.ID], ev.Conn)
		}
	}
	for i, rd := range rs {
		cl := closed[rd.id]
		if len(cl) != 1 {
			t.Fatalf("round %d: %d Closed events", i, len(cl))
		}
		info := cl[0]
		if info.Up != rd.up || info.Down != rd.down {
			t.Fatalf("round %d: closed with %d/%d bytes, want %d/%d", i, info.Up, info.Down, rd.up, rd.down)
		}
		calls := rd.hook.calls()
		if len(calls) > 1 {
			t.Fatalf("round %d: abort hook called %d times", i, len(calls))
		}
		// CloseConn reported the record live exactly when it recorded the
		// reason and called the hook before the record finished.
		user := errors.Is(info.Err, ErrClosedByUser)
		if user != rd.userWon || (len(calls) == 1) != rd.userWon {
			t.Fatalf("round %d: CloseConn true=%v, hook calls %d, reason %v", i, rd.userWon, len(calls), info.Err)
		}
		if !user && info.Err != nil && !errors.Is(info.Err, ownerErr) {
			t.Fatalf("round %d: reason %v", i, info.Err)
		}
	}
}

// TestCloseConnReasonWins: the owner ends its sockets when asked and finishes
// with the I/O error that provoked; the record still says "closed by user".
func TestCloseConnReasonWins(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	_, sub := r.Subscribe()
	defer sub.Close()

	h := newHook()
	c, finish := r.Register(testMeta, h.abort)
	c.Established("192.0.2.1:443")
	done := make(chan struct{})
	go func() { // the owner: its relay fails once the hook closed the sockets
		defer close(done)
		<-h.called
		c.AddDown(7)
		finish(fmt.Errorf("relay: %w", net.ErrClosed))
	}()

	if !r.CloseConn(c.ID()) {
		t.Fatal("CloseConn on a live connection returned false")
	}
	<-done
	if r.CloseConn(c.ID()) {
		t.Fatal("CloseConn on a finished connection returned true")
	}
	if r.CloseConn(xid.New()) {
		t.Fatal("CloseConn on an unknown id returned true")
	}
	calls := h.calls()
	if len(calls) != 1 || !errors.Is(calls[0], ErrClosedByUser) {
		t.Fatalf("hook calls %v, want one with ErrClosedByUser", calls)
	}
	ev := until(t, sub, func(ev Event) bool { return ev.Kind == KindClosed })
	info := ev[len(ev)-1].Conn
	if !errors.Is(info.Err, ErrClosedByUser) || errors.Is(info.Err, net.ErrClosed) {
		t.Fatalf("closed reason %v, want ErrClosedByUser", info.Err)
	}
	if info.Down != 7 {
		t.Fatalf("closed with down %d, want the final 7", info.Down)
	}
}

func TestCloseConnTwiceCallsHookOnce(t *testing.T) {
	r, c, finish, h := hookedConn(t)
	for range 3 {
		if !r.CloseConn(c.ID()) { // still live until the owner finishes
			t.Fatal("CloseConn on a live connection returned false")
		}
	}
	c.Abort(ErrIdle) // a later reason does not replace the first
	finish(io.EOF)
	if calls := h.calls(); len(calls) != 1 {
		t.Fatalf("hook called %d times", len(calls))
	}
	wantReason(t, r, c, ErrClosedByUser)
}

func TestAbortFirstReasonWins(t *testing.T) {
	r, c, finish, h := hookedConn(t)
	c.Established("192.0.2.1:443")
	c.Abort(ErrIdle)
	r.CloseConn(c.ID())
	r.CloseAll()
	finish(net.ErrClosed)
	calls := h.calls()
	if len(calls) != 1 || !errors.Is(calls[0], ErrIdle) {
		t.Fatalf("hook calls %v", calls)
	}
	wantReason(t, r, c, ErrIdle)
}

// TestAbortAfterFinish: the owner may reuse what its hook closes (the HTTP
// front's hook cancels a client connection shared by keep-alive requests),
// so a finished record must never call it.
func TestAbortAfterFinish(t *testing.T) {
	r, c, finish, h := hookedConn(t)
	finish(nil)
	c.Abort(ErrClosedByUser)
	c.Abort(ErrIdle)
	if calls := h.calls(); len(calls) != 0 {
		t.Fatalf("hook called after finish: %v", calls)
	}
	if info, _ := r.Get(c.ID()); info.Err != nil || info.State != StateClosed {
		t.Fatalf("finished record changed: %+v", info)
	}
}

func TestCloseAll(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	type owned struct {
		c      *Conn
		finish func(error)
		hook   *hookRec
	}
	var os []owned
	for range 5 {
		h := newHook()
		c, f := r.Register(testMeta, h.abort)
		os = append(os, owned{c, f, h})
	}
	os[0].finish(nil)
	os[1].finish(io.EOF)
	if n := r.CloseAll(); n != 3 {
		t.Fatalf("CloseAll = %d, want 3", n)
	}
	if n := r.CloseAll(); n != 3 { // not finished yet: still live, hooks not called again
		t.Fatalf("second CloseAll = %d, want 3", n)
	}
	for i, o := range os {
		calls := o.hook.calls()
		want := 1
		if i < 2 {
			want = 0
		}
		if len(calls) != want || (want == 1 && !errors.Is(calls[0], ErrClosedByUser)) {
			t.Fatalf("conn %d: hook calls %v, want %d", i, calls, want)
		}
	}
	for _, o := range os[2:] {
		o.finish(net.ErrClosed)
	}
	if n := r.CloseAll(); n != 0 {
		t.Fatalf("CloseAll after all finished = %d", n)
	}
	closed := r.Snapshot().Closed
	if len(closed) != 5 {
		t.Fatalf("%d closed records", len(closed))
	}
	for i, info := range closed {
		switch {
		case i == 0 && info.Err != nil,
			i == 1 && !errors.Is(info.Err, io.EOF),
			i >= 2 && !errors.Is(info.Err, ErrClosedByUser):
			t.Fatalf("closed %d reason %v", i, info.Err)
		}
	}
}

// TestDuplicateIDStaysLive: IDs may come from the caller; finishing one
// record must not delete another that holds the same id in the live map.
// TestDuplicateLiveIDGetsAFreshOne: ids are unique among live connections;
// registering a live id again gives the new record its own id and leaves
// the first one alone.
func TestDuplicateLiveIDGetsAFreshOne(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	m := testMeta
	m.ID = xid.New()
	a, finishA := r.Register(m, nil)
	hb := newHook()
	b, finishB := r.Register(m, hb.abort)
	if a.ID() != m.ID || b.ID() == m.ID || b.ID().IsZero() {
		t.Fatalf("ids %v and %v for a duplicate of %v", a.ID(), b.ID(), m.ID)
	}
	finishA(nil)
	info, ok := r.Get(b.ID())
	if !ok || info.State != StateConnecting {
		t.Fatalf("second record lost from the live map: %+v %v", info, ok)
	}
	if !r.CloseConn(b.ID()) || len(hb.calls()) != 1 {
		t.Fatal("CloseConn did not reach the live record")
	}
	finishB(nil)
	if n := liveLen(r); n != 0 {
		t.Fatalf("live map holds %d", n)
	}
}

func TestGet(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet, History: 2})
	live, finishLive := r.Register(testMeta, nil)
	defer finishLive(nil)
	live.Established("192.0.2.1:80")
	live.AddUp(3)
	gone, finishGone := r.Register(testMeta, nil)
	finishGone(io.ErrUnexpectedEOF)

	if info, ok := r.Get(live.ID()); !ok || info.State != StateOpen || info.Up != 3 {
		t.Fatalf("live: %+v %v", info, ok)
	}
	if info, ok := r.Get(gone.ID()); !ok || info.State != StateClosed || !errors.Is(info.Err, io.ErrUnexpectedEOF) {
		t.Fatalf("closed: %+v %v", info, ok)
	}
	if _, ok := r.Get(xid.New()); ok {
		t.Fatal("unknown id found")
	}
	for range 2 { // push gone out of the ring
		_, f := r.Register(testMeta, nil)
		f(nil)
	}
	if _, ok := r.Get(gone.ID()); ok {
		t.Fatal("record evicted from history still found")
	}
}

func TestHistoryDefault(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	const n = DefaultHistory + 5
	ids := make([]xid.ID, n)
	for i := range ids {
		c, finish := r.Register(testMeta, nil)
		c.AddUp(int64(i))
		finish(nil)
		ids[i] = c.ID()
	}
	closed := r.Snapshot().Closed
	if len(closed) != DefaultHistory {
		t.Fatalf("history holds %d, want %d", len(closed), DefaultHistory)
	}
	for i, info := range closed {
		if info.ID != ids[i+5] || info.Up != int64(i+5) {
			t.Fatalf("history[%d] = %v, want %v (oldest first)", i, info.ID, ids[i+5])
		}
	}
	if _, ok := r.Get(ids[4]); ok {
		t.Fatal("evicted record found")
	}
	if info, ok := r.Get(ids[5]); !ok || info.Up != 5 {
		t.Fatal("oldest kept record not found")
	}
}

func TestHistoryCustomWraps(t *testing.T) {
	const size = 3
	r := newRegistry(t, Options{StatsInterval: quiet, History: size})
	var ids []xid.ID
	for i := range 3*size + 2 { // several full turns and a partial one
		c, finish := r.Register(testMeta, nil)
		finish(nil)
		ids = append(ids, c.ID())
		want := ids[max(0, len(ids)-size):]
		got := r.Snapshot().Closed
		if len(got) != len(want) {
			t.Fatalf("after %d: history holds %d, want %d", i+1, len(got), len(want))
		}
		for j := range want {
			if got[j].ID != want[j] {
				t.Fatalf("after %d: history[%d] = %v, want %v", i+1, j, got[j].ID, want[j])
			}
		}
	}
}

func TestHistoryRing(t *testing.T) {
	for _, size := range []int{1, 2, 5} {
		h := newHistory(size)
		var pushed []int64
		for i := range 4*size + 1 {
			h.push(Info{Up: int64(i)})
			pushed = append(pushed, int64(i))
			want := pushed[max(0, len(pushed)-size):]
			got := h.list()
			if len(got) != len(want) {
				t.Fatalf("size %d after %d pushes: len %d, want %d", size, i+1, len(got), len(want))
			}
			for j := range want {
				if got[j].Up != want[j] {
					t.Fatalf("size %d after %d pushes: [%d] = %d, want %d", size, i+1, j, got[j].Up, want[j])
				}
			}
			got[0].Up = -1 // a copy: the ring is untouched
			if h.list()[0].Up == -1 {
				t.Fatal("list shares the ring's memory")
			}
		}
	}
}

func TestSnapshotLiveOldestFirst(t *testing.T) {
	clk := newClock()
	r := newRegistry(t, Options{StatsInterval: quiet, Now: clk.Now})
	var ids []xid.ID
	var finishes []func(error)
	for range 20 {
		clk.Advance(1000)
		c, f := r.Register(testMeta, nil)
		ids = append(ids, c.ID())
		finishes = append(finishes, f)
	}
	finishes[3](nil)
	live := r.Snapshot().Live
	want := append(append([]xid.ID(nil), ids[:3]...), ids[4:]...)
	if len(live) != len(want) {
		t.Fatalf("%d live, want %d", len(live), len(want))
	}
	for i := range want {
		if live[i].ID != want[i] {
			t.Fatalf("live[%d] = %v, want %v", i, live[i].ID, want[i])
		}
	}
	for _, f := range finishes {
		f(nil)
	}
}

func TestTotals(t *testing.T) {
	r := newRegistry(t, Options{StatsInterval: quiet})
	a, finishA := r.Register(testMeta, nil)
	b, finishB := r.Register(testMeta, nil)
	a.AddUp(100)
	a.AddDown(1000)
	b.AddUp(1)
	finishA(nil)
	b.AddDown(2)
	tot := r.Totals()
	if tot.Active != 1 || tot.Opened != 2 || tot.Up != 101 || tot.Down != 1002 {
		t.Fatalf("totals %+v", tot)
	}
	finishB(nil)
	tot = r.Totals()
	if tot.Active != 0 || tot.Opened != 2 || tot.Up != 101 || tot.Down != 1002 {
		t.Fatalf("totals after all closed %+v", tot)
	}
	if s := r.Snapshot().Totals; s != tot {
		t.Fatalf("snapshot totals %+v, want %+v", s, tot)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ProtoHTTP.String(), "http"}, {ProtoConnect.String(), "connect"}, {ProtoSOCKS5.String(), "socks5"},
		{ProtoSOCKS4.String(), "socks4"}, {Proto(9).String(), "proto(9)"},
		{RouteDirect.String(), "direct"}, {RouteTunnel.String(), "tunnel"}, {RouteBypass.String(), "bypass"},
		{Route(0).String(), "route(0)"},
		{StateConnecting.String(), "connecting"}, {StateOpen.String(), "open"}, {StateClosed.String(), "closed"},
		{State(7).String(), "state(7)"},
		{KindOpened.String(), "opened"}, {KindEstablished.String(), "established"}, {KindClosed.String(), "closed"},
		{KindStats.String(), "stats"}, {Kind(0).String(), "kind(0)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestSetProcessLiveAndAfterClose(t *testing.T) {
	r := New(Options{})
	defer r.Close()
	snap, sub := r.Subscribe()
	defer sub.Close()
	_ = snap

	live, finishLive := r.Register(Meta{Proto: ProtoConnect, Target: "a:1"}, nil)
	live.SetProcess(&Process{PID: 42, Name: "curl", UID: 0})
	live.SetProcess(&Process{PID: 43, Name: "wrong"}) // second call ignored
	if in, _ := r.Get(live.ID()); in.Process == nil || in.Process.PID != 42 || in.Network != "tcp" {
		t.Fatalf("live record: %+v", in)
	}

	short, finishShort := r.Register(Meta{Proto: ProtoSOCKS5, Target: "b:2"}, nil)
	finishShort(nil)
	short.SetProcess(&Process{UID: -1, Unknown: "process exited"})
	in, ok := r.Get(short.ID())
	if !ok || in.State != StateClosed || in.Process == nil || in.Process.Known() || in.Process.Label() != "unknown" {
		t.Fatalf("closed record: %+v", in)
	}
	if got := r.Snapshot().Closed; len(got) != 1 || got[0].Process == nil {
		t.Fatalf("history snapshot lacks the process: %+v", got)
	}
	finishLive(nil)

	var procs []Event
	deadline := time.After(5 * time.Second)
	for len(procs) < 2 {
		select {
		case batch, ok := <-sub.C:
			if !ok {
				t.Fatal("subscription ended")
			}
			for _, ev := range batch {
				if ev.Kind == KindProcess {
					procs = append(procs, ev)
				}
			}
		case <-deadline:
			t.Fatalf("process events: got %d, want 2", len(procs))
		}
	}
	if procs[0].Conn.Process.Name != "curl" || procs[0].Conn.State != StateConnecting {
		t.Fatalf("first process event: %+v", procs[0].Conn)
	}
	if procs[1].Conn.State != StateClosed || procs[1].Conn.Process.Unknown != "process exited" {
		t.Fatalf("second process event: %+v", procs[1].Conn)
	}
}
