package ui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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

	// setAutostart turns Start at login on or off; tests keep the real
	// one with XDG_CONFIG_HOME in a temporary directory.
	setAutostart func(on bool) error
	// background runs an Apply's slow part off the Fyne thread; the app
	// sets it so Quit waits for a save in progress (nil: a goroutine).
	background func(func())
	// onApplied, if set, runs on the Fyne thread after every Apply with
	// its error (tests wait on it).
	onApplied func(error)
	// onSaved, if set, runs on Apply's goroutine after the settings were
	// saved: the app shows where a file on disk was set aside.
	onSaved func(app.Saved)
	// exitsRefresh is how often the Exits section renews its rows (0:
	// never, for tests); exitsWork runs its buttons' work (nil: a
	// goroutine).
	exitsRefresh time.Duration
	exitsWork    func(func())

	win      fyne.Window // nil while closed
	form     *settingsForm
	fileNote *widget.Label // the file on disk: unusable, with unknown fields, or overridden
	status   *widget.Label
	apply    *widget.Button
	cancel   *widget.Button // closes the window, discarding the edits
	exits    *exitsSection  // nil without exits
	shown    settingsValues // what the form held when opened or last applied
	valid    bool
	applying bool

	exitsBox *fyne.Container // holds exits' content
}

// The window's first size fits a 1280x800 screen with room for the
// panel; the form scrolls inside it.
const settingsWidth, settingsHeight = 620, 760

func newSettings(a fyne.App, ctl *app.Controller, configPath string) *settingsWindow {
	return &settingsWindow{app: a, ctl: ctl, path: configPath, setAutostart: autostartSetter(configPath), exitsRefresh: time.Second}
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
	s.exitsBox = container.NewVBox()
	s.showExits()
	body := container.NewVBox(s.form.content, s.exitsBox)
	s.win.SetContent(container.NewBorder(s.fileNote, container.NewVBox(s.status, buttons), nil, nil,
		container.NewVScroll(container.NewPadded(container.NewVBox(body, newAPISection(s.app, s.ctl).content)))))
	s.win.Resize(fyne.NewSize(settingsWidth, settingsHeight))
	s.win.SetOnClosed(func() {
		if x := s.exits; x != nil {
			go x.close() // its work ends through fyne.Do: not waited for here
		}
		s.win, s.form, s.exits, s.exitsBox = nil, nil, nil, nil
	})
	s.check()
	s.win.Show()
}

// showSaved shows the exits settings in use after an Apply in the exits
// editor (a pick made elsewhere meanwhile, kept by the save, included), so
// that what it shows and what the next Apply compares with are the file's,
// and builds the section of the exits in use again.
func (s *settingsWindow) showSaved() {
	in := valuesOf(s.ctl.Config()).exits
	s.shown.exits = in
	s.form.exits.set(*in)
	s.showExits()
	s.check()
}

// picked follows a pick made in the section of the exits in use (Use) in
// the editor, unless the editor's pick was changed and not applied yet.
func (s *settingsWindow) picked(name string) {
	if s.form == nil || s.shown.exits == nil || s.form.exits.values().Selected != s.shown.exits.Selected {
		return
	}
	in := *s.shown.exits
	in.Selected = name
	s.shown.exits = &in // a new value: an Apply in progress holds the old one
	s.form.exits.updatePick(name, true)
}

