//go:build windows

package relay

import (
	"errors"
	"syscall"
)

// Winsock error numbers (winerror.h); syscall's ECONNRESET is an invented
// value on Windows and never matches what a socket returns.
const (
	wsaeConnAborted syscall.Errno = 10053
	wsaeConnReset   syscall.Errno = 10054
	wsaeNotConn     syscall.Errno = 10057
	wsaeShutdown    syscall.Errno = 10058
)

// peerGone reports a reset or broken pipe: the other end went away.
func peerGone(err error) bool {
	return errors.Is(err, wsaeConnReset) || errors.Is(err, wsaeConnAborted) ||
		errors.Is(err, wsaeShutdown) || errors.Is(err, wsaeNotConn) || errors.Is(err, syscall.EPIPE)
}
