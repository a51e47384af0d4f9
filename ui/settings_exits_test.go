package ui

import (
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"go.uber.org/goleak"

	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/internal/upstreamtest"
)

// TestSettingsExits: the Settings window lists the exits with their
// state; Use picks one at once; Apply of the form keeps the exits.
func TestSettingsExits(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	// A cleanup, so it runs after the proxies' (registered later).
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	path := settingsEnv(t)
	one, two := upstreamtest.Microsocks(t, "", ""), upstreamtest.Microsocks(t, "", "")
	cfg := loopbackConfig()
	cfg.Mode = "tunnel"
	cfg.Bypass = []string{}
	cfg.Exits = []config.Exit{{Name: "one", Kind: "socks5", URL: one.URL}, {Name: "two", Kind: "socks5", URL: two.URL}}
	cfg.ExitPolicy = "manual"
	saveConfig(t, path, cfg)
	ctl := startController(t, cfg)
	s, done := openSettings(t, ctl, path)
	if s.exits == nil || len(s.exits.rows) != 2 || s.form.exits.policy.Selected != "manual" {
		t.Fatalf("exits section: %+v", s.exits)
	}
	waitUntil(t, "both exits connected", func() bool { return allExitsUp(ctl.Exits()) })
	s.exits.show(ctl.Exits())
	if s.exits.rows["two"].use.Disabled() || !s.exits.rows["one"].use.Disabled() {
		t.Errorf("Use should be offered for two only")
	}
	test.Tap(s.exits.rows["one"].use) // disabled: nothing happens
	test.Tap(s.exits.rows["two"].use)
	if st := ctl.Exits(); st.Active != "two" || ctl.Config().ExitSelected != "two" {
		t.Errorf("after Use two: active %q, selected %q", st.Active, ctl.Config().ExitSelected)
	}
	if text := s.exits.rows["two"].state.Text; text != "✓ in use · connected · <1 ms" && !strings.HasPrefix(text, "✓ in use · connected") {
		t.Errorf("two's row: %q", text)
	}

	retype(s.form.history, "500")
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (status %q)", err, s.status.Text)
	}
	got, err := config.Load(path)
	if err != nil || len(got.Exits) != 2 || got.ExitSelected != "two" || got.ExitPolicy != "manual" || got.History != 500 {
		t.Errorf("file after Apply: %+v, %v", got, err)
	}
	if st := ctl.Exits(); st.Active != "two" || st.Policy != outbound.PolicyManual {
		t.Errorf("after Apply: %+v", st)
	}
	x := s.exits
	s.win.Close()
	x.close() // what the window's close started; waited for here
}

func allExitsUp(st outbound.GroupState) bool {
	for _, x := range st.Exits {
		if x.State != outbound.ExitUp {
			return false
		}
	}
	return true
}

// waitUntil polls cond on the test app's thread until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for range 20000 {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // a poll: the state has no event for the test
	}
	t.Fatalf("not %s within 20 s", what)
}
