package ui

import (
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/rs/xid"

	"porthole/app"
	"porthole/core/registry"
)

// inspector is the Connections window: the registry's live and recently
// closed connections in two sortable, filterable tables, the programs that
// opened them in a third (Apps), a details pane, totals and a traffic
// graph.
//
// The window is built on the first Show. Its data comes from a bridge that
// runs only while the window is shown: closing the window hides it and stops
// the bridge, so a hidden inspector costs nothing.
//
// Concurrency: every method runs on the Fyne thread.
type inspector struct {
	app    fyne.App
	reg    *registry.Registry
	bridge *bridge
	query  viewQuery // what the user asked for; the bridge has a copy
	view   *connView // the last view applied

	selID  xid.ID
	selRow *connRow // the selected connection as last seen; nil: none

	win      fyne.Window
	tabs     *container.AppTabs
	tabItems [numTabs]*container.TabItem
	tables   [numTabs]*connTable
	apps     *appTable
	appsItem *container.TabItem
	filter   *widget.Entry
	pause    *widget.Button
	badge    *widget.Label
	closeSel *widget.Button
	closeAll *widget.Button
	details  *widget.Label
	message  *widget.Label
	totals   *widget.Label
	graph    *trafficGraph
}

// newInspector makes the inspector of ctl's registry; nothing runs until
// Show.
func newInspector(a fyne.App, ctl *app.Controller) *inspector {
	// The registry was made with the history size of the settings of the
	// time; a later change applies at the next launch, and the bridge
	// never keeps more than the registry has.
	return newInspectorFor(a, ctl.Registry(), ctl.Config().History, fyne.Do)
}

// newInspectorFor is newInspector for a registry; post runs a function on
// the Fyne thread (fyne.Do; the tests pass their own loop).
func newInspectorFor(a fyne.App, reg *registry.Registry, historyCap int, post func(func())) *inspector {
	i := &inspector{app: a, reg: reg, query: defaultQuery()}
	i.bridge = newBridge(reg, historyCap, post, i.apply)
	return i
}

// Show opens the window, or brings it to the front, and starts the live
// view from a fresh snapshot.
func (i *inspector) Show() {
	if i.win == nil {
		i.build()
	}
	i.bridge.Start()
	i.win.Show()
	i.win.RequestFocus()
}

// hide is the window's close button: the window is kept for the next Show,
// the bridge stops.
func (i *inspector) hide() {
	i.bridge.Stop()
	i.win.Hide()
}

func (i *inspector) build() {
	i.win = i.app.NewWindow("Porthole — Connections")
	i.win.SetCloseIntercept(i.hide)

	for t := range numTabs {
		i.tables[t] = newConnTable(i.selection, func(c column) { i.sortBy(t, c) }, i.selectRow)
	}
	i.tabItems[tabActive] = container.NewTabItem("Active", i.tables[tabActive].table)
	i.tabItems[tabClosed] = container.NewTabItem("Closed", i.tables[tabClosed].table)
	i.apps = newAppTable(i.sortApps, i.selectApp)
	i.appsItem = container.NewTabItem("Apps", i.apps.table)
	i.tabs = container.NewAppTabs(i.tabItems[tabActive], i.tabItems[tabClosed], i.appsItem)
	i.tabs.OnSelected = func(*container.TabItem) {
		t := i.tabs.SelectedIndex()
		switch {
		case t == int(tabApps):
			i.apps.reveal()
		case t >= 0 && t < int(numTabs):
			i.tables[t].reveal()
		}
		i.showSelection() // the details pane shows the program on the Apps tab
	}

	i.filter = widget.NewEntry()
	i.filter.SetPlaceHolder("Filter: host, id, app or error; app:firefox route:tunnel state:closed proto:socks5 port:443 -word")
	i.filter.OnChanged = i.setFilter
	i.pause = widget.NewButton("Pause", i.togglePause)
	i.badge = widget.NewLabel("")
	i.badge.Importance = widget.WarningImportance
	i.badge.Hide()
	i.closeSel = widget.NewButton("Close selected", i.closeSelected)
	i.closeSel.Disable()
	i.closeAll = widget.NewButton("Close all", i.closeAllLive)
	toolbar := container.NewBorder(nil, nil, nil,
		container.NewHBox(i.pause, i.badge, i.closeSel, i.closeAll), i.filter)

	i.details = widget.NewLabel(detailsText(nil, i.now()))
	i.details.TextStyle.Monospace = true
	i.details.Wrapping = fyne.TextWrapWord
	i.details.Selectable = true

	i.message = widget.NewLabel("")
	i.message.Hide()
	i.totals = widget.NewLabel("")
	i.totals.TextStyle.Monospace = true
	i.graph = newTrafficGraph()
	traffic := container.NewBorder(container.NewVBox(i.message, i.totals), nil, nil, nil, i.graph)

	// The table gets the window's full width (twelve columns); the details
	// and the traffic share the space below it.
	lower := container.NewHSplit(container.NewVScroll(i.details), traffic)
	lower.Offset = 0.5
	split := container.NewVSplit(i.tabs, lower)
	split.Offset = 0.6

	i.win.SetContent(container.NewBorder(toolbar, nil, nil, nil, split))
	i.win.Resize(fyne.NewSize(1280, 760))
}

