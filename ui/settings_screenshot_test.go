package ui

import (
	"image"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"porthole/app"
	"porthole/app/config"
)

// TestSettingsScreenshot renders the settings window with Fyne's software
// painter (no display needed) and checks the picture. It is written to
// the test's temporary directory, or to docs/screenshots/settings.png with
// PORTHOLE_UPDATE_SCREENSHOTS=1 (how the committed one is made).
func TestSettingsScreenshot(t *testing.T) {
	path := settingsEnv(t)
	fyne.CurrentApp().Settings().SetTheme(theme.DefaultTheme())
	// The defaults as a first start shows them (the proxy need not run:
	// the window shows settings, not state).
	ctl := app.NewController(config.Default(), nil, testLogger(t))
	defer func() { _ = ctl.Close() }()
	s, _ := openSettings(t, ctl, path)
	// A problem on show, as a user sees one while typing.
	retype(s.form.bypass, "localhost\n*.local\n10.0.0.0/8\nintranet example")

	// The GL driver lays out again when a shown problem changes a row's
	// height; the software canvas does not, so lay out before capturing.
	s.win.Content().Refresh()
	img := s.win.Canvas().Capture()
	if got, want := img.Bounds().Size(), image.Pt(settingsWidth, settingsHeight); got != want {
		t.Errorf("screenshot is %v, want %v", got, want)
	}
	n := countColours(img, 1000)
	if n < 32 {
		t.Errorf("screenshot has %d colours; a rendered form has text, fields and buttons", n)
	}
	saveScreenshot(t, "settings.png", img, n)
}
