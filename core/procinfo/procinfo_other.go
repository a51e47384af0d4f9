//go:build !linux && !darwin && !windows

package procinfo

import (
	"net/netip"

	"porthole/core/registry"
)

// otherResolver: no lookup on this OS (Linux, macOS and Windows have
// theirs).
type otherResolver struct{}

func newOSResolver(*Resolver) osResolver { return otherResolver{} }

func (otherResolver) lookup(netip.AddrPort, netip.AddrPort) *registry.Process {
	return unknown(ReasonUnsupported, -1)
}

func (otherResolver) close() error { return nil }
