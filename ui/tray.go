package ui

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"fyne.io/fyne/v2"
	"github.com/godbus/dbus/v5"

	"porthole/core/outbound"
)

// trayMenu is the tray icon's menu. There is exactly one *fyne.Menu with
// one set of items for the life of the app: SetSystemTrayMenu is called
// once (Run), and apply changes the items in place and calls Menu.Refresh.
// In Fyne 2.8.1 Refresh reaches the tray only for the menu last given to
// SetSystemTrayMenu, and it rebuilds every systray entry from it
// (systray.ResetMenu, new dbusmenu ids), so apply is only called when
// something shown changed.
//
// Concurrency: Fyne thread only.
type trayMenu struct {
	menu *fyne.Menu

	status, startStop, systemProxy          *fyne.MenuItem
	mode, modeDirect, modeTunnel, modeRules *fyne.MenuItem
	exits                                   *fyne.MenuItem // submenu; in the menu only with exits
	exitItems                               [maxTrayExits]*fyne.MenuItem
	connections, settings, copyEnv, atLogin *fyne.MenuItem
	logs, dashboard                         *fyne.MenuItem
	about                                   *fyne.MenuItem
	quit                                    *fyne.MenuItem
	shown                                   controlsView
	refreshes                               int // Menu.Refresh calls, for tests
}

// newTrayMenu builds the menu; its actions are g's.
func newTrayMenu(g *gui) *trayMenu {
	t := &trayMenu{}
	t.status = &fyne.MenuItem{Label: "Starting…", Disabled: true}
	t.startStop = fyne.NewMenuItem("Start", func() { g.toggleRunning() })
	t.systemProxy = fyne.NewMenuItem("System proxy", func() { g.setSystemProxy(!t.shown.SystemProxyOn) })
	t.modeDirect = fyne.NewMenuItem("Direct", func() { g.setMode(outbound.ModeDirect) })
	t.modeTunnel = fyne.NewMenuItem("Tunnel", func() { g.setMode(outbound.ModeTunnel) })
	t.modeRules = fyne.NewMenuItem("Rules", func() { g.setMode(outbound.ModeRules) })
	t.mode = fyne.NewMenuItem("Mode", nil)
	t.mode.ChildMenu = fyne.NewMenu("Mode", t.modeDirect, t.modeTunnel, t.modeRules)
	t.exits = fyne.NewMenuItem("Exits", nil)
	t.exits.ChildMenu = fyne.NewMenu("Exits")
	for i := range t.exitItems {
		t.exitItems[i] = fyne.NewMenuItem("", func() {
			if x := t.shown.Exits.Items[i]; x.Name != "" && !x.Disabled {
				g.selectExit(x.Name)
			}
		})
	}
	t.connections = fyne.NewMenuItem("Connections…", func() { g.showConnections() })
	t.logs = fyne.NewMenuItem("Logs…", func() { g.showLogs() })
	t.dashboard = fyne.NewMenuItem("Open dashboard", func() { g.openDashboard() })
	t.settings = fyne.NewMenuItem("Settings…", func() { g.showSettings() })
	t.copyEnv = fyne.NewMenuItem("Copy terminal env", func() { g.copyTerminalEnv() })
	t.atLogin = fyne.NewMenuItem("Start at login", func() { g.setStartAtLogin(!t.shown.AtLoginOn) })
	t.about = fyne.NewMenuItem("About Porthole", func() { g.showAbout() })
	// The label "Quit" (Fyne's own word for it) keeps the driver from
	// appending a second Quit item of its own.
	t.quit = fyne.NewMenuItem("Quit", func() { g.quit() })
	t.quit.IsQuit = true
	t.menu = fyne.NewMenu("Porthole",
		t.status,
		fyne.NewMenuItemSeparator(),
		t.startStop, t.systemProxy, t.mode,
		fyne.NewMenuItemSeparator(),
		t.connections, t.logs, t.dashboard, t.settings, t.copyEnv,
		fyne.NewMenuItemSeparator(),
		t.atLogin, t.about,
		fyne.NewMenuItemSeparator(),
		t.quit,
	)
	return t
}

