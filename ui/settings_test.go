package ui

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"porthole/app"
	"porthole/app/autostart"
	"porthole/app/config"
	"porthole/internal/chantest"
)

// settingsEnv isolates a settings test: a temporary config path, an
// XDG_CONFIG_HOME of its own (Start at login writes there), no
// PORTHOLE_TOKEN from the caller's environment, and Fyne's test app.
func settingsEnv(t *testing.T) (path string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	t.Setenv("PORTHOLE_TOKEN", "")
	test.NewTempApp(t)
	return filepath.Join(dir, "porthole", "config.json")
}

// settingsFile is settingsEnv with data already in the config file.
func settingsFile(t *testing.T, data []byte) (path string) {
	t.Helper()
	path = settingsEnv(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// loopbackConfig is the defaults on a free loopback port.
func loopbackConfig() config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

// testController is a controller of loopbackConfig, closed when the test
// ends.
func testController(t *testing.T) *app.Controller {
	ctl := app.NewController(loopbackConfig(), nil, testLogger(t))
	t.Cleanup(func() { _ = ctl.Close() })
	return ctl
}

// startController starts a controller of cfg, closed when the test ends.
func startController(t *testing.T, cfg config.Config) *app.Controller {
	t.Helper()
	ctl := app.NewController(cfg, nil, testLogger(t))
	t.Cleanup(func() { _ = ctl.Close() })
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	return ctl
}

// saveConfig writes cfg as the config file at path.
func saveConfig(t *testing.T, path string, cfg config.Config) {
	t.Helper()
	if err := config.Save(path, cfg); err != nil {
		t.Fatal(err)
	}
}

// openSettings shows the settings window for ctl and returns it with a
// channel that gets each Apply's result; the window (and its Exits
// section) is closed when the test ends.
func openSettings(t *testing.T, ctl *app.Controller, path string) (*settingsWindow, <-chan error) {
	t.Helper()
	s := newSettings(fyne.CurrentApp(), ctl, path)
	done := make(chan error, 1)
	s.onApplied = func(err error) { done <- err }
	// The test driver runs fyne.Do in place: no refresher of the Exits
	// section behind the test's back, its buttons' work on this goroutine.
	s.exitsRefresh, s.exitsWork = 0, func(f func()) { f() }
	s.Show()
	if s.win == nil {
		t.Fatal("Show opened no window")
	}
	t.Cleanup(func() {
		x := s.exits
		if s.win != nil {
			s.win.Close()
		}
		if x != nil {
			x.close() // what the window's close started; waited for here
		}
	})
	return s, done
}

// tapApply taps Apply and waits for its result.
func tapApply(t *testing.T, s *settingsWindow, done <-chan error) error {
	t.Helper()
	if s.apply.Disabled() {
		t.Fatalf("Apply is disabled; status %q", s.status.Text)
	}
	test.Tap(s.apply)
	return chantest.Within(t, 20*time.Second, "Apply's result", done)
}

// retype replaces an entry's text the way a user does: select nothing,
// clear, type.
func retype(e interface {
	SetText(string)
	TypedRune(rune)
}, text string) {
	e.SetText("")
	for _, r := range text {
		e.TypedRune(r)
	}
}

func TestSettingsInvalidListenShowsProblemAndDisablesApply(t *testing.T) {
	path := settingsEnv(t)
	ctl := testController(t)
	s, _ := openSettings(t, ctl, path)
	problem := s.form.problems[fieldListen]
	if s.apply.Disabled() || problem.Visible() {
		t.Fatalf("the defaults should be valid: apply disabled %v, problem %q", s.apply.Disabled(), problem.Text)
	}

	retype(s.form.listenPort, "99999")
	if !s.apply.Disabled() {
		t.Error("Apply stays enabled with port 99999")
	}
	if !problem.Visible() || !strings.Contains(problem.Text, `"99999"`) {
		t.Errorf("listen problem = %q (visible %v), want it to name port \"99999\"", problem.Text, problem.Visible())
	}
	if s.status.Text != problem.Text {
		t.Errorf("status line = %q, want the first problem %q", s.status.Text, problem.Text)
	}

	retype(s.form.listenPort, "8088")
	retype(s.form.listenHost, "not a host")
	if !s.apply.Disabled() || !strings.Contains(problem.Text, `"not a host"`) {
		t.Errorf("host %q: apply disabled %v, problem %q", "not a host", s.apply.Disabled(), problem.Text)
	}
	retype(s.form.listenHost, "")
	if !s.apply.Disabled() || !strings.Contains(problem.Text, "no host") {
		t.Errorf("empty host: apply disabled %v, problem %q", s.apply.Disabled(), problem.Text)
	}

	retype(s.form.listenHost, "127.0.0.1")
	if s.apply.Disabled() || problem.Visible() || s.status.Text != "" {
		t.Errorf("fixed: apply disabled %v, problem %q visible %v, status %q",
			s.apply.Disabled(), problem.Text, problem.Visible(), s.status.Text)
	}
}

func TestSettingsBadBypassEntryIsNamed(t *testing.T) {
	path := settingsEnv(t)
	ctl := testController(t)
	s, _ := openSettings(t, ctl, path)
	problem := s.form.problems[fieldBypass]
	for _, tc := range []struct{ text, want string }{
		{"localhost\n*.corp.example\nnot a host!\n10.0.0.0/8", `line 3: bypass entry "not a host!"`},
		{"localhost\n10.0.0.0/33", `line 2: bypass entry "10.0.0.0/33"`},
	} {
		retype(s.form.bypass, tc.text)
		if !s.apply.Disabled() || !problem.Visible() || !strings.Contains(problem.Text, tc.want) {
			t.Errorf("bypass %q: apply disabled %v, problem %q (visible %v), want it to contain %q",
				tc.text, s.apply.Disabled(), problem.Text, problem.Visible(), tc.want)
		}
	}
	retype(s.form.bypass, "localhost\n\n  *.corp.example  \n10.0.0.0/8\n")
	if s.apply.Disabled() || problem.Visible() {
		t.Errorf("a valid list with a blank line: apply disabled %v, problem %q", s.apply.Disabled(), problem.Text)
	}
	cfg, problems := s.form.values().config()
	if want := []string{"localhost", "*.corp.example", "10.0.0.0/8"}; len(problems) > 0 || !reflect.DeepEqual(cfg.Bypass, want) {
		t.Errorf("bypass read as %q (problems %v), want %q", cfg.Bypass, problems, want)
	}
}

func TestSettingsSecretsAreMasked(t *testing.T) {
	path := settingsEnv(t)
	ctl := testController(t)
	s, _ := openSettings(t, ctl, path)
	if !s.form.token.Password || !s.form.password.Password {
		t.Errorf("token entry password=%v, password entry password=%v; both must be masked",
			s.form.token.Password, s.form.password.Password)
	}
	if s.form.tokenSource.Visible() {
		t.Errorf("token source note %q shown with no override", s.form.tokenSource.Text)
	}
	retype(s.form.tokenFile, "/etc/porthole-token")
	if !s.form.tokenSource.Visible() || !strings.Contains(s.form.tokenSource.Text, "token file") {
		t.Errorf("with a token file, note = %q (visible %v)", s.form.tokenSource.Text, s.form.tokenSource.Visible())
	}
	test.Tap(s.cancel)
	if s.win != nil {
		t.Fatal("Cancel left the window open")
	}

	t.Setenv("PORTHOLE_TOKEN", "from-env")
	s.Show()
	if !s.form.tokenSource.Visible() || !strings.Contains(s.form.tokenSource.Text, "PORTHOLE_TOKEN") {
		t.Errorf("with PORTHOLE_TOKEN set, note = %q (visible %v)", s.form.tokenSource.Text, s.form.tokenSource.Visible())
	}
	if s.form.tokenFile.Text != "" {
		t.Errorf("Cancel kept the edit: token file %q", s.form.tokenFile.Text)
	}
}

// TestSettingsReportsBrokenFileAndSetsItAsideOnApply: a file that cannot
// be used is named with its field, left in place by opening the window,
// and set aside (kept, and named) only when Apply writes the new one.
func TestSettingsReportsBrokenFileAndSetsItAsideOnApply(t *testing.T) {
	broken := []byte("{\n  \"listen\": \"127.0.0.1:8088\",\n  \"mode\": \"sideways\"\n}\n")
	path := settingsFile(t, broken)
	ctl := testController(t)
	s, done := openSettings(t, ctl, path)
	if !s.fileNote.Visible() || !strings.Contains(s.fileNote.Text, path+":3:") || !strings.Contains(s.fileNote.Text, "mode") {
		t.Errorf("file note %q (visible %v) should name %s, line 3 and mode", s.fileNote.Text, s.fileNote.Visible(), path)
	}
	if data, err := os.ReadFile(path); err != nil || !bytes.Equal(data, broken) {
		t.Fatalf("opening Settings changed the broken file: %q %v", data, err)
	}
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (status %q)", err, s.status.Text)
	}
	aside := brokenCopy(t, path, ".broken-*", broken)
	if !strings.Contains(s.status.Text, aside) {
		t.Errorf("status %q should name %s", s.status.Text, aside)
	}
	if got, err := config.Load(path); err != nil || got.Mode != "direct" {
		t.Errorf("new file: %+v, %v", got, err)
	}

	// Broken again while the window is open: the next Apply does the same.
	if err := os.Remove(aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	retype(s.form.history, "10")
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (status %q)", err, s.status.Text)
	}
	aside = brokenCopy(t, path, ".broken-*", broken)
	if !strings.Contains(s.status.Text, aside) {
		t.Errorf("status %q should name %s", s.status.Text, aside)
	}
	if got, err := config.Load(path); err != nil || got.History != 10 {
		t.Errorf("new file: history %d, %v", got.History, err)
	}
}

// brokenCopy finds the one file set aside for path (pattern: its suffix),
// checks it holds content, and returns its path.
func brokenCopy(t *testing.T, path, pattern string, content []byte) string {
	t.Helper()
	matches, err := filepath.Glob(path + pattern)
	if err != nil || len(matches) != 1 {
		t.Fatalf("set-aside files %v, %v; want one", matches, err)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil || !bytes.Equal(data, content) {
		t.Fatalf("%s holds %q, %v; want the old file unchanged", matches[0], data, err)
	}
	return matches[0]
}

// TestSettingsUnknownFieldsAreNamedAndKeptOnApply: fields a newer
// Porthole wrote are named; Apply says they leave the file and keeps the
// old one; the fields the form does not show (max_conns) keep their value.
func TestSettingsUnknownFieldsAreNamedAndKeptOnApply(t *testing.T) {
	newer := []byte("{\n  \"listen\": \"127.0.0.1:0\",\n  \"max_conns\": 50,\n  \"plugins\": []\n}\n")
	path := settingsFile(t, newer)
	cfg, warning := config.Load(path)
	if !errors.Is(warning, config.ErrUnknownFields) {
		t.Fatalf("Load: %v", warning)
	}
	ctl := app.NewController(cfg, nil, testLogger(t))
	defer func() { _ = ctl.Close() }()
	s, done := openSettings(t, ctl, path)
	if !s.fileNote.Visible() || !strings.Contains(s.fileNote.Text, `"plugins"`) {
		t.Errorf("file note %q (visible %v) should name the unknown field", s.fileNote.Text, s.fileNote.Visible())
	}
	retype(s.form.history, "20")
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (status %q)", err, s.status.Text)
	}
	aside := brokenCopy(t, path, ".newer-*", newer)
	if !strings.Contains(s.status.Text, aside) || !strings.Contains(s.status.Text, "leaves them out") {
		t.Errorf("status %q should say the unknown fields leave the file and name %s", s.status.Text, aside)
	}
	if got, err := config.Load(path); err != nil || got.History != 20 || got.MaxConns != 50 {
		t.Errorf("new file: %+v, %v; want history 20 and max_conns kept at 50", got, err)
	}
}

func TestSettingsTunnelWithoutTokenIsNotSaved(t *testing.T) {
	path := settingsEnv(t)
	ctl := testController(t)
	s, done := openSettings(t, ctl, path)
	s.form.mode.SetSelected(modeTunnelLabel)
	if p := s.form.problems[fieldExit]; !s.apply.Disabled() || !p.Visible() || !strings.Contains(p.Text, "exit") {
		t.Errorf("tunnel without exit: apply disabled %v, exit problem %q", s.apply.Disabled(), p.Text)
	}
	retype(s.form.exit, "wss://exit.example.com/porthole")
	if err := tapApply(t, s, done); err == nil {
		t.Fatal("Apply of tunnel mode without a token succeeded")
	}
	if !strings.HasPrefix(s.status.Text, "Not saved") || !strings.Contains(s.status.Text, "token") {
		t.Errorf("status %q should say it was not saved for lack of a token", s.status.Text)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("config file written despite the refusal: %v", err)
	}
	if s.apply.Disabled() {
		t.Error("Apply stays disabled after a refused Apply")
	}
}

func TestSettingsStartAtLoginWritesAutostartEntry(t *testing.T) {
	path := settingsEnv(t)
	ctl := testController(t)
	s, done := openSettings(t, ctl, path)
	if s.form.startAtLogin.Checked || s.form.startAtLogin.Disabled() {
		t.Fatalf("start at login checked %v disabled %v with no entry", s.form.startAtLogin.Checked, s.form.startAtLogin.Disabled())
	}
	s.form.startAtLogin.SetChecked(true)
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (status %q)", err, s.status.Text)
	}
	if on, err := autostart.Enabled(); !on || err != nil {
		t.Errorf("autostart after Apply: %v, %v", on, err)
	}
	entry, err := os.ReadFile(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "autostart", autostart.DesktopFileName))
	if err != nil || !strings.Contains(string(entry), path) {
		t.Errorf("autostart entry %q, %v; want it to pass --config %s", entry, err, path)
	}
	s.form.startAtLogin.SetChecked(false)
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (status %q)", err, s.status.Text)
	}
	if on, err := autostart.Enabled(); on || err != nil {
		t.Errorf("autostart after turning it off: %v, %v", on, err)
	}
}
