package sysproxy

import (
	"errors"
	"fmt"
)

// The package's sentinel errors and error types, all in this file.
// Recognise the sentinels with errors.Is, CommandError with errors.As.
var (
	// ErrUnsupported is returned where there is no system proxy setting
	// Porthole knows how to change; the terminal env (TerminalEnv) is the
	// way left.
	ErrUnsupported = errors.New("this desktop has no system proxy setting Porthole can change; " +
		"point programs at Porthole with the terminal environment instead (Copy terminal env)")
	// ErrInvalid wraps a bad address or bypass entry given to Enable.
	ErrInvalid = errors.New("invalid system proxy setting")
	// ErrJournalCorrupt is a journal file that cannot be read; it is set aside.
	ErrJournalCorrupt = errors.New("system proxy journal is unreadable")
	// ErrNotApplied is a write the backend accepted but that did not change
	// the setting (for example gsettings without a persistent backend).
	ErrNotApplied = errors.New("the system proxy setting did not take effect")
	// ErrBusy is a system proxy another running Porthole has set: it holds
	// the journal's lock, so its journal is in use, not left behind by a crash.
	ErrBusy = errors.New("another running Porthole has the system proxy set")
	// errNoLocks is a file system that cannot lock files: the journal then
	// works unlocked, as it did before the lock (a second Porthole may take a
	// running one's journal for a crash's there).
	errNoLocks = errors.New("file locks are not supported here")
	// errOtherBackend is a journal written by a backend this system lacks.
	errOtherBackend = errors.New("the journal was written by a backend that is not available here")
)

// CommandError is a settings command that failed, with its own output.
type CommandError struct {
	Command string // the command line, for the message
	Output  string // what it printed (stderr, else stdout), trimmed
	Err     error  // the exit status or the reason it did not start
}

func (e *CommandError) Error() string {
	if e.Output == "" {
		return fmt.Sprintf("%s: %v", e.Command, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Command, e.Err, e.Output)
}

func (e *CommandError) Unwrap() error { return e.Err }
