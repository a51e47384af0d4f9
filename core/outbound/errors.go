package outbound

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of the outbound side. Recognise them with errors.Is; the error
// types below with errors.As.
var (
	// ErrDenied is the reason of a dial refused by the exit server's
	// target guard (Guarded: private, loopback and the machine's own
	// addresses). A user rule's refusal is ErrRejected.
	ErrDenied = errors.New("target not allowed")
	// ErrNoTunnel is returned when tunnel mode is asked for without a
	// tunnel.
	ErrNoTunnel = errors.New("tunnel mode needs an exit server")
	// ErrTunnelStopped is a dial through a tunnel that is not started (the
	// proxy is stopping).
	ErrTunnelStopped = errors.New("tunnel not started")
	// ErrRejected is the reason of a connection a rule refused: never
	// dialled, answered in the client's protocol (HTTP 403, SOCKS5 0x02,
	// SOCKS4 0x5B). The error wrapping it names the rule.
	ErrRejected = errors.New("rejected by rule")

	// Errors of the exits.

	// ErrExitDown is wrapped by an *ExitDownError: no usable exit for a
	// new connection.
	ErrExitDown = errors.New("exit down")
	// ErrExitLost is wrapped by an *ExitLostError: the exit carrying a
	// connection went away.
	ErrExitLost = errors.New("exit lost")
	// ErrUnknownExit is a dial naming an exit the group does not have.
	ErrUnknownExit = errors.New("no such exit")
	// ErrUpstreamAuth is an upstream proxy refusing our credentials (HTTP
	// 407, a SOCKS5 authentication failure or no acceptable method).
	ErrUpstreamAuth = errors.New("upstream proxy refused the credentials")
	// ErrUpstreamProtocol is an upstream proxy's answer we cannot read.
	ErrUpstreamProtocol = errors.New("upstream proxy broke its protocol")

	// Why an ExitWatch ended.

	// ErrFellBehind: the watcher did not read its channel, and was
	// dropped rather than let the group wait for it; subscribe again.
	ErrFellBehind = errors.New("exit watcher fell behind")
	// ErrGroupClosed: the group was closed.
	ErrGroupClosed = errors.New("exit group closed")
)

// ExitDownError is why a new connection found no usable exit: which exit
// (the one the policy or a rule wanted), since when and why it is down,
// and when it is tried again. Inbound answers it with HTTP 502 or SOCKS
// general failure.
type ExitDownError struct {
	Name  string
	State ExitState
	Since time.Time
	Err   error
	Retry time.Time
}

func (e *ExitDownError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exit %s ", e.Name)
	switch e.State {
	case ExitAuthFailed:
		b.WriteString("refused the credentials")
	case ExitConnecting:
		b.WriteString("still connecting")
	case ExitStopped:
		b.WriteString("stopped")
	default:
		b.WriteString("down")
	}
	writeDownTail(&b, e.Since, e.Err, e.Retry, "; ")
	return b.String()
}

// Unwrap gives ErrExitDown and the cause. Classify looks for ErrExitDown
// before the cause's kind: a refused connection to the exit is not the
// target refusing.
func (e *ExitDownError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrExitDown}
	}
	return []error{ErrExitDown, e.Err}
}

// ExitLostError ends a connection whose exit went away (its tunnel session
// died): the registry's reason reads "exit lost: NAME".
type ExitLostError struct {
	Name string
	Err  error // what the transport said (tunnel.ErrTunnelLost...)
}

func (e *ExitLostError) Error() string { return "exit lost: " + e.Name }

func (e *ExitLostError) Unwrap() []error { return []error{ErrExitLost, e.Err} }

// exitFailure marks a dial error as the exit's own failure (the proxy or
// the tunnel cannot be reached, refused the credentials), as opposed to
// the target's: the group then counts it against the exit's health and
// may try another exit.
type exitFailure struct {
	err  error
	auth bool
}

func (e *exitFailure) Error() string { return e.err.Error() }
func (e *exitFailure) Unwrap() error { return e.err }

// UpstreamHTTPError is an upstream HTTP proxy's refusal of a CONNECT: its
// status, which Classify maps (504 timeout, 403 denied, the rest other).
type UpstreamHTTPError struct {
	StatusCode int
	Status     string // the status line's text, e.g. "502 Bad Gateway"
}

func (e *UpstreamHTTPError) Error() string {
	return "upstream proxy answered " + e.Status
}

// SOCKS5ReplyError is an upstream SOCKS5 proxy's refusal of a CONNECT,
// with its reply code (RFC 1928 §6). Inbound passes the code on to a
// SOCKS5 client as it is; Classify maps it for the others.
type SOCKS5ReplyError struct {
	Code byte
}

func (e *SOCKS5ReplyError) Error() string {
	return fmt.Sprintf("upstream SOCKS5 proxy answered %#02x (%s)", e.Code, socks5ReplyText(e.Code))
}
