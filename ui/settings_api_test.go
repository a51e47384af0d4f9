package ui

import (
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"porthole/app"
	"porthole/app/config"
)

// The control API's part of Settings shows where it listens and its
// secret, which Copy puts on the clipboard; the dashboard link carries
// both.
func TestSettingsAPISection(t *testing.T) {
	a := test.NewTempApp(t)
	path := filepath.Join(t.TempDir(), "config.json")
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.API = config.API{Listen: "127.0.0.1:0", Secret: "s3cret-for-dashboards"}
	ctl := app.NewController(cfg, nil, testLogger(t))
	defer func() { _ = ctl.Close() }()
	if err := ctl.StartAPI(app.APIOptions{ConfigPath: path, Version: "test"}); err != nil {
		t.Fatal(err)
	}
	s := newAPISection(a, ctl)
	addr := ctl.APIStatus().Addr
	if !strings.Contains(s.state.Text, "Listening on "+addr) || s.secret.Text != "s3cret-for-dashboards" {
		t.Errorf("shows %q / %q", s.state.Text, s.secret.Text)
	}
	test.Tap(s.copy)
	if got := a.Clipboard().Content(); got != "s3cret-for-dashboards" {
		t.Errorf("clipboard %q", got)
	}
	u, err := dashboardLink(ctl)
	_, port, _ := strings.Cut(addr, ":")
	if err != nil || !strings.Contains(u.String(), "#/setup?hostname=127.0.0.1&port="+port+"&secret=s3cret-for-dashboards") {
		t.Errorf("dashboard link %v %v", u, err)
	}
	// Off: no link, and the section says so.
	off := cfg
	off.API.Listen = ""
	ctlOff := app.NewController(off, nil, testLogger(t))
	defer func() { _ = ctlOff.Close() }()
	if _, err := dashboardLink(ctlOff); err == nil {
		t.Error("a dashboard link with the API off")
	}
	if s := newAPISection(a, ctlOff); !strings.HasPrefix(s.state.Text, "Off") {
		t.Errorf("off: %q", s.state.Text)
	}
}
