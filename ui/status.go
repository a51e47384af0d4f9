package ui

import (
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"porthole/app/autostart"
)

// statusTick is how often the status line's counts and speeds are renewed.
const statusTick = time.Second

// watch redraws the controls when the controller changes, when an action
// ended, and each statusTick for the counts and speeds, until the app ends.
func (g *gui) watch(prev controlsInput) {
	tick := time.NewTicker(statusTick)
	defer tick.Stop()
	shown := viewOf(prev)
	lost := map[string]bool{} // exits lost, for the "back" notification
	last := g.ctl.Registry().Totals()
	lastAt := time.Now()
	changed := g.ctl.Changed()
	for {
		ticked := false
		select {
		case <-g.done:
			return
		case <-changed:
		case <-g.poke:
		case <-tick.C:
			ticked = true
		}
		// Taken before gathering, so a change while gathering is not missed.
		changed = g.ctl.Changed()
		in := g.gather(&prev, !ticked)
		if ticked {
			now := time.Now()
			if dt := now.Sub(lastAt).Seconds(); dt > 0 {
				in.UpRate = float64(in.totalsUp-last.Up) / dt
				in.DownRate = float64(in.totalsDown-last.Down) / dt
			}
			last.Up, last.Down, lastAt = in.totalsUp, in.totalsDown, now
			if g.busiest != nil {
				in.Busiest = g.busiest.name()
			}
		}
		for _, n := range exitNotices(prev.Exits, in.Exits, lost) {
			g.log.Info("exits: "+n.Title, "detail", n.Body)
			g.sendNotification(n.Title, n.Body)
		}
		prev = in
		if v := viewOf(in); v != shown {
			shown = v
			fyne.Do(func() {
				if !g.ended.Load() {
					g.apply(v)
				}
			})
		}
	}
}

// gather reads the controller's state. prev carries the last speeds (they
// change only at ticks) and the autostart state, which is read again only
// when asked (after a change, not each second).
func (g *gui) gather(prev *controlsInput, rereadLogin bool) controlsInput {
	tot := g.ctl.Registry().Totals()
	in := controlsInput{
		Status:             g.ctl.Status(),
		Config:             g.ctl.Config(),
		Active:             tot.Active,
		SystemProxyProblem: g.opts.SystemProxyProblem,
		WantSystemProxy:    g.wantSystemProxy.Load(),
		Quitting:           g.quitting.Load(),
		totalsUp:           tot.Up,
		totalsDown:         tot.Down,
		Exits:              g.ctl.Exits(),
	}
	if p := g.fileNote.Load(); p != nil {
		in.FileNote = *p
	}
	if p := g.noSystemProxy.Load(); p != nil && in.SystemProxyProblem == nil {
		in.SystemProxyProblem = *p
	}
	if prev != nil {
		in.UpRate, in.DownRate = prev.UpRate, prev.DownRate
		in.Busiest = prev.Busiest
		in.AtLogin, in.AtLoginErr = prev.AtLogin, prev.AtLoginErr
	}
	if rereadLogin || prev == nil {
		in.AtLogin, in.AtLoginErr = autostart.Enabled()
	}
	return in
}

// apply shows v in the tray menu or the main window, and the state's icon.
// Fyne thread.
func (g *gui) apply(v controlsView) {
	if g.tray != nil {
		g.tray.apply(v)
	}
	if g.window != nil {
		g.window.apply(v)
	}
	if icon := v.Icon.resource(); icon != g.iconShown {
		g.iconShown = icon
		if desk, ok := g.fyne.(desktop.App); ok && g.tray != nil {
			desk.SetSystemTrayIcon(icon)
		}
		g.fyne.SetIcon(icon)
	}
}
