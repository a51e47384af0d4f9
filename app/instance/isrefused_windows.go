//go:build windows

package instance

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// isRefused: a socket file nobody listens on gives WSAECONNREFUSED, which
// Go's syscall.ECONNREFUSED (an invented value on Windows) does not match.
func isRefused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}