// apply shows a view from the bridge.
func (i *inspector) apply(v *connView) {
	i.view = v
	selected := i.tabs.SelectedIndex()
	for t := range numTabs {
		i.tables[t].show(v.rows[t], v.at, v.query.sort[t], int(t) == selected)
	}
	// The tabs are refreshed only when a title changed: a refresh of
	// AppTabs re-applies the theme to everything under it.
	active := tabTitle("Active", len(v.rows[tabActive]), v.all[tabActive])
	closed := tabTitle("Closed", len(v.rows[tabClosed]), v.all[tabClosed])
	apps := tabTitle("Apps", len(v.apps), len(v.apps))
	if i.tabItems[tabActive].Text != active || i.tabItems[tabClosed].Text != closed || i.appsItem.Text != apps {
		i.tabItems[tabActive].Text, i.tabItems[tabClosed].Text, i.appsItem.Text = active, closed, apps
		i.tabs.Refresh()
	}
	i.apps.show(v.apps, v.query.appSort, selected == int(tabApps))

	if v.query.paused {
		unit := "updates"
		if v.waiting == 1 {
			unit = "update"
		}
		setLabel(i.badge, fmt.Sprintf("Paused · %s %s waiting", formatCount(v.waiting), unit))
		i.badge.Show()
	} else {
		i.badge.Hide()
	}
	t := v.totals
	setLabel(i.totals, fmt.Sprintf("Active %s · %s since start\nSent ↑ %s · received ↓ %s\nNow    ↑ %s · ↓ %s",
		formatCount(t.Active), formatCount(t.Opened), formatBytes(t.Up), formatBytes(t.Down),
		formatRate(t.UpRate), formatRate(t.DownRate)))
	i.graph.show(v.samples, v.at)

	if i.selRow != nil {
		if r := i.find(i.selID); r != nil {
			i.selRow = r
		}
	}
	i.showSelection()
}

func tabTitle(name string, shown, all int) string {
	if shown == all {
		return fmt.Sprintf("%s (%s)", name, formatCount(all))
	}
	return fmt.Sprintf("%s (%s of %s)", name, formatCount(shown), formatCount(all))
}

// find looks id up in the current view: live rows first.
func (i *inspector) find(id xid.ID) *connRow {
	if i.view == nil {
		return nil
	}
	for t := range numTabs {
		if n := i.tables[t].rowOf(id); n >= 0 {
			return i.tables[t].rows[n]
		}
	}
	return nil
}

func (i *inspector) selection() (xid.ID, bool) { return i.selID, i.selRow != nil }

func (i *inspector) selectRow(r *connRow) {
	i.selID, i.selRow = r.ID, r
	i.showSelection()
	for t := range numTabs {
		i.tables[t].table.Refresh()
	}
}

func (i *inspector) showSelection() {
	if i.tabs.SelectedIndex() == int(tabApps) {
		setLabel(i.details, appDetailsText(i.apps.find()))
	} else {
		setLabel(i.details, detailsText(i.selRow, i.now()))
	}
	if i.selRow != nil && i.selRow.State != registry.StateClosed {
		i.closeSel.Enable()
	} else {
		i.closeSel.Disable()
	}
}

// now is the time durations are shown at: the view's, frozen while paused.
func (i *inspector) now() time.Time {
	if i.view != nil {
		return i.view.at
	}
	return time.Now()
}

func (i *inspector) sortBy(t tab, c column) {
	i.query.sort[t] = i.query.sort[t].toggled(c)
	i.bridge.SetQuery(i.query)
}

func (i *inspector) sortApps(c appColumn) {
	i.query.appSort = i.query.appSort.toggled(c)
	i.bridge.SetQuery(i.query)
}

// selectApp is a click on a program in the Apps tab: the filter shows only
// its connections (the filter box says so, and the other words stay), and
// the details pane shows the program.
func (i *inspector) selectApp(a *appRow) {
	if text := withAppWord(i.filter.Text, appFilterWord(a, i.apps.rows)); text != i.filter.Text {
		i.filter.SetText(text) // OnChanged sets the query
	}
	i.showSelection()
}

func (i *inspector) setFilter(text string) {
	i.query.filter = text
	i.bridge.SetQuery(i.query)
}

func (i *inspector) togglePause() {
	i.query.paused = !i.query.paused
	if i.query.paused {
		i.pause.SetText("Resume")
	} else {
		i.pause.SetText("Pause")
	}
	i.bridge.SetQuery(i.query)
}

// closeSelected asks the registry to close the selected connection; it
// moves to Closed, with "closed by user", when its owner has let go of it.
func (i *inspector) closeSelected() {
	if i.selRow == nil {
		return
	}
	if !i.reg.CloseConn(i.selID) {
		i.say("That connection had already ended.")
		return
	}
	i.say("Closing " + formatShortID(i.selID) + "…")
}

func (i *inspector) closeAllLive() {
	n := i.reg.CloseAll()
	i.say(fmt.Sprintf("Closing %s connections…", formatCount(n)))
}

func (i *inspector) say(text string) {
	i.message.SetText(text)
	i.message.Show()
}
