//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package relay

import (
	"net"
	"syscall"
)

// peeker is a no-op where we cannot peek at a socket: Read waits, holding
// its buffer.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (p *peeker) wait() error { return nil }

func (p *peeker) poll(bool) (bool, error) { return true, nil }

// waitIdleSocket is Unix's; elsewhere a socket's first wait is
// copyHalf's.
func waitIdleSocket(syscall.Conn) {}
