package ui

import (
	"slices"

	"fyne.io/fyne/v2/widget"
)

// listEdits is what the Settings form's editors of an ordered list (the
// rules, the exits) share: the items, the row selected, the list widget
// and the Delete, Up and Down buttons, and the edits that keep the
// selection where the user expects it.
//
// Fyne thread only.
type listEdits[T any] struct {
	list     []T
	selected int // -1: none; the fields then hold an item to add
	// fill shows an item in the editor's fields; changed shows the list
	// after an edit with row sel selected (-1: none), through reselect.
	fill    func(T)
	changed func(sel int)

	rows          *widget.List
	del, up, down *widget.Button
}

// buttons makes Delete, Up and Down.
func (l *listEdits[T]) buttons() {
	l.del = widget.NewButton("Delete", l.deleteSelected)
	l.up = widget.NewButton("Up", func() { l.moveSelected(-1) })
	l.down = widget.NewButton("Down", func() { l.moveSelected(1) })
}

// sel reports whether a row is selected.
func (l *listEdits[T]) sel() bool { return l.selected >= 0 && l.selected < len(l.list) }

// addAt is where Add puts the fields' item: after the selected one, at
// the end when none is.
func (l *listEdits[T]) addAt() int {
	if l.sel() {
		return l.selected + 1
	}
	return len(l.list)
}

// selectRow selects item i and fills the fields with it (a tap on its row).
func (l *listEdits[T]) selectRow(i int) {
	if i < 0 || i >= len(l.list) {
		return
	}
	l.selected = i
	l.fill(l.list[i])
}

// deleteSelected removes the selected item (Delete).
func (l *listEdits[T]) deleteSelected() {
	if !l.sel() {
		return
	}
	l.list = slices.Delete(l.list, l.selected, l.selected+1)
	l.changed(min(l.selected, len(l.list)-1))
}

// moveSelected swaps the selected item with the one by rows away (Up,
// Down).
func (l *listEdits[T]) moveSelected(by int) {
	i, j := l.selected, l.selected+by
	if !l.sel() || j < 0 || j >= len(l.list) {
		return
	}
	l.list[i], l.list[j] = l.list[j], l.list[i]
	l.changed(j)
}

// reselect shows the list after an edit with row sel selected (-1: none).
func (l *listEdits[T]) reselect(sel int) {
	l.rows.Refresh()
	if sel >= 0 {
		l.rows.Select(sel)
		l.selectRow(sel) // Select does not call back for the row already selected
	} else {
		l.selected = -1
		l.rows.UnselectAll()
	}
}

// enableMoves enables Delete, Up and Down for the selection.
func (l *listEdits[T]) enableMoves() {
	setWidgetEnabled(l.del, l.sel())
	setWidgetEnabled(l.up, l.sel() && l.selected > 0)
	setWidgetEnabled(l.down, l.sel() && l.selected < len(l.list)-1)
}
