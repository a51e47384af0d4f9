package ui

import (
	"bytes"
	"errors"
	"io"
	"log"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"porthole/core/registry"
)

// fyneThreadErrors fails t if Fyne reports a call off its thread ("Error
// in Fyne call thread", printed with the standard logger) while t runs.
func fyneThreadErrors(t *testing.T) {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	prev := log.Writer()
	log.SetOutput(io.MultiWriter(prev, writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})))
	t.Cleanup(func() {
		log.SetOutput(prev)
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(buf.String(), "Error in Fyne call thread") {
			t.Errorf("Fyne reported a call off its thread:\n%s", buf.String())
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// openInspector shows an inspector of reg in a test-driver window; the test
// goroutine is its Fyne thread.
func openInspector(t *testing.T, reg *registry.Registry) (*inspector, *testThread) {
	t.Helper()
	fyneThreadErrors(t)
	a := test.NewTempApp(t)
	a.Settings().SetTheme(theme.DefaultTheme())
	tt := newTestThread(8)
	i := newInspectorFor(a, reg, 50, tt.post)
	apply := i.bridge.onView
	i.bridge.onView = func(v *connView) { apply(v); tt.views = append(tt.views, v) }
	t.Cleanup(func() { stopBridge(i.bridge, tt) })
	i.Show()
	return i, tt
}

// ownedConn registers a connection whose owner, like the inbound side,
// finishes it when the registry aborts it (Close selected, Close all).
func ownedConn(t *testing.T, reg *registry.Registry, target string, route registry.Route) *testConn {
	t.Helper()
	tc := register(reg, target, registry.ProtoSOCKS5, route)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-tc.aborted:
		case <-done:
		}
		tc.finish(nil) // an aborted record keeps the abort's reason
	}()
	t.Cleanup(func() { close(done); <-ended })
	return tc
}

// headerPos is where a click on col's header lands in the window.
func headerPos(i *inspector, tb tab, col column) fyne.Position {
	tbl := i.tables[tb].table
	pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(tbl)
	pad := theme.Padding()
	x := pos.X + pad
	for c := range col {
		x += columns[c].width + pad
	}
	return fyne.NewPos(x+10, pos.Y+10)
}

func TestInspectorSortFilterAndPauseThroughTheWidgets(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	ownedConn(t, reg, "bravo.example:443", registry.RouteTunnel)
	ownedConn(t, reg, "alpha.example:443", registry.RouteDirect)
	ownedConn(t, reg, "charlie.example:443", registry.RouteTunnel)
	i, tt := openInspector(t, reg)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil && liveCount(tt.last()) == 3 })

	test.TapCanvas(i.win.Canvas(), headerPos(i, tabActive, colHost))
	want := sortSpec{col: colHost}
	tt.runUntil(t, "sorted by host", func() bool { return tt.last().query.sort[tabActive] == want })
	if got := strings.Join(hosts(i.tables[tabActive].rows), " "); got != "alpha.example bravo.example charlie.example" {
		t.Fatalf("rows %s", got)
	}
	if h := i.tables[tabActive].headerText(colHost); h != "host ▲" {
		t.Fatalf("header %q", h)
	}
	test.TapCanvas(i.win.Canvas(), headerPos(i, tabActive, colHost))
	want.desc = true
	tt.runUntil(t, "sorted by host, descending", func() bool { return tt.last().query.sort[tabActive] == want })
	if got := strings.Join(hosts(i.tables[tabActive].rows), " "); got != "charlie.example bravo.example alpha.example" {
		t.Fatalf("rows %s", got)
	}

	test.Type(i.filter, "route:tunnel")
	tt.runUntil(t, "filtered", func() bool { return tt.last().query.filter == "route:tunnel" })
	if got := strings.Join(hosts(i.tables[tabActive].rows), " "); got != "charlie.example bravo.example" {
		t.Fatalf("filtered rows %s", got)
	}
	if got := i.tabItems[tabActive].Text; got != "Active (2 of 3)" {
		t.Fatalf("tab title %q", got)
	}
	i.filter.SetText("")

	test.Tap(i.pause)
	tt.runUntil(t, "paused", func() bool { return tt.last().query.paused && tt.last().query.filter == "" })
	ownedConn(t, reg, "delta.example:443", registry.RouteDirect)
	tt.runUntil(t, "the badge", func() bool { return tt.last().waiting == 1 })
	if !i.badge.Visible() || i.badge.Text != "Paused · 1 update waiting" {
		t.Fatalf("badge %q visible %v", i.badge.Text, i.badge.Visible())
	}
	if n := len(i.tables[tabActive].rows); n != 3 {
		t.Fatalf("paused table shows %d rows, want the 3 frozen ones", n)
	}
	test.Tap(i.pause)
	tt.runUntil(t, "resumed", func() bool { return !tt.last().query.paused })
	if n := len(i.tables[tabActive].rows); n != 4 || i.badge.Visible() {
		t.Fatalf("resumed table shows %d rows (badge visible %v), want 4", n, i.badge.Visible())
	}
}

