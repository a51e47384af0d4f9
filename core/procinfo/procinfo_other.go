//go:build !linux && !darwin

package procinfo

import (
	"net/netip"

	"porthole/core/registry"
)

// otherResolver: no lookup on this OS yet (Windows is to come:
// GetExtendedTcpTable).
type otherResolver struct{}

func newOSResolver(*Resolver) osResolver { return otherResolver{} }

func (otherResolver) lookup(netip.AddrPort, netip.AddrPort) *registry.Process {
	return unknown(ReasonUnsupported, -1)
}

func (otherResolver) close() error { return nil }