// showExits builds the section of the exits in use, again after an Apply
// (the list or the policy may have changed), closing the one before.
func (s *settingsWindow) showExits() {
	if x := s.exits; x != nil {
		go x.close() // its work ends through fyne.Do: not waited for here
	}
	s.exitsBox.RemoveAll()
	if s.exits = newExitsSection(s.ctl, s.path, s.exitsRefresh, s.exitsWork, s.picked); s.exits != nil {
		s.exitsBox.Add(s.exits.content)
	}
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
			s.showSaved()
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

// save hands the form's settings to the one settings policy
// (app.Controller.SaveSettings: checked as the engine would, the file on
// disk set aside if it must not be overwritten, saved, applied), then
// follows the Start at login choice if it changed. It returns the message
// for the status line and, on failure, the field the error belongs to.
func (s *settingsWindow) save(form config.Config, shown settingsValues) (string, settingsField, error) {
	saved, err := s.ctl.SaveSettings(s.path, func(c *config.Config) {
		inUse := *c
		*c = form
		c.MaxConns = inUse.MaxConns // not in the form: kept as it is
		c.API = inUse.API           // shown, not edited: kept as it is
		keepUntouchedExits(c, inUse, shown)
	})
	if err != nil {
		return "Not saved: " + err.Error(), fieldOfEngineError(err), err
	}
	if s.onSaved != nil {
		s.onSaved(saved)
	}
	var notes []string
	if saved.SetAside != "" {
		notes = append(notes, setAsideNote(saved))
	}
	msg := "Saved to " + s.path + "."
	failure := saved.StartErr
	switch {
	case failure != nil:
		msg = fmt.Sprintf("Saved to %s, but the proxy could not start: %v.", s.path, failure)
	case errors.Is(saved.SystemProxyErr, sysproxy.ErrUnsupported):
		notes = append(notes, "The system proxy cannot be set on this desktop; point programs at Porthole yourself (Copy terminal env).")
	case saved.SystemProxyErr != nil:
		failure = saved.SystemProxyErr
		msg = fmt.Sprintf("Saved to %s, but the system proxy: %v.", s.path, failure)
	}
	if failure == nil && form.StartAtLogin != shown.StartAtLogin {
		if err := s.setAutostart(form.StartAtLogin); err != nil {
			failure = err
			msg = fmt.Sprintf("Saved to %s, but Start at login: %v.", s.path, err)
		}
	}
	if failure == nil {
		switch st := s.ctl.Status(); {
		case st.State == app.StateRunning:
			msg += " The proxy listens on " + st.Addr + "."
		case errors.Is(saved.SetAsideWhy, config.ErrInvalid):
			msg += " The proxy is stopped: Start runs it with these settings."
		}
		if saved.Changes.Need(config.EffectNextLaunch) {
			notes = append(notes, "The log level and closed history apply at the next launch.")
		}
	}
	return strings.Join(append([]string{msg}, notes...), " "), fieldGeneral, failure
}

// keepUntouchedExits keeps in c the exits settings in use that the form
// did not change since it showed them: the tray, the Use button or the
// control API may have picked another exit (or policy) meanwhile, and a
// save of other fields must not undo that. A pick kept must still name an
// exit of the list being saved.
func keepUntouchedExits(c *config.Config, inUse config.Config, shown settingsValues) {
	var was exitSettings
	if shown.exits != nil {
		was = *shown.exits
	}
	if slices.Equal(c.Exits, was.Exits) {
		c.Exits = inUse.Exits
	}
	if c.ExitPolicy == was.Policy {
		c.ExitPolicy = inUse.ExitPolicy
	}
	if c.ExitSelected == was.Selected && slices.ContainsFunc(c.ExitList(), func(x config.Exit) bool { return x.Name == inUse.ExitSelected }) {
		c.ExitSelected = inUse.ExitSelected
	}
}

// describeFile says what the window should tell about the file on disk:
// that it cannot be used, or holds fields this version does not know,
// that it cannot be read, that there is none yet, or which settings in use
// differ from it.
func (s *settingsWindow) describeFile(inUse config.Config) string {
	if _, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) {
		return ""
	}
	onDisk, err := config.Load(s.path)
	switch {
	case errors.Is(err, config.ErrInvalid):
		return err.Error() + ". The form shows the settings in use; Apply moves the file aside (it is kept) and saves these settings."
	case errors.Is(err, config.ErrUnknownFields):
		return err.Error() + ". Apply saves the settings below without them, and keeps the old file beside the new one."
	case err != nil:
		return err.Error() + " Apply will not replace it."
	}
	if diff := config.Diff(onDisk, inUse).Fields; len(diff) > 0 {
		return fmt.Sprintf("The settings in use differ from %s in %s (command-line flags). Apply saves the values below.",
			filepath.Base(s.path), strings.Join(diff, ", "))
	}
	return ""
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
