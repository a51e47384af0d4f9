//go:build !linux

package procinfo

import (
	"net/netip"

	"porthole/core/registry"
)

// otherResolver: no lookup on this OS yet (macOS and Windows are to come:
// the pcblist_n sysctl walk and GetExtendedTcpTable).
type otherResolver struct{}

func newOSResolver(*Resolver) osResolver { return otherResolver{} }

func (otherResolver) lookup(netip.AddrPort, netip.AddrPort) *registry.Process {
	return unknown(ReasonUnsupported, -1)
}

func (otherResolver) close() error { return nil }
