//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package relay

import "net"

// peeker is a no-op where we cannot peek at a socket: Read waits, holding
// its buffer.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

func (p *peeker) wait() error { return nil }

func (p *peeker) poll(bool) (bool, error) { return true, nil }

// waitIdle is Unix's; elsewhere copyHalf's first wait is the first.
func waitIdle(net.Conn) {}
