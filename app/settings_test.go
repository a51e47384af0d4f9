package app

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"porthole/app/config"
	"porthole/internal/connecttest"
	"porthole/internal/filetest"
)

// connectThrough opens an HTTP CONNECT tunnel to target through the proxy
// at proxy and returns the connection with the proxy's answer.
func connectThrough(t *testing.T, proxy, target string) (net.Conn, int) {
	t.Helper()
	c, _, resp, err := connecttest.Dial(proxy, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, resp.StatusCode
}

// secondConnect opens a tunnel through the proxy at proxy and keeps it
// open (the test fails unless it is answered 200), then returns the answer
// to a second CONNECT: what a connection limit decides.
func secondConnect(t *testing.T, proxy, target string) int {
	t.Helper()
	if _, code := connectThrough(t, proxy, target); code != http.StatusOK {
		t.Fatalf("first tunnel through %s: %d", proxy, code)
	}
	_, code := connectThrough(t, proxy, target)
	return code
}

// TestSaveSettingsMaxConnsRestartsTheEngine: max_conns is read when the
// engine is built, so changing it through the settings path must rebuild
// the engine: past the new limit a client gets the limit's answer (503).
// (Before config.Diff neither hand-written list had max_conns.)
func TestSaveSettingsMaxConnsRestartsTheEngine(t *testing.T) {
	c := startController(t, directSettings(), nil)
	target := origin(t)
	path := filepath.Join(t.TempDir(), "config.json")
	saved, err := c.SaveSettings(path, func(cfg *config.Config) { cfg.MaxConns = 1 })
	if err != nil || saved.StartErr != nil {
		t.Fatalf("SaveSettings: %v, start %v", err, saved.StartErr)
	}
	if !saved.Changes.Has("max_conns") || !saved.Changes.Need(config.EffectRestart) {
		t.Errorf("changes %+v, want max_conns needing a restart", saved.Changes)
	}
	if code := secondConnect(t, c.Status().Addr, target); code != http.StatusServiceUnavailable {
		t.Fatalf("a second connection with max_conns 1: status %d, want 503 (the engine kept its old limit)", code)
	}
	if got, err := config.Load(path); err != nil || got.MaxConns != 1 {
		t.Errorf("saved max_conns %d, %v", got.MaxConns, err)
	}

	// And back through Apply alone: the limit goes with it.
	cfg := c.Config()
	cfg.MaxConns = 0
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if code := secondConnect(t, c.Status().Addr, target); code != http.StatusOK {
		t.Fatalf("a second connection with the default limit: status %d", code)
	}
}

// TestSaveSettingsNoRestartForLogLevel: a field the engine does not read
// is saved without touching the running proxy.
func TestSaveSettingsNoRestartForLogLevel(t *testing.T) {
	c := startController(t, directSettings(), nil)
	first := c.Status().Addr
	held, code := connectThrough(t, first, origin(t))
	if code != http.StatusOK {
		t.Fatal(code)
	}
	defer held.Close()
	path := filepath.Join(t.TempDir(), "config.json")
	saved, err := c.SaveSettings(path, func(cfg *config.Config) { cfg.LogLevel = "debug" })
	if err != nil || saved.Changes.Need(config.EffectRestart) {
		t.Fatalf("SaveSettings: %v, changes %+v", err, saved.Changes)
	}
	if _, err := held.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(held), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the tunnel opened before the save: %v %v", resp, err)
	}
}

// TestSaveSettingsRefusedChangesNothing: settings the engine would refuse
// are neither written nor taken.
func TestSaveSettingsRefusedChangesNothing(t *testing.T) {
	t.Setenv("PORTHOLE_TOKEN", "")
	c := NewController(directSettings(), nil, quiet)
	defer c.Close()
	path := filetest.Write(t, "config.json", "{}\n")
	_, err := c.SaveSettings(path, func(cfg *config.Config) {
		cfg.Mode, cfg.Exit = "tunnel", "wss://127.0.0.1:1/porthole"
	})
	if err == nil {
		t.Fatal("tunnel mode without a token was saved")
	}
	if c.Config().Mode != "direct" {
		t.Errorf("refused settings were taken: %+v", c.Config())
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "{}\n" {
		t.Errorf("the file was changed: %q %v", b, err)
	}
	if _, err := c.SaveSettings(path, func(cfg *config.Config) { cfg.Listen = "nope" }); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("invalid listen: %v", err)
	}
	dir := t.TempDir() // a directory where the file should be: unreadable
	if _, err := c.SaveSettings(dir, func(cfg *config.Config) { cfg.History = 5 }); err == nil {
		t.Error("saved over a config path that cannot be read")
	}
}

