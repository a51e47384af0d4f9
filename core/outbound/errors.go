package outbound

import "errors"

// Errors of the outbound side. Recognise them with errors.Is.
var (
	// ErrDenied is the reason of a dial refused by policy (the exit
	// server's target rules, later a user rule).
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
)
