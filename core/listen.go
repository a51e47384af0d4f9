package core

import (
	"context"
	"net"
	"net/netip"
)

// listen opens the proxy's port.
//
// On a loopback port TCP keepalive probes are off: both ends are on this
// machine, so the kernel ends the connection itself when the client process
// dies, and turning the probes on costs three setsockopt calls for every
// accepted connection (about 4 % of a new connection's CPU in the setup
// profile of `make bench`). Beyond loopback they stay on (Go's default), so
// that a client machine that vanishes does not hold its connections until
// the idle limit.
func listen(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	if IsLoopbackAddr(addr) {
		lc.KeepAlive = -1
	}
	return lc.Listen(context.Background(), "tcp", addr)
}

// IsLoopbackAddr reports whether a listen address names only loopback:
// a loopback IP or "localhost" (which the listener binds to loopback). The
// app's config asks it too, of the control API's address.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
