package registry

import "errors"

// Close reasons and subscription endings. Recognise them with errors.Is.
var (
	// ErrClosedByUser is the reason of a connection closed through
	// CloseConn or CloseAll (the inspector's buttons).
	ErrClosedByUser = errors.New("closed by user")
	// ErrIdle is the reason of a connection that moved no byte for the
	// registry's idle timeout.
	ErrIdle = errors.New("idle timeout")
	// ErrFellBehind ends a subscription whose reader did not keep up; the
	// reader resubscribes to get a fresh snapshot.
	ErrFellBehind = errors.New("subscriber fell behind")
	// ErrClosed ends subscriptions when the registry is closed.
	ErrClosed = errors.New("registry closed")
)
