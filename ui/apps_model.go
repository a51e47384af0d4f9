package ui

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"porthole/core/registry"
)

// The Apps view: one row per program, with its connections, bytes, speed
// and the hosts it talked to, kept up to date from the same events as the
// connection tables.

// Limits of the Apps view's memory. Programs are few, but paths can be many
// (a script run from a new temporary directory each time), and a crawler
// talks to thousands of hosts.
const (
	maxApps     = 200 // groups; beyond it the one idle the longest is dropped
	maxAppHosts = 50  // hosts per group; beyond it the one seen the longest ago is dropped
)

// unknownApp is the name of the group of connections with no known program:
// the lookup has not answered yet, or it could not tell (a remote client, a
// process gone, another user's, an OS without a lookup).
const unknownApp = "unknown"

// appKeyOf is the group a connection is counted in: the executable's path
// when known, so two programs of one name are two rows; else its name; ""
// for every connection whose program is not known.
func appKeyOf(p *registry.Process) string {
	if !p.Known() {
		return ""
	}
	if p.Path != "" {
		return p.Path
	}
	return p.Name
}

// appTextOf is the App column: "…" while the lookup has not answered.
func appTextOf(p *registry.Process) string {
	if p == nil {
		return "…"
	}
	return p.Label()
}

// appStats is the per-program part of the model. Live connections' bytes
// and speeds are not kept here: they are in the live rows, added up when a
// view is built (rows), so a stats tick costs nothing here. What is kept is
// what the rows alone cannot give once the history has dropped them: the
// totals of the connections that ended.
//
// Concurrency: owned by the bridge's goroutine, like connModel.
type appStats struct {
	groups map[string]*appGroup
}

type appGroup struct {
	key, name, path string
	live            int   // live connections
	total           int64 // connections, live and closed, since the snapshot
	closedUp        int64 // bytes of its closed connections
	closedDown      int64
	hosts           map[string]*appHost
	hostList        []string // most recent first; nil when hosts changed
	last            time.Time
}

// appHost counts the connections of a group to one host: a connection moved
// to another group (its program became known) takes its count along, and a
// host no connection counts any more leaves the list.
type appHost struct {
	conns int
	last  time.Time // latest start of one of them
}

func newAppStats() *appStats { return &appStats{groups: make(map[string]*appGroup)} }

// attach counts r in its program's group.
func (s *appStats) attach(r *connRow, live bool) {
	g := s.groups[r.appKey]
	if g == nil {
		s.makeRoom()
		g = &appGroup{key: r.appKey, name: unknownApp, hosts: make(map[string]*appHost)}
		if r.appKey != "" {
			g.name, g.path = r.Process.Label(), r.Process.Path
		}
		s.groups[r.appKey] = g
	}
	g.total++
	if live {
		g.live++
	} else {
		g.closedUp += r.Up
		g.closedDown += r.Down
	}
	if r.Start.After(g.last) {
		g.last = r.Start
	}
	if r.host == "" {
		return
	}
	h := g.hosts[r.host]
	if h == nil {
		if len(g.hosts) >= maxAppHosts {
			g.dropOldestHost()
		}
		h = &appHost{}
		g.hosts[r.host] = h
	}
	h.conns++
	if r.Start.After(h.last) {
		h.last = r.Start
	}
	g.hostList = nil
}

// detach takes back what attach(r, live) counted. A group left with no
// connection goes.
func (s *appStats) detach(r *connRow, live bool) {
	g := s.groups[r.appKey]
	if g == nil {
		return // dropped by makeRoom: only idle groups are, and their counts went with them
	}
	g.total--
	if live {
		g.live--
	} else {
		g.closedUp -= r.Up
		g.closedDown -= r.Down
	}
	if h := g.hosts[r.host]; h != nil {
		if h.conns--; h.conns <= 0 {
			delete(g.hosts, r.host)
			g.hostList = nil
		}
	}
	if g.total <= 0 && g.live <= 0 {
		delete(s.groups, r.appKey)
	}
}

// makeRoom drops the group idle the longest when there are maxApps: never
// one with live connections, never the unknown group (connections move out
// of it when their program becomes known).
func (s *appStats) makeRoom() {
	if len(s.groups) < maxApps {
		return
	}
	var oldest *appGroup
	for _, g := range s.groups {
		if g.live > 0 || g.key == "" {
			continue
		}
		if oldest == nil || g.last.Before(oldest.last) {
			oldest = g
		}
	}
	if oldest != nil {
		delete(s.groups, oldest.key)
	}
}

func (g *appGroup) dropOldestHost() {
	var oldest string
	var at time.Time
	first := true
	for name, h := range g.hosts {
		if first || h.last.Before(at) {
			oldest, at, first = name, h.last, false
		}
	}
	delete(g.hosts, oldest)
	g.hostList = nil
}

