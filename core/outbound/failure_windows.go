//go:build windows

package outbound

import (
	"errors"
	"syscall"
)

// Winsock error numbers (winerror.h); syscall's ECONNREFUSED and friends are
// invented values on Windows and never match what a dial returns.
const (
	wsaeNetUnreach   syscall.Errno = 10051
	wsaeConnRefused  syscall.Errno = 10061
	wsaeHostUnreach  syscall.Errno = 10065
	wsaeAddrNotAvail syscall.Errno = 10049
)

func isRefused(err error) bool { return errors.Is(err, wsaeConnRefused) }

func isUnreachable(err error) bool {
	return errors.Is(err, wsaeHostUnreach) || errors.Is(err, wsaeNetUnreach) || errors.Is(err, wsaeAddrNotAvail)
}
