package ui

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"porthole/core/registry"
)

// Programs as the lookup reports them.
var (
	firefox = &registry.Process{PID: 4242, Name: "firefox", Path: "/usr/lib/firefox/firefox",
		UID: 1000, User: "alice", PPID: 4200, ParentName: "firefox"}
	curlProc = &registry.Process{PID: 777, Name: "curl", Path: "/usr/bin/curl", UID: 1000, User: "alice", PPID: 700, ParentName: "bash"}
	python3  = &registry.Process{PID: 900, Name: "python3", Path: "/usr/bin/python3", UID: 0, User: "root", PPID: 1}
	python31 = &registry.Process{PID: 901, Name: "python3.11", Path: "/opt/py/bin/python3.11", UID: 0, User: "root", PPID: 1}
	pyOther  = &registry.Process{PID: 902, Name: "python3", Path: "/opt/py/bin/python3", UID: 0, User: "root", PPID: 1}
	remote   = &registry.Process{UID: -1, Unknown: "remote client"}
	hidden   = &registry.Process{UID: 0, User: "root", Unknown: "no permission"}
)

// appConn registers a connection and, when p is not nil, records its
// program, as the inbound side and the lookup do.
func appConn(reg *registry.Registry, target string, p *registry.Process) *testConn {
	c := register(reg, target, registry.ProtoConnect, registry.RouteDirect)
	if p != nil {
		c.conn.SetProcess(p)
	}
	return c
}

// dline is one line of the details pane.
func dline(name, value string) string { return fmt.Sprintf("%-12s %s\n", name, value) }

// newClockedRegistry is newTestRegistry with a clock that moves a
// millisecond at each reading, so connections registered one after the
// other have distinct start times (the hosts' order) on any machine.
func newClockedRegistry(t *testing.T, stats time.Duration) *registry.Registry {
	t.Helper()
	var n atomic.Int64
	base := time.Now()
	reg := registry.New(registry.Options{StatsInterval: stats, History: 50,
		Now: func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Millisecond) }})
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("closing the registry: %v", err)
		}
	})
	return reg
}

func appCellText(t *testing.T, ct *connTable, row int) string {
	t.Helper()
	cell := newTableCell()
	ct.updateCell(widget.TableCellID{Row: row, Col: int(colApp)}, cell)
	return cellParts(cell).label.Text
}

func appTexts(ct *connTable) []string {
	out := make([]string, len(ct.rows))
	for n, r := range ct.rows {
		out[n] = r.appText
	}
	return out
}

