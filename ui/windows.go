package ui

import (
	"errors"
	"fmt"
	"net/url"

	"fyne.io/fyne/v2"

	"porthole/app"
)

// The windows the tray menu and the main window open, on the Fyne thread;
// each is made on first use and kept.

func (g *gui) showConnections() {
	if g.inspector == nil {
		g.inspector = newInspector(g.fyne, g.ctl)
	}
	g.inspector.Show()
}

func (g *gui) showSettings() {
	if g.settings == nil {
		g.settings = newSettings(g.fyne, g.ctl, g.opts.ConfigPath)
		g.settings.background = func(f func()) { g.wg.Go(f) }
		g.settings.onSaved = func(saved app.Saved) {
			if saved.SetAside != "" {
				g.setFileNote(setAsideNote(saved))
				select {
				case g.poke <- struct{}{}: // show it
				default: // a redraw is already due
				}
			}
		}
	}
	g.settings.Show()
}

func (g *gui) showLogs() {
	if g.logs == nil {
		g.logs = newLogsWindow(g.fyne, g.opts.Logs, fyne.Do)
		g.logs.ended = g.ended.Load
	}
	g.logs.Show()
}

// openDashboard opens the browser at the dashboard, pointed at the
// control API with its secret (app.DashboardURL).
func (g *gui) openDashboard() {
	u, err := dashboardLink(g.ctl)
	if err != nil {
		g.notify("No dashboard to open", err)
		return
	}
	if err := g.fyne.OpenURL(u); err != nil {
		g.notify("The browser did not open", err)
	}
}

// dashboardLink is the dashboard's URL, or why there is none.
func dashboardLink(ctl *app.Controller) (*url.URL, error) {
	st := ctl.APIStatus()
	cfg := ctl.Config().API
	switch {
	case cfg.Listen == "":
		return nil, errors.New("the control API is off: set its address in the config file (api.listen)")
	case st.Err != nil:
		return nil, fmt.Errorf("the control API did not start: %w", st.Err)
	}
	return url.Parse(app.DashboardURL(cfg, st.Addr))
}

func (g *gui) showAbout() {
	if g.about == nil {
		g.about = newAbout(g.fyne, g.opts.Version, g.opts.ConfigPath)
	}
	g.about.Show()
}
