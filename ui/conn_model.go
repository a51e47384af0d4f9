package ui

import (
	"net"
	"slices"
	"strings"
	"time"

	"github.com/rs/xid"

	"porthole/core/registry"
)

// connRow is one connection as the inspector shows it.
//
// Rows are immutable once built: the bridge makes a new row for every
// change and hands views holding rows to the Fyne thread, so the bridge's
// goroutine and the Fyne thread never share memory that changes.
type connRow struct {
	registry.Info
	idText     string  // the full xid, as the logs print it
	host, port string  // Target split once, for the columns and the filter
	errText    string  // "" for a clean close or a live connection
	appText    string  // the App column: the program's name, "unknown", or "…" while the lookup runs
	appKey     string  // the Apps view's group: see appKeyOf
	ruleText   string  // the Rule column: the rule that decided the route (registry.Rule.String)
	upRate     float64 // bytes/s: at the last stats tick while live; the average over its life once closed
	downRate   float64
	search     string // lower-case id, target, error and program name: what a plain filter word is looked for in
}

func newConnRow(info registry.Info) *connRow {
	r := &connRow{Info: info, idText: info.ID.String()}
	r.host, r.port = info.Target, ""
	if h, p, err := net.SplitHostPort(info.Target); err == nil {
		r.host, r.port = h, p
	}
	if info.Err != nil {
		r.errText = info.Err.Error()
	}
	if info.State == registry.StateClosed {
		if secs := info.End.Sub(info.Start).Seconds(); secs > 0 {
			r.upRate, r.downRate = float64(info.Up)/secs, float64(info.Down)/secs
		}
	}
	r.appText, r.appKey = appTextOf(info.Process), appKeyOf(info.Process)
	r.ruleText = ruleArrows.Replace(info.Rule.String())
	search := r.idText + "\x00" + info.Target + "\x00" + r.errText
	if info.Process.Known() {
		search += "\x00" + info.Process.Name
	}
	r.search = strings.ToLower(search)
	return r
}

// withCounts is r after a stats tick: new totals and the rates over dt.
func (r *connRow) withCounts(d registry.Delta, dt time.Duration) *connRow {
	n := *r
	n.Up, n.Down = d.Up, d.Down
	n.upRate, n.downRate = 0, 0
	if secs := dt.Seconds(); secs > 0 {
		n.upRate, n.downRate = float64(d.DUp)/secs, float64(d.DDown)/secs
	}
	return &n
}

// withoutRate is r after a tick in which it moved no byte.
func (r *connRow) withoutRate() *connRow {
	n := *r
	n.upRate, n.downRate = 0, 0
	return &n
}

// speed is the column's single figure: both directions together.
func (r *connRow) speed() float64 { return r.upRate + r.downRate }

// duration is how long the connection has lived, up to now if it is live.
func (r *connRow) duration(now time.Time) time.Duration {
	if !r.End.IsZero() {
		return r.End.Sub(r.Start)
	}
	return now.Sub(r.Start)
}

// rateSample is one point of the traffic graph.
type rateSample struct {
	at       time.Time
	up, down float64 // bytes/s registry-wide
}

// graphSpan is how much traffic history the graph shows.
const graphSpan = 2 * time.Minute

// connModel is the registry's state as the bridge keeps it: built from a
// subscription's snapshot and advanced by its events, in order.
//
// Concurrency: owned by the bridge's goroutine; nothing else touches it.
// Memory is bounded: live rows are the registry's live connections, closed
// rows are capped at the registry's history size, and the graph keeps
// graphSpan of samples.
type connModel struct {
	historyCap int
	seq        uint64 // the last event applied
	live       map[xid.ID]*connRow
	moving     map[xid.ID]struct{} // live rows whose rate is not zero
	closed     []*connRow          // oldest first
	opened     uint64
	totals     registry.Totals // of the last stats tick (or the snapshot)
	lastTick   time.Time
	samples    []rateSample // oldest first
	apps       *appStats    // per program, for the Apps view
}

func newConnModel(historyCap int) *connModel {
	if historyCap <= 0 {
		historyCap = registry.DefaultHistory
	}
	return &connModel{historyCap: historyCap, apps: newAppStats()}
}

// reset starts over from a snapshot. The graph's samples are kept: they are
// the registry's past rates, still true after a resubscription.
func (m *connModel) reset(s registry.Snapshot) {
	m.seq = s.Seq
	m.live = make(map[xid.ID]*connRow, len(s.Live))
	m.moving = make(map[xid.ID]struct{})
	for _, info := range s.Live {
		m.live[info.ID] = newConnRow(info)
	}
	closed := s.Closed
	if len(closed) > m.historyCap {
		closed = closed[len(closed)-m.historyCap:]
	}
	m.closed = make([]*connRow, 0, len(closed))
	for _, info := range closed {
		m.closed = append(m.closed, newConnRow(info))
	}
	m.opened = s.Totals.Opened
	m.totals = s.Totals
	m.lastTick = time.Time{}
	m.apps = newAppStats()
	for _, r := range m.live {
		m.apps.attach(r, true)
	}
	for _, r := range m.closed {
		m.apps.attach(r, false)
	}
}

