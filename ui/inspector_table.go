package ui

import (
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/rs/xid"
)

// connTable is one tab's table: rows of the current view, a header per
// column that sorts on a click, and the selected connection highlighted.
//
// The selection is kept by connection id, not by row number, so it stays on
// the same connection when the rows are sorted again or the connection moves
// from Active to Closed; the table's own selected cell is cleared at once
// and the highlight drawn by the cells.
//
// Concurrency: Fyne thread only.
type connTable struct {
	lazyTable
	rows     []*connRow
	now      time.Time
	sort     sortSpec
	selected func() (xid.ID, bool)
	onSort   func(column)
	onSelect func(*connRow)
}

// lazyTable is a table of the inspector that is redrawn only when seen:
// at once when its rows change while it is shown, else when it is
// revealed.
type lazyTable struct {
	table *widget.Table
	stale bool // rows changed while hidden behind another tab
}

// changed redraws the table if it is visible, or marks it for reveal.
func (l *lazyTable) changed(visible bool) {
	l.stale = !visible
	if visible {
		l.table.Refresh()
	}
}

// reveal redraws a table that changed while its tab was not selected.
func (l *lazyTable) reveal() {
	if l.stale {
		l.stale = false
		l.table.Refresh()
	}
}

// tableCell is a cell's template: a highlight behind a label.
type tableCell struct {
	bg    *canvas.Rectangle
	label *widget.Label
}

func newConnTable(selected func() (xid.ID, bool), onSort func(column), onSelect func(*connRow)) *connTable {
	ct := &connTable{selected: selected, onSort: onSort, onSelect: onSelect}
	ct.table = newSortableTable(ct.length, ct.updateCell, numColumns,
		func(c column) float32 { return columns[c].width }, ct.headerText, ct.onSort,
		func(row int) {
			if row >= 0 && row < len(ct.rows) {
				ct.onSelect(ct.rows[row])
			}
		})
	return ct
}

// newSortableTable is one of the inspector's tables, of n columns (each
// width wide): a header row whose cells show text and sort with onSort,
// and a tap on a row passes its index to onRow. Fyne's own selection is
// cleared at once: the tables draw theirs.
func newSortableTable[C ~uint8](length func() (int, int), update func(widget.TableCellID, fyne.CanvasObject),
	n C, width func(C) float32, text func(C) string, onSort func(C), onRow func(row int)) *widget.Table {
	t := widget.NewTableWithHeaders(length, newTableCell, update)
	t.ShowHeaderColumn = false
	t.CreateHeader = newHeaderCell
	t.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		updateHeader(id, o, n, text, onSort)
	}
	t.OnSelected = func(id widget.TableCellID) {
		onRow(id.Row)
		t.UnselectAll()
	}
	for c := range n {
		t.SetColumnWidth(int(c), width(c))
	}
	return t
}

func (ct *connTable) length() (int, int) { return len(ct.rows), int(numColumns) }

// newTableCell is a cell of the inspector's tables: a background for the
// selection (or a tint) under a label.
func newTableCell() fyne.CanvasObject {
	bg := canvas.NewRectangle(color.Transparent)
	l := widget.NewLabel("")
	l.Truncation = fyne.TextTruncateEllipsis
	return container.NewStack(bg, l)
}

func cellParts(o fyne.CanvasObject) tableCell {
	objs := o.(*fyne.Container).Objects
	return tableCell{bg: objs[0].(*canvas.Rectangle), label: objs[1].(*widget.Label)}
}

func (ct *connTable) updateCell(id widget.TableCellID, o fyne.CanvasObject) {
	cell := cellParts(o)
	if id.Row < 0 || id.Row >= len(ct.rows) || id.Col < 0 || id.Col >= int(numColumns) {
		cell.show(color.Transparent, false, "")
		return
	}
	r := ct.rows[id.Row]
	spec := columns[id.Col]
	var fill color.Color = color.Transparent
	if sel, ok := ct.selected(); ok && sel == r.ID {
		fill = theme.Color(theme.ColorNameSelection)
	} else if r.errText != "" && column(id.Col) == colError {
		fill = errorTint
	}
	cell.show(fill, spec.numeric, spec.text(r, ct.now))
}

// show puts text in the cell over fill; figures (numeric) are aligned to
// the right in a monospace font. Only what changed is refreshed.
func (cell tableCell) show(fill color.Color, numeric bool, text string) {
	if cell.bg.FillColor != fill {
		cell.bg.FillColor = fill
		cell.bg.Refresh()
	}
	align, style := fyne.TextAlignLeading, fyne.TextStyle{}
	if numeric {
		align, style = fyne.TextAlignTrailing, fyne.TextStyle{Monospace: true}
	}
	if cell.label.Alignment != align || cell.label.TextStyle != style {
		cell.label.Alignment, cell.label.TextStyle = align, style
		cell.label.Refresh()
	}
	setLabel(cell.label, text)
}

// setLabel changes l only when its text differs: a redraw ten times a
// second of a thousand rows changes a few cells, and a Label's SetText
// shapes its text again even when it is the same.
func setLabel(l *widget.Label, text string) {
	if l.Text != text {
		l.SetText(text)
	}
}

// errorTint marks the error cell of a connection that ended with one.
var errorTint = color.NRGBA{R: 0xd0, G: 0x30, B: 0x30, A: 0x30}

// newHeaderCell is a header cell of the inspector's tables: a flat
// button that sorts on its column.
func newHeaderCell() fyne.CanvasObject {
	b := widget.NewButton("", nil)
	b.Importance = widget.LowImportance
	b.Alignment = widget.ButtonAlignLeading
	return b
}

// updateHeader fills the header cell o of column id.Col in a table of n
// columns: the column's text, and a tap sorts on it. A cell outside the
// columns is blank and does nothing.
func updateHeader[C ~uint8](id widget.TableCellID, o fyne.CanvasObject, n C, text func(C) string, onSort func(C)) {
	b := o.(*widget.Button)
	var label string
	var onTap func()
	if id.Col >= 0 && id.Col < int(n) {
		col := C(id.Col)
		label, onTap = text(col), func() { onSort(col) }
	}
	if b.Text != label {
		b.SetText(label)
	}
	b.OnTapped = onTap
}

// headerText is a column's title with the sort arrow when it is the sort
// column.
func (ct *connTable) headerText(col column) string {
	return headerTitle(columns[col].title, ct.sort.col == col, ct.sort.desc)
}

// headerTitle is a column's title, with the sort arrow when sorted.
func headerTitle(title string, sorted, desc bool) string {
	if !sorted {
		return title
	}
	return sortedTitle(title, desc)
}

// sortedTitle is a header with the sort arrow. After "↑" or "↓" the arrow
// follows without a space: Fyne 2.8 shapes a space after those (taken from
// a fallback font) as a missing glyph, "↓� ▼".
func sortedTitle(title string, desc bool) string {
	arrow := " ▲"
	if desc {
		arrow = " ▼"
	}
	if title == "↑" || title == "↓" {
		arrow = arrow[1:]
	}
	return title + arrow
}

// show replaces the rows; only the visible cells are redrawn, and only
// when visible is set (the other tab's table is redrawn when it is
// selected).
func (ct *connTable) show(rows []*connRow, now time.Time, s sortSpec, visible bool) {
	ct.rows, ct.now, ct.sort = rows, now, s
	ct.changed(visible)
}

// rowOf returns the row index of id, or -1.
func (ct *connTable) rowOf(id xid.ID) int {
	for i, r := range ct.rows {
		if r.ID == id {
			return i
		}
	}
	return -1
}
