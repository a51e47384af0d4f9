package ui

import (
	"errors"
	"fmt"

	"porthole/app"
	"porthole/app/config"
	"porthole/app/sysproxy"
	"porthole/core/outbound"
)

// The actions below are called on the Fyne thread by the tray menu and the
// main window.

func (g *gui) toggleRunning() {
	if g.quitting.Load() {
		return
	}
	// The intent is what the user saw when clicking: a second click while
	// a slow Stop runs must not turn into a Start. Stop and Start are
	// idempotent.
	status := g.ctl.Status()
	st := status.State
	stop := st == app.StateRunning || st == app.StateStarting
	// Start reads "Start with defaults" while the config file cannot be
	// used: that click is the user's choice of the defaults.
	defaults := !stop && status.ConfigProblem != nil
	g.do("start/stop", func() {
		var err error
		switch {
		case stop:
			err = g.ctl.Stop()
		case defaults:
			err = g.startOnDefaults()
		default:
			err = g.ctl.Start() // a failure shows in the status line
		}
		if err != nil {
			g.log.Warn("start/stop", "err", err)
		}
	})
}

// startOnDefaults starts on the defaults the user chose over a config
// file that cannot be used, and says where that file went. Work's
// goroutine.
func (g *gui) startOnDefaults() error {
	aside, err := g.ctl.StartOnDefaults(g.opts.ConfigPath)
	if aside != "" {
		g.setFileNote("Porthole runs on the defaults, as you chose. The config file that could not be used was moved to " + aside + ".")
		g.notify("Porthole runs on the defaults", fmt.Errorf("the config file that could not be used was moved to %s", aside))
	}
	return err
}

// setFileNote sets what the main window says about the config file.
func (g *gui) setFileNote(note string) { g.fileNote.Store(&note) }

func (g *gui) setSystemProxy(on bool) {
	g.wantSystemProxy.Store(on)
	g.do("system proxy", func() {
		saved, ok := g.saveConfig("system proxy", func(c *config.Config) { c.SystemProxy = on })
		if !ok {
			return
		}
		err := saved.SystemProxyErr
		if !saved.Changes.Has("system_proxy") {
			err = g.ctl.SetSystemProxy(on) // already the setting: a retry after a failure
		}
		// The label shows a failure (Status.SystemProxyErr); the log
		// keeps the whole text.
		if err != nil {
			g.log.Warn("system proxy", "on", on, "err", err)
		}
		if errors.Is(err, sysproxy.ErrUnsupported) {
			g.noSystemProxy.Store(&err)
			g.wantSystemProxy.Store(false)
		}
	})
}

func (g *gui) setMode(m outbound.Mode) {
	if g.ctl.Config().Mode == string(m) {
		return // the checked item again: nothing to save
	}
	g.do("mode", func() {
		g.saveConfig("mode", func(c *config.Config) { c.Mode = string(m) })
	})
}

func (g *gui) setStartAtLogin(on bool) {
	g.do("start at login", func() {
		// The same entry Settings writes (with --config for a config
		// file other than the default).
		if err := autostartSetter(g.opts.ConfigPath)(on); err != nil {
			g.notify("Start at login was not changed", err)
			return
		}
		if g.ctl.Status().ConfigProblem != nil {
			return // the entry changed; the unusable file is left for the user to decide on
		}
		g.saveConfig("start at login", func(c *config.Config) { c.StartAtLogin = on })
	})
}

// saveConfig changes the settings in use and in the config file, through
// the one settings policy (app.Controller.SaveSettings). Settings it
// refuses are not saved, and a notification says why; settings it took
// but could not start with (the proxy restarts for a new mode) stay, and
// the status line shows the failure. ok is false when nothing was saved.
// Work's goroutine.
func (g *gui) saveConfig(what string, change func(*config.Config)) (saved app.Saved, ok bool) {
	saved, err := g.ctl.SaveSettings(g.opts.ConfigPath, change)
	if err != nil {
		g.notify("Porthole did not change the "+what, err)
		return saved, false
	}
	if saved.SetAside != "" {
		note := setAsideNote(saved)
		g.setFileNote(note)
		g.notify("The config file on disk was set aside", errors.New(note))
	}
	if saved.StartErr != nil {
		g.log.Warn("new settings taken, but the proxy did not start", "err", saved.StartErr)
	}
	return saved, true
}

// setAsideNote says why SaveSettings moved the file on disk and where.
func setAsideNote(saved app.Saved) string {
	if errors.Is(saved.SetAsideWhy, config.ErrInvalid) {
		return fmt.Sprintf("%v. It was moved to %s and the new settings were saved.", saved.SetAsideWhy, saved.SetAside)
	}
	return fmt.Sprintf("%v. Saving settings leaves them out of the file; the old file is kept as %s.", saved.SetAsideWhy, saved.SetAside)
}

func (g *gui) copyTerminalEnv() {
	addr := g.ctl.Config().Listen
	if st := g.ctl.Status(); st.Addr != "" {
		addr = st.Addr
	}
	g.fyne.Clipboard().SetContent(terminalEnvText(addr, g.ctl.Config().Bypass))
}
