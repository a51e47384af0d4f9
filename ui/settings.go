package ui

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"porthole/app"
	"porthole/app/autostart"
	"porthole/app/config"
	"porthole/app/sysproxy"
)

// settingsWindow edits the config file and applies it to the controller.
// The form shows the settings in use (ctl.Config(): the file with any
// command-line flags); Apply saves exactly what it shows and hands it to
// the controller, which restarts the proxy only when needed. Closing the
// window or Cancel discards the edits; the next Show starts afresh.
//
// Every method runs on the Fyne thread. Apply's slow part (saving,
// restarting the proxy) runs on its own goroutine and reports back through
// fyne.Do.
type settingsWindow struct {
	app  fyne.App
	ctl  *app.Controller
	path string // the config file

	// startupProblem is the config problem found at launch (the broken
	// file already moved aside); the first Show reports it.
	startupProblem error
	// setAutostart turns Start at login on or off; tests keep the real
	// one with XDG_CONFIG_HOME in a temporary directory.
	setAutostart func(on bool) error
	// background runs an Apply's slow part off the Fyne thread; the app
	// sets it so Quit waits for a save in progress (nil: a goroutine).
	background func(func())
	// onApplied, if set, runs on the Fyne thread after every Apply with
	// its error (tests wait on it).
	onApplied func(error)

	win      fyne.Window // nil while closed
	form     *settingsForm
	fileNote *widget.Label // the file on disk: broken and moved aside, or overridden
	status   *widget.Label
	apply    *widget.Button
	cancel   *widget.Button // closes the window, discarding the edits
	shown    settingsValues // what the form held when opened or last applied
	valid    bool
	applying bool
}

// The window's first size fits a 1280x800 screen with room for the
// panel; the form scrolls inside it.
const settingsWidth, settingsHeight = 620, 760

func newSettings(a fyne.App, ctl *app.Controller, configPath string) *settingsWindow {
	return &settingsWindow{app: a, ctl: ctl, path: configPath, setAutostart: autostartSetter(configPath)}
}

// Show opens the window filled with the settings in use, or brings the
// open one to the front with its edits.
func (s *settingsWindow) Show() {
	if s.win != nil {
		s.win.Show()
		s.win.RequestFocus()
		return
	}
	cfg := s.ctl.Config()
	s.shown = valuesOf(cfg)
	autostartNote := s.readAutostart(&s.shown)
	s.form = newSettingsForm(s.shown, s.check)
	if autostartNote != "" {
		s.form.startAtLogin.Disable()
		s.form.autostartNote.SetText(autostartNote)
		s.form.autostartNote.Show()
	}

	s.fileNote = noteLabel()
	if note := s.describeFile(cfg); note != "" {
		s.fileNote.SetText(note)
		s.fileNote.Show()
	}
	s.status = widget.NewLabel("")
	s.status.Wrapping = fyne.TextWrapWord
	s.apply = widget.NewButton("Apply", s.applyForm)
	s.apply.Importance = widget.HighImportance
	s.cancel = widget.NewButton("Cancel", func() { s.win.Close() })
	buttons := container.NewHBox(layout.NewSpacer(), s.cancel, s.apply)

	s.win = s.app.NewWindow("Porthole Settings")
	s.win.SetContent(container.NewBorder(s.fileNote, container.NewVBox(s.status, buttons), nil, nil,
		container.NewVScroll(container.NewPadded(s.form.content))))
	s.win.Resize(fyne.NewSize(settingsWidth, settingsHeight))
	s.win.SetOnClosed(func() { s.win, s.form = nil, nil })
	s.check()
	s.win.Show()
}

// check validates the form, shows the problems and enables Apply only
// when there are none.
func (s *settingsWindow) check() {
	_, problems := s.form.values().config()
	s.form.showProblems(problems)
	s.valid = len(problems) == 0
	if !s.valid {
		s.status.Importance = widget.DangerImportance
		s.status.SetText(problems[0].err.Error())
	} else if s.status.Importance == widget.DangerImportance {
		s.status.Importance = widget.MediumImportance
		s.status.SetText("")
	}
	s.updateApply()
}

func (s *settingsWindow) updateApply() {
	if s.valid && !s.applying {
		s.apply.Enable()
	} else {
		s.apply.Disable()
	}
}

// applyForm saves the form and applies it, off the Fyne thread because a
// restart waits for the proxy's connections to end.
func (s *settingsWindow) applyForm() {
	v := s.form.values()
	cfg, problems := v.config()
	if len(problems) > 0 || s.applying {
		return
	}
	s.applying = true
	s.updateApply()
	s.status.Importance = widget.MediumImportance
	s.status.SetText("Applying…")
	shown := s.shown
	work := func() {
		msg, field, err := s.save(cfg, shown)
		fyne.Do(func() { s.applied(v, msg, field, err) })
	}
	if s.background != nil {
		s.background(work)
	} else {
		go work()
	}
}

// applied shows the result of an Apply.
func (s *settingsWindow) applied(v settingsValues, msg string, field settingsField, err error) {
	s.applying = false
	if s.win != nil { // still open
		if err == nil {
			s.shown = v
			s.status.Importance = widget.SuccessImportance
		} else {
			s.status.Importance = widget.DangerImportance
			if p, ok := s.form.problems[field]; ok {
				p.SetText(err.Error())
				p.Show()
			}
		}
		s.status.SetText(msg)
		s.updateApply()
	}
	if s.onApplied != nil {
		s.onApplied(err)
	}
}

