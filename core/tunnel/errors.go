package tunnel

import (
	"errors"
	"fmt"
)

// The package's sentinel errors and error types, all in this file.
// Recognise the sentinels with errors.Is, the types with errors.As.

// Decoding and encoding errors; every one a decoder returns wraps
// ErrMalformed.
var (
	ErrMalformed   = errors.New("malformed frame")
	ErrUnknownType = fmt.Errorf("%w: unknown type", ErrMalformed)
	ErrTruncated   = fmt.Errorf("%w: truncated", ErrMalformed)
	ErrTrailing    = fmt.Errorf("%w: bytes after the payload", ErrMalformed)
	ErrTooLarge    = fmt.Errorf("%w: field over its size limit", ErrMalformed)
	ErrBadField    = fmt.Errorf("%w: invalid field", ErrMalformed)
)

// Handshake errors.
var (
	ErrAuthFailed = errors.New("authentication failed")
	ErrVersion    = errors.New("no common protocol version")
	ErrOrigin     = errors.New("cross-origin upgrade refused")
)

// Session errors and stream endings.
var (
	// ErrTunnelLost ends the streams of a session that died or closed.
	ErrTunnelLost = errors.New("tunnel lost")
	// ErrSessionDead is why a session ended that heard nothing for three
	// ping intervals.
	ErrSessionDead = errors.New("no answer from the other end")
	// ErrReset ends a stream the peer reset; the *ResetError says why.
	ErrReset = errors.New("stream reset by the other end")
	// ErrProtocol is a peer breaking the protocol.
	ErrProtocol = errors.New("tunnel protocol violation")
	// ErrNotReading is why a session ended whose peer stopped reading:
	// frames waited too long to be written, or piled up.
	ErrNotReading = errors.New("the other end stopped reading")
)

// Client errors.
var (
	// ErrNoSession is why an Open gave up: no session to the exit came up
	// in time. The error says what the last attempt ran into.
	ErrNoSession = errors.New("tunnel to the exit is down")
	// ErrClientClosed is an Open on a closed Client.
	ErrClientClosed = errors.New("tunnel client closed")
)

// OpenError is an OPEN the exit refused, with its code and reason.
type OpenError struct {
	Code   Code
	Reason string
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("the exit could not connect (%s): %s", e.Code, e.Reason)
}

// ResetError is a stream the peer reset.
type ResetError struct {
	Code   Code
	Reason string
}

func (e *ResetError) Error() string {
	return fmt.Sprintf("stream reset by the other end (%s): %s", e.Code, e.Reason)
}
func (e *ResetError) Unwrap() error { return ErrReset }
