package outbound

import (
	"errors"
	"testing"
	"time"
)

// The status line and the dial error end alike (writeDownTail), each with
// its own separator before the next try.
func TestDownTexts(t *testing.T) {
	since := time.Date(2026, 1, 1, 12, 3, 0, 0, time.Local)
	due := time.Now().Add(-time.Second) // past: "retrying now", whatever the clock
	cause := errors.New("connection refused")

	st := ExitStatus{Name: "office", State: ExitDown, Since: since, Err: cause, Retry: due}
	if got, want := st.String(), "office: failed since 12:03: connection refused · retrying now"; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
	de := &ExitDownError{Name: "office", State: ExitAuthFailed, Since: since, Err: cause, Retry: due}
	if got, want := de.Error(), "exit office refused the credentials since 12:03: connection refused; retrying now"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	bare := &ExitDownError{Name: "home", State: ExitConnecting}
	if got, want := bare.Error(), "exit home still connecting"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}
