//go:build windows

package api

import (
	"errors"
	"syscall"
)

// wsaeAddrInUse is WSAEADDRINUSE (winerror.h); syscall.EADDRINUSE is an
// invented value on Windows.
const wsaeAddrInUse syscall.Errno = 10048

func isAddrInUse(err error) bool { return errors.Is(err, wsaeAddrInUse) }
