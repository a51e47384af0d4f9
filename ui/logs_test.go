package ui

import (
	"bytes"
	"fmt"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"porthole/app/logring"
)

// openLogs shows a Logs window of ring in the test driver; the test
// goroutine is its Fyne thread.
func openLogs(t *testing.T, ring *logring.Ring) (*logsWindow, *testThread) {
	t.Helper()
	fyneThreadErrors(t)
	a := test.NewTempApp(t)
	tt := newTestThread(8)
	w := newLogsWindow(a, ring, tt.post)
	// At most one post is pending at a time, so stopping never waits
	// for this Fyne thread.
	t.Cleanup(w.stop)
	w.Show()
	return w, tt
}

func addRecord(ring *logring.Ring, level slog.Level, msg string, attrs ...logring.Attr) {
	ring.Add(logring.Record{Time: time.Now(), Level: level, Message: msg, Attrs: attrs})
}

func shownLines(w *logsWindow) []string {
	var out []string
	for _, l := range w.model.visible {
		out = append(out, l.text)
	}
	return out
}

func TestLogsWindowLevelFilterPauseCopy(t *testing.T) {
	ring := logring.New(logring.Options{Level: slog.LevelDebug})
	addRecord(ring, slog.LevelDebug, "a debug record")
	addRecord(ring, slog.LevelInfo, "proxy listening", logring.Attr{Key: "addr", Value: "127.0.0.1:8088"})
	addRecord(ring, slog.LevelWarn, "a warning", logring.Attr{Key: "conn", Value: "abc"})
	w, tt := openLogs(t, ring)

	// The snapshot at the default level (info): two of three.
	if got := shownLines(w); len(got) != 2 || !strings.Contains(got[0], "INFO  proxy listening addr=127.0.0.1:8088") {
		t.Fatalf("shown %q", got)
	}
	// Live records arrive.
	addRecord(ring, slog.LevelError, "dial failed", logring.Attr{Key: "conn", Value: "def"})
	addRecord(ring, slog.LevelDebug, "not at info")
	tt.runUntil(t, "the live record", func() bool { return len(w.model.visible) == 3 })

	// Level: Warning reads again from the ring at that level.
	w.level.SetSelected("Warning")
	if got := shownLines(w); len(got) != 2 || !strings.Contains(got[0], "WARN  a warning conn=abc") {
		t.Fatalf("at warning: %q", got)
	}
	w.level.SetSelected("Debug")
	if got := shownLines(w); len(got) != 5 {
		t.Fatalf("at debug: %q", got)
	}

	// Text filter, case-insensitive, over message, attributes and level.
	w.filter.SetText("CONN=")
	if got := shownLines(w); len(got) != 2 {
		t.Errorf("filter conn=: %q", got)
	}
	w.filter.SetText("")

	// Pause: the view keeps still while records arrive; unpausing shows them.
	w.pause.SetChecked(true)
	for i := range 3 {
		addRecord(ring, slog.LevelInfo, fmt.Sprint("while paused ", i))
	}
	tt.runUntil(t, "the paused records", func() bool { return w.model.held == 3 })
	if got := shownLines(w); len(got) != 5 {
		t.Errorf("paused view changed: %q", got)
	}
	if !strings.Contains(w.count.Text, "Paused") || !strings.Contains(w.count.Text, "3 new") {
		t.Errorf("count line %q", w.count.Text)
	}
	w.pause.SetChecked(false)
	if got := shownLines(w); len(got) != 8 || !strings.Contains(got[7], "while paused 2") {
		t.Errorf("after pause: %q", got)
	}

	// Copy puts the lines shown on the clipboard.
	w.filter.SetText("while paused")
	test.Tap(findButton(t, w.win.Content(), "Copy"))
	clip := w.app.Clipboard().Content()
	if strings.Count(clip, "\n") != 3 || !strings.Contains(clip, "INFO  while paused 0") {
		t.Errorf("clipboard %q", clip)
	}

	// Closing the window stops reading; showing it again reads afresh.
	w.hide() // the close button
	if w.feed != nil {
		t.Error("still reading while hidden")
	}
	addRecord(ring, slog.LevelWarn, "while hidden")
	w.Show()
	if got := shownLines(w); len(got) != 3 {
		t.Errorf("shown again, the filter kept: %q", got)
	}
	w.filter.SetText("")
	if got := shownLines(w); len(got) != 9 || !strings.Contains(got[8], "WARN  while hidden") {
		t.Errorf("shown again: %q", got)
	}
}

// A reader that falls behind reads again from a fresh snapshot.
func TestLogsWindowResubscribesWhenBehind(t *testing.T) {
	ring := logring.New(logring.Options{Size: 100, SubscriberMax: 4})
	w, tt := openLogs(t, ring)
	for i := range 50 { // more than the subscriber's queue, with no Fyne thread running
		addRecord(ring, slog.LevelInfo, fmt.Sprint("burst ", i))
	}
	tt.runUntil(t, "the fresh snapshot", func() bool {
		got := shownLines(w)
		return len(got) == 50 && strings.Contains(got[49], "burst 49")
	})
}

// findButton is the button labelled label among root's laid-out objects.
func findButton(t *testing.T, root fyne.CanvasObject, label string) *widget.Button {
	t.Helper()
	for _, o := range test.LaidOutObjects(root) {
		if b, ok := o.(*widget.Button); ok && b.Text == label {
			return b
		}
	}
	t.Fatalf("no %q button", label)
	return nil
}

// TestLogsScreenshot renders the Logs window with Fyne's software painter
// and checks the picture; written to the test's temporary directory, or to
// docs/screenshots/logs.png with PORTHOLE_UPDATE_SCREENSHOTS=1.
func TestLogsScreenshot(t *testing.T) {
	ring := logring.New(logring.Options{Level: slog.LevelDebug})
	log := slog.New(logring.Tee(ring, slog.DiscardHandler))
	log.Info("control API listening", "addr", "127.0.0.1:9090")
	log.Info("proxy listening", "addr", "127.0.0.1:8088", "mode", "tunnel")
	log.Info("tunnel connected", "exit", "wss://exit.example/porthole", "rtt", "23ms")
	log.Debug("relay ended", "conn", "d4ot7e0k5dfc73b2ug60", "up", 517, "down", 4420)
	log.Info("dial failed", "conn", "d4ot7e1k5dfc73b2ug6g", "target", "printer.local:631", "route", "bypass", "err", "no such host")
	log.Warn("the system proxy was not set; the proxy runs anyway", "err", "no backend for this desktop")
	log.Error("the exit refused the token", "exit", "wss://exit.example/porthole")
	w, _ := openLogs(t, ring)
	w.app.Settings().SetTheme(themeForScreenshots())
	w.level.SetSelected("Debug")
	w.win.Resize(fyne.NewSize(900, 340))
	w.win.Content().Refresh()
	img := w.win.Canvas().Capture()
	if n := countColours(img, 1000); n < 16 {
		t.Errorf("screenshot has %d colours; a rendered list has text and controls", n)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "logs.png")
	if os.Getenv("PORTHOLE_UPDATE_SCREENSHOTS") == "1" {
		out = filepath.Join("..", "docs", "screenshots", "logs.png")
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("logs screenshot: %s (%d bytes)", out, buf.Len())
}

func themeForScreenshots() fyne.Theme { return theme.DefaultTheme() }
