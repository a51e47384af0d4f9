package ui

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"porthole/app/autostart"
	"porthole/app/config"
	"porthole/internal/desktoptest"
	"porthole/internal/upstreamtest"
)

var listeningRE = regexp.MustCompile(`msg="proxy listening" addr=(\S+)`)

// trayClient reads and clicks a tray item's menu the way a panel does,
// through com.canonical.dbusmenu.
type trayClient struct {
	menu    dbus.BusObject
	updates chan *dbus.Signal // LayoutUpdated from the item
}

func newTrayClient(t *testing.T, conn *dbus.Conn, item registeredItem) *trayClient {
	t.Helper()
	var menuPath dbus.Variant
	err := conn.Object(item.Sender, dbus.ObjectPath(item.Path)).Call("org.freedesktop.DBus.Properties.Get", 0,
		"org.kde.StatusNotifierItem", "Menu").Store(&menuPath)
	if err != nil {
		t.Fatalf("reading the item's Menu property: %v", err)
	}
	path, ok := menuPath.Value().(dbus.ObjectPath)
	if !ok {
		t.Fatalf("the item's Menu property is a %T", menuPath.Value())
	}
	if err := conn.AddMatchSignal(dbus.WithMatchSender(item.Sender), dbus.WithMatchObjectPath(path),
		dbus.WithMatchInterface("com.canonical.dbusmenu"), dbus.WithMatchMember("LayoutUpdated")); err != nil {
		t.Fatal(err)
	}
	c := &trayClient{menu: conn.Object(item.Sender, path), updates: make(chan *dbus.Signal, 256)}
	conn.Signal(c.updates)
	t.Cleanup(func() { conn.RemoveSignal(c.updates) })
	return c
}

// waitMenu reads the menu until ok accepts it, reading again at each
// LayoutUpdated signal, for at most timeout. It returns the last menu
// read and whether ok accepted it.
func (c *trayClient) waitMenu(ok func(menuNode) bool, timeout time.Duration) (menuNode, bool) {
	deadline := time.After(timeout)
	var m menuNode
	for {
		// Drain the signals already here: one read covers them all.
		for drained := false; !drained; {
			select {
			case <-c.updates:
			default:
				drained = true
			}
		}
		var err error
		if m, err = readMenu(c.menu); err == nil && ok(m) {
			return m, true
		}
		select {
		case <-c.updates:
		case <-deadline:
			return m, false
		}
	}
}

// mustWaitMenu is waitMenu that fails the test after 30 s.
func (c *trayClient) mustWaitMenu(t *testing.T, what string, ok func(menuNode) bool) menuNode {
	t.Helper()
	m, good := c.waitMenu(ok, 30*time.Second)
	if !good {
		t.Fatalf("the tray menu never showed %s; last read: %q", what, m.labels())
	}
	return m
}

// click clicks the item whose label starts with label, until the menu
// shows the effect. A click can miss when Fyne rebuilds the menu (new
// item ids) between the read and the click, so it is repeated, at most
// three times.
func (c *trayClient) click(t *testing.T, label, effect string, done func(menuNode) bool) menuNode {
	t.Helper()
	for range 3 {
		m, _ := c.waitMenu(func(m menuNode) bool { _, ok := m.find(label); return ok }, 10*time.Second)
		item, ok := m.find(label)
		if !ok {
			t.Fatalf("no %q item in the tray menu %q", label, m.labels())
		}
		if !item.Enabled {
			t.Fatalf("%q is disabled", item.Label)
		}
		err := c.menu.Call("com.canonical.dbusmenu.Event", 0, item.ID, "clicked",
			dbus.MakeVariant(int32(0)), uint32(time.Now().Unix())).Err
		if err != nil {
			t.Fatalf("clicking %q: %v", label, err)
		}
		if m, ok := c.waitMenu(done, 10*time.Second); ok {
			return m
		}
	}
	t.Fatalf("clicking %q three times never showed %s", label, effect)
	return menuNode{}
}

// statusIs accepts a whole menu whose first item starts with prefix. Fyne
// rebuilds the menu item by item and a read can come in between; Quit is
// added last.
func statusIs(prefix string) func(menuNode) bool {
	return func(m menuNode) bool {
		l := m.labels()
		return len(l) > 1 && strings.HasPrefix(l[0], prefix) && l[len(l)-1] == "Quit"
	}
}

