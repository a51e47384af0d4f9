package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"porthole/app"
)

// apiSection is the control API's part of Settings: where it listens,
// its secret with a Copy button (a dashboard asks for it), and Open
// dashboard. The address, secret and dashboard are the file's api
// object (docs/api.md).
type apiSection struct {
	content fyne.CanvasObject
	state   *widget.Label
	secret  *widget.Label
	copy    *widget.Button
}

func newAPISection(a fyne.App, ctl *app.Controller) *apiSection {
	s := &apiSection{state: widget.NewLabel(""), secret: widget.NewLabel("")}
	s.state.Wrapping = fyne.TextWrapWord
	s.secret.TextStyle = fyne.TextStyle{Monospace: true}
	s.secret.Selectable = true
	s.copy = widget.NewButton("Copy secret", func() { a.Clipboard().SetContent(ctl.APIStatus().Secret) })
	open := widget.NewButton("Open dashboard", func() {
		if u, err := dashboardLink(ctl); err == nil {
			_ = a.OpenURL(u) // a browser that does not open says nothing we could add
		}
	})
	s.show(ctl)
	s.content = container.NewVBox(
		widget.NewSeparator(),
		widget.NewLabelWithStyle("Control API (Clash dashboards)", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		s.state,
		container.NewBorder(nil, nil, widget.NewLabel("Secret"), container.NewHBox(s.copy, open), s.secret),
	)
	return s
}

// show fills the section from the controller.
func (s *apiSection) show(ctl *app.Controller) {
	st, cfg := ctl.APIStatus(), ctl.Config().API
	switch {
	case cfg.Listen == "":
		s.state.SetText("Off (api.listen is empty in the config file).")
	case st.Err != nil:
		s.state.SetText("Not running: " + st.Err.Error())
	case st.Addr != "":
		s.state.SetText("Listening on " + st.Addr + "; dashboards need the secret below.")
	default:
		s.state.SetText("Set to " + cfg.Listen + ".")
	}
	s.secret.SetText(st.Secret)
	if st.Secret == "" {
		s.secret.SetText("(none)")
		s.copy.Disable()
	} else {
		s.copy.Enable()
	}
}
