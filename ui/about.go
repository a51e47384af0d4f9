package ui

import (
	"runtime"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"
)

// aboutWindow says which Porthole this is: the version stamped into the
// binary at build time (what a bug report needs first), the Go it was
// built with, and the files it uses.
//
// Concurrency: Fyne thread only.
type aboutWindow struct {
	win fyne.Window
}

func newAbout(a fyne.App, version, configPath string) *aboutWindow {
	w := &aboutWindow{win: a.NewWindow("About Porthole")}
	title := widget.NewLabel("Porthole " + version)
	title.TextStyle = fyne.TextStyle{Bold: true}
	blurb := widget.NewLabel("A tray proxy: one local port for HTTP and SOCKS, straight out or through " +
		"one WebSocket tunnel to your exit server, with every connection in view.")
	blurb.Wrapping = fyne.TextWrapWord
	details := widget.NewForm(
		widget.NewFormItem("Version", selectable(version)),
		widget.NewFormItem("Built with", selectable(runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)),
		widget.NewFormItem("Settings file", selectable(configPath)),
	)
	w.win.SetContent(container.NewPadded(container.NewVBox(
		container.NewHBox(widget.NewIcon(iconDirect), title),
		blurb,
		details,
		container.NewHBox(layout.NewSpacer(), widget.NewButton("Close", w.win.Hide)),
	)))
	w.win.Resize(fyne.NewSize(460, 0))
	w.win.SetCloseIntercept(w.win.Hide) // kept for the next Show
	return w
}

func (w *aboutWindow) Show() {
	w.win.Show()
	w.win.RequestFocus()
}

// selectable is a read-only text the user can select and copy.
func selectable(s string) fyne.CanvasObject {
	l := widget.NewLabel(s)
	l.Selectable = true
	return l
}