// sortedHosts is the group's hosts, most recent first, kept until they
// change.
func (g *appGroup) sortedHosts() []string {
	if g.hostList == nil {
		g.hostList = make([]string, 0, len(g.hosts))
		for name := range g.hosts {
			g.hostList = append(g.hostList, name)
		}
		slices.SortFunc(g.hostList, func(a, b string) int {
			if c := g.hosts[b].last.Compare(g.hosts[a].last); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
	}
	return g.hostList
}

// appRow is one program as the Apps view shows it. Immutable, like connRow.
type appRow struct {
	key, name, path  string
	live             int
	total            int64
	up, down         int64
	upRate, downRate float64
	hosts            []string // most recent first; shared, never modified
	hostText         string
}

func (a *appRow) speed() float64 { return a.upRate + a.downRate }

// rows is the Apps view at this moment: the kept totals plus the live rows'
// bytes and speeds.
func (s *appStats) rows(live []*connRow) []*appRow {
	out := make([]*appRow, 0, len(s.groups))
	byKey := make(map[string]*appRow, len(s.groups))
	for key, g := range s.groups {
		hosts := g.sortedHosts()
		a := &appRow{
			key: key, name: g.name, path: g.path, live: g.live, total: g.total,
			up: g.closedUp, down: g.closedDown,
			hosts: hosts, hostText: strings.Join(hosts, ", "),
		}
		out = append(out, a)
		byKey[key] = a
	}
	for _, r := range live {
		if a := byKey[r.appKey]; a != nil {
			a.up += r.Up
			a.down += r.Down
			a.upRate += r.upRate
			a.downRate += r.downRate
		}
	}
	return out
}

// appColumn is one column of the Apps table.
type appColumn uint8

const (
	appColName appColumn = iota
	appColLive
	appColTotal
	appColUp
	appColDown
	appColSpeed
	appColHosts
	appColPath
	numAppColumns
)

type appColumnSpec struct {
	title   string
	width   float32
	numeric bool
	text    func(a *appRow) string
	compare func(a, b *appRow) int
}

var appColumns = [numAppColumns]appColumnSpec{
	appColName: {title: "app", width: 150,
		text:    func(a *appRow) string { return a.name },
		compare: func(a, b *appRow) int { return strings.Compare(a.name, b.name) }},
	appColLive: {title: "live", width: 60, numeric: true,
		text:    func(a *appRow) string { return formatCount(a.live) },
		compare: func(a, b *appRow) int { return cmp.Compare(a.live, b.live) }},
	appColTotal: {title: "total", width: 70, numeric: true,
		text:    func(a *appRow) string { return formatCount(a.total) },
		compare: func(a, b *appRow) int { return cmp.Compare(a.total, b.total) }},
	appColUp: {title: "↑", width: 80, numeric: true,
		text:    func(a *appRow) string { return formatBytes(a.up) },
		compare: func(a, b *appRow) int { return cmp.Compare(a.up, b.up) }},
	appColDown: {title: "↓", width: 80, numeric: true,
		text:    func(a *appRow) string { return formatBytes(a.down) },
		compare: func(a, b *appRow) int { return cmp.Compare(a.down, b.down) }},
	appColSpeed: {title: "speed", width: 96, numeric: true,
		text:    func(a *appRow) string { return formatRate(a.speed()) },
		compare: func(a, b *appRow) int { return cmp.Compare(a.speed(), b.speed()) }},
	appColHosts: {title: "hosts", width: 420,
		text:    func(a *appRow) string { return a.hostText },
		compare: func(a, b *appRow) int { return cmp.Compare(len(a.hosts), len(b.hosts)) }},
	appColPath: {title: "path", width: 260,
		text:    func(a *appRow) string { return a.path },
		compare: func(a, b *appRow) int { return strings.Compare(a.path, b.path) }},
}

// appSortSpec is the Apps table's order.
type appSortSpec = sortOrder[appColumn]

// biggestFirst: every column but the name and the path is a figure.
func (c appColumn) biggestFirst() bool { return c != appColName && c != appColPath }

// sortApps orders a copy of rows; ties by name then key, so the order is
// stable from one view to the next.
func sortApps(rows []*appRow, s appSortSpec) []*appRow {
	out := slices.Clone(rows)
	compare := appColumns[s.col].compare
	slices.SortFunc(out, func(a, b *appRow) int {
		c := compare(a, b)
		if c == 0 {
			if c = strings.Compare(a.name, b.name); c == 0 {
				c = strings.Compare(a.key, b.key)
			}
		}
		if s.desc {
			return -c
		}
		return c
	})
	return out
}

// appFilterWord is the filter word that shows exactly a's connections: its
// name, or its path when another program's name starts with the same
// (two pythons) and the path has no space (the filter splits on spaces).
func appFilterWord(a *appRow, all []*appRow) string {
	if a.key == "" {
		return "app:" + unknownApp
	}
	name := strings.ToLower(a.name)
	for _, o := range all {
		if o.key != a.key && o.key != "" && strings.HasPrefix(strings.ToLower(o.name), name) {
			if a.path != "" && !strings.ContainsAny(a.path, " \t") {
				return "app:" + a.path
			}
			break
		}
	}
	return "app:" + a.name
}

// withAppWord is the filter text with its app: words replaced by word,
// the other words kept.
func withAppWord(filter, word string) string {
	kept := []string{}
	for _, w := range strings.Fields(filter) {
		lw := strings.ToLower(strings.TrimPrefix(w, "-"))
		if strings.HasPrefix(lw, "app:") {
			continue
		}
		kept = append(kept, w)
	}
	return strings.Join(append(kept, word), " ")
}
