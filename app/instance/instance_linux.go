package instance

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// address is an abstract socket (leading '@'): it vanishes with the
// process, so a killed run leaves nothing stale behind. Abstract names are
// per network namespace, not per user, so the uid is part of the name and
// checkPeer refuses other users.
func address(key string) (string, error) {
	if pathMode {
		return pathAddress(key)
	}
	return fmt.Sprintf("@%s-%d", name(key), os.Getuid()), nil
}

func listen(addr string) (net.Listener, error) { return net.Listen("unix", addr) }

func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// checkPeer admits only processes of this user (and root, which can do
// anything anyway).
func checkPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("not a unix socket: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return credErr
	}
	if uid := int(cred.Uid); uid != os.Getuid() && uid != 0 {
		return fmt.Errorf("peer is uid %d (pid %d), not this user", uid, cred.Pid)
	}
	return nil
}

func removeStale(addr string, askErr error) bool {
	if pathMode {
		return removeStaleFile(addr, askErr)
	}
	return false // an abstract name in use has a live holder
}

// pathMode makes Linux use socket files like the other systems, so their
// stale-file handling is tested here.
var pathMode = false

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
