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

// userLookupID is the name of a user id.
func userLookupID(uid int) (string, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return "", err
	}
	return u.Username, nil
}
