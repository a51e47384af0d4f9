package ui

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"

	"porthole/app"
	"porthole/app/autostart"
	"porthole/app/config"
	"porthole/app/sysproxy"
	"porthole/core/outbound"
)

// Options is what main tells the GUI besides the controller.
type Options struct {
	ConfigPath string
	// ConfigProblem is a config file that cannot be used (left in place;
	// the controller holds the defaults). The GUI keeps the proxy stopped,
	// shows the problem and offers Start with defaults.
	ConfigProblem error
	// ConfigWarning is a config file with fields this version does not
	// know (the known ones are in use). The GUI shows it.
	ConfigWarning error
	Version       string
	Log           *slog.Logger
	// SystemProxyProblem is why this desktop has no system proxy setting
	// Porthole can change (it wraps sysproxy.ErrUnsupported); nil when it
	// has one. The System proxy item is then disabled and says why.
	SystemProxyProblem error
	// ShowRequests receives when Porthole is started again while this one
	// runs: the connections window comes to the front. May be nil.
	ShowRequests <-chan struct{}
	// Quitting is called once when the user quits, before the proxy stops
	// (which may take a while): from then on a new launch must start
	// afresh rather than be shown this Porthole on its way out. May be nil.
	Quitting func()

	// testWindows, for the tests, opens or hides windows as a click would.
	testWindows <-chan testWindowRequest
}

// testWindowRequest is what a test asks of the windows through
// Options.testWindows.
type testWindowRequest int

const (
	testHideConnections testWindowRequest = iota // as the close button does
	testShowSettings                             // as Settings… does
)

// AppID is the Fyne application id (preferences, notifications).
const AppID = "app.porthole.Porthole"

// statusTick is how often the status line's counts and speeds are renewed.
const statusTick = time.Second

// Run shows the tray (or, without one, the main window), starts the proxy
// if the settings say so, and returns when the user quits. It then closes
// ctl, which puts the system proxy back and stops the proxy, whichever way
// the app ended (Quit, the main window closed, SIGTERM).
func Run(ctl *app.Controller, opts Options) error {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	begun := time.Now()
	opts.Log.Info("starting the GUI", "version", opts.Version)
	g := &gui{
		fyne:    fyneapp.NewWithID(AppID),
		ctl:     ctl,
		opts:    opts,
		log:     opts.Log,
		actions: make(chan func(), 8),
		poke:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	g.wantSystemProxy.Store(ctl.Config().SystemProxy)
	g.fyne.SetIcon(iconOff)
	g.begin()
	first := g.gather(nil, true)
	desk, isDesktop := g.fyne.(desktop.App)
	hostErr := findStatusNotifierHost()
	if hostErr == nil && !isDesktop {
		hostErr = fmt.Errorf("%w: this Fyne driver has none", errNoTray)
	}
	if err := hostErr; err != nil {
		g.log.Info("no system tray; showing the main window instead", "why", err)
		g.window = newMainWindow(g, err)
		g.apply(viewOf(first))
		g.window.win.Show()
		g.log.Info("main window shown", "after", time.Since(begun).Round(time.Millisecond))
	} else {
		g.tray = newTrayMenu(g)
		g.apply(viewOf(first))
		desk.SetSystemTrayMenu(g.tray.menu)
		g.log.Info("tray menu set", "after", time.Since(begun).Round(time.Millisecond))
	}
	g.busiest = newBusiest(ctl.Registry())
	g.wg.Go(func() { g.busiest.run(g.done) })
	g.wg.Go(g.work)
	g.wg.Go(func() { g.watch(first) })
	g.wg.Go(func() {
		for {
			select {
			case <-opts.ShowRequests:
				fyne.Do(func() {
					if !g.ended.Load() {
						g.showConnections()
					}
				})
			case req := <-opts.testWindows:
				fyne.Do(func() {
					switch {
					case g.ended.Load():
					case req == testShowSettings:
						g.showSettings()
					case req == testHideConnections && g.inspector != nil:
						g.inspector.hide()
					}
				})
			case <-g.done:
				return
			}
		}
	})
	// Closing the terminal Porthole was started from (SIGHUP) is a Quit:
	// the system proxy must not be left pointing at a proxy that is gone.
	// (Fyne itself turns SIGINT and SIGTERM into a Quit.)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.wg.Go(func() {
		select {
		case <-hup:
			g.quit()
		case <-g.done:
		}
	})
	// A panic on the Fyne thread still puts the system proxy back.
	defer func() {
		if r := recover(); r != nil {
			_ = ctl.Close() // best effort on the way down; the panic is what matters
			panic(r)
		}
	}()
	g.fyne.Run()
	// The Fyne loop is over: from here fyne.Do runs its function at once
	// on the caller's goroutine, so nothing may post to widgets any more.
	g.ended.Store(true)
	if g.inspector != nil {
		g.inspector.bridge.Stop() // this goroutine was the Fyne thread
	}
	close(g.done)
	g.wg.Wait()
	return ctl.Close()
}

