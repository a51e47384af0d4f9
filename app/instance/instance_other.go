//go:build !linux

package instance

import (
	"errors"
	"net"
	"os"
	"syscall"
)

func address(key string) (string, error) { return pathAddress(key) }

// listen reports an existing socket file as in use whatever error the
// system gave (Windows has its own errno for it).
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("unix", addr)
	if err != nil {
		if _, serr := os.Stat(addr); serr == nil {
			return nil, &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}
		}
		return nil, err
	}
	return ln, nil
}

func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// checkPeer: the socket file is in a directory only this user can enter.
func checkPeer(net.Conn) error { return nil }

func removeStale(addr string, askErr error) bool { return removeStaleFile(addr, askErr) }
