// Package autostart turns "Start Porthole at login" on and off:
//
//   - Linux and other XDG desktops: $XDG_CONFIG_HOME/autostart/porthole.desktop
//     (default ~/.config/autostart), written atomically;
//   - macOS: ~/Library/LaunchAgents/app.porthole.Porthole.plist with
//     RunAtLoad, written atomically (launchd reads it at the next login);
//   - Windows: the REG_SZ value "Porthole" under
//     HKCU\Software\Microsoft\Windows\CurrentVersion\Run.
//
// Porthole only ever removes or replaces an entry that is byte for byte what
// it would write itself (for some executable and arguments). An entry that
// differs, because the user edited it or something else put it there, is left
// alone and reported with an error wrapping [ErrNotOurs].
package autostart

import (
	"errors"
	"fmt"
	"path/filepath"
	"unicode"
	"unicode/utf8"
)

// ErrNotOurs is wrapped by the error of Enable, Disable and Enabled when an
// autostart entry exists at Porthole's place but is not what Porthole writes
// (edited by the user, or written by something else). It is left untouched.
var ErrNotOurs = errors.New("autostart entry was not written by Porthole")

// ErrInvalidCommand is wrapped when the executable or an argument cannot be
// written into an autostart entry (relative path, control characters,
// invalid UTF-8, or too long for the platform).
var ErrInvalidCommand = errors.New("command cannot be used for autostart")

// Enable makes the OS start exe with args at the next login. exe must be an
// absolute path (the app passes os.Executable()). Enabling again with the same
// command writes nothing; a previous Porthole entry with another command (the
// binary moved) is replaced; an entry that is not Porthole's is left alone and
// the error wraps ErrNotOurs.
func Enable(exe string, args []string) error {
	s, f, err := platform()
	if err != nil {
		return err
	}
	return enable(s, f, exe, args)
}

// Disable removes Porthole's autostart entry. Nothing there is not an error.
// An entry that is not Porthole's is left alone and the error wraps
// ErrNotOurs.
func Disable() error {
	s, f, err := platform()
	if err != nil {
		return err
	}
	return disable(s, f)
}

// Enabled reports whether an autostart entry exists at Porthole's place. If it
// exists but is not Porthole's, present is true (the OS will still run it) and
// err wraps ErrNotOurs, so the UI can show the state and say why it cannot
// change it.
func Enabled() (present bool, err error) {
	s, f, err := platform()
	if err != nil {
		return false, err
	}
	return enabled(s, f)
}

// store is where one platform keeps the entry: a file or a registry value.
type store interface {
	// Location names the entry for messages (a path or a registry value).
	Location() string
	// Read returns the entry's content; found is false when there is none.
	// An entry that exists but cannot be Porthole's by its kind (a symlink,
	// a directory, a registry value of another type) gives found true and
	// an error wrapping ErrNotOurs.
	Read() (content string, found bool, err error)
	// Write replaces the entry with content (atomically where possible).
	Write(content string) error
	// Remove deletes the entry; an entry already gone is not an error.
	Remove() error
}

// format turns a command into an entry's content and back.
type format struct {
	render func(exe string, args []string) (string, error)
	// parse returns the command of content; any error means "not ours".
	parse func(content string) (exe string, args []string, err error)
}

// owned reports whether content is exactly what render writes for the command
// it holds.
func (f format) owned(content string) bool {
	exe, args, err := f.parse(content)
	if err != nil {
		return false
	}
	again, err := f.render(exe, args)
	return err == nil && again == content
}

func notOurs(s store) error {
	return fmt.Errorf("%s: %w (left as it is; edit or remove it yourself)", s.Location(), ErrNotOurs)
}

func enable(s store, f format, exe string, args []string) error {
	if !filepath.IsAbs(exe) {
		return fmt.Errorf("%w: executable %q is not an absolute path", ErrInvalidCommand, exe)
	}
	want, err := f.render(exe, args)
	if err != nil {
		return err
	}
	have, found, err := s.Read()
	if errors.Is(err, ErrNotOurs) {
		return err
	}
	if err != nil {
		return fmt.Errorf("enabling start at login: %w", err)
	}
	if found && have == want {
		return nil
	}
	if found && !f.owned(have) {
		return notOurs(s)
	}
	if err := s.Write(want); err != nil {
		return fmt.Errorf("enabling start at login: %w", err)
	}
	return nil
}

func disable(s store, f format) error {
	have, found, err := s.Read()
	if errors.Is(err, ErrNotOurs) {
		return err
	}
	if err != nil {
		return fmt.Errorf("disabling start at login: %w", err)
	}
	if !found {
		return nil
	}
	if !f.owned(have) {
		return notOurs(s)
	}
	// Between Read and Remove the user could edit the entry; that window is
	// a few system calls wide and accepted.
	if err := s.Remove(); err != nil {
		return fmt.Errorf("disabling start at login: %w", err)
	}
	return nil
}

func enabled(s store, f format) (bool, error) {
	have, found, err := s.Read()
	if errors.Is(err, ErrNotOurs) {
		return true, err
	}
	if err != nil {
		return false, fmt.Errorf("reading start at login: %w", err)
	}
	if found && !f.owned(have) {
		return true, notOurs(s)
	}
	return found, nil
}

// checkText rejects what no entry format can hold: invalid UTF-8, NUL and
// other control characters. what names the value in the error.
func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidCommand, what, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %q contains the control character %U", ErrInvalidCommand, what, s, r)
		}
	}
	return nil
}

// checkCommand applies checkText to exe and every argument.
func checkCommand(exe string, args []string) error {
	if exe == "" {
		return fmt.Errorf("%w: empty executable", ErrInvalidCommand)
	}
	if err := checkText("executable", exe); err != nil {
		return err
	}
	for i, a := range args {
		if err := checkText(fmt.Sprintf("argument %d", i+1), a); err != nil {
			return err
		}
	}
	return nil
}
