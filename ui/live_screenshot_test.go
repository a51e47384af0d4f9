package ui

import (
	"image"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"porthole/internal/connecttest"
	"porthole/internal/desktoptest"
	"porthole/internal/freeport"
)

// TestLiveWindowScreenshots opens the connections window (its connection
// list, then its Apps tab with the programs of real clients: curl,
// python3) and then the Settings window of the real GUI under Xvfb, with real traffic flowing
// through the real core, and takes a picture of each X window: the tray
// app as a user sees it (with Mesa's software GL), not a test renderer.
// The pictures go to the test's temporary directory, or to
// docs/screenshots/ with PORTHOLE_UPDATE_SCREENSHOTS=1.
func TestLiveWindowScreenshots(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real GUI in a child process")
	}
	display := desktoptest.Xvfb(t)
	bus := desktoptest.SessionBus(t)
	watcher := startFakeWatcher(t, connectBus(t, bus), true) // a tray: no main window in the way
	origin := startTrickleOrigin(t, 1500, 250*time.Millisecond)
	child, addr := startTrayChild(t, display, bus, watcher)

	// Some connections that ended (one with an error), then live ones.
	openConns(t, addr, origin.addr, 6)()
	refused := freeport.Loopback(t)
	for range 2 {
		c, _, resp, err := connecttest.Dial(addr, refused)
		if err != nil {
			t.Fatalf("CONNECT to a closed port: no answer: %v", err)
		}
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("CONNECT to a closed port: %s", resp.Status)
		}
		_ = c.Close()
	}
	defer openConns(t, addr, origin.addr, 40)()
	// The system's programs first, not a user's shims: their paths are in
	// the pictures.
	t.Setenv("PATH", "/usr/bin:/bin:"+os.Getenv("PATH"))
	startProgramClients(t, addr, origin.addr) // real programs' names in the App column

	child.command(t, "show")
	waitViewable(t, display, true)
	settle := 2 * time.Second // speeds need two samples
	if os.Getenv("PORTHOLE_UPDATE_SCREENSHOTS") == "1" {
		settle = 10 * time.Second // and the traffic graph a few more
	}
	time.Sleep(settle)
	id, _ := desktoptest.FindWindow(t, display, "Porthole — Connections")
	img, colours := screenshotDrawn(t, display, id)
	checkWindowSize(t, "connections window", img, image.Pt(900, 500))
	saveScreenshot(t, "inspector-live.png", img, colours)

	// The Apps tab: one row per program, the real ones above among them.
	child.command(t, "apps")
	time.Sleep(settle / 2) // its rows and speeds come with the next refresh
	img, colours = screenshotDrawn(t, display, id)
	checkWindowSize(t, "connections window, Apps tab", img, image.Pt(900, 500))
	saveScreenshot(t, "inspector-apps-live.png", img, colours)

	child.command(t, "hide") // X windows without a manager overlap at 0,0
	waitViewable(t, display, false)
	child.command(t, "settings")
	settings := desktoptest.WaitWindow(t, display, "Porthole Settings", true)
	img, colours = screenshotDrawn(t, display, settings)
	checkWindowSize(t, "settings window", img, image.Pt(400, 400))
	saveScreenshot(t, "settings-live.png", img, colours)

	// The Logs window, fed by the child's log ring (the refused CONNECTs
	// above logged their dial failures).
	child.command(t, "close-settings")
	desktoptest.WaitWindow(t, display, "Porthole Settings", false)
	child.command(t, "logs")
	logsWin := desktoptest.WaitWindow(t, display, "Porthole Logs", true)
	img, colours = screenshotDrawn(t, display, logsWin)
	checkWindowSize(t, "logs window", img, image.Pt(600, 300))
	saveScreenshot(t, "logs-live.png", img, colours)

	child.signal(t, syscall.SIGTERM)
	child.waitExit(t)
}

// checkWindowSize fails t when img is smaller than min or larger than the
// 1280x800 screen.
func checkWindowSize(t *testing.T, what string, img image.Image, min image.Point) {
	t.Helper()
	size := img.Bounds().Size()
	if size.X < min.X || size.Y < min.Y || size.X > 1280 || size.Y > 800 {
		t.Errorf("%s is %v; want at least %v and at most the 1280x800 screen", what, size, min)
	}
}
