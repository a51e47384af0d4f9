package ui

import (
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
)

// The tray's About item opens one window that shows the stamped version
// and the settings file; a second click shows the same window.
func TestAboutShowsTheVersion(t *testing.T) {
	g := newTestGUI(t)
	g.opts.Version = "v1.2.3-4-gabcdef"
	g.tray.about.Action()
	if g.about == nil || !g.about.win.Content().Visible() {
		t.Fatal("About did not open a window")
	}
	texts := labelTexts(g.about.win.Content())
	for _, want := range []string{"Porthole v1.2.3-4-gabcdef", "v1.2.3-4-gabcdef", g.opts.ConfigPath} {
		if !slices.Contains(texts, want) {
			t.Errorf("About window lacks %q; it has %q", want, texts)
		}
	}
	first := g.about
	g.tray.about.Action()
	if g.about != first {
		t.Error("a second About click made a second window")
	}
}

// labelTexts lists the text of every label under o.
func labelTexts(o fyne.CanvasObject) []string {
	var out []string
	var walk func(fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch w := o.(type) {
		case *widget.Label:
			out = append(out, strings.TrimSpace(w.Text))
		case *widget.Form:
			for _, it := range w.Items {
				walk(it.Widget)
			}
		case *fyne.Container:
			for _, c := range w.Objects {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}