func TestInspectorAppColumnSortAndFilter(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	conns := []*testConn{
		appConn(reg, "alpha.example:443", firefox),
		appConn(reg, "bravo.example:443", curlProc),
		appConn(reg, "charlie.example:443", nil), // the lookup has not answered
		appConn(reg, "delta.example:443", remote),
		appConn(reg, "echo.example:443", firefox),
	}
	defer finishAll(conns...)
	i, tt := openInspector(t, reg)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil && liveCount(tt.last()) == 5 })

	test.TapCanvas(i.win.Canvas(), headerPos(i, tabActive, colApp))
	tt.runUntil(t, "sorted by app", func() bool { return tt.last().query.sort[tabActive] == sortSpec{col: colApp} })
	if got, want := appTexts(i.tables[tabActive]), []string{"…", "curl", "firefox", "firefox", "unknown"}; !slices.Equal(got, want) {
		t.Fatalf("App column sorted %q, want %q (pending first, unknown last)", got, want)
	}
	if got := appCellText(t, i.tables[tabActive], 1); got != "curl" {
		t.Fatalf("App cell %q", got)
	}
	if h := i.tables[tabActive].headerText(colApp); h != "app ▲" {
		t.Fatalf("header %q", h)
	}

	// The lookup answers for the pending one: its row changes in place.
	conns[2].conn.SetProcess(curlProc)
	tt.runUntil(t, "the late answer", func() bool {
		return slices.Equal(appTexts(i.tables[tabActive]), []string{"curl", "curl", "firefox", "firefox", "unknown"})
	})

	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"app:firefox", []string{"alpha.example", "echo.example"}},
		{"app:FIRE", []string{"alpha.example", "echo.example"}}, // a prefix, any case
		{"-app:firefox", []string{"bravo.example", "charlie.example", "delta.example"}},
		{"app:firefox echo", []string{"echo.example"}}, // with the plain text filter
		{"app:curl -host:bravo", []string{"charlie.example"}},
		{"app:/usr/bin/curl", []string{"bravo.example", "charlie.example"}}, // the exact path
		{"app:/usr/bin", nil}, // not a directory's prefix
		{"app:unknown", []string{"delta.example"}},
		{"curl", []string{"bravo.example", "charlie.example"}}, // a plain word finds the name too
	} {
		i.filter.SetText(tc.filter)
		tt.runUntil(t, "filter "+tc.filter, func() bool { return tt.last().query.filter == tc.filter })
		got := hosts(i.tables[tabActive].rows)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("filter %q: rows %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestInspectorDetailsShowTheProgram(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	known := appConn(reg, "alpha.example:443", firefox)
	pending := appConn(reg, "bravo.example:443", nil)
	away := appConn(reg, "charlie.example:443", remote)
	other := appConn(reg, "delta.example:443", hidden)
	defer finishAll(known, pending, away, other)
	i, tt := openInspector(t, reg)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil && liveCount(tt.last()) == 4 })
	for _, tc := range []struct {
		c    *testConn
		want []string
		not  []string
	}{
		{known, []string{dline("App", "firefox"), dline("PID", "4242"), dline("Executable", "/usr/lib/firefox/firefox"),
			dline("User", "alice (uid 1000)"), dline("Parent", "4200 (firefox)")}, nil},
		{pending, []string{dline("App", "… (looking it up)")}, []string{"PID"}},
		{away, []string{dline("App", "unknown: remote client"), dline("Client", "127.0.0.1:50000")}, []string{"PID", "User"}},
		{other, []string{dline("App", "unknown: no permission"), dline("User", "root (uid 0)")}, []string{"PID"}},
	} {
		r := i.find(tc.c.conn.ID())
		if r == nil {
			t.Fatalf("no row for %s", tc.c.conn.Meta().Target)
		}
		i.selectRow(r)
		for _, w := range tc.want {
			if !strings.Contains(i.details.Text, w) {
				t.Errorf("details of %s lack %q:\n%s", tc.c.conn.Meta().Target, w, i.details.Text)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(i.details.Text, w) {
				t.Errorf("details of %s have %q:\n%s", tc.c.conn.Meta().Target, w, i.details.Text)
			}
		}
	}
}

// A lookup can answer after a short connection ended: the closed row gets
// its program, and in the Apps view the connection moves from unknown to
// it, bytes and host with it.
func TestInspectorProcessOfAClosedConnection(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	i, tt := openInspector(t, reg)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil })

	c := appConn(reg, "short.example:80", nil)
	c.conn.AddDown(5000)
	c.finish(nil)
	tt.runUntil(t, "the closed row", func() bool { return closedCount(tt.last()) == 1 })
	if got := appsSummary(tt.last().apps); got != "unknown live=0 total=1 up=0 down=5000 hosts=short.example" {
		t.Fatalf("before the answer: %s", got)
	}
	c.conn.SetProcess(curlProc)
	tt.runUntil(t, "the answer", func() bool { return tt.last().rows[tabClosed][0].appText == "curl" })
	if got := appsSummary(tt.last().apps); got != "curl live=0 total=1 up=0 down=5000 hosts=short.example" {
		t.Fatalf("after the answer: %s", got)
	}
	i.selectRow(tt.last().rows[tabClosed][0])
	if !strings.Contains(i.details.Text, dline("App", "curl")) {
		t.Fatalf("details %q", i.details.Text)
	}
}