// apply shows v by changing the items in place.
func (t *trayMenu) apply(v controlsView) {
	t.shown = v
	t.status.Label = v.Status
	t.startStop.Label, t.startStop.Disabled = v.StartStop, v.StartStopBlocked
	t.systemProxy.Label = v.SystemProxy
	t.systemProxy.Checked, t.systemProxy.Disabled = v.SystemProxyOn, v.SystemProxyBlocked
	t.mode.Label = v.ModeLabel
	t.modeDirect.Checked = v.Mode == outbound.ModeDirect
	t.modeTunnel.Label = v.TunnelLabel
	t.modeTunnel.Checked = v.Mode == outbound.ModeTunnel
	t.modeRules.Label = v.RulesLabel
	t.modeRules.Checked = v.Mode == outbound.ModeRules
	t.modeDirect.Disabled = v.ModeBlocked
	t.modeRules.Disabled = v.RulesBlocked || v.ModeBlocked
	t.modeTunnel.Disabled = v.TunnelBlocked || v.ModeBlocked
	t.applyExits(v.Exits)
	t.atLogin.Label = v.AtLogin
	t.atLogin.Checked, t.atLogin.Disabled = v.AtLoginOn, v.AtLoginBlocked
	t.menu.Refresh()
	t.refreshes++
}

// applyExits shows the Exits submenu, right after Mode, or takes it out
// of the menu when there are no exits.
func (t *trayMenu) applyExits(v exitsView) {
	items := t.exitItems[:v.N]
	for i, it := range items {
		x := v.Items[i]
		it.Label, it.Checked, it.Disabled = x.Label, x.Checked, x.Disabled
	}
	t.exits.Label = v.Label
	t.exits.ChildMenu.Items = items
	at := -1
	for i, it := range t.menu.Items {
		if it == t.exits {
			at = i
		}
	}
	switch {
	case v.N > 0 && at < 0:
		for i, it := range t.menu.Items {
			if it == t.mode {
				t.menu.Items = append(t.menu.Items[:i+1], append([]*fyne.MenuItem{t.exits}, t.menu.Items[i+1:]...)...)
				break
			}
		}
	case v.N == 0 && at >= 0:
		t.menu.Items = append(t.menu.Items[:at], t.menu.Items[at+1:]...)
	}
}

// errNoTray is wrapped by findStatusNotifierHost's answer when no tray can
// show Porthole's icon.
var errNoTray = errors.New("no system tray")

const statusNotifierWatcher = "org.kde.StatusNotifierWatcher"

// findStatusNotifierHost reports whether a tray will show Porthole's icon.
// On Linux and the BSDs Fyne's tray is a StatusNotifierItem: it is only
// visible if something owns org.kde.StatusNotifierWatcher on the session
// bus and a host (the panel) has registered with it. Plain GNOME without
// the AppIndicator extension has neither, and the icon would silently
// not appear. Windows and macOS always have a tray.
func findStatusNotifierHost() error {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		return nil
	}
	// A private connection, closed at once: the shared one belongs to the
	// systray package.
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return fmt.Errorf("%w: there is no D-Bus session bus (%w)", errNoTray, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var owned bool
	err = conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, statusNotifierWatcher).Store(&owned)
	if err != nil {
		return fmt.Errorf("%w: asking the session bus for %s: %w", errNoTray, statusNotifierWatcher, err)
	}
	if !owned {
		return fmt.Errorf("%w: nothing on the session bus owns %s, so this desktop shows no tray icons", errNoTray, statusNotifierWatcher)
	}
	var registered dbus.Variant
	err = conn.Object(statusNotifierWatcher, "/StatusNotifierWatcher").CallWithContext(ctx,
		"org.freedesktop.DBus.Properties.Get", 0, statusNotifierWatcher, "IsStatusNotifierHostRegistered").Store(&registered)
	if err != nil {
		return fmt.Errorf("%w: asking %s for a tray host: %w", errNoTray, statusNotifierWatcher, err)
	}
	if ok, _ := registered.Value().(bool); !ok {
		return fmt.Errorf("%w: %s runs but no tray host (panel) has registered with it", errNoTray, statusNotifierWatcher)
	}
	return nil
}
