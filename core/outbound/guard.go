package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Guarded dials targets on behalf of someone else (the exit server, for its
// clients) and refuses those that would reach into the machine's own
// networks: loopback, private (RFC 1918, RFC 4193), shared (RFC 6598),
// link-local, multicast, unspecified, and the machine's own addresses. It
// resolves names itself and dials the very addresses it checked, so a name
// that resolves to a private address — at once or on a second lookup (DNS
// rebinding) — never gets through. Refusals wrap ErrDenied.
type Guarded struct {
	// AllowPrivate turns the guard off (porthole-exit --allow-private).
	AllowPrivate bool
	// Resolver looks names up; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Timeout bounds the whole dial, lookup included; <= 0 means
	// DefaultDialTimeout.
	Timeout time.Duration
	// Own lists the machine's own addresses; nil means the addresses of
	// its interfaces, kept between dials and read again when they change
	// (ownaddrs.go).
	Own func() ([]netip.Addr, error)
}

// shared is RFC 6598's carrier-grade NAT range, which netip does not call
// private.
var shared = netip.MustParsePrefix("100.64.0.0/10")

// IPv6 prefixes that carry an IPv4 address a gateway will reach: NAT64's
// well-known prefix (RFC 6052; the address in the last 32 bits) and 6to4
// (RFC 3056; the address in bits 16–47).
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// Blocked reports why an address may not be dialled, or "" if it may.
func Blocked(a netip.Addr) string {
	a = a.Unmap()
	if v4, ok := embeddedIPv4(a); ok {
		if why := Blocked(v4); why != "" {
			return why + " (embedded in " + a.String() + ")"
		}
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate(), shared.Contains(a):
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.Is4() && a.As4()[0] == 0:
		return "this-network" // 0.0.0.0/8
	}
	return ""
}

func (g *Guarded) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	if g.AllowPrivate {
		d.Resolver = g.Resolver
		return d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	var own []netip.Addr
	ownRead := false
	var refused []error
	var lastErr error
	for _, a := range addrs {
		a = a.Unmap()
		if why := Blocked(a); why != "" {
			refused = append(refused, fmt.Errorf("%s is a %s address", a, why))
			continue
		}
		if !ownRead {
			// Only a public address can be one of ours that Blocked misses.
			if own, err = g.own(); err != nil {
				return nil, fmt.Errorf("listing this machine's addresses: %w", err)
			}
			ownRead = true
		}
		if why := refusal(a, own); why != "" {
			refused = append(refused, fmt.Errorf("%s is a %s address", a, why))
			continue
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%s: %w: %w", host, ErrDenied, errors.Join(refused...))
}

func (g *Guarded) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	return r.LookupNetIP(ctx, "ip", host)
}

func (g *Guarded) own() ([]netip.Addr, error) {
	if g.Own != nil {
		return g.Own()
	}
	return sharedOwn.get()
}

// refusal is why a may not be dialled from a machine whose own addresses
// are own, or "".
func refusal(a netip.Addr, own []netip.Addr) string {
	if why := Blocked(a); why != "" {
		return why
	}
	if contains(own, a.Unmap()) {
		return "this server's own"
	}
	return ""
}

func contains(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// embeddedIPv4 is the IPv4 address inside a NAT64 or 6to4 address.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case !a.Is6():
		return netip.Addr{}, false
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}