func TestInspectorCloseSelectedAndCloseAll(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	for _, h := range []string{"one.example:443", "two.example:443", "three.example:443"} {
		ownedConn(t, reg, h, registry.RouteDirect)
	}
	i, tt := openInspector(t, reg)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil && liveCount(tt.last()) == 3 })
	if !i.closeSel.Disabled() {
		t.Fatal("Close selected is enabled with nothing selected")
	}

	i.tables[tabActive].table.Select(widget.TableCellID{Row: 0, Col: int(colHost)})
	picked := i.selRow
	if picked == nil || !strings.Contains(i.details.Text, picked.idText) || i.closeSel.Disabled() {
		t.Fatalf("selecting a row: details %q", i.details.Text)
	}
	test.Tap(i.closeSel)
	tt.runUntil(t, "the row in Closed", func() bool {
		v := tt.last()
		return liveCount(v) == 2 && closedCount(v) == 1
	})
	closed := i.tables[tabClosed].rows[0]
	if closed.ID != picked.ID || !errors.Is(closed.Err, registry.ErrClosedByUser) {
		t.Fatalf("closed row %s with %v, want %s closed by user", closed.idText, closed.Err, picked.idText)
	}
	// The selection followed the connection to Closed.
	if !strings.Contains(i.details.Text, "closed by user") || !i.closeSel.Disabled() {
		t.Fatalf("details after closing: %q (Close selected disabled: %v)", i.details.Text, i.closeSel.Disabled())
	}

	test.Tap(i.closeAll)
	tt.runUntil(t, "all in Closed", func() bool { return liveCount(tt.last()) == 0 && closedCount(tt.last()) == 3 })
	for _, r := range i.tables[tabClosed].rows {
		if !errors.Is(r.Err, registry.ErrClosedByUser) {
			t.Fatalf("%s closed with %v", r.idText, r.Err)
		}
	}
	if got := i.tabItems[tabClosed].Text; got != "Closed (3)" {
		t.Fatalf("tab title %q", got)
	}
}

func TestInspectorHiddenWindowDoesNoWork(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	i, tt := openInspector(t, reg)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil })

	i.hide() // the window's close button
	events, views, applied := i.bridge.events.Load(), i.bridge.views.Load(), len(tt.views)
	for range 20 {
		register(reg, "while-hidden.example:80", registry.ProtoHTTP, registry.RouteDirect).finish(nil)
	}
	tt.drain()
	if i.bridge.running() || i.bridge.events.Load() != events || i.bridge.views.Load() != views || len(tt.views) != applied {
		t.Fatalf("hidden inspector worked: running %v, %d model updates, %d views, %d applied",
			i.bridge.running(), i.bridge.events.Load()-events, i.bridge.views.Load()-views, len(tt.views)-applied)
	}

	i.Show()
	tt.runUntil(t, "a fresh snapshot", func() bool { return closedCount(tt.last()) == 20 })
}

// Only the selected tab's table is redrawn; the other one is redrawn when
// its tab is selected, with the rows that arrived meanwhile.
func TestInspectorRedrawsTheHiddenTabWhenSelected(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	ownedConn(t, reg, "alpha.example:443", registry.RouteDirect)
	i, tt := openInspector(t, reg)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil && liveCount(tt.last()) == 1 })

	ended := register(reg, "closed.example:443", registry.ProtoSOCKS5, registry.RouteDirect)
	ended.finish(nil)
	tt.runUntil(t, "the closed row", func() bool { return len(i.tables[tabClosed].rows) == 1 })
	if !i.tables[tabClosed].stale || i.tables[tabActive].stale {
		t.Fatalf("stale: active %v, closed %v; want only the unselected Closed table stale",
			i.tables[tabActive].stale, i.tables[tabClosed].stale)
	}
	i.tabs.SelectIndex(int(tabClosed))
	if i.tables[tabClosed].stale {
		t.Fatal("selecting the Closed tab did not redraw its table")
	}
	cell := newTableCell()
	i.tables[tabClosed].updateCell(widget.TableCellID{Row: 0, Col: int(colHost)}, cell)
	if got := cellParts(cell).label.Text; got != "closed.example" {
		t.Fatalf("Closed tab's first host cell %q", got)
	}
}
