// Package outbound decides where a proxied connection goes and dials it:
// straight to the target (direct) or, in tunnel mode, through the exit
// server, with a bypass list that sends matching hosts direct.
package outbound

import (
	"context"
	"net"
	"time"
)

// Dialer opens connections to targets. Implementations are safe for
// concurrent use.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultDialTimeout bounds one direct dial, DNS included.
const DefaultDialTimeout = 10 * time.Second

// Direct dials targets from this machine: DNS through the system resolver,
// Happy Eyeballs between IPv6 and IPv4 (net.Dialer's), and a timeout.
type Direct struct {
	d net.Dialer
}

// NewDirect returns a direct dialer; timeout <= 0 means DefaultDialTimeout.
// resolver may be nil for the system resolver.
func NewDirect(timeout time.Duration, resolver *net.Resolver) *Direct {
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	return &Direct{d: net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: resolver}}
}

func (d *Direct) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.d.DialContext(ctx, network, addr)
}