// TestSaveSettingsSetsAsideWhatItMustNotOverwrite: a broken file, and one
// with fields a newer Porthole wrote, are kept whole beside the new one.
func TestSaveSettingsSetsAsideWhatItMustNotOverwrite(t *testing.T) {
	for _, tc := range []struct{ content, suffix string }{
		{`{"mode": "sideways"}`, ".broken-"},
		{`{"mode": "direct", "plugins": []}`, ".newer-"},
	} {
		c := NewController(directSettings(), nil, quiet)
		path := filetest.Write(t, "config.json", tc.content)
		saved, err := c.SaveSettings(path, func(cfg *config.Config) { cfg.History = 7 })
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(saved.SetAside, tc.suffix) || saved.SetAsideWhy == nil {
			t.Errorf("%s: set aside as %q (%v), want a %s copy", tc.content, saved.SetAside, saved.SetAsideWhy, tc.suffix)
		}
		if b, err := os.ReadFile(saved.SetAside); err != nil || string(b) != tc.content {
			t.Errorf("%s: the copy holds %q, %v", tc.content, b, err)
		}
		if got, err := config.Load(path); err != nil || got.History != 7 {
			t.Errorf("%s: the new file: %+v, %v", tc.content, got, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHoldForConfigStartsOnlyOnDefaultsWhenAsked: with the config file
// unusable the proxy does not start until the user chooses the defaults;
// the file is then set aside.
func TestHoldForConfigStartsOnlyOnDefaultsWhenAsked(t *testing.T) {
	broken := `{"mode": "tunnel", "exit": 42}`
	path := filetest.Write(t, "config.json", broken)
	_, problem := config.Load(path)
	if !errors.Is(problem, config.ErrInvalid) {
		t.Fatalf("Load: %v", problem)
	}
	c := NewController(directSettings(), nil, quiet)
	defer c.Close()
	c.HoldForConfig(problem)
	if err := c.Start(); !errors.Is(err, ErrConfigUnusable) {
		t.Fatalf("Start while held: %v, want ErrConfigUnusable", err)
	}
	if st := c.Status(); st.State != StateStopped || !errors.Is(st.ConfigProblem, config.ErrInvalid) {
		t.Fatalf("held: %+v", st)
	}
	aside, err := c.StartOnDefaults(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(aside); err != nil || string(b) != broken {
		t.Errorf("set aside as %s: %q, %v", aside, b, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the broken file is still in place: %v", err)
	}
	if st := c.Status(); st.State != StateRunning || st.ConfigProblem != nil || st.Mode != "direct" {
		t.Fatalf("after StartOnDefaults: %+v", st)
	}
}

// TestSaveSettingsEndsTheHold: saving settings replaces the unusable file,
// so the proxy may start again (it is not started by the save).
func TestSaveSettingsEndsTheHold(t *testing.T) {
	path := filetest.Write(t, "config.json", `{"listen": 8088}`)
	_, problem := config.Load(path)
	c := NewController(directSettings(), nil, quiet)
	defer c.Close()
	c.HoldForConfig(problem)
	saved, err := c.SaveSettings(path, func(cfg *config.Config) { cfg.History = 3 })
	if err != nil || !strings.Contains(saved.SetAside, ".broken-") {
		t.Fatalf("SaveSettings: %v, set aside %q", err, saved.SetAside)
	}
	if st := c.Status(); st.State != StateStopped || st.ConfigProblem != nil {
		t.Fatalf("after saving: %+v", st)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
}

// TestSaveSettingsTurnsTheSystemProxyOnAndOff: system_proxy is applied by
// the settings path itself, without a restart, and put back when turned
// off.
func TestSaveSettingsTurnsTheSystemProxyOnAndOff(t *testing.T) {
	sys := gnomeSysproxy(t)
	before := gsettingsGet(t, "org.gnome.system.proxy", "mode")
	c := startController(t, directSettings(), sys)
	addr := c.Status().Addr
	path := filepath.Join(t.TempDir(), "config.json")
	saved, err := c.SaveSettings(path, func(cfg *config.Config) { cfg.SystemProxy = true })
	if err != nil || saved.SystemProxyErr != nil || saved.Changes.Need(config.EffectRestart) {
		t.Fatalf("turning it on: %v, %v, changes %+v", err, saved.SystemProxyErr, saved.Changes)
	}
	_, port, _ := net.SplitHostPort(addr)
	if got := gsettingsGet(t, "org.gnome.system.proxy.http", "port"); got != port || !c.Status().SystemProxy {
		t.Fatalf("system proxy port %s (set %v), want %s", got, c.Status().SystemProxy, port)
	}
	if c.Status().Addr != addr {
		t.Errorf("the proxy restarted for system_proxy: %s → %s", addr, c.Status().Addr)
	}
	if _, err := c.SaveSettings(path, func(cfg *config.Config) { cfg.SystemProxy = false }); err != nil {
		t.Fatal(err)
	}
	if got := gsettingsGet(t, "org.gnome.system.proxy", "mode"); got != before || c.Status().SystemProxy {
		t.Fatalf("after turning it off: mode %s (want %s), status %+v", got, before, c.Status())
	}
}
