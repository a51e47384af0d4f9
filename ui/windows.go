package ui

import "porthole/app"

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

func (g *gui) showAbout() {
	if g.about == nil {
		g.about = newAbout(g.fyne, g.opts.Version, g.opts.ConfigPath)
	}
	g.about.Show()
}
