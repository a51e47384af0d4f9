//go:build !windows

package relay

import (
	"errors"
	"syscall"
)

// peerGone reports a reset or broken pipe: the other end went away.
// ENOTCONN is what shutdown (CloseWrite) returns on a socket the peer has
// already reset: the half-close after one direction's EOF meets it.
func peerGone(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOTCONN)
}
