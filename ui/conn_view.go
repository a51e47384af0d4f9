package ui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"porthole/core/registry"
)

// column is one column of the inspector's tables.
type column uint8

const (
	colID column = iota
	colApp
	colHost
	colPort
	colProto
	colRoute
	colRule
	colExit
	colState
	colUp
	colDown
	colSpeed
	colStarted
	colDuration
	colError
	numColumns
)

// columnSpec says how a column looks and sorts.
type columnSpec struct {
	title   string
	width   float32 // in Fyne units: the widest usual text plus the label's padding
	numeric bool    // monospace, right-aligned
	text    func(r *connRow, now time.Time) string
	// compare orders two rows ascending; ties are broken by start time
	// and id, so a sort is stable from one view to the next.
	compare func(a, b *connRow, now time.Time) int
}

var columns = [numColumns]columnSpec{
	colID: {title: "id", width: 90, numeric: true,
		text:    func(r *connRow, _ time.Time) string { return r.idText[len(r.idText)-shortIDLen:] },
		compare: func(a, b *connRow, _ time.Time) int { return strings.Compare(a.idText, b.idText) }},
	colApp: {title: "app", width: 130,
		text:    func(r *connRow, _ time.Time) string { return r.appText },
		compare: func(a, b *connRow, _ time.Time) int { return compareApp(a, b) }},
	colHost: {title: "host", width: 170,
		text:    func(r *connRow, _ time.Time) string { return r.host },
		compare: func(a, b *connRow, _ time.Time) int { return strings.Compare(a.host, b.host) }},
	colPort: {title: "port", width: 62, numeric: true,
		text:    func(r *connRow, _ time.Time) string { return r.port },
		compare: func(a, b *connRow, _ time.Time) int { return cmp.Compare(portNumber(a.port), portNumber(b.port)) }},
	colProto: {title: "protocol", width: 80,
		text:    func(r *connRow, _ time.Time) string { return r.Proto.String() },
		compare: func(a, b *connRow, _ time.Time) int { return cmp.Compare(a.Proto, b.Proto) }},
	colRoute: {title: "route", width: 64,
		text:    func(r *connRow, _ time.Time) string { return r.Route.String() },
		compare: func(a, b *connRow, _ time.Time) int { return cmp.Compare(a.Route, b.Route) }},
	colRule: {title: "rule", width: 190,
		text:    func(r *connRow, _ time.Time) string { return r.ruleText },
		compare: func(a, b *connRow, _ time.Time) int { return compareRule(a, b) }},
	colExit: {title: "exit", width: 90,
		text:    func(r *connRow, _ time.Time) string { return r.Exit },
		compare: func(a, b *connRow, _ time.Time) int { return strings.Compare(a.Exit, b.Exit) }},
	colState: {title: "state", width: 100,
		text:    func(r *connRow, _ time.Time) string { return r.State.String() },
		compare: func(a, b *connRow, _ time.Time) int { return cmp.Compare(a.State, b.State) }},
	colUp: {title: "↑", width: 80, numeric: true,
		text:    func(r *connRow, _ time.Time) string { return formatBytes(r.Up) },
		compare: func(a, b *connRow, _ time.Time) int { return cmp.Compare(a.Up, b.Up) }},
	colDown: {title: "↓", width: 80, numeric: true,
		text:    func(r *connRow, _ time.Time) string { return formatBytes(r.Down) },
		compare: func(a, b *connRow, _ time.Time) int { return cmp.Compare(a.Down, b.Down) }},
	colSpeed: {title: "speed", width: 96, numeric: true,
		text:    func(r *connRow, _ time.Time) string { return formatRate(r.speed()) },
		compare: func(a, b *connRow, _ time.Time) int { return cmp.Compare(a.speed(), b.speed()) }},
	colStarted: {title: "started", width: 90, numeric: true,
		text:    func(r *connRow, _ time.Time) string { return formatClock(r.Start) },
		compare: func(a, b *connRow, _ time.Time) int { return a.Start.Compare(b.Start) }},
	colDuration: {title: "duration", width: 104, numeric: true,
		text:    func(r *connRow, now time.Time) string { return formatDuration(r.duration(now)) },
		compare: func(a, b *connRow, now time.Time) int { return cmp.Compare(a.duration(now), b.duration(now)) }},
	colError: {title: "error", width: 170,
		text:    func(r *connRow, _ time.Time) string { return r.errText },
		compare: func(a, b *connRow, _ time.Time) int { return strings.Compare(a.errText, b.errText) }},
}

