//go:build !windows

package relay

import (
	"errors"
	"syscall"
)

// peerGone reports a reset or broken pipe: the other end went away.
func peerGone(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
}
