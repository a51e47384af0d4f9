//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package relay

import "net"

// waitReadable is a no-op where we cannot peek at a socket: Read waits,
// holding its buffer.
func waitReadable(net.Conn) error { return nil }