// begin starts the proxy if the settings say so, or holds it stopped for
// a config file that cannot be used, and tells the user about the file.
// Run calls it before the controls are first drawn.
func (g *gui) begin() {
	if p := g.opts.ConfigProblem; p != nil {
		// Fail closed: the defaults in use may send traffic another way
		// than the file says. Start reads "Start with defaults" until the
		// user chooses it or saves new settings.
		g.ctl.HoldForConfig(p)
		g.notify("Porthole did not start: its config file cannot be used",
			fmt.Errorf("%w. Fix the file and start Porthole again, or choose Start with defaults", p))
	} else if g.ctl.Config().StartProxy {
		// A failure (port in use) is not fatal: the status line shows it
		// and Start retries.
		if err := g.ctl.Start(); err != nil {
			g.log.Warn("the proxy did not start", "err", err)
		}
	}
	if w := g.opts.ConfigWarning; w != nil {
		g.setFileNote(w.Error() + ". The file is left as it is until you save settings.")
		g.notify("The config file holds settings this Porthole does not know", w)
	}
}

// gui is the running app: the controller and what shows it.
type gui struct {
	fyne fyne.App
	ctl  *app.Controller
	opts Options
	log  *slog.Logger

	// Fyne thread only.
	tray      *trayMenu   // nil without a tray
	window    *mainWindow // the tray-less main window, or nil
	inspector *inspector
	settings  *settingsWindow
	about     *aboutWindow
	iconShown fyne.Resource

	busiest *busiest // the status line's busiest program; nil in tests without Run

	wantSystemProxy atomic.Bool
	// fileNote is what the main window says about the config file besides
	// a problem the controller holds for: unknown fields, or where a file
	// that could not be used was moved.
	fileNote atomic.Pointer[string]
	// noSystemProxy is ErrUnsupported as SetSystemProxy returned it, for
	// a desktop Options.SystemProxyProblem did not already rule out.
	noSystemProxy atomic.Pointer[error]
	quitting      atomic.Bool
	// ended: Quit is under way and the tray is being taken down; redraws
	// still queued are dropped rather than rebuild a menu on a closed bus
	// connection.
	ended    atomic.Bool
	quitOnce sync.Once

	actions chan func()   // controller calls, run in order by work
	poke    chan struct{} // asks watch to redraw now
	done    chan struct{} // closed when the Fyne app has ended
	wg      sync.WaitGroup
}

// work runs the user's actions off the Fyne thread (stopping the proxy
// waits for its connections), one after another, in the order clicked.
func (g *gui) work() {
	for {
		select {
		case <-g.done:
			return
		case fn := <-g.actions:
			fn()
			select {
			case g.poke <- struct{}{}:
			default: // a redraw is already due
			}
		}
	}
}

// do queues fn for work. It never blocks the Fyne thread: with eight
// actions already waiting, a click is dropped and logged.
func (g *gui) do(what string, fn func()) {
	select {
	case g.actions <- fn:
	default:
		g.log.Warn("still busy with earlier clicks; ignored", "action", what)
	}
}

// watch redraws the controls when the controller changes, when an action
// ended, and each statusTick for the counts and speeds, until the app ends.
func (g *gui) watch(prev controlsInput) {
	tick := time.NewTicker(statusTick)
	defer tick.Stop()
	shown := viewOf(prev)
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

func (g *gui) copyTerminalEnv() {
	addr := g.ctl.Config().Listen
	if st := g.ctl.Status(); st.Addr != "" {
		addr = st.Addr
	}
	g.fyne.Clipboard().SetContent(terminalEnvText(addr, g.ctl.Config().Bypass))
}

// quit closes the controller (system proxy back, proxy stopped) off the
// Fyne thread, then ends the app; Run returns after that.
func (g *gui) quit() {
	g.quitOnce.Do(func() {
		g.quitting.Store(true)
		if g.opts.Quitting != nil {
			g.opts.Quitting()
		}
		g.log.Info("quitting")
		select {
		case g.poke <- struct{}{}: // show "Quitting…"
		default:
		}
		g.wg.Go(func() {
			if err := g.ctl.Close(); err != nil {
				g.log.Error("closing the proxy", "err", err)
			}
			g.ended.Store(true)
			fyne.Do(g.fyne.Quit)
		})
	})
}

// notify tells the user about a failure that no control shows, in a
// desktop notification and the log. Any goroutine.
func (g *gui) notify(title string, err error) {
	g.log.Warn(title, "err", err)
	g.fyne.SendNotification(fyne.NewNotification(title, err.Error()))
}
