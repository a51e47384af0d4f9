//go:build !linux

package tunnel

import "net"

// limitUnsent is a no-op where TCP_NOTSENT_LOWAT is not set by this code.
func limitUnsent(net.Conn) {}