// TestTrayOverDBus runs the real GUI under Xvfb on a private session bus
// where the test plays the panel: it owns the StatusNotifierWatcher,
// receives the tray item, reads its menu and clicks it.
func TestTrayOverDBus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real GUI in a child process")
	}
	display := desktoptest.Xvfb(t)
	bus := desktoptest.SessionBus(t)
	conn := connectBus(t, bus)
	watcher := startFakeWatcher(t, conn, true)
	origin := startOrigin(t)

	child := startUIChild(t, display, bus)
	addr := child.waitLine(t, listeningRE)[1]
	item := watcher.waitItem(t)
	t.Logf("startup to tray registered: %v (process start to RegisterStatusNotifierItem)",
		item.At.Sub(child.started).Round(time.Millisecond))
	tray := newTrayClient(t, conn, item)

	m := tray.mustWaitMenu(t, "the running proxy", func(m menuNode) bool {
		mode, ok := m.find("Mode")
		return statusIs("Running · 0 connections")(m) && ok && len(mode.Children) == 3
	})
	want := []string{"Running · 0 connections · ↓ 0 B/s ↑ 0 B/s", "Stop",
		"System proxy: not available on this desktop (use Copy terminal env)", "Mode: Direct",
		"Connections…", "Logs…", "Open dashboard", "Settings…", "Copy terminal env", "Start at login", "About Porthole", "Quit"}
	if got := m.labels(); !slices.Equal(got, want) {
		t.Errorf("tray menu %q,\nwant %q", got, want)
	}
	if it, ok := m.find("System proxy"); !ok || it.Enabled {
		t.Error("System proxy is missing or enabled without a backend")
	}
	if it, ok := m.find("Running"); !ok || it.Enabled {
		t.Error("the status line is missing or clickable")
	}
	mode, _ := m.find("Mode")
	direct, tunnel, ruled := mode.Children[0], mode.Children[1], mode.Children[2]
	if direct.Label != "Direct" || !direct.Checked || !strings.HasPrefix(tunnel.Label, "Tunnel (") || tunnel.Enabled {
		t.Errorf("mode submenu: %+v, %+v", direct, tunnel)
	}
	// No exit and no rules: the default would tunnel, so Rules is greyed
	// with the reason.
	if !strings.HasPrefix(ruled.Label, "Rules (") || ruled.Checked || ruled.Enabled {
		t.Errorf("mode submenu: rules %+v", ruled)
	}

	// A live connection through the proxy shows in the status line.
	live := connectThrough(t, addr, origin)
	tray.mustWaitMenu(t, "one connection", statusIs("Running · 1 connection ·"))
	live.Close()
	tray.mustWaitMenu(t, "no connection", statusIs("Running · 0 connections"))

	tray.click(t, "Stop", "Stopped", statusIs("Stopped"))
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("the proxy at %s still accepts connections after Stop", addr)
	}

	m = tray.click(t, "Start", "Running", statusIs("Running"))
	if it, ok := m.find("Stop"); !ok || !it.Enabled {
		t.Errorf("running: Stop is missing or disabled: %q", m.labels())
	}
	addr = child.waitLine(t, listeningRE)[1] // port 0: a new port
	connectThrough(t, addr, origin).Close()

	// Start at login writes the XDG autostart entry, and takes it away.
	entry := filepath.Join(child.home, ".config", "autostart", autostart.DesktopFileName)
	checked := func(want bool) func(menuNode) bool {
		return func(m menuNode) bool { it, ok := m.find("Start at login"); return ok && it.Checked == want }
	}
	tray.click(t, "Start at login", "checked", checked(true))
	if data, err := os.ReadFile(entry); err != nil || !strings.Contains(string(data), "Exec=") {
		t.Errorf("after Start at login: %s: %q, %v", entry, data, err)
	}
	tray.click(t, "Start at login", "unchecked", checked(false))
	if _, err := os.Stat(entry); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after unchecking Start at login, %s: %v", entry, err)
	}

	// Connections… and Settings… open their windows (the other helpers'
	// screens, here only opened from the tray on the real GL driver).
	tray.click(t, "Connections…", "", func(menuNode) bool { return true })
	tray.click(t, "Settings…", "", func(menuNode) bool { return true })
	desktoptest.WaitForWindows(t, display, "Connections", "Porthole Settings")

	tray.click(t, "Quit", "Quitting", func(menuNode) bool { return true })
	child.waitExit(t)
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Errorf("the proxy at %s still accepts connections after Quit", addr)
	}
}

