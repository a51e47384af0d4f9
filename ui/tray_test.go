package ui

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"porthole/app"
	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/core/rules"
	"porthole/internal/chantest"
)

// newTestGUI is the GUI's state around a real controller (on a free
// loopback port, no system proxy backend) in Fyne's test app, with the
// worker running; the watcher is not started, the tests redraw with
// redraw so each step is deterministic.
func newTestGUI(t *testing.T) *gui {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg")) // autostart looks there
	return newTestGUIFor(t, loopbackConfig(), Options{ConfigPath: filepath.Join(dir, "config.json")})
}

// newTestGUIFor is newTestGUI with the given settings and options (main's
// ParseArgs gives both); XDG_CONFIG_HOME is the caller's to set.
func newTestGUIFor(t *testing.T, cfg config.Config, opts Options) *gui {
	t.Helper()
	t.Setenv("PORTHOLE_TOKEN", "")
	a := test.NewTempApp(t)
	log := testLogger(t)
	opts.Log = log
	ctl := app.NewController(cfg, nil, log)
	g := &gui{
		fyne: a, ctl: ctl, log: log,
		opts:    opts,
		actions: make(chan func(), 8),
		poke:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	g.wg.Go(g.work)
	t.Cleanup(func() {
		close(g.done)
		g.wg.Wait()
		if err := ctl.Close(); err != nil {
			t.Error(err)
		}
	})
	g.tray = newTrayMenu(g)
	return g
}

// redraw shows the controller's current state, as the watcher does.
func (g *gui) redraw() { g.apply(viewOf(g.gather(nil, true))) }

// click runs item's action and waits until the worker has done what it
// queued.
func click(t *testing.T, g *gui, item *fyne.MenuItem) {
	t.Helper()
	if item.Disabled {
		t.Fatalf("%q is disabled", item.Label)
	}
	item.Action()
	chantest.Within(t, 20*time.Second, "the end of the action of "+item.Label, g.poke)
	g.redraw()
}

func menuLabels(m *fyne.Menu) []string {
	var labels []string
	for _, it := range m.Items {
		if !it.IsSeparator {
			labels = append(labels, it.Label)
		}
	}
	return labels
}

func TestTrayMenuShowsEachStateInTheSameMenu(t *testing.T) {
	g := newTestGUI(t)
	tm := g.tray
	menu, items := tm.menu, slices.Clone(tm.menu.Items)
	sameMenu := func(when string) {
		t.Helper()
		if tm.menu != menu || !slices.Equal(tm.menu.Items, items) {
			t.Fatalf("%s: the menu or its items were replaced; the tray keeps one menu", when)
		}
	}

	g.redraw()
	sameMenu("stopped")
	if got, want := menuLabels(tm.menu), []string{"Stopped", "Start", "System proxy", "Mode: Direct",
		"Connections…", "Logs…", "Open dashboard", "Settings…", "Copy terminal env", "Start at login", "About Porthole", "Quit"}; !slices.Equal(got, want) {
		t.Fatalf("stopped menu %q, want %q", got, want)
	}
	if !tm.status.Disabled || tm.startStop.Disabled {
		t.Error("the status line is not clickable, Start is")
	}
	if !tm.modeDirect.Checked || tm.modeTunnel.Checked || !tm.modeTunnel.Disabled ||
		!strings.Contains(tm.modeTunnel.Label, "exit server") {
		t.Errorf("mode: direct %v, tunnel %q checked=%v disabled=%v", tm.modeDirect.Checked,
			tm.modeTunnel.Label, tm.modeTunnel.Checked, tm.modeTunnel.Disabled)
	}
	if g.iconShown != iconOff {
		t.Errorf("icon %v, want off", g.iconShown.Name())
	}

	click(t, g, tm.startStop)
	sameMenu("running")
	if st := g.ctl.Status(); st.State != app.StateRunning {
		t.Fatalf("after Start: %v (%v)", st.State, st.Err)
	}
	if tm.status.Label != "Running · 0 connections · ↓ 0 B/s ↑ 0 B/s" || tm.startStop.Label != "Stop" {
		t.Errorf("running: %q, %q", tm.status.Label, tm.startStop.Label)
	}
	if g.iconShown != iconDirect {
		t.Errorf("icon %v, want direct", g.iconShown.Name())
	}

	// A taken port: the new listen address makes Apply restart and fail.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := g.ctl.Config()
	cfg.Listen = ln.Addr().String()
	if err := g.ctl.Apply(cfg); err == nil {
		t.Fatal("Apply on a taken port did not fail")
	}
	g.redraw()
	sameMenu("failed")
	_, port, _ := net.SplitHostPort(cfg.Listen)
	if want := "Error: port " + port + " in use"; tm.status.Label != want || tm.startStop.Label != "Start" {
		t.Errorf("failed: %q, %q; want %q, Start", tm.status.Label, tm.startStop.Label, want)
	}
	if g.iconShown != iconError {
		t.Errorf("icon %v, want error", g.iconShown.Name())
	}

	click(t, g, tm.startStop) // retries and fails again
	sameMenu("failed again")
	if g.ctl.Status().State != app.StateFailed {
		t.Errorf("start on a taken port: %v", g.ctl.Status().State)
	}
	if tm.refreshes < 4 {
		t.Errorf("%d menu refreshes for 4 redraws", tm.refreshes)
	}
}

func TestTrayModeSwitchAppliesAndSaves(t *testing.T) {
	g := newTestGUI(t)
	tm := g.tray
	cfg := g.ctl.Config()
	cfg.Exit = "wss://127.0.0.1:1/porthole" // loopback, where nothing answers
	if err := g.ctl.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if err := g.ctl.Start(); err != nil {
		t.Fatal(err)
	}
	g.redraw()
	if tm.modeTunnel.Disabled || tm.modeTunnel.Label != "Tunnel" {
		t.Fatalf("an exit is set: tunnel %q disabled=%v", tm.modeTunnel.Label, tm.modeTunnel.Disabled)
	}

	// No token: the settings policy refuses tunnel mode before anything
	// is written, and the proxy keeps running as it was.
	click(t, g, tm.modeTunnel)
	if st := g.ctl.Status(); st.State != app.StateRunning || g.ctl.Config().Mode != string(outbound.ModeDirect) {
		t.Errorf("tunnel without a token: %v, mode %q; want direct, still running", st.State, g.ctl.Config().Mode)
	}
	if _, err := os.Stat(g.opts.ConfigPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused settings were written: %v", err)
	}

	cfg = g.ctl.Config()
	cfg.Token = "t"
	if err := g.ctl.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	click(t, g, tm.modeTunnel)
	saved, err := config.Load(g.opts.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Mode != string(outbound.ModeTunnel) || g.ctl.Config().Mode != string(outbound.ModeTunnel) {
		t.Errorf("mode in use %q, saved %q; want tunnel", g.ctl.Config().Mode, saved.Mode)
	}
	if st := g.ctl.Status(); st.State != app.StateRunning || !st.HasTunnel || !strings.HasPrefix(tm.status.Label, "Running (tunnel") {
		t.Errorf("tunnel mode: %v (tunnel %v), %q", st.State, st.HasTunnel, tm.status.Label)
	}
	if tm.mode.Label != "Mode: Tunnel" || !tm.modeTunnel.Checked || tm.modeDirect.Checked {
		t.Errorf("mode items: %q, tunnel %v, direct %v", tm.mode.Label, tm.modeTunnel.Checked, tm.modeDirect.Checked)
	}

	click(t, g, tm.modeDirect)
	if st := g.ctl.Status(); g.ctl.Config().Mode != string(outbound.ModeDirect) || st.HasTunnel {
		t.Errorf("back to direct: mode %q, state %v, tunnel %v", g.ctl.Config().Mode, st.State, st.HasTunnel)
	}
}

func TestTraySystemProxyWithoutBackend(t *testing.T) {
	g := newTestGUI(t)
	tm := g.tray
	g.redraw()
	if tm.systemProxy.Disabled || tm.systemProxy.Checked {
		t.Fatal("system proxy: not yet known to be unsupported, so it can be tried")
	}
	click(t, g, tm.systemProxy) // nil backend: ErrUnsupported
	if !tm.systemProxy.Disabled || !strings.Contains(tm.systemProxy.Label, "not available") {
		t.Errorf("after ErrUnsupported: %q disabled=%v", tm.systemProxy.Label, tm.systemProxy.Disabled)
	}
}

func TestTrayCopyTerminalEnv(t *testing.T) {
	g := newTestGUI(t)
	if err := g.ctl.Start(); err != nil {
		t.Fatal(err)
	}
	g.redraw()
	g.tray.copyEnv.Action()
	got := g.fyne.Clipboard().Content()
	addr := g.ctl.Status().Addr
	if !strings.Contains(got, "http_proxy='http://"+addr+"'") && !strings.Contains(got, "http_proxy=http://"+addr) {
		t.Errorf("clipboard %q does not point at the running proxy %s", got, addr)
	}
}

// TestTrayModeRules: Rules needs no exit server when its rules send
// nothing to the tunnel; without rules (the default, the tunnel, would
// apply) it is greyed with the reason. The click saves it and the menu
// shows it checked.
func TestTrayModeRules(t *testing.T) {
	g := newTestGUI(t)
	tm := g.tray
	if err := g.ctl.Start(); err != nil {
		t.Fatal(err)
	}
	g.redraw()
	if !tm.modeRules.Disabled || !strings.Contains(tm.modeRules.Label, "exit server") {
		t.Fatalf("no rules, no exit: rules item %q disabled %v", tm.modeRules.Label, tm.modeRules.Disabled)
	}
	if _, err := g.ctl.SaveSettings(g.opts.ConfigPath, func(c *config.Config) {
		c.Rules = []rules.Rule{{Kind: "match", Action: "direct"}}
	}); err != nil {
		t.Fatal(err)
	}
	g.redraw()
	if tm.modeRules.Disabled || tm.modeRules.Checked || tm.modeRules.Label != "Rules" {
		t.Fatalf("rules item: %q disabled %v checked %v", tm.modeRules.Label, tm.modeRules.Disabled, tm.modeRules.Checked)
	}
	click(t, g, tm.modeRules)
	saved, err := config.Load(g.opts.ConfigPath)
	if err != nil || saved.Mode != string(outbound.ModeRules) {
		t.Fatalf("saved %+v, %v", saved, err)
	}
	if st := g.ctl.Status(); st.State != app.StateRunning || tm.mode.Label != "Mode: Rules" || !tm.modeRules.Checked || tm.modeDirect.Checked {
		t.Errorf("rules mode: %v, %q, rules %v, direct %v", st.State, tm.mode.Label, tm.modeRules.Checked, tm.modeDirect.Checked)
	}
}