// save checks cfg as the engine would, writes it to the config file and
// hands it to the controller, then follows the system proxy and
// autostart choices if they changed. It returns the message for the
// status line and, on failure, the field the error belongs to.
func (s *settingsWindow) save(cfg config.Config, shown settingsValues) (string, settingsField, error) {
	// The engine's own checks (a token for tunnel mode, a password beyond
	// loopback) before anything is written, so a refused config is not
	// saved either.
	if err := app.CheckSettings(cfg, slog.New(slog.DiscardHandler)); err != nil {
		return "Not saved: " + err.Error(), fieldOfEngineError(err), err
	}
	var notes []string
	// Load sets a broken file aside (and says where) instead of letting
	// Save replace it; a file that cannot be read is not replaced at all.
	if _, err := config.Load(s.path); errors.Is(err, config.ErrInvalid) && !errors.Is(err, config.ErrStuck) {
		notes = append(notes, err.Error()+".")
	} else if err != nil {
		return "Not saved: " + err.Error(), fieldGeneral, err
	}
	if err := config.Save(s.path, cfg); err != nil {
		return "Not saved: " + err.Error(), fieldGeneral, err
	}
	old := s.ctl.Config()
	if err := s.ctl.Apply(cfg); err != nil {
		return fmt.Sprintf("Saved to %s, but the proxy could not start: %v", s.path, err), fieldGeneral, err
	}
	if cfg.SystemProxy != shown.SystemProxy {
		if err := s.ctl.SetSystemProxy(cfg.SystemProxy); errors.Is(err, sysproxy.ErrUnsupported) {
			notes = append(notes, "The system proxy cannot be set on this desktop; point programs at Porthole yourself (Copy terminal env).")
		} else if err != nil {
			return fmt.Sprintf("Saved to %s, but the system proxy: %v", s.path, err), fieldGeneral, err
		}
	}
	if cfg.StartAtLogin != shown.StartAtLogin {
		if err := s.setAutostart(cfg.StartAtLogin); err != nil {
			return fmt.Sprintf("Saved to %s, but Start at login: %v", s.path, err), fieldGeneral, err
		}
	}
	if old.LogLevel != cfg.LogLevel || old.History != cfg.History {
		notes = append(notes, "The log level and closed history apply at the next launch.")
	}
	msg := "Saved to " + s.path + "."
	if st := s.ctl.Status(); st.State == app.StateRunning {
		msg += " The proxy listens on " + st.Addr + "."
	}
	return strings.Join(append([]string{msg}, notes...), " "), fieldGeneral, nil
}

// describeFile says what the window should tell about the file on disk:
// that it was broken and moved aside (at launch or now), that it cannot be
// read, that there is none yet, or which settings in use differ from it.
func (s *settingsWindow) describeFile(inUse config.Config) string {
	if err := s.startupProblem; err != nil {
		s.startupProblem = nil
		return brokenNote(err)
	}
	if _, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) {
		return ""
	}
	onDisk, err := config.Load(s.path)
	switch {
	case errors.Is(err, config.ErrInvalid):
		return brokenNote(err)
	case err != nil:
		return err.Error() + " Apply will not replace it."
	}
	if diff := differingFields(onDisk, inUse); len(diff) > 0 {
		return fmt.Sprintf("The settings in use differ from %s in %s (command-line flags). Apply saves the values below.",
			filepath.Base(s.path), strings.Join(diff, ", "))
	}
	return ""
}

// brokenNote tells about a config file config.Load set aside; its error
// names the file and where it went.
func brokenNote(err error) string {
	return err.Error() + ". The form shows the settings in use; Apply writes them to a new file."
}

// differingFields names, as the file spells them, the fields that differ.
func differingFields(a, b config.Config) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("listen", a.Listen != b.Listen)
	add("mode", a.Mode != b.Mode)
	add("exit", a.Exit != b.Exit)
	add("token_file", a.TokenFile != b.TokenFile)
	add("token", a.Token != b.Token)
	add("exit_ca", a.ExitCA != b.ExitCA)
	add("bypass", !slices.Equal(a.Bypass, b.Bypass))
	add("username", a.Username != b.Username)
	add("password", a.Password != b.Password)
	add("log_level", a.LogLevel != b.LogLevel)
	add("history", a.History != b.History)
	add("start_proxy", a.StartProxy != b.StartProxy)
	add("system_proxy", a.SystemProxy != b.SystemProxy)
	add("start_at_login", a.StartAtLogin != b.StartAtLogin)
	return out
}

// readAutostart puts the OS's real Start at login state into v and
// returns why it cannot be changed, if it cannot.
func (s *settingsWindow) readAutostart(v *settingsValues) string {
	present, err := autostart.Enabled()
	switch {
	case errors.Is(err, autostart.ErrNotOurs):
		v.StartAtLogin = true
		return err.Error() + " Porthole leaves it alone."
	case err != nil:
		return "Start at login is not available: " + err.Error()
	}
	v.StartAtLogin = present
	return ""
}

// autostartSetter is the real Start at login switch. The entry runs this
// executable, with --config when the config file is not the default one.
func autostartSetter(configPath string) func(bool) error {
	return func(on bool) error {
		if !on {
			return autostart.Disable()
		}
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding Porthole's executable: %w", err)
		}
		var args []string
		if def, err := config.DefaultPath(); err != nil || def != configPath {
			args = []string{"--config", configPath}
		}
		return autostart.Enable(exe, args)
	}
}
