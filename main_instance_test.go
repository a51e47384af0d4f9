package main

import (
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"porthole/internal/desktoptest"
)

// A second porthole with the same config, on a real X display, brings the
// first one's connections window to the front and exits 0; the first
// keeps running. A second one with another config runs beside it.
func TestSecondLaunchShowsTheFirstAndExits(t *testing.T) {
	display := desktoptest.Xvfb(t)
	bus := desktoptest.SessionBus(t) // no StatusNotifier host on it: the main window shows
	home := t.TempDir()
	env := append(os.Environ(),
		"DISPLAY="+display, "WAYLAND_DISPLAY=", "DBUS_SESSION_BUS_ADDRESS="+bus,
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_CURRENT_DESKTOP=")
	cfg := filepath.Join(home, "porthole.json")
	if err := os.WriteFile(cfg, []byte(`{"listen":"127.0.0.1:0","mode":"direct","start_proxy":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	first := startPortholeEnv(t, env, "--config", cfg)
	first.WaitFor(t, regexp.MustCompile(`main window shown`))

	second := startPortholeEnv(t, env, "--config", cfg)
	second.WaitFor(t, regexp.MustCompile(`already running: its connections window was brought to the front`))
	if code, rest := second.Wait(t); code != 0 {
		t.Fatalf("second launch exited %d, want 0; stderr:\n%s", code, rest)
	}
	first.WaitFor(t, regexp.MustCompile(`started again: showing the connections window`))
	desktoptest.WaitForWindows(t, display, "Porthole — Connections")

	// Relative and absolute spellings of one config file are one app.
	third := startPortholeEnv(t, env, "--config", home+"/./porthole.json")
	if code, rest := third.Wait(t); code != 0 {
		t.Fatalf("third launch exited %d, want 0; stderr:\n%s", code, rest)
	}

	first.Stop(t, syscall.SIGTERM)
}