// compareApp orders by program name, the connections still waiting for
// their lookup first and the unknown ones last: what is sorted on is who.
func compareApp(a, b *connRow) int {
	rank := func(r *connRow) int {
		switch {
		case r.Process == nil:
			return 0
		case r.Process.Known():
			return 1
		}
		return 2
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	return strings.Compare(a.appText, b.appText)
}

// compareRule orders by the rule's place in the list, the connections
// a mode or the default decided (index -1) after the numbered rules.
func compareRule(a, b *connRow) int {
	key := func(r *connRow) int {
		if r.Rule.Kind == "" || r.Rule.Index < 0 {
			return 1 << 30
		}
		return r.Rule.Index
	}
	if c := cmp.Compare(key(a), key(b)); c != 0 {
		return c
	}
	return strings.Compare(a.ruleText, b.ruleText)
}

func portNumber(p string) int {
	n, err := strconv.Atoi(p)
	if err != nil {
		return -1 // not a number: before every port
	}
	return n
}

// sortColumn is a column of one of the inspector's tables.
type sortColumn interface {
	comparable
	// biggestFirst says that the column is a figure where the biggest is
	// what one looks for: it sorts descending at first.
	biggestFirst() bool
}

// sortOrder is a table's order: a column and a direction.
type sortOrder[C sortColumn] struct {
	col  C
	desc bool
}

// sortSpec is the order of a connections table.
type sortSpec = sortOrder[column]

// toggled is the order after a click on col's header: the same column
// flips direction; another column starts ascending, except for the figures
// where the biggest is what one looks for.
func (s sortOrder[C]) toggled(col C) sortOrder[C] {
	if s.col == col {
		return sortOrder[C]{col: col, desc: !s.desc}
	}
	return sortOrder[C]{col: col, desc: col.biggestFirst()}
}

func (c column) biggestFirst() bool {
	return c == colUp || c == colDown || c == colSpeed || c == colDuration
}

// tab names the inspector's two connection tables. The Apps tab comes
// after them (tabApps) and is not one of numTabs: its rows are programs.
type tab uint8

const (
	tabActive tab = iota
	tabClosed
	numTabs
	tabApps = numTabs
)

// viewQuery is what the user asked the view to be: the Fyne thread sets it,
// the bridge builds views that answer it.
type viewQuery struct {
	filter  string
	sort    [numTabs]sortSpec
	appSort appSortSpec
	paused  bool
}

// defaultQuery shows the newest connections first in both tabs.
func defaultQuery() viewQuery {
	return viewQuery{sort: [numTabs]sortSpec{
		tabActive: {col: colStarted, desc: true},
		tabClosed: {col: colStarted, desc: true},
	}, appSort: appSortSpec{col: appColDown, desc: true}}
}

// connView is one immutable picture of the registry for the Fyne thread.
type connView struct {
	gen     uint64    // the bridge run that built it
	at      time.Time // the "now" of durations: frozen while paused
	rows    [numTabs][]*connRow
	all     [numTabs]int // rows before filtering
	apps    []*appRow    // every program, not filtered, in appSort order
	totals  registry.Totals
	samples []rateSample
	query   viewQuery
	waiting int // updates received and not shown (while paused)
	// resubscribes counts the times the bridge fell behind and started
	// over from a fresh snapshot.
	resubscribes int
}

// buildRows filters and sorts one tab's rows. rows is not modified.
func buildRows(rows []*connRow, f connFilter, s sortSpec, now time.Time) []*connRow {
	out := make([]*connRow, 0, len(rows))
	if f.empty() {
		out = append(out, rows...)
	} else {
		for _, r := range rows {
			if f.match(r) {
				out = append(out, r)
			}
		}
	}
	sortRows(out, s, now)
	return out
}

func sortRows(rows []*connRow, s sortSpec, now time.Time) {
	compare := columns[s.col].compare
	slices.SortFunc(rows, func(a, b *connRow) int {
		c := compare(a, b, now)
		if c == 0 {
			if c = a.Start.Compare(b.Start); c == 0 {
				c = a.ID.Compare(b.ID)
			}
		}
		if s.desc {
			return -c
		}
		return c
	})
}
