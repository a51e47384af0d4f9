package ui

import (
	"fmt"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// appTable is the Apps tab: one row per program, a header per column that
// sorts on a click. Clicking a program puts its app: word in the filter,
// so the Active and Closed tabs show only its connections (their titles
// say "3 of 40"), and the details pane shows the program.
//
// Like connTable, the selection is kept by key, not by row number.
//
// Concurrency: Fyne thread only.
type appTable struct {
	lazyTable
	rows     []*appRow
	sort     appSortSpec
	selected string // the selected program's key; valid when hasSel
	hasSel   bool
	onSort   func(appColumn)
	onSelect func(*appRow)
}

func newAppTable(onSort func(appColumn), onSelect func(*appRow)) *appTable {
	at := &appTable{onSort: onSort, onSelect: onSelect}
	at.table = newSortableTable(at.length, at.updateCell, numAppColumns,
		func(c appColumn) float32 { return appColumns[c].width }, at.headerText, at.onSort,
		func(row int) {
			if row >= 0 && row < len(at.rows) {
				a := at.rows[row]
				at.selected, at.hasSel = a.key, true
				at.onSelect(a)
				at.table.Refresh()
			}
		})
	return at
}

func (at *appTable) length() (int, int) { return len(at.rows), int(numAppColumns) }

func (at *appTable) updateCell(id widget.TableCellID, o fyne.CanvasObject) {
	cell := cellParts(o)
	if id.Row < 0 || id.Row >= len(at.rows) || id.Col < 0 || id.Col >= int(numAppColumns) {
		cell.show(color.Transparent, false, "")
		return
	}
	a, spec := at.rows[id.Row], appColumns[id.Col]
	var fill color.Color = color.Transparent
	if at.hasSel && at.selected == a.key {
		fill = theme.Color(theme.ColorNameSelection)
	}
	cell.show(fill, spec.numeric, spec.text(a))
}

func (at *appTable) headerText(col appColumn) string {
	return headerTitle(appColumns[col].title, at.sort.col == col, at.sort.desc)
}

// show replaces the rows, redrawing only when the tab is visible.
func (at *appTable) show(rows []*appRow, s appSortSpec, visible bool) {
	at.rows, at.sort = rows, s
	at.changed(visible)
}

// find is the selected program in the current rows, or nil.
func (at *appTable) find() *appRow {
	if !at.hasSel {
		return nil
	}
	for _, a := range at.rows {
		if a.key == at.selected {
			return a
		}
	}
	return nil
}

// appDetailsText is the details pane for a program: its figures and every
// host it talked to that is kept (the most recent maxAppHosts).
func appDetailsText(a *appRow) string {
	if a == nil {
		return "Select a program to see its connections."
	}
	var b detailLines
	b.line("App", a.name)
	b.line("Executable", orDash(a.path))
	b.line("Connections", fmt.Sprintf("%s live · %s in all", formatCount(a.live), formatCount(a.total)))
	b.traffic(a.up, a.down, "Speed", a.upRate, a.downRate)
	fmt.Fprintf(&b, "\nHosts (%s, most recent first)\n", formatCount(len(a.hosts)))
	for _, h := range a.hosts {
		b.WriteString(h + "\n")
	}
	return b.String()
}
