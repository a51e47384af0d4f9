package ui

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"fyne.io/fyne/v2"

	"porthole/app"
)

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
	logs      *logsWindow
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

	// notified, set by tests before the watcher starts, receives the
	// desktop notifications instead of the desktop.
	notified func(title, body string)

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
	g.sendNotification(title, err.Error())
}

// sendNotification shows a desktop notification, or hands it to the
// test's recorder when one is set. Any goroutine.
func (g *gui) sendNotification(title, body string) {
	if g.notified != nil {
		g.notified(title, body)
		return
	}
	g.fyne.SendNotification(fyne.NewNotification(title, body))
}
