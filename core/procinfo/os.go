package procinfo

import (
	"net/netip"
	"os/user"
	"strconv"

	"porthole/core/registry"
)

// osResolver is the per-OS part of a Resolver.
type osResolver interface {
	// lookup finds the owner of the client socket whose peer is local and
	// whose own address is remote; never nil.
	lookup(local, remote netip.AddrPort) *registry.Process
	close() error
}

// quickResolver is an osResolver that can often answer from its cache in
// a few system calls, cheaper than waking another goroutine for it. ok is
// false when only a full lookup can tell.
type quickResolver interface {
	quick(local, remote netip.AddrPort, since uint64) (p *registry.Process, ok bool)
	// ended: a connection looked up before has ended (the cache learns
	// which fd its program will likely reuse).
	ended(local, remote netip.AddrPort)
}

// userLookupID is the name of a user id.
func userLookupID(uid int) (string, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return "", err
	}
	return u.Username, nil
}