// appsSummary is the Apps view's rows in one line each, by name.
func appsSummary(apps []*appRow) string {
	lines := make([]string, 0, len(apps))
	for _, a := range apps {
		lines = append(lines, fmt.Sprintf("%s live=%d total=%d up=%d down=%d hosts=%s",
			a.name, a.live, a.total, a.up, a.down, strings.Join(a.hosts, ",")))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func TestInspectorAppsViewAggregatesAndFilters(t *testing.T) {
	checkLeaks(t)
	// Stats ticks longer than the redraw interval: a tick's speeds are
	// still there when the next view is built.
	reg := newClockedRegistry(t, 300*time.Millisecond)
	f1 := appConn(reg, "alpha.example:443", firefox)
	f1.conn.AddUp(100)
	f1.conn.AddDown(1000)
	f2 := appConn(reg, "bravo.example:443", firefox)
	f2.conn.AddUp(10)
	f2.conn.AddDown(20)
	f2.finish(nil)
	c1 := appConn(reg, "charlie.example:443", curlProc)
	c1.conn.AddDown(300)
	u1 := appConn(reg, "delta.example:443", remote)
	u2 := appConn(reg, "echo.example:443", nil)
	defer finishAll(f1, c1, u1, u2)
	i, tt := openInspector(t, reg)
	want := strings.Join([]string{
		"curl live=1 total=1 up=0 down=300 hosts=charlie.example",
		"firefox live=1 total=2 up=110 down=1020 hosts=bravo.example,alpha.example",
		"unknown live=2 total=2 up=0 down=0 hosts=echo.example,delta.example",
	}, "\n")
	tt.runUntil(t, "the Apps view", func() bool { return tt.last() != nil && appsSummary(tt.last().apps) == want })

	// The model's figures, kept up by events, are what a fresh snapshot
	// gives (nothing has left the history).
	fresh := newConnModel(50)
	fresh.reset(reg.Snapshot())
	if got := appsSummary(fresh.base(time.Now()).apps); got != want {
		t.Fatalf("from a fresh snapshot:\n%s\nfrom the events:\n%s", got, want)
	}

	// Speed: the live rows' rates of the last tick, added up.
	f1.conn.AddDown(50_000)
	tt.runUntil(t, "firefox's speed", func() bool {
		for _, a := range tt.last().apps {
			if a.name == "firefox" && a.downRate > 0 && a.down == 51_020 {
				return true
			}
		}
		return false
	})

	// The Apps tab: sorted by bytes down, biggest first, as it opens.
	i.tabs.SelectIndex(int(tabApps))
	names := func() []string {
		var out []string
		for _, a := range i.apps.rows {
			out = append(out, a.name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"firefox", "curl", "unknown"}) {
		t.Fatalf("Apps rows %v", got)
	}
	if got := i.apps.headerText(appColDown); got != "↓▼" {
		t.Fatalf("sorted header %q", got)
	}
	if got := i.appsItem.Text; got != "Apps (3)" {
		t.Fatalf("Apps tab title %q", got)
	}
	cell := newTableCell()
	i.apps.updateCell(widget.TableCellID{Row: 0, Col: int(appColHosts)}, cell)
	if got := cellParts(cell).label.Text; got != "bravo.example, alpha.example" {
		t.Fatalf("hosts cell %q", got)
	}
	i.apps.onSort(appColName)
	tt.runUntil(t, "sorted by name", func() bool { return tt.last().query.appSort == appSortSpec{col: appColName} })
	if got := names(); !slices.Equal(got, []string{"curl", "firefox", "unknown"}) {
		t.Fatalf("Apps rows by name %v", got)
	}

	// Selecting a program filters the connections to it, keeping the
	// other words of the filter.
	i.filter.SetText("-host:zulu")
	i.apps.table.Select(widget.TableCellID{Row: 1, Col: int(appColName)}) // firefox
	if got := i.filter.Text; got != "-host:zulu app:firefox" {
		t.Fatalf("filter after selecting firefox: %q", got)
	}
	for _, w := range []string{dline("App", "firefox"), "2 in all", "bravo.example\nalpha.example\n"} {
		if !strings.Contains(i.details.Text, w) {
			t.Fatalf("Apps details lack %q:\n%s", w, i.details.Text)
		}
	}
	tt.runUntil(t, "the filter", func() bool { return tt.last().query.filter == "-host:zulu app:firefox" })
	if got := i.tabItems[tabActive].Text; got != "Active (1 of 4)" {
		t.Fatalf("Active tab title %q", got)
	}
	if got := i.tabItems[tabClosed].Text; got != "Closed (1)" {
		t.Fatalf("Closed tab title %q", got)
	}
	if names := names(); len(names) != 3 {
		t.Fatalf("the Apps view is not filtered: %v", names)
	}
	i.apps.table.Select(widget.TableCellID{Row: 2, Col: int(appColName)}) // unknown
	if got := i.filter.Text; got != "-host:zulu app:unknown" {
		t.Fatalf("filter after selecting unknown: %q", got)
	}
	// The connection details come back on the connection tabs.
	i.tabs.SelectIndex(int(tabActive))
	if !strings.Contains(i.details.Text, "Select a connection") {
		t.Fatalf("details on Active: %q", i.details.Text)
	}
}

// Two programs whose names one starts the other's: selecting one filters by
// its path, so it shows exactly its connections.
func TestInspectorAppsSelectionOfSimilarNames(t *testing.T) {
	checkLeaks(t)
	reg := newTestRegistry(t, 0, 0)
	conns := []*testConn{
		appConn(reg, "a.example:443", python3),
		appConn(reg, "b.example:443", python31),
		appConn(reg, "c.example:443", pyOther),
	}
	defer finishAll(conns...)
	i, tt := openInspector(t, reg)
	tt.runUntil(t, "first view", func() bool { return tt.last() != nil && len(tt.last().apps) == 3 })
	i.tabs.SelectIndex(int(tabApps))
	i.apps.onSort(appColPath)
	tt.runUntil(t, "sorted by path", func() bool { return tt.last().query.appSort == appSortSpec{col: appColPath} })
	for row, want := range map[int]struct{ word, host string }{
		0: {"app:/opt/py/bin/python3", "c.example"},
		1: {"app:python3.11", "b.example"},
		2: {"app:/usr/bin/python3", "a.example"},
	} {
		i.apps.table.Select(widget.TableCellID{Row: row, Col: int(appColName)})
		if i.filter.Text != want.word {
			t.Fatalf("row %d (%s): filter %q, want %q", row, i.apps.rows[row].path, i.filter.Text, want.word)
		}
		tt.runUntil(t, want.word, func() bool { return tt.last().query.filter == want.word })
		if got := hosts(i.tables[tabActive].rows); !slices.Equal(got, []string{want.host}) {
			t.Fatalf("%s shows %v, want %s", want.word, got, want.host)
		}
	}
}

// A program's hosts are capped: the most recent maxAppHosts are kept.
func TestAppsViewHostsAreBounded(t *testing.T) {
	checkLeaks(t)
	reg := newClockedRegistry(t, time.Hour)
	tt := newTestThread(8)
	startBridge(t, reg, tt)
	const n = maxAppHosts + 20
	for k := range n {
		c := appConn(reg, fmt.Sprintf("host%02d.example:443", k), curlProc)
		c.finish(nil)
	}
	tt.runUntil(t, "every connection", func() bool { return tt.last() != nil && tt.last().totals.Opened == n })
	apps := tt.last().apps
	if len(apps) != 1 || apps[0].total != n {
		t.Fatalf("apps %s", appsSummary(apps))
	}
	hs := apps[0].hosts
	if len(hs) != maxAppHosts || hs[0] != fmt.Sprintf("host%02d.example", n-1) || hs[len(hs)-1] != fmt.Sprintf("host%02d.example", n-maxAppHosts) {
		t.Fatalf("%d hosts, from %s to %s; want the last %d", len(hs), hs[0], hs[len(hs)-1], maxAppHosts)
	}
}

func TestFilterAppTerms(t *testing.T) {
	known := newConnRow(registry.Info{Meta: registry.Meta{Target: "a.example:443"}, Process: firefox})
	pending := newConnRow(registry.Info{Meta: registry.Meta{Target: "b.example:443"}})
	away := newConnRow(registry.Info{Meta: registry.Meta{Target: "c.example:443"}, Process: remote})
	for _, tc := range []struct {
		filter               string
		known, pending, away bool
	}{
		{"app:firefox", true, false, false},
		{"app:Fire", true, false, false},
		{"app:firefoxes", false, false, false},
		{"app:fox", false, false, false}, // a prefix, not anywhere in the name
		{"-app:firefox", false, true, true},
		{"app:/usr/lib/firefox/firefox", true, false, false},
		{"app:/usr/lib/firefox", false, false, false},
		{"app:unknown", false, true, true},
		{"-app:unknown", true, false, false},
		{"firefox", true, false, false},
		{"app:", false, false, false}, // no value: a plain word, found nowhere
	} {
		f := parseFilter(tc.filter)
		if got := [3]bool{f.match(known), f.match(pending), f.match(away)}; got != [3]bool{tc.known, tc.pending, tc.away} {
			t.Errorf("%q matches known/pending/away %v, want %v", tc.filter, got, [3]bool{tc.known, tc.pending, tc.away})
		}
	}
}
