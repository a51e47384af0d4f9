package ui

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"porthole/app"
	"porthole/internal/freeport"
)

// guiFromFile is the GUI as main builds it for a config file holding
// content: ParseArgs reads the file (and --listen, when given), and the
// controls show in the tray menu and in a main window.
func guiFromFile(t *testing.T, content string, args ...string) (*gui, string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := app.ParseArgs(append([]string{"--config", path}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g := newTestGUIFor(t, opts.Config, Options{ConfigPath: path, ConfigProblem: opts.ConfigProblem, ConfigWarning: opts.ConfigWarning})
	g.window = newMainWindow(g, fmt.Errorf("%w: a test", errNoTray))
	return g, path
}

// TestGUIHoldsStoppedForABrokenConfig: a file that says tunnel mode but
// cannot be used must not become direct mode unasked. The proxy stays
// stopped, the tray and the main window name the file and the field, and
// only Start with defaults starts it, setting the file aside and naming
// where it went.
func TestGUIHoldsStoppedForABrokenConfig(t *testing.T) {
	broken := "{\n  \"mode\": \"tunnel\",\n  \"exit\": 42\n}\n"
	g, path := guiFromFile(t, broken, "--listen", "127.0.0.1:0")
	g.begin()
	g.redraw()
	if st := g.ctl.Status(); st.State != app.StateStopped || st.ConfigProblem == nil {
		t.Fatalf("with a broken config: %+v", st)
	}
	if want := "Not started: config.json line 3 (exit) is wrong"; g.tray.status.Label != want {
		t.Errorf("tray status %q, want %q", g.tray.status.Label, want)
	}
	if g.tray.startStop.Label != "Start with defaults" || g.window.startStop.Text != "Start with defaults" {
		t.Errorf("start items %q, %q; want Start with defaults", g.tray.startStop.Label, g.window.startStop.Text)
	}
	if g.iconShown != iconError {
		t.Errorf("icon %v, want error", g.iconShown.Name())
	}
	if p := g.window.problem; !p.Visible() || !strings.Contains(p.Text, path+":3:") || !strings.Contains(p.Text, "exit") {
		t.Errorf("main window problem %q (visible %v) should name %s:3 and exit", p.Text, p.Visible(), path)
	}
	if !g.tray.modeDirect.Disabled || !g.tray.systemProxy.Disabled || !g.window.mode.Disabled() || !g.window.systemProxy.Disabled() {
		t.Error("mode and system proxy stay clickable while held; a click would replace the file with the defaults")
	}
	if err := g.ctl.Start(); !errors.Is(err, app.ErrConfigUnusable) {
		t.Errorf("a plain Start with the file unusable: %v, want ErrConfigUnusable", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != broken {
		t.Fatalf("the broken file was touched before the user chose: %q %v", data, err)
	}

	click(t, g, g.tray.startStop)
	if st := g.ctl.Status(); st.State != app.StateRunning || st.ConfigProblem != nil || st.Mode != "direct" {
		t.Fatalf("after Start with defaults: %+v", st)
	}
	aside := brokenCopy(t, path, ".broken-*", []byte(broken))
	if n := g.window.fileNote; !n.Visible() || !strings.Contains(n.Text, aside) || g.window.problem.Visible() {
		t.Errorf("main window note %q (visible %v), problem visible %v; want the note to name %s", n.Text, n.Visible(), g.window.problem.Visible(), aside)
	}
	if g.tray.startStop.Label != "Stop" || g.tray.modeDirect.Disabled || g.tray.systemProxy.Disabled {
		t.Errorf("after starting: start/stop %q, direct disabled %v, system proxy disabled %v",
			g.tray.startStop.Label, g.tray.modeDirect.Disabled, g.tray.systemProxy.Disabled)
	}
}

// TestGUIStartsOnTheKnownFieldsOfANewerFile: fields a newer Porthole wrote
// are shown, not fatal; the proxy starts on the file's own settings and
// the file is left as it is.
func TestGUIStartsOnTheKnownFieldsOfANewerFile(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeport.Loopback(t))
	newer := fmt.Sprintf("{\n  \"listen\": \"127.0.0.1:%s\",\n  \"plugins\": [{\"deny\": \"*\"}]\n}\n", port)
	g, path := guiFromFile(t, newer)
	g.begin()
	g.redraw()
	st := g.ctl.Status()
	if st.State != app.StateRunning || st.Addr != net.JoinHostPort("127.0.0.1", port) || st.ConfigProblem != nil {
		t.Fatalf("with unknown fields: %+v; want running on the file's port %s", st, port)
	}
	if n := g.window.fileNote; !n.Visible() || !strings.Contains(n.Text, `"plugins"`) || !strings.Contains(n.Text, "until you save") {
		t.Errorf("main window note %q (visible %v) should name the unknown field", n.Text, n.Visible())
	}
	if g.window.problem.Visible() {
		t.Errorf("unknown fields shown as a problem: %q", g.window.problem.Text)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != newer {
		t.Errorf("the file was rewritten: %q %v", data, err)
	}
}
