package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"porthole/app/config"
	"porthole/app/sysproxy"
	"porthole/core"
	"porthole/internal/desktoptest"
	"porthole/internal/fetch"
)

// gnomeSysproxy is a real system proxy for the test: gsettings writing a
// keyfile in a temporary HOME. It skips where gsettings cannot run.
func gnomeSysproxy(t *testing.T) *sysproxy.Manager {
	t.Helper()
	_, home := desktoptest.GSettings(t)
	b, err := sysproxy.Detect(quiet)
	if err != nil {
		t.Skipf("no GNOME system proxy here: %v", err)
	}
	return sysproxy.NewManager(b, filepath.Join(home, sysproxy.JournalName), quiet)
}

func gsettingsGet(t *testing.T, schema, key string) string {
	t.Helper()
	out, err := exec.Command("gsettings", "get", schema, key).CombinedOutput()
	if err != nil {
		t.Fatalf("gsettings get %s %s: %v: %s", schema, key, err, out)
	}
	return strings.TrimSpace(string(out))
}

// startController starts a controller of cfg with the system proxy
// manager sys (nil: none), closed when the test ends.
func startController(t *testing.T, cfg config.Config, sys *sysproxy.Manager) *Controller {
	t.Helper()
	c := NewController(cfg, sys, quiet)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

func directSettings() config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Bypass = []string{}
	return cfg
}

// waitFor waits for the controller's status to satisfy cond.
func waitFor(t *testing.T, c *Controller, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ch := c.Changed()
		if st := c.Status(); cond(st) {
			return st
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s within 10 s; status %+v", what, c.Status())
		}
	}
}

// origin answers "hi" to every request on loopback until the test ends
// and returns its host:port.
func origin(t *testing.T) string {
	return httpOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hi") }))
}

func TestControllerStartStopAndSystemProxy(t *testing.T) {
	sys := gnomeSysproxy(t)
	before := gsettingsGet(t, "org.gnome.system.proxy", "mode")
	c := NewController(directSettings(), sys, quiet)
	defer c.Close()
	if st := c.Status(); st.State != StateStopped || st.SystemProxy {
		t.Fatalf("new controller: %+v", st)
	}
	if err := c.SetSystemProxy(true); err != nil {
		t.Fatal(err) // wanted while stopped: applied at start
	}
	if c.Status().SystemProxy {
		t.Fatal("the system proxy was set while the proxy is stopped")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if st.State != StateRunning || st.Addr == "" || !st.SystemProxy {
		t.Fatalf("after Start: %+v", st)
	}
	_, port, _ := net.SplitHostPort(st.Addr)
	if got := gsettingsGet(t, "org.gnome.system.proxy.http", "port"); got != port {
		t.Fatalf("system proxy port %s, want %s", got, port)
	}
	if got := fetch.Via(t, st.Addr, "http://"+origin(t)+"/"); got != "hi" {
		t.Fatalf("through the proxy: %q", got)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.State != StateStopped || st.SystemProxy || st.Addr != "" {
		t.Fatalf("after Stop: %+v", st)
	}
	if got := gsettingsGet(t, "org.gnome.system.proxy", "mode"); got != before {
		t.Fatalf("after Stop the proxy mode is %s, want the user's %s", got, before)
	}
	// Still wanted: the next start sets it again; turning it off puts it back.
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if !c.Status().SystemProxy {
		t.Fatal("the system proxy was not set again at the second start")
	}
	if err := c.SetSystemProxy(false); err != nil {
		t.Fatal(err)
	}
	if got := gsettingsGet(t, "org.gnome.system.proxy", "mode"); got != before || c.Status().SystemProxy {
		t.Fatalf("after turning it off: mode %s, status %+v", got, c.Status())
	}
}

// TestControllerFailedStartLeavesNothing: a taken port fails the start,
// says why, and the system proxy is never pointed at a proxy that is not
// there.
func TestControllerFailedStartLeavesNothing(t *testing.T) {
	sys := gnomeSysproxy(t)
	before := gsettingsGet(t, "org.gnome.system.proxy", "mode")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := directSettings()
	cfg.Listen = taken.Addr().String()
	cfg.SystemProxy = true
	c := NewController(cfg, sys, quiet)
	defer c.Close()
	if err := c.Start(); !errors.Is(err, core.ErrPortInUse) {
		t.Fatalf("Start on a taken port: %v, want ErrPortInUse", err)
	}
	st := c.Status()
	if st.State != StateFailed || !errors.Is(st.Err, core.ErrPortInUse) || st.SystemProxy {
		t.Fatalf("after a failed start: %+v", st)
	}
	if got := gsettingsGet(t, "org.gnome.system.proxy", "mode"); got != before {
		t.Fatalf("a failed start changed the system proxy mode to %s", got)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.State != StateStopped {
		t.Fatalf("Stop after a failed start: %+v", st)
	}
}

// TestControllerApply: a change the engine depends on restarts it (and the
// system proxy follows the new port) and the registry's history survives;
// other changes do not restart.
func TestControllerApply(t *testing.T) {
	sys := gnomeSysproxy(t)
	cfg := directSettings()
	cfg.SystemProxy = true
	c := startController(t, cfg, sys)
	first := c.Status().Addr
	if got := fetch.Via(t, first, "http://"+origin(t)+"/"); got != "hi" {
		t.Fatalf("through the proxy: %q", got)
	}

	quietChange := c.Config()
	quietChange.LogLevel = "debug"
	if err := c.Apply(quietChange); err != nil {
		t.Fatal(err)
	}
	if addr := c.Status().Addr; addr != first {
		t.Fatalf("a log level change restarted the proxy: %s → %s", first, addr)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	next := ln.Addr().String()
	ln.Close() // free for the proxy; a race with another process is unlikely on loopback
	moved := c.Config()
	moved.Listen = next
	if err := c.Apply(moved); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, c, "the proxy on the new port", func(s Status) bool { return s.State == StateRunning && s.Addr == next })
	_, port, _ := net.SplitHostPort(st.Addr)
	if got := gsettingsGet(t, "org.gnome.system.proxy.http", "port"); got != port || !st.SystemProxy {
		t.Fatalf("after moving: system proxy port %s (set %v), want %s", got, st.SystemProxy, port)
	}
	if tot := c.Registry().Totals(); tot.Opened < 1 {
		t.Fatalf("the registry lost the connection made before the restart: %+v", tot)
	}
	bad := c.Config()
	bad.Listen = "nope"
	if err := c.Apply(bad); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Apply of invalid settings: %v", err)
	}
	if c.Config().Listen != next {
		t.Fatal("invalid settings were taken")
	}
}

func TestControllerClose(t *testing.T) {
	c := NewController(directSettings(), nil, quiet)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSystemProxy(true); !errors.Is(err, sysproxy.ErrUnsupported) {
		t.Fatalf("SetSystemProxy without a backend: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Start(); !errors.Is(err, ErrControllerClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}