// apply advances the model by one event. It reports false when ev does not
// follow the last one applied: the stream has a gap and the caller must
// start over from a new snapshot.
func (m *connModel) apply(ev registry.Event) bool {
	if ev.Seq != m.seq+1 {
		return false
	}
	m.seq = ev.Seq
	switch ev.Kind {
	case registry.KindOpened:
		m.opened++
		r := newConnRow(ev.Conn)
		m.live[ev.Conn.ID] = r
		m.apps.attach(r, true)
	case registry.KindEstablished, registry.KindProcess:
		if old, ok := m.live[ev.Conn.ID]; ok {
			r := newConnRow(ev.Conn)
			r.upRate, r.downRate = old.upRate, old.downRate
			m.apps.detach(old, true)
			m.apps.attach(r, true)
			m.live[ev.Conn.ID] = r
		} else if ev.Kind == registry.KindProcess && ev.Conn.State == registry.StateClosed {
			m.setClosedProcess(newConnRow(ev.Conn))
		}
	case registry.KindClosed:
		r := newConnRow(ev.Conn)
		if old, ok := m.live[ev.Conn.ID]; ok {
			m.apps.detach(old, true)
		}
		m.apps.attach(r, false)
		delete(m.live, ev.Conn.ID)
		delete(m.moving, ev.Conn.ID)
		m.pushClosed(r)
	case registry.KindStats:
		if ev.Stats != nil {
			m.applyStats(ev.Stats)
		}
	}
	return true
}

func (m *connModel) pushClosed(r *connRow) {
	if len(m.closed) >= m.historyCap {
		// Dropping from the front; append reallocates from time to
		// time and copies only what is kept, so memory stays bounded.
		m.closed[0] = nil
		m.closed = m.closed[1:]
	}
	m.closed = append(m.closed, r)
}

// setClosedProcess shows the program of a connection that ended before
// its lookup answered: its closed row is replaced, and in the Apps view it
// moves from "unknown" to its program. A row already gone from the history
// is still moved there (its totals are counted by program).
func (m *connModel) setClosedProcess(r *connRow) {
	old := *r
	old.Process, old.appKey = nil, appKeyOf(nil) // what it was: SetProcess answers once
	for n := len(m.closed) - 1; n >= 0; n-- {    // from the newest: a short connection just ended
		if m.closed[n].ID == r.ID {
			old = *m.closed[n]
			m.closed[n] = r
			break
		}
	}
	m.apps.detach(&old, false)
	m.apps.attach(r, false)
}

func (m *connModel) applyStats(st *registry.Stats) {
	dt := registry.DefaultStatsInterval // the first tick after a snapshot has no predecessor here
	if !m.lastTick.IsZero() {
		dt = st.At.Sub(m.lastTick)
	}
	m.lastTick = st.At
	stopped := m.moving
	m.moving = make(map[xid.ID]struct{}, len(st.Deltas))
	for _, d := range st.Deltas {
		r, ok := m.live[d.ID]
		if !ok {
			continue
		}
		m.live[d.ID] = r.withCounts(d, dt)
		delete(stopped, d.ID)
		if d.DUp != 0 || d.DDown != 0 {
			m.moving[d.ID] = struct{}{}
		}
	}
	for id := range stopped {
		if r, ok := m.live[id]; ok {
			m.live[id] = r.withoutRate()
		}
	}
	m.totals = st.Totals
	m.opened = st.Totals.Opened
	m.samples = append(m.samples, rateSample{at: st.At, up: st.Totals.UpRate, down: st.Totals.DownRate})
	cut := 0
	for cut < len(m.samples) && st.At.Sub(m.samples[cut].at) > graphSpan {
		cut++
	}
	if cut > 0 {
		m.samples = slices.Delete(m.samples, 0, cut)
	}
}

// rowBase is everything one view is built from, copied out of the model at
// one moment: views filter and sort it, Pause keeps it.
type rowBase struct {
	at      time.Time
	live    []*connRow // in no particular order
	closed  []*connRow // oldest first
	totals  registry.Totals
	samples []rateSample
	apps    []*appRow // in no particular order
}

// base copies the model's current state (the rows themselves are shared:
// they never change).
func (m *connModel) base(now time.Time) *rowBase {
	b := &rowBase{
		at:      now,
		live:    make([]*connRow, 0, len(m.live)),
		closed:  slices.Clone(m.closed),
		totals:  m.totals,
		samples: slices.Clone(m.samples),
	}
	for _, r := range m.live {
		b.live = append(b.live, r)
	}
	b.apps = m.apps.rows(b.live)
	// Between ticks the lifecycle events are newer than the tick's
	// counts.
	b.totals.Active = len(m.live)
	b.totals.Opened = m.opened
	return b
}
