package outbound

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// The machine's own addresses, for Guarded's check, are read once and
// kept: listing them costs a dump of the interface tables (tens of system
// calls), which an exit paid on every stream. Where the OS tells of address
// changes (Linux: a netlink subscription, see ownaddrs_linux.go) the list
// is read again after a change, and at most ownWatchedTTL after the last
// read anyway; elsewhere it is kept for ownTTL.
const (
	ownTTL        = 2 * time.Second
	ownWatchedTTL = 30 * time.Second
)

// interfaceAddrs lists the interfaces' addresses; a variable for tests.
var interfaceAddrs = func() ([]netip.Addr, error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ifaddrs))
	for _, ia := range ifaddrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// addrWatch tells whether the machine's addresses may have changed since
// it was last asked (and since it was opened, for the first call).
type addrWatch interface {
	changed() bool
}

// ownCache is the list of the machine's own addresses, shared by every
// Guarded without an Own function.
//
// Concurrency: get is safe from any goroutine; one of them reads the list
// again while the others wait for it.
type ownCache struct {
	mu     sync.Mutex
	open   func() (addrWatch, error) // nil: no watch on this OS
	opened bool
	watch  addrWatch // nil: none (not supported, or it failed)
	addrs  []netip.Addr
	read   time.Time
	valid  bool
}

var sharedOwn = &ownCache{open: openAddrWatch}

// get returns the addresses, read again if they may have changed. The
// slice is shared: callers only read it.
func (c *ownCache) get() ([]netip.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opened && c.open != nil {
		// Subscribed before the first read, so no change is missed.
		c.opened = true
		if w, err := c.open(); err == nil {
			c.watch = w
		}
	}
	ttl := ownTTL
	stale := !c.valid
	if c.watch != nil {
		ttl = ownWatchedTTL
		// Drained before the read: a change after it shows next time.
		if c.watch.changed() {
			stale = true
		}
	}
	if !stale && time.Since(c.read) < ttl {
		return c.addrs, nil
	}
	addrs, err := interfaceAddrs()
	if err != nil {
		c.valid = false
		return nil, err
	}
	c.addrs, c.read, c.valid = addrs, time.Now(), true
	return addrs, nil
}