// TestFindStatusNotifierHost asks a private session bus the question Run
// asks: no watcher, a watcher without a host, a watcher with one.
func TestFindStatusNotifierHost(t *testing.T) {
	for _, tc := range []struct {
		name           string
		watcher, host  bool
		wantTray       bool
		wantReasonPart string
	}{
		{"no watcher", false, false, false, "nothing on the session bus owns"},
		{"watcher without host", true, false, false, "no tray host"},
		{"watcher with host", true, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := desktoptest.SessionBus(t)
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus)
			if tc.watcher {
				startFakeWatcher(t, connectBus(t, bus), tc.host)
			}
			err := findStatusNotifierHost()
			if tc.wantTray {
				if err != nil {
					t.Fatalf("a host is registered, yet: %v", err)
				}
				return
			}
			if !errors.Is(err, errNoTray) || !strings.Contains(err.Error(), tc.wantReasonPart) {
				t.Fatalf("got %v, want errNoTray saying %q", err, tc.wantReasonPart)
			}
		})
	}
	t.Run("no bus", func(t *testing.T) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none"))
		if err := findStatusNotifierHost(); !errors.Is(err, errNoTray) {
			t.Fatalf("without a session bus: %v", err)
		}
	})
}

// startOrigin is a web server on loopback for traffic through the proxy.
func startOrigin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from origin")
	})}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // ends with ErrServerClosed at cleanup
	}()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		<-served
	})
	return ln.Addr().String()
}

// connectThrough opens a CONNECT tunnel to origin through the proxy at
// proxyAddr, checks a request over it, and leaves it open.
func connectThrough(t *testing.T, proxyAddr, origin string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 10*time.Second)
	if err != nil {
		t.Fatalf("the proxy at %s: %v", proxyAddr, err)
	}
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nGET / HTTP/1.1\r\nHost: %s\r\n\r\n", origin, origin, origin)
	buf := make([]byte, 4096)
	var got []byte
	for !strings.Contains(string(got), "hello from origin") {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			c.Close()
			t.Fatalf("through the proxy: %q, %v", got, err)
		}
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTrayExitsOverDBus: with two exits (real microsocks), the tray has an
// Exits submenu showing each one's state with the one in use checked;
// clicking the other selects it (manual policy), the proxy uses it at
// once and the file keeps the choice.
func TestTrayExitsOverDBus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real GUI in a child process")
	}
	one, two := upstreamtest.Microsocks(t, "", ""), upstreamtest.Microsocks(t, "", "")
	display := desktoptest.Xvfb(t)
	bus := desktoptest.SessionBus(t)
	conn := connectBus(t, bus)
	watcher := startFakeWatcher(t, conn, true)
	origin := startOrigin(t)
	exits := fmt.Sprintf(`[{"name":"one","kind":"socks5","url":%q},{"name":"two","kind":"socks5","url":%q}]`, one.URL, two.URL)
	child := startUIChild(t, display, bus, uiChildExitsEnv+"="+exits)
	addr := child.waitLine(t, listeningRE)[1]
	item := watcher.waitItem(t)
	tray := newTrayClient(t, conn, item)
	inUse := func(name string) func(menuNode) bool {
		return func(m menuNode) bool {
			sub, ok := m.find("Exit: ")
			if !ok || sub.Label != "Exit: "+name || len(sub.Children) != 2 {
				return false
			}
			for _, c := range sub.Children {
				if !strings.Contains(c.Label, "· connected") || c.Checked != strings.HasPrefix(c.Label, name+" ") {
					return false
				}
			}
			return statusIs("Running")(m)
		}
	}
	m := tray.mustWaitMenu(t, "exit one in use", inUse("one"))
	if got := m.labels(); !slices.Contains(got, "Exit: one") || slices.Index(got, "Exit: one") != slices.Index(got, "Mode: Tunnel")+1 {
		t.Errorf("tray menu %q: want the Exits submenu after Mode", got)
	}
	connectThrough(t, addr, origin).Close()

	tray.click(t, "two ·", "exit two in use", inUse("two"))
	connectThrough(t, addr, origin).Close()
	cfg, err := config.Load(filepath.Join(child.home, ".config", "porthole", "config.json"))
	if err != nil || cfg.ExitSelected != "two" {
		t.Errorf("config after the click: exit_selected %q, %v", cfg.ExitSelected, err)
	}
	tray.click(t, "Quit", "Quitting", func(menuNode) bool { return true })
	child.waitExit(t)
}
