package ui

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"

	"porthole/app"
	"porthole/app/logring"
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

	// Logs is the app's log ring, which the Logs window reads; nil: the
	// window shows nothing.
	Logs *logring.Ring

	// testWindows, for the tests, opens or hides windows as a click would.
	testWindows <-chan testWindowRequest
}

// testWindowRequest is what a test asks of the windows through
// Options.testWindows.
type testWindowRequest int

const (
	testHideConnections testWindowRequest = iota // as the close button does
	testShowSettings                             // as Settings… does
	testShowLogs                                 // as Logs… does
	testCloseSettings                            // as the Settings window's close button
	testShowApps                                 // a click on the connections window's Apps tab
)

// AppID is the Fyne application id (preferences, notifications).
const AppID = "app.porthole.Porthole"

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
					case req == testShowLogs:
						g.showLogs()
					case req == testCloseSettings && g.settings != nil && g.settings.win != nil:
						g.settings.win.Close()
					case req == testHideConnections && g.inspector != nil:
						g.inspector.hide()
					case req == testShowApps && g.inspector != nil:
						g.inspector.tabs.SelectIndex(int(tabApps))
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
	if g.logs != nil {
		g.logs.stop()
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
